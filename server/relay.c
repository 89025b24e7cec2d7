/*
 * relay.c - store-and-forward between domains.
 *
 * Outbound: messages for other domains wait in a durable queue; a
 * thread delivers each to the recipient domain's server in a request
 * signed by this server's key, retrying with exponential backoff and,
 * past the give-up time, leaving a signed bounce notice in the sender's
 * mailbox.  Inbound: a delivery is accepted only if the request is
 * signed by the sending domain's published server key and the sender's
 * delivery stamp verifies under the identity log its domain serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "batch.h"
#include "idlog.h"
#include "message.h"
#include "remote.h"
#include "reqsig.h"
#include "stamp.h"
#include "util.h"
#include "server.h"
#include "banned.h"

#define RELAY_IDLE_MS	200
#define CACHE_SLOTS	256
#define CACHE_TTL	300	/* seconds a fetched key or log is trusted */

/*
 * What other domains publish (server keys, identity logs), fetched over
 * HTTPS, kept for CACHE_TTL seconds.
 */
struct cache_entry {
	char key[ADDRESS_MAX + 16];
	unsigned char *value;
	size_t len;
	int64_t expires;
};
static struct cache_entry cache[CACHE_SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* A copy of the cached value (malloc'd) or NULL. */
static unsigned char *
cache_get(const char *key, size_t *len)
{
	unsigned char *out = NULL;
	size_t i;

	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].value == NULL || strcmp(cache[i].key, key) != 0)
			continue;
		if (cache[i].expires > time_now() &&
		    (out = malloc(cache[i].len + 1)) != NULL) {
			memcpy(out, cache[i].value, cache[i].len);
			*len = cache[i].len;
		}
		break;
	}
	pthread_mutex_unlock(&cache_mu);
	return out;
}

static void
cache_put(const char *key, const unsigned char *value, size_t len)
{
	struct cache_entry *slot = NULL;
	size_t i;

	if (strlen(key) >= sizeof(cache[0].key))
		return;
	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].value != NULL && strcmp(cache[i].key, key) == 0) {
			slot = &cache[i];
			break;
		}
		if (slot == NULL || cache[i].value == NULL ||
		    (slot->value != NULL && cache[i].expires < slot->expires))
			slot = &cache[i];
	}
	free(slot->value);
	slot->value = malloc(len + 1);
	if (slot->value != NULL) {
		memcpy(slot->value, value, len);
		slot->len = len;
		memcpy(slot->key, key, strlen(key) + 1);
		slot->expires = time_now() + CACHE_TTL;
	}
	pthread_mutex_unlock(&cache_mu);
}

static struct remote *
new_remote(const struct server *srv, struct smimp_err *err)
{
	struct remote_opts o;

	memset(&o, 0, sizeof(o));
	o.resolve = srv->cfg.resolve[0] != '\0' ? srv->cfg.resolve : NULL;
	o.cacert = srv->cfg.cacert[0] != '\0' ? srv->cfg.cacert : NULL;
	o.allow_http = srv->cfg.allow_http[0] != '\0' ? srv->cfg.allow_http :
	    NULL;
	/*
	 * A domain that failed discovery is not asked again for each of its
	 * queued messages, but no longer than until the first retry.
	 */
	o.negative_secs = srv->cfg.retry_base < REMOTE_NEGATIVE_SECS ?
	    srv->cfg.retry_base : REMOTE_NEGATIVE_SECS;
	if (o.negative_secs == 0)
		o.negative_secs = 1;
	return remote_new(&o, err);
}

