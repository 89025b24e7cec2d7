/*
 * relay.c - store-and-forward between domains.
 *
 * Outbound: messages for other domains wait in the store's queue;
 * worker threads claim due entries with leases (several nodes may share
 * one queue, and a crashed worker's entries come back when its lease
 * expires) and deliver each to the recipient domain's server in a
 * request signed by this server's key, retrying with exponential
 * backoff and, past the give-up time, leaving a signed bounce notice in
 * the sender's mailbox.  Deliveries from other domains are inbound.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "batch.h"
#include "bounce.h"
#include "carry.h"
#include "fileio.h"
#include "idlog.h"
#include "message.h"
#include "remote.h"
#include "reqsig.h"
#include "stamp.h"
#include "util.h"
#include "work.h"
#include "metrics.h"
#include "receipts.h"
#include "server.h"
#include "banned.h"

#define RELAY_IDLE_MS	200
#define RELAY_BATCH_BYTES (4 * 1024 * 1024)	/* bodies in one batch request */
/* A batch's answer: a status and a receipt for each of its messages. */
#define RELAY_BATCH_ANSWER (BATCH_MAX * (RECEIPT_MAX + 1024))

int
relay_give_up(struct server *srv, const char *owner,
    const struct outbound *ob, const char *reason, struct smimp_err *err)
{
	struct store_body body;
	struct store_delivery notice;
	struct bounce b;
	char when[TIME_STRLEN], mid[600];
	struct sbuf sb;
	int r;

	sbuf_init(&sb, 64 * 1024);
	time_format(time_now(), when);
	b.server = srv->cfg.domain;
	b.message_id = ob->message_id;
	b.recipients = ob->recipients;
	b.date = when;
	b.reason = reason;
	if (bounce_build(&sb, &b, &srv->signer) != 0) {
		sbuf_release(&sb);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "bounce for %s: "
		    "out of memory", ob->sender);
	}
	(void)snprintf(mid, sizeof(mid), "bounce:%s:%s", ob->domain,
	    ob->message_id);
	memset(&body, 0, sizeof(body));
	body.data = (const unsigned char *)sb.buf;
	body.len = sb.len;
	notice.recipient = ob->sender;
	notice.sender = srv->signer.name;
	notice.message_id = mid;
	notice.body = &body;
	r = store_outbound_bounce(srv->store, owner, ob->id, &notice,
	    time_now(), err);
	sbuf_release(&sb);
	return r;
}

/* Give up on an entry the relay holds, and say so in the log. */
static void
bounce(struct server *srv, const char *owner, const struct outbound *ob,
    const char *reason)
{
	struct smimp_err err;
	int r;

	r = relay_give_up(srv, owner, ob, reason, &err);
	if (r == STORE_ERROR)
		log_store(&err, "bounce for %s", ob->sender);
	else if (r != STORE_OK)
		log_warnx("bounce of %s: no longer ours", ob->message_id);
	else
		log_info("bounced %s to %s: %s", ob->message_id, ob->sender,
		    reason);
}

/* What an HTTP status means for a delivery: 0 done, 1 retry, 2 never. */
static int
status_outcome(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	/* A full mailbox will not empty itself soon enough: bounce. */
	if ((status >= 500 && status != 507) || status == 429 ||
	    status == 408)
		return 1;
	return 2;
}

/*
 * Why a delivery failed, for the log and the bounce: the status, and
 * what the other server said, quoted as its words (untrusted text).
 */
static void
answer_reason(char *out, size_t cap, const char *domain, long status,
    const char *words)
{
	char quoted[BOUNCE_QUOTE_MAX + ADDRESS_DOMAIN_MAX + 16];

	if (words == NULL || words[0] == '\0') {
		(void)snprintf(out, cap, "%s answered HTTP %ld", domain,
		    status);
		return;
	}
	bounce_quote(domain, words, quoted, sizeof(quoted));
	(void)snprintf(out, cap, "%s answered HTTP %ld; %s", domain, status,
	    quoted);
}

/*
 * The headers the entry carries besides the stamp's (the device that
 * stamped, the consent headers), as "Name: value" strings in sb
 * (NUL-separated), named from extra[0] on and NULL-terminated.
 */
