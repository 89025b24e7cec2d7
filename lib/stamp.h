/*
 * stamp.h - delivery stamps: the sender's signature, by its identity
 * key, over who sends what to whom and when.  The receiving server
 * checks it against the identity log that the sender's own domain
 * serves, so nobody can send as an address whose key they do not hold.
 *
 * Signed bytes: "smimp/1 delivery-stamp" NUL FROM LF TO LF MESSAGE-ID LF
 * hex(BLAKE2b-256(sealed message)) LF DATE, where TO is the recipients
 * at one domain, sorted and joined by ",": each recipient domain gets a
 * stamp of its own, which names nobody of any other domain.
 */
#ifndef SMIMP_STAMP_H
#define SMIMP_STAMP_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "util.h"

#define STAMP_STRLEN	89	/* base64 of 64 bytes */
/*
 * How long a stamp stays good for delivery: longer than any relay keeps
 * retrying, and how long a receiving server remembers a delivered id.
 */
#define STAMP_VALIDITY	(7 * 24 * 3600)
#define STAMP_SKEW	300	/* seconds a stamp may lie in the future */

/* hash: BLAKE2b-256 of the sealed message (reqsig_body_hash). */
int stamp_sign(char out[STAMP_STRLEN], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char secret[64], struct smimp_err *err);
int stamp_verify(const char *stamp, const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char pub[32], struct smimp_err *err);
/*
 * SH: BLAKE2b-256 of exactly the bytes stamp_sign signs for these
 * fields, what a proof of work binds (work.h).  -1 if they are too long
 * for any stamp.
 */
int stamp_hash(unsigned char sh[32], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date);
/*
 * Is the stamp's date within [now - max_age, now + STAMP_SKEW]?  0 if
 * so; -1 with a reason.
 */
int stamp_date_check(const char *date, int64_t now, int64_t max_age,
    struct smimp_err *err);
/* Sort and join a comma-separated recipient list into out. */
int stamp_recipients(const char *list, char *out, size_t cap);
/*
 * The recipients of list (normalized addresses, comma-separated, blanks
 * after a comma allowed) at domain, sorted and joined by ",": what the
 * stamp for that domain names.  -1 when none is there or they do not
 * fit in cap.
 */
int stamp_recipients_at(const char *list, const char *domain, char *out,
    size_t cap);
/* The distinct domains of list, in order of first mention: how many. */
size_t stamp_domains(const char *list, char (*out)[ADDRESS_DOMAIN_MAX + 1],
    size_t cap);

/*
 * The stamps of a submission (Smimp-Stamps): one for each recipient
 * domain that needs one, as "DOMAIN=STAMP" joined by ",", each DOMAIN
 * normalized and at most once, at most STAMPS_MAX bytes: 256 domains
 * in the 8 KiB a recipient list may have, and a stamp for each.
 */
#define STAMPS_MAX	(8192 + 256 * (STAMP_STRLEN + 1))
/* Is v a well-formed Smimp-Stamps value?  Its number of stamps, or -1. */
int stamps_count(const char *v);
/* The stamp the (well-formed) value v gives domain: 1, or 0 none. */
int stamps_find(const char *v, const char *domain, char out[STAMP_STRLEN]);
/* "DOMAIN=STAMP" onto sb, after a "," unless sb is empty. */
int stamps_add(struct sbuf *sb, const char *domain, const char *stamp);

#endif
