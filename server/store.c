/*
 * store.c - the store URI, the choice of back end, and the thin calls
 * through its table of operations (store.h says what each one means),
 * which check what callers hand in, once for every back end.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "store_backend.h"
#include "vis.h"
#include "banned.h"

/* The schemes of a store URI and their back ends, the default first. */
static const struct {
	const char *name;
	const struct store_ops *ops;
} schemes[] = {
	{ "sqlite", &store_sqlite_ops },
	{ "postgresql", &store_postgresql_ops },
	{ "postgres", &store_postgresql_ops },	/* libpq's other name */
};

#define NSCHEMES	(sizeof(schemes) / sizeof(schemes[0]))

static int sent_check(const struct store_sent *s, size_t n,
    struct smimp_err *err);
#define SCHEME_MAX	32

/*
 * The length of the URI's scheme (letters, then letters, digits, '+',
 * '-' or '.', then ':'), or 0 when it has none: then it is a path.
 */
static size_t
scheme_len(const char *uri)
{
	size_t i;

	if (!((uri[0] >= 'a' && uri[0] <= 'z') ||
	    (uri[0] >= 'A' && uri[0] <= 'Z')))
		return 0;
	for (i = 1; uri[i] != '\0' && uri[i] != ':'; i++)
		if (!((uri[i] >= 'a' && uri[i] <= 'z') ||
		    (uri[i] >= 'A' && uri[i] <= 'Z') ||
		    (uri[i] >= '0' && uri[i] <= '9') || uri[i] == '+' ||
		    uri[i] == '-' || uri[i] == '.'))
			return 0;
	return uri[i] == ':' ? i : 0;
}

/*
 * Where a URI holds passwords, as libpq takes them: the user
 * information's, "scheme://user:PASSWORD@host...", and each parameter
 * "password=PASSWORD".  At most SECRETS_MAX spans (offset, length, the
 * empty ones left out); their count.
 */
#define SECRETS_MAX	8

static size_t
uri_secrets(const char *uri, size_t off[SECRETS_MAX],
    size_t len[SECRETS_MAX])
{
	const char *p, *q, *end, *at = NULL, *colon;
	size_t n = 0, k;

	p = strstr(uri, "://");
	if (p == NULL)
		return 0;
	p += 3;
	/* The user information ends at the authority's last '@'. */
	end = p + strcspn(p, "/?");
	for (q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL && at - colon > 1) {
			off[n] = (size_t)(colon + 1 - uri);
			len[n++] = (size_t)(at - colon - 1);
		}
	}
	for (p = strchr(end, '?'); p != NULL && n < SECRETS_MAX;
	    p = strchr(p, '&')) {
		p++;
		k = strcspn(p, "&");
		if (strncmp(p, "password=", 9) == 0 && k > 9) {
			off[n] = (size_t)(p + 9 - uri);
			len[n++] = k - 9;
		}
	}
	return n;
}

int
store_uri_has_password(const char *uri)
{
	size_t off[SECRETS_MAX], len[SECRETS_MAX];

	return uri_secrets(uri, off, len) > 0;
}

void
store_uri_hide(char *uri)
{
	size_t off[SECRETS_MAX], len[SECRETS_MAX], n, i;

	n = uri_secrets(uri, off, len);
	for (i = 0; i < n; i++)
		memset(uri + off[i], 'x', len[i]);
}

/* The first place in text where the n bytes of what occur, or NULL. */
static char *
find(char *text, const char *what, size_t n)
{
	for (; *text != '\0'; text++)
		if (strncmp(text, what, n) == 0)
			return text;
	return NULL;
}

void
store_text_hide(char *text, size_t cap, const char *uri)
{
	static const char mark[] = "<password>";
	size_t off[SECRETS_MAX], len[SECRETS_MAX], n, i, at, tail;
	char *hit;

	n = uri_secrets(uri, off, len);
	for (i = 0; i < n; i++) {
		at = 0;
		while ((hit = find(text + at, uri + off[i], len[i])) != NULL) {
			at = (size_t)(hit - text);
			tail = strlen(hit + len[i]);
			if (at + strlen(mark) + tail >= cap) {
				/* No room for the rest: it goes. */
				(void)snprintf(hit, cap - at, "%s", mark);
				break;
			}
			memmove(hit + strlen(mark), hit + len[i], tail + 1);
			memcpy(hit, mark, strlen(mark));
			at += strlen(mark);
		}
	}
}

