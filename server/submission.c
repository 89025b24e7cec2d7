/*
 * submission.c - POST {base}/v1/messages: a user of this domain hands
 * over a sealed message for local and remote recipients.  The body has
 * been spooled and its hash checked against the signed one; what is
 * left is to check the message, plan the relay and store it all in one
 * transaction with the request's nonce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "age.h"
#include "auth.h"
#include "carry.h"
#include "consent.h"
#include "introductions.h"
#include "http.h"
#include "message.h"
#include "receipts.h"
#include "stamp.h"
#include "server.h"
#include "banned.h"

struct plan {
	char rcpts[MSG_MAX_RECIPIENTS][ADDRESS_MAX + 1];
	size_t n;
	const char *local[MSG_MAX_RECIPIENTS];
	size_t nlocal;
	struct store_outbound_new obs[MSG_MAX_RECIPIENTS];
	char *lists[MSG_MAX_RECIPIENTS];	/* obs[i].recipients */
	char *works[MSG_MAX_RECIPIENTS];	/* obs[i].work */
	char *intros[MSG_MAX_RECIPIENTS];	/* obs[i].introduction */
	char stamps[MSG_MAX_RECIPIENTS][STAMP_STRLEN];	/* obs[i].stamp */
	size_t nobs;
	const char *mid;
	const char *work;			/* Smimp-Work, or NULL */
	unsigned char sh[32];	/* stamp_hash of this domain's stamp */
};

static void
plan_release(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->nobs; i++) {
		free(p->lists[i]);
		free(p->works[i]);
		free(p->intros[i]);
	}
	p->nobs = 0;
}

/* Smimp-To into p->rcpts; -1 if malformed. */
static int
parse_recipients(const char *to, struct plan *p)
{
	char list[8192], *s, *comma;
	struct smimp_err err;

	if (strlen(to) >= sizeof(list))
		return -1;
	memcpy(list, to, strlen(to) + 1);
	for (s = list; s != NULL; s = comma) {
		comma = strchr(s, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*s == ' ')
			s++;
		if (p->n == MSG_MAX_RECIPIENTS ||
		    address_normalize(s, p->rcpts[p->n], &err) != 0)
			return -1;
		p->n++;
	}
	return 0;
}

/* One relay entry per other domain, with that domain's recipients. */
static int
plan_domains(struct plan *p, const char *mine)
{
	struct sbuf sb;
	size_t i, j;

	for (i = 0; i < p->n; i++) {
		const char *dom = address_domain(p->rcpts[i]);

		if (strcmp(dom, mine) == 0)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(address_domain(p->rcpts[j]), dom) == 0)
				break;
		if (j < i)
			continue;	/* planned already */
		sbuf_init(&sb, 8192);
		for (j = i; j < p->n; j++)
			if (strcmp(address_domain(p->rcpts[j]), dom) == 0 &&
			    sbuf_addf(&sb, "%s%s", sb.len > 0 ? "," : "",
			    p->rcpts[j]) != 0) {
				sbuf_release(&sb);
				return -1;
			}
		if (sbuf_add(&sb, "", 1) != 0) {
			sbuf_release(&sb);
			return -1;
		}
		memset(&p->obs[p->nobs], 0, sizeof(p->obs[p->nobs]));
		p->works[p->nobs] = NULL;
		p->intros[p->nobs] = NULL;
		p->lists[p->nobs] = sb.buf;
		p->obs[p->nobs].domain = dom;
		p->obs[p->nobs].recipients = sb.buf;
		p->nobs++;
	}
	return 0;
}

/* Is p->rcpts[i] named before it (in to and cc, say)? */
static int
named_before(const struct plan *p, size_t i)
{
	return address_listed(p->rcpts, i, p->rcpts[i]);
}

/* The value of the sender's proof of work for rcpt: 0 when none. */
static unsigned int
work_bits_for(const struct plan *p, const char *rcpt)
{
	return carry_work_bits(p->work, p->sh, rcpt);
}

