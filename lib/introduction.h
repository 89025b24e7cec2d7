/*
 * introduction.h - introduction statements: someone the recipient
 * trusts vouches, with a signature by their identity key, that a
 * stranger may write to the recipient, until a date.
 *
 *	smimp-introduction/1 LF
 *	introducer: ADDRESS LF		(who signs)
 *	introduced: ADDRESS LF		(the stranger, who attaches it)
 *	to: ADDRESS LF			(the recipient)
 *	expires: DATE LF
 *	signature: base64(Ed25519 over "smimp/1 introduction" NUL ||
 *	           the lines above) LF
 *
 * Every address normalized, the lines in that order and no others.
 * Statements travel encoded as unpadded base64url: one per line of the
 * signed envelope, and as a comma-separated list in the
 * Smimp-Introduction header (doc/PROTOCOL.md, "Introductions").
 */
#ifndef SMIMP_INTRODUCTION_H
#define SMIMP_INTRODUCTION_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "signer.h"
#include "util.h"

#define INTRO_MAGIC		"smimp-introduction/1\n"
#define INTRO_MAX		1024	/* bytes of one statement */
/* Unpadded base64url of INTRO_MAX bytes. */
#define INTRO_ENCODED_MAX	((INTRO_MAX * 4 + 2) / 3)
/* The statements of one message, encoded and joined by commas. */
#define INTRO_LIST_MAX		8192
/* The most such a list holds: no statement is under 191 bytes. */
#define INTRO_LIST_ENTRIES	32
#define INTRO_DEFAULT_SECS	(7 * 24 * 3600)	/* smimp-trust's */
/*
 * No statement lives longer: its maker refuses a later expiry, and a
 * reader or server one that ends more than this (and a clock skew of
 * INTRO_SKEW) after now, since nothing else bounds a signed promise.
 */
#define INTRO_MAX_SECS		(90 * 24 * 3600)
#define INTRO_SKEW		300

struct introduction {
	char introducer[ADDRESS_MAX + 1];
	char introduced[ADDRESS_MAX + 1];
	char to[ADDRESS_MAX + 1];
	int64_t expires;
	unsigned char sig[64];
	char text[INTRO_MAX + 1];	/* the whole statement, as signed */
	size_t len;
	size_t signed_len;		/* bytes before the signature line */
};

/*
 * The statement that signer (its name the introducer's normalized
 * address) makes: introduced may write to `to` until expires.  Into in;
 * SMIMP_EXIT_USAGE when an address is not normalized, when introducer,
 * introduced and to are not three different addresses, or when the
 * expiry is not within (now, now + INTRO_MAX_SECS].
 */
int introduction_make(struct introduction *in, const char *introduced,
    const char *to, int64_t expires, int64_t now,
    const struct signer *signer, struct smimp_err *err);
/* Parse a statement strictly; SMIMP_EXIT_BADMSG when it is malformed. */
int introduction_parse(struct introduction *in, const unsigned char *buf,
    size_t len, struct smimp_err *err);
/* Read and parse a statement from a file ("-": standard input). */
int introduction_read_file(struct introduction *in, const char *path,
    struct smimp_err *err);
/* Does the signature verify under the introducer's identity key pub? */
int introduction_verify(const struct introduction *in,
    const unsigned char pub[32]);
/*
 * Does in let sender write to recipient at now: introduced is sender,
 * to is recipient, the introducer someone else, and it has not expired
 * (nor does it end past now + INTRO_MAX_SECS + INTRO_SKEW)?  0, or -1
 * with the reason (SMIMP_EXIT_USAGE).  The signature is not checked.
 */
int introduction_check(const struct introduction *in, const char *sender,
    const char *recipient, int64_t now, struct smimp_err *err);

/* Append the unpadded base64url of the statement to sb. */
int introduction_encode(const struct introduction *in, struct sbuf *sb);
/* How many characters that is. */
size_t introduction_encoded_len(const struct introduction *in);
/* Decode one encoded statement (canonical base64url) and parse it. */
int introduction_decode(struct introduction *in, const char *s, size_t len,
    struct smimp_err *err);
/*
 * The next statement of a comma-separated list (list[0..len), at most
 * INTRO_LIST_MAX bytes) from *pos: 1 with it in in, 0 at the end, -1
 * (SMIMP_EXIT_BADMSG) for a list that is too long, an empty entry, or an
 * entry that does not decode and parse.
 */
int introduction_next(const char *list, size_t len, size_t *pos,
    struct introduction *in, struct smimp_err *err);

#endif