static int
carried_headers(const struct outbound *ob, struct sbuf *sb,
    const char **extra)
{
	size_t at[3], n = 0, i;

	sbuf_init(sb, 2 * WORK_HEADER_MAX + INTRO_LIST_MAX);
	if (ob->stamp_device[0] != '\0') {
		at[n++] = sb->len;
		if (sbuf_addf(sb, "Smimp-Stamp-Device: %s",
		    ob->stamp_device) != 0 || sbuf_add(sb, "", 1) != 0)
			goto fail;
	}
	if (ob->work[0] != '\0') {
		at[n++] = sb->len;
		if (sbuf_addf(sb, "Smimp-Work: %s", ob->work) != 0 ||
		    sbuf_add(sb, "", 1) != 0)
			goto fail;
	}
	if (ob->introduction[0] != '\0') {
		at[n++] = sb->len;
		if (sbuf_addf(sb, "Smimp-Introduction: %s",
		    ob->introduction) != 0 || sbuf_add(sb, "", 1) != 0)
			goto fail;
	}
	/* Pointers last: the buffer may have moved as it grew. */
	for (i = 0; i < n; i++)
		extra[i] = sb->buf + at[i];
	extra[n] = NULL;
	return 0;
fail:
	sbuf_release(sb);
	return -1;
}

/*
 * BLAKE2b-256 of the len bytes of fd from its start (a queued body: what
 * a receipt for it names), read as it will be sent.  0, or -1.
 */
static int
fd_hash(int fd, uint64_t len, unsigned char hash[32])
{
	crypto_generichash_state st;
	unsigned char buf[64 * 1024];
	uint64_t off = 0;
	ssize_t got;

	(void)crypto_generichash_init(&st, NULL, 0, 32);
	while (off < len) {
		got = pread(fd, buf, len - off < sizeof(buf) ? (size_t)(len -
		    off) : sizeof(buf), (off_t)off);
		if (got <= 0)
			return -1;
		(void)crypto_generichash_update(&st, buf, (size_t)got);
		off += (uint64_t)got;
	}
	(void)crypto_generichash_final(&st, hash, 32);
	return 0;
}

/*
 * The receipt an answer item carries (a JSON object's "receipt"), a
 * copy into *receipt (malloc'd); NULL when there is none.
 */
static void
receipt_of(json_t *item, char **receipt)
{
	const char *text = json_string_value(json_object_get(item,
	    "receipt"));

	free(*receipt);
	*receipt = text != NULL ? strdup(text) : NULL;
}

/*
 * The seconds a batch item's answer asks the relay to wait (its
 * "retry_after", as a single delivery's Retry-After): 0 when none.
 */
static unsigned int
item_wait(json_t *item)
{
	json_int_t v = json_integer_value(json_object_get(item,
	    "retry_after"));

	return v <= 0 ? 0 : v > 365 * 24 * 3600 ? 365u * 24 * 3600 :
	    (unsigned int)v;
}

/*
 * One delivery attempt: 0 delivered (*receipt the one the answer
 * carried, if any, and hash the body's), 1 retry later (*wait the
 * seconds a 429's Retry-After asks for, 0 when none), 2 permanent
 * failure, 3 none made: the store cannot be reached (the entry comes
 * back when its lease expires; nothing can be recorded of it now).
 */
static int
attempt(struct server *srv, struct remote *r, const struct outbound *ob,
    char *reason, size_t cap, char **receipt, unsigned char hash[32],
    unsigned int *wait)
{
	json_t *answer;
	struct remote_reply rep;
	struct smimp_err err;
	char base[512], h[6][8400];
	const char *extra[10];
	struct sbuf carried;
	uint64_t len;
	int i, ret, fd;

	smimp_err_clear(&err);
	*wait = 0;
	if (remote_base(r, ob->domain, base, sizeof(base), &err) != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return err.code == SMIMP_EXIT_TEMPFAIL ? 1 : 2;
	}
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
	if (carried_headers(ob, &carried, extra + 6) != 0) {
		(void)snprintf(reason, cap, "out of memory");
		return 1;
	}
	/* The body goes out from the store's file as it is read. */
	ret = store_outbound_open(srv->store, ob->id, &fd, &len, &err);
	if (ret == STORE_OK && fd_hash(fd, len, hash) != 0) {
		(void)close(fd);
		ret = smimp_err_sys(&err, SMIMP_EXIT_FAIL, "cannot read the "
		    "queued body");
	}
	if (ret != STORE_OK) {
		sbuf_release(&carried);
		(void)snprintf(reason, cap, "%s", ret == STORE_ERROR ? err.msg :
		    "the queued body is gone");
		return ret == STORE_ERROR && err.code == SMIMP_EXIT_TEMPFAIL ?
		    3 : 1;
	}
	ret = remote_request_fd(r, "POST", ob->domain, base, "/v1/deliver", fd,
	    len, &srv->signer, extra, REMOTE_MAX_STATUS, &rep, &err);
	(void)close(fd);
	sbuf_release(&carried);
	if (ret != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return 1;
	}
	ret = status_outcome(rep.status);
	answer_reason(reason, cap, ob->domain, rep.status, rep.error);
	if (rep.status == 429)
		*wait = rep.retry_after;
	if (ret == 0) {
		answer = json_loadb(rep.body.buf, rep.body.len, 0, NULL);
		receipt_of(answer, receipt);
		json_decref(answer);
	}
	remote_reply_release(&rep);
	return ret;
}

