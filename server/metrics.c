/*
 * metrics.c - the counters of metrics.h and the endpoint that shows
 * them in the Prometheus text exposition format (version 0.0.4).
 *
 * The endpoint is a libmicrohttpd daemon of its own, with one thread,
 * few connections and small buffers, on its own socket: whatever
 * reaches it (a scraper, or anyone who can connect) costs the server's
 * requests nothing but the store read of the queue's size, made at
 * most once a second.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "exitcode.h"
#include "http.h"
#include "metrics.h"
#include "server.h"
#include "util.h"
#include "banned.h"

#define ADD(v, n)	((void)__atomic_fetch_add(&(v), (n), __ATOMIC_RELAXED))
#define GET(v)		__atomic_load_n(&(v), __ATOMIC_RELAXED)

/* The endpoint: a scraper needs one connection, an operator a few. */
#define METRICS_CONNECTIONS	16
#define METRICS_PER_ADDRESS	8
#define METRICS_CONN_MEMORY	(16 * 1024)
#define METRICS_TEXT_MAX	(4 * 1024 * 1024)
#define METRICS_TIMEOUT		10	/* seconds idle */

/* Statuses 100..599 at 1..500; 0 for none sent (or out of range). */
#define STATUS_SLOTS		501
#define BUCKETS_MAX		16

struct histogram {
	uint64_t bucket[BUCKETS_MAX + 1];	/* not cumulative; last: +Inf */
	uint64_t sum_us;
};

/* Upper bounds in microseconds, for requests and for commits. */
static const int64_t request_bounds[] = { 1000, 2500, 5000, 10000, 25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	30000000, 60000000 };
static const int64_t commit_bounds[] = { 250, 500, 1000, 2500, 5000,
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000 };
#define NBOUNDS(b)	(sizeof(b) / sizeof((b)[0]))

/* By route, the last row for requests of no route. */
static uint64_t requests[METRICS_ROUTES_MAX + 1][STATUS_SLOTS];
static struct histogram latency[METRICS_ROUTES_MAX + 1];
static struct histogram commits;
static uint64_t reloads[2];	/* refused, applied */
static int64_t started_at;

struct domain_slot {
	char name[ADDRESS_DOMAIN_MAX + 1];	/* set once, then read only */
	uint64_t n[RELAY_OUTCOMES];
};

/* The first METRICS_DOMAINS domains, then "other". */
static struct domain_slot domains[METRICS_DOMAINS + 1];
static unsigned int ndomains;	/* published with release */
static pthread_mutex_t domains_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const outcome_names[RELAY_OUTCOMES] = {
	"delivered", "deferred", "bounced"
};

/* ---- counting ---- */

static void
observe(struct histogram *h, const int64_t *bounds, size_t n, int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0;
	while (i < n && us > bounds[i])
		i++;
	ADD(h->bucket[i], 1);
	ADD(h->sum_us, (uint64_t)us);
}

void
metrics_request(long route, unsigned int status, int64_t usecs)
{
	size_t r = route >= 0 && route < METRICS_ROUTES_MAX &&
	    (size_t)route < nroutes ? (size_t)route : METRICS_ROUTES_MAX;
	size_t s = status >= 100 && status <= 599 ? status - 99 : 0;

	ADD(requests[r][s], 1);
	observe(&latency[r], request_bounds, NBOUNDS(request_bounds), usecs);
}

void
metrics_commit(void *arg, int64_t usecs)
{
	(void)arg;
	observe(&commits, commit_bounds, NBOUNDS(commit_bounds), usecs);
}

void
metrics_reload(int applied)
{
	ADD(reloads[applied ? 1 : 0], 1);
}

