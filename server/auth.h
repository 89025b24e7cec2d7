/*
 * auth.h - who sent a request, decided from its headers alone: a user
 * of this domain (identity key from the store), another domain's server
 * (its published server key, through the peer cache), a user of another
 * domain (for lookups: the identity key in the log her domain serves,
 * through the peer cache), or the holder of an invitation.  Rate limits
 * count only what verified; failures are limited per source address.
 */
#ifndef SMIMPD_AUTH_H
#define SMIMPD_AUTH_H

#include "http.h"

/*
 * Authenticate x as its route demands: 0 with x->signer, x->key and
 * x->sig set, or -1 with the refusal as x's reply.
 */
int auth_request(struct exchange *x);

/*
 * For a request whose key comes with its body (registration): signed by
 * address with key, over the body that arrived; the nonce claimed.  0,
 * or -1 with the reply set.
 */
int auth_self_signed(struct exchange *x, const char *address,
    const unsigned char key[32]);

/*
 * Claim x's nonce now (routes with ROUTE_NONCE_LATER call it with their
 * own writes instead): 0, or -1 with the reply set.
 */
int auth_claim_nonce(struct exchange *x);

/*
 * Count a verified request of another domain (its server or one of its
 * users) against that domain's rate-lookup-domain, as lookups are: a
 * domain that makes up users gains nothing.  0 (or this domain's own
 * signer), or -1 with the 429 set.
 */
int auth_take_domain(struct exchange *x);

/*
 * The user of its own domain a server's lookup is made for (Smimp-For,
 * doc/PROTOCOL.md 8.11), normalized into out: 0 with *on_behalf out or
 * NULL (none named, or the signer is no server), or -1 with the 400 set.
 */
int auth_on_behalf(struct exchange *x, char out[ADDRESS_MAX + 1],
    const char **on_behalf);

/* What the store keeps of an invitation token. */
void auth_invite_hash(const char *token, unsigned char out[32]);

#endif