/* A bounce notice, signed by this server, into the sender's mailbox. */
static void
bounce(struct server *srv, const struct outbound *ob, const char *reason)
{
	struct smimp_err err;
	unsigned char sig[64];
	char when[TIME_STRLEN], signer[300], mid[600];
	struct sbuf sb;

	sbuf_init(&sb, 64 * 1024);
	time_format(time_now(), when);
	if (sbuf_addf(&sb, "smimp-bounce/1\nserver: %s\nmessage-id: %s\n"
	    "recipients: %s\ndate: %s\nreason: %s\n", srv->cfg.domain,
	    ob->message_id, ob->recipients, when, reason) != 0)
		goto out;
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, sb.len,
	    srv->server_sk);
	if (sbuf_add(&sb, "signature: ", 11) || sbuf_add_b64(&sb, sig, 64) ||
	    sbuf_add(&sb, "\n", 1))
		goto out;
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	(void)snprintf(mid, sizeof(mid), "bounce:%s:%s", ob->domain,
	    ob->message_id);
	if (store_deliver(srv->store, ob->sender, signer, mid,
	    (unsigned char *)sb.buf, sb.len, &err) != 0)
		log_line("bounce for %s: %s", ob->sender, err.msg);
	else
		log_line("bounced %s to %s: %s", ob->message_id, ob->sender,
		    reason);
out:
	sbuf_release(&sb);
}

/* One delivery attempt: 0 delivered, 1 retry later, 2 permanent failure. */
static int
attempt(struct server *srv, struct remote *r, const struct outbound *ob,
    char *reason, size_t cap)
{
	struct remote_reply rep;
	struct smimp_err err;
	char base[512], signer[300], h[6][8400];
	const char *extra[7];
	int i, ret;

	smimp_err_clear(&err);
	if (remote_base(r, ob->domain, base, sizeof(base), &err) != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return err.code == SMIMP_EXIT_TEMPFAIL ? 1 : 1;
	}
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	(void)snprintf(h[0], sizeof(h[0]), "Smimp-From: %s", ob->sender);
	(void)snprintf(h[1], sizeof(h[1]), "Smimp-To: %s", ob->recipients);
	(void)snprintf(h[2], sizeof(h[2]), "Smimp-Stamp-To: %s", ob->all);
	(void)snprintf(h[3], sizeof(h[3]), "Smimp-Message-Id: %s",
	    ob->message_id);
	(void)snprintf(h[4], sizeof(h[4]), "Smimp-Stamp: %s", ob->stamp);
	(void)snprintf(h[5], sizeof(h[5]), "Smimp-Stamp-Date: %s",
	    ob->stamp_date);
	for (i = 0; i < 6; i++)
		extra[i] = h[i];
	extra[6] = NULL;
	if (remote_request(r, "POST", ob->domain, base, "/v1/deliver",
	    ob->data, ob->len, signer, srv->server_sk, extra,
	    REMOTE_MAX_STATUS, &rep, &err) != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return 1;
	}
	if (rep.status >= 200 && rep.status < 300)
		ret = 0;
	else if (rep.status >= 500 || rep.status == 429 || rep.status == 408)
		ret = 1;
	else
		ret = 2;
	(void)snprintf(reason, cap, "%s answered HTTP %ld%s%s", ob->domain,
	    rep.status, rep.error[0] != '\0' ? ": " : "", rep.error);
	remote_reply_release(&rep);
	return ret;
}

static int64_t
backoff(const struct server *srv, unsigned int attempts)
{
	uint64_t d = srv->cfg.retry_base;

	while (attempts-- > 0 && d < srv->cfg.retry_max)
		d *= 2;
	return (int64_t)(d < srv->cfg.retry_max ? d : srv->cfg.retry_max);
}

/* Is id being delivered by a worker now?  Under relay_mu. */
static int
in_flight(const struct server *srv, int64_t id)
{
	unsigned int i, j;

	for (i = 0; i < srv->relay_running; i++)
		for (j = 0; j < BATCH_MAX; j++)
			if (srv->relay_inflight[i][j] == id)
				return 1;
	return 0;
}

/*
 * Refill the shared batch with due entries after the cursor that no
 * worker holds.  Under relay_mu.  Returns how many the query found.
 */
static size_t
refill(struct server *srv)
{
	struct outbound due[RELAY_BATCH];
	struct smimp_err err;
	size_t n = 0, i;

	smimp_err_clear(&err);
	if (store_outbound_due(srv->store, time_now(), srv->relay_cursor, due,
	    RELAY_BATCH, &n, &err) != 0) {
		log_line("relay: %s", err.msg);
		return 0;
	}
	srv->relay_nbatch = srv->relay_next = 0;
	for (i = 0; i < n; i++) {
		srv->relay_cursor = due[i].id;
		if (in_flight(srv, due[i].id))
			outbound_release(&due[i]);
		else
			srv->relay_batch[srv->relay_nbatch++] = due[i];
	}
	return n;
}

