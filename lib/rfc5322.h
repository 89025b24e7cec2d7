/*
 * rfc5322.h - Internet messages as programs hand them to sendmail:
 * reading one from a descriptor (bounded, with sendmail's lone dot),
 * its header fields unfolded (RFC 5322), the addresses of an address
 * list (display names, groups, comments), and the encoded words of
 * RFC 2047 in an unstructured field such as Subject.  The MIME
 * structure of the body is mimewalk.h's.
 */
#ifndef SMIMP_RFC5322_H
#define SMIMP_RFC5322_H

#include <stddef.h>

#include "address.h"
#include "err.h"

#define RFC5322_MAX_FIELDS	1000		/* header fields of an entity */
#define RFC5322_MAX_HEADER	(256 * 1024)	/* an entity's header section */
#define RFC5322_MAX_ADDRESSES	1000		/* in all the lists read */

/*
 * Read a message from fd to its end into *buf (malloc'd, NUL-added),
 * at most cap bytes (more: SMIMP_EXIT_FAIL, saying the limit).  With
 * dot_ends, a line holding a lone "." ends it, as for sendmail without
 * -i, and is not part of it; the rest of fd is not read.
 */
int rfc5322_read(int fd, int dot_ends, size_t cap, char **buf, size_t *len,
    struct smimp_err *err);

struct rfc5322_field {
	size_t name, name_len;	/* offsets into the header's buf */
	size_t value;		/* its value unfolded, NUL-terminated */
};

struct rfc5322_header {
	struct rfc5322_field *f;
	size_t n;
	char *buf;		/* the names and unfolded values */
};

/*
 * The header section at the start of msg[0..len): fields until an empty
 * line, or until a line that is no field, where the body then starts
 * (an mbox "From " line first is skipped).  *body gets the offset of
 * the body.  Values are unfolded, blanks at both ends dropped.
 */
int rfc5322_parse(const char *msg, size_t len, struct rfc5322_header *h,
    size_t *body, struct smimp_err *err);
void rfc5322_release(struct rfc5322_header *h);
/*
 * The value of the field named name (case aside) after the one at *i
 * (start *i at 0), or NULL when there is none.
 */
const char *rfc5322_next(const struct rfc5322_header *h, const char *name,
    size_t *i);
/* The first such value, or NULL. */
const char *rfc5322_get(const struct rfc5322_header *h, const char *name);

struct rfc5322_addrs {
	char (*a)[ADDRESS_MAX + 1];	/* normalized, each once */
	size_t n, cap;
};
void rfc5322_addrs_release(struct rfc5322_addrs *l);
/* Is address (normalized) in l? */
int rfc5322_addrs_has(const struct rfc5322_addrs *l, const char *address);
/*
 * Add the addresses of the address list value (RFC 5322, 3.4: mailboxes
 * with or without display names and angle brackets, groups, comments,
 * quoted strings; the obsolete routes dropped) to l, each normalized
 * (address.h) and once.  what names the list in errors ("To").  An
 * address smimp cannot take, one without a domain, or a list that does
 * not parse is refused (SMIMP_EXIT_FAIL).
 */
int rfc5322_addresses(const char *value, const char *what,
    struct rfc5322_addrs *l, struct smimp_err *err);

/*
 * The unstructured value in (Subject, say) as one line of UTF-8 into
 * out (cap bytes): RFC 2047 encoded words decoded (B and Q, in the
 * charsets mimecode.h reads; blanks between two of them dropped), other
 * bytes taken as UTF-8, or as ISO-8859-1 when they are not, tabs made
 * spaces.  Refused (SMIMP_EXIT_FAIL, what naming the field): an encoded
 * word in another charset, a control character, more than cap - 1
 * bytes.  A malformed encoded word is kept as it is written.
 */
int rfc2047_decode(const char *in, const char *what, char *out, size_t cap,
    struct smimp_err *err);

#endif
