/*
 * work.h - proof of work, what a stranger pays to reach a recipient
 * whose policy asks for it (doc/PROTOCOL.md, "Proof of work").
 *
 * The challenge for one recipient binds the delivery stamp (sender,
 * every recipient, message id, body hash, date) and the recipient:
 *
 *	prefix = "smimp/1 work" NUL SH RECIPIENT LF
 *	SH     = BLAKE2b-256 of the bytes the stamp signs (stamp_hash)
 *	value  = leading zero bits of BLAKE2b-256(prefix || NONCE)
 *
 * NONCE is 8 bytes, written as 16 lowercase hex digits.  A proof
 * satisfies "pow:BITS" when its value is BITS or more.  The work is
 * spent once per recipient and message; checking it is one hash.
 */
#ifndef SMIMP_WORK_H
#define SMIMP_WORK_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "address.h"
#include "util.h"

/*
 * About a second on one core (bench/work.sh): 2^23 tries expected, at
 * 6.6 to 6.9 million tries a second on a 2020s server core, 1.2 s on
 * average and 1.0 s in the median (the number of tries is geometric).
 */
#define WORK_DEFAULT_BITS	23
/* 2^40 tries: days of one core; past that a policy asks the impossible. */
#define WORK_MAX_BITS		40
#define WORK_NONCE_LEN		8
#define WORK_PROOF_LEN		16	/* hex digits of the nonce */
/* One proof per recipient at most: MSG_MAX_RECIPIENTS (message.h). */
#define WORK_MAX_PROOFS		256
/*
 * A Smimp-Work value: the recipient list it names fits the 8 KiB every
 * recipient list does, plus "=" and 16 digits and "," per proof.
 */
#define WORK_HEADER_MAX		(8192 + WORK_MAX_PROOFS * (WORK_PROOF_LEN + 2))
/* Tries between two calls of work_solve's progress function. */
#define WORK_STEP		65536

/* The challenge of one recipient, absorbed once, copied for each try. */
struct work_prefix {
	crypto_generichash_state st;
};

/* sh: stamp_hash() of the message's stamp; recipient normalized. */
void work_prefix_init(struct work_prefix *p, const unsigned char sh[32],
    const char *recipient);
/* The value of nonce: the leading zero bits of its hash, 0 to 256. */
unsigned int work_value(const struct work_prefix *p,
    const unsigned char nonce[WORK_NONCE_LEN]);
/*
 * Find a nonce whose value is bits or more, trying nonces 0, 1, 2, ...
 * as 8-byte big-endian numbers (so the first found is the smallest).
 * progress, when not NULL, is called every WORK_STEP tries with how
 * many were made; a non-zero answer stops the search.  Returns 0 with
 * nonce set, or 1 when progress stopped it.
 */
int work_solve(const struct work_prefix *p, unsigned int bits,
    int (*progress)(uint64_t tries, void *arg), void *arg,
    unsigned char nonce[WORK_NONCE_LEN]);

/*
 * The Smimp-Work header value: ADDRESS=NONCE[,ADDRESS=NONCE...], each
 * address normalized, NONCE 16 lowercase hex digits, no blanks.
 *
 * work_header_next: the proof at *pos (the value's start, then where
 * the last call left it): 1 with address and nonce, 0 at the end, -1
 * malformed.
 */
int work_header_next(const char **pos, char address[ADDRESS_MAX + 1],
    unsigned char nonce[WORK_NONCE_LEN]);
/*
 * Is value a whole Smimp-Work value: at most WORK_HEADER_MAX bytes, 1
 * to WORK_MAX_PROOFS proofs, no address twice, and each address one
 * that known accepts (when known is not NULL)?  0, or -1.
 */
int work_header_check(const char *value,
    int (*known)(const char *address, void *arg), void *arg);
/* The nonce a checked value gives address: 1, or 0 when none. */
int work_header_find(const char *value, const char *address,
    unsigned char nonce[WORK_NONCE_LEN]);
/* Append the proof "address=NONCE" (after a comma unless sb is empty). */
int work_header_add(struct sbuf *sb, const char *address,
    const unsigned char nonce[WORK_NONCE_LEN]);

/*
 * What a recipient requires of the requester, as a directory lookup
 * answers it (Smimp-Requires: none | pow:BITS | introduction | closed).
 */
enum work_need {
	WORK_NEED_NONE,
	WORK_NEED_POW,
	WORK_NEED_INTRODUCTION,
	WORK_NEED_CLOSED
};
struct work_requirement {
	enum work_need need;
	unsigned int bits;	/* for WORK_NEED_POW: 1 to WORK_MAX_BITS */
};
/* Parse a Smimp-Requires value exactly; -1 if malformed. */
int work_requires_parse(const char *s, struct work_requirement *req);
/* The value as the header writes it ("pow:22"); out of 16 bytes. */
void work_requires_format(const struct work_requirement *req, char out[16]);

#endif
