/*
 * mimecode.c - base64, quoted-printable and charsets of Internet mail
 * (mimecode.h).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mimecode.h"
#include "util.h"
#include "banned.h"

static const struct {
	const char *name;
	enum mime_charset cs;
} charset_names[] = {
	{ "utf-8", CHARSET_UTF8 }, { "utf8", CHARSET_UTF8 },
	{ "us-ascii", CHARSET_ASCII }, { "ascii", CHARSET_ASCII },
	{ "ansi_x3.4-1968", CHARSET_ASCII },
	{ "iso-8859-1", CHARSET_LATIN1 }, { "iso8859-1", CHARSET_LATIN1 },
	{ "iso_8859-1", CHARSET_LATIN1 }, { "latin1", CHARSET_LATIN1 },
	{ "l1", CHARSET_LATIN1 },
	{ "windows-1252", CHARSET_CP1252 }, { "cp1252", CHARSET_CP1252 },
};

enum mime_charset
mime_charset(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(charset_names) / sizeof(charset_names[0]); i++)
		if (strlen(charset_names[i].name) == len &&
		    strncasecmp(charset_names[i].name, name, len) == 0)
			return charset_names[i].cs;
	return CHARSET_UNKNOWN;
}

int
mime_utf8_valid(const unsigned char *in, size_t len, size_t *bad)
{
	size_t i = 0;
	uint32_t cp;
	int n;

	while (i < len) {
		n = utf8_next(in + i, len - i, &cp);
		if (n <= 0) {
			if (bad != NULL)
				*bad = i;
			return 0;
		}
		i += (size_t)n;
	}
	return 1;
}

/* 0x80 to 0x9f of Windows-1252; 0 where it has no character. */
static const uint16_t cp1252_high[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static int
add_codepoint(struct sbuf *sb, uint32_t cp)
{
	unsigned char u[3];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	return sbuf_add(sb, u, n) != 0 ? MIME_FULL : MIME_OK;
}

/* Each byte a code point of Latin-1 (or of Windows-1252, with cp1252). */
static int
single_bytes(const unsigned char *in, size_t len, int cp1252,
    struct sbuf *sb, size_t *bad)
{
	uint32_t cp;
	size_t i;

	for (i = 0; i < len; i++) {
		cp = in[i];
		if (cp1252 && cp >= 0x80 && cp < 0xa0) {
			cp = cp1252_high[cp - 0x80];
			if (cp == 0) {
				*bad = i;
				return MIME_BAD;
			}
		}
		if (add_codepoint(sb, cp) != MIME_OK)
			return MIME_FULL;
	}
	return MIME_OK;
}

int
mime_to_utf8(enum mime_charset cs, const unsigned char *in, size_t len,
    struct sbuf *sb, size_t *bad)
{
	size_t where = 0;

	*bad = 0;
	switch (cs) {
	case CHARSET_UTF8:
		if (!mime_utf8_valid(in, len, bad))
			return MIME_BAD;
		break;
	case CHARSET_ASCII:
		if (!mime_utf8_valid(in, len, &where))
			return single_bytes(in, len, 0, sb, bad);
		break;
	case CHARSET_LATIN1:
	case CHARSET_CP1252:
		return single_bytes(in, len, cs == CHARSET_CP1252, sb, bad);
	default:
		return MIME_BAD;
	}
	return sbuf_add(sb, in, len) != 0 ? MIME_FULL : MIME_OK;
}

int
mime_base64(const char *in, size_t len, struct sbuf *sb)
{
	unsigned char out[3];
	uint32_t acc = 0;
	size_t i;
	int v, n = 0;

	for (i = 0; i < len && in[i] != '='; i++) {
		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' ||
		    in[i] == '\n')
			continue;
		v = b64_value(in[i]);
		if (v < 0)
			return MIME_BAD;
		acc = acc << 6 | (uint32_t)v;
		if (++n == 4) {
			out[0] = (unsigned char)(acc >> 16);
			out[1] = (unsigned char)(acc >> 8);
			out[2] = (unsigned char)acc;
			if (sbuf_add(sb, out, 3) != 0)
				return MIME_FULL;
			acc = 0;
			n = 0;
		}
	}
	/* A last group of 2 or 3 characters: 1 or 2 bytes. */
	if (n == 1)
		return MIME_BAD;
	if (n > 1) {
		acc <<= 6 * (4 - n);
		out[0] = (unsigned char)(acc >> 16);
		out[1] = (unsigned char)(acc >> 8);
		if (sbuf_add(sb, out, (size_t)n - 1) != 0)
			return MIME_FULL;
	}
	return MIME_OK;
}

int
mime_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Where the line at in[i] ends (its LF, or len), blanks before it not. */
static size_t
qp_line_end(const char *in, size_t len, size_t i, size_t *next)
{
	const char *nl = memchr(in + i, '\n', len - i);
	size_t end = nl != NULL ? (size_t)(nl - in) : len;

	*next = nl != NULL ? end + 1 : len;
	while (end > i && (in[end - 1] == ' ' || in[end - 1] == '\t' ||
	    in[end - 1] == '\r'))
		end--;
	return end;
}

/* One line of quoted-printable (or a whole Q word) appended to sb. */
static int
qp_span(const char *in, size_t i, size_t end, int word, struct sbuf *sb,
    int *soft)
{
	unsigned char c;
	int hi, lo;

	*soft = 0;
	for (; i < end; i++) {
		c = (unsigned char)in[i];
		if (c == '=' && i + 1 == end && !word) {
			*soft = 1;
			break;
		}
		if (c == '=' && i + 2 < end &&
		    (hi = mime_hex(in[i + 1])) >= 0 &&
		    (lo = mime_hex(in[i + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c == '_' && word)
			c = ' ';
		if (sbuf_add(sb, &c, 1) != 0)
			return MIME_FULL;
	}
	return MIME_OK;
}

int
mime_qp(const char *in, size_t len, int word, struct sbuf *sb)
{
	size_t i = 0, end, next;
	int soft;

	if (word)
		return qp_span(in, 0, len, 1, sb, &soft);
	while (i < len) {
		end = qp_line_end(in, len, i, &next);
		if (qp_span(in, i, end, 0, sb, &soft) != MIME_OK)
			return MIME_FULL;
		if (!soft && next > end && in[next - 1] == '\n' &&
		    sbuf_add(sb, "\n", 1) != 0)
			return MIME_FULL;
		i = next;
	}
	return MIME_OK;
}
