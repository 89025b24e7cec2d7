/*
 * server.h - what smimpd's modules share: the server's state and its
 * log.
 */
#ifndef SMIMPD_SERVER_H
#define SMIMPD_SERVER_H

#include <pthread.h>

#include <microhttpd.h>

#include "config.h"
#include "store.h"
#include "ratelimit.h"
#include "batch.h"

#define RELAY_BATCH_BYTES (4 * 1024 * 1024)

struct server {
	struct smimpd_config cfg;
	struct store *store;
	unsigned char server_pk[32];
	unsigned char *server_sk;	/* sodium_malloc, 64 bytes */
	char meta_json[1024];
	struct ratelimit per_sender;	/* submissions per sender */
	struct ratelimit per_domain;	/* deliveries per remote domain */
	/* the relay: workers claiming due entries from the store */
	pthread_t relay[RELAY_WORKERS_MAX];
	unsigned int relay_running;
	pthread_mutex_t relay_mu;
	pthread_cond_t relay_cv;
	int relay_stop;
	unsigned long relay_wakes;	/* relay_wake() calls, under relay_mu */
	char relay_node[17];		/* random: this process, in lease owners */
};

/* 429 with Retry-After when name has no tokens left; else MHD_NO. */
int rate_limited(struct ratelimit *rl, const char *name,
    struct MHD_Connection *c, unsigned int *status, enum MHD_Result *ret);

/* One line on stderr, with a timestamp; never a secret. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Relay: queue messages for other domains, deliver them in the background. */
int relay_start(struct server *srv);
void relay_stop(struct server *srv);
void relay_wake(struct server *srv);

/*
 * POST {base}/v1/deliver from another domain's server.  Answers itself;
 * *status gets the HTTP status.
 */
enum MHD_Result relay_accept(struct server *srv, struct MHD_Connection *c,
    const char *url, const unsigned char *body, size_t len,
    unsigned int *status);
/*
 * POST {base}/v1/deliver-batch: up to BATCH_MAX messages in one
 * request, answered with a status for each.
 */
enum MHD_Result relay_accept_batch(struct server *srv,
    struct MHD_Connection *c, const char *url, const unsigned char *body,
    size_t len, unsigned int *status);

#endif