/* domain's slot: its own, a new one while there are free ones, or other. */
static struct domain_slot *
domain_slot(const char *domain)
{
	unsigned int i, n = __atomic_load_n(&ndomains, __ATOMIC_ACQUIRE);

	for (i = 0; i < n; i++)
		if (strcmp(domains[i].name, domain) == 0)
			return &domains[i];
	if (n == METRICS_DOMAINS || strlen(domain) > ADDRESS_DOMAIN_MAX)
		return &domains[METRICS_DOMAINS];
	pthread_mutex_lock(&domains_mu);
	/* Another thread may have added it, or others, meanwhile. */
	for (n = ndomains; i < n; i++)
		if (strcmp(domains[i].name, domain) == 0)
			break;
	if (i == n && n < METRICS_DOMAINS) {
		(void)snprintf(domains[n].name, sizeof(domains[n].name), "%s",
		    domain);
		__atomic_store_n(&ndomains, n + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&domains_mu);
	return i < METRICS_DOMAINS ? &domains[i] : &domains[METRICS_DOMAINS];
}

void
metrics_relay(const char *domain, enum relay_outcome outcome)
{
	ADD(domain_slot(domain)->n[outcome], 1);
}

/* ---- the exposition ---- */

/* A label value: backslash, double quote and newline escaped. */
static int
add_label(struct sbuf *sb, const char *v)
{
	for (; *v != '\0'; v++) {
		if ((*v == '\\' || *v == '"') && sbuf_add(sb, "\\", 1) != 0)
			return -1;
		if (*v == '\n' ? sbuf_add(sb, "\\n", 2) : sbuf_add(sb, v, 1))
			return -1;
	}
	return 0;
}

static int
family(struct sbuf *sb, const char *name, const char *type,
    const char *help)
{
	return sbuf_addf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* A histogram's series; labels is `name="value"` or "". */
static int
put_histogram(struct sbuf *sb, const char *name, const char *labels,
    const struct histogram *h, const int64_t *bounds, size_t n)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	char braces[96];
	uint64_t cum = 0;
	size_t i;

	(void)snprintf(braces, sizeof(braces), labels[0] != '\0' ? "{%s}" :
	    "%s", labels);
	for (i = 0; i <= n; i++) {
		cum += GET(h->bucket[i]);
		if (i < n ? sbuf_addf(sb, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
		    labels, sep, (double)bounds[i] / 1e6,
		    (unsigned long long)cum) :
		    sbuf_addf(sb, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name,
		    labels, sep, (unsigned long long)cum))
			return -1;
	}
	/* The count is the buckets' sum: the two never disagree. */
	return sbuf_addf(sb, "%s_sum%s %.6f\n%s_count%s %llu\n", name, braces,
	    (double)GET(h->sum_us) / 1e6, name, braces,
	    (unsigned long long)cum);
}

static const char *
route_name(size_t r)
{
	return r < nroutes && r < METRICS_ROUTES_MAX ? routes[r].name : "none";
}

static int
put_requests(struct sbuf *sb)
{
	uint64_t v;
	size_t r, s;

	if (family(sb, "smimpd_requests_total", "counter", "Requests "
	    "finished, by endpoint (the route) and status (0: none sent).") != 0)
		return -1;
	for (r = 0; r <= METRICS_ROUTES_MAX; r++)
		for (s = 0; s < STATUS_SLOTS; s++) {
			v = GET(requests[r][s]);
			if (v != 0 && sbuf_addf(sb, "smimpd_requests_total{"
			    "endpoint=\"%s\",status=\"%zu\"} %llu\n",
			    route_name(r), s == 0 ? 0 : s + 99,
			    (unsigned long long)v) != 0)
				return -1;
		}
	return 0;
}

static int
put_latency(struct sbuf *sb)
{
	char label[64];
	size_t r, i;
	uint64_t n;

	if (family(sb, "smimpd_request_duration_seconds", "histogram",
	    "Time from a request's first line to its end, by endpoint.") != 0)
		return -1;
	for (r = 0; r <= METRICS_ROUTES_MAX; r++) {
		for (n = 0, i = 0; i <= NBOUNDS(request_bounds); i++)
			n += GET(latency[r].bucket[i]);
		if (n == 0)
			continue;
		(void)snprintf(label, sizeof(label), "endpoint=\"%s\"",
		    route_name(r));
		if (put_histogram(sb, "smimpd_request_duration_seconds", label,
		    &latency[r], request_bounds, NBOUNDS(request_bounds)) != 0)
			return -1;
	}
	return 0;
}

/* The queue as the store last said, asked at most once a second. */
static int
put_queue(struct sbuf *sb, struct server *srv)
{
	static struct store_queue_stats qs;
	static int64_t asked_us, ok;
	struct smimp_err err;
	int64_t now = time_now(), age;

	/* Only the endpoint's one thread comes here. */
	if (asked_us == 0 || time_mono_us() - asked_us >= 1000000) {
		asked_us = time_mono_us();
		ok = store_outbound_stats(srv->store, &qs, &err) == STORE_OK;
		if (!ok)
			log_warnx("metrics: %s", err.msg);
	}
	if (!ok)
		return 0;	/* no numbers rather than wrong ones */
	age = qs.entries > 0 && qs.oldest > 0 && now > qs.oldest ?
	    now - qs.oldest : 0;
	return family(sb, "smimpd_relay_queue_entries", "gauge", "Entries in "
	    "the relay queue (a message once per recipient domain).") ||
	    sbuf_addf(sb, "smimpd_relay_queue_entries %llu\n",
	    (unsigned long long)qs.entries) ||
	    family(sb, "smimpd_relay_queue_oldest_seconds", "gauge", "How "
	    "long the oldest entry of the relay queue has waited.") ||
	    sbuf_addf(sb, "smimpd_relay_queue_oldest_seconds %lld\n",
	    (long long)age) ? -1 : 0;
}

static int
put_relay(struct sbuf *sb)
{
	unsigned int i, n = __atomic_load_n(&ndomains, __ATOMIC_ACQUIRE);
	int o;

	if (family(sb, "smimpd_relay_attempts_total", "counter", "Relay "
	    "attempts, by recipient domain (the first 32 tried, then "
	    "other) and outcome.") != 0)
		return -1;
	for (i = 0; i <= METRICS_DOMAINS; i++) {
		if (i >= n && i < METRICS_DOMAINS)
			continue;
		for (o = 0; o < RELAY_OUTCOMES; o++) {
			if (sbuf_addf(sb, "%s",
			    "smimpd_relay_attempts_total{domain=\"") != 0 ||
			    add_label(sb, i < METRICS_DOMAINS ?
			    domains[i].name : "other") != 0 ||
			    sbuf_addf(sb, "\",outcome=\"%s\"} %llu\n",
			    outcome_names[o],
			    (unsigned long long)GET(domains[i].n[o])) != 0)
				return -1;
		}
	}
	return 0;
}

static int
put_process(struct sbuf *sb)
{
	return family(sb, "smimpd_build_info", "gauge", "The running "
	    "smimpd's version.") ||
	    sbuf_addf(sb, "smimpd_build_info{version=\"%s\"} 1\n",
	    SMIMP_VERSION) ||
	    family(sb, "smimpd_start_time_seconds", "gauge", "When smimpd "
	    "started, in seconds since the epoch.") ||
	    sbuf_addf(sb, "smimpd_start_time_seconds %lld\n",
	    (long long)started_at) ||
	    family(sb, "smimpd_config_reloads_total", "counter",
	    "Configuration reloads (SIGHUP), applied or refused.") ||
	    sbuf_addf(sb, "smimpd_config_reloads_total{result=\"applied\"} "
	    "%llu\nsmimpd_config_reloads_total{result=\"refused\"} %llu\n",
	    (unsigned long long)GET(reloads[1]),
	    (unsigned long long)GET(reloads[0])) ? -1 : 0;
}

static int
exposition(struct sbuf *sb, struct server *srv)
{
	return put_process(sb) || put_requests(sb) || put_latency(sb) ||
	    put_queue(sb, srv) || put_relay(sb) ||
	    family(sb, "smimpd_store_commit_duration_seconds", "histogram",
	    "Time from a write transaction's start to its commit on stable "
	    "storage.") ||
	    put_histogram(sb, "smimpd_store_commit_duration_seconds", "",
	    &commits, commit_bounds, NBOUNDS(commit_bounds)) ? -1 : 0;
}

/* ---- the endpoint ---- */

/* Takes text, malloc'd, or a string constant when persistent. */
static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *type,
    char *text, size_t len, int persistent)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = persistent ? MHD_create_response_from_buffer(len, text,
	    MHD_RESPMEM_PERSISTENT) :
	    MHD_create_response_from_buffer_with_free_callback(len, text, free);
	if (r == NULL) {
		if (!persistent)
			free(text);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, "Content-Type", type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	static char not_found[] = "not found\n", too_large[] = "too large\n";
	struct server *srv = cls;
	struct sbuf sb;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	/* Answered at once, from the headers: a body is never read. */
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0)
		return reply(c, 404, "text/plain; charset=utf-8", not_found,
		    strlen(not_found), 1);
	sbuf_init(&sb, METRICS_TEXT_MAX);
	if (exposition(&sb, srv) != 0) {
		sbuf_release(&sb);
		log_warnx("metrics: no room for the exposition");
		return reply(c, 500, "text/plain; charset=utf-8", too_large,
		    strlen(too_large), 1);
	}
	/* The reply frees what the buffer holds. */
	return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	    sb.buf, sb.len, 0);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;

	(void)state;
	(void)toe;
	conn_watch_idle(c, LIVE(srv->cfg.timeout) +
	    LIVE(srv->cfg.header_timeout));
}