/* uri's back end, and the rest of it into *rest; NULL when refused. */
static const struct store_ops *
store_scheme(const char *uri, const char **rest, struct smimp_err *err)
{
	const struct store_ops *ops = schemes[0].ops;
	size_t n = scheme_len(uri), i;

	*rest = uri;
	if (n > 0) {
		for (ops = NULL, i = 0; i < NSCHEMES && ops == NULL; i++)
			if (strlen(schemes[i].name) == n &&
			    strncmp(schemes[i].name, uri, n) == 0)
				ops = schemes[i].ops;
		if (ops == NULL) {
			/* Not the rest of it, which may hold a password. */
			smimp_err_set(err, SMIMP_EXIT_USAGE, "unknown store "
			    "scheme '%.*s' (known: sqlite, postgresql)",
			    (int)(n < SCHEME_MAX ? n : SCHEME_MAX), uri);
			return NULL;
		}
		*rest = uri + n + 1;
	}
	if (**rest == '\0') {
		smimp_err_set(err, SMIMP_EXIT_USAGE, "store '%.100s' names no "
		    "%s", uri, ops == &store_sqlite_ops ? "directory" :
		    "database");
		return NULL;
	}
	return ops;
}

struct store *
store_open_existing(const char *uri, const char *local,
    const struct store_limits *lim, struct smimp_err *err)
{
	const struct store_ops *ops;
	const char *rest;

	ops = store_scheme(uri, &rest, err);
	if (ops == NULL)
		return NULL;
	if (!ops->exists(rest)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "no store in '%.200s' (a "
		    "server makes it when it first starts, or adduser or "
		    "invite does)", rest);
		return NULL;
	}
	return store_open(uri, local, lim, err);
}

int
store_exists(const char *uri, struct smimp_err *err)
{
	const struct store_ops *ops;
	const char *rest;

	ops = store_scheme(uri, &rest, err);
	if (ops == NULL)
		return -1;
	return ops->exists(rest) ? 1 : 0;
}

struct store *
store_open(const char *uri, const char *local,
    const struct store_limits *lim, struct smimp_err *err)
{
	const struct store_ops *ops;
	const char *rest;
	struct store *st;

	ops = store_scheme(uri, &rest, err);
	if (ops == NULL)
		return NULL;
	st = ops->open(rest, local, err);
	if (st == NULL)
		return NULL;
	if (lim != NULL)
		st->limits = *lim;
	else
		memset(&st->limits, 0, sizeof(st->limits));
	st->commit_fn = NULL;
	st->commit_arg = NULL;
	st->watch = NULL;
	st->watch_arg = NULL;
	return st;
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

const char *
store_spool_dir(struct store *st)
{
	return st->ops->spool_dir(st);
}

/* Set before the store is shared among threads: read without a lock. */
void
store_watch(struct store *st, store_watch_fn *fn, void *arg)
{
	st->watch = fn;
	st->watch_arg = arg;
}

int
store_user_add(struct store *st, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	if (store_log_check(log, err) != 0)
		return STORE_ERROR;
	return st->ops->user_add(st, address, log, now, err);
}

int
store_user_get(struct store *st, const char *address, unsigned char **log,
    size_t *len, struct smimp_err *err)
{
	return st->ops->user_get(st, address, log, len, err);
}

int
store_user_log_update(struct store *st, const char *address,
    const unsigned char *old, size_t old_len, const struct store_log *log,
    int64_t now, struct smimp_err *err)
{
	if (store_log_check(log, err) != 0)
		return STORE_ERROR;
	if (old_len > INT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "identity too "
		    "large");
	return st->ops->user_log_update(st, address, old, old_len, log, now,
	    err);
}

int
store_user_del(struct store *st, const char *address, int64_t now,
    struct smimp_err *err)
{
	return st->ops->user_del(st, address, now, err);
}

int
store_user_list(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	return st->ops->user_list(st, fn, arg, err);
}

int
store_user_list_unsynced(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	return st->ops->user_list_unsynced(st, fn, arg, err);
}

int
store_invite_add(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, int64_t expires, struct smimp_err *err)
{
	return st->ops->invite_add(st, hash, address, expires, err);
}

int
store_invite_check(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], int64_t now,
    char address[ADDRESS_MAX + 1], struct smimp_err *err)
{
	return st->ops->invite_check(st, hash, now, address, err);
}

