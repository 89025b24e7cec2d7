/*
 * auth.c - authenticate requests from their headers (see auth.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "exitcode.h"
#include "idlog.h"
#include "peers.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

#define INVITE_TOKEN_MAX	128

/* Every request header, for the signature; at most cap of them. */
struct header_list {
	struct exchange *x;
	struct reqsig_header *h;
	size_t n, cap;
	int overflow;
};

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct header_list *l = cls;

	(void)kind;
	if (!reqsig_header_signed(key))
		return MHD_YES;
	if (l->n == l->cap) {
		l->overflow = 1;
		return MHD_NO;
	}
	l->h[l->n].name = key;
	l->h[l->n].value = value != NULL ? exchange_value(l->x, value) : "";
	l->n++;
	return MHD_YES;
}

/*
 * Every Smimp- header of a request, the five of the signature and
 * empty ones too: the signed ones are at most REQSIG_HEADERS_MAX, so
 * a request with more has one repeated or too many, refused either way.
 */
struct smimp_names {
	const char *name[REQSIG_HEADERS_MAX + 5];
	size_t n;
	const char *repeated;
	int overflow;
};

static enum MHD_Result
add_name(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct smimp_names *l = cls;
	size_t i;

	(void)kind;
	(void)value;
	if (strncasecmp(key, "Smimp-", 6) != 0)
		return MHD_YES;
	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->name[i], key) == 0) {
			l->repeated = key;
			return MHD_NO;
		}
	if (l->n == sizeof(l->name) / sizeof(l->name[0])) {
		l->overflow = 1;
		return MHD_NO;
	}
	l->name[l->n++] = key;
	return MHD_YES;
}

/* Refused: the reply, and one more failure counted for the source. */
static int
refuse(struct exchange *x, unsigned int status, const char *msg)
{
	(void)ratelimit_take(&x->srv->per_source, x->source_net);
	x->refused = 1;
	reply_error(x, status, msg);
	return -1;
}

/*
 * Does x's signature verify with key (the signed headers are x's own)?
 * 0, or -1 with the reason in err; nothing answered yet.
 */
static int
check_signature(struct exchange *x, const unsigned char key[32],
    struct smimp_err *err)
{
	struct reqsig_header h[REQSIG_HEADERS_MAX];
	struct header_list l = { x, h, 0, REQSIG_HEADERS_MAX, 0 };

	(void)MHD_get_connection_values(x->c, MHD_HEADER_KIND, add_header, &l);
	if (l.overflow)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "too many Smimp- "
		    "headers");
	if (reqsig_verify(&x->sig, x->method, x->srv->cfg.domain, x->target,
	    h, l.n, key, time_now(), err) != 0)
		return -1;
	memcpy(x->key, key, 32);
	return 0;
}

/* The same, answering 401 on failure. */
static int
verify(struct exchange *x, const unsigned char key[32])
{
	struct smimp_err err;

	return check_signature(x, key, &err) == 0 ? 0 :
	    refuse(x, 401, err.msg);
}

static int
parse_signature(struct exchange *x)
{
	struct smimp_err err;

	if (reqsig_parse(&x->sig, exchange_header(x, REQSIG_H_SIGNER),
	    exchange_header(x, REQSIG_H_DATE), exchange_header(x,
	    REQSIG_H_NONCE), exchange_header(x, REQSIG_H_SIGNATURE),
	    exchange_header(x, REQSIG_H_BODY_HASH), &err) != 0)
		return refuse(x, 401, err.msg);
	return 0;
}

/*
 * A lookup of the signer's own log (AUTH_ANY's one route: x->rest is
 * "ADDRESS/log"): what a revoked identity may still ask, so that its
 * owner can read back what the server holds.
 */
static int
own_log(const struct exchange *x)
{
	size_t n = strlen(x->signer);

	return x->route->auth == AUTH_ANY &&
	    strncmp(x->rest, x->signer, n) == 0 &&
	    strcmp(x->rest + n, "/log") == 0;
}

/* May a device of this scope call a route with these flags? */
static int
scope_allows(unsigned int flags, enum iddev_scope scope)
{
	return ((flags & ROUTE_DEVICE_SEND) && iddev_scope_sends(scope)) ||
	    ((flags & ROUTE_DEVICE_RECEIVE) && iddev_scope_receives(scope));
}

/*
 * The key x->device signs with: a live device of log, whose scope the
 * route takes (checked once the signature verified, so that only the
 * device itself learns what it may not do).  A removed device is no
 * signer at all, as a revoked key is not.
 */
