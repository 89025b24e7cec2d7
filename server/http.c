/*
 * http.c - the dispatcher: routes, the request's life from headers to
 * reply, spooled bodies, workers for whatever may block, deadlines, and
 * the one reply layer.  See http.h for the steps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "exitcode.h"
#include "fileio.h"
#include "http.h"
#include "jsontext.h"
#include "metrics.h"
#include "proxy.h"
#include "server.h"
#include "banned.h"

/* Where a request is; the worker steps run with the connection suspended. */
enum {
	PH_NEW,		/* headers in, nothing decided */
	PH_AUTH,	/* a worker authenticates */
	PH_AUTHED,	/* authenticated (or refused: x->resp) */
	PH_BODY,	/* the body arrives */
	PH_DRAIN,	/* answered (a 503): the body is read and dropped */
	PH_WORK,	/* a worker runs the handler */
	PH_WORKED,	/* the reply is ready */
	PH_DONE,	/* queued */
};

void
exchange_body(struct exchange *x, struct store_body *body)
{
	memset(body, 0, sizeof(*body));
	if (x->in_memory)
		body->data = (const unsigned char *)(x->small.len > 0 ?
		    x->small.buf : "");
	else
		body->path = x->spool;
	body->len = x->received;
}

/*
 * libmicrohttpd drops the blanks before a header's value but keeps those
 * after it; a value is taken without either (PROTOCOL.md 8.2), so one
 * that ends in blanks is copied without them, the copy kept with x.
 */
struct header_copy {
	struct header_copy *next;
	char value[];
};

const char *
exchange_value(struct exchange *x, const char *value)
{
	struct header_copy *c;
	size_t n;

	if (value == NULL)
		return NULL;
	n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (value[n] == '\0')
		return value;
	/* Out of memory: the value as sent, which then fails its checks. */
	if ((c = malloc(sizeof(*c) + n + 1)) == NULL)
		return value;
	memcpy(c->value, value, n);
	c->value[n] = '\0';
	c->next = x->copies;
	x->copies = c;
	return c->value;
}

const char *
exchange_header(struct exchange *x, const char *name)
{
	return exchange_value(x, MHD_lookup_connection_value(x->c,
	    MHD_HEADER_KIND, name));
}

/* ---- replies ---- */

