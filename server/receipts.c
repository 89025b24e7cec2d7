/*
 * receipts.c - delivery receipts: signed here for what this server
 * takes, checked when other domains sign them for what the relay
 * delivered, and shown to each sender (see receipts.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "bounce.h"
#include "exitcode.h"
#include "http.h"
#include "receipts.h"
#include "stamp.h"
#include "server.h"
#include "banned.h"

#define EXPIRE_EVERY_S	10	/* as often as the stores sweep */
/* Records of one message: a queue entry and a record per domain. */
#define STATUS_ROWS_MAX	(2 * 256)

/* receipts_sign and receipts_draft: signed now, or to sign later. */
static int
make_receipt(struct server *srv, const char *from, const char *mid,
    const unsigned char hash[32], const char *recipients, int sign,
    char **text, struct smimp_err *err)
{
	char when[TIME_STRLEN];
	struct sbuf sb;

	*text = NULL;
	time_format(time_now(), when);
	sbuf_init(&sb, RECEIPT_MAX + 1);
	if ((sign ? receipt_build(&sb, srv->cfg.domain, from, mid, hash,
	    recipients, when, &srv->signer, err) : receipt_build_unsigned(&sb,
	    srv->cfg.domain, from, mid, hash, recipients, when, err)) != 0 ||
	    sbuf_add(&sb, "", 1) != 0) {
		sbuf_release(&sb);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot sign the "
		    "receipt for %s", mid);
	}
	*text = sb.buf;
	return 0;
}

int
receipts_sign(struct server *srv, const char *from, const char *mid,
    const unsigned char hash[32], const char *recipients, char **text,
    struct smimp_err *err)
{
	return make_receipt(srv, from, mid, hash, recipients, 1, text, err);
}

int
receipts_draft(struct server *srv, const char *from, const char *mid,
    const unsigned char hash[32], const char *recipients, char **text,
    struct smimp_err *err)
{
	return make_receipt(srv, from, mid, hash, recipients, 0, text, err);
}

/*
 * The receipt a draft of this server's (receipts_draft, as kept for
 * sender's message mid) makes once signed, malloc'd; NULL when the
 * draft is not one of this domain's for that message, or cannot be
 * signed.
 */
static char *
receipt_of_draft(struct server *srv, const char *sender, const char *mid,
    const char *draft)
{
	struct smimp_err err;
	struct receipt *r;
	struct sbuf sb;
	int ok;

	sbuf_init(&sb, RECEIPT_MAX + 1);
	if (sbuf_add(&sb, draft, strlen(draft)) != 0 ||
	    receipt_sign(&sb, 0, &srv->signer, &err) != 0 ||
	    (r = malloc(sizeof(*r))) == NULL) {
		sbuf_release(&sb);
		return NULL;
	}
	/* What the store kept is checked as any receipt is, before it goes. */
	ok = receipt_parse(r, sb.buf, sb.len, &err) == 0 &&
	    receipt_check(r, srv->cfg.domain, sender, mid, NULL, NULL,
	    &err) == 0;
	free(r);
	if (!ok) {
		log_warnx("the receipt kept for %s of %s: %s", mid, sender,
		    err.msg);
		sbuf_release(&sb);
		return NULL;
	}
	return sb.buf;
}

int
receipts_check_peer(const struct outbound *ob, const unsigned char hash[32],
    const char *text, struct smimp_err *err)
{
	struct receipt *r;
	int64_t now = time_now();
	int ret = -1;

	if (strlen(text) > RECEIPT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt of "
		    "more than %d bytes", RECEIPT_MAX);
	r = malloc(sizeof(*r));
	if (r == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (receipt_parse(r, text, strlen(text), err) != 0 ||
	    receipt_check(r, ob->domain, ob->sender, ob->message_id, hash,
	    ob->recipients, err) != 0)
		goto out;
	if (r->when > now + STAMP_SKEW || r->when < now - STAMP_SKEW) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt dated %s, "
		    "not now", r->date);
		goto out;
	}
	ret = 0;
out:
	free(r);
	return ret;
}

void
receipts_expire(struct server *srv)
{
	static int64_t next;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct smimp_err err;
	int64_t now = time_now();
	uint64_t n;
	int due;

	pthread_mutex_lock(&mu);
	due = now >= next;
	if (due)
		next = now + EXPIRE_EVERY_S;
	pthread_mutex_unlock(&mu);
	if (!due)
		return;
	if (store_sent_expire(srv->store, now -
	    (int64_t)LIVE(srv->cfg.receipt_retention), &n, &err) != STORE_OK)
		log_store(&err, "receipts");
	else if (n > 0)
		log_debug("receipts: %llu records past receipt-retention "
		    "forgotten", (unsigned long long)n);
}

/* ---- GET {base}/v1/messages/ID: where a sender's message is ---- */

/* The rows of one message, one a domain at most, as they are shown. */
struct status {
	struct server *srv;
	const char *sender, *mid;	/* whose message */
	size_t n;
	struct {
		char domain[ADDRESS_DOMAIN_MAX + 1];
		int rank;		/* which row of the domain shows */
		json_t *item;
	} d[STATUS_ROWS_MAX];
};