int
store_invite_redeem(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	if (store_log_check(log, err) != 0)
		return STORE_ERROR;
	return st->ops->invite_redeem(st, hash, address, log, now, err);
}

int
store_invite_list(struct store *st,
    int (*fn)(const char *, int64_t, void *), void *arg,
    struct smimp_err *err)
{
	return st->ops->invite_list(st, fn, arg, err);
}

int
store_nonce_claim(struct store *st, const char *signer, const char *nonce,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	return st->ops->nonce_claim(st, signer, nonce, expires, now, err);
}

int
store_submit(struct store *st, const struct store_submission *sub,
    int64_t now, struct smimp_err *err)
{
	if (store_submission_check(sub, err) != 0 ||
	    (sub->sent != NULL && sent_check(sub->sent, 1, err) != 0))
		return STORE_ERROR;
	return st->ops->submit(st, sub, now, err);
}

int
store_deliver(struct store *st, const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results, int64_t now,
    struct smimp_err *err)
{
	if (store_deliver_check(nonce, d, n, results, err) != 0)
		return STORE_ERROR;
	if (n == 0 && nonce == NULL)
		return STORE_OK;
	return st->ops->deliver(st, nonce, d, n, results, now, err);
}

int
store_mailbox_list(struct store *st, const char *owner, const char *device,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err)
{
	return st->ops->mailbox_list(st, owner, device, fn, arg, err);
}

int
store_mailbox_open(struct store *st, const char *owner, const char *device,
    int64_t id, int *fd, uint64_t *len, struct smimp_err *err)
{
	return st->ops->mailbox_open(st, owner, device, id, fd, len, err);
}

int
store_mailbox_ack(struct store *st, const char *owner, const char *device,
    const int64_t *ids, size_t n, size_t *acked, int64_t now,
    struct smimp_err *err)
{
	*acked = 0;
	if (n == 0)
		return STORE_OK;
	return st->ops->mailbox_ack(st, owner, device, ids, n, acked, now,
	    err);
}

int
store_outbound_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_until, unsigned int domain_cap, uint64_t max_bytes,
    const int64_t *done, size_t ndone, struct outbound *obs, size_t cap,
    size_t *n, struct smimp_err *err)
{
	*n = 0;
	if (cap == 0 || owner == NULL || *owner == '\0')
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a claim "
		    "needs an owner and room");
	return st->ops->outbound_claim(st, owner, now, lease_until, domain_cap,
	    max_bytes, done, ndone, obs, cap, n, err);
}

int
store_outbound_open(struct store *st, int64_t id, int *fd, uint64_t *len,
    struct smimp_err *err)
{
	return st->ops->outbound_open(st, id, fd, len, err);
}

int
store_outbound_done(struct store *st, const char *owner, const int64_t *ids,
    size_t n, struct smimp_err *err)
{
	if (n == 0)
		return STORE_OK;
	return st->ops->outbound_done(st, owner, ids, n, err);
}

int
store_outbound_renew(struct store *st, const char *owner, const int64_t *ids,
    size_t n, int64_t lease_until, struct smimp_err *err)
{
	if (n == 0)
		return STORE_OK;
	return st->ops->outbound_renew(st, owner, ids, n, lease_until, err);
}

