/*
 * inbound.c - deliveries from other domains' servers: POST
 * {base}/v1/deliver (one message) and {base}/v1/deliver-batch (up to
 * BATCH_MAX).  The dispatcher has verified the request's signature
 * under the key the sending domain publishes; here each message is
 * checked: its sender is of that domain, which serves the sender's
 * identity log; the sender's delivery stamp verifies under it and is
 * recent; every recipient is stamped and ours; the body is an age
 * file; then each recipient's consent (consent.h) says who takes it.
 * Those that pass are stored in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "age.h"
#include "batch.h"
#include "carry.h"
#include "consent.h"
#include "exitcode.h"
#include "fileio.h"
#include "http.h"
#include "idlog.h"
#include "introductions.h"
#include "jsontext.h"
#include "message.h"
#include "peers.h"
#include "receipts.h"
#include "stamp.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

/* One message of a delivery, with what checking it found. */
struct item {
	struct batch_item d;
	unsigned char hash[32];
	const unsigned char *data;	/* the body in memory, or NULL */
	unsigned char *owned;		/* data when it is ours to free */
	int fd;			/* the body, spooled, when not in memory */
	char spool[PATH_MAX];
	uint64_t len;
	char sender[ADDRESS_MAX + 1];
	char mid[256];		/* kept when the reader moves on */
	char (*rcpts)[ADDRESS_MAX + 1];	/* as many as Smimp-To names */
	size_t n;
	/*
	 * Every recipient Smimp-To names, normalized, comma-separated:
	 * what its receipt names (malloc'd).  Not only those whose policy
	 * took it: a refusal stays as silent as the answer keeps it.
	 */
	char *to_list;
	unsigned char sh[32];	/* stamp_hash, once the stamp verified */
	unsigned int status;	/* 0 while it passes */
	const char *why;
	unsigned int retry;	/* 429: seconds until it may come again */
};

static unsigned int
fail(struct item *it, unsigned int status, const char *why)
{
	it->status = status;
	it->why = why;
	return status;
}

/*
 * The value of the sender's proof of work for rcpt: 0 when none.  Only
 * while the item is checked: the batch reader moves on after that.
 */
static unsigned int
work_bits_for(const struct item *it, const char *rcpt)
{
	return carry_work_bits(it->d.work, it->sh, rcpt);
}

/*
 * Each recipient's consent (consent.h), keeping in it->rcpts those that
 * take the message.  One that refuses is left out silently, as one
 * without an account is, unless every one did (404); one that asks to
 * wait makes the whole item wait (429), nothing of it stored.  0 or
 * the status.
 */
static unsigned int
check_consent(struct exchange *x, struct item *it)
{
	char introducer[ADDRESS_MAX + 1];
	struct consent_ask ask;
	struct smimp_err err;
	unsigned int wait;
	size_t i, kept = 0;
	int r;

	for (i = 0; i < it->n; i++) {
		memset(&ask, 0, sizeof(ask));
		ask.sender = it->sender;
		ask.recipient = it->rcpts[i];
		ask.message_id = it->d.mid;
		ask.work_bits = work_bits_for(it, it->rcpts[i]);
		r = introduction_for(x->srv, it->d.intro, &ask, time_now(),
		    introducer);
		if (r < 0)
			return fail(it, 503, "store unavailable");
		ask.introducer = r > 0 ? introducer : NULL;
		log_debug("deliver %s from %s to %s: proof of work %u",
		    it->d.mid, it->sender, it->rcpts[i], ask.work_bits);
		switch (consent_check(x->srv, &ask, time_now(), &wait, &err)) {
		case CONSENT_ACCEPT:
			if (kept != i)
				memcpy(it->rcpts[kept], it->rcpts[i],
				    sizeof(it->rcpts[0]));
			kept++;
			break;
		case CONSENT_LATER:
			it->retry = wait > it->retry ? wait : it->retry;
			break;
		case CONSENT_ERROR:
			log_store(&err, "deliver from %s", x->signer);
			return fail(it, 503, "store unavailable");
		default:
			break;
		}
	}
	if (it->retry > 0)
		return fail(it, 429, "try again later");
	it->n = kept;
	return kept > 0 ? 0 : fail(it, 404, "unknown recipient");
}

