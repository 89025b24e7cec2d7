/*
 * accounts.c - POST {base}/v1/register: redeem an invitation.  The
 * dispatcher has checked that the Smimp-Invite token names a live
 * invitation before reading the body; the body is the new user's
 * identity log, and the request must be signed by its identity key.
 * The token is used up by the registration.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "http.h"
#include "idlog.h"
#include "server.h"
#include "banned.h"

void
accounts_register(struct exchange *x)
{
	const char *token = exchange_header(x, "Smimp-Invite");
	unsigned char hash[32];
	char fp[FINGERPRINT_STRLEN];
	struct store_device devs[STORE_DEVICES_MAX];
	struct store_log sl;
	struct smimp_err err;
	struct idlog log;
	int r;

	if (idlog_parse(&log, (const unsigned char *)x->small.buf,
	    x->small.len, &err) != 0) {
		reply_error(x, 400, "malformed identity log");
		return;
	}
	if (strcmp(log.address, x->signer) != 0) {
		/* x->signer: the address the invitation is for. */
		reply_error(x, 403, "invalid or expired invitation");
		goto out;
	}
	if (auth_self_signed(x, log.address, log.identity_key) != 0)
		goto out;
	auth_invite_hash(token, hash);
	server_store_log(&log, &sl, devs);
	r = store_invite_redeem(x->srv->store, hash, log.address, &sl,
	    time_now(), &err);
	fingerprint_format(log.fingerprint, fp);
	switch (r) {
	case STORE_OK:
		log_info("registered %s by invitation", log.address);
		reply_json(x, 201, json_pack("{s:s,s:s}", "address",
		    log.address, "fingerprint", fp));
		break;
	case STORE_NOT_FOUND:
		reply_error(x, 403, "invalid or expired invitation");
		break;
	case STORE_EXISTS:
		reply_error(x, 409, "the address has an account already");
		break;
	default:
		reply_unavailable(x, &err);
	}
out:
	idlog_release(&log);
}
