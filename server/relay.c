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
#include "idlog.h"
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
	    ob->data, ob->len, signer, srv->server_sk, extra, &rep,
	    &err) != 0) {
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
	unsigned int i;

	for (i = 0; i < srv->relay_running; i++)
		if (srv->relay_inflight[i] == id)
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
 * The next entry for worker w to deliver: 1 with *ob filled, 0 when
 * stopping.  Scans the queue in id order from a cursor, wrapping to the
 * start when it runs out, and sleeps only when a whole scan from the
 * start finds nothing to do.
 */
static int
take_work(struct server *srv, unsigned int w, struct outbound *ob)
{
	size_t found;
	int from_start;

	pthread_mutex_lock(&srv->relay_mu);
	srv->relay_inflight[w] = 0;
	for (;;) {
		if (srv->relay_stop) {
			pthread_mutex_unlock(&srv->relay_mu);
			return 0;
		}
		if (srv->relay_next < srv->relay_nbatch) {
			*ob = srv->relay_batch[srv->relay_next++];
			srv->relay_inflight[w] = ob->id;
			pthread_mutex_unlock(&srv->relay_mu);
			return 1;
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

static void *
relay_main(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	unsigned int w = wk->index;
	struct remote *r;
	struct smimp_err err;
	struct outbound ob;
	char reason[1024];
	int res;

	free(wk);
	smimp_err_clear(&err);
	r = new_remote(srv, &err);
	if (r == NULL) {
		log_line("relay: %s", err.msg);
		return NULL;
	}
	while (take_work(srv, w, &ob)) {
		res = attempt(srv, r, &ob, reason, sizeof(reason));
		if (res == 0) {
			log_line("relayed %s to %s", ob.message_id, ob.domain);
			(void)store_outbound_done(srv->store, ob.id, &err);
		} else if (res == 2 || time_now() - ob.first_try >=
		    (int64_t)srv->cfg.give_up) {
			bounce(srv, &ob, reason);
			(void)store_outbound_done(srv->store, ob.id, &err);
		} else {
			log_line("relay %s to %s: %s; retrying", ob.message_id,
			    ob.domain, reason);
			(void)store_outbound_retry(srv->store, ob.id,
			    time_now() + backoff(srv, ob.attempts), &err);
		}
		outbound_release(&ob);
	}
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
	struct remote_reply rep;
	json_t *meta;
	const char *k, *d;
	char ckey[ADDRESS_MAX + 16];
	unsigned char *cached;
	size_t clen;
	int ret = -1;

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
	    remote_request(r, "GET", domain, base, "/v1/meta", NULL, 0, NULL,
	    NULL, NULL, &rep, err) != 0)
		return -1;
	meta = rep.status == 200 ? json_loadb(rep.body.buf, rep.body.len, 0,
	    NULL) : NULL;
	remote_reply_release(&rep);
	k = json_string_value(json_object_get(meta, "server_key"));
	d = json_string_value(json_object_get(meta, "domain"));
	if (k == NULL || d == NULL || strcmp(d, domain) != 0 ||
	    b64_decode_exact(k, strlen(k), key, 32) != 0)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s publishes no server "
		    "key", domain);
	else
		ret = 0;
	json_decref(meta);
	if (ret == 0) {
		unsigned char both[32 + 512];
		size_t blen = strlen(base);

		if (blen < sizeof(both) - 32) {
			memcpy(both, key, 32);
			memcpy(both + 32, base, blen);
			cache_put(ckey, both, 32 + blen);
		}
	}
	return ret;
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
	    NULL, &rep, err) != 0)
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

enum MHD_Result
relay_accept(struct server *srv, struct MHD_Connection *c, const char *url,
    const unsigned char *body, size_t len, unsigned int *status)
{
	const char *signer = hdr(c, REQSIG_H_SIGNER), *from = hdr(c,
	    "Smimp-From"), *to = hdr(c, "Smimp-To"), *all = hdr(c,
	    "Smimp-Stamp-To"), *mid = hdr(c, "Smimp-Message-Id"),
	    *stamp = hdr(c, "Smimp-Stamp"), *sdate = hdr(c, "Smimp-Stamp-Date");
	char domain[ADDRESS_DOMAIN_MAX + 1], base[512], sorted[8192];
	char rcpt[ADDRESS_MAX + 1], list[8192], *p, *comma;
	unsigned char key[32], hash[32];
	struct smimp_err err;
	struct lazy_remote lr = { srv, NULL };
	struct reqsig rs;
	struct idlog log;
	int64_t when;
	enum MHD_Result ret;
	int have_log = 0, n;

	smimp_err_clear(&err);
	if (signer == NULL || strncmp(signer, "server:", 7) != 0 ||
	    domain_normalize(signer + 7, domain, &err) != 0 ||
	    hdr(c, REQSIG_H_DATE) == NULL || hdr(c, REQSIG_H_NONCE) == NULL ||
	    hdr(c, REQSIG_H_SIGNATURE) == NULL ||
	    strlen(hdr(c, REQSIG_H_DATE)) >= sizeof(rs.date) ||
	    strlen(hdr(c, REQSIG_H_NONCE)) >= sizeof(rs.nonce) ||
	    strlen(hdr(c, REQSIG_H_SIGNATURE)) >= sizeof(rs.signature))
		return answer(c, 401, "missing or malformed server signature",
		    status);
	if (rate_limited(&srv->per_domain, domain, c, status, &ret))
		return ret;
	if (from == NULL || to == NULL || all == NULL || mid == NULL ||
	    stamp == NULL || sdate == NULL || len == 0 ||
	    strlen(to) >= sizeof(list) || !message_id_valid(mid))
		return answer(c, 400, "incomplete delivery", status);
	if (address_normalize(from, rcpt, &err) != 0 ||
	    strcmp(address_domain(rcpt), domain) != 0)
		return answer(c, 403, "a server relays only for its own domain",
		    status);
	memset(&rs, 0, sizeof(rs));
	(void)snprintf(rs.signer, sizeof(rs.signer), "%s", signer);
	(void)snprintf(rs.date, sizeof(rs.date), "%s", hdr(c, REQSIG_H_DATE));
	(void)snprintf(rs.nonce, sizeof(rs.nonce), "%s", hdr(c,
	    REQSIG_H_NONCE));
	(void)snprintf(rs.signature, sizeof(rs.signature), "%s", hdr(c,
	    REQSIG_H_SIGNATURE));
	if (peer_key(&lr, domain, base, sizeof(base), key, &err) != 0) {
		log_line("deliver from %s: %s", domain, err.msg);
		ret = answer(c, err.code == SMIMP_EXIT_TEMPFAIL ? 503 : 403,
		    "unknown sender domain", status);
		goto out;
	}
	reqsig_body_hash(hash, body, len);
	if (reqsig_verify(&rs, "POST", srv->cfg.domain, url, hash, key,
	    time_now(), &err) != 0) {
		ret = answer(c, 401, err.msg, status);
		goto out;
	}
	(void)time_parse(rs.date, strlen(rs.date), &when);
	n = store_nonce_claim(srv->store, signer, rs.nonce,
	    when + REQSIG_WINDOW, &err);
	if (n <= 0) {
		ret = answer(c, n < 0 ? 503 : 401, n < 0 ? "store unavailable" :
		    "replayed request", status);
		goto out;
	}
	if (sender_log(&lr, domain, base, rcpt, &log, &err) != 0) {
		log_line("deliver from %s: %s", domain, err.msg);
		ret = answer(c, 403, "the sender's domain does not publish "
		    "that sender", status);
		goto out;
	}
	have_log = 1;
	if (log.revoked || stamp_recipients(all, sorted, sizeof(sorted)) != 0 ||
	    stamp_verify(stamp, rcpt, sorted, mid, body, len, sdate,
	    log.identity_key, &err) != 0) {
		ret = answer(c, 403, "delivery stamp does not verify", status);
		goto out;
	}
	/* Every recipient here must be stamped, ours, and known. */
	memcpy(list, to, strlen(to) + 1);
	for (p = list; p != NULL; p = comma) {
		unsigned char *ulog;
		size_t ulen;

		comma = strchr(p, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		if (address_normalize(p, rcpt, &err) != 0 ||
		    !in_list(sorted, rcpt) ||
		    strcmp(address_domain(rcpt), srv->cfg.domain) != 0) {
			ret = answer(c, 400, "recipient not stamped or not "
			    "ours", status);
			goto out;
		}
		n = store_user_get(srv->store, rcpt, &ulog, &ulen, &err);
		if (n <= 0) {
			ret = answer(c, n < 0 ? 503 : 404, n < 0 ?
			    "store unavailable" : "unknown recipient", status);
			goto out;
		}
		free(ulog);
	}
	memcpy(list, to, strlen(to) + 1);
	for (p = list; p != NULL; p = comma) {
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		(void)address_normalize(p, rcpt, &err);
		if (store_deliver(srv->store, rcpt, from, mid, body, len,
		    &err) != 0) {
			ret = answer(c, 503, "store unavailable", status);
			goto out;
		}
	}
	*status = 201;
	ret = answer(c, 201, "", status);
	*status = 201;
out:
	if (have_log)
		idlog_release(&log);
	remote_free(lr.r);
	return ret;
}
