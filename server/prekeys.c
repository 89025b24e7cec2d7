/*
 * prekeys.c - {base}/v1/users/ADDRESS/prekeys: one-time prekeys
 * (doc/PROTOCOL.md, section 10).  Each receiving device of a user (the
 * identity key, or a live device of scope full or receive) keeps a pool
 * of its own: it uploads batches signed by its own key and asks how
 * many are left; anyone who signs, as for a directory lookup, takes one
 * from the pool of each receiving device of the address, which the
 * store removes in the transaction that finds it, so that no prekey
 * ever goes to two senders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "consent.h"
#include "auth.h"
#include "exitcode.h"
#include "http.h"
#include "prekey.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

/* Claims of one device's pool in one request, past prekeys that fail. */
#define CLAIM_TRIES	3

/*
 * The ADDRESS of users/ADDRESS/prekeys (x->rest), normalized and of
 * this domain: 0, or -1 with the reply set.
 */
static int
prekeys_address(struct exchange *x, char addr[ADDRESS_MAX + 1])
{
	struct smimp_err err;

	if (address_normalize(x->rest, addr, &err) != 0) {
		reply_error(x, 400, "invalid address");
		return -1;
	}
	if (strcmp(address_domain(addr), x->srv->cfg.domain) != 0) {
		reply_error(x, 404, "not a user of this domain");
		return -1;
	}
	return 0;
}

/* A pool is its owner's: the identity key's, or the signing device's. */
static int
owner_only(struct exchange *x, char addr[ADDRESS_MAX + 1])
{
	if (prekeys_address(x, addr) != 0)
		return -1;
	if (strcmp(addr, x->signer) != 0) {
		reply_error(x, 403, "only its owner uploads or counts a user's "
		    "prekeys");
		return -1;
	}
	return 0;
}

/* GET .../prekeys: how many the signing device's pool holds. */
void
prekeys_count(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	struct smimp_err err;
	size_t n;

	if (owner_only(x, addr) != 0)
		return;
	if (store_prekey_count(x->srv->store, addr, x->device, &n, &err) !=
	    STORE_OK) {
		reply_unavailable(x, &err);
		return;
	}
	reply_json(x, 200, json_pack("{s:s,s:s,s:I,s:I,s:I}", "address", addr,
	    "device", x->device, "count", (json_int_t)n, "low",
	    (json_int_t)PREKEY_LOW, "max", (json_int_t)PREKEY_POOL_MAX));
}

/*
 * A batch for the signing device's own pool, each prekey signed by the
 * key the request verified with, dated within the window of the clock:
 * 0, or -1 with the reply set.
 */
static int
batch_check(struct exchange *x, const char *addr, const struct prekey_batch *b)
{
	struct smimp_err err;
	int64_t now = time_now();
	size_t i;

	if (strcmp(b->address, addr) != 0 || strcmp(b->device, x->device)) {
		reply_error(x, 403, "a device uploads its own prekeys only");
		return -1;
	}
	if (b->date < now - PREKEY_DATE_WINDOW ||
	    b->date > now + PREKEY_DATE_WINDOW) {
		reply_error(x, 400, "prekey batch out of date");
		return -1;
	}
	for (i = 0; i < b->n; i++)
		if (prekey_verify(&b->keys[i], x->key, &err) != 0) {
			reply_error(x, 400, err.msg);
			return -1;
		}
	return 0;
}

static void
reply_added(struct exchange *x, int r, const char *addr,
    const struct prekey_batch *b, size_t count, const struct smimp_err *err)
{
	char msg[128];

	switch (r) {
	case STORE_OK:
		log_info("prekeys of %s%s%s: %zu added, %zu in the pool", addr,
		    b->device[0] != '\0' ? ", device " : "", b->device, b->n,
		    count);
		reply_json(x, 200, json_pack("{s:s,s:s,s:I,s:I}", "address",
		    addr, "device", b->device, "added", (json_int_t)b->n,
		    "count", (json_int_t)count));
		break;
	case STORE_NOT_FOUND:
		reply_error(x, 404, "unknown user");
		break;
	case STORE_EXISTS:
		reply_error(x, 409, "the pool took a later batch, or holds one "
		    "of these prekeys already");
		break;
	case STORE_QUOTA:
		(void)snprintf(msg, sizeof(msg), "the pool holds %zu prekeys: "
		    "%zu more would pass %d", count, b->n, PREKEY_POOL_MAX);
		reply_error(x, 409, msg);
		break;
	default:
		reply_unavailable(x, err);
		break;
	}
}