static void
idle_wait(struct server *srv)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += RELAY_IDLE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&srv->relay_cv, &srv->relay_mu, &ts);
}

/*
 * The next entries for worker w to deliver, into obs: the next due one
 * and those after it for the same domain, up to BATCH_MAX and
 * RELAY_BATCH_BYTES.  Returns how many, 0 when stopping.  Scans the
 * queue in id order from a cursor, wrapping to the start when it runs
 * out, and sleeps only when a whole scan from the start finds nothing.
 */
static size_t
take_work(struct server *srv, unsigned int w, struct outbound *obs)
{
	size_t found, n, bytes;
	int from_start;
	struct outbound *next;

	pthread_mutex_lock(&srv->relay_mu);
	memset(srv->relay_inflight[w], 0, sizeof(srv->relay_inflight[w]));
	for (;;) {
		if (srv->relay_stop) {
			pthread_mutex_unlock(&srv->relay_mu);
			return 0;
		}
		for (n = 0, bytes = 0; srv->relay_next < srv->relay_nbatch &&
		    n < BATCH_MAX; n++) {
			next = &srv->relay_batch[srv->relay_next];
			if (n > 0 && (strcmp(next->domain, obs[0].domain) != 0 ||
			    bytes + next->len > RELAY_BATCH_BYTES))
				break;
			obs[n] = *next;
			srv->relay_next++;
			bytes += obs[n].len;
			srv->relay_inflight[w][n] = obs[n].id;
		}
		if (n > 0) {
			pthread_mutex_unlock(&srv->relay_mu);
			return n;
		}
		from_start = srv->relay_cursor == 0;
		found = refill(srv);
		if (srv->relay_nbatch > 1)
			pthread_cond_broadcast(&srv->relay_cv);
		if (srv->relay_nbatch > 0 || found == RELAY_BATCH)
			continue;
		srv->relay_cursor = 0;
		if (!from_start)
			continue;
		idle_wait(srv);
	}
}

struct worker {
	struct server *srv;
	unsigned int index;
};

/* A batch body for these queue entries. */
static int
batch_body(const struct outbound *obs, size_t n, struct sbuf *sb)
{
	struct batch_item it;
	size_t i;

	for (i = 0; i < n; i++) {
		it.from = obs[i].sender;
		it.to = obs[i].recipients;
		it.all = obs[i].all;
		it.mid = obs[i].message_id;
		it.stamp = obs[i].stamp;
		it.sdate = obs[i].stamp_date;
		it.body = obs[i].data;
		it.len = obs[i].len;
		if (batch_add(sb, &it) != 0)
			return -1;
	}
	return 0;
}

/* What an HTTP status means for a delivery: 0 done, 1 retry, 2 never. */
static int
status_outcome(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	if (status >= 500 || status == 429 || status == 408)
		return 1;
	return 2;
}

/*
 * Deliver several messages for one domain in one request; res and
 * reasons get each one's outcome.  A peer that does not take batches,
 * or refuses this one as a whole, gets them one by one.
 */