/* it->rcpts as it->to_list; -1 out of memory. */
static int
to_list(struct item *it)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, 8192);
	for (i = 0; i < it->n; i++)
		if (sbuf_addf(&sb, "%s%s", i > 0 ? "," : "", it->rcpts[i]) != 0)
			break;
	if (i < it->n || sbuf_add(&sb, "", 1) != 0) {
		sbuf_release(&sb);
		return -1;
	}
	it->to_list = sb.buf;
	return 0;
}

/*
 * Smimp-To: stamped and ours, then each one's consent.  An address
 * named twice (in to and cc, say) is one recipient: decided, counted
 * and stored once, and named once in the receipt.  0 or the status.
 */
static unsigned int
check_recipients(struct exchange *x, struct item *it, const char *sorted)
{
	char list[8192], *p, *comma;
	struct smimp_err err;
	size_t n;

	memcpy(list, it->d.to, strlen(it->d.to) + 1);
	for (p = list, n = 1; *p != '\0'; p++)
		n += *p == ',';
	if (n > MSG_MAX_RECIPIENTS)
		return fail(it, 400, "too many recipients");
	it->rcpts = calloc(n, sizeof(*it->rcpts));
	if (it->rcpts == NULL)
		return fail(it, 503, "out of memory");
	for (p = list; p != NULL; p = comma) {
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		if (address_normalize(p, it->rcpts[it->n], &err) != 0 ||
		    !list_has(sorted, it->rcpts[it->n]) ||
		    strcmp(address_domain(it->rcpts[it->n]),
		    x->srv->cfg.domain) != 0)
			return fail(it, 400, "recipient not stamped or not ours");
		if (!address_listed(it->rcpts, it->n, it->rcpts[it->n]))
			it->n++;
	}
	if (to_list(it) != 0)
		return fail(it, 503, "out of memory");
	return check_consent(x, it);
}

/*
 * The key the item's stamp must verify under: the current identity key
 * of log, or the key of the live device of scope full or send that
 * Smimp-Stamp-Device names; NULL when there is none (revoked, removed,
 * unknown, receive only).
 */
static const unsigned char *
stamp_key(const struct item *it, const struct idlog *log)
{
	const struct iddevice *dev;

	if (log->revoked)
		return NULL;
	if (it->d.stamp_device == NULL || it->d.stamp_device[0] == '\0')
		return log->identity_key;
	dev = idlog_device(log, it->d.stamp_device);
	return dev == NULL || !iddev_scope_sends(dev->scope) ? NULL :
	    dev->signing_key;
}

/*
 * Does the item's stamp verify under the key log gives it?  0, or 1
 * (sorted gets the stamped recipients).
 */
static int
stamp_check(const struct item *it, char *sorted, size_t cap,
    const struct idlog *log)
{
	const unsigned char *key = stamp_key(it, log);
	struct smimp_err err;

	return key == NULL || stamp_recipients(it->d.all, sorted, cap) != 0 ||
	    stamp_verify(it->d.stamp, it->sender, sorted, it->d.mid, it->hash,
	    it->d.sdate, key, &err) != 0;
}

/*
 * Does the stamped list name recipients of this domain only?  A stamp
 * is made for one domain (doc/PROTOCOL.md 8.3), so that no domain
 * learns who else a message went to.  1 if so, 0 if not, -1 for a list
 * that is no stamped list at all (or out of memory).
 */
static int
stamped_ours(const char *all, const char *mine)
{
	char *every, *ours;
	int ret = -1;

	every = malloc(8192);
	ours = malloc(8192);
	if (every != NULL && ours != NULL &&
	    stamp_recipients(all, every, 8192) == 0)
		ret = stamp_recipients_at(all, mine, ours, 8192) == 0 &&
		    strcmp(every, ours) == 0;
	free(every);
	free(ours);
	return ret;
}

