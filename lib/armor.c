/*
 * armor.c - the streams under the age format: buffered input that
 * detects ASCII armor (C2SP age spec, "ASCII armor") and decodes it on
 * the fly, buffered output that writes it when asked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "armor.h"
#include "exitcode.h"
#include "fileio.h"
#include "util.h"
#include "banned.h"

#define IN_BUF_SIZE		(256 * 1024)
#define OUT_BUF_SIZE		(256 * 1024)
#define ARMOR_COLS		64
#define ARMOR_LINE_MAX		80

int
age_fail(struct smimp_err *err, enum age_failure kind, const char *fmt,
    const char *what)
{
	smimp_err_set(err, kind == AGE_FAIL_IO ? SMIMP_EXIT_FAIL :
	    SMIMP_EXIT_BADMSG, fmt, what);
	if (err != NULL)
		err->detail = kind;
	return -1;
}

/* ---- input ---- */

struct age_in {
	int fd;
	int armored;
	int raw_eof;
	unsigned char *buf;
	size_t len, pos;
	/* armor: decoded bytes of the current line */
	unsigned char dec[ARMOR_COLS];
	size_t dec_len, dec_pos;
	int armor_short;	/* a short line was seen: END must follow */
	int armor_done;
	uint64_t from_fd;	/* bytes read from fd so far */
};