/* The reason line of a bounce notice; the text itself when none. */
static json_t *
bounce_reason(const char *text)
{
	const char *p = strstr(text, "\nreason: "), *end;

	if (strncmp(text, BOUNCE_MAGIC, strlen(BOUNCE_MAGIC)) != 0 ||
	    p == NULL)
		return json_string(text);
	p += strlen("\nreason: ");
	end = strchr(p, '\n');
	return json_stringn(p, end != NULL ? (size_t)(end - p) : strlen(p));
}

/*
 * A delivery's receipt as the answer shows it: this domain's own is
 * kept unsigned and signed now (dated when the message was taken).
 */
static json_t *
receipt_item(struct server *srv, const char *sender, const char *mid,
    const struct store_sent_row *r)
{
	char *text;
	json_t *v;

	if (r->text[0] == '\0')
		return json_null();
	if (strcmp(r->domain, srv->cfg.domain) != 0 ||
	    !receipt_is_unsigned(r->text))
		return json_string(r->text);
	text = receipt_of_draft(srv, sender, mid, r->text);
	v = text != NULL ? json_string(text) : json_null();
	free(text);
	return v;
}

/* A row as the answer shows it. */
static json_t *
status_item(struct status *st, const struct store_sent_row *r)
{
	char when[TIME_STRLEN], next[TIME_STRLEN];
	json_t *o;

	time_format(r->at, when);
	o = json_pack("{s:s,s:s}", "domain", r->domain, "recipients",
	    r->recipients);
	if (o == NULL)
		return NULL;
	if (r->state == STORE_SENT_QUEUED) {
		time_format(r->next_try, next);
		(void)json_object_set_new(o, "state", json_string("queued"));
		(void)json_object_set_new(o, "queued", json_string(when));
		(void)json_object_set_new(o, "attempts",
		    json_integer(r->attempts));
		(void)json_object_set_new(o, "next_try", json_string(next));
		(void)json_object_set_new(o, "held", json_boolean(r->held));
		if (r->text[0] != '\0')
			(void)json_object_set_new(o, "error",
			    json_string(r->text));
	} else if (r->state == STORE_SENT_DELIVERED) {
		(void)json_object_set_new(o, "state", json_string("delivered"));
		(void)json_object_set_new(o, "date", json_string(when));
		(void)json_object_set_new(o, "receipt", receipt_item(st->srv,
		    st->sender, st->mid, r));
	} else {
		(void)json_object_set_new(o, "state", json_string("bounced"));
		(void)json_object_set_new(o, "date", json_string(when));
		(void)json_object_set_new(o, "reason", bounce_reason(r->text));
		if (strncmp(r->text, BOUNCE_MAGIC, strlen(BOUNCE_MAGIC)) == 0)
			(void)json_object_set_new(o, "notice",
			    json_string(r->text));
	}
	return o;
}

/*
 * One row: a domain shows its delivery when there is one (a queue
 * entry may linger a moment after it), else its queue entry (a message
 * sent again after a bounce is queued again), else its bounce.
 */
static int
status_row(const struct store_sent_row *r, void *arg)
{
	static const int rank[] = { 2, 3, 1 };
	struct status *st = arg;
	int k = r->state <= STORE_SENT_BOUNCED ? rank[r->state] : 0;
	size_t i;
	json_t *item;

	for (i = 0; i < st->n && strcmp(st->d[i].domain, r->domain) != 0; i++)
		;
	if (i < st->n && st->d[i].rank >= k)
		return 0;
	if (i == st->n && (st->n == STATUS_ROWS_MAX ||
	    strlen(r->domain) >= sizeof(st->d[0].domain)))
		return -1;
	item = status_item(st, r);
	if (item == NULL)
		return -1;
	if (i == st->n) {
		memcpy(st->d[i].domain, r->domain, strlen(r->domain) + 1);
		st->n++;
	} else {
		json_decref(st->d[i].item);
	}
	st->d[i].rank = k;
	st->d[i].item = item;
	return 0;
}

void
status_get(struct exchange *x)
{
	struct status *st;
	struct smimp_err err;
	json_t *list = NULL;
	size_t i;
	int r;

	/* Another user's message is not found, as none is. */
	if (!message_id_valid(x->rest)) {
		reply_error(x, 404, "no such message");
		return;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		reply_error(x, 503, "out of memory");
		return;
	}
	st->srv = x->srv;
	st->sender = x->signer;
	st->mid = x->rest;
	r = store_sent_list(x->srv->store, x->signer, x->rest, status_row, st,
	    &err);
	if (r == STORE_NOT_FOUND)
		reply_error(x, 404, "no such message");
	else if (r != STORE_OK)
		reply_unavailable(x, &err);
	else if ((list = json_array()) == NULL)
		reply_error(x, 503, "out of memory");
	for (i = 0; i < st->n; i++) {
		if (list != NULL && json_array_append(list, st->d[i].item) != 0) {
			json_decref(list);
			list = NULL;
			reply_error(x, 503, "out of memory");
		}
		json_decref(st->d[i].item);
	}
	if (list != NULL)
		reply_json(x, 200, json_pack("{s:s,s:o}", "message_id", x->rest,
		    "domains", list));
	free(st);
}
