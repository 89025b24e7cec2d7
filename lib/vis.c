/* vis.c - text that others wrote, made safe to show on a terminal. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "vis.h"
#include "banned.h"

void
vis_init(struct vis *v, int flags)
{
	memset(v, 0, sizeof(*v));
	v->flags = flags;
}

/* "\x" and two hex digits, "\u" and four, or "\U" and eight. */
static size_t
hex_escape(char *out, char form, unsigned int value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t digits = form == 'x' ? 2 : form == 'u' ? 4 : 8, i;

	out[0] = '\\';
	out[1] = form;
	for (i = 0; i < digits; i++)
		out[2 + i] = hex[(value >> (4 * (digits - 1 - i))) & 0xf];
	return 2 + digits;
}

/* One character in a JSON string: ASCII as is, the rest escaped. */
static size_t
json_char(uint32_t cp, char *out)
{
	size_t n;

	if (cp == '"' || cp == '\\' || cp == '\n' || cp == '\t' ||
	    cp == '\r' || cp == '\b' || cp == '\f') {
		out[0] = '\\';
		out[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' :
		    cp == '\r' ? 'r' : cp == '\b' ? 'b' :
		    cp == '\f' ? 'f' : (char)cp;
		return 2;
	}
	if (cp >= 0x20 && cp < 0x7f) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x10000)
		return hex_escape(out, 'u', cp);
	cp -= 0x10000;
	n = hex_escape(out, 'u', 0xd800 + (cp >> 10));
	return n + hex_escape(out + n, 'u', 0xdc00 + (cp & 0x3ff));
}

/* One character, n bytes at s, code point cp: as is, or escaped. */
static size_t
emit(const struct vis *v, const unsigned char *s, size_t n, uint32_t cp,
    char *out)
{
	if (v->flags & VIS_JSON)
		return json_char(cp, out);
	if (!codepoint_hidden(cp)) {
		memcpy(out, s, n);
		return n;
	}
	if ((cp == '\n' || cp == '\t') && (v->flags & VIS_LINES)) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp == '\n' || cp == '\t' || cp == '\r') {
		out[0] = '\\';
		out[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r';
		return 2;
	}
	return hex_escape(out, cp < 0x80 ? 'x' : cp < 0x10000 ? 'u' : 'U', cp);
}

/* How many bytes at s are printable ASCII that pass as they are. */
static size_t
plain_run(const struct vis *v, const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] >= 0x20 && s[i] < 0x7f; i++)
		if ((v->flags & VIS_JSON) && (s[i] == '"' || s[i] == '\\'))
			break;
	return i;
}

/*
 * Escape s[0..len) into out, up to the first byte of a sequence that
 * s cuts (*used gets how far it went).
 */
static size_t
feed(struct vis *v, const unsigned char *s, size_t len, size_t *used,
    char *out)
{
	size_t i = 0, o = 0, run;
	uint32_t cp;
	int n;

	while (i < len) {
		run = plain_run(v, s + i, len - i);
		if (run > 0) {
			memcpy(out + o, s + i, run);
			o += run;
			i += run;
			continue;
		}
		n = utf8_next(s + i, len - i, &cp);
		if (n == 0)
			break;
		if (n < 0) {
			o += hex_escape(out + o, 'x', s[i]);
			v->bad++;
			i++;
			continue;
		}
		o += emit(v, s + i, (size_t)n, cp, out + o);
		i += (size_t)n;
	}
	*used = i;
	return o;
}

size_t
vis_feed(struct vis *v, const void *in, size_t len, char *out)
{
	const unsigned char *s = in;
	unsigned char joined[7];
	size_t o = 0, take, used, jlen;

	/*
	 * A sequence cut last time: finish it with at most 3 bytes of in,
	 * which is all that a 4-byte sequence can still need.
	 */
	if (v->npart > 0) {
		take = len < 3 ? len : 3;
		memcpy(joined, v->part, v->npart);
		memcpy(joined + v->npart, s, take);
		jlen = v->npart + take;
		o = feed(v, joined, jlen, &used, out);
		if (used < v->npart) {
			/* Still cut: in is too short to finish it. */
			memmove(v->part, joined + used, jlen - used);
			v->npart = jlen - used;
			return o;
		}
		s += used - v->npart;
		len -= used - v->npart;
		v->npart = 0;
	}
	o += feed(v, s, len, &used, out + o);
	memcpy(v->part, s + used, len - used);
	v->npart = len - used;
	return o;
}

size_t
vis_finish(struct vis *v, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < v->npart; i++)
		o += hex_escape(out + o, 'x', v->part[i]);
	v->bad += v->npart;
	v->npart = 0;
	return o;
}

void
vis_line(const char *s, char *out, size_t cap)
{
	char one[VIS_OUT_MAX(1)];
	size_t len = strlen(s), i, o = 0, n;
	struct vis v;

	vis_init(&v, 0);
	if (cap == 0)
		return;
	/* A byte at a time, so that it stops at a whole character. */
	for (i = 0; i <= len; i++) {
		n = i < len ? vis_feed(&v, s + i, 1, one) : vis_finish(&v, one);
		if (o + n >= cap)
			break;
		memcpy(out + o, one, n);
		o += n;
	}
	out[o] = '\0';
}
