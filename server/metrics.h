/*
 * metrics.h - what smimpd counts for its Prometheus endpoint: requests
 * by route and status, their latencies by route, the relay's outcomes
 * by domain, store commit times, reloads; and the endpoint itself,
 * plain HTTP on an address of its own (metrics-listen), GET /metrics
 * only.
 *
 * Counting is a relaxed atomic addition or two: no request waits for a
 * lock to be counted, and a scrape reads the counters as they are,
 * blocking nothing.  Every label value comes from a bounded set (the
 * route table, the status codes, the first METRICS_DOMAINS domains),
 * never from a request's URL.
 */
#ifndef SMIMPD_METRICS_H
#define SMIMPD_METRICS_H

#include <stdint.h>

#include "err.h"

struct server;

#define METRICS_ROUTES_MAX	32	/* routes[] may have no more */
/*
 * Relay domains with a label of their own: the first ones the relay
 * tries after the start, every later one counted as "other".  The
 * first come keep theirs for the whole run: a label that came and
 * went would break its counter for whoever computes rates.
 */
#define METRICS_DOMAINS		32

enum relay_outcome {
	RELAY_DELIVERED,	/* the other server took it */
	RELAY_DEFERRED,		/* failed for now: tried again later */
	RELAY_BOUNCED,		/* given up: a bounce for the sender */
	RELAY_OUTCOMES
};

/*
 * A request is finished: route is its index in routes[] (-1 for none:
 * no such path, a target too long), status the one it got (0 when no
 * reply went out), usecs how long it took from its first line.
 */
void metrics_request(long route, unsigned int status, int64_t usecs);
void metrics_relay(const char *domain, enum relay_outcome outcome);
/* For store_observe_commits(). */
void metrics_commit(void *arg, int64_t usecs);
/* A SIGHUP: the new configuration applied (1) or refused (0). */
void metrics_reload(int applied);

/*
 * Bind metrics-listen (before privileges are dropped) if it is set;
 * serve it once the server runs; stop.
 */
int metrics_listen(struct server *srv, struct smimp_err *err);
int metrics_start(struct server *srv, struct smimp_err *err);
void metrics_stop(struct server *srv);

#endif