int
store_outbound_retry(struct store *st, const char *owner, int64_t id,
    int64_t next_try, const char *reason, struct smimp_err *err)
{
	char kept[STORE_REASON_MAX + 1];

	/* Another server's words: escaped, whole characters, bounded. */
	vis_line(reason != NULL ? reason : "", kept, sizeof(kept));
	return st->ops->outbound_retry(st, owner, id, next_try, kept, err);
}

int
store_outbound_bounce(struct store *st, const char *owner, int64_t id,
    const struct store_delivery *notice, int64_t now, struct smimp_err *err)
{
	if (store_delivery_check(notice, err) != 0)
		return STORE_ERROR;
	return st->ops->outbound_bounce(st, owner, id, notice, now, err);
}

int
store_outbound_count(struct store *st, uint64_t *n, struct smimp_err *err)
{
	return st->ops->outbound_count(st, n, err);
}

int
store_outbound_stats(struct store *st, struct store_queue_stats *qs,
    struct smimp_err *err)
{
	memset(qs, 0, sizeof(*qs));
	return st->ops->outbound_stats(st, qs, err);
}

void
store_observe_commits(struct store *st, void (*fn)(void *, int64_t),
    void *arg)
{
	st->commit_fn = fn;
	st->commit_arg = arg;
}

int
store_outbound_list(struct store *st, int64_t id,
    int (*fn)(const struct store_queue_entry *, void *), void *arg,
    struct smimp_err *err)
{
	if (id < 0)
		return STORE_NOT_FOUND;
	return st->ops->outbound_list(st, id, fn, arg, err);
}

int
store_outbound_admin(struct store *st, int64_t id, enum store_queue_op op,
    int64_t now, struct smimp_err *err)
{
	struct store_queue_args a;

	if (id <= 0)
		return STORE_NOT_FOUND;
	memset(&a, 0, sizeof(a));
	a.id = id;
	a.op = op;
	a.now = now;
	return st->ops->outbound_admin(st, &a, err);
}

int
store_outbound_take(struct store *st, int64_t id, const char *owner,
    int64_t now, int64_t lease_until, struct outbound *ob,
    struct smimp_err *err)
{
	struct store_queue_args a;
	int r;

	memset(ob, 0, sizeof(*ob));
	if (owner == NULL || *owner == '\0')
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a claim "
		    "needs an owner");
	if (id <= 0)
		return STORE_NOT_FOUND;
	memset(&a, 0, sizeof(a));
	a.id = id;
	a.now = now;
	a.lease_until = lease_until;
	a.owner = owner;
	a.ob = ob;
	r = st->ops->outbound_take(st, &a, err);
	if (r != STORE_OK)
		outbound_release(ob);
	return r;
}

int
store_stats(struct store *st, struct store_stats *s, struct smimp_err *err)
{
	memset(s, 0, sizeof(*s));
	return st->ops->stats(st, s, err);
}

int
store_check(struct store *st, struct store_health *h, struct smimp_err *err)
{
	memset(h, 0, sizeof(*h));
	return st->ops->check(st, h, err);
}

int
store_backup(struct store *st, const char *dir, uint64_t *bodies,
    struct smimp_err *err)
{
	*bodies = 0;
	return st->ops->backup(st, dir, bodies, err);
}

int
store_policy_put(struct store *st, const struct policy *p,
    const unsigned char *text, size_t len, int64_t now,
    struct smimp_err *err)
{
	if (len == 0 || len > POLICY_MAX_BYTES)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "policy too large");
	return st->ops->policy_put(st, p, text, len, now, err);
}

int
store_policy_get(struct store *st, const char *address, unsigned char **text,
    size_t *len, struct smimp_err *err)
{
	return st->ops->policy_get(st, address, text, len, err);
}

int
store_policy_head(struct store *st, const char *address,
    struct store_policy_head *h, struct smimp_err *err)
{
	return st->ops->policy_head(st, address, h, err);
}