static int64_t
backoff(const struct server *srv, unsigned int attempts)
{
	uint64_t d = LIVE(srv->cfg.retry_base), max = LIVE(srv->cfg.retry_max);

	while (attempts-- > 0 && d < max)
		d *= 2;
	return (int64_t)(d < max ? d : max);
}

/*
 * Sleep until relay_wake() or RELAY_IDLE_MS, unless woken since wakes
 * was read or stopping.
 */
static void
idle_wait(struct server *srv, unsigned long wakes)
{
	struct timespec ts;

	time_after_ms(CLOCK_REALTIME, RELAY_IDLE_MS, &ts);
	pthread_mutex_lock(&srv->relay_mu);
	if (!srv->relay_stop && srv->relay_wakes == wakes)
		(void)pthread_cond_timedwait(&srv->relay_cv, &srv->relay_mu,
		    &ts);
	pthread_mutex_unlock(&srv->relay_mu);
}

struct worker {
	struct server *srv;
	unsigned int index;
};

/* A batch body for these queue entries. */
static int
batch_body(const struct outbound *obs, unsigned char *const *bodies,
    size_t n, struct sbuf *sb)
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
		it.stamp_device = obs[i].stamp_device;
		it.work = obs[i].work;
		it.intro = obs[i].introduction;
		it.body = bodies[i];
		it.len = (size_t)obs[i].len;
		if (batch_add(sb, &it) != 0)
			return -1;
	}
	return 0;
}


/*
 * Deliver several messages for one domain in one request; res and
 * reasons get each one's outcome.  A peer that does not take batches,
 * or refuses this one as a whole, gets them one by one.
 */
