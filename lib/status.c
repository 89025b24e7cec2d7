/*
 * status.c - ask the home server where a sent message is, and check
 * the receipts it holds for it (see status.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "stamp.h"
#include "status.h"
#include "banned.h"

#define WAIT_FIRST_MS	1000
#define WAIT_MAX_MS	15000

void
msg_status_release(struct msg_status *st)
{
	size_t i;

	for (i = 0; st->d != NULL && i < st->n; i++) {
		free(st->d[i].receipt);
		free(st->d[i].r);
	}
	free(st->d);
	memset(st, 0, sizeof(*st));
}

/* A string member of o into out (cap bytes, cut), "" when none. */
static void
copy_str(json_t *o, const char *name, char *out, size_t cap)
{
	const char *v = json_string_value(json_object_get(o, name));

	(void)snprintf(out, cap, "%s", v != NULL ? v : "");
}

/* A date member of o, which must be one, into out. */
static int
copy_date(json_t *o, const char *name, char out[TIME_STRLEN])
{
	const char *v = json_string_value(json_object_get(o, name));
	int64_t t;

	if (v == NULL || time_parse(v, strlen(v), &t) != 0)
		return -1;
	time_format(t, out);
	return 0;
}

/* One domain's row of an answer into d; -1 when it is none. */
static int
parse_domain(json_t *o, struct status_domain *d)
{
	static const char *const states[] = { "", "queued", "delivered",
	    "bounced" };
	char norm[ADDRESS_DOMAIN_MAX + 1];
	const char *v, *text;
	struct smimp_err err;
	size_t i;

	v = json_string_value(json_object_get(o, "domain"));
	if (v == NULL || domain_normalize(v, norm, &err) != 0 ||
	    strcmp(v, norm) != 0)
		return -1;
	memcpy(d->domain, v, strlen(v) + 1);
	v = json_string_value(json_object_get(o, "state"));
	for (i = 1; v != NULL && i < 4 && strcmp(v, states[i]) != 0; i++)
		;
	if (v == NULL || i == 4)
		return -1;
	d->state = (enum status_state)i;
	v = json_string_value(json_object_get(o, "recipients"));
	if (v == NULL || strlen(v) > RECEIPT_LIST_MAX)
		return -1;
	memcpy(d->recipients, v, strlen(v) + 1);
	if (d->state == STATUS_QUEUED) {
		d->attempts = (unsigned int)json_integer_value(
		    json_object_get(o, "attempts"));
		d->held = json_is_true(json_object_get(o, "held"));
		copy_str(o, "error", d->text, sizeof(d->text));
		return copy_date(o, "queued", d->date) != 0 ||
		    copy_date(o, "next_try", d->next_try) != 0 ? -1 : 0;
	}
	if (d->state == STATUS_BOUNCED)
		copy_str(o, "reason", d->text, sizeof(d->text));
	text = json_string_value(json_object_get(o, "receipt"));
	if (d->state == STATUS_DELIVERED && text != NULL &&
	    strlen(text) <= RECEIPT_MAX && (d->receipt = strdup(text)) == NULL)
		return -1;
	if (d->state == STATUS_DELIVERED && text != NULL && d->receipt == NULL) {
		d->check = CHECK_FAILED;
		(void)snprintf(d->why, sizeof(d->why), "a receipt of more than "
		    "%d bytes", RECEIPT_MAX);
	}
	return copy_date(o, "date", d->date);
}

int
status_parse(const char *body, size_t len, const char *message_id,
    struct msg_status *st, struct smimp_err *err)
{
	json_t *root, *list, *o;
	const char *mid;
	size_t i;
	int ret = -1;