static void
attempt_batch(struct server *srv, struct remote *r,
    const struct outbound *obs, size_t n, int *res, char (*reasons)[1024])
{
	struct remote_reply rep;
	struct smimp_err err;
	char base[512], signer[300];
	struct sbuf body;
	json_t *list = NULL, *item;
	size_t i;
	int all = -1;

	if (n == 1) {
		res[0] = attempt(srv, r, &obs[0], reasons[0], 1024);
		return;
	}
	smimp_err_clear(&err);
	sbuf_init(&body, RELAY_BATCH_BYTES + 64 * 1024);
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	if (batch_body(obs, n, &body) != 0)
		goto singly;
	if (remote_base(r, obs[0].domain, base, sizeof(base), &err) != 0 ||
	    remote_request(r, "POST", obs[0].domain, base, "/v1/deliver-batch",
	    body.buf, body.len, signer, srv->server_sk, NULL,
	    REMOTE_MAX_STATUS, &rep, &err) != 0) {
		for (i = 0; i < n; i++) {
			res[i] = 1;
			(void)snprintf(reasons[i], 1024, "%s", err.msg);
		}
		goto out;
	}
	if (rep.status == 200)
		list = json_loadb(rep.body.buf, rep.body.len, 0, NULL);
	else if (status_outcome(rep.status) == 1)
		all = 1;
	if (all == 1 || (rep.status == 200 && json_array_size(list) != n))
		for (i = 0; i < n; i++) {
			res[i] = 1;
			(void)snprintf(reasons[i], 1024, "%s answered HTTP %ld%s%s",
			    obs[0].domain, rep.status, rep.error[0] != '\0' ?
			    ": " : "", rep.error);
		}
	else if (rep.status == 200)
		json_array_foreach(list, i, item) {
			const char *mid = json_string_value(json_object_get(item,
			    "message_id"));
			const char *why = json_string_value(json_object_get(item,
			    "error"));
			long st = (long)json_integer_value(json_object_get(item,
			    "status"));

			if (mid == NULL || strcmp(mid, obs[i].message_id) != 0)
				st = 502;	/* not an answer for this one */
			res[i] = status_outcome(st);
			(void)snprintf(reasons[i], 1024, "%s answered %ld%s%s",
			    obs[i].domain, st, why != NULL ? ": " : "",
			    why != NULL ? why : "");
		}
	remote_reply_release(&rep);
	json_decref(list);
	if (rep.status == 200 || all == 1)
		goto out;
singly:
	for (i = 0; i < n; i++)
		res[i] = attempt(srv, r, &obs[i], reasons[i], 1024);
out:
	sbuf_release(&body);
}

static void *
relay_main(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	unsigned int w = wk->index;
	struct remote *r;
	struct smimp_err err;
	struct outbound *obs;
	int64_t done[BATCH_MAX];
	int res[BATCH_MAX];
	char (*reasons)[1024];
	size_t n, i, ndone;

	free(wk);
	smimp_err_clear(&err);
	obs = calloc(BATCH_MAX, sizeof(*obs));
	reasons = calloc(BATCH_MAX, sizeof(*reasons));
	r = new_remote(srv, &err);
	if (r == NULL || obs == NULL || reasons == NULL) {
		log_line("relay: %s", r == NULL ? err.msg : "out of memory");
		goto out;
	}
	while ((n = take_work(srv, w, obs)) > 0) {
		attempt_batch(srv, r, obs, n, res, reasons);
		for (i = 0, ndone = 0; i < n; i++) {
			if (res[i] == 0) {
				log_line("relayed %s to %s", obs[i].message_id,
				    obs[i].domain);
				done[ndone++] = obs[i].id;
			} else if (res[i] == 2 || time_now() -
			    obs[i].first_try >= (int64_t)srv->cfg.give_up) {
				bounce(srv, &obs[i], reasons[i]);
				done[ndone++] = obs[i].id;
			} else {
				log_line("relay %s to %s: %s; retrying",
				    obs[i].message_id, obs[i].domain,
				    reasons[i]);
				(void)store_outbound_retry(srv->store, obs[i].id,
				    time_now() + backoff(srv, obs[i].attempts),
				    &err);
			}
		}
		if (store_outbound_done_many(srv->store, done, ndone, &err) != 0)
			log_line("relay: %s", err.msg);
		for (i = 0; i < n; i++)
			outbound_release(&obs[i]);
	}
out:
	free(reasons);
	free(obs);
	remote_free(r);
	return NULL;
}