int
store_policy_match(struct store *st, const char *address,
    const unsigned char (*entries)[POLICY_ENTRY_SIZE], size_t n,
    int *listed, struct smimp_err *err)
{
	return st->ops->policy_match(st, address, entries, n, listed, err);
}

int
store_correspondent(struct store *st, const char *local, const char *domain,
    struct smimp_err *err)
{
	return st->ops->correspondent(st, local, domain, err);
}

int
store_consent_count(struct store *st, const struct store_consent_count *c,
    int64_t now, unsigned int *retry_after, struct smimp_err *err)
{
	return st->ops->consent_count(st, c, now, retry_after, err);
}

/* A record as a caller may give it: every field there and in bounds. */
static int
sent_check(const struct store_sent *s, size_t n, struct smimp_err *err)
{
	const struct outbound *ob = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (store_too_long(s[i].sender, sizeof(ob->sender)) ||
		    store_too_long(s[i].message_id, sizeof(ob->message_id)) ||
		    store_too_long(s[i].domain, sizeof(ob->domain)) ||
		    s[i].recipients == NULL || s[i].text == NULL ||
		    (s[i].state != STORE_SENT_DELIVERED &&
		    s[i].state != STORE_SENT_BOUNCED))
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
			    "sent message's state with a missing or over-long "
			    "field");
	return 0;
}

int
store_sent_put(struct store *st, const struct store_sent *s, size_t n,
    struct smimp_err *err)
{
	if (sent_check(s, n, err) != 0)
		return STORE_ERROR;
	return n == 0 ? STORE_OK : st->ops->sent_put(st, s, n, err);
}

int
store_sent_list(struct store *st, const char *sender,
    const char *message_id, int (*fn)(const struct store_sent_row *, void *),
    void *arg, struct smimp_err *err)
{
	return st->ops->sent_list(st, sender, message_id, fn, arg, err);
}

int
store_sent_expire(struct store *st, int64_t before, uint64_t *n,
    struct smimp_err *err)
{
	*n = 0;
	return st->ops->sent_expire(st, before, n, err);
}

void
outbound_release(struct outbound *ob)
{
	free(ob->recipients);
	free(ob->all);
	free(ob->data);
	free(ob->work);
	free(ob->introduction);
	memset(ob, 0, sizeof(*ob));
}

/* ---- one-time prekeys ---- */

int
store_prekey_add(struct store *st, const struct store_prekey_batch *b,
    size_t *count, struct smimp_err *err)
{
	size_t i;

	*count = 0;
	if (b->n == 0 || store_too_long(b->device, STORE_DEVICE_NAME_MAX + 1))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a bad "
		    "prekey batch");
	for (i = 0; i < b->n; i++)
		if (store_too_long(b->keys[i].id, STORE_PREKEY_ID_MAX + 1))
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
			    "bad prekey id");
	return st->ops->prekey_add(st, b, count, err);
}

int
store_prekey_count(struct store *st, const char *address,
    const char *device, size_t *count, struct smimp_err *err)
{
	*count = 0;
	return st->ops->prekey_count(st, address, store_device_key(device),
	    count, err);
}

int
store_prekey_claim(struct store *st, const char *address,
    const char *const *devices, size_t n, struct store_prekey *keys,
    int *states, int64_t now, struct smimp_err *err)
{
	size_t i;

	if (n > STORE_DEVICES_MAX + 1)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: too many "
		    "devices");
	for (i = 0; i < n; i++) {
		states[i] = STORE_PREKEY_NONE;
		if (store_too_long(devices[i], STORE_DEVICE_NAME_MAX + 1))
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
			    "bad device name");
	}
	return st->ops->prekey_claim(st, address, devices, n, keys, states,
	    now, err);
}

int
store_prekey_drop(struct store *st, const char *address, const char *device,
    int64_t through, int64_t now, struct smimp_err *err)
{
	return st->ops->prekey_drop(st, address, store_device_key(device),
	    through, now, err);
}

int
store_server_key(struct store *st, const unsigned char *pk,
    unsigned char recorded[32], struct smimp_err *err)
{
	return st->ops->server_key(st, pk, recorded, err);
}
