/*
 * reqsig.h - signed HTTP requests.  A client proves who it is by
 * signing the method, the server's domain, the request target (path and
 * query), a date, a nonce, the hash of the body and every Smimp-* header
 * with its identity key; a server signs its requests to other servers
 * the same way with its server key.  The body's hash travels in a
 * header too, so that a receiver authenticates a request from its
 * headers alone, before it reads a byte of the body, and compares the
 * hash once the body is in (doc/PROTOCOL.md, "Signed requests").
 */
#ifndef SMIMP_REQSIG_H
#define SMIMP_REQSIG_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "signer.h"
#include "util.h"

#define REQSIG_WINDOW		300	/* seconds either way */
#define REQSIG_NONCE_STRLEN	23	/* 16 bytes, unpadded base64url */
#define REQSIG_SIG_STRLEN	89	/* 64 bytes, padded base64 */
#define REQSIG_HASH_STRLEN	65	/* 32 bytes, lowercase hex */
/* "device:NAME:ADDRESS" is the longest: an address and 40 bytes more. */
#define REQSIG_SIGNER_MAX	(ADDRESS_MAX + IDDEV_NAME_MAX + 8)
#define REQSIG_HEADERS_MAX	16	/* signed Smimp-* headers at most */

/* The headers of a signed request. */
#define REQSIG_H_SIGNER		"Smimp-Signer"
#define REQSIG_H_DATE		"Smimp-Date"
#define REQSIG_H_NONCE		"Smimp-Nonce"
#define REQSIG_H_SIGNATURE	"Smimp-Signature"
#define REQSIG_H_BODY_HASH	"Smimp-Body-Hash"

struct reqsig {
	/*
	 * ADDRESS, server:DOMAIN, recovery:ADDRESS or, for a user's device
	 * signing with its own key, device:NAME:ADDRESS.
	 */
	char signer[REQSIG_SIGNER_MAX + 1];
	char date[TIME_STRLEN];
	char nonce[REQSIG_NONCE_STRLEN];
	char signature[REQSIG_SIG_STRLEN];
	unsigned char body_hash[32];
};

/* A request header as the signature sees it: name and trimmed value. */
struct reqsig_header {
	const char *name, *value;
};

/* BLAKE2b-256 of a body, as the signature covers it. */
void reqsig_body_hash(unsigned char out[32], const void *body, size_t len);

/*
 * Is this header covered by the signature?  Every Smimp-* header except
 * the five that make up the signature itself.
 */
int reqsig_header_signed(const char *name);

/*
 * Fill rs: a fresh nonce, now, body_hash and signer's signature over
 * them and the signed headers among h[0..n).
 */
int reqsig_sign(struct reqsig *rs, const struct signer *signer,
    const char *method, const char *authority, const char *target,
    const unsigned char body_hash[32], const struct reqsig_header *h,
    size_t n, int64_t now, struct smimp_err *err);

/*
 * The signature headers of a request (their values, NULL when absent)
 * into rs; -1 with a reason when one is missing or malformed.
 */
int reqsig_parse(struct reqsig *rs, const char *signer, const char *date,
    const char *nonce, const char *signature, const char *body_hash,
    struct smimp_err *err);

/*
 * The signer name of a device's requests, "device:NAME:ADDRESS", into
 * out: 0, or -1 when it does not fit.
 */
int reqsig_device_signer(char *out, size_t cap, const char *device,
    const char *address);
/*
 * Is signer a device's ("device:NAME:ADDRESS", NAME a device's name)?
 * 1 with the name copied out and *address pointing into signer at the
 * address (not checked here), else 0.
 */
int reqsig_is_device_signer(const char *signer,
    char name[IDDEV_NAME_MAX + 1], const char **address);

/*
 * Check rs (with the headers h[0..n) of the request) against the public
 * key and the window around now.  The caller checks the nonce against
 * its cache and, once the body is in, its hash against rs->body_hash.
 * Fails with SMIMP_EXIT_BADMSG and a message naming the reason.
 */
int reqsig_verify(const struct reqsig *rs, const char *method,
    const char *authority, const char *target,
    const struct reqsig_header *h, size_t n, const unsigned char pub[32],
    int64_t now, struct smimp_err *err);

#endif