static void
attempt_batch(struct server *srv, struct remote *r,
    const struct outbound *obs, unsigned char *const *bodies, size_t n,
    int *res, char (*reasons)[1024], char **receipts,
    unsigned char (*hashes)[32], unsigned int *waits)
{
	struct remote_reply rep;
	struct smimp_err err;
	char base[512];
	struct sbuf body;
	json_t *list = NULL, *item;
	size_t i;
	int all = -1;

	if (n == 1) {
		res[0] = attempt(srv, r, &obs[0], reasons[0], 1024,
		    &receipts[0], hashes[0], &waits[0]);
		return;
	}
	smimp_err_clear(&err);
	for (i = 0; i < n; i++)
		waits[i] = 0;
	for (i = 0; i < n; i++)
		crypto_generichash(hashes[i], 32, bodies[i], (size_t)obs[i].len,
		    NULL, 0);
	sbuf_init(&body, RELAY_BATCH_BYTES + 64 * 1024);
	if (batch_body(obs, bodies, n, &body) != 0)
		goto singly;
	if (remote_base(r, obs[0].domain, base, sizeof(base), &err) != 0 ||
	    remote_request(r, "POST", obs[0].domain, base, "/v1/deliver-batch",
	    body.buf, body.len, &srv->signer, NULL,
	    RELAY_BATCH_ANSWER, &rep, &err) != 0) {
		/* No smimp service there is for good; no answer is not. */
		for (i = 0; i < n; i++) {
			res[i] = err.code == SMIMP_EXIT_TEMPFAIL ? 1 : 2;
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
			waits[i] = rep.status == 429 ? rep.retry_after : 0;
			answer_reason(reasons[i], 1024, obs[0].domain,
			    rep.status, rep.error);
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
			answer_reason(reasons[i], 1024, obs[i].domain, st,
			    why);
			if (st == 429)
				waits[i] = item_wait(item);
			if (res[i] == 0)
				receipt_of(item, &receipts[i]);
		}
	remote_reply_release(&rep);
	json_decref(list);
	if (rep.status == 200 || all == 1)
		goto out;
singly:
	for (i = 0; i < n; i++)
		res[i] = attempt(srv, r, &obs[i], reasons[i], 1024,
		    &receipts[i], hashes[i], &waits[i]);
out:
	sbuf_release(&body);
}

/* A claimed entry's body, read into memory: *body malloc'd. */
static int
load_body(struct server *srv, struct outbound *ob,
    unsigned char **body, struct smimp_err *err)
{
	uint64_t len;
	size_t got;
	int fd, r;

	*body = NULL;
	if (ob->data != NULL) {
		*body = ob->data;	/* the claim brought it */
		ob->data = NULL;
		return 0;
	}
	r = store_outbound_open(srv->store, ob->id, &fd, &len, err);
	if (r != STORE_OK)
		return r == STORE_ERROR ? -1 : smimp_err_set(err,
		    SMIMP_EXIT_FAIL, "the queued body is gone");
	r = len != ob->len || len > SIZE_MAX - 1 ? smimp_err_set(err,
	    SMIMP_EXIT_FAIL, "the queued body changed size") :
	    fd_read_all(fd, "queued body", (size_t)len, body, &got, err);
	(void)close(fd);
	return r;
}

/*
 * When to try an entry again: after the backoff, and not before the
 * wait its answer asked for (a 429's Retry-After: an allowance that is
 * used up until the day ends, a domain that is ignored for a while,
 * where each attempt before then is counted against the sending
 * domain), but for the give-up time, when it is tried once more.
 */
static int64_t
next_try(const struct server *srv, const struct outbound *ob, int64_t now,
    unsigned int wait)
{
	int64_t next = now + backoff(srv, ob->attempts);
	int64_t asked = now + (int64_t)wait;
	int64_t last = ob->first_try + (int64_t)LIVE(srv->cfg.give_up);

	if (asked > last)
		asked = last;
	return asked > next ? asked : next;
}

/*
 * What came of each attempt: done entries join done[] (*ndone of them;
 * NULL when none can have succeeded),
 * which the worker's next claim removes in its own transaction;
 * failures are retried later (waits: what each answer asked for, or
 * NULL) or, past the give-up time or refused for good, bounced.  A
 * retry that cannot be recorded is logged; the entry comes back when
 * its lease expires.
 */
static void
settle(struct server *srv, const char *owner, const struct outbound *obs,
    size_t n, const int *res, char (*reasons)[1024],
    const unsigned int *waits, int64_t *done, size_t *ndone)
{
	struct smimp_err err;
	int64_t now = time_now();
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (res[i] == 3)
			continue;
		if (res[i] == 0 && done != NULL) {
			log_info("relayed %s to %s", obs[i].message_id,
			    obs[i].domain);
			metrics_relay(obs[i].domain, RELAY_DELIVERED);
			done[(*ndone)++] = obs[i].id;
		} else if (res[i] == 2 || now - obs[i].first_try >=
		    (int64_t)LIVE(srv->cfg.give_up)) {
			metrics_relay(obs[i].domain, RELAY_BOUNCED);
			bounce(srv, owner, &obs[i], reasons[i]);
		} else {
			metrics_relay(obs[i].domain, RELAY_DEFERRED);
			log_warnx("relay %s to %s: %s; retrying",
			    obs[i].message_id, obs[i].domain, reasons[i]);
			r = store_outbound_retry(srv->store, owner, obs[i].id,
			    next_try(srv, &obs[i], now, waits != NULL ?
			    waits[i] : 0), reasons[i], &err);
			if (r == STORE_ERROR)
				log_store(&err, "relay: cannot record the "
				    "retry of %s (it comes back when its lease "
				    "expires)", obs[i].message_id);
		}
	}
}

/*
 * The receipt the domain of ob answered with, checked: the text to
 * keep, or "" (logged why) when there is none to keep.  A receipt that
 * does not hold is not kept, and the delivery counts all the same: the
 * other server said it took the message, and a second delivery would
 * store nothing more.
 */