static int
raw_fill(struct age_in *in, struct smimp_err *err)
{
	ssize_t n;

	if (in->pos > 0 && in->pos < in->len)
		memmove(in->buf, in->buf + in->pos, in->len - in->pos);
	in->len -= in->pos;
	in->pos = 0;
	while (!in->raw_eof && in->len < IN_BUF_SIZE) {
		n = read(in->fd, in->buf + in->len, IN_BUF_SIZE - in->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return age_fail(err, AGE_FAIL_IO, "cannot read: %s",
			    strerror(errno));
		if (n == 0)
			in->raw_eof = 1;
		else {
			in->len += (size_t)n;
			in->from_fd += (uint64_t)n;
			break;
		}
	}
	return 0;
}

/* Read raw bytes, bypassing the buffer for large reads. */
static int
raw_read(struct age_in *in, unsigned char *out, size_t want, size_t *got,
    struct smimp_err *err)
{
	*got = 0;
	while (*got < want) {
		size_t avail = in->len - in->pos;

		if (avail > 0) {
			size_t n = avail < want - *got ? avail : want - *got;

			memcpy(out + *got, in->buf + in->pos, n);
			in->pos += n;
			*got += n;
			continue;
		}
		if (in->raw_eof)
			break;
		if (want - *got >= IN_BUF_SIZE / 2) {
			ssize_t n = read(in->fd, out + *got, want - *got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return age_fail(err, AGE_FAIL_IO,
				    "cannot read: %s", strerror(errno));
			if (n == 0)
				in->raw_eof = 1;
			*got += (size_t)n;
			in->from_fd += (uint64_t)n;
			continue;
		}
		if (raw_fill(in, err) != 0)
			return -1;
	}
	return 0;
}

/* One raw line, without its LF (and CR): for armor. 0 at EOF. */
static int
raw_line(struct age_in *in, char *line, size_t cap, size_t *len, int *eol,
    struct smimp_err *err)
{
	size_t n = 0;

	*eol = 0;
	for (;;) {
		unsigned char c;

		if (in->pos == in->len) {
			if (in->raw_eof)
				break;
			if (raw_fill(in, err) != 0)
				return -1;
			continue;
		}
		c = in->buf[in->pos++];
		if (c == '\n') {
			*eol = 1;
			break;
		}
		if (n + 1 >= cap)
			return age_fail(err, AGE_FAIL_ARMOR, "%s",
			    "malformed armor: line too long");
		line[n++] = (char)c;
	}
	if (*eol && n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*len = n;
	return n > 0 || *eol ? 1 : 0;
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* After the END line only whitespace may follow. */
static int
armor_trailer(struct age_in *in, struct smimp_err *err)
{
	for (;;) {
		if (in->pos == in->len) {
			if (in->raw_eof)
				return 0;
			if (raw_fill(in, err) != 0)
				return -1;
			continue;
		}
		if (!is_space(in->buf[in->pos++]))
			return age_fail(err, AGE_FAIL_ARMOR, "%s", "malformed "
			    "armor: data after the end line");
	}
}

static int
armor_next(struct age_in *in, struct smimp_err *err)
{
	char line[ARMOR_LINE_MAX];
	size_t len, got, i;
	int eol, r;

	r = raw_line(in, line, sizeof(line), &len, &eol, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return age_fail(err, AGE_FAIL_ARMOR, "%s",
		    "malformed armor: no end line");
	if (strcmp(line, AGE_ARMOR_END) == 0) {
		in->armor_done = 1;
		return armor_trailer(in, err);
	}
	if (in->armor_short || len == 0 || len > ARMOR_COLS || len % 4 != 0)
		return age_fail(err, AGE_FAIL_ARMOR, "%s",
		    "malformed armor: bad line length");
	for (i = 0; i < len; i++)
		if (line[i] == '\r')
			return age_fail(err, AGE_FAIL_ARMOR, "%s",
			    "malformed armor: stray carriage return");
	if (b64_has_high_byte(line, len) ||
	    sodium_base642bin(in->dec, sizeof(in->dec), line, len, NULL, &got,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return age_fail(err, AGE_FAIL_ARMOR, "%s",
		    "malformed armor: bad base64");
	/* Padding only at the very end. */
	if (len < ARMOR_COLS || line[len - 1] == '=')
		in->armor_short = 1;
	in->dec_len = got;
	in->dec_pos = 0;
	return 0;
}

/*
 * Armor is recognised by "-----" after optional whitespace; the begin
 * line must then be exact.  With force, anything else is an armor error.
 */
static int
detect_armor(struct age_in *in, int force, struct smimp_err *err)
{
	size_t p, blen = strlen(AGE_ARMOR_BEGIN);

	while (!in->raw_eof && in->len < IN_BUF_SIZE)
		if (raw_fill(in, err) != 0)
			return -1;
	for (p = 0; p < in->len && is_space(in->buf[p]); p++)
		;
	if (!force && (in->len - p < 5 || memcmp(in->buf + p, "-----", 5)))
		return 0;
	in->armored = 1;
	if (in->len - p < blen || memcmp(in->buf + p, AGE_ARMOR_BEGIN,
	    blen) != 0)
		return age_fail(err, AGE_FAIL_ARMOR, "%s",
		    "malformed armor: bad begin line");
	in->pos = p + blen;
	if (in->pos < in->len && in->buf[in->pos] == '\r')
		in->pos++;
	if (in->pos >= in->len || in->buf[in->pos] != '\n')
		return age_fail(err, AGE_FAIL_ARMOR, "%s",
		    "malformed armor: bad begin line");
	in->pos++;
	return 0;
}

static struct age_in *
in_new(int fd, size_t size, struct smimp_err *err)
{
	struct age_in *in = calloc(1, sizeof(*in));

	if (in == NULL || (in->buf = malloc(size > 0 ? size : 1)) == NULL) {
		free(in);
		age_fail(err, AGE_FAIL_IO, "%s", "out of memory");
		return NULL;
	}
	in->fd = fd;
	return in;
}

/* The stream, once its first bytes said whether it is armored. */
static struct age_in *
in_ready(struct age_in *in, int force_armor, struct smimp_err *err)
{
	if (in != NULL && detect_armor(in, force_armor, err) != 0) {
		age_in_free(in);
		return NULL;
	}
	return in;
}

static struct age_in *
in_open(int fd, int force_armor, struct smimp_err *err)
{
	return in_ready(in_new(fd, IN_BUF_SIZE, err), force_armor, err);
}

struct age_in *
age_in_open_fd_armored(int fd, struct smimp_err *err)
{
	return in_open(fd, 1, err);
}

struct age_in *
age_in_open_fd(int fd, struct smimp_err *err)
{
	return in_open(fd, 0, err);
}

struct age_in *
age_in_open_mem(const void *data, size_t len, struct smimp_err *err)
{
	struct age_in *in;

	if (len > IN_BUF_SIZE) {
		age_fail(err, AGE_FAIL_IO, "%s", "too large to check in "
		    "memory");
		return NULL;
	}
	/*
	 * All of it is in the buffer at once: no descriptor to read, and a
	 * buffer of its size, not a stream's.
	 */
	in = in_new(-1, len, err);
	if (in == NULL)
		return NULL;
	memcpy(in->buf, data, len);
	in->len = len;
	in->raw_eof = 1;
	return in_ready(in, 0, err);
}

int
age_in_offset(const struct age_in *in, uint64_t *off)
{
	if (in->armored || in->fd < 0)
		return -1;
	*off = in->from_fd - (in->len - in->pos);
	return 0;
}

int
age_in_starts_with(const struct age_in *in, const void *p, size_t n)
{
	return !in->armored && in->len - in->pos >= n &&
	    memcmp(in->buf + in->pos, p, n) == 0;
}

int
age_in_is_armored(const struct age_in *in)
{
	return in->armored;
}

void
age_in_free(struct age_in *in)
{
	if (in == NULL)
		return;
	free(in->buf);
	free(in);
}

int
age_in_read(struct age_in *in, unsigned char *buf, size_t len, size_t *got,
    struct smimp_err *err)
{
	if (!in->armored)
		return raw_read(in, buf, len, got, err);
	*got = 0;
	while (*got < len) {
		size_t n;

		if (in->dec_pos == in->dec_len) {
			if (in->armor_done)
				break;
			if (armor_next(in, err) != 0)
				return -1;
			continue;
		}
		n = in->dec_len - in->dec_pos;
		if (n > len - *got)
			n = len - *got;
		memcpy(buf + *got, in->dec + in->dec_pos, n);
		in->dec_pos += n;
		*got += n;
	}
	return 0;
}

/* One line of a raw stream, LF included, into sb: see armor.h. */
static int
raw_read_line(struct age_in *in, struct sbuf *sb, size_t max,
    struct smimp_err *err)
{
	size_t n = 0;

	for (;;) {
		const unsigned char *p, *lf;
		size_t take;

		if (in->pos == in->len) {
			if (in->raw_eof)
				return AGE_LINE_EOF;
			if (raw_fill(in, err) != 0)
				return -1;
			continue;
		}
		p = in->buf + in->pos;
		lf = memchr(p, '\n', in->len - in->pos);
		take = lf != NULL ? (size_t)(lf - p) : in->len - in->pos;
		if (take > max - n) {
			/* What fits is kept, as byte by byte it would be. */
			(void)sbuf_add(sb, p, max - n);
			return AGE_LINE_LONG;
		}
		if (sbuf_add(sb, p, lf != NULL ? take + 1 : take) != 0)
			return AGE_LINE_FULL;
		in->pos += lf != NULL ? take + 1 : take;
		n += take;
		if (lf != NULL)
			return AGE_LINE_DONE;
	}
}

int
age_in_read_line(struct age_in *in, struct sbuf *sb, size_t max,
    struct smimp_err *err)
{
	size_t n = 0, got;
	unsigned char c;

	if (!in->armored)
		return raw_read_line(in, sb, max, err);
	/* Armor: byte by byte from the decoded line. */
	for (;;) {
		if (age_in_read(in, &c, 1, &got, err) != 0)
			return -1;
		if (got == 0)
			return AGE_LINE_EOF;
		if (c != '\n' && n++ == max)
			return AGE_LINE_LONG;
		if (sbuf_add(sb, &c, 1) != 0)
			return AGE_LINE_FULL;
		if (c == '\n')
			return AGE_LINE_DONE;
	}
}

/* ---- output ---- */

struct age_out {
	int fd;
	int armor;
	const char *name;		/* in write errors */
	unsigned char *buf;
	size_t len;
	unsigned char group[48];	/* armor: bytes of the current line */
	size_t group_len;
};

/* A write to out failed (errno): said with out's name. */
static int
write_fail(const struct age_out *out, struct smimp_err *err)
{
	char what[SMIMP_ERR_MSG];

	(void)snprintf(what, sizeof(what), "%s: %s", out->name,
	    strerror(errno));
	return age_fail(err, AGE_FAIL_IO, "cannot write %s", what);
}

static int
out_flush(struct age_out *out, struct smimp_err *err)
{
	if (out->len > 0 && fd_write_all(out->fd, out->buf, out->len) != 0)
		return write_fail(out, err);
	out->len = 0;
	return 0;
}

static int
out_raw(struct age_out *out, const void *data, size_t len,
    struct smimp_err *err)
{
	if (out->len + len > OUT_BUF_SIZE) {
		if (out_flush(out, err) != 0)
			return -1;
		if (len >= OUT_BUF_SIZE) {
			if (fd_write_all(out->fd, data, len) != 0)
				return write_fail(out, err);
			return 0;
		}
	}
	memcpy(out->buf + out->len, data, len);
	out->len += len;
	return 0;
}

static int
armor_line_out(struct age_out *out, struct smimp_err *err)
{
	char line[ARMOR_COLS + 2];

	sodium_bin2base64(line, sizeof(line), out->group, out->group_len,
	    sodium_base64_VARIANT_ORIGINAL);
	out->group_len = 0;
	return out_raw(out, line, strlen(line), err) ||
	    out_raw(out, "\n", 1, err) ? -1 : 0;
}

struct age_out *
age_out_open_fd(int fd, int armor, struct smimp_err *err)
{
	struct age_out *out = calloc(1, sizeof(*out));

	if (out == NULL || (out->buf = malloc(OUT_BUF_SIZE)) == NULL) {
		free(out);
		age_fail(err, AGE_FAIL_IO, "%s", "out of memory");
		return NULL;
	}
	out->fd = fd;
	out->armor = armor;
	out->name = "the output";
	if (armor && (out_raw(out, AGE_ARMOR_BEGIN, strlen(AGE_ARMOR_BEGIN),
	    err) != 0 || out_raw(out, "\n", 1, err) != 0)) {
		age_out_free(out);
		return NULL;
	}
	return out;
}

void
age_out_name(struct age_out *out, const char *name)
{
	out->name = name;
}

int
age_out_write(struct age_out *out, const void *buf, size_t len,
    struct smimp_err *err)
{
	const unsigned char *p = buf;

	if (!out->armor)
		return out_raw(out, buf, len, err);
	while (len > 0) {
		size_t n = sizeof(out->group) - out->group_len;

		if (n > len)
			n = len;
		memcpy(out->group + out->group_len, p, n);
		out->group_len += n;
		p += n;
		len -= n;
		if (out->group_len == sizeof(out->group) &&
		    armor_line_out(out, err) != 0)
			return -1;
	}
	return 0;
}

int
age_out_close(struct age_out *out, struct smimp_err *err)
{
	if (out->armor) {
		if (out->group_len > 0 && armor_line_out(out, err) != 0)
			return -1;
		if (out_raw(out, AGE_ARMOR_END, strlen(AGE_ARMOR_END),
		    err) != 0 || out_raw(out, "\n", 1, err) != 0)
			return -1;
	}
	return out_flush(out, err);
}

void
age_out_free(struct age_out *out)
{
	if (out == NULL)
		return;
	free(out->buf);
	free(out);
}
