/*
 * mimewalk.c - a message's MIME parts walked: the body, and the rest as
 * attachments (mimewalk.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exitcode.h"
#include "mimewalk.h"
#include "mimecode.h"
#include "part.h"
#include "banned.h"

/* Sections of one RFC 2231 parameter at most (name*0 ... name*15). */
#define PARAM_SECTIONS	16
#define PARAM_MAX	1024	/* bytes of a parameter's value */

/* ---- Content-Type and parameters ---- */

struct ctype {
	char type[64], sub[64];		/* lower case */
	const char *params;		/* after the subtype: ";a=b;..." */
};

static int
token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A token at *pp, lower-cased into out; 0 when none or too long. */
static size_t
token(const char **pp, char *out, size_t cap)
{
	const char *p = *pp;
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	for (; token_char((unsigned char)*p); p++) {
		if (n + 1 >= cap)
			return 0;
		out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	}
	out[n] = '\0';
	*pp = p;
	return n;
}

/* "type/subtype; params", or text/plain for none or a malformed one. */
static void
ctype_parse(const char *value, struct ctype *ct)
{
	const char *p = value;

	ct->params = "";
	if (p != NULL && token(&p, ct->type, sizeof(ct->type)) > 0 &&
	    *p++ == '/' && token(&p, ct->sub, sizeof(ct->sub)) > 0) {
		ct->params = p;
		return;
	}
	(void)snprintf(ct->type, sizeof(ct->type), "text");
	(void)snprintf(ct->sub, sizeof(ct->sub), "plain");
}

/*
 * The next parameter at *pp: its attribute (lower case) into attr and
 * its value, unquoted, into val.  1, or 0 at the end (or at anything
 * that does not parse: the rest is ignored).
 */
static int
param_next(const char **pp, char *attr, size_t acap, struct sbuf *val)
{
	const char *p = *pp;

	val->len = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != ';' || token(&p, attr, acap) == 0)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != '=')
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (*p == '\0' || sbuf_add(val, p, 1) != 0)
				return 0;
		}
		p++;
	} else
		for (; token_char((unsigned char)*p) || *p == '*' ||
		    *p == '\''; p++)
			if (sbuf_add(val, p, 1) != 0)
				return 0;
	*pp = p;
	return 1;
}

/* RFC 2231's %XX of an extended value, undone onto out. */
static int
pct_decode(const char *s, size_t n, struct sbuf *out)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%' && i + 2 < n && mime_hex(s[i + 1]) >= 0 &&
		    mime_hex(s[i + 2]) >= 0) {
			c = (unsigned char)(mime_hex(s[i + 1]) << 4 |
			    mime_hex(s[i + 2]));
			i += 2;
		}
		if (sbuf_add(out, &c, 1) != 0)
			return -1;
	}
	return 0;
}

/* The sections of an RFC 2231 parameter, as they are found. */
struct sections {
	struct sbuf part[PARAM_SECTIONS];
	int extended[PARAM_SECTIONS];
	int seen[PARAM_SECTIONS];
};

/* Is attr name*N or name*N* (or name*: N 0)?  Its section, or -1. */
static int
section_of(const char *attr, const char *name, int *extended)
{
	size_t n = strlen(name);
	const char *p;
	int k = 0, digits = 0;

	if (strncmp(attr, name, n) != 0 || attr[n] != '*')
		return -1;
	*extended = 0;
	for (p = attr + n + 1; *p >= '0' && *p <= '9'; p++, digits++)
		if ((k = k * 10 + (*p - '0')) >= PARAM_SECTIONS)
			return -1;
	if (*p == '*') {
		*extended = 1;
		p++;
	}
	if (*p != '\0')
		return -1;
	if (digits == 0)
		*extended = 1;
	return k;
}