/* Why an item waits for its sender's domain (an answer worth a retry). */
static const char sender_unreachable[] = "cannot fetch the sender's "
    "identity now";

/*
 * One item, checked; peer_down when an earlier item of its request found
 * the sender's domain out of reach: a log not kept is then not fetched
 * (the item gets the same 503), so that a peer that stalls holds a
 * worker for one sender of a batch, not for each.
 */
static unsigned int
check_item(struct exchange *x, struct item *it, int peer_down)
{
	const struct batch_item *d = &it->d;
	char sorted[8192];
	struct smimp_err err;
	struct idlog log;
	int bad;

	if (d->from == NULL || d->to == NULL || d->all == NULL ||
	    d->mid == NULL || d->stamp == NULL || d->sdate == NULL ||
	    it->len == 0 || strlen(d->to) >= 8192 || !message_id_valid(d->mid))
		return fail(it, 400, "incomplete delivery");
	switch (stamped_ours(d->all, x->srv->cfg.domain)) {
	case -1:
		return fail(it, 400, "incomplete delivery");
	case 0:
		return fail(it, 400, "the stamp names recipients of other "
		    "domains");
	default:
		break;
	}
	/* Proofs only for this delivery's recipients, at most one each. */
	if (d->work != NULL && !carry_work_ok_in(d->work, d->to))
		return fail(it, 400, "malformed Smimp-Work");
	if (d->intro != NULL && !carry_introduction_ok(d->intro))
		return fail(it, 400, "malformed Smimp-Introduction");
	if (address_normalize(d->from, it->sender, &err) != 0 ||
	    strcmp(address_domain(it->sender), x->signer) != 0)
		return fail(it, 403, "a server relays only for its own domain");
	if (stamp_date_check(d->sdate, time_now(), STAMP_VALIDITY, &err) != 0)
		return fail(it, 403, "delivery stamp out of date");
	if ((it->data != NULL ? age_header_check_mem(it->data,
	    (size_t)it->len, &err) : lseek(it->fd, 0, SEEK_SET) != 0 ||
	    age_header_check_fd(it->fd, &err)) != 0)
		return fail(it, 400, "the body is not an age file");
	if (peer_down && !peer_log_kept(it->sender))
		return fail(it, 503, sender_unreachable);
	if (peer_log(x->srv, x->signer, x->peer_base, it->sender, NULL, &log,
	    &err) != 0) {
		log_warnx("deliver from %s: %s", x->signer, err.msg);
		/* Its domain busy or out of reach: worth a retry. */
		if (err.code == SMIMP_EXIT_TEMPFAIL)
			return fail(it, 503, sender_unreachable);
		return fail(it, 403, "the sender's domain does not publish "
		    "that sender");
	}
	bad = stamp_check(it, sorted, sizeof(sorted), &log);
	idlog_release(&log);
	/*
	 * The cached log may be older than a rotation: fetched anew once,
	 * the sender's domain says which key is current now.
	 */
	if (bad && peer_log_refresh(x->srv, x->signer, x->peer_base,
	    it->sender, NULL, "stamp", &log, &err) == 0) {
		bad = stamp_check(it, sorted, sizeof(sorted), &log);
		idlog_release(&log);
	}
	if (bad)
		return fail(it, 403, "delivery stamp does not verify");
	if (stamp_hash(it->sh, it->sender, sorted, d->mid, it->hash,
	    d->sdate) != 0)
		return fail(it, 400, "incomplete delivery");
	return check_recipients(x, it, sorted);
}

/*
 * Store the items that passed, in one transaction with the request's
 * nonce; a status for each.  STORE_OK, STORE_REPLAY (nothing stored) or
 * STORE_ERROR.
 */