static int
verify_device(struct exchange *x, const struct idlog *log)
{
	const struct iddevice *d = idlog_device(log, x->device);
	char msg[IDDEV_NAME_MAX + ADDRESS_MAX + 64];
	struct smimp_err err;
	size_t i;

	/*
	 * A removed device may still read its own log back, to learn that
	 * it was removed, as a revoked identity may: any device of that
	 * name removed, since the name may have come back with new keys.
	 */
	if (own_log(x) && (d == NULL ||
	    check_signature(x, d->signing_key, &err) != 0)) {
		for (i = 0; i < log->ndevices; i++)
			if (log->devices[i].removed &&
			    strcmp(log->devices[i].name, x->device) == 0 &&
			    check_signature(x, log->devices[i].signing_key,
			    &err) == 0)
				return 0;
		return refuse(x, 401, d == NULL && idlog_removed_device(log,
		    x->device) == NULL ? "unknown signer" : err.msg);
	}
	if (d == NULL)
		return refuse(x, 401, "unknown signer");
	if (!own_log(x) && verify(x, d->signing_key) != 0)
		return -1;
	x->scope = d->scope;
	if (scope_allows(x->route->flags, d->scope))
		return 0;
	(void)snprintf(msg, sizeof(msg), "the device %s of %s (scope %s) "
	    "may not do this", x->device, x->signer,
	    iddev_scope_name(d->scope));
	reply_error(x, 403, msg);
	return -1;
}

/*
 * A request in the name of an address that has no account: checked as
 * any signer's is (under a key that it cannot be by) and refused as a
 * signature by another key in an account's name is, so that whoever
 * signs in any name is not told who has an account (8.11).  A device's
 * name is unknown for both.
 */
static int
refuse_nobody(struct exchange *x)
{
	struct smimp_err err;

	if (x->device[0] != '\0')
		return refuse(x, 401, "unknown signer");
	if (check_signature(x, x->srv->server_pk, &err) == 0)
		(void)smimp_err_set(&err, SMIMP_EXIT_BADMSG, "bad signature");
	return refuse(x, 401, err.msg);
}

/*
 * A request in the name of a revoked identity: "revoked identity" when
 * that identity signed it (its last identity key, or one of its
 * devices), else the answer any signer in its name gets, so that only
 * its owner learns of the revocation this way.
 */
static int
refuse_revoked(struct exchange *x, const struct idlog *log)
{
	const struct iddevice *d = NULL;
	struct smimp_err err;

	if (x->device[0] == '\0') {
		if (check_signature(x, log->identity_key, &err) != 0)
			return refuse(x, 401, err.msg);
	} else if ((d = idlog_device(log, x->device)) == NULL) {
		return refuse(x, 401, "unknown signer");
	} else if (check_signature(x, d->signing_key, &err) != 0) {
		return refuse(x, 401, err.msg);
	}
	return refuse(x, 401, "revoked identity");
}

/*
 * The signer's name, without "recovery:" or "device:NAME:" (setting
 * x->by_recovery, where recovery is allowed, or x->device), normalized
 * into x->signer: 0, or -1 if it is no address written as one.
 */
static int
signer_address(struct exchange *x, int allow_recovery)
{
	static const char prefix[] = "recovery:";
	const char *name = x->sig.signer;
	struct smimp_err err;

	x->device[0] = '\0';
	x->scope = IDDEV_FULL;
	x->by_recovery = allow_recovery &&
	    strncmp(name, prefix, sizeof(prefix) - 1) == 0;
	if (x->by_recovery)
		name += sizeof(prefix) - 1;
	else if (!reqsig_is_device_signer(name, x->device, &name))
		x->device[0] = '\0';
	if (address_normalize(name, x->signer, &err) != 0 ||
	    strcmp(name, x->signer) != 0)
		return -1;
	return 0;
}

/*
 * A user of this domain: its identity key signs, or with the signer
 * "recovery:ADDRESS" (only where recovery is allowed) its recovery key,
 * which still speaks for a revoked identity: a thief may have revoked it;
 * or with "device:NAME:ADDRESS" one of its live devices, where the
 * route takes a device of that scope.
 */