static const char *
receipt_kept(const struct outbound *ob, const unsigned char hash[32],
    const char *receipt)
{
	struct smimp_err err;

	smimp_err_clear(&err);
	if (receipt == NULL) {
		log_info("relay %s to %s: delivered without a receipt",
		    ob->message_id, ob->domain);
		return "";
	}
	if (receipts_check_peer(ob, hash, receipt, &err) != 0) {
		log_warnx("relay %s to %s: receipt refused: %s",
		    ob->message_id, ob->domain, err.msg);
		return "";
	}
	log_debug("relay %s to %s: receipt kept", ob->message_id, ob->domain);
	return receipt;
}

/*
 * Record the delivered entries for their senders, each with the
 * receipt its domain signed; an entry whose record cannot be stored is
 * tried again later (res 1; res 3 when the store is away, and it comes
 * back when its lease expires), as if not delivered, so that its
 * sender is never left without an answer to ask for.
 */
static void
record_delivered(struct server *srv, const struct outbound *obs, size_t n,
    int *res, char **receipts, unsigned char (*hashes)[32],
    char (*reasons)[1024])
{
	struct store_sent rec[BATCH_MAX];
	struct smimp_err err;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (res[i] != 0)
			continue;
		memset(&rec[k], 0, sizeof(rec[k]));
		rec[k].sender = obs[i].sender;
		rec[k].message_id = obs[i].message_id;
		rec[k].domain = obs[i].domain;
		rec[k].state = STORE_SENT_DELIVERED;
		rec[k].recipients = obs[i].recipients;
		rec[k].text = receipt_kept(&obs[i], hashes[i], receipts[i]);
		rec[k].at = time_now();
		k++;
	}
	if (k == 0 || store_sent_put(srv->store, rec, k, &err) == STORE_OK)
		return;
	log_store(&err, "relay: cannot record what was delivered");
	for (i = 0; i < n; i++)
		if (res[i] == 0) {
			/* The store away: back when the lease expires. */
			res[i] = err.code == SMIMP_EXIT_TEMPFAIL ? 3 : 1;
			(void)snprintf(reasons[i], 1024, "delivered, but the "
			    "record of it could not be stored: %.900s",
			    err.msg);
		}
}

/*
 * Read the claimed entries' bodies; one that cannot be read counts as
 * a failed attempt (res 1), or as none when the store cannot be reached
 * (res 3), and is left out of obs, which is compacted.  Returns how
 * many remain.
 */
static size_t
load_bodies(struct server *srv, const char *owner, struct outbound *obs,
    size_t n, unsigned char **bodies)
{
	struct smimp_err err;
	char (*reason)[1024];
	size_t i, m = 0;
	int res = 1;

	reason = calloc(1, sizeof(*reason));
	for (i = 0; i < n; i++) {
		if (load_body(srv, &obs[i], &bodies[m], &err) != 0) {
			log_store(&err, "relay %s", obs[i].message_id);
			/* The store away: back when the lease expires. */
			if (reason != NULL &&
			    err.code != SMIMP_EXIT_TEMPFAIL) {
				(void)snprintf(*reason, sizeof(*reason), "%s",
				    err.msg);
				settle(srv, owner, &obs[i], 1, &res, reason,
				    NULL, NULL, NULL);
			}
			outbound_release(&obs[i]);
			continue;
		}
		if (m != i) {
			obs[m] = obs[i];
			memset(&obs[i], 0, sizeof(obs[i]));
		}
		m++;
	}
	free(reason);
	return m;
}

/*
 * After a reload, a connection with the settings as they are now; the
 * old one stays if a new one cannot be made.
 */
static void
refresh_remote(struct server *srv, struct remote **r, unsigned int *gen)
{
	unsigned int now_gen = server_peers_gen();
	struct smimp_err err;
	struct remote *fresh;

	if (now_gen == *gen)
		return;
	fresh = server_remote(srv, &err);
	if (fresh == NULL) {
		log_warnx("relay: %s; going on with the settings from before",
		    err.msg);
		return;
	}
	remote_free(*r);
	*r = fresh;
	*gen = now_gen;
}

/*
 * Entries the administrator asked to try now are tried now: a failed
 * discovery of their domain that this worker remembers does not answer
 * for them (a claim holds entries of one domain).
 */