int
relay_start(struct server *srv)
{
	struct worker *wk;
	unsigned int i;

	if (pthread_mutex_init(&srv->relay_mu, NULL) != 0 ||
	    pthread_cond_init(&srv->relay_cv, NULL) != 0)
		return -1;
	for (i = 0; i < srv->cfg.relay_workers; i++) {
		wk = malloc(sizeof(*wk));
		if (wk == NULL)
			break;
		wk->srv = srv;
		wk->index = i;
		pthread_mutex_lock(&srv->relay_mu);
		if (pthread_create(&srv->relay[i], NULL, relay_main, wk) != 0) {
			pthread_mutex_unlock(&srv->relay_mu);
			free(wk);
			break;
		}
		srv->relay_running = i + 1;
		pthread_mutex_unlock(&srv->relay_mu);
	}
	return srv->relay_running > 0 ? 0 : -1;
}

void
relay_wake(struct server *srv)
{
	if (srv->relay_running == 0)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	pthread_cond_signal(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
}

void
relay_stop(struct server *srv)
{
	unsigned int i;

	if (srv->relay_running == 0)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	srv->relay_stop = 1;
	pthread_cond_broadcast(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
	for (i = 0; i < srv->relay_running; i++)
		pthread_join(srv->relay[i], NULL);
	while (srv->relay_next < srv->relay_nbatch)
		outbound_release(&srv->relay_batch[srv->relay_next++]);
	srv->relay_running = 0;
}

/* ---- inbound ---- */

static enum MHD_Result
answer(struct MHD_Connection *c, unsigned int code, const char *msg,
    unsigned int *status)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char body[300];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);

	*status = code;
	r = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *
hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/*
 * A connection to other servers, made only when the cache misses:
 * most deliveries need none.
 */
struct lazy_remote {
	const struct server *srv;
	struct remote *r;
};

static struct remote *
lazy_get(struct lazy_remote *lr, struct smimp_err *err)
{
	if (lr->r == NULL)
		lr->r = new_remote(lr->srv, err);
	return lr->r;
}

/* The sending domain's server key, from its published metadata. */
static int
peer_key(struct lazy_remote *lr, const char *domain, char *base, size_t cap,
    unsigned char key[32], struct smimp_err *err)
{
	struct remote *r;
	char ckey[ADDRESS_MAX + 16];
	unsigned char *cached, both[32 + 512];
	size_t clen, blen;

	/* Cached: the base URL, then the 32-byte key. */
	(void)snprintf(ckey, sizeof(ckey), "key:%s", domain);
	cached = cache_get(ckey, &clen);
	if (cached != NULL && clen > 32 && clen - 32 < cap) {
		memcpy(key, cached, 32);
		memcpy(base, cached + 32, clen - 32);
		base[clen - 32] = '\0';
		free(cached);
		return 0;
	}
	free(cached);
	if ((r = lazy_get(lr, err)) == NULL ||
	    remote_base(r, domain, base, cap, err) != 0 ||
	    remote_server_key(r, domain, base, key, err) != 0)
		return -1;
	blen = strlen(base);
	if (blen < sizeof(both) - 32) {
		memcpy(both, key, 32);
		memcpy(both + 32, base, blen);
		cache_put(ckey, both, 32 + blen);
	}
	return 0;
}

/* The sender's identity log as its own domain serves it, verified. */
static int
sender_log(struct lazy_remote *lr, const char *domain, const char *base,
    const char *sender, struct idlog *log, struct smimp_err *err)
{
	struct remote *r;
	struct remote_reply rep;
	char path[400], ckey[ADDRESS_MAX + 16];
	unsigned char *cached;
	size_t clen;
	int ret;

	(void)snprintf(ckey, sizeof(ckey), "log:%s", sender);
	cached = cache_get(ckey, &clen);
	if (cached != NULL) {
		/* Verified when it was cached. */
		ret = idlog_parse_verified(log, cached, clen, err);
		free(cached);
		return ret;
	}
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", sender);
	if ((r = lazy_get(lr, err)) == NULL ||
	    remote_request(r, "GET", domain, base, path, NULL, 0, NULL, NULL,
	    NULL, IDLOG_MAX_BYTES, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		remote_reply_release(&rep);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s does not "
		    "publish %s", domain, sender);
	}
	ret = idlog_parse(log, (unsigned char *)rep.body.buf, rep.body.len,
	    err);
	if (ret == 0)
		cache_put(ckey, (unsigned char *)rep.body.buf, rep.body.len);
	remote_reply_release(&rep);
	return ret;
}

static int
in_list(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0' ||
		    p[n] == ' '))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* A delivery once checked: its sender and its recipients here. */
