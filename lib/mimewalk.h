/*
 * mimewalk.h - the MIME structure of a message (RFC 2045, 2046, 2183, 2231)
 * as smimp-sendmail takes it: one text part becomes the body, and each
 * other part, decoded, is handed to the caller as an attachment.  HTML
 * is never rendered into the body: it is one of the attachments.
 */
#ifndef SMIMP_MIMEWALK_H
#define SMIMP_MIMEWALK_H

#include <stddef.h>

#include "err.h"
#include "rfc5322.h"
#include "util.h"

#define MIME_MAX_DEPTH	8	/* multiparts within multiparts */
#define MIME_MAX_PARTS	100	/* parts of a message, multiparts too */
#define MIME_NAME_MAX	255	/* bytes of an attachment's name */
#define MIME_TYPE_MAX	200	/* bytes of an attachment's type */

struct mime_sink {
	/*
	 * A part that is not the body: its name (never empty, no '/', no
	 * leading dot, no control character, unique in the message), its
	 * type ("type/subtype" in lower case, with ";charset=NAME" for
	 * text), its bytes with the transfer encoding undone.  Failing
	 * (-1 with err set) fails the walk.
	 */
	int (*attachment)(void *arg, const char *name, const char *type,
	    const unsigned char *data, size_t len, struct smimp_err *err);
	void *arg;
};

/*
 * Walk the message whose header is h and whose content (after the
 * header) is content[0..len).  The body is its first text/plain (or
 * text/markdown) part not marked as an attachment: into body, with the
 * transfer encoding undone, in UTF-8 (from its charset, mimecode.h's;
 * text that names none is UTF-8 if it is, else ISO-8859-1), lines
 * ended by LF; *has_body says if there was one.  Every other leaf part
 * goes to sink.  Refused (SMIMP_EXIT_FAIL): a charset or a transfer
 * encoding not read, text not valid in its charset, base64 that does
 * not decode, a multipart without its boundary, more than
 * MIME_MAX_DEPTH or MIME_MAX_PARTS.
 */
int mime_walk(const struct rfc5322_header *h, const char *content,
    size_t len, const struct mime_sink *sink, struct sbuf *body,
    int *has_body, struct smimp_err *err);

#endif
