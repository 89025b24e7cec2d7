/*
 * server.h - what smimpd's modules share: the server's state, its log,
 * and the handlers the route table (routes.c) names.
 */
#ifndef SMIMPD_SERVER_H
#define SMIMPD_SERVER_H

#include <limits.h>
#include <stdarg.h>
#include <pthread.h>

#include <microhttpd.h>

#include "batch.h"
#include "config.h"
#include "idlog.h"
#include "store.h"
#include "ratelimit.h"
#include "remote.h"
#include "signer.h"

struct exchange;
struct http_service;

#define HTTP_RETIRING_MAX	8

#define RELAY_CLAIM_MAX	BATCH_MAX

struct server {
	struct smimpd_config cfg;
	struct store *store;
	unsigned char server_pk[32];
	/* Signs with the server key, which only serverkey.c holds. */
	struct signer signer;
	char signer_name[ADDRESS_DOMAIN_MAX + 8];	/* server:DOMAIN */
	char spool_prefix[PATH_MAX];	/* uploads: PREFIX.tmp.XXXXXX */
	struct ratelimit per_sender;	/* submissions per sender */
	struct ratelimit per_domain;	/* deliveries per remote domain */
	struct ratelimit per_source;	/* failed requests per source
					   (sources.h) */
	struct ratelimit per_lookup;	/* directory lookups per requester */
	struct ratelimit per_lookup_domain;	/* ... from one other domain */
	struct ratelimit per_status;	/* status requests per sender */
	struct ratelimit per_prekey;	/* prekeys taken, per requester and
					   address */

	int listen_fd;
	char *tls_cert, *tls_key;	/* until the daemon starts */
	/* HTTP: the daemon, and workers for the steps that may block. */
	struct http_service *http;	/* the daemon, in http.c */
	struct sources *sources;	/* connections open per source */
	/*
	 * Daemons a reload replaced, finishing their connections; the main
	 * thread stops each once it has none (http_reap).
	 */
	struct http_service *retiring[HTTP_RETIRING_MAX];
	unsigned int nretiring;
	pthread_t workers[WORKERS_MAX];
	unsigned int nworkers;
	int work_locks;
	pthread_mutex_t work_mu;
	pthread_cond_t work_cv, work_idle;
	struct exchange *work_head, *work_tail;
	unsigned int work_busy;
	int work_closing, work_stop;

	/* Deadlines: a thread that cuts connections past theirs. */
	pthread_t watch_thread;
	int watch_running;

	/* The relay: workers claiming queue entries through the store. */
	pthread_t relay[RELAY_WORKERS_MAX];
	unsigned int relay_running;
	pthread_mutex_t relay_mu;
	pthread_cond_t relay_cv;
	int relay_stop;
	unsigned long relay_wakes;	/* relay_wake() calls, under relay_mu */
	char relay_node[17];		/* random: this process, in lease owners */
	/* What each worker holds claimed, renewed while it lasts. */
	struct relay_claim {
		pthread_mutex_t mu;
		int64_t ids[RELAY_CLAIM_MAX];
		size_t n;
	} relay_claims[RELAY_WORKERS_MAX];
	pthread_t lease_thread;
	pthread_cond_t lease_cv;	/* with relay_mu: stop */
	int lease_running;

	/* The metrics endpoint (metrics.c). */
	int metrics_fd;
	struct MHD_Daemon *metricsd;
	/* When the store's outage began (time_mono), for its end's line. */
	int64_t outage_since;
};

/*
 * The log: one line on stderr per call, with a timestamp, every string
 * from outside escaped.  log_debug prints only with -v.
 */
extern int log_verbose;
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * From now on the log goes to path (appended, created 0600), which
 * becomes stderr: at start, and again on SIGHUP for logrotate.
 */
int log_open(const char *path, struct smimp_err *err);
/* One line for a finished request. */
void log_request(const struct exchange *x);
/*
 * A store operation failed: "what: why", unless it failed because the
 * store cannot be reached (SMIMP_EXIT_TEMPFAIL): log_outage said that
 * once for the whole outage.
 */
