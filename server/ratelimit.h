/*
 * ratelimit.h - token buckets per key (a sender address, a remote
 * domain), in memory: a burst of `rate` requests, refilled at `rate`
 * per minute.
 */
#ifndef SMIMPD_RATELIMIT_H
#define SMIMPD_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#define RATELIMIT_SLOTS	4096

struct ratelimit_slot {
	uint64_t key;		/* hash of the name; 0 is free */
	double tokens;
	double last;		/* seconds */
};

struct ratelimit {
	pthread_mutex_t mu;
	unsigned int rate;	/* per minute; 0 means unlimited; under mu */
	/* A secret of this process: nobody outside can pick names that
	   share a slot, and evict his own bucket to start it full. */
	unsigned char hash_key[16];
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
};

int ratelimit_init(struct ratelimit *rl, unsigned int per_minute);
/* A new rate, from now on (SIGHUP); the buckets stay. */
void ratelimit_set(struct ratelimit *rl, unsigned int per_minute);
/* 0 if allowed now; else the seconds to wait (for Retry-After). */
unsigned int ratelimit_take(struct ratelimit *rl, const char *name);
/* The same answer, without using a token. */
unsigned int ratelimit_peek(struct ratelimit *rl, const char *name);

#endif