/* The sections joined, as UTF-8, into out. */
static int
sections_join(struct sections *s, char *out, size_t cap)
{
	struct sbuf bytes, text;
	enum mime_charset cs = CHARSET_ASCII;
	const char *v, *q1, *q2;
	size_t bad, off;
	int k, ret = 0;

	sbuf_init(&bytes, PARAM_MAX * PARAM_SECTIONS);
	sbuf_init(&text, cap);
	for (k = 0; k < PARAM_SECTIONS && s->seen[k]; k++) {
		v = s->part[k].buf;
		off = 0;
		if (k == 0 && s->extended[0]) {
			/* charset'language'value */
			q1 = memchr(v, '\'', s->part[0].len);
			q2 = q1 != NULL ? memchr(q1 + 1, '\'',
			    s->part[0].len - (size_t)(q1 + 1 - v)) : NULL;
			if (q2 == NULL)
				goto out;
			cs = mime_charset(v, (size_t)(q1 - v));
			off = (size_t)(q2 + 1 - v);
		}
		if (s->extended[k] ? pct_decode(v + off, s->part[k].len - off,
		    &bytes) != 0 : sbuf_add(&bytes, v, s->part[k].len) != 0)
			goto out;
	}
	if (cs != CHARSET_UNKNOWN && mime_to_utf8(cs,
	    (unsigned char *)bytes.buf, bytes.len, &text, &bad) == MIME_OK &&
	    sbuf_add(&text, "", 1) == 0) {
		memcpy(out, text.buf, text.len);
		ret = 1;
	}
out:
	sbuf_release(&bytes);
	sbuf_release(&text);
	return ret;
}

/*
 * The parameter name of params into out (cap bytes) as UTF-8: the RFC
 * 2231 form (extended, in sections) before the plain one, whose RFC
 * 2047 encoded words (which some mailers use) are decoded.  1 found,
 * 0 not (or not readable).
 */
static int
param_get(const char *params, const char *name, char *out, size_t cap)
{
	struct sections s;
	char attr[80];
	struct sbuf val, plain;
	struct smimp_err err;
	const char *p = params;
	int k, ext, got = 0;

	memset(&s, 0, sizeof(s));
	sbuf_init(&val, PARAM_MAX);
	sbuf_init(&plain, PARAM_MAX + 1);
	for (k = 0; k < PARAM_SECTIONS; k++)
		sbuf_init(&s.part[k], PARAM_MAX);
	while (param_next(&p, attr, sizeof(attr), &val)) {
		if (strcmp(attr, name) == 0 && plain.len == 0)
			got = sbuf_add(&plain, val.buf, val.len) == 0 &&
			    sbuf_add(&plain, "", 1) == 0;
		k = section_of(attr, name, &ext);
		if (k >= 0 && !s.seen[k] &&
		    sbuf_add(&s.part[k], val.buf, val.len) == 0) {
			s.seen[k] = 1;
			s.extended[k] = ext;
		}
	}
	smimp_err_clear(&err);
	if (s.seen[0] && sections_join(&s, out, cap))
		got = 1;
	else if (got && rfc2047_decode(plain.buf, name, out, cap, &err) != 0)
		got = 0;
	sbuf_release(&val);
	sbuf_release(&plain);
	for (k = 0; k < PARAM_SECTIONS; k++)
		sbuf_release(&s.part[k]);
	return got != 0;
}

/* ---- the walk ---- */

struct walk {
	const struct mime_sink *sink;
	struct sbuf *body;
	int has_body;
	size_t parts;
	char (*names)[MIME_NAME_MAX + 1];	/* handed out so far */
	size_t nnames;
	struct smimp_err *err;
};

/* The content with its transfer encoding undone, into out. */
static int
decode(const struct rfc5322_header *h, const char *c, size_t len,
    struct sbuf *out, struct smimp_err *err)
{
	const char *v = rfc5322_get(h, "Content-Transfer-Encoding");
	char cte[32] = "7bit";
	const char *p = v;
	int r;

	if (v != NULL && token(&p, cte, sizeof(cte)) == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a malformed "
		    "Content-Transfer-Encoding: '%.40s'", v);
	if (strcmp(cte, "base64") == 0)
		r = mime_base64(c, len, out);
	else if (strcmp(cte, "quoted-printable") == 0)
		r = mime_qp(c, len, 0, out);
	else if (strcmp(cte, "7bit") == 0 || strcmp(cte, "8bit") == 0 ||
	    strcmp(cte, "binary") == 0)
		r = sbuf_add(out, c, len) == 0 ? MIME_OK : MIME_FULL;
	else
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a part in the "
		    "transfer encoding '%s', which smimp does not read (7bit, "
		    "8bit, binary, base64, quoted-printable)", cte);
	if (r == MIME_BAD)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a part in %s that "
		    "does not decode", cte);
	return r == MIME_OK ? 0 : smimp_err_sys(err, SMIMP_EXIT_FAIL,
	    "out of memory");
}