static void
forced(struct remote *r, const struct outbound *obs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (obs[i].forced) {
			log_info("relay %s to %s: now, as the administrator "
			    "asked", obs[i].message_id, obs[i].domain);
			remote_forget(r, obs[i].domain);
			return;
		}
}

static void *
relay_main(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	struct remote *r;
	struct smimp_err err;
	struct outbound *obs;
	unsigned char *bodies[BATCH_MAX];
	char *receipts[BATCH_MAX];
	unsigned char hashes[BATCH_MAX][32];
	int res[BATCH_MAX];
	unsigned int waits[BATCH_MAX];
	char (*reasons)[1024], owner[64];
	int64_t done[BATCH_MAX];
	unsigned long wakes;
	unsigned int gen;
	size_t n, i, ndone = 0;
	int64_t now;
	unsigned int wk_index;
	int stop, loaded;

	/* Unique per node and worker: only this worker finishes its claims. */
	relay_owner(srv, wk->index, owner, sizeof(owner));
	wk_index = wk->index;
	free(wk);
	smimp_err_clear(&err);
	memset(receipts, 0, sizeof(receipts));
	obs = calloc(BATCH_MAX, sizeof(*obs));
	reasons = calloc(BATCH_MAX, sizeof(*reasons));
	gen = server_peers_gen();
	r = server_remote(srv, &err);
	if (r == NULL || obs == NULL || reasons == NULL) {
		log_warnx("relay: %s", r == NULL ? err.msg : "out of memory");
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&srv->relay_mu);
		stop = srv->relay_stop;
		wakes = srv->relay_wakes;
		pthread_mutex_unlock(&srv->relay_mu);
		if (stop)
			break;
		refresh_remote(srv, &r, &gen);
		if (wk_index == 0)
			receipts_expire(srv);
		now = time_now();
		if (store_outbound_claim(srv->store, owner, now,
		    now + LIVE(srv->cfg.relay_lease),
		    srv->cfg.relay_domain_workers,
		    RELAY_BATCH_BYTES, done, ndone, obs, BATCH_MAX, &n,
		    &err) != STORE_OK) {
			log_store(&err, "relay");
			n = 0;
		} else {
			ndone = 0;
		}
		/* A batch goes out of memory (at most RELAY_BATCH_BYTES); a
		   single message streams from its file. */
		loaded = n > 1;
		if (loaded)
			n = load_bodies(srv, owner, obs, n, bodies);
		if (n == 0) {
			idle_wait(srv, wakes);
			continue;
		}
		relay_claim_set(srv, wk_index, obs, n);
		forced(r, obs, n);
		attempt_batch(srv, r, obs, bodies, n, res, reasons, receipts,
		    hashes, waits);
		record_delivered(srv, obs, n, res, receipts, hashes,
		    reasons);
		settle(srv, owner, obs, n, res, reasons, waits, done, &ndone);
		relay_claim_set(srv, wk_index, NULL, 0);
		for (i = 0; i < n; i++) {
			if (loaded)
				free(bodies[i]);
			free(receipts[i]);
			receipts[i] = NULL;
			outbound_release(&obs[i]);
		}
	}
	/* Stopping: what is done is removed now, not at a next claim. */
	if (ndone > 0 && store_outbound_done(srv->store, owner, done, ndone,
	    &err) == STORE_ERROR)
		log_store(&err, "relay");
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
	unsigned char node[8];
	unsigned int i;

	if (pthread_mutex_init(&srv->relay_mu, NULL) != 0 ||
	    pthread_cond_init(&srv->relay_cv, NULL) != 0)
		return -1;
	randombytes_buf(node, sizeof(node));
	sodium_bin2hex(srv->relay_node, sizeof(srv->relay_node), node,
	    sizeof(node));
	if (relay_lease_start(srv) != 0)
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
	srv->relay_wakes++;
	pthread_cond_signal(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
}

void
relay_stop(struct server *srv)
{
	unsigned int i;

	if (srv->relay_running == 0 && !srv->lease_running)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	srv->relay_stop = 1;
	pthread_cond_broadcast(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
	for (i = 0; i < srv->relay_running; i++)
		pthread_join(srv->relay[i], NULL);
	relay_lease_stop(srv);
	srv->relay_running = 0;
}