static int
auth_user(struct exchange *x, int allow_recovery)
{
	struct server *srv = x->srv;
	unsigned char *log = NULL;
	struct smimp_err err;
	struct idlog parsed;
	size_t len;
	int r;

	if (signer_address(x, allow_recovery) != 0 ||
	    strcmp(address_domain(x->signer), srv->cfg.domain) != 0)
		return refuse(x, 401, "unknown signer");
	r = store_user_get(srv->store, x->signer, &log, &len, &err);
	if (r == STORE_ERROR) {
		reply_unavailable(x, &err);
		return -1;
	}
	if (r != STORE_OK)
		return refuse_nobody(x);
	r = idlog_parse_verified(&parsed, log, len, &err);
	free(log);
	if (r != 0) {
		log_warnx("stored identity of %s: %s", x->signer, err.msg);
		reply_error(x, 500, "stored identity unreadable");
		return -1;
	}
	if (x->by_recovery)
		r = verify(x, parsed.recovery_key);
	else if (parsed.revoked && !own_log(x))
		r = refuse_revoked(x, &parsed);
	else if (x->device[0] != '\0')
		r = verify_device(x, &parsed);
	else
		r = verify(x, parsed.identity_key);
	idlog_release(&parsed);
	return r;
}

static int
auth_server(struct exchange *x)
{
	struct smimp_err err, again;
	unsigned char key[32];

	/*
	 * Written normalized, as a user's address must be: one server
	 * under two spellings would have two sets of nonces.
	 */
	if (strncmp(x->sig.signer, "server:", 7) != 0 ||
	    domain_normalize(x->sig.signer + 7, x->signer, &err) != 0 ||
	    strcmp(x->signer, x->sig.signer + 7) != 0)
		return refuse(x, 401, "missing or malformed server signature");
	x->signer_is_server = 1;
	if (peer_key(x->srv, x->signer, x->peer_base, sizeof(x->peer_base),
	    key, &err) != 0) {
		/* Counted as a failure: anyone can name any domain, and
		   each name costs a request to it. */
		log_warnx("request from %s: %s", x->signer, err.msg);
		return refuse(x, err.code == SMIMP_EXIT_TEMPFAIL ? 503 : 403,
		    "unknown sender domain");
	}
	if (check_signature(x, key, &err) == 0)
		return 0;
	/* A peer may have changed its key: look once more, then refuse. */
	if (peer_key_refresh(x->srv, x->signer, x->peer_base,
	    sizeof(x->peer_base), key, &again) != 0) {
		log_debug("request from %s: %s", x->signer, again.msg);
		return refuse(x, 401, err.msg);
	}
	return verify(x, key);
}

/*
 * Does x verify under the current identity key of log, or the key of
 * the live device x->device names?
 */
static int
check_foreign(struct exchange *x, const struct idlog *log,
    struct smimp_err *err)
{
	const struct iddevice *d;
	int r;

	if (x->device[0] == '\0')
		r = check_signature(x, log->identity_key, err);
	else if ((d = idlog_device(log, x->device)) == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "unknown signer");
	else {
		x->scope = d->scope;
		r = check_signature(x, d->signing_key, err);
	}
	/* Said only to the revoked identity itself, as here (refuse_revoked). */
	if (r == 0 && log->revoked)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "revoked identity");
	return r;
}

/*
 * The user of this domain a lookup (AUTH_ANY: x->rest is "ADDRESS/log",
 * or a claim's "ADDRESS") asks for, normalized into out: the one the
 * fetch of the signer's log is made for.  0, or -1 if none is named.
 */
static int
lookup_target(const struct exchange *x, char out[ADDRESS_MAX + 1])
{
	char raw[ADDRESS_MAX + 1];
	size_t n = strcspn(x->rest, "/");
	struct smimp_err err;

	if (n >= sizeof(raw))
		return -1;
	memcpy(raw, x->rest, n);
	raw[n] = '\0';
	if (address_normalize(raw, out, &err) != 0 ||
	    strcmp(address_domain(out), x->srv->cfg.domain) != 0)
		return -1;
	return 0;
}

/*
 * A user of another domain (x->signer): her current identity key is
 * the one the log her own domain serves names, fetched through the peer
 * cache with a request signed by this server, and fetched anew once when
 * the cached log does not verify the request (she may have rotated).
 * Whatever fails costs her source address a failure, as a bad signature
 * does: a stream of names at domains that do not answer ties up workers.
 */