static int
store_items(struct exchange *x, struct item *items, size_t n)
{
	struct store_nonce nonce = { x->sig.signer, x->sig.nonce,
	    x->nonce_expires };
	struct store_delivery *d;
	struct store_body *bodies;
	struct smimp_err err;
	int *res, ret = STORE_ERROR;
	size_t i, j, nd = 0;

	for (i = 0; i < n; i++)
		nd += items[i].status == 0 ? items[i].n : 0;
	d = calloc(nd + 1, sizeof(*d));
	res = calloc(nd + 1, sizeof(*res));
	bodies = calloc(n, sizeof(*bodies));
	if (d == NULL || res == NULL || bodies == NULL)
		goto out;
	for (i = 0, nd = 0; i < n; i++) {
		if (items[i].status != 0)
			continue;
		if (items[i].data != NULL)
			bodies[i].data = items[i].data;
		else
			bodies[i].path = items[i].spool;
		bodies[i].len = items[i].len;
		for (j = 0; j < items[i].n; j++) {
			d[nd].recipient = items[i].rcpts[j];
			d[nd].sender = items[i].sender;
			d[nd].message_id = items[i].d.mid;
			d[nd].body = &bodies[i];
			nd++;
		}
	}
	ret = store_deliver(x->srv->store, &nonce, d, nd, res, time_now(),
	    &err);
	if (ret == STORE_ERROR)
		log_store(&err, "deliver from %s", x->signer);
	if (ret != STORE_OK)
		goto out;
	/* An item over quota for any of its recipients is refused as such. */
	for (i = 0, nd = 0; i < n; i++) {
		if (items[i].status != 0)
			continue;
		for (j = 0; j < items[i].n; j++, nd++)
			if (res[nd] == STORE_QUOTA)
				(void)fail(&items[i], 507, "quota exceeded");
	}
out:
	free(bodies);
	free(res);
	free(d);
	return ret;
}

/*
 * The answer o for an item taken gets this server's receipt for it
 * (doc/PROTOCOL.md 8.14).  Stored is stored: a receipt that cannot be
 * made leaves the answer without one.  o, or NULL when o is.
 */
static json_t *
with_receipt(struct server *srv, const struct item *it, json_t *o)
{
	struct smimp_err err;
	char *text;

	if (o == NULL)
		return NULL;
	if (receipts_sign(srv, it->sender, it->mid, it->hash, it->to_list,
	    &text, &err) != 0) {
		log_warnx("deliver %s: %s", it->mid, err.msg);
		return o;
	}
	(void)json_object_set_new(o, "receipt", json_string(text));
	free(text);
	return o;
}

/* ---- one message ---- */

void
inbound_deliver(struct exchange *x)
{
	struct item *it = calloc(1, sizeof(*it));
	int r;

	if (it == NULL) {
		reply_error(x, 503, "out of memory");
		return;
	}
	it->d.from = exchange_header(x, "Smimp-From");
	it->d.to = exchange_header(x, "Smimp-To");
	it->d.all = exchange_header(x, "Smimp-Stamp-To");
	it->d.mid = exchange_header(x, "Smimp-Message-Id");
	it->d.stamp = exchange_header(x, "Smimp-Stamp");
	it->d.sdate = exchange_header(x, "Smimp-Stamp-Date");
	it->d.stamp_device = exchange_header(x, "Smimp-Stamp-Device");
	it->d.work = exchange_header(x, "Smimp-Work");
	it->d.intro = exchange_header(x, "Smimp-Introduction");
	it->fd = x->spool_fd;
	it->len = x->received;
	if (x->in_memory)
		it->data = (const unsigned char *)(x->small.len > 0 ?
		    x->small.buf : "");
	memcpy(it->hash, x->body_hash, 32);
	(void)snprintf(it->spool, sizeof(it->spool), "%s", x->spool);
	/* Refused or not, the nonce is claimed. */
	if (check_item(x, it, 0) == 0)
		(void)snprintf(it->mid, sizeof(it->mid), "%s", it->d.mid);
	r = store_items(x, it, 1);
	if (r == STORE_REPLAY)
		reply_error(x, 401, "replayed request");
	else if (r != STORE_OK)
		reply_error(x, 503, "store unavailable");
	else if (it->status == 0)
		reply_json(x, 201, with_receipt(x->srv, it, json_pack("{s:s}",
		    "message_id", it->mid)));
	else if (it->status == 429)
		reply_retry(x, 429, it->retry, it->why);
	else
		reply_error(x, it->status, it->why);
	free(it->rcpts);
	free(it->to_list);
	free(it);
}