/*
 * Each local recipient's consent (consent.h): those that take the
 * message go into p->local.  A recipient that refuses is left out
 * silently, as one without an account is: the sender learns nothing of
 * which refused, unless every recipient did (then the answer is 404,
 * after the store has been asked about each).  One that asks to wait
 * (429) holds up the whole submission, nothing stored, so that the
 * client sends it again whole.  A recipient named twice (in to and
 * cc, say) is decided, and counted, once.  0, or -1 with the reply set.
 */
static int
check_local(struct exchange *x, struct plan *p)
{
	char introducer[ADDRESS_MAX + 1];
	struct consent_ask ask;
	struct smimp_err err;
	unsigned int wait, later = 0;
	size_t i;
	int r;

	for (i = 0; i < p->n; i++) {
		if (strcmp(address_domain(p->rcpts[i]), x->srv->cfg.domain) != 0 ||
		    named_before(p, i))
			continue;
		memset(&ask, 0, sizeof(ask));
		ask.sender = x->signer;
		ask.recipient = p->rcpts[i];
		ask.message_id = p->mid;
		ask.work_bits = work_bits_for(p, p->rcpts[i]);
		r = introduction_for(x->srv, exchange_header(x,
		    "Smimp-Introduction"), &ask, time_now(), introducer);
		if (r < 0) {
			reply_error(x, 503, "store unavailable");
			return -1;
		}
		ask.introducer = r > 0 ? introducer : NULL;
		log_debug("submission %s to %s: proof of work %u", p->mid,
		    p->rcpts[i], ask.work_bits);
		switch (consent_check(x->srv, &ask, time_now(), &wait, &err)) {
		case CONSENT_ACCEPT:
			p->local[p->nlocal++] = p->rcpts[i];
			break;
		case CONSENT_LATER:
			later = wait > later ? wait : later;
			break;
		case CONSENT_ERROR:
			reply_unavailable(x, &err);
			return -1;
		default:
			break;
		}
	}
	if (later > 0) {
		reply_retry(x, 429, later, "try again later");
		return -1;
	}
	if (p->nlocal == 0 && p->nobs == 0) {
		reply_error(x, 404, "unknown recipient");
		return -1;
	}
	return 0;
}

/*
 * The consent headers, checked for form (what they say is the consent
 * decision's); the proofs of work and the introductions split by domain
 * for the relay queue, each entry with its own recipients' only.
 */
static int
check_carried(struct exchange *x, struct plan *p, const char *intro)
{
	size_t i;

	if (p->work != NULL && !carry_work_ok(p->work, p->rcpts, p->n)) {
		reply_error(x, 400, "malformed Smimp-Work");
		return -1;
	}
	if (intro != NULL && !carry_introduction_ok(intro)) {
		reply_error(x, 400, "malformed Smimp-Introduction");
		return -1;
	}
	for (i = 0; i < p->nobs; i++) {
		if ((p->work != NULL && carry_work_for_domain(p->work,
		    p->obs[i].domain, &p->works[i]) != 0) || (intro != NULL &&
		    carry_introduction_for_domain(intro, p->obs[i].domain,
		    &p->intros[i]) != 0)) {
			reply_error(x, 503, "out of memory");
			return -1;
		}
		p->obs[i].work = p->works[i];
		p->obs[i].introduction = p->intros[i];
	}
	return 0;
}

/*
 * One domain's stamp from Smimp-Stamps (v), over that domain's
 * recipients in to; into out, and sh its stamp_hash when sh is not
 * NULL.  0, or -1 with the reply set.
 */
static int
check_one_stamp(struct exchange *x, const struct plan *p, const char *v,
    const char *to, const char *domain, char out[STAMP_STRLEN],
    unsigned char *sh)
{
	const char *sdate = exchange_header(x, "Smimp-Stamp-Date");
	struct smimp_err err;
	char sorted[8192];

	if (!stamps_find(v, domain, out)) {
		reply_error(x, 400, strcmp(domain, x->srv->cfg.domain) != 0 ?
		    "other domains need a delivery stamp" : "a proof of work "
		    "needs a delivery stamp");
		return -1;
	}
	if (stamp_recipients_at(to, domain, sorted, sizeof(sorted)) != 0 ||
	    stamp_verify(out, x->signer, sorted, p->mid, x->body_hash, sdate,
	    x->key, &err) != 0 || (sh != NULL && stamp_hash(sh, x->signer,
	    sorted, p->mid, x->body_hash, sdate) != 0)) {
		reply_error(x, 400, "delivery stamp does not verify");
		return -1;
	}
	return 0;
}