struct checked {
	char sender[ADDRESS_MAX + 1];
	char (*rcpts)[ADDRESS_MAX + 1];	/* MSG_MAX_RECIPIENTS of them */
	size_t n;
};

/*
 * Check one delivery from the server of domain: the sender is of that
 * domain, which publishes the sender's identity log; the stamp verifies
 * under it; every recipient is stamped, ours and a user.  Returns 0, or
 * the HTTP status with *why.
 */
static unsigned int
check_delivery(struct server *srv, struct lazy_remote *lr,
    const char *domain, const char *base, const struct batch_item *d,
    struct checked *ck, const char **why)
{
	char sorted[8192], list[8192], *p, *comma;
	unsigned char *ulog;
	struct smimp_err err;
	struct idlog log;
	size_t ulen;
	int bad, n;

	ck->n = 0;
	*why = "incomplete delivery";
	if (d->from == NULL || d->to == NULL || d->all == NULL ||
	    d->mid == NULL || d->stamp == NULL || d->sdate == NULL ||
	    d->len == 0 || strlen(d->to) >= sizeof(list) ||
	    !message_id_valid(d->mid))
		return 400;
	*why = "a server relays only for its own domain";
	if (address_normalize(d->from, ck->sender, &err) != 0 ||
	    strcmp(address_domain(ck->sender), domain) != 0)
		return 403;
	if (sender_log(lr, domain, base, ck->sender, &log, &err) != 0) {
		log_line("deliver from %s: %s", domain, err.msg);
		*why = "the sender's domain does not publish that sender";
		return 403;
	}
	bad = log.revoked || stamp_recipients(d->all, sorted,
	    sizeof(sorted)) != 0 || stamp_verify(d->stamp, ck->sender, sorted,
	    d->mid, d->body, d->len, d->sdate, log.identity_key, &err) != 0;
	idlog_release(&log);
	*why = "delivery stamp does not verify";
	if (bad)
		return 403;
	memcpy(list, d->to, strlen(d->to) + 1);
	for (p = list; p != NULL; p = comma) {
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		*why = "recipient not stamped or not ours";
		if (ck->n == MSG_MAX_RECIPIENTS ||
		    address_normalize(p, ck->rcpts[ck->n], &err) != 0 ||
		    !in_list(sorted, ck->rcpts[ck->n]) ||
		    strcmp(address_domain(ck->rcpts[ck->n]),
		    srv->cfg.domain) != 0)
			return 400;
		n = store_user_get(srv->store, ck->rcpts[ck->n], &ulog, &ulen,
		    &err);
		if (n <= 0) {
			*why = n < 0 ? "store unavailable" : "unknown recipient";
			return n < 0 ? 503 : 404;
		}
		free(ulog);
		ck->n++;
	}
	return 0;
}

/*
 * The request must come from the server of the sender's domain: signed
 * by the key that domain publishes, fresh, never seen.  On success
 * domain and base name it; otherwise the answer is queued.
 */
