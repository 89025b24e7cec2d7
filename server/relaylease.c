/*
 * relaylease.c - a relay worker keeps its claim for as long as its
 * attempt lasts.
 *
 * A worker claims queue entries for relay-lease seconds, but one
 * attempt may take longer: a batch or a large message has 300 s to go
 * out.  Were the lease to run out meanwhile, another worker (or node)
 * would claim the same entries and send them again, beside the first
 * attempt, for as long as a slow peer kept reading.  So while a worker
 * holds a claim, this thread renews it every third of a lease.  A node
 * that dies renews nothing: its entries come back when their leases
 * run out, as before.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"
#include "banned.h"

void
relay_owner(const struct server *srv, unsigned int worker, char *out,
    size_t size)
{
	(void)snprintf(out, size, "%s:%u", srv->relay_node, worker);
}

void
relay_claim_set(struct server *srv, unsigned int worker,
    const struct outbound *obs, size_t n)
{
	struct relay_claim *c = &srv->relay_claims[worker];
	size_t i;

	pthread_mutex_lock(&c->mu);
	for (i = 0; i < n && i < RELAY_CLAIM_MAX; i++)
		c->ids[i] = obs[i].id;
	c->n = i;
	pthread_mutex_unlock(&c->mu);
}

/* Each of the first workers' live claim, extended by a lease from now. */
static void
renew_all(struct server *srv, unsigned int workers)
{
	int64_t ids[RELAY_CLAIM_MAX];
	struct smimp_err err;
	char owner[64];
	unsigned int i;
	size_t n;

	for (i = 0; i < workers; i++) {
		struct relay_claim *c = &srv->relay_claims[i];

		pthread_mutex_lock(&c->mu);
		n = c->n;
		memcpy(ids, c->ids, n * sizeof(ids[0]));
		pthread_mutex_unlock(&c->mu);
		if (n == 0)
			continue;
		relay_owner(srv, i, owner, sizeof(owner));
		if (store_outbound_renew(srv->store, owner, ids, n,
		    time_now() + LIVE(srv->cfg.relay_lease), &err) != STORE_OK)
			log_store(&err, "relay: renewing a lease");
	}
}

/* A third of a lease from now, on the monotonic clock. */
static void
next_renewal(const struct server *srv, struct timespec *at)
{
	time_after_ms(CLOCK_MONOTONIC,
	    (int64_t)LIVE(srv->cfg.relay_lease) * 1000 / 3, at);
}

static void *
keeper(void *arg)
{
	struct server *srv = arg;
	struct timespec at;
	unsigned int workers;

	pthread_mutex_lock(&srv->relay_mu);
	next_renewal(srv, &at);
	while (!srv->relay_stop) {
		if (pthread_cond_timedwait(&srv->lease_cv, &srv->relay_mu,
		    &at) != ETIMEDOUT)
			continue;
		workers = srv->relay_running;
		pthread_mutex_unlock(&srv->relay_mu);
		renew_all(srv, workers);
		pthread_mutex_lock(&srv->relay_mu);
		next_renewal(srv, &at);
	}
	pthread_mutex_unlock(&srv->relay_mu);
	return NULL;
}

int
relay_lease_start(struct server *srv)
{
	pthread_condattr_t ca;
	unsigned int i;
	int ok;

	for (i = 0; i < RELAY_WORKERS_MAX; i++) {
		if (pthread_mutex_init(&srv->relay_claims[i].mu, NULL) != 0)
			return -1;
		srv->relay_claims[i].n = 0;
	}
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(&srv->lease_cv, &ca) == 0;
	(void)pthread_condattr_destroy(&ca);
	if (!ok)
		return -1;
	if (pthread_create(&srv->lease_thread, NULL, keeper, srv) != 0)
		return -1;
	srv->lease_running = 1;
	return 0;
}

void
relay_lease_stop(struct server *srv)
{
	if (!srv->lease_running)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	pthread_cond_broadcast(&srv->lease_cv);
	pthread_mutex_unlock(&srv->relay_mu);
	pthread_join(srv->lease_thread, NULL);
	srv->lease_running = 0;
}