static void
set_reply(struct exchange *x, unsigned int status, struct MHD_Response *r,
    const char *type)
{
	if (x->resp != NULL)
		MHD_destroy_response(x->resp);
	x->resp = r;
	x->status = status;
	if (r == NULL)
		return;
	(void)MHD_add_response_header(r, "Content-Type", type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
}

void
reply_bytes(struct exchange *x, unsigned int status, const char *type,
    const void *data, size_t len)
{
	set_reply(x, status, MHD_create_response_from_buffer(len, (void *)data,
	    MHD_RESPMEM_MUST_COPY), type);
}

void
reply_json(struct exchange *x, unsigned int status, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	char *line = NULL;
	size_t len;

	json_decref(body);
	/* One line, for whoever reads it with curl. */
	if (text != NULL && (line = malloc(strlen(text) + 2)) != NULL) {
		len = strlen(text);
		memcpy(line, text, len);
		line[len++] = '\n';
		line[len] = '\0';
	}
	free(text);
	if (line == NULL) {
		set_reply(x, 500, NULL, NULL);
		return;
	}
	set_reply(x, status, MHD_create_response_from_buffer_with_free_callback(
	    len, line, free), "application/json");
}

void
reply_error(struct exchange *x, unsigned int status, const char *msg)
{
	reply_json(x, status, json_pack("{s:o}", "error", json_text(msg)));
}

void
reply_fd(struct exchange *x, unsigned int status, const char *type, int fd,
    uint64_t len)
{
	struct MHD_Response *r = MHD_create_response_from_fd64(len, fd);

	if (r == NULL)
		(void)close(fd);
	set_reply(x, status, r, type);
}

void
reply_header(struct exchange *x, const char *name, const char *value)
{
	if (x->resp != NULL)
		(void)MHD_add_response_header(x->resp, name, value);
}

void
reply_retry(struct exchange *x, unsigned int status, unsigned int secs,
    const char *msg)
{
	char v[16];

	reply_error(x, status, msg);
	(void)snprintf(v, sizeof(v), "%u", secs);
	reply_header(x, "Retry-After", v);
}

void
reply_unavailable(struct exchange *x, const struct smimp_err *err)
{
	log_store(err, "%s %s", x->method, x->target);
	reply_error(x, 503, "store unavailable");
}

/* ---- routes ---- */

static int
method_matches(const char *want, const char *got)
{
	return strcmp(want, got) == 0 ||
	    (strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0);
}

/*
 * Does p[0..n) match a path with a '*' segment?  Then rest gets what
 * the '*' stood for.
 */
static int
segment_matches(const char *path, const char *p, size_t n, char *rest)
{
	const char *star = strchr(path, '*');
	size_t pre = (size_t)(star - path), post = strlen(star + 1);

	if (n <= pre + post || strncmp(p, path, pre) != 0 ||
	    strncmp(p + n - post, star + 1, post) != 0 ||
	    memchr(p + pre, '/', n - pre - post) != NULL)
		return 0;
	memcpy(rest, p + pre, n - pre - post);
	rest[n - pre - post] = '\0';
	return 1;
}

/*
 * The route for x's target, or NULL with a reply (404, 405).  Matching
 * is on the raw path as sent, the bytes the signature covers.
 */
static const struct route *
find_route(struct exchange *x)
{
	const char *base = x->srv->cfg.base_path;
	size_t blen = strlen(base), plen, n;
	const char *path = x->target, *p;
	int path_known = 0, segment_known = 0;
	size_t i;

	plen = strcspn(path, "?");
	for (i = 0; i < nroutes; i++) {
		const struct route *rt = &routes[i];

		p = path;
		n = plen;
		if (!(rt->flags & ROUTE_ROOT)) {
			if (n < blen || strncmp(p, base, blen) != 0)
				continue;
			p += blen;
			n -= blen;
		}
		if (strchr(rt->path, '*') != NULL) {
			if (!segment_matches(rt->path, p, n, x->rest))
				continue;
			path_known = segment_known = 1;
			if (method_matches(rt->method, x->method))
				return rt;
			continue;
		}
		if (rt->flags & ROUTE_PREFIX) {
			/*
			 * A path of its own (users/ADDRESS/prekeys/claim)
			 * asked with another method is that path's 405, not
			 * the prefix's (a lookup of users/ADDRESS/...).
			 */
			if (segment_known || n <= strlen(rt->path) ||
			    strncmp(p, rt->path, strlen(rt->path)) != 0)
				continue;
		} else if (n != strlen(rt->path) ||
		    strncmp(p, rt->path, n) != 0) {
			continue;
		}
		path_known = 1;
		if (!method_matches(rt->method, x->method))
			continue;
		n -= strlen(rt->path);
		memcpy(x->rest, p + strlen(rt->path), n);
		x->rest[n] = '\0';
		return rt;
	}
	if (path_known)
		reply_error(x, 405, "method not allowed");
	else
		reply_error(x, 404, "no such resource");
	return NULL;
}

/* ---- the body ---- */

/* How many times name occurs among the request's headers. */
struct count_arg {
	const char *name;
	unsigned int n;
};

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct count_arg *a = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, a->name) == 0)
		a->n++;
	return MHD_YES;
}

static unsigned int
header_count(struct exchange *x, const char *name)
{
	struct count_arg a = { name, 0 };

	(void)MHD_get_connection_values(x->c, MHD_HEADER_KIND, count_header,
	    &a);
	return a.n;
}

static uint64_t
body_cap(const struct exchange *x)
{
	return x->route->body == BODY_FILE ? LIVE(x->srv->cfg.max_message) :
	    x->route->body == BODY_SMALL ? SMALL_BODY_MAX :
	    x->route->body == BODY_LARGE ? LARGE_BODY_MAX : 0;
}

/*
 * What the headers say of the body, before authentication: refuse a
 * repeated or malformed Content-Length, one beside a Transfer-Encoding
 * (RFC 9112 6.3: a proxy in front may frame the body by the other one,
 * and smuggle a request in what is left), a body where none belongs,
 * and one declared past the route's cap.  0, or -1 with the reply set.
 */