static int
server_request(struct server *srv, struct MHD_Connection *c, const char *url,
    const unsigned char *body, size_t len, struct lazy_remote *lr,
    char domain[ADDRESS_DOMAIN_MAX + 1], char base[512],
    unsigned int *status, enum MHD_Result *ret)
{
	const char *signer = hdr(c, REQSIG_H_SIGNER);
	unsigned char key[32], hash[32];
	struct smimp_err err;
	struct reqsig rs;
	int64_t when;
	int n;

	smimp_err_clear(&err);
	if (signer == NULL || strncmp(signer, "server:", 7) != 0 ||
	    domain_normalize(signer + 7, domain, &err) != 0 ||
	    hdr(c, REQSIG_H_DATE) == NULL || hdr(c, REQSIG_H_NONCE) == NULL ||
	    hdr(c, REQSIG_H_SIGNATURE) == NULL ||
	    strlen(hdr(c, REQSIG_H_DATE)) >= sizeof(rs.date) ||
	    strlen(hdr(c, REQSIG_H_NONCE)) >= sizeof(rs.nonce) ||
	    strlen(hdr(c, REQSIG_H_SIGNATURE)) >= sizeof(rs.signature)) {
		*ret = answer(c, 401, "missing or malformed server signature",
		    status);
		return -1;
	}
	if (rate_limited(&srv->per_domain, domain, c, status, ret))
		return -1;
	memset(&rs, 0, sizeof(rs));
	(void)snprintf(rs.signer, sizeof(rs.signer), "%s", signer);
	(void)snprintf(rs.date, sizeof(rs.date), "%s", hdr(c, REQSIG_H_DATE));
	(void)snprintf(rs.nonce, sizeof(rs.nonce), "%s", hdr(c,
	    REQSIG_H_NONCE));
	(void)snprintf(rs.signature, sizeof(rs.signature), "%s", hdr(c,
	    REQSIG_H_SIGNATURE));
	if (peer_key(lr, domain, base, 512, key, &err) != 0) {
		log_line("deliver from %s: %s", domain, err.msg);
		*ret = answer(c, err.code == SMIMP_EXIT_TEMPFAIL ? 503 : 403,
		    "unknown sender domain", status);
		return -1;
	}
	reqsig_body_hash(hash, body, len);
	if (reqsig_verify(&rs, "POST", srv->cfg.domain, url, hash, key,
	    time_now(), &err) != 0) {
		*ret = answer(c, 401, err.msg, status);
		return -1;
	}
	(void)time_parse(rs.date, strlen(rs.date), &when);
	n = store_nonce_claim(srv->store, signer, rs.nonce,
	    when + REQSIG_WINDOW, &err);
	if (n <= 0) {
		*ret = answer(c, n < 0 ? 503 : 401, n < 0 ? "store unavailable" :
		    "replayed request", status);
		return -1;
	}
	return 0;
}

/* Add a checked delivery's copies to the batch to store. */
static void
add_copies(struct store_delivery *out, size_t *n, const struct checked *ck,
    const struct batch_item *d)
{
	size_t i;

	for (i = 0; i < ck->n; i++) {
		out[*n].recipient = ck->rcpts[i];
		out[*n].sender = ck->sender;
		out[*n].message_id = d->mid;
		out[*n].data = d->body;
		out[*n].len = d->len;
		(*n)++;
	}
}

enum MHD_Result
relay_accept(struct server *srv, struct MHD_Connection *c, const char *url,
    const unsigned char *body, size_t len, unsigned int *status)
{
	char domain[ADDRESS_DOMAIN_MAX + 1], base[512];
	char (*rcpts)[ADDRESS_MAX + 1] = NULL;
	struct store_delivery copies[MSG_MAX_RECIPIENTS];
	struct lazy_remote lr = { srv, NULL };
	struct smimp_err err;
	struct batch_item d;
	struct checked ck;
	enum MHD_Result ret;
	const char *why;
	unsigned int code;
	size_t n = 0;

	if (server_request(srv, c, url, body, len, &lr, domain, base, status,
	    &ret) != 0)
		goto out;
	d.from = hdr(c, "Smimp-From");
	d.to = hdr(c, "Smimp-To");
	d.all = hdr(c, "Smimp-Stamp-To");
	d.mid = hdr(c, "Smimp-Message-Id");
	d.stamp = hdr(c, "Smimp-Stamp");
	d.sdate = hdr(c, "Smimp-Stamp-Date");
	d.body = body;
	d.len = len;
	rcpts = calloc(MSG_MAX_RECIPIENTS, sizeof(*rcpts));
	if (rcpts == NULL) {
		ret = answer(c, 503, "out of memory", status);
		goto out;
	}
	ck.rcpts = rcpts;
	code = check_delivery(srv, &lr, domain, base, &d, &ck, &why);
	if (code != 0) {
		ret = answer(c, code, why, status);
		goto out;
	}
	add_copies(copies, &n, &ck, &d);
	if (store_deliver_many(srv->store, copies, n, &err) != 0) {
		log_line("%s", err.msg);
		ret = answer(c, 503, "store unavailable", status);
		goto out;
	}
	ret = answer(c, 201, "", status);
out:
	free(rcpts);
	remote_free(lr.r);
	return ret;
}