/* CRLF (and a lone CR) to LF, in place. */
static void
lf_lines(struct sbuf *sb, size_t from)
{
	size_t i, o = from;

	for (i = from; i < sb->len; i++) {
		if (sb->buf[i] == '\r' && i + 1 < sb->len &&
		    sb->buf[i + 1] == '\n')
			continue;
		sb->buf[o++] = sb->buf[i] == '\r' ? '\n' : sb->buf[i];
	}
	sb->len = o;
}

/* The body: data, in the charset its type names, as UTF-8. */
static int
take_body(struct walk *w, const struct ctype *ct, const struct sbuf *data)
{
	char cs[64];
	enum mime_charset c = CHARSET_ASCII;
	size_t bad;
	int r;

	if (param_get(ct->params, "charset", cs, sizeof(cs))) {
		c = mime_charset(cs, strlen(cs));
		if (c == CHARSET_UNKNOWN)
			return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "the body "
			    "is in the charset '%.40s': smimp reads only "
			    MIME_CHARSETS_READ, cs);
	}
	r = mime_to_utf8(c, (unsigned char *)data->buf, data->len, w->body,
	    &bad);
	if (r == MIME_BAD)
		return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "the body is not "
		    "valid %s (byte %zu)", c == CHARSET_UTF8 ? "UTF-8" :
		    "Windows-1252", bad);
	if (r != MIME_OK)
		return smimp_err_sys(w->err, SMIMP_EXIT_FAIL, "out of memory");
	lf_lines(w->body, 0);
	/* A part's last line break is its delimiter's: text ends in one. */
	if (w->body->len > 0 && w->body->buf[w->body->len - 1] != '\n' &&
	    sbuf_add(w->body, "\n", 1) != 0)
		return smimp_err_sys(w->err, SMIMP_EXIT_FAIL, "out of memory");
	w->has_body = 1;
	return 0;
}

/* The bytes a safe name keeps, so that "-N" still fits a part's name. */
#define NAME_SAFE_MAX	(PART_NAME_MAX - 8)

/*
 * in as a safe name into out (MIME_NAME_MAX + 1 bytes): its last path
 * component, no leading dots, blanks or '-' (an option to the commands
 * run on it), controls and the like made '_', and at most NAME_SAFE_MAX
 * bytes, cut at a whole character in its stem so that a short
 * extension stays.
 */
static void
name_safe(const char *in, char *out)
{
	char whole[MIME_NAME_MAX * 4 + 1];
	const unsigned char *s;
	const char *dot;
	uint32_t cp;
	size_t o = 0, i, ext = 0, stem;
	int n, bad;

	s = (const unsigned char *)(strrchr(in, '/') != NULL ?
	    strrchr(in, '/') + 1 : in);
	if (strrchr((const char *)s, '\\') != NULL)
		s = (const unsigned char *)strrchr((const char *)s, '\\') + 1;
	while (*s == '.' || *s == ' ' || *s == '-')
		s++;
	for (i = 0; s[i] != '\0' && o + 4 < sizeof(whole); i += (size_t)n) {
		n = utf8_next(s + i, strlen((const char *)s + i), &cp);
		bad = n <= 0 || codepoint_unsafe(cp) || cp == 0x2028 ||
		    cp == 0x2029;
		if (n <= 0)
			n = 1;
		if (bad)
			whole[o++] = '_';
		else {
			memcpy(whole + o, s + i, (size_t)n);
			o += (size_t)n;
		}
	}
	whole[o] = '\0';
	if (o > NAME_SAFE_MAX) {
		dot = strrchr(whole, '.');
		if (dot != NULL && o - (size_t)(dot - whole) <= 16)
			ext = o - (size_t)(dot - whole);
		stem = NAME_SAFE_MAX - ext;
		while (stem > 0 && ((unsigned char)whole[stem] & 0xc0) == 0x80)
			stem--;
		memmove(whole + stem, whole + o - ext, ext + 1);
		o = stem + ext;
	}
	while (o > 0 && whole[o - 1] == ' ')
		o--;
	memcpy(out, whole, o);
	out[o] = '\0';
}