static int
check_declared(struct exchange *x)
{
	const char *cl = exchange_header(x, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = exchange_header(x, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	uint64_t n;

	x->declared = UINT64_MAX;
	if (header_count(x, MHD_HTTP_HEADER_CONTENT_LENGTH) > 1 ||
	    header_count(x, MHD_HTTP_HEADER_TRANSFER_ENCODING) > 1) {
		reply_error(x, 400, "repeated Content-Length or "
		    "Transfer-Encoding");
		return -1;
	}
	if (cl != NULL && te != NULL) {
		reply_error(x, 400, "both Content-Length and "
		    "Transfer-Encoding");
		return -1;
	}
	if (cl != NULL) {
		if (parse_u64(cl, strlen(cl), &n) != 0) {
			reply_error(x, 400, "malformed Content-Length");
			return -1;
		}
		x->declared = n;
	} else if (te == NULL) {
		x->declared = 0;
	}
	if (x->route->body == BODY_NONE && x->declared != 0) {
		reply_error(x, 400, "this request takes no body");
		return -1;
	}
	if (x->declared != UINT64_MAX && x->declared > body_cap(x)) {
		reply_error(x, 413, x->route->body == BODY_FILE ?
		    "message too large" : "body too large");
		return -1;
	}
	return 0;
}

static int
body_open(struct exchange *x)
{
	struct smimp_err err;

	(void)crypto_generichash_init(&x->hash, NULL, 0, 32);
	if (x->route->body == BODY_NONE)
		return 0;
	/*
	 * A connection holds at most BODY_INLINE_MAX of a body in memory;
	 * a longer one (or one of unknown length) goes to a spool file,
	 * and a route that wants it in memory reads it there in a worker
	 * (body_load): so memory follows the workers, not the connections
	 * that are still sending.
	 */
	if (x->declared <= BODY_INLINE_MAX) {
		sbuf_init(&x->small, (size_t)x->declared);
		x->in_memory = 1;
		return 0;
	}
	x->spool_fd = tmpfile_beside(x->srv->spool_prefix, x->spool,
	    sizeof(x->spool), &err);
	if (x->spool_fd < 0) {
		log_warnx("%s", err.msg);
		reply_error(x, 503, "cannot spool the message");
		return -1;
	}
	return 0;
}

int
spool_reopen(const char *path, int *fd)
{
	int rd;

	if (fsync(*fd) != 0)
		return -1;
	rd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rd < 0)
		return -1;
	(void)close(*fd);
	*fd = rd;
	return 0;
}

/* Take a piece of the body; -1 drops the connection (over the cap). */
static int
body_take(struct exchange *x, const char *data, size_t len)
{
	if (len > body_cap(x) - x->received) {
		log_warnx("%s %s from %s: body past %llu bytes, dropped",
		    x->method, x->target, x->source,
		    (unsigned long long)body_cap(x));
		return -1;
	}
	x->received += len;
	(void)crypto_generichash_update(&x->hash, (const unsigned char *)data,
	    len);
	if (x->in_memory)
		return sbuf_add(&x->small, data, len);
	if (x->spool_fd >= 0 && !x->spool_failed &&
	    fd_write_all(x->spool_fd, data, len) != 0) {
		/*
		 * A full or failing disk: the rest of the body is read and
		 * dropped (the caps bound it), so that the client gets a
		 * 503 rather than a cut connection; what was written goes
		 * at once, to give the space back.
		 */
		log_warn("spool %s", x->spool);
		x->spool_failed = 1;
		if (ftruncate(x->spool_fd, 0) != 0)
			log_warn("spool %s: cannot give its space back",
			    x->spool);
	}
	return 0;
}

/*
 * A spooled body that its route reads in memory (BODY_SMALL,
 * BODY_LARGE): read into x->small, within the route's cap, and its
 * file gone.  0, or -1 with the reply set.
 */
static int
body_load(struct exchange *x)
{
	char buf[65536];
	ssize_t n;

	sbuf_init(&x->small, (size_t)body_cap(x));
	/* Written through a descriptor that cannot read: read anew. */
	(void)close(x->spool_fd);
	x->spool_fd = open(x->spool, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (x->spool_fd < 0)
		goto fail;
	while ((n = read(x->spool_fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sbuf_add(&x->small, buf, (size_t)n) != 0)
			goto fail;
	}
	(void)close(x->spool_fd);
	(void)unlink(x->spool);
	x->spool_fd = -1;
	x->in_memory = 1;
	return 0;
fail:
	log_warn("spool %s", x->spool);
	if (x->spool_fd >= 0)
		(void)close(x->spool_fd);
	(void)unlink(x->spool);
	x->spool_fd = -1;
	reply_error(x, 503, "cannot read the spooled body");
	return -1;
}

/*
 * The body is in: its hash must be the one the signature declared, and
 * a spooled body is on disk before anything refers to it.
 */
static int
body_finish(struct exchange *x)
{
	(void)crypto_generichash_final(&x->hash, x->body_hash, 32);
	if (x->spool_failed) {
		reply_error(x, 503, "cannot spool the message");
		return -1;
	}
	if (x->route->auth != AUTH_NONE && x->route->auth != AUTH_INVITE &&
	    sodium_memcmp(x->body_hash, x->sig.body_hash, 32) != 0) {
		reply_error(x, 400, "the body does not match "
		    REQSIG_H_BODY_HASH);
		return -1;
	}
	if (x->spool_fd >= 0 && x->route->body != BODY_FILE)
		return body_load(x);
	if (x->spool_fd >= 0 && spool_reopen(x->spool, &x->spool_fd) != 0) {
		log_warn("spool %s", x->spool);
		reply_error(x, 503, "cannot spool the message");
		return -1;
	}
	return 0;
}

/* ---- workers: the steps that may block ---- */

static void
run_step(struct exchange *x)
{
	if (x->phase == PH_AUTH) {
		(void)auth_request(x);
		x->phase = PH_AUTHED;
	} else {
		if (body_finish(x) == 0)
			x->route->handler(x);
		if (x->resp == NULL)
			reply_error(x, 500, "no reply");
		x->phase = PH_WORKED;
	}
}

static void *
worker_main(void *arg)
{
	struct server *srv = arg;
	struct exchange *x;

	pthread_mutex_lock(&srv->work_mu);
	for (;;) {
		while (srv->work_head == NULL && !srv->work_stop)
			pthread_cond_wait(&srv->work_cv, &srv->work_mu);
		if (srv->work_head == NULL)
			break;
		x = srv->work_head;
		srv->work_head = x->next;
		if (srv->work_head == NULL)
			srv->work_tail = NULL;
		pthread_mutex_unlock(&srv->work_mu);
		run_step(x);
		/*
		 * Resumed outside the lock (x belongs to the event thread
		 * again from here on), and before the step stops counting
		 * as busy, so that a drain waits for it: the daemon is not
		 * stopped under a resume.
		 */
		MHD_resume_connection(x->c);
		pthread_mutex_lock(&srv->work_mu);
		if (--srv->work_busy == 0 && srv->work_closing)
			pthread_cond_broadcast(&srv->work_idle);
	}
	pthread_mutex_unlock(&srv->work_mu);
	return NULL;
}

/*
 * Hand x to a worker with its connection suspended; -1 when the server
 * is stopping (then the caller answers 503 at once).
 */
static int
to_worker(struct exchange *x)
{
	struct server *srv = x->srv;

	pthread_mutex_lock(&srv->work_mu);
	if (srv->work_closing) {
		pthread_mutex_unlock(&srv->work_mu);
		return -1;
	}
	MHD_suspend_connection(x->c);
	x->next = NULL;
	if (srv->work_tail != NULL)
		srv->work_tail->next = x;
	else
		srv->work_head = x;
	srv->work_tail = x;
	srv->work_busy++;
	pthread_mutex_unlock(&srv->work_mu);
	/* Outside the lock: the worker woken does not wait for it. */
	pthread_cond_signal(&srv->work_cv);
	return 0;
}

/* ---- the request's life ---- */

/*
 * A daemon, and how many connections it has (for a reload's old one),
 * and whether a reload has replaced it.
 */
struct http_service {
	struct server *srv;
	struct MHD_Daemon *d;
	unsigned int conns;		/* atomic */
	int retired;			/* atomic */
};

static enum MHD_Result
queue_reply(struct exchange *x)
{
	enum MHD_Result ret;
	char secs[16];

	x->phase = PH_DONE;
	if (x->resp == NULL)
		return MHD_NO;
	/*
	 * A connection of a service that a reload replaced closes after
	 * its answer (the client connects anew, to the new service): a
	 * client that keeps its connections alive must not keep the old
	 * services, and with them every later reload, waiting.
	 */
	if (__atomic_load_n(&x->service->retired, __ATOMIC_RELAXED))
		reply_header(x, MHD_HTTP_HEADER_CONNECTION, "close");
	/* Whatever made it, a 503 says when to try again. */
	if (x->status == 503 && MHD_get_response_header(x->resp,
	    "Retry-After") == NULL) {
		(void)snprintf(secs, sizeof(secs), "%u", UNAVAILABLE_RETRY_S);
		reply_header(x, "Retry-After", secs);
	}
	ret = MHD_queue_response(x->c, x->status, x->resp);
	x->answered = ret == MHD_YES;
	log_request(x);
	return ret;
}

/*
 * x answered before its body was read: a refusal for good goes at once
 * (the body is never read), and so does one of the client's own making
 * (x->refused: a signer whose domain cannot be reached, say).  But a
 * 503 is worth a retry, and a client still sending its body would see
 * the connection cut instead of the answer: the body is read and
 * dropped first, as far as the route's cap, and the answer queued
 * after it.
 */
static enum MHD_Result
answer_early(struct exchange *x)
{
	if (x->status != 503 || x->declared == 0 || x->refused)
		return queue_reply(x);
	x->phase = PH_DRAIN;
	return MHD_YES;
}

/* Drop a piece of the body of an answered request; -1 past the cap. */
static int
body_drop(struct exchange *x, size_t len)
{
	if (len > body_cap(x) - x->received)
		return -1;
	x->received += len;
	return 0;
}

/* The client's address as logged, and its source as limits count it. */
static void
source_address(struct exchange *x)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(x->c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	(void)source_name(sa, x->source_net);
	/* An IPv6 one whole (whatever it carries); IPv4, mapped or not. */
	if (sa != NULL && sa->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)
	    (const void *)sa)->sin6_addr)) {
		if (inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, x->source,
		    sizeof(x->source)) == NULL)
			(void)snprintf(x->source, sizeof(x->source), "?");
	} else
		(void)snprintf(x->source, sizeof(x->source), "%s",
		    x->source_net);
}