	root = json_loadb(body, len, 0, NULL);
	list = json_object_get(root, "domains");
	mid = json_string_value(json_object_get(root, "message_id"));
	if (mid == NULL || strcmp(mid, message_id) != 0 ||
	    !json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > STATUS_DOMAINS_MAX)
		goto out;
	st->d = calloc(json_array_size(list), sizeof(*st->d));
	if (st->d == NULL)
		goto out;
	json_array_foreach(list, i, o) {
		st->n = i + 1;
		if (parse_domain(o, &st->d[i]) != 0)
			goto out;
	}
	ret = 0;
out:
	json_decref(root);
	if (ret != 0) {
		msg_status_release(st);
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "the home server "
		    "answered a malformed status for %s", message_id);
	}
	return ret;
}

int
status_fetch(struct remote *r, const struct identity *id,
    const char *message_id, struct msg_status *st, struct smimp_err *err)
{
	const char *home = address_domain(id->sk.address);
	struct remote_reply rep;
	char base[512], path[MESSAGE_ID_MAX + 32];
	struct signer me;
	int ret;

	memset(st, 0, sizeof(*st));
	if (!message_id_valid(message_id))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' is no "
		    "message id", message_id);
	(void)snprintf(st->message_id, sizeof(st->message_id), "%s",
	    message_id);
	(void)snprintf(path, sizeof(path), "/v1/messages/%s", message_id);
	identity_signer(id, &me);
	if (remote_base(r, home, base, sizeof(base), err) != 0 ||
	    remote_request(r, "GET", home, base, path, NULL, 0, &me, NULL,
	    STATUS_ANSWER_MAX, &rep, err) != 0)
		return -1;
	if (rep.status == 404)
		ret = smimp_err_set(err, SMIMP_EXIT_FAIL, "no message %s sent "
		    "by %s", message_id, id->sk.address);
	else if (rep.status != 200)
		ret = remote_reply_fail(&rep, message_id, err);
	else
		ret = status_parse(rep.body.buf, rep.body.len, message_id, st,
		    err);
	remote_reply_release(&rep);
	return ret;
}

/* The server keys fetched in one check, a domain once. */
struct keys {
	size_t n;
	char domain[STATUS_DOMAINS_MAX][ADDRESS_DOMAIN_MAX + 1];
	unsigned char key[STATUS_DOMAINS_MAX][32];
	int ok[STATUS_DOMAINS_MAX];
	char why[STATUS_DOMAINS_MAX][SMIMP_ERR_MSG];
};

/* domain's server key, as a peer finds it: NULL (why in *why) if none. */
static const unsigned char *
key_of(struct remote *r, struct keys *k, const char *domain,
    const char **why)
{
	struct smimp_err err;
	char base[512];
	size_t i;

	for (i = 0; i < k->n && strcmp(k->domain[i], domain) != 0; i++)
		;
	if (i == k->n) {
		if (k->n == STATUS_DOMAINS_MAX)
			return NULL;
		k->n++;
		memcpy(k->domain[i], domain, strlen(domain) + 1);
		smimp_err_clear(&err);
		k->ok[i] = remote_base(r, domain, base, sizeof(base),
		    &err) == 0 && remote_server_key(r, domain, base,
		    k->key[i], &err) == 0;
		(void)snprintf(k->why[i], sizeof(k->why[i]), "%s", err.msg);
	}
	*why = k->why[i];
	return k->ok[i] ? k->key[i] : NULL;
}

/* One domain's receipt, checked: d->check and d->why. */
static void
verify_one(struct remote *r, struct keys *k, const struct identity *id,
    const char *message_id, struct status_domain *d,
    const unsigned char *hash, const char *to)
{
	const unsigned char *key;
	struct smimp_err err;
	const char *why = "";

	smimp_err_clear(&err);
	free(d->r);
	d->r = malloc(sizeof(*d->r));
	if (d->r == NULL) {
		d->check = CHECK_FAILED;
		(void)snprintf(d->why, sizeof(d->why), "out of memory");
		return;
	}
	if (receipt_parse(d->r, d->receipt, strlen(d->receipt), &err) != 0 ||
	    receipt_check(d->r, d->domain, id->sk.address, message_id, hash,
	    to, &err) != 0) {
		d->check = CHECK_FAILED;
		(void)snprintf(d->why, sizeof(d->why), "%s", err.msg);
		return;
	}
	key = key_of(r, k, d->domain, &why);
	if (key == NULL) {
		d->check = CHECK_UNREACHABLE;
		(void)snprintf(d->why, sizeof(d->why), "%s", why);
		return;
	}
	d->check = receipt_verify(d->r, d->receipt, key, &err) == 0 ?
	    CHECK_VERIFIED : CHECK_FAILED;
	(void)snprintf(d->why, sizeof(d->why), "%s", err.msg);
}