static int
auth_foreign(struct exchange *x)
{
	const char *domain = address_domain(x->signer), *on_behalf;
	char target[ADDRESS_MAX + 1];
	struct smimp_err err, again;
	unsigned char key[32];
	struct idlog log;
	int r;

	on_behalf = lookup_target(x, target) == 0 ? target : NULL;
	if (peer_key(x->srv, domain, x->peer_base, sizeof(x->peer_base), key,
	    &err) != 0) {
		log_debug("lookup by %s: %s", x->signer, err.msg);
		return err.code == SMIMP_EXIT_TEMPFAIL ? refuse(x, 503,
		    "cannot reach the signer's domain") : refuse(x, 401,
		    "unknown signer");
	}
	/*
	 * A user her domain does not serve is answered as one here with no
	 * account: this server's word must not tell who has an account
	 * there either.
	 */
	if (peer_log(x->srv, domain, x->peer_base, x->signer, on_behalf,
	    &log, &err) != 0) {
		log_debug("lookup by %s: %s", x->signer, err.msg);
		return err.code == SMIMP_EXIT_TEMPFAIL ? refuse(x, 503,
		    "cannot reach the signer's domain") : refuse_nobody(x);
	}
	r = check_foreign(x, &log, &err);
	idlog_release(&log);
	if (r == 0)
		return 0;
	if (peer_log_refresh(x->srv, domain, x->peer_base, x->signer,
	    on_behalf, "lookup", &log, &again) != 0) {
		log_debug("lookup by %s: %s", x->signer, again.msg);
		return refuse(x, 401, err.msg);
	}
	r = check_foreign(x, &log, &err);
	idlog_release(&log);
	return r == 0 ? 0 : refuse(x, 401, err.msg);
}

int
auth_on_behalf(struct exchange *x, char out[ADDRESS_MAX + 1],
    const char **on_behalf)
{
	const char *v = exchange_header(x, "Smimp-For");
	struct smimp_err err;

	*on_behalf = NULL;
	if (v == NULL || !x->signer_is_server)
		return 0;
	if (address_normalize(v, out, &err) != 0 || strcmp(v, out) != 0 ||
	    strcmp(address_domain(out), x->signer) != 0) {
		reply_error(x, 400, "malformed Smimp-For");
		return -1;
	}
	*on_behalf = out;
	return 0;
}

/*
 * Anyone who signs (AUTH_ANY): a server, a user of this domain (or her
 * recovery key), or a user of another domain, told apart by the signer.
 */
static int
auth_any(struct exchange *x)
{
	if (strncmp(x->sig.signer, "server:", 7) == 0)
		return auth_server(x);
	if (signer_address(x, 1) != 0)
		return refuse(x, 401, "unknown signer");
	if (strcmp(address_domain(x->signer), x->srv->cfg.domain) == 0)
		return auth_user(x, 1);
	return x->by_recovery ? refuse(x, 401, "unknown signer") :
	    auth_foreign(x);
}

/*
 * Count a verified lookup: against its requester (a user, of this
 * domain or another), and all that comes from another domain (its
 * server and its users together) against that domain as well, so that
 * a domain that makes up users gains nothing.  0, or -1 with the 429.
 */
static int
take_lookup(struct exchange *x)
{
	unsigned int wait = 0;

	if (!x->signer_is_server)
		wait = ratelimit_take(&x->srv->per_lookup, x->signer);
	if (wait == 0)
		return auth_take_domain(x);
	reply_retry(x, 429, wait, "rate limit");
	return -1;
}

int
auth_take_domain(struct exchange *x)
{
	struct server *srv = x->srv;
	const char *domain = x->signer_is_server ? x->signer :
	    address_domain(x->signer);
	char site[ADDRESS_DOMAIN_MAX + 1];
	unsigned int wait = 0;

	/* Per site: a domain's subdomains are its own to make up. */
	site_of(domain, site);
	if (strcmp(domain, srv->cfg.domain) != 0)
		wait = ratelimit_take(&srv->per_lookup_domain, site);
	if (wait == 0)
		return 0;
	reply_retry(x, 429, wait, "rate limit");
	return -1;
}

void
auth_invite_hash(const char *token, unsigned char out[32])
{
	static const char label[] = "smimp/1 invite";
	crypto_generichash_state h;

	(void)crypto_generichash_init(&h, NULL, 0, 32);
	(void)crypto_generichash_update(&h, (const unsigned char *)label,
	    sizeof(label));
	(void)crypto_generichash_update(&h, (const unsigned char *)token,
	    strlen(token));
	(void)crypto_generichash_final(&h, out, 32);
}

/*
 * Registration: the token must name a live invitation before the body
 * (the identity log that the signature is checked against) is read.
 */
