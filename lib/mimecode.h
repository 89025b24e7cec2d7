/*
 * mimecode.h - the encodings of Internet mail undone: base64 and
 * quoted-printable (RFC 2045), the Q of encoded words (RFC 2047), and
 * text in the charsets smimp-sendmail reads turned into UTF-8.  Each
 * appends to a bounded buffer, so what input drives stays bounded.
 */
#ifndef SMIMP_MIMECODE_H
#define SMIMP_MIMECODE_H

#include <stddef.h>

#include "util.h"

/* The charsets read; any other is refused by name. */
enum mime_charset {
	CHARSET_UNKNOWN = -1,
	CHARSET_UTF8,
	CHARSET_ASCII,
	CHARSET_LATIN1,		/* ISO-8859-1 */
	CHARSET_CP1252		/* Windows-1252, often sent as Latin-1 */
};
#define MIME_CHARSETS_READ	"UTF-8, US-ASCII, ISO-8859-1, Windows-1252"

/* The charset called name[0..len), case aside (and its aliases). */
enum mime_charset mime_charset(const char *name, size_t len);

/* What appending said: done, no room left in the buffer, bad input. */
#define MIME_OK		0
#define MIME_FULL	(-1)
#define MIME_BAD	(-2)

/*
 * Append in[0..len), in charset cs, to sb as UTF-8.  UTF-8 must be
 * valid (MIME_BAD, *bad the offset of the first byte that is not);
 * US-ASCII with 8-bit bytes is read as UTF-8 when it is valid UTF-8,
 * else as ISO-8859-1 (text that names no charset, or the wrong one).
 */
int mime_to_utf8(enum mime_charset cs, const unsigned char *in, size_t len,
    struct sbuf *sb, size_t *bad);

/*
 * Base64 (RFC 2045: line breaks and blanks skipped, the end at '=' or
 * at the end of in) appended to sb; MIME_BAD for another character.
 */
int mime_base64(const char *in, size_t len, struct sbuf *sb);

/*
 * Quoted-printable appended to sb: "=XX" a byte, "=" at the end of a
 * line a soft break, blanks at the end of a line dropped (RFC 2045,
 * 6.7); an '=' that is neither passes as it is.  With word, the Q of
 * RFC 2047: '_' is a space, and there are no lines.
 */
int mime_qp(const char *in, size_t len, int word, struct sbuf *sb);

/* The value of a hex digit, either case; -1 for another character. */
int mime_hex(char c);

/* Is in[0..len) valid UTF-8 (util.h's utf8_next)? */
int mime_utf8_valid(const unsigned char *in, size_t len, size_t *bad);

#endif
