/*
 * armor.h - the streams an age file is read from and written to, and
 * its ASCII armor (C2SP age spec, "ASCII armor"): input detects armor
 * from its first bytes and decodes it on the fly, output writes it when
 * asked, so the age format above sees binary age either way.
 *
 * Every failure, here and in age.h, fills err with code
 * SMIMP_EXIT_BADMSG (input is bad) or SMIMP_EXIT_FAIL (I/O), and
 * err->detail with an enum age_failure.
 */
#ifndef SMIMP_ARMOR_H
#define SMIMP_ARMOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGE_ARMOR_BEGIN		"-----BEGIN AGE ENCRYPTED FILE-----"
#define AGE_ARMOR_END		"-----END AGE ENCRYPTED FILE-----"

/* What went wrong, from the armor up, so a caller can tell them apart. */
enum age_failure {
	AGE_FAIL_NONE = 0,
	AGE_FAIL_IO,		/* read or write error */
	AGE_FAIL_ARMOR,		/* malformed ASCII armor */
	AGE_FAIL_HEADER,	/* header does not parse, or bad stanza */
	AGE_FAIL_NO_MATCH,	/* no identity unwraps any stanza */
	AGE_FAIL_HMAC,		/* header MAC is wrong */
	AGE_FAIL_PAYLOAD,	/* STREAM fails: bad tag, truncated, trailing */
	/*
	 * As AGE_FAIL_NO_MATCH, of a header that names one-time prekeys
	 * (smimp-prekey stanzas, age.h): the reader's was deleted, or they
	 * are others'.
	 */
	AGE_FAIL_NO_PREKEY
};

/* Fill err for a failure of kind, fmt taking the one string what; -1. */
int age_fail(struct smimp_err *err, enum age_failure kind, const char *fmt,
    const char *what);

/* Buffered input over a file descriptor; callers see binary age. */
struct age_in;
struct sbuf;
struct age_in *age_in_open_fd(int fd, struct smimp_err *err);
/* Armor required: anything else is an AGE_FAIL_ARMOR error. */
struct age_in *age_in_open_fd_armored(int fd, struct smimp_err *err);
/* The same over len bytes in memory (at most 256 KiB), copied. */
struct age_in *age_in_open_mem(const void *data, size_t len,
    struct smimp_err *err);
/* Read up to len bytes, fewer only at EOF; *got is 0 at EOF. */
int age_in_read(struct age_in *in, unsigned char *buf, size_t len,
    size_t *got, struct smimp_err *err);
/*
 * The next line, its LF included, appended to sb: AGE_LINE_DONE; or
 * AGE_LINE_EOF when the input ends before an LF, AGE_LINE_LONG when
 * the line runs past max bytes before its LF, AGE_LINE_FULL when sb
 * refuses more (its max, or memory); what was read of the line may be
 * in sb then.  -1 on a read error, with err set.
 */
enum { AGE_LINE_DONE, AGE_LINE_EOF, AGE_LINE_LONG, AGE_LINE_FULL };
int age_in_read_line(struct age_in *in, struct sbuf *sb, size_t max,
    struct smimp_err *err);
int age_in_is_armored(const struct age_in *in);
/*
 * Do the next bytes of a stream that is not armored start with
 * p[0..n)?  Nothing is read: n must be small (what the first read
 * brought in, at most 256 KiB, is looked at).
 */
int age_in_starts_with(const struct age_in *in, const void *p, size_t n);
/*
 * How many bytes of the descriptor the reader has taken so far (read
 * and not still buffered): where the next byte it hands on lies, from
 * where the descriptor was when opened.  -1 for armor or memory.
 */
int age_in_offset(const struct age_in *in, uint64_t *off);
void age_in_free(struct age_in *in);	/* does not close the fd */

/*
 * Buffered output to a file descriptor, optionally armored.
 * age_out_close writes the armor footer and flushes; it neither closes
 * nor fsyncs the fd.
 */
struct age_out;
struct age_out *age_out_open_fd(int fd, int armor, struct smimp_err *err);
/*
 * What a write error names ("cannot write NAME: ..."): "the output"
 * until set.  The string is the caller's, kept as long as out.
 */
void age_out_name(struct age_out *out, const char *name);
int age_out_write(struct age_out *out, const void *buf, size_t len,
    struct smimp_err *err);
int age_out_close(struct age_out *out, struct smimp_err *err);
void age_out_free(struct age_out *out);

#endif