static int
auth_invite(struct exchange *x)
{
	const char *token = exchange_header(x, "Smimp-Invite");
	unsigned char hash[32];
	struct smimp_err err;
	int r;

	if (token == NULL || token[0] == '\0')
		return refuse(x, 400, "needs Smimp-Invite and an identity log");
	/* Too long to be one: no invitation, as any other token that is not. */
	if (strlen(token) > INVITE_TOKEN_MAX)
		return refuse(x, 403, "invalid or expired invitation");
	auth_invite_hash(token, hash);
	r = store_invite_check(x->srv->store, hash, time_now(), x->signer,
	    &err);
	if (r == STORE_ERROR) {
		reply_unavailable(x, &err);
		return -1;
	}
	if (r != STORE_OK)
		return refuse(x, 403, "invalid or expired invitation");
	return 0;
}

/* The nonce is remembered for as long as its date is in the window. */
static void
set_nonce_expiry(struct exchange *x)
{
	int64_t when;

	(void)time_parse(x->sig.date, strlen(x->sig.date), &when);
	x->nonce_expires = when + REQSIG_WINDOW;
}

int
auth_self_signed(struct exchange *x, const char *address,
    const unsigned char key[32])
{
	if (parse_signature(x) != 0)
		return -1;
	if (strcmp(x->sig.signer, address) != 0 || verify(x, key) != 0 ||
	    sodium_memcmp(x->sig.body_hash, x->body_hash, 32) != 0) {
		reply_error(x, 401, "the request must be signed by the "
		    "identity it registers");
		return -1;
	}
	set_nonce_expiry(x);
	return auth_claim_nonce(x);
}

int
auth_claim_nonce(struct exchange *x)
{
	struct smimp_err err;
	int r;

	r = store_nonce_claim(x->srv->store, x->sig.signer, x->sig.nonce,
	    x->nonce_expires, time_now(), &err);
	if (r == STORE_ERROR) {
		reply_unavailable(x, &err);
		return -1;
	}
	if (r != STORE_OK) {
		reply_error(x, 401, "replayed request");
		return -1;
	}
	return 0;
}

int
auth_request(struct exchange *x)
{
	struct server *srv = x->srv;
	struct ratelimit *rl = NULL;
	struct smimp_names names = { { NULL }, 0, NULL, 0 };
	char site[ADDRESS_DOMAIN_MAX + 1], msg[64];
	unsigned int wait;

	wait = ratelimit_peek(&srv->per_source, x->source_net);
	if (wait > 0) {
		reply_retry(x, 429, wait, "too many failed requests");
		return -1;
	}
	/*
	 * A Smimp- header given twice, whether the signature's own or one
	 * it covers, empty or not, would let a sender and a receiver (or
	 * one that reads the last) see different values.
	 */
	(void)MHD_get_connection_values(x->c, MHD_HEADER_KIND, add_name,
	    &names);
	if (names.repeated != NULL) {
		(void)snprintf(msg, sizeof(msg), "header %.40s repeated",
		    names.repeated);
		return refuse(x, 401, msg);
	}
	if (names.overflow)
		return refuse(x, 401, "too many Smimp- headers");
	if (x->route->auth == AUTH_INVITE)
		return auth_invite(x);
	if (parse_signature(x) != 0)
		return -1;
	if ((x->route->auth == AUTH_SERVER ? auth_server(x) :
	    x->route->auth == AUTH_ANY ? auth_any(x) : auth_user(x,
	    x->route->auth == AUTH_OWNER)) != 0)
		return -1;
	/* Counted only now that the signature verified. */
	if (x->route->auth == AUTH_ANY && !(x->route->flags & ROUTE_OWN_RATE) &&
	    take_lookup(x) != 0)
		return -1;
	if (x->route->auth == AUTH_SERVER)
		rl = &srv->per_domain;
	else if (x->route->flags & ROUTE_PER_SENDER)
		rl = &srv->per_sender;
	else if (x->route->flags & ROUTE_PER_STATUS)
		rl = &srv->per_status;
	/* A domain's deliveries count per site, as its lookups do. */
	if (rl == &srv->per_domain)
		site_of(x->signer, site);
	if (rl != NULL && (wait = ratelimit_take(rl, rl == &srv->per_domain ?
	    site : x->signer)) > 0) {
		reply_retry(x, 429, wait, "rate limit");
		return -1;
	}
	set_nonce_expiry(x);
	if (x->route->flags & ROUTE_NONCE_LATER)
		return 0;
	return auth_claim_nonce(x);
}