/* ---- batches ---- */

/* Where an item's body goes as it is read: a spool file or memory. */
struct sink {
	int fd;			/* or -1: into buf */
	unsigned char *buf;
	size_t off;
	crypto_generichash_state h;
};

static int
sink_piece(const void *data, size_t len, void *arg)
{
	struct sink *k = arg;

	(void)crypto_generichash_update(&k->h, data, len);
	if (k->fd >= 0)
		return fd_write_all(k->fd, data, len);
	memcpy(k->buf + k->off, data, len);
	k->off += len;
	return 0;
}

/* The item's body into the sink, its hash into it->hash. */
static int
sink_fill(struct batch_reader *br, struct item *it, struct sink *k)
{
	(void)crypto_generichash_init(&k->h, NULL, 0, 32);
	if (batch_reader_body(br, it->len, sink_piece, k) != 0)
		return -1;
	(void)crypto_generichash_final(&k->h, it->hash, 32);
	return 0;
}

/*
 * The next item of the batch, its body into memory (small) or a spool
 * file of its own:
 * 1, 0 at the end, -1 malformed (or a spool failure: *io set).
 */
static int
read_item(struct exchange *x, struct batch_reader *br, struct item *it,
    int *io)
{
	struct smimp_err err;
	struct sink k;
	int r;

	it->fd = -1;
	r = batch_reader_next(br, &it->d, &it->len);
	if (r <= 0)
		return r;
	if (it->len > LIVE(x->srv->cfg.max_message))
		return -1;
	memset(&k, 0, sizeof(k));
	k.fd = -1;
	if (it->len <= BODY_INLINE_MAX) {
		/* Small: in memory, what the store keeps inline. */
		k.buf = malloc(it->len > 0 ? (size_t)it->len : 1);
		if (k.buf == NULL)
			return -1;
		it->owned = k.buf;
		it->data = k.buf;
		return sink_fill(br, it, &k) == 0 ? 1 : -1;
	}
	it->fd = tmpfile_beside(x->srv->spool_prefix, it->spool,
	    sizeof(it->spool), &err);
	if (it->fd < 0) {
		*io = 1;
		return -1;
	}
	k.fd = it->fd;
	if (sink_fill(br, it, &k) != 0)
		return -1;
	if (spool_reopen(it->spool, &it->fd) != 0) {
		*io = 1;
		return -1;
	}
	return 1;
}

static void
items_release(struct item *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(items[i].owned);
		free(items[i].rcpts);
		free(items[i].to_list);
		if (items[i].fd >= 0) {
			(void)close(items[i].fd);
			(void)unlink(items[i].spool);
		}
	}
}

