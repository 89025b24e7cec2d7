/*
 * directory.c - what anyone may ask: discovery, versions, the server's
 * metadata (its key and limits); and users' identity logs, to anyone
 * who signs (auth.c: AUTH_ANY), so that addresses cannot be harvested.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth.h"
#include "consent.h"
#include "http.h"
#include "idlog.h"
#include "server.h"
#include "banned.h"

/* GET /.well-known/smimp.txt: the base URL, one line. */
void
directory_discovery(struct exchange *x)
{
	char text[600];
	int n = snprintf(text, sizeof(text), "%s\n", x->srv->cfg.base_url);

	reply_bytes(x, 200, "text/plain; charset=utf-8", text, (size_t)n);
}

void
directory_version(struct exchange *x)
{
	reply_json(x, 200, json_pack("{s:[s],s:s}", "versions", "v1",
	    "software", "smimpd " SMIMP_VERSION));
}

void
directory_meta(struct exchange *x)
{
	char pk[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(pk, sizeof(pk), x->srv->server_pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	reply_json(x, 200, json_pack("{s:s,s:s,s:[s],s:{s:I}}", "domain",
	    x->srv->cfg.domain, "server_key", pk, "versions", "v1", "limits",
	    "max_message_bytes",
	    (json_int_t)LIVE(x->srv->cfg.max_message)));
}

/*
 * The ADDRESS of a users/ADDRESS/log target (x->rest), normalized and of
 * this domain: 0, or -1 with the reply set.
 */
static int
user_address(struct exchange *x, char addr[ADDRESS_MAX + 1])
{
	char raw[ADDRESS_MAX + 8];
	const char *slash = strchr(x->rest, '/');
	struct smimp_err err;

	if (slash == NULL || strcmp(slash, "/log") != 0 ||
	    (size_t)(slash - x->rest) >= sizeof(raw)) {
		reply_error(x, 404, "no such resource");
		return -1;
	}
	memcpy(raw, x->rest, (size_t)(slash - x->rest));
	raw[slash - x->rest] = '\0';
	if (address_normalize(raw, addr, &err) != 0) {
		reply_error(x, 400, "invalid address");
		return -1;
	}
	if (strcmp(address_domain(addr), x->srv->cfg.domain) != 0) {
		reply_error(x, 404, "not a user of this domain");
		return -1;
	}
	return 0;
}

/*
 * GET {base}/v1/users/ADDRESS/log: the identity log, with what the
 * address requires of the requester before it takes a message
 * (Smimp-Requires).  A requester the address blocks is answered as for
 * an address without an account, after the same work.  Who asks is
 * x->signer, whose request verified: a user's address, or a server's
 * domain (x->signer_is_server), which a policy names as its domain.
 */
void
directory_user(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1], req[CONSENT_REQUIRES_MAX];
	char on[ADDRESS_MAX + 1];
	const char *requester = x->signer, *on_behalf;
	unsigned char *log = NULL;
	struct smimp_err err;
	size_t len;
	int r;

	if (user_address(x, addr) != 0 || auth_on_behalf(x, on, &on_behalf) != 0)
		return;
	switch (consent_requirement(x->srv, addr, requester, on_behalf, req,
	    &err)) {
	case CONSENT_ERROR:
		reply_unavailable(x, &err);
		return;
	case CONSENT_ACCEPT:
		break;
	default:
		reply_error(x, 404, "unknown user");
		return;
	}
	r = store_user_get(x->srv->store, addr, &log, &len, &err);
	if (r == STORE_ERROR)
		reply_unavailable(x, &err);
	else if (r != STORE_OK)
		reply_error(x, 404, "unknown user");
	else {
		reply_bytes(x, 200, "text/plain; charset=utf-8", log, len);
		reply_header(x, "Smimp-Requires", req);
	}
	free(log);
}

_Static_assert(IDLOG_MAX_DEVICES <= STORE_DEVICES_MAX &&
    IDDEV_NAME_MAX <= STORE_DEVICE_NAME_MAX, "the store keeps every device");

void
server_store_log(const struct idlog *log, struct store_log *sl,
    struct store_device devs[STORE_DEVICES_MAX])
{
	const struct iddevice *d;
	size_t i;

	memset(sl, 0, sizeof(*sl));
	sl->raw = log->raw;
	sl->len = log->raw_len;
	sl->devices = devs;
	for (i = 0; i < log->ndevices && sl->ndevices < STORE_DEVICES_MAX;
	    i++) {
		d = &log->devices[i];
		if (d->removed || !iddev_scope_receives(d->scope))
			continue;
		devs[sl->ndevices].name = d->name;
		memcpy(devs[sl->ndevices].key, d->signing_key, 32);
		sl->ndevices++;
	}
}

/* The answer to an append: the log's state now. */
static void
reply_log_state(struct exchange *x, unsigned int status,
    const struct idlog *log)
{
	char head[sodium_base64_ENCODED_LEN(32,
	    sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(head, sizeof(head), log->head, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	reply_json(x, status, json_pack("{s:s,s:I,s:s,s:b}", "address",
	    log->address, "records", (json_int_t)log->n, "head", head,
	    "revoked", log->revoked));
}

/*
 * Are the records of body in stored already, where they say they go (a
 * retry whose answer was lost)?  Then stored is the answer.
 */
static int
already_there(const struct idlog *stored, const struct idlog *next)
{
	return next->raw_len <= stored->raw_len &&
	    memcmp(stored->raw, next->raw, next->raw_len) == 0;
}

/*
 * May next replace stored?  A recovery that cuts records back needs a
 * request signed by the recovery key, not only a record: the request's
 * nonce and date make it fresh.  0, or -1 with the reply sent.
 */
static int
may_replace(struct exchange *x, const struct idlog *stored,
    const struct idlog *next, struct idlog_follow *how)
{
	struct smimp_err err;
	char msg[SMIMP_ERR_MSG + 64];

	if (idlog_check_follows(next, stored, how, &err) != 0) {
		if (how->recovery)
			(void)snprintf(msg, sizeof(msg), "a recovery may not "
			    "cut back an earlier one");
		else
			(void)snprintf(msg, sizeof(msg), "the records do not "
			    "extend the log: they fork from it at record %zu, "
			    "and are no recovery", how->cut);
		reply_error(x, 409, msg);
		return -1;
	}
	if (how->recovery && !x->by_recovery) {
		reply_error(x, 403, "only a request signed by the recovery key "
		    "cuts a log back");
		return -1;
	}
	if (stored->revoked && !how->recovery) {
		reply_error(x, 409, "revoked identity: only a recovery that "
		    "cuts the revocation back may follow it");
		return -1;
	}
	return 0;
}

void
directory_append(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	const unsigned char *body = (const unsigned char *)x->small.buf;
	size_t blen = x->small.len, len;
	unsigned char *old = NULL;
	struct store_device devs[STORE_DEVICES_MAX];
	struct idlog_follow how;
	struct idlog stored, next;
	struct store_log sl;
	struct smimp_err err;
	int r, have_stored = 0, have_next = 0;

	if (user_address(x, addr) != 0)
		goto out;
	if (strcmp(addr, x->signer) != 0) {
		reply_error(x, 403, "only its owner appends to a log");
		goto out;
	}
	if (blen == 0) {
		reply_error(x, 400, "no identity records");
		goto out;
	}
	r = store_user_get(x->srv->store, addr, &old, &len, &err);
	if (r == STORE_ERROR) {
		reply_unavailable(x, &err);
		goto out;
	}
	if (r != STORE_OK) {
		reply_error(x, 404, "unknown user");
		goto out;
	}
	if (idlog_parse_verified(&stored, old, len, &err) != 0) {
		log_warnx("stored identity of %s: %s", addr, err.msg);
		reply_error(x, 500, "stored identity unreadable");
		goto out;
	}
	have_stored = 1;
	if (idlog_splice(&stored, body, blen, &next, &err) != 0) {
		char msg[SMIMP_ERR_MSG + 64];

		/* Records for another head: the client's copy is behind. */
		(void)snprintf(msg, sizeof(msg), "the records do not extend "
		    "the log: %s", err.msg);
		reply_error(x, strstr(err.msg, "does not extend") != NULL ?
		    409 : 400, msg);
		goto out;
	}
	have_next = 1;
	if (already_there(&stored, &next)) {
		reply_log_state(x, 200, &stored);
		goto out;
	}
	if (may_replace(x, &stored, &next, &how) != 0)
		goto out;
	/* A device removed stops receiving in this very transaction. */
	server_store_log(&next, &sl, devs);
	r = store_user_log_update(x->srv->store, addr, old, len, &sl,
	    time_now(), &err);
	if (r == STORE_ERROR) {
		reply_unavailable(x, &err);
		goto out;
	}
	if (r != STORE_OK) {
		reply_error(x, 409, "the log changed meanwhile");
		goto out;
	}
	if (how.recovery)
		log_info("identity log of %s: recovered, %zu record(s) cut "
		    "back", addr, how.voided);
	else
		log_info("identity log of %s: %zu record(s) appended%s", addr,
		    next.n - stored.n, next.revoked ? ", revoked" : "");
	reply_log_state(x, 200, &next);
out:
	if (have_stored)
		idlog_release(&stored);
	if (have_next)
		idlog_release(&next);
	free(old);
}
