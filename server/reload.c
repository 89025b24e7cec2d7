/*
 * reload.c - SIGHUP: what changes in a running smimpd.  The log is
 * reopened first (logrotate moved it); the configuration is read again
 * (smimpd.c) and, only when all of it is valid, taken: limits and
 * timeouts at once, the settings for reaching other servers from each
 * next connection, the certificate and key and the connection limits
 * by a new HTTP service on the same socket.  What the process was built
 * around (its sockets, store, threads, domain) waits for a restart, a
 * line in the log saying so for each.
 */
#include <pthread.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "peers.h"
#include "server.h"
#include "banned.h"

/*
 * cfg.resolve, cacert and allow_http change under this lock, and each
 * reload counts one more generation, so that relay workers make their
 * connections anew.
 */
static pthread_mutex_t peers_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned int peers_gen;

struct remote *
server_remote(const struct server *srv, struct smimp_err *err)
{
	struct remote_opts o;
	struct remote *r;

	memset(&o, 0, sizeof(o));
	/*
	 * A domain that failed discovery is not asked again for each of its
	 * queued messages, but no longer than until the first retry.
	 */
	o.negative_secs = LIVE(srv->cfg.retry_base) < REMOTE_NEGATIVE_SECS ?
	    LIVE(srv->cfg.retry_base) : REMOTE_NEGATIVE_SECS;
	if (o.negative_secs == 0)
		o.negative_secs = 1;
	pthread_mutex_lock(&peers_mu);
	o.resolve = srv->cfg.resolve[0] != '\0' ? srv->cfg.resolve : NULL;
	o.cacert = srv->cfg.cacert[0] != '\0' ? srv->cfg.cacert : NULL;
	o.allow_http = srv->cfg.allow_http[0] != '\0' ? srv->cfg.allow_http :
	    NULL;
	r = remote_new(&o, err);	/* copies the strings */
	pthread_mutex_unlock(&peers_mu);
	return r;
}

unsigned int
server_peers_gen(void)
{
	return __atomic_load_n(&peers_gen, __ATOMIC_ACQUIRE);
}

void
server_log_reopen(struct server *srv)
{
	struct smimp_err err;

	if (srv->cfg.log[0] == '\0')
		return;
	if (log_open(srv->cfg.log, &err) != 0)
		log_warnx("reload: %s; the log goes on where it went",
		    err.msg);
	else
		log_info("reload: log reopened");
}

int
server_reload(struct server *srv, const struct smimpd_config *next)
{
	struct smimp_err err;
	int ret = 0;

	if (next->log[0] == '\0' && srv->cfg.log[0] != '\0')
		log_warnx("reload: log to standard error only from a restart");
	else if (strcmp(next->log, srv->cfg.log) != 0 &&
	    log_open(next->log, &err) != 0) {
		log_warnx("reload: %s; the configuration stays as it was",
		    err.msg);
		metrics_reload(0);
		return -1;
	}
	config_apply(&srv->cfg, next, &peers_mu);
	(void)__atomic_fetch_add(&peers_gen, 1, __ATOMIC_RELEASE);
	peers_forget();
	ratelimit_set(&srv->per_sender, srv->cfg.rate_sender);
	ratelimit_set(&srv->per_domain, srv->cfg.rate_domain);
	ratelimit_set(&srv->per_source, srv->cfg.rate_failures);
	ratelimit_set(&srv->per_lookup, srv->cfg.rate_lookup);
	ratelimit_set(&srv->per_lookup_domain, srv->cfg.rate_lookup_domain);
	ratelimit_set(&srv->per_status, srv->cfg.rate_status);
	ratelimit_set(&srv->per_prekey, srv->cfg.rate_prekeys);
	if (http_restart(srv, &err) != 0) {
		log_warnx("reload: %s; HTTPS goes on as it was", err.msg);
		ret = -1;
	}
	metrics_reload(1);
	log_info("reload: configuration applied%s", ret != 0 ?
	    ", but for the HTTP service" : "");
	return ret;
}