void
status_verify(struct remote *r, const struct identity *id,
    struct msg_status *st, const unsigned char *hash, const char *to)
{
	struct keys *k = calloc(1, sizeof(*k));
	size_t i;

	for (i = 0; i < st->n; i++) {
		if (st->d[i].state != STATUS_DELIVERED ||
		    st->d[i].receipt == NULL)
			continue;
		if (k == NULL) {
			st->d[i].check = CHECK_UNREACHABLE;
			(void)snprintf(st->d[i].why, sizeof(st->d[i].why),
			    "out of memory");
			continue;
		}
		verify_one(r, k, id, st->message_id, &st->d[i], hash, to);
	}
	free(k);
}

size_t
status_pending(const struct msg_status *st, const char *to,
    char (*out)[ADDRESS_DOMAIN_MAX + 1], size_t cap)
{
	char (*doms)[ADDRESS_DOMAIN_MAX + 1];
	size_t nd, i, j, n = 0;

	doms = calloc(STATUS_DOMAINS_MAX, sizeof(*doms));
	if (doms == NULL)
		return 1;	/* unknown: not final */
	nd = stamp_domains(to, doms, STATUS_DOMAINS_MAX);
	for (i = 0; i < nd; i++) {
		for (j = 0; j < st->n; j++)
			if (strcmp(st->d[j].domain, doms[i]) == 0 &&
			    (st->d[j].state == STATUS_DELIVERED ||
			    st->d[j].state == STATUS_BOUNCED))
				break;
		if (j < st->n)
			continue;
		if (n < cap)
			memcpy(out[n], doms[i], sizeof(doms[i]));
		n++;
	}
	free(doms);
	return n;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		continue;
}

/*
 * Ask after each message not final yet: 1 when all are final, 0 when
 * not, -1 when one cannot be asked after (a temporary failure only
 * waits for the next round).
 */
static int
poll_once(struct remote *r, const struct identity *id,
    struct status_wait *w, size_t n, struct smimp_err *err)
{
	struct msg_status st;
	struct smimp_err one;
	int all = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (w[i].final)
			continue;
		smimp_err_clear(&one);
		if (status_fetch(r, id, w[i].message_id, &st, &one) != 0) {
			if (one.code != SMIMP_EXIT_TEMPFAIL) {
				*err = one;
				return -1;
			}
			all = 0;
			continue;
		}
		msg_status_release(&w[i].st);
		w[i].st = st;
		w[i].final = status_pending(&st, w[i].to, NULL, 0) == 0;
		all &= w[i].final;
	}
	return all;
}

int
status_wait(struct remote *r, const struct identity *id,
    struct status_wait *w, size_t n, unsigned int timeout,
    struct smimp_err *err)
{
	int64_t deadline = mono_ms() + (int64_t)timeout * 1000, left;
	int64_t delay = WAIT_FIRST_MS;
	size_t i;
	int ret;

	for (;;) {
		ret = poll_once(r, id, w, n, err);
		if (ret < 0)
			break;
		if (ret == 1) {
			ret = 0;
			break;
		}
		left = deadline - mono_ms();
		if (left <= 0) {
			ret = 1;
			break;
		}
		sleep_ms(delay < left ? delay : left);
		delay = delay * 3 / 2 < WAIT_MAX_MS ? delay * 3 / 2 :
		    WAIT_MAX_MS;
	}
	for (i = 0; i < n; i++)
		status_verify(r, id, &w[i].st, w[i].hash, w[i].to);
	return ret;
}