/* Headers in: route, check what is declared, then authenticate. */
static enum MHD_Result
on_headers(struct exchange *x)
{
	conn_watch_request(x->c, x->started +
	    LIVE(x->srv->cfg.request_timeout));
	source_address(x);
	if (x->too_long) {
		reply_error(x, 414, "request target too long");
		return queue_reply(x);
	}
	x->route = find_route(x);
	if (x->route == NULL || check_declared(x) != 0)
		return queue_reply(x);
	if (x->route->auth == AUTH_NONE)
		return body_open(x) == 0 ? (x->phase = PH_BODY, MHD_YES) :
		    answer_early(x);
	/*
	 * A user's request whose nonce its handler claims only reads the
	 * store to authenticate (no write, nothing remote): done here, it
	 * spares a hand-over to a worker and back.
	 */
	if (x->route->auth == AUTH_USER &&
	    (x->route->flags & ROUTE_NONCE_LATER)) {
		if (auth_request(x) != 0 || body_open(x) != 0)
			return answer_early(x);
		x->phase = PH_BODY;
		return MHD_YES;
	}
	x->phase = PH_AUTH;
	if (to_worker(x) != 0) {
		reply_error(x, 503, "shutting down");
		return queue_reply(x);
	}
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	struct exchange *x = *state;

	(void)cls;
	(void)url;
	if (x == NULL)
		return MHD_NO;	/* no state: the URI callback failed */
	switch (x->phase) {
	case PH_NEW:
		x->c = c;
		(void)snprintf(x->method, sizeof(x->method), "%s", method);
		/*
		 * libmicrohttpd serves a later HTTP/1.x as 1.1; only 1.0
		 * and 1.1 are spoken here.
		 */
		if (strcmp(version, MHD_HTTP_VERSION_1_0) != 0 &&
		    strcmp(version, MHD_HTTP_VERSION_1_1) != 0) {
			source_address(x);
			reply_error(x, 505, "HTTP version not supported");
			return queue_reply(x);
		}
		return on_headers(x);
	case PH_AUTHED:
		if (x->resp != NULL || body_open(x) != 0)
			return answer_early(x);
		x->phase = PH_BODY;
		return MHD_YES;
	case PH_BODY:
		if (*upload_size != 0) {
			if (body_take(x, upload, *upload_size) != 0)
				return MHD_NO;
			*upload_size = 0;
			return MHD_YES;
		}
		x->phase = PH_WORK;
		if (to_worker(x) != 0) {
			reply_error(x, 503, "shutting down");
			return queue_reply(x);
		}
		return MHD_YES;
	case PH_DRAIN:
		if (*upload_size == 0)
			return queue_reply(x);
		if (body_drop(x, *upload_size) != 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	case PH_WORKED:
		return queue_reply(x);
	default:
		return MHD_NO;
	}
}

/* The request line is in: the raw target, as the signature covers it. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct exchange *x = calloc(1, sizeof(*x));
	size_t n = strlen(uri);

	if (x == NULL)
		return NULL;
	x->service = cls;
	x->srv = x->service->srv;
	x->c = c;
	x->spool_fd = -1;
	x->started = time_mono();
	x->started_us = time_mono_us();
	conn_watch_idle(c, LIVE(x->srv->cfg.header_timeout));
	x->too_long = n > TARGET_MAX;
	if (!x->too_long)
		memcpy(x->target, uri, n + 1);
	else
		memcpy(x->target, uri, TARGET_MAX);
	return x;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode toe)
{
	struct exchange *x = *state;
	struct server *srv = ((struct http_service *)cls)->srv;

	(void)toe;
	*state = NULL;
	conn_watch_idle(c, LIVE(srv->cfg.timeout) +
	    LIVE(srv->cfg.header_timeout));
	if (x == NULL)
		return;
	if (x->phase != PH_DONE && x->route != NULL)
		log_request(x);
	metrics_request(x->route != NULL ? (long)(x->route - routes) : -1,
	    x->answered ? x->status : 0, time_mono_us() - x->started_us);
	if (x->spool_fd >= 0) {
		(void)close(x->spool_fd);
		(void)unlink(x->spool);
	}
	sbuf_release(&x->small);
	if (x->resp != NULL)
		MHD_destroy_response(x->resp);
	while (x->copies != NULL) {
		struct header_copy *copy = x->copies;

		x->copies = copy->next;
		free(copy);
	}
	free(x);
}

/* ---- the daemon ---- */

static int
read_pem(const char *path, char **out, struct smimp_err *err)
{
	unsigned char *buf;
	size_t len;

	if (file_read_all(path, 1024 * 1024, &buf, &len, err) != 0)
		return -1;
	*out = (char *)buf;
	return 0;
}

/*
 * Descriptors for what is not a client's connection: the store, the
 * log, the listening sockets and the threads' own, the metrics
 * listener's connections, and the connections to other servers (each
 * relay worker's, with the file of the message it sends, and the
 * lookups that at most half the workers make).
 */
static unsigned int
fd_reserve(const struct server *srv)
{
	return 128 + srv->cfg.workers + 2 * srv->cfg.relay_workers;
}

/*
 * How many connections to take: room for each, whatever the default,
 * is two descriptors (its socket, and the spool file of a body it sends
 * or the file of one it fetches) and fd_reserve besides.  Where the
 * limit cannot be raised that far, fewer are taken than the setting
 * says, so that clients who hold every connection leave the store, the
 * relay and the uploads under way their descriptors.
 */
static unsigned int
fd_connections(const struct server *srv)
{
	unsigned int want = srv->cfg.connections, fit;
	rlim_t need = (rlim_t)want * 2 + fd_reserve(srv);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 &&
		    getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return want;
	}
	if (rl.rlim_cur >= need)
		return want;
	fit = rl.rlim_cur > fd_reserve(srv) + 2 ?
	    (unsigned int)((rl.rlim_cur - fd_reserve(srv)) / 2) : 1;
	log_warnx("the limit of %llu open files leaves room for %u "
	    "connections, not %u", (unsigned long long)rl.rlim_cur, fit,
	    want);
	return fit;
}

