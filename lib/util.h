/*
 * util.h - small helpers every module needs: a bounded growable buffer,
 * strict base64, RFC 3339 UTC dates, line splitting.
 */
#ifndef SMIMP_UTIL_H
#define SMIMP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TIME_STRLEN 21	/* 2026-11-24T22:00:00Z plus NUL */

/* A growable byte buffer that refuses to grow past max. */
struct sbuf {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
};

void sbuf_init(struct sbuf *sb, size_t max);
void sbuf_release(struct sbuf *sb);
int sbuf_add(struct sbuf *sb, const void *data, size_t len);
int sbuf_addf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append base64 (standard, padded) of data. */
int sbuf_add_b64(struct sbuf *sb, const unsigned char *data, size_t len);

/* Decode standard padded base64 of exactly out_len bytes; strict. */
int b64_decode_exact(const char *s, size_t slen, unsigned char *out,
    size_t out_len);
/* The value of a base64 character (standard alphabet), or -1. */
int b64_value(char c);
/* Does s hold a byte past ASCII (refused in base64: see util.c)? */
int b64_has_high_byte(const char *s, size_t slen);
/* Decode into a buffer of up to cap bytes; *out_len gets the size. */
int b64_decode(const char *s, size_t slen, unsigned char *out, size_t cap,
    size_t *out_len);
/*
 * The same for public data (keys, signatures, logs): the same strings
 * accepted and the same bytes out, but by plain comparisons, several
 * times faster than libsodium's decoder, which takes the same time
 * whatever the characters and is kept for secrets.
 */
int b64_decode_public(const char *s, size_t slen, unsigned char *out,
    size_t cap, size_t *out_len);

void time_format(int64_t t, char out[TIME_STRLEN]);
int time_parse(const char *s, size_t len, int64_t *t);
int64_t time_now(void);
/* Seconds on a clock that never jumps: for deadlines and intervals. */
int64_t time_mono(void);
/* The same clock in microseconds: for durations (metrics). */
int64_t time_mono_us(void);
/* ms milliseconds from now on clock, as pthread_cond_timedwait takes it. */
void time_after_ms(clockid_t clock, int64_t ms, struct timespec *at);

/*
 * Split "name: value\n" at *pos in buf[0..len): strict (one space after
 * the colon, no control characters, no empty name, at most max_line bytes).
 * Returns 1 with the line, 0 at the end of buf, -1 on a malformed line.
 */
struct kv_line {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	size_t start;		/* offset of the line in buf */
};
int kv_next(const char *buf, size_t len, size_t *pos, size_t max_line,
    struct kv_line *kv);
int kv_is(const struct kv_line *kv, const char *name);
/* Copy a value into a NUL-terminated buffer; -1 if it does not fit. */
int kv_value_copy(const struct kv_line *kv, char *out, size_t cap);
/*
 * A message id as servers and readers accept it: 1 to MESSAGE_ID_MAX
 * of A-Z a-z 0-9 and "._@+=:-", so that it can go into headers, JSON
 * and file names as is.
 */
#define MESSAGE_ID_MAX	200
int message_id_valid(const char *s);

/* Is s[0..len) 1 to max bytes of printable ASCII (0x20 to 0x7e)? */
int printable_ascii(const char *s, size_t len, size_t max);

/*
 * Is item one of the comma-separated entries of list?  An entry ends at
 * a comma, a blank or '=' (a "name=value" entry counts by its name).
 */
int list_has(const char *list, const char *item);
/* Parse a canonical unsigned decimal (no sign, no leading zero). */
int parse_u64(const char *s, size_t len, uint64_t *out);
/*
 * A duration: a canonical number of seconds, or of minutes, hours or
 * days with the suffix m, h or d (s for seconds is allowed), at most
 * max seconds.
 */
int duration_parse(const char *s, int64_t max, int64_t *secs);

/*
 * The UTF-8 sequence that starts s[0..len): its length (1 to 4) with
 * the code point in *cp; 0 when s ends inside a sequence that more
 * bytes may complete; -1 when s[0] starts no valid sequence (a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF).
 */
int utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
/*
 * Code points that must never reach a terminal as they are: the C0 and
 * C1 controls and DEL, which drive the terminal (move the cursor, clear
 * lines, set titles), and the bidirectional embeddings, overrides and
 * isolates U+202A..U+202E and U+2066..U+2069, which reorder the text
 * shown after them.
 */
int codepoint_unsafe(uint32_t cp);
/*
 * Code points that are shown escaped (vis.h), never as they are: the
 * unsafe ones above; the line and paragraph separators U+2028 and
 * U+2029, which some readers take for a line end; and the directional
 * marks U+200E, U+200F and U+061C, which show as nothing and move the
 * characters around them; and the characters that show as nothing at
 * all, so that text can hide between letters: the zero width space
 * U+200B, the word joiner and invisible operators U+2060-U+2064, the
 * deprecated format characters U+206A-U+206F, U+FEFF, the interlinear
 * annotation marks U+FFF9-U+FFFB and the tags U+E0000-U+E007F, which
 * spell ASCII invisibly.  The joiners U+200C and U+200D stay: scripts
 * and emoji need them.
 */
int codepoint_hidden(uint32_t cp);
/*
 * Is s[0..len) text that may stand in a header line and be shown as
 * it is: valid UTF-8 with no unsafe code point (above) and no line or
 * paragraph separator (U+2028, U+2029), which a mail reader would take
 * for the end of a line?
 */
int text_value_ok(const char *s, size_t len);
/* Does s hold a C0 control character or DEL (a line break above all)? */
int text_has_control(const char *s);

#endif