static json_t *
batch_answer(struct server *srv, const struct item *items, size_t n)
{
	json_t *list = json_array(), *one;
	size_t i;

	for (i = 0; list != NULL && i < n; i++) {
		one = json_pack("{s:s,s:I}", "message_id", items[i].mid,
		    "status", (json_int_t)(items[i].status == 0 ? 201 :
		    items[i].status));
		if (items[i].status == 0)
			one = with_receipt(srv, &items[i], one);
		else if (one != NULL)
			(void)json_object_set_new(one, "error",
			    json_text(items[i].why));
		/* What a single delivery's Retry-After would have said. */
		if (one != NULL && items[i].status == 429)
			(void)json_object_set_new(one, "retry_after",
			    json_integer((json_int_t)items[i].retry));
		if (json_array_append_new(list, one) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/*
 * Does items[n] carry the message (sender, message id) of an item
 * before it?  Each copy would be counted against its recipients'
 * allowances before any is stored, so that one proof of work would use
 * up as many of them as the batch holds copies (doc/PROTOCOL.md 8.8).
 * An earlier item that never came to its consent counted nothing: its
 * sender is empty, and nothing matches it.
 */
static int
twice_in_batch(const struct item *items, size_t n)
{
	char from[ADDRESS_MAX + 1];
	struct smimp_err err;
	size_t i;

	if (items[n].d.from == NULL || items[n].d.mid == NULL ||
	    address_normalize(items[n].d.from, from, &err) != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(items[i].sender, from) == 0 &&
		    strcmp(items[i].mid, items[n].d.mid) == 0)
			return 1;
	return 0;
}

/*
 * rate-domain counts deliveries, not requests: the request's own token
 * (auth.c) paid for its first item, each further one takes another of
 * the bucket of site (the signer's).  One past the allowance gets 429
 * with the wait, and is not checked.
 */
static int
over_rate(struct exchange *x, const char *site, struct item *it)
{
	unsigned int wait;

	if ((wait = ratelimit_take(&x->srv->per_domain, site)) == 0)
		return 0;
	it->retry = wait;
	(void)fail(it, 429, "rate limit");
	return 1;
}

/*
 * Read, spool and check up to BATCH_MAX items: how many, or -1 with the
 * reply set (malformed framing, more than BATCH_MAX, a spool failure).
 */
static int
read_batch(struct exchange *x, struct batch_reader *br, struct item *items)
{
	char site[ADDRESS_DOMAIN_MAX + 1];
	struct batch_item extra;
	uint64_t len;
	size_t n = 0;
	int r, io = 0, down = 0;

	site_of(x->signer, site);
	if (x->in_memory ? batch_reader_start_mem(br, x->small.buf,
	    x->small.len) != 0 : lseek(x->spool_fd, 0, SEEK_SET) != 0 ||
	    batch_reader_start(br, x->spool_fd) != 0)
		goto malformed;
	for (;;) {
		if (n == BATCH_MAX) {
			if (batch_reader_next(br, &extra, &len) != 0)
				goto malformed;
			break;
		}
		r = read_item(x, br, &items[n], &io);
		if (r == 0)
			break;
		n++;
		if (r < 0)
			goto malformed;
		if (twice_in_batch(items, n - 1))
			(void)fail(&items[n - 1], 400, "the message twice in one "
			    "batch");
		else if (n > 1 && over_rate(x, site, &items[n - 1]))
			;	/* 429, before its stamp costs a verification */
		else if (check_item(x, &items[n - 1], down) == 503 &&
		    items[n - 1].why == sender_unreachable)
			down = 1;
		(void)snprintf(items[n - 1].mid, sizeof(items[n - 1].mid),
		    "%s", items[n - 1].d.mid != NULL &&
		    message_id_valid(items[n - 1].d.mid) ? items[n - 1].d.mid :
		    "");
		memset(&items[n - 1].d, 0, sizeof(items[n - 1].d));
		items[n - 1].d.mid = items[n - 1].mid;
	}
	if (n > 0)
		return (int)n;
malformed:
	items_release(items, n);
	if (io)
		reply_error(x, 503, "cannot spool the message");
	else
		reply_error(x, 400, "malformed batch");
	return -1;
}

void
inbound_deliver_batch(struct exchange *x)
{
	struct batch_reader *br = malloc(sizeof(*br));
	struct item *items = calloc(BATCH_MAX, sizeof(*items));
	json_t *answer;
	int n, r;

	if (br == NULL || items == NULL) {
		reply_error(x, 503, "out of memory");
		goto out;
	}
	n = read_batch(x, br, items);
	if (n < 0)
		goto out;
	r = store_items(x, items, (size_t)n);
	if (r == STORE_REPLAY) {
		reply_error(x, 401, "replayed request");
	} else if (r != STORE_OK) {
		reply_error(x, 503, "store unavailable");
	} else if ((answer = batch_answer(x->srv, items,
	    (size_t)n)) == NULL) {
		reply_error(x, 503, "out of memory");
	} else {
		reply_json(x, 200, answer);
	}
	items_release(items, (size_t)n);
out:
	free(items);
	free(br);
}