/* POST .../prekeys: a batch (prekey.h) for the signing device's pool. */
void
prekeys_upload(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	struct store_prekey keys[PREKEY_BATCH_MAX];
	struct store_prekey_batch sb;
	struct prekey_batch b;
	struct smimp_err err;
	size_t i, count = 0;
	int r;

	memset(&b, 0, sizeof(b));
	if (owner_only(x, addr) != 0)
		return;
	if (prekey_batch_parse(&b, (const unsigned char *)x->small.buf,
	    x->small.len, &err) != 0) {
		reply_error(x, err.code == SMIMP_EXIT_BADMSG ? 400 : 503,
		    err.msg);
		goto out;
	}
	if (batch_check(x, addr, &b) != 0)
		goto out;
	for (i = 0; i < b.n; i++) {
		memcpy(keys[i].id, b.keys[i].id, sizeof(keys[i].id));
		memcpy(keys[i].key, b.keys[i].key, 32);
		keys[i].date = b.date;
		memcpy(keys[i].sig, b.keys[i].sig, 64);
	}
	sb.address = addr;
	sb.device = b.device;
	sb.date = b.date;
	sb.keys = keys;
	sb.n = b.n;
	sb.max = PREKEY_POOL_MAX;
	sb.now = time_now();
	r = store_prekey_add(x->srv->store, &sb, &count, &err);
	reply_added(x, r, addr, &b, count, &err);
out:
	prekey_batch_release(&b);
}

/* The receiving devices of log: "" (the identity key), then the live ones. */
static size_t
receiving(const struct idlog *log, const char *names[STORE_DEVICES_MAX + 1],
    const unsigned char *keys[STORE_DEVICES_MAX + 1])
{
	size_t i, n = 0;

	names[n] = "";
	keys[n++] = log->identity_key;
	for (i = 0; i < log->ndevices && n <= STORE_DEVICES_MAX; i++) {
		const struct iddevice *d = &log->devices[i];

		if (d->removed || !iddev_scope_receives(d->scope))
			continue;
		names[n] = d->name;
		keys[n++] = d->signing_key;
	}
	return n;
}

/*
 * Does k, taken from the pool of device (of addr), verify under key?
 * One that does not (signed before a rotation, or by a device of that
 * name removed since) is dropped, and the pool's batches up to its
 * own with it: the same key signed them, and a sender would refuse
 * each one.
 */
static int
taken_ok(struct exchange *x, const char *addr, const char *device,
    const unsigned char *key, const struct store_prekey *k)
{
	struct smimp_err err;
	struct prekey p;

	memset(&p, 0, sizeof(p));
	(void)snprintf(p.address, sizeof(p.address), "%s", addr);
	(void)snprintf(p.device, sizeof(p.device), "%s", device);
	p.date = k->date;
	memcpy(p.id, k->id, sizeof(p.id));
	memcpy(p.key, k->key, 32);
	memcpy(p.sig, k->sig, 64);
	if (prekey_verify(&p, key, &err) == 0)
		return 1;
	log_warnx("prekeys of %s: %s: dropped, with the older ones of its "
	    "pool", addr, err.msg);
	if (store_prekey_drop(x->srv->store, addr, device, k->date, time_now(),
	    &err) != STORE_OK)
		log_store(&err, "prekeys of %s", addr);
	return 0;
}