/*
 * The delivery stamps (Smimp-Stamps): one for each other domain, naming
 * its recipients only, and one for this domain when a proof of work is
 * for one of its recipients (bound to it); no stamp for a domain the
 * message does not go to.  They are by the key that signed the request,
 * so by the device that submits when a device does; Smimp-Stamp-Device,
 * when given, must name that device.
 */
static int
check_stamp(struct exchange *x, struct plan *p, const char *to)
{
	const char *v = exchange_header(x, "Smimp-Stamps");
	const char *sdate = exchange_header(x, "Smimp-Stamp-Date");
	const char *device = exchange_header(x, "Smimp-Stamp-Device");
	const char *mine = x->srv->cfg.domain;
	char own[STAMP_STRLEN], *local_work = NULL;
	struct smimp_err err;
	int n, has_own, need_own;
	size_t i;

	if (device != NULL && strcmp(device, x->device) != 0) {
		reply_error(x, 400, "Smimp-Stamp-Device does not name the "
		    "device that signed the request");
		return -1;
	}
	if (p->work != NULL && carry_work_for_domain(p->work, mine,
	    &local_work) != 0) {
		reply_error(x, 503, "out of memory");
		return -1;
	}
	need_own = local_work != NULL;
	free(local_work);
	/*
	 * Stamps that nothing needs are still checked when they come: a
	 * sender may send one for its own domain, never one malformed.
	 */
	if (p->nobs == 0 && !need_own && v == NULL)
		return 0;
	if (p->nobs == 0 && !need_own && sdate == NULL) {
		reply_error(x, 400, "malformed Smimp-Stamps");
		return -1;
	}
	if (v == NULL || sdate == NULL) {
		reply_error(x, 400, p->nobs > 0 ? "other domains need a "
		    "delivery stamp" : "a proof of work needs a delivery "
		    "stamp");
		return -1;
	}
	/* A stamp for each domain the message goes to, and no other. */
	n = stamps_count(v);
	has_own = n > 0 && stamps_find(v, mine, own);
	for (i = 0; has_own && i < p->n &&
	    strcmp(address_domain(p->rcpts[i]), mine) != 0; i++)
		;
	if (n < 0 || (size_t)n != p->nobs + (size_t)has_own ||
	    (has_own && i == p->n)) {
		reply_error(x, 400, "malformed Smimp-Stamps");
		return -1;
	}
	if (stamp_date_check(sdate, time_now(), REQSIG_WINDOW, &err) != 0) {
		reply_error(x, 400, "delivery stamp does not verify");
		return -1;
	}
	for (i = 0; i < p->nobs; i++) {
		if (check_one_stamp(x, p, v, to, p->obs[i].domain,
		    p->stamps[i], NULL) != 0)
			return -1;
		p->obs[i].stamp = p->stamps[i];
	}
	return has_own || need_own ? check_one_stamp(x, p, v, to, mine, own,
	    p->sh) : 0;
}

/*
 * This server's receipt for its own domain's recipients (every one the
 * message names here, as for a delivery: who refused it stays unsaid),
 * into *rec with *text and *list (malloc'd); none (*text NULL) when
 * the message has no recipient here.  Kept unsigned: it is signed when
 * the sender asks for it (receipts_draft), the same receipt.  0, or -1
 * with the reply set.
 */
static int
local_receipt(struct exchange *x, const struct plan *p,
    struct store_sent *rec, char **text, char **list)
{
	const char *mine = x->srv->cfg.domain;
	struct smimp_err err;
	struct sbuf sb;
	size_t i;