static int
workers_start(struct server *srv)
{
	unsigned int i;

	if (pthread_mutex_init(&srv->work_mu, NULL) != 0 ||
	    pthread_cond_init(&srv->work_cv, NULL) != 0 ||
	    pthread_cond_init(&srv->work_idle, NULL) != 0)
		return -1;
	srv->work_locks = 1;
	for (i = 0; i < srv->cfg.workers; i++) {
		if (pthread_create(&srv->workers[i], NULL, worker_main,
		    srv) != 0)
			return -1;
		srv->nworkers = i + 1;
	}
	return 0;
}

/* Let queued and running steps finish, refuse new ones, then stop. */
static void
workers_stop(struct server *srv, int drain_first)
{
	unsigned int i;

	if (!srv->work_locks)
		return;
	pthread_mutex_lock(&srv->work_mu);
	srv->work_closing = 1;
	while (drain_first && srv->work_busy > 0)
		pthread_cond_wait(&srv->work_idle, &srv->work_mu);
	srv->work_stop = 1;
	pthread_cond_broadcast(&srv->work_cv);
	pthread_mutex_unlock(&srv->work_mu);
	for (i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
	srv->nworkers = 0;
}

int
listen_socket(const struct sockaddr_storage *sa, socklen_t len,
    const char *name, int backlog, int *fd, struct smimp_err *err)
{
	int one = 1, zero = 0;

	*fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 ||
	    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    /* [::] takes IPv4 clients too, whatever the system's default. */
	    (sa->ss_family == AF_INET6 && setsockopt(*fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
	    bind(*fd, (const struct sockaddr *)sa, len) != 0 ||
	    listen(*fd, backlog) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot listen on %s",
		    name);
		if (*fd >= 0)
			(void)close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

int
http_listen(struct server *srv, struct smimp_err *err)
{
	if (!srv->cfg.plain_http && (read_pem(srv->cfg.cert, &srv->tls_cert,
	    err) != 0 || read_pem(srv->cfg.key, &srv->tls_key, err) != 0))
		return -1;
	return listen_socket(&srv->cfg.listen_addr, srv->cfg.listen_addrlen,
	    srv->cfg.listen, 1024, &srv->listen_fd, err);
}

/*
 * What one connection may hold, its request's headers included: a
 * delivery's two recipient lists (8 KiB each), its proofs of work (12.5
 * KiB) and introductions (8 KiB) with the rest, and room to read.
 */
#define HTTP_CONN_MEMORY	(64 * 1024)

/* The PEM texts read for a daemon, the key wiped. */
static void
pem_free(char *cert, char *key)
{
	free(cert);
	if (key != NULL) {
		sodium_memzero(key, strlen(key));
		free(key);
	}
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct http_service *hs = cls;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		(void)__atomic_fetch_add(&hs->conns, 1, __ATOMIC_RELAXED);
		sources_opened(hs->srv->sources, sa);
	} else {
		(void)__atomic_fetch_sub(&hs->conns, 1, __ATOMIC_RELAXED);
		sources_closed(hs->srv->sources, sa);
	}
	conn_watch_notify(hs->srv, c, ctx, code);
}

/*
 * connections-per-address, counted per source (sources.h): an IPv6
 * client has a /64 of addresses to take, and they count as one.
 */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct http_service *hs = cls;

	(void)len;
	/* LIVE: a reload sets it while the daemons accept. */
	return sources_admit(hs->srv->sources, sa,
	    LIVE(hs->srv->cfg.per_address)) ? MHD_YES : MHD_NO;
}

/*
 * With proxy-from set, proxy.c accepts the connections (it must read a
 * load balancer's header first) and hands each over (http_adopt): the
 * daemon then has no listening socket.  service_mu guards srv->http
 * against a reload that replaces it meanwhile.
 */
static pthread_mutex_t service_mu = PTHREAD_MUTEX_INITIALIZER;

int
http_adopt(struct server *srv, int fd, const struct sockaddr *sa,
    socklen_t len)
{
	enum MHD_Result r = MHD_NO;

	pthread_mutex_lock(&service_mu);
	if (srv->http != NULL)
		r = MHD_add_connection(srv->http->d, fd, sa, len);
	else
		(void)close(fd);
	pthread_mutex_unlock(&service_mu);
	/* MHD closed it on failure. */
	return r == MHD_YES ? 0 : -1;
}

/*
 * A daemon on fd with the settings as they are and the PEM cert and key
 * (NULL for plain HTTP), which are wiped and freed; NULL on failure,
 * and fd is still the caller's.  fd -1: the connections come through
 * http_adopt.
 */
static struct http_service *
service_start(struct server *srv, int fd, char *cert, char *key)
{
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct http_service *hs = calloc(1, sizeof(*hs));
	unsigned int conns;
	/* The listening socket, when there is one. */
	struct MHD_OptionItem listen_opt[2] = {
		{ fd < 0 ? MHD_OPTION_END : MHD_OPTION_LISTEN_SOCKET, fd,
		    NULL },
		{ MHD_OPTION_END, 0, NULL }
	};

	if (cert != NULL)
		flags |= MHD_USE_TLS;
	if (fd < 0)
		flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (hs != NULL) {
		conns = fd_connections(srv);
		hs->srv = srv;
		hs->d = MHD_start_daemon(flags, fd < 0 ? 0 : srv->cfg.port,
		    on_accept, hs, on_request, srv,
		    /* First, so that every line of the library's is ours. */
		    MHD_OPTION_EXTERNAL_LOGGER, log_library, NULL,
		    MHD_OPTION_ARRAY, listen_opt,
		    MHD_OPTION_THREAD_POOL_SIZE, srv->cfg.threads,
		    MHD_OPTION_CONNECTION_LIMIT, conns,
		    MHD_OPTION_CONNECTION_TIMEOUT, srv->cfg.timeout,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)HTTP_CONN_MEMORY,
		    MHD_OPTION_URI_LOG_CALLBACK, on_uri, hs,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, hs,
		    MHD_OPTION_NOTIFY_CONNECTION, on_connection, hs,
		    cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
		    cert, MHD_OPTION_HTTPS_MEM_KEY, key,
		    /* TLS 1.2 and 1.3 only. */
		    MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
		    "+VERS-TLS1.2",
		    MHD_OPTION_END);
		if (hs->d == NULL) {
			free(hs);
			hs = NULL;
		}
	}
	pem_free(cert, key);
	return hs;
}

