/*
 * prekeys.c - one-time prekeys over the network, and one's own secrets
 * of them (see prekeys.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "clientconf.h"
#include "exitcode.h"
#include "lookup.h"
#include "prekeys.h"
#include "reqsig.h"
#include "banned.h"

/* The path of the pool of id's key on its server, into path. */
static void
pool_path(const struct identity *id, const char *tail, char *path,
    size_t cap)
{
	(void)snprintf(path, cap, "/v1/users/%s/prekeys%s", id->sk.address,
	    tail);
}

/* A JSON answer's integer field, or -1. */
static long long
answer_count(const struct remote_reply *rep, const char *field)
{
	json_t *o = json_loadb(rep->body.buf, rep->body.len, 0, NULL), *v;
	long long n = -1;

	v = json_object_get(o, field);
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		n = (long long)json_integer_value(v);
	json_decref(o);
	return n;
}

/*
 * count new prekeys for id's key, signed, into b; their secrets into
 * secrets (count * 32 bytes, sodium_malloc'd by the caller).
 */
static int
batch_make(const struct identity *id, size_t count, struct prekey_batch *b,
    unsigned char *secrets, struct smimp_err *err)
{
	struct signer who;
	size_t i;

	memset(b, 0, sizeof(*b));
	(void)snprintf(b->address, sizeof(b->address), "%s", id->sk.address);
	if (id->sk.is_device)
		(void)snprintf(b->device, sizeof(b->device), "%s",
		    id->sk.device);
	b->date = time_now();
	b->keys = calloc(count, sizeof(*b->keys));
	if (b->keys == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	identity_signer(id, &who);
	for (b->n = 0; b->n < count; b->n++) {
		struct prekey *p = &b->keys[b->n];
		unsigned char *s = secrets + 32 * b->n;

		do {
			randombytes_buf(s, 32);
			if (crypto_scalarmult_base(p->key, s) != 0)
				return smimp_err_set(err, SMIMP_EXIT_FAIL,
				    "cannot make a prekey");
		} while (!age_x25519_public_usable(p->key));
		memcpy(p->address, b->address, sizeof(p->address));
		memcpy(p->device, b->device, sizeof(p->device));
		p->date = b->date;
		do {
			prekey_id_new(p->id);
			for (i = 0; i < b->n && strcmp(b->keys[i].id, p->id); i++)
				;
		} while (i < b->n);
		if (prekey_sign(p, &who, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * Add (secrets not NULL) or take out the secrets of b's prekeys in the
 * store beside id's key, under its lock.
 */
static int
store_change(const struct identity *id, const struct prekey_batch *b,
    const unsigned char *secrets, struct smimp_err *err)
{
	struct prekey_store ps;
	char path[PATH_MAX];
	size_t i;
	int ret = -1;

	if (prekey_store_path(id->key_path, path, sizeof(path), err) != 0)
		return -1;
	if (prekey_store_load(&ps, path, &id->sk, 1, err) != 0)
		goto out;
	for (i = 0; i < b->n; i++) {
		if (secrets != NULL && prekey_store_add(&ps, b->keys[i].id,
		    b->date, secrets + 32 * i) != 0) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot keep the "
			    "prekey %s", b->keys[i].id);
			goto out;
		}
		if (secrets == NULL)
			(void)prekey_store_remove(&ps, b->keys[i].id);
	}
	ret = prekey_store_save(&ps, &id->sk, err);
out:
	prekey_store_release(&ps);
	return ret;
}

/* POST the batch: 0 with *pool, or -1 (refused: *refused set). */
static int
batch_post(struct remote *r, const struct identity *id,
    const struct prekey_batch *b, size_t *pool, int *refused,
    struct smimp_err *err)
{
	const char *domain = address_domain(id->sk.address);
	struct remote_reply rep;
	struct signer who;
	struct sbuf body;
	char base[512], path[400];
	long long n;
	int ret;

	*refused = 0;
	if (prekey_batch_build(b, &body, err) != 0)
		return -1;
	identity_signer(id, &who);
	pool_path(id, "", path, sizeof(path));
	ret = remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", domain, base, path, body.buf, body.len,
	    &who, NULL, REMOTE_MAX_STATUS, &rep, err) != 0 ? -1 : 0;
	sbuf_release(&body);
	if (ret != 0)
		return -1;
	n = answer_count(&rep, "count");
	if (rep.status != 200 || n < 0) {
		*refused = rep.status >= 400 && rep.status < 500 &&
		    rep.status != 408 && rep.status != 429;
		ret = remote_reply_fail(&rep, "upload the prekeys", err);
	} else {
		*pool = (size_t)n;
	}
	remote_reply_release(&rep);
	return ret;
}

int
prekeys_upload(struct remote *r, const struct identity *id, size_t count,
    size_t *pool, struct smimp_err *err)
{
	struct prekey_batch b;
	unsigned char *secrets;
	struct smimp_err ignore;
	int refused = 0, ret = -1;

	memset(&b, 0, sizeof(b));
	if (count == 0 || count > PREKEY_BATCH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a batch holds 1 to "
		    "%d prekeys", PREKEY_BATCH_MAX);
	secrets = sodium_malloc(count * 32);
	if (secrets == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (batch_make(id, count, &b, secrets, err) != 0 ||
	    store_change(id, &b, secrets, err) != 0)
		goto out;
	ret = batch_post(r, id, &b, pool, &refused, err);
	/* Refused for good: its secrets open nothing. */
	if (ret != 0 && refused)
		(void)store_change(id, &b, NULL, &ignore);
out:
	sodium_free(secrets);
	prekey_batch_release(&b);
	return ret;
}

int
prekeys_count(struct remote *r, const struct identity *id, size_t *count,
    struct smimp_err *err)
{
	const char *domain = address_domain(id->sk.address);
	struct remote_reply rep;
	struct signer who;
	char base[512], path[400];
	long long n;
	int ret = 0;

	identity_signer(id, &who);
	pool_path(id, "", path, sizeof(path));
	if (remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, "GET", domain, base, path, NULL, 0, &who, NULL,
	    REMOTE_MAX_STATUS, &rep, err) != 0)
		return -1;
	n = answer_count(&rep, "count");
	if (rep.status != 200 || n < 0)
		ret = remote_reply_fail(&rep, "count the prekeys", err);
	else
		*count = (size_t)n;
	remote_reply_release(&rep);
	return ret;
}

/* Is forward secrecy on for id: a prekey store beside its key? */
static int
store_exists(const struct identity *id)
{
	char path[PATH_MAX];
	struct smimp_err ignore;

	return prekey_store_path(id->key_path, path, sizeof(path),
	    &ignore) == 0 && !(access(path, F_OK) != 0 && errno == ENOENT);
}

int
prekeys_refill(struct remote *r, const struct identity *id,
    size_t *uploaded, size_t *had, struct smimp_err *err)
{
	size_t want, pool = 0;

	*uploaded = *had = 0;
	if (!store_exists(id))
		return 0;
	if (prekeys_count(r, id, had, err) != 0)
		return -1;
	if (*had >= PREKEY_LOW)
		return 0;
	want = PREKEY_POOL_MAX - *had < PREKEY_BATCH_DEFAULT ?
	    PREKEY_POOL_MAX - *had : PREKEY_BATCH_DEFAULT;
	if (prekeys_upload(r, id, want, &pool, err) != 0)
		return -1;
	*uploaded = want;
	return 0;
}

void
prekeys_load(struct identity *id, struct prekey_store *ps,
    struct smimp_err *warn)
{
	char path[PATH_MAX];

	smimp_err_clear(warn);
	memset(ps, 0, sizeof(*ps));
	ps->lock_fd = -1;
	if (prekey_store_path(id->key_path, path, sizeof(path), warn) != 0 ||
	    prekey_store_load(ps, path, &id->sk, 0, warn) != 0) {
		prekey_store_release(ps);
		return;
	}
	id->sk.prekeys = ps;
}

int
prekeys_forget(const struct identity *id, struct prekey_store *ps,
    const char *prekey_id, struct smimp_err *err)
{
	struct prekey_store locked;
	char path[PATH_MAX];
	int ret = -1;

	if (ps != NULL)
		(void)prekey_store_remove(ps, prekey_id);
	if (prekey_store_path(id->key_path, path, sizeof(path), err) != 0)
		return -1;
	if (prekey_store_load(&locked, path, &id->sk, 1, err) == 0)
		ret = prekey_store_remove(&locked, prekey_id) == 0 ? 0 :
		    prekey_store_save(&locked, &id->sk, err);
	prekey_store_release(&locked);
	return ret;
}

/*
 * Where a prekey of device goes among the keys of rcpt, made from log:
 * 0 the identity's, 1 + j the j-th receiving device's (as
 * idlog_receiving_keys counts them); -1 for none (device NULL, not in
 * log, or past rcpt's keys).
 */
static long
key_slot(const struct idlog *log, const struct msg_recipient *rcpt,
    const char *device)
{
	size_t i, j = 0;

	if (device == NULL)
		return -1;
	if (device[0] == '\0')
		return 0;
	for (i = 0; i < log->ndevices && j < IDLOG_MAX_DEVICES &&
	    j < rcpt->ndevice_keys; i++) {
		const struct iddevice *d = &log->devices[i];

		if (d->removed || !iddev_scope_receives(d->scope))
			continue;
		if (strcmp(d->name, device) == 0)
			return (long)(1 + j);
		j++;
	}
	return -1;
}

/* A prekey of the answer, verified under log, into p: 0, or -1. */
static int
prekey_from_json(json_t *o, const struct idlog *log, struct prekey *p)
{
	const char *device = json_string_value(json_object_get(o, "device"));
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *key = json_string_value(json_object_get(o, "key"));
	const char *date = json_string_value(json_object_get(o, "date"));
	const char *sig = json_string_value(json_object_get(o, "signature"));
	const unsigned char *pub;
	struct smimp_err ignore;

	memset(p, 0, sizeof(*p));
	if (device == NULL || id == NULL || key == NULL || date == NULL ||
	    sig == NULL || strlen(device) > IDDEV_NAME_MAX ||
	    !prekey_id_valid(id, strlen(id)) ||
	    time_parse(date, strlen(date), &p->date) != 0 ||
	    b64_decode_exact(key, strlen(key), p->key, 32) != 0 ||
	    b64_decode_exact(sig, strlen(sig), p->sig, 64) != 0 ||
	    !age_x25519_public_usable(p->key))
		return -1;
	memcpy(p->address, log->address, sizeof(p->address));
	memcpy(p->device, device, strlen(device) + 1);
	memcpy(p->id, id, PREKEY_ID_LEN + 1);
	pub = prekey_signing_key(p, log);
	return pub != NULL && prekey_verify(p, pub, &ignore) == 0 ? 0 : -1;
}

/*
 * The keys the answer says have no prekey left (list): each of rcpt's
 * keys once, and none that got a prekey, however often a server names
 * it, so that the warning counts keys the recipient has.
 */
static void
count_exhausted(json_t *list, const struct idlog *log,
    const struct msg_recipient *rcpt, struct prekeys_claim *c)
{
	unsigned char seen[1 + IDLOG_MAX_DEVICES] = { 0 };
	json_t *v;
	size_t i;
	long slot;

	json_array_foreach(list, i, v) {
		slot = key_slot(log, rcpt, json_string_value(v));
		if (slot < 0 || seen[slot] || c->keys[slot].id[0] != '\0')
			continue;
		seen[slot] = 1;
		c->exhausted++;
	}
}

void
prekeys_claim_read(const char *body, size_t len, const struct idlog *log,
    const struct msg_recipient *rcpt, struct prekeys_claim *c)
{
	json_t *o = json_loadb(body, len, 0, NULL), *v;
	struct prekey p;
	size_t i, forged = 0;
	long slot;

	json_array_foreach(json_object_get(o, "prekeys"), i, v) {
		slot = key_slot(log, rcpt,
		    json_string_value(json_object_get(v, "device")));
		if (slot < 0 || c->keys[slot].id[0] != '\0')
			continue;
		if (prekey_from_json(v, log, &p) != 0) {
			forged++;
			continue;
		}
		memcpy(c->keys[slot].id, p.id, sizeof(p.id));
		memcpy(c->keys[slot].key, p.key, 32);
		c->taken++;
	}
	count_exhausted(json_object_get(o, "exhausted"), log, rcpt, c);
	json_decref(o);
	if (forged > 0)
		(void)snprintf(c->warning, sizeof(c->warning), "%s: %zu "
		    "one-time prekey%s from its server did not verify: left "
		    "out", log->address, forged, forged == 1 ? "" : "s");
	else if (c->exhausted > 0)
		(void)snprintf(c->warning, sizeof(c->warning), "%s: its server "
		    "has no one-time prekey left for %zu of its keys: sealed "
		    "to %s long-term key, not forward-secret", log->address,
		    c->exhausted, c->exhausted == 1 ? "that" : "their");
}

/* Is rcpt the recipient log makes (recipient_from_log)? */
static int
made_from(const struct msg_recipient *rcpt, const struct idlog *log)
{
	unsigned char keys[IDLOG_MAX_DEVICES][32];
	size_t n = idlog_receiving_keys(log, keys);

	return strcmp(rcpt->address, log->address) == 0 &&
	    memcmp(rcpt->encryption_key, log->encryption_key, 32) == 0 &&
	    n == rcpt->ndevice_keys && (n == 0 ||
	    memcmp(keys, rcpt->device_keys, n * 32) == 0);
}

void
prekeys_claim(struct remote *r, const struct signer *who,
    const struct idlog *log, struct msg_recipient *rcpt,
    struct prekeys_claim *c)
{
	const char *domain = address_domain(log->address);
	struct remote_reply rep;
	char base[512], path[400];

	memset(c, 0, sizeof(*c));
	if (log->revoked || !made_from(rcpt, log))
		return;
	c->keys = calloc(1 + rcpt->ndevice_keys, sizeof(*c->keys));
	(void)snprintf(path, sizeof(path), "/v1/users/%s/prekeys/claim",
	    log->address);
	if (c->keys == NULL)
		return;
	if (remote_base(r, domain, base, sizeof(base), &c->why) != 0 ||
	    remote_request(r, "POST", domain, base, path, NULL, 0, who, NULL,
	    REMOTE_MAX_STATUS, &rep, &c->why) != 0) {
		c->unreachable = 1;
		return;
	}
	if (rep.status == 200)
		prekeys_claim_read(rep.body.buf, rep.body.len, log, rcpt, c);
	else if (rep.status == 429)
		(void)snprintf(c->warning, sizeof(c->warning), "%s: its server "
		    "hands out no more one-time prekeys to this sender for "
		    "now: not forward-secret", log->address);
	remote_reply_release(&rep);
	if (c->taken == 0)
		return;
	rcpt->prekeys = c->keys;
	rcpt->forward_secret = c->taken == 1 + rcpt->ndevice_keys;
}

void
prekeys_claim_release(struct prekeys_claim *c)
{
	free(c->keys);
	memset(c, 0, sizeof(*c));
}

int
prekeys_claim_recipients(const char *home, const struct signer *who,
    struct lookup_session *s, struct msg_recipient *rcpts,
    const int *by_file, size_t n, struct prekeys_claim *claims,
    struct smimp_err *err)
{
	char device[IDDEV_NAME_MAX + 1];
	const struct trust_entry *e;
	const char *self = who->name;
	struct trust_store ts;
	struct remote *r;
	size_t i;

	memset(&ts, 0, sizeof(ts));
	memset(claims, 0, n * sizeof(*claims));
	(void)reqsig_is_device_signer(who->name, device, &self);
	/* A recipient read from a file has no server to ask. */
	for (i = 0; i < n && by_file[i]; i++)
		;
	if (i == n)
		return 0;
	if (trust_load(&ts, home, err) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		e = trust_find(&ts, rcpts[i].address);
		/* A server that gave no answer is not asked again. */
		/*
		 * Nor is the sender's own address: its own copy goes to all
		 * its keys, long-term, so a prekey would be spent for nothing
		 * and the message called forward-secret for it falsely.
		 */
		if (by_file[i] || e == NULL || !e->has_log || e->checked == 0 ||
		    strcmp(rcpts[i].address, self) == 0 ||
		    lookup_session_down(s, rcpts[i].address) != NULL)
			continue;
		if ((r = lookup_session_remote(s, err)) == NULL) {
			trust_release(&ts);
			return -1;
		}
		prekeys_claim(r, who, &e->log, &rcpts[i], &claims[i]);
		if (claims[i].unreachable)
			lookup_session_failed(s, rcpts[i].address,
			    &claims[i].why);
	}
	trust_release(&ts);
	return 0;
}