/* ---- batches: several messages in one request ---- */

static enum MHD_Result
batch_reply(struct MHD_Connection *c, const struct sbuf *sb,
    unsigned int *status)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	*status = 200;
	r = MHD_create_response_from_buffer(sb->len, sb->buf,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
relay_accept_batch(struct server *srv, struct MHD_Connection *c,
    const char *url, const unsigned char *body, size_t len,
    unsigned int *status)
{
	char domain[ADDRESS_DOMAIN_MAX + 1], base[512], *copy = NULL;
	struct store_delivery *copies = NULL;
	char (*rcpts)[ADDRESS_MAX + 1] = NULL;
	struct checked *cks = NULL;
	struct lazy_remote lr = { srv, NULL };
	struct batch_item d[BATCH_MAX];
	unsigned int codes[BATCH_MAX];
	const char *whys[BATCH_MAX];
	struct smimp_err err;
	struct sbuf sb;
	enum MHD_Result ret;
	size_t nd = 0, nc = 0, i;
	int r;

	sbuf_init(&sb, 1024 * 1024);
	if (server_request(srv, c, url, body, len, &lr, domain, base, status,
	    &ret) != 0)
		goto out;
	/* Parsed in a copy: bounded by the server's message size limit. */
	copy = malloc(len + 1);
	cks = calloc(BATCH_MAX, sizeof(*cks));
	if (copy == NULL || cks == NULL) {
		ret = answer(c, 503, "out of memory", status);
		goto out;
	}
	memcpy(copy, body, len);
	r = batch_parse(copy, len, d, BATCH_MAX);
	if (r > 0)
		nd = (size_t)r;
	if (r <= 0) {
		ret = answer(c, 400, "malformed batch", status);
		goto out;
	}
	rcpts = calloc(nd * MSG_MAX_RECIPIENTS, sizeof(*rcpts));
	copies = calloc(nd * MSG_MAX_RECIPIENTS, sizeof(*copies));
	if (rcpts == NULL || copies == NULL) {
		ret = answer(c, 503, "out of memory", status);
		goto out;
	}
	for (i = 0; i < nd; i++) {
		cks[i].rcpts = rcpts + i * MSG_MAX_RECIPIENTS;
		codes[i] = check_delivery(srv, &lr, domain, base, &d[i],
		    &cks[i], &whys[i]);
		if (codes[i] == 0)
			add_copies(copies, &nc, &cks[i], &d[i]);
	}
	/* Every accepted message is on disk before the answer. */
	if (store_deliver_many(srv->store, copies, nc, &err) != 0) {
		log_line("%s", err.msg);
		ret = answer(c, 503, "store unavailable", status);
		goto out;
	}
	r = sbuf_add(&sb, "[", 1);
	for (i = 0; i < nd && r == 0; i++) {
		r = sbuf_addf(&sb, "%s{\"message_id\":\"%s\",\"status\":%u",
		    i > 0 ? "," : "", d[i].mid != NULL &&
		    message_id_valid(d[i].mid) ? d[i].mid : "",
		    codes[i] == 0 ? 201 : codes[i]);
		if (r == 0 && codes[i] != 0)
			r = sbuf_addf(&sb, ",\"error\":\"%s\"", whys[i]);
		if (r == 0)
			r = sbuf_add(&sb, "}", 1);
	}
	if (r != 0 || sbuf_add(&sb, "]\n", 2) != 0) {
		ret = answer(c, 503, "out of memory", status);
		goto out;
	}
	ret = batch_reply(c, &sb, status);
out:
	sbuf_release(&sb);
	free(copies);
	free(rcpts);
	free(cks);
	free(copy);
	remote_free(lr.r);
	return ret;
}
