/*
 * reqsig.h - signed HTTP requests.  A client proves who it is by
 * signing the method, the server's domain, the path, a date, a nonce and
 * the hash of the body with its identity key; a server signs its
 * requests to other servers the same way with its server key.  The
 * receiver checks the date against a window and refuses a nonce it has
 * seen (doc/PROTOCOL.md, "Signed requests").
 */
#ifndef SMIMP_REQSIG_H
#define SMIMP_REQSIG_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "util.h"

#define REQSIG_WINDOW		300	/* seconds either way */
#define REQSIG_NONCE_STRLEN	23	/* 16 bytes, unpadded base64url */
#define REQSIG_SIG_STRLEN	89	/* 64 bytes, padded base64 */
#define REQSIG_SIGNER_MAX	(ADDRESS_MAX + 8)

/* The four headers of a signed request. */
#define REQSIG_H_SIGNER		"Smimp-Signer"
#define REQSIG_H_DATE		"Smimp-Date"
#define REQSIG_H_NONCE		"Smimp-Nonce"
#define REQSIG_H_SIGNATURE	"Smimp-Signature"

struct reqsig {
	char signer[REQSIG_SIGNER_MAX + 1];	/* address or server:domain */
	char date[TIME_STRLEN];
	char nonce[REQSIG_NONCE_STRLEN];
	char signature[REQSIG_SIG_STRLEN];
};

/* BLAKE2b-256 of a body, as the signature covers it. */
void reqsig_body_hash(unsigned char out[32], const void *body, size_t len);

/* Fill rs: a fresh nonce, now, and the signature. */
int reqsig_sign(struct reqsig *rs, const char *signer, const char *method,
    const char *authority, const char *path,
    const unsigned char body_hash[32], const unsigned char secret[64],
    int64_t now, struct smimp_err *err);

/*
 * Check rs against the public key and the window around now.  The
 * caller checks the nonce against its cache.  Fails with code 401-ish
 * semantics: SMIMP_EXIT_BADMSG and a message naming the reason.
 */
int reqsig_verify(const struct reqsig *rs, const char *method,
    const char *authority, const char *path,
    const unsigned char body_hash[32], const unsigned char pub[32],
    int64_t now, struct smimp_err *err);

#endif
