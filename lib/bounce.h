/*
 * bounce.h - bounce notices: what a server leaves in a sender's mailbox
 * when it gives up relaying a message, signed by the server's key.
 *
 *	smimp-bounce/1 LF
 *	server: DOMAIN LF
 *	message-id: ID LF
 *	recipients: ADDRESS[,ADDRESS...] LF
 *	date: DATE LF
 *	reason: TEXT LF
 *	signature: base64(Ed25519 over "smimp/1 bounce" NUL || the lines
 *	           above) LF
 *
 * The reason may quote another server's error; that text is untrusted:
 * bounce_quote makes it one printable, capped line, marked as theirs.
 */
#ifndef SMIMP_BOUNCE_H
#define SMIMP_BOUNCE_H

#include <stddef.h>

#include "signer.h"
#include "util.h"

#define BOUNCE_MAGIC		"smimp-bounce/1\n"
#define BOUNCE_QUOTE_MAX	200	/* bytes of another server's words */

struct bounce {
	const char *server, *message_id, *recipients, *date, *reason;
};

/*
 * "DOMAIN said: TEXT" with TEXT cut to BOUNCE_QUOTE_MAX printable ASCII
 * bytes (others become '?'), into out (cap bytes).
 */
void bounce_quote(const char *domain, const char *text, char *out,
    size_t cap);

/* The notice, signed by signer, into sb; every field one line. */
int bounce_build(struct sbuf *sb, const struct bounce *b,
    const struct signer *signer);

/* Is data a notice signed by pub?  1 if so, else 0. */
int bounce_verify(const unsigned char *data, size_t len,
    const unsigned char pub[32]);

/*
 * The fields of a notice that bounce_verify accepted, into b: copied
 * into storage (at least len + 1 bytes, cap of them), which they point
 * into; each a line of the notice as it is (the reason may hold any
 * byte but NUL and LF).  0, or -1 for a notice not in the form above
 * (fields missing, out of order, a NUL in one, a date not as
 * time_format writes it) or too little room.
 */
int bounce_parse(const unsigned char *data, size_t len, struct bounce *b,
    char *storage, size_t cap);

#endif