/* Stop it: its connections close, its listening socket too. */
static void
service_stop(struct http_service *hs)
{
	MHD_stop_daemon(hs->d);
	free(hs);
}

int
http_start(struct server *srv, struct smimp_err *err)
{
	char *cert = srv->tls_cert, *key = srv->tls_key;
	struct http_service *hs;

	srv->tls_cert = srv->tls_key = NULL;
	if (srv->sources == NULL && (srv->sources = sources_new()) == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
		goto fail;
	}
	if (workers_start(srv) != 0 || conn_watch_start(srv) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start threads");
		goto fail;
	}
	hs = service_start(srv, srv->cfg.nproxies > 0 ? -1 : srv->listen_fd,
	    cert, key);
	cert = key = NULL;
	if (hs == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot listen on %s",
		    srv->cfg.listen);
		goto fail;
	}
	pthread_mutex_lock(&service_mu);
	srv->http = hs;
	pthread_mutex_unlock(&service_mu);
	if (srv->cfg.nproxies == 0) {
		srv->listen_fd = -1;	/* the daemon's now */
		return 0;
	}
	/* proxy.c takes the listening socket, and closes it at the end. */
	if (proxy_accept_start(srv, err) == 0)
		return 0;
	pthread_mutex_lock(&service_mu);
	srv->http = NULL;
	pthread_mutex_unlock(&service_mu);
	service_stop(hs);