	*text = *list = NULL;
	sbuf_init(&sb, 8192);
	for (i = 0; i < p->n; i++)
		if (strcmp(address_domain(p->rcpts[i]), mine) == 0 &&
		    !named_before(p, i) && sbuf_addf(&sb, "%s%s",
		    sb.len > 0 ? "," : "", p->rcpts[i]) != 0)
			break;
	if (i < p->n || (sb.len > 0 && sbuf_add(&sb, "", 1) != 0) ||
	    (sb.len > 0 && receipts_draft(x->srv, x->signer, p->mid,
	    x->body_hash, sb.buf, text, &err) != 0)) {
		sbuf_release(&sb);
		reply_error(x, 503, "out of memory");
		return -1;
	}
	if (*text == NULL)
		return 0;
	*list = sb.buf;
	memset(rec, 0, sizeof(*rec));
	rec->sender = x->signer;
	rec->message_id = p->mid;
	rec->domain = mine;
	rec->state = STORE_SENT_DELIVERED;
	rec->recipients = *list;
	rec->text = *text;
	rec->at = time_now();
	return 0;
}

/* A body that is not an age file is refused: nothing is decrypted. */
static int
check_age(struct exchange *x)
{
	struct smimp_err err;

	if (x->received == 0 || (x->in_memory ?
	    age_header_check_mem(x->small.buf, x->small.len, &err) :
	    lseek(x->spool_fd, 0, SEEK_SET) != 0 ||
	    age_header_check_fd(x->spool_fd, &err)) != 0) {
		reply_error(x, 400, "the body is not an age file");
		return -1;
	}
	return 0;
}

void
submission_post(struct exchange *x)
{
	const char *to = exchange_header(x, "Smimp-To");
	const char *mid = exchange_header(x, "Smimp-Message-Id");
	const char *sdate = exchange_header(x, "Smimp-Stamp-Date");
	struct store_submission sub;
	struct store_body body;
	struct store_sent local;
	struct smimp_err err;
	char *receipt = NULL, *list = NULL;
	struct plan *p;
	int r;

	if (to == NULL || mid == NULL || !message_id_valid(mid)) {
		reply_error(x, 400, "needs Smimp-To, Smimp-Message-Id and a "
		    "body");
		return;
	}
	/*
	 * Not zeroed whole: its tables (a hundred kilobytes) are filled as
	 * they are counted, and zeroing them was a tenth of a submission's
	 * own time.
	 */
	p = malloc(sizeof(*p));
	if (p == NULL) {
		reply_error(x, 503, "out of memory");
		return;
	}
	p->n = p->nlocal = p->nobs = 0;
	memset(p->sh, 0, sizeof(p->sh));
	p->mid = mid;
	p->work = exchange_header(x, "Smimp-Work");
	if (parse_recipients(to, p) != 0 ||
	    plan_domains(p, x->srv->cfg.domain) != 0) {
		reply_error(x, 400, "bad recipient list");
		goto out;
	}
	if (check_carried(x, p, exchange_header(x, "Smimp-Introduction")) !=
	    0 || check_age(x) != 0 || check_stamp(x, p, to) != 0 ||
	    check_local(x, p) != 0 ||
	    local_receipt(x, p, &local, &receipt, &list) != 0)
		goto out;
	exchange_body(x, &body);
	memset(&sub, 0, sizeof(sub));
	sub.signer = x->signer;
	sub.nonce = x->sig.nonce;
	sub.nonce_expires = x->nonce_expires;
	sub.sender = x->signer;
	sub.message_id = mid;
	/* Each queue entry has its own domain's stamp (p->obs). */
	sub.all = "";
	sub.stamp = "";
	sub.stamp_date = p->nobs > 0 ? sdate : "";
	sub.stamp_device = x->device;
	sub.body = &body;
	sub.obs = p->obs;
	sub.nobs = p->nobs;
	sub.local = p->local;
	sub.nlocal = p->nlocal;
	sub.device = x->device;		/* its sent copy goes to the others */
	sub.sent = receipt != NULL ? &local : NULL;
	r = store_submit(x->srv->store, &sub, time_now(), &err);
	switch (r) {
	case STORE_OK:
		if (p->nobs > 0)
			relay_wake(x->srv);
		reply_json(x, 201, json_pack("{s:s,s:I}", "message_id", mid,
		    "recipients", (json_int_t)p->n));
		break;
	case STORE_REPLAY:
		reply_error(x, 401, "replayed request");
		break;
	case STORE_QUOTA:
		reply_error(x, 507, "quota exceeded");
		break;
	default:
		reply_unavailable(x, &err);
	}
out:
	free(receipt);
	free(list);
	plan_release(p);
	free(p);
}