static int
name_taken(const struct walk *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->nnames; i++)
		if (strcmp(w->names[i], name) == 0)
			return 1;
	return 0;
}

/*
 * The part's name: the filename of its Content-Disposition, else the
 * name of its Content-Type, else "part-N.EXT", EXT the extension of its
 * type (txt for text/plain), else its subtype; made safe and, when
 * taken, "STEM-N.EXT".  Recorded as handed out.
 */
static void
part_name(struct walk *w, const struct rfc5322_header *h,
    const struct ctype *ct, char *name)
{
	char raw[MIME_NAME_MAX * 4 + 1], try[MIME_NAME_MAX + 16];
	const char *disp = rfc5322_get(h, "Content-Disposition");
	const char *dot, *ext;
	int k;

	name[0] = '\0';
	if ((disp != NULL && (disp = strchr(disp, ';')) != NULL &&
	    param_get(disp, "filename", raw, sizeof(raw))) ||
	    param_get(ct->params, "name", raw, sizeof(raw)))
		name_safe(raw, name);
	ext = part_ext_guess(ct->type, ct->sub);
	if (ext == NULL)
		ext = strlen(ct->sub) <= 8 ? ct->sub : "bin";
	if (name[0] == '\0')
		(void)snprintf(name, MIME_NAME_MAX + 1, "part-%zu.%s",
		    w->parts, ext);
	for (k = 2; name_taken(w, name) && k < MIME_MAX_PARTS + 2; k++) {
		dot = strrchr(name, '.');
		(void)snprintf(try, sizeof(try), "%.*s-%d%s", dot != NULL ?
		    (int)(dot - name) : (int)strlen(name), name, k,
		    dot != NULL ? dot : "");
		if (strlen(try) <= PART_NAME_MAX)
			memcpy(name, try, strlen(try) + 1);
	}
	memcpy(w->names[w->nnames++], name, MIME_NAME_MAX + 1);
}

/* "type/subtype", and ";charset=NAME" for text that names one. */
static void
part_type(const struct ctype *ct, char *type, size_t cap)
{
	char cs[64];
	size_t i;

	(void)snprintf(type, cap, "%s/%s", ct->type, ct->sub);
	if (strcmp(ct->type, "text") != 0 ||
	    !param_get(ct->params, "charset", cs, sizeof(cs)))
		return;
	for (i = 0; cs[i] != '\0'; i++) {
		if (!token_char((unsigned char)cs[i]))
			return;
		if (cs[i] >= 'A' && cs[i] <= 'Z')
			cs[i] = (char)(cs[i] + 32);
	}
	(void)snprintf(type + strlen(type), cap - strlen(type), ";charset=%s",
	    cs);
}

/* Content-Disposition: attachment? */
static int
is_attachment(const struct rfc5322_header *h)
{
	const char *disp = rfc5322_get(h, "Content-Disposition");
	char kind[32];

	return disp != NULL && token(&disp, kind, sizeof(kind)) > 0 &&
	    strcmp(kind, "attachment") == 0;
}

static int entity(struct walk *w, const struct rfc5322_header *h,
    const char *c, size_t len, int depth);

/* A leaf part: the body, or an attachment. */
static int
leaf(struct walk *w, const struct rfc5322_header *h, const struct ctype *ct,
    const char *c, size_t len)
{
	char name[MIME_NAME_MAX + 1], type[MIME_TYPE_MAX + 1];
	struct sbuf data;
	int ret = -1;

	sbuf_init(&data, len + 16);
	if (decode(h, c, len, &data, w->err) != 0)
		goto out;
	if (!w->has_body && !is_attachment(h) &&
	    strcmp(ct->type, "text") == 0 && (strcmp(ct->sub, "plain") == 0 ||
	    strcmp(ct->sub, "markdown") == 0)) {
		ret = take_body(w, ct, &data);
		goto out;
	}
	part_name(w, h, ct, name);
	part_type(ct, type, sizeof(type));
	/* A type the envelope cannot carry is one it does not know. */
	if (!part_type_valid(type, strlen(type)))
		(void)snprintf(type, sizeof(type), "application/octet-stream");
	ret = w->sink->attachment(w->sink->arg, name, type,
	    (const unsigned char *)data.buf, data.len, w->err);
out:
	sbuf_release(&data);
	return ret;
}