fail:
	workers_stop(srv, 0);
	conn_watch_stop(srv);
	pem_free(cert, key);
	return -1;
}

int
http_restart(struct server *srv, struct smimp_err *err)
{
	const union MHD_DaemonInfo *di;
	struct http_service *hs;
	char *cert = NULL, *key = NULL;
	MHD_socket old;
	int fd;

	if (srv->nretiring == HTTP_RETIRING_MAX)
		return smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "the %d "
		    "services of earlier reloads still have connections",
		    HTTP_RETIRING_MAX);
	if (!srv->cfg.plain_http && (read_pem(srv->cfg.cert, &cert,
	    err) != 0 || read_pem(srv->cfg.key, &key, err) != 0)) {
		pem_free(cert, NULL);
		return -1;
	}
	/*
	 * The same socket: no connection is refused meanwhile.  Behind
	 * load balancers proxy.c keeps it and hands over to the new one.
	 */
	fd = -1;
	if (srv->cfg.nproxies == 0) {
		di = MHD_get_daemon_info(srv->http->d,
		    MHD_DAEMON_INFO_LISTEN_FD);
		fd = di != NULL ? fcntl(di->listen_fd, F_DUPFD_CLOEXEC, 0) : -1;
		if (fd < 0) {
			pem_free(cert, key);
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot "
			    "share the listening socket");
		}
	}
	hs = service_start(srv, fd, cert, key);
	if (hs == NULL) {
		if (fd >= 0)
			(void)close(fd);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start the "
		    "HTTP service%s", srv->cfg.plain_http ? "" :
		    " (does the key match the certificate?)");
	}
	if (fd >= 0) {
		old = MHD_quiesce_daemon(srv->http->d);
		if (old != MHD_INVALID_SOCKET)
			(void)close(old);
	}
	__atomic_store_n(&srv->http->retired, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&service_mu);
	srv->retiring[srv->nretiring++] = srv->http;
	srv->http = hs;
	pthread_mutex_unlock(&service_mu);
	return 0;
}

