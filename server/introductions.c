/*
 * introductions.c - find the introduction that lets a sender through
 * to a local recipient, and check it under its introducer's current
 * identity key (see introductions.h).  The consent decision
 * (consent_check) is given the introducer's address and decides
 * whether the recipient allows it; here only the statement is judged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "idlog.h"
#include "introduction.h"
#include "introductions.h"
#include "peers.h"
#include "server.h"
#include "banned.h"

/* The recipient an introduction names, when she is ours, or NULL. */
static const char *
on_behalf(const struct server *srv, const struct introduction *in)
{
	return strcmp(address_domain(in->to), srv->cfg.domain) == 0 ?
	    in->to : NULL;
}

/*
 * The first statement of the list for (sender, recipient) at now into
 * in: 1, or 0 when there is none (or the list is malformed).
 */
static int
statement_for(const char *list, const char *sender, const char *recipient,
    int64_t now, struct introduction *in)
{
	struct smimp_err err;
	size_t pos = 0, len = strlen(list);
	int r;

	while ((r = introduction_next(list, len, &pos, in, &err)) == 1)
		if (introduction_check(in, sender, recipient, now, &err) == 0)
			return 1;
	if (r < 0)
		log_debug("Smimp-Introduction from %s: %s", sender, err.msg);
	return 0;
}

/* Does in verify under log's current key, which is not revoked? */
static int
verify_under(const struct introduction *in, const struct idlog *log)
{
	return !log->revoked && introduction_verify(in, log->identity_key);
}

/*
 * Does in verify under the identity key of introducer, a user of this
 * domain?  1 or 0; -1 when the store fails.
 */
static int
verify_local(struct server *srv, const struct introduction *in)
{
	struct smimp_err err;
	struct idlog log;
	unsigned char *raw;
	size_t len;
	int r;

	r = store_user_get(srv->store, in->introducer, &raw, &len, &err);
	if (r == STORE_ERROR) {
		log_store(&err, "introduction by %s", in->introducer);
		return -1;
	}
	if (r != STORE_OK)
		return 0;
	/* Verified when it was stored, as for every request's signer. */
	r = idlog_parse_verified(&log, raw, len, &err);
	free(raw);
	if (r != 0)
		return 0;
	r = verify_under(in, &log);
	idlog_release(&log);
	return r;
}

/*
 * Does in verify under the identity key that the introducer's own
 * domain serves?  The cached log may be older than a rotation: it is
 * fetched anew once (at most every PEER_REFRESH_MIN seconds) before
 * the statement is refused.
 */
static int
verify_remote(struct server *srv, const struct introduction *in)
{
	const char *domain = address_domain(in->introducer);
	unsigned char key[32];
	struct smimp_err err;
	struct idlog log;
	char base[512];
	int ok;

	if (peer_key(srv, domain, base, sizeof(base), key, &err) != 0 ||
	    peer_log(srv, domain, base, in->introducer, on_behalf(srv, in),
	    &log, &err) != 0) {
		log_debug("introducer %s: %s", in->introducer, err.msg);
		return 0;
	}
	ok = verify_under(in, &log);
	idlog_release(&log);
	if (!ok && peer_log_refresh(srv, domain, base, in->introducer,
	    on_behalf(srv, in), "introduction", &log, &err) == 0) {
		ok = verify_under(in, &log);
		idlog_release(&log);
	}
	return ok;
}

/* in's signature under its introducer's key: 1 (the address in
   introducer), 0, or -1 when the store fails. */
static int
verified(struct server *srv, const struct introduction *in,
    const char *sender, const char *recipient,
    char introducer[ADDRESS_MAX + 1])
{
	int r;

	r = strcmp(address_domain(in->introducer), srv->cfg.domain) == 0 ?
	    verify_local(srv, in) : verify_remote(srv, in);
	if (r == 1)
		memcpy(introducer, in->introducer, strlen(in->introducer) + 1);
	else if (r == 0)
		log_debug("introduction of %s to %s by %s does not verify",
		    sender, recipient, in->introducer);
	return r;
}

int
introduction_for(struct server *srv, const char *header_value,
    const struct consent_ask *a, int64_t now,
    char introducer[ADDRESS_MAX + 1])
{
	struct consent_ask claimed = *a;
	struct introduction in;
	struct smimp_err err;
	int r;

	introducer[0] = '\0';
	if (header_value == NULL || header_value[0] == '\0' ||
	    !statement_for(header_value, a->sender, a->recipient, now, &in))
		return 0;
	/* Checked only where it could count: no fetch for nothing. */
	claimed.introducer = in.introducer;
	r = consent_introduction_counts(srv, &claimed, &err);
	if (r < 0)
		log_store(&err, "introduction by %s", in.introducer);
	if (r <= 0)
		return r;
	return verified(srv, &in, a->sender, a->recipient, introducer);
}

int
introduction_verify_header(struct server *srv, const char *header_value,
    const char *sender, const char *recipient, int64_t now,
    char introducer[ADDRESS_MAX + 1])
{
	struct introduction in;

	introducer[0] = '\0';
	if (header_value == NULL || header_value[0] == '\0' ||
	    !statement_for(header_value, sender, recipient, now, &in))
		return 0;
	return verified(srv, &in, sender, recipient, introducer);
}