int
metrics_listen(struct server *srv, struct smimp_err *err)
{
	started_at = time_now();
	if (srv->cfg.metrics_listen[0] == '\0')
		return 0;
	return listen_socket(&srv->cfg.metrics_addr, srv->cfg.metrics_addrlen,
	    srv->cfg.metrics_listen, METRICS_CONNECTIONS, &srv->metrics_fd,
	    err);
}

int
metrics_start(struct server *srv, struct smimp_err *err)
{
	if (srv->metrics_fd < 0)
		return 0;
	/* No MHD_USE_ERROR_LOG: what strangers send here stays out of the log. */
	srv->metricsd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0,
	    NULL, NULL, on_request, srv,
	    MHD_OPTION_LISTEN_SOCKET, srv->metrics_fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)METRICS_PER_ADDRESS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_watch_notify, srv,
	    MHD_OPTION_END);
	if (srv->metricsd == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot serve the "
		    "metrics on %s", srv->cfg.metrics_listen);
	srv->metrics_fd = -1;	/* the daemon's now */
	log_info("metrics on http://%s/metrics", srv->cfg.metrics_listen);
	return 0;
}

void
metrics_stop(struct server *srv)
{
	if (srv->metricsd != NULL)
		MHD_stop_daemon(srv->metricsd);
	srv->metricsd = NULL;
	if (srv->metrics_fd >= 0)
		(void)close(srv->metrics_fd);
	srv->metrics_fd = -1;
}