void log_store(const struct smimp_err *err, const char *what, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * The store's watch (store_watch; arg the server): one line when an
 * outage begins (why), one when it is over (why NULL) with how long it
 * lasted, whatever the number of requests answered 503 in between.
 */
void log_outage(void *arg, const char *why);
/*
 * What libmicrohttpd says (its MHD_OPTION_EXTERNAL_LOGGER): a warning
 * like any other, escaped, its own newline cut; at most a few lines a
 * second, since a stranger can make it speak (each TLS handshake that
 * fails), the others counted in one line once the second is over.
 */
void log_library(void *cls, const char *fmt, va_list ap);
/*
 * s made safe for a log line: printable ASCII, others as \xNN, at most
 * cap - 1 bytes (cut with "...").
 */
const char *log_escape(const char *s, char *out, size_t cap);

/*
 * The store the configuration names, with its quotas; the accounts from
 * before the store kept receiving devices get theirs from their logs.
 * With create 0, a store that is not there yet is an error: only the
 * server and the commands that add to it (adduser, invite) make one.
 */
struct store *server_store_open(const struct smimpd_config *cfg, int create,
    struct smimp_err *err);
/*
 * What the store keeps of a verified log: its bytes and the devices
 * that receive (live, of scope full or receive), into devs; the names
 * point into log.
 */
void server_store_log(const struct idlog *log, struct store_log *sl,
    struct store_device devs[STORE_DEVICES_MAX]);
/* Load (or make, on first start) the server key; srv->signer signs. */
int serverkey_load(struct server *srv, struct smimp_err *err);
void serverkey_release(void);
/*
 * The public key of datadir's server key, made by no one: 0, 1 when
 * there is none yet, -1 when it cannot be read or is malformed.
 */
int serverkey_public(const char *datadir, unsigned char pk[32],
    struct smimp_err *err);
/* The administrator's subcommands (admin.c). */
int admin_run(const char *sub, char **args, int nargs,
    struct smimpd_config *cfg, struct smimp_err *err);

/* A connection to other servers, with the server's overrides. */
struct remote *server_remote(const struct server *srv,
    struct smimp_err *err);
/* Counts reloads: a connection made before the last one is made anew. */
unsigned int server_peers_gen(void);

/*
 * SIGHUP (reload.c): reopen the log where the settings say; take next,
 * a valid configuration, for what may change at run time.
 */
void server_log_reopen(struct server *srv);
int server_reload(struct server *srv, const struct smimpd_config *next);

/* Connection deadlines (deadline.c). */
int conn_watch_start(struct server *srv);
void conn_watch_stop(struct server *srv);
void conn_watch_notify(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_ConnectionNotificationCode code);
/* The request's headers are in: it has until deadline (monotonic). */
void conn_watch_request(struct MHD_Connection *c, int64_t deadline);
/* Between requests: the next must have its headers in within secs. */
void conn_watch_idle(struct MHD_Connection *c, unsigned int secs);

/* The relay (relay.c). */
int relay_start(struct server *srv);
void relay_stop(struct server *srv);
void relay_wake(struct server *srv);

/* relaylease.c: claims renewed while a worker's attempt lasts. */
void relay_owner(const struct server *srv, unsigned int worker, char *out,
    size_t size);
/* Worker's claim is now obs[0..n), or nothing when n is 0. */
void relay_claim_set(struct server *srv, unsigned int worker,
    const struct outbound *obs, size_t n);
int relay_lease_start(struct server *srv);
void relay_lease_stop(struct server *srv);
/*
 * Give up on the queue entry ob, which owner holds: the store removes
 * it and leaves a notice saying reason, signed by the server key, in
 * the sender's mailbox, in one transaction (store_outbound_bounce).
 */
int relay_give_up(struct server *srv, const char *owner,
    const struct outbound *ob, const char *reason, struct smimp_err *err);

/* Handlers, by endpoint group. */
void directory_discovery(struct exchange *x);
void directory_version(struct exchange *x);
void directory_meta(struct exchange *x);
void directory_user(struct exchange *x);
void directory_append(struct exchange *x);
void accounts_register(struct exchange *x);
void submission_post(struct exchange *x);
void mailbox_list(struct exchange *x);
void mailbox_get(struct exchange *x);
void mailbox_delete(struct exchange *x);
void mailbox_ack(struct exchange *x);
void inbound_deliver(struct exchange *x);
void inbound_deliver_batch(struct exchange *x);
void policy_post(struct exchange *x);
void policy_get(struct exchange *x);
void status_get(struct exchange *x);
void prekeys_count(struct exchange *x);
void prekeys_upload(struct exchange *x);
void prekeys_claim(struct exchange *x);

#endif