/*
 * Is c[pos..len) a delimiter line of boundary b?  1 a delimiter, 2 the
 * closing one, 0 neither; *next gets where the line after it starts.
 */
static int
delimiter(const char *c, size_t len, size_t pos, const char *b,
    size_t *next)
{
	size_t n = strlen(b), i = pos + 2 + n;
	int close = 0;

	if (len - pos < 2 + n || c[pos] != '-' || c[pos + 1] != '-' ||
	    memcmp(c + pos + 2, b, n) != 0)
		return 0;
	if (len - i >= 2 && c[i] == '-' && c[i + 1] == '-') {
		close = 1;
		i += 2;
	}
	while (i < len && (c[i] == ' ' || c[i] == '\t' || c[i] == '\r'))
		i++;
	if (i < len && c[i] != '\n')
		return 0;
	*next = i < len ? i + 1 : len;
	return close ? 2 : 1;
}

/* The part from start to the line break before the delimiter at end. */
static int
sub_part(struct walk *w, const char *c, size_t start, size_t end, int depth)
{
	struct rfc5322_header ph;
	size_t body;
	int ret;

	if (end > start && c[end - 1] == '\n')
		end--;
	if (end > start && c[end - 1] == '\r')
		end--;
	if (end < start)
		end = start;
	if (rfc5322_parse(c + start, end - start, &ph, &body, w->err) != 0)
		return -1;
	ret = entity(w, &ph, c + start + body, end - start - body, depth + 1);
	rfc5322_release(&ph);
	return ret;
}

static int
multipart(struct walk *w, const struct ctype *ct, const char *c, size_t len,
    int depth)
{
	char b[80];
	const char *nl;
	size_t pos = 0, next = 0, start = 0;
	int d, open = 0;

	if (!param_get(ct->params, "boundary", b, sizeof(b)) || b[0] == '\0' ||
	    strlen(b) > 70)
		return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "a multipart/%s "
		    "without a boundary", ct->sub);
	while (pos < len) {
		d = pos == 0 || c[pos - 1] == '\n' ?
		    delimiter(c, len, pos, b, &next) : 0;
		if (d != 0) {
			if (open && sub_part(w, c, start, pos, depth) != 0)
				return -1;
			if (d == 2)
				return 0;	/* the epilogue is no part */
			open = 1;
			start = pos = next;
			continue;
		}
		nl = memchr(c + pos, '\n', len - pos);
		pos = nl != NULL ? (size_t)(nl - c) + 1 : len;
	}
	if (!open)
		return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "a multipart/%s "
		    "whose boundary is nowhere in it", ct->sub);
	/* No closing delimiter: the last part runs to the end. */
	return sub_part(w, c, start, len, depth);
}

static int
entity(struct walk *w, const struct rfc5322_header *h, const char *c,
    size_t len, int depth)
{
	struct ctype ct;

	if (++w->parts > MIME_MAX_PARTS)
		return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "more than %d "
		    "MIME parts", MIME_MAX_PARTS);
	ctype_parse(rfc5322_get(h, "Content-Type"), &ct);
	if (strcmp(ct.type, "multipart") != 0)
		return leaf(w, h, &ct, c, len);
	if (depth >= MIME_MAX_DEPTH)
		return smimp_err_set(w->err, SMIMP_EXIT_FAIL, "multiparts "
		    "nested more than %d deep", MIME_MAX_DEPTH);
	return multipart(w, &ct, c, len, depth);
}

int
mime_walk(const struct rfc5322_header *h, const char *content, size_t len,
    const struct mime_sink *sink, struct sbuf *body, int *has_body,
    struct smimp_err *err)
{
	struct walk w;
	int ret;

	memset(&w, 0, sizeof(w));
	w.sink = sink;
	w.body = body;
	w.err = err;
	w.names = calloc(MIME_MAX_PARTS + 1, sizeof(*w.names));
	if (w.names == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	ret = entity(&w, h, content, len, 0);
	*has_body = w.has_body;
	free(w.names);
	return ret;
}