static json_t *
prekey_json(const char *device, const struct store_prekey *k)
{
	char when[TIME_STRLEN];
	char key[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char sig[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];

	time_format(k->date, when);
	sodium_bin2base64(key, sizeof(key), k->key, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(sig, sizeof(sig), k->sig, 64,
	    sodium_base64_VARIANT_ORIGINAL);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "device", device, "id",
	    k->id, "key", key, "date", when, "signature", sig);
}

/* What a claim found, device by device. */
struct claim {
	const char *names[STORE_DEVICES_MAX + 1];
	const unsigned char *keys[STORE_DEVICES_MAX + 1];
	struct store_prekey taken[STORE_DEVICES_MAX + 1];
	int states[STORE_DEVICES_MAX + 1];
	size_t n;
};

/*
 * Take one prekey of each device's pool; for a device whose prekey
 * fails taken_ok, take another, CLAIM_TRIES times at most.  STORE_OK,
 * or what the store answered.
 */
static int
claim_all(struct exchange *x, const char *addr, struct claim *c,
    struct smimp_err *err)
{
	const char *ask[STORE_DEVICES_MAX + 1];
	struct store_prekey got[STORE_DEVICES_MAX + 1];
	int st[STORE_DEVICES_MAX + 1];
	size_t idx[STORE_DEVICES_MAX + 1], i, j, m = c->n, next;
	int tries, r;

	for (i = 0; i < c->n; i++) {
		ask[i] = c->names[i];
		idx[i] = i;
	}
	for (tries = 0; tries < CLAIM_TRIES && m > 0; tries++) {
		r = store_prekey_claim(x->srv->store, addr, ask, m, got, st,
		    time_now(), err);
		if (r != STORE_OK)
			return r;
		for (j = 0, next = 0; j < m; j++) {
			i = idx[j];
			c->states[i] = st[j];
			c->taken[i] = got[j];
			if (st[j] != STORE_PREKEY_TAKEN ||
			    taken_ok(x, addr, c->names[i], c->keys[i], &got[j]))
				continue;
			c->states[i] = STORE_PREKEY_EMPTY;
			ask[next] = c->names[i];
			idx[next++] = i;
		}
		m = next;
	}
	return STORE_OK;
}

static void
reply_claim(struct exchange *x, const struct idlog *log,
    const struct claim *c)
{
	char enc[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	json_t *keys = json_array(), *empty = json_array();
	size_t i;

	sodium_bin2base64(enc, sizeof(enc), log->encryption_key, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	for (i = 0; keys != NULL && empty != NULL && i < c->n; i++) {
		if (c->states[i] == STORE_PREKEY_TAKEN)
			json_array_append_new(keys, prekey_json(c->names[i],
			    &c->taken[i]));
		else if (c->states[i] == STORE_PREKEY_EMPTY)
			json_array_append_new(empty, json_string(c->names[i]));
	}
	reply_json(x, 200, json_pack("{s:s,s:s,s:o,s:o}", "address",
	    log->address, "encryption_key", enc, "prekeys", keys ? keys :
	    json_array(), "exhausted", empty ? empty : json_array()));
}

/*
 * Who may take prekeys: a user, of this domain or another, as she may
 * look the address up (not a server, not a recovery key); whom the
 * address does not block, nor turn away whatever she brings (a closed
 * policy, and she is not allowed); within rate-prekeys for her (all her devices
 * together) and this address, for her domain and this address when it
 * is another, and what her domain may look up here (rate-lookup-domain).  The address is checked first: a token is
 * spent only on a claim that can take a prekey, so names that take
 * none cannot fill the table of buckets; a claim that finds nobody
 * costs a lookup instead.  0, or -1 with the reply set.
 */
static int
may_claim(struct exchange *x, const char *addr)
{
	char key[ADDRESS_MAX * 2 + 2], req[CONSENT_REQUIRES_MAX];
	char site[ADDRESS_DOMAIN_MAX + 1];
	struct smimp_err err;
	unsigned int wait;

	if (x->signer_is_server || x->by_recovery) {
		reply_error(x, 403, "only a user takes prekeys");
		return -1;
	}
	/*
	 * A claim that finds nobody costs a directory lookup: so the
	 * claims cannot tell which addresses exist faster than lookups do.
	 * One whose lookups are used up is refused whoever she names.
	 */
	if ((wait = ratelimit_peek(&x->srv->per_lookup, x->signer)) > 0) {
		reply_retry(x, 429, wait, "rate limit");
		return -1;
	}
	switch (consent_requirement(x->srv, addr, x->signer, NULL, req,
	    &err)) {
	case CONSENT_ERROR:
		reply_unavailable(x, &err);
		return -1;
	case CONSENT_ACCEPT:
		/*
		 * One the policy turns away whatever she brings would only
		 * take prekeys from those who may write: as for nobody.
		 */
		if (strcmp(req, "closed") != 0)
			break;
		/* FALLTHROUGH */
	default:
		(void)ratelimit_take(&x->srv->per_lookup, x->signer);
		reply_error(x, 404, "unknown user");
		return -1;
	}
	(void)snprintf(key, sizeof(key), "%s %s", x->signer, addr);
	wait = ratelimit_take(&x->srv->per_prekey, key);
	/* Another domain's users share one allowance for this address:
	   a domain that makes up users takes no more. */
	if (wait == 0 && strcmp(address_domain(x->signer),
	    x->srv->cfg.domain) != 0) {
		site_of(address_domain(x->signer), site);
		(void)snprintf(key, sizeof(key), "@%s %s", site, addr);
		wait = ratelimit_take(&x->srv->per_prekey, key);
	}
	if (wait > 0) {
		reply_retry(x, 429, wait, "rate limit");
		return -1;
	}
	return auth_take_domain(x);
}

/* POST .../prekeys/claim: one prekey of each receiving device, once. */
void
prekeys_claim(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	unsigned char *raw = NULL;
	struct smimp_err err;
	struct claim c;
	struct idlog log;
	size_t len;
	int r;

	if (prekeys_address(x, addr) != 0 || may_claim(x, addr) != 0)
		return;
	r = store_user_get(x->srv->store, addr, &raw, &len, &err);
	if (r != STORE_OK) {
		if (r == STORE_ERROR)
			reply_unavailable(x, &err);
		else
			reply_error(x, 404, "unknown user");
		return;
	}
	r = idlog_parse_verified(&log, raw, len, &err);
	free(raw);
	if (r != 0) {
		log_warnx("stored identity of %s: %s", addr, err.msg);
		reply_error(x, 500, "stored identity unreadable");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.n = receiving(&log, c.names, c.keys);
	if (log.revoked)
		reply_error(x, 404, "unknown user");
	else if (claim_all(x, addr, &c, &err) != STORE_OK)
		reply_unavailable(x, &err);
	else
		reply_claim(x, &log, &c);
	idlog_release(&log);
}
