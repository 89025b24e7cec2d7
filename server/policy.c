/*
 * policy.c - a user's consent policy on their own server: POST {base}/
 * v1/users/ADDRESS/policy stores a new statement, GET reads it back,
 * both for the owner only.  What the server keeps of it, and how it
 * decides with it, is consent.c's and the store's.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "policy.h"
#include "server.h"
#include "banned.h"

/*
 * The ADDRESS of the target, which must be the signer's own: anyone
 * else is answered as for an address without an account.  0, or -1
 * with the reply set.
 */
static int
owner_address(struct exchange *x, char addr[ADDRESS_MAX + 1])
{
	struct smimp_err err;

	if (address_normalize(x->rest, addr, &err) != 0) {
		reply_error(x, 400, "invalid address");
		return -1;
	}
	if (strcmp(addr, x->signer) != 0) {
		reply_error(x, 404, "unknown user");
		return -1;
	}
	return 0;
}

static void
reply_summary(struct exchange *x, const struct policy *p)
{
	char date[TIME_STRLEN], unknown[16];

	time_format(p->date, date);
	policy_unknown_format(p->unknown, p->bits, unknown);
	reply_json(x, 200, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "address",
	    p->address, "date", date, "unknown", unknown, "allowance",
	    (json_int_t)p->allowance, "blocked", (json_int_t)p->nblock,
	    "allowed", (json_int_t)p->nallow));
}

/*
 * Is the statement p (from data) one the owner may store now: theirs,
 * signed by the identity key the request was signed with (the one
 * their log names now), dated within the request window?  0, or -1
 * with the reply set.
 */
static int
check_statement(struct exchange *x, const struct policy *p,
    const char *addr)
{
	struct smimp_err err;
	int64_t now = time_now();

	if (strcmp(p->address, addr) != 0) {
		reply_error(x, 400, "the policy is for another address");
		return -1;
	}
	if (policy_verify(p, (const unsigned char *)x->small.buf, x->key,
	    &err) != 0) {
		reply_error(x, 400, err.msg);
		return -1;
	}
	if (p->date > now + REQSIG_WINDOW || p->date < now - REQSIG_WINDOW) {
		reply_error(x, 400, "the policy's date is not now");
		return -1;
	}
	return 0;
}

void
policy_post(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	struct smimp_err err;
	struct policy p;
	int r;

	memset(&p, 0, sizeof(p));
	if (owner_address(x, addr) != 0)
		goto out;
	if (policy_parse(&p, (const unsigned char *)x->small.buf,
	    x->small.len, &err) != 0) {
		reply_error(x, 400, err.msg);
		goto out;
	}
	if (check_statement(x, &p, addr) != 0)
		goto out;
	r = store_policy_put(x->srv->store, &p,
	    (const unsigned char *)x->small.buf, x->small.len, time_now(),
	    &err);
	if (r == STORE_ERROR)
		reply_unavailable(x, &err);
	else if (r == STORE_NOT_FOUND)
		reply_error(x, 404, "unknown user");
	else if (r == STORE_EXISTS)
		reply_error(x, 409, "a policy of the same or a later date is "
		    "stored");
	else {
		log_info("policy of %s: %zu blocked, %zu allowed", addr,
		    p.nblock, p.nallow);
		reply_summary(x, &p);
	}
out:
	policy_release(&p);
}

void
policy_get(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1];
	unsigned char *text = NULL;
	struct smimp_err err;
	size_t len;
	int r;

	if (owner_address(x, addr) != 0)
		return;
	r = store_policy_get(x->srv->store, addr, &text, &len, &err);
	if (r == STORE_ERROR)
		reply_unavailable(x, &err);
	else if (r != STORE_OK)
		reply_error(x, 404, "no policy published");
	else
		reply_bytes(x, 200, "text/plain; charset=utf-8", text, len);
	free(text);
}