void
http_reap(struct server *srv)
{
	unsigned int i = 0;

	while (i < srv->nretiring) {
		if (__atomic_load_n(&srv->retiring[i]->conns,
		    __ATOMIC_RELAXED) != 0) {
			i++;
			continue;
		}
		service_stop(srv->retiring[i]);
		srv->retiring[i] = srv->retiring[--srv->nretiring];
		log_debug("reload: an earlier HTTP service is done");
	}
}

void
http_stop(struct server *srv)
{
	struct http_service *hs;
	MHD_socket ls;

	if (srv->http == NULL)
		return;
	/* No new connections: the listening socket is ours again, to close. */
	if (srv->cfg.nproxies > 0) {
		proxy_accept_stop(srv);
	} else {
		ls = MHD_quiesce_daemon(srv->http->d);
		if (ls != MHD_INVALID_SOCKET)
			(void)close(ls);
	}
	workers_stop(srv, 1);
	pthread_mutex_lock(&service_mu);
	hs = srv->http;
	srv->http = NULL;
	pthread_mutex_unlock(&service_mu);
	service_stop(hs);
	/* No request is with a worker any more: what is left is idle. */
	while (srv->nretiring > 0)
		service_stop(srv->retiring[--srv->nretiring]);
	conn_watch_stop(srv);
	sources_free(srv->sources);
	srv->sources = NULL;
}
