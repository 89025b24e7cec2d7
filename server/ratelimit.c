#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ratelimit.h"
#include "banned.h"

#define PROBES 8

int
ratelimit_init(struct ratelimit *rl, unsigned int per_minute)
{
	memset(rl->slots, 0, sizeof(rl->slots));
	rl->rate = per_minute;
	crypto_shorthash_keygen(rl->hash_key);
	return pthread_mutex_init(&rl->mu, NULL) == 0 ? 0 : -1;
}

void
ratelimit_set(struct ratelimit *rl, unsigned int per_minute)
{
	pthread_mutex_lock(&rl->mu);
	__atomic_store_n(&rl->rate, per_minute, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&rl->mu);
}

static double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wait for name; a token is used only when take is set. */
static unsigned int
bucket(struct ratelimit *rl, const char *name, int take)
{
	unsigned char h[8];
	uint64_t key = 0;
	struct ratelimit_slot *s = NULL, *oldest = NULL;
	double now = seconds_now(), per_sec;
	unsigned int wait = 0;
	size_t i;

	/* A glance without the lock: a rate set meanwhile counts next time. */
	if (__atomic_load_n(&rl->rate, __ATOMIC_RELAXED) == 0)
		return 0;
	(void)crypto_shorthash(h, (const unsigned char *)name, strlen(name),
	    rl->hash_key);
	for (i = 0; i < 8; i++)
		key = key << 8 | h[i];
	key |= 1;	/* never 0: 0 marks a free slot */
	pthread_mutex_lock(&rl->mu);
	if (rl->rate == 0) {
		pthread_mutex_unlock(&rl->mu);
		return 0;
	}
	per_sec = rl->rate / 60.0;
	/* A short probe; when full, the least recently used slot goes. */
	for (i = 0; i < PROBES; i++) {
		struct ratelimit_slot *c = &rl->slots[(key + i) % RATELIMIT_SLOTS];

		if (c->key == key || c->key == 0) {
			s = c;
			break;
		}
		if (oldest == NULL || c->last < oldest->last)
			oldest = c;
	}
	if (s == NULL)
		s = oldest;
	if (s->key != key) {
		s->key = key;
		s->tokens = rl->rate;
		s->last = now;
	}
	s->tokens += (now - s->last) * per_sec;
	if (s->tokens > rl->rate)
		s->tokens = rl->rate;
	s->last = now;
	if (s->tokens >= 1.0) {
		if (take)
			s->tokens -= 1.0;
	} else
		wait = (unsigned int)((1.0 - s->tokens) / per_sec) + 1;
	pthread_mutex_unlock(&rl->mu);
	return wait;
}

unsigned int
ratelimit_take(struct ratelimit *rl, const char *name)
{
	return bucket(rl, name, 1);
}

unsigned int
ratelimit_peek(struct ratelimit *rl, const char *name)
{
	return bucket(rl, name, 0);
}
