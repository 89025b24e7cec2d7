/*
 * rfc5322.c - reading an Internet message, its header fields, address
 * lists and encoded words (rfc5322.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "exitcode.h"
#include "mimecode.h"
#include "rfc5322.h"
#include "util.h"
#include "banned.h"

/* ---- reading ---- */

/*
 * With sendmail's rule, does a line holding a lone "." start in
 * buf[*scanned..len)?  Then len is cut there.  *scanned moves past the
 * whole lines looked at; at_end takes a last line without its LF too.
 */
static int
dot_line(struct sbuf *sb, size_t *scanned, int at_end)
{
	const char *p, *nl;
	size_t n;

	for (;;) {
		/* Nothing left (an empty buffer has no memory to look at). */
		if (*scanned >= sb->len)
			return 0;
		p = sb->buf + *scanned;
		nl = memchr(p, '\n', sb->len - *scanned);
		if (nl == NULL && !at_end)
			return 0;
		n = nl != NULL ? (size_t)(nl - p) : sb->len - *scanned;
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '\r')) {
			sb->len = *scanned;
			return 1;
		}
		if (nl == NULL)
			return 0;
		*scanned += n + 1;
	}
}

/* An mbox "From " line first is the envelope's, not the message's. */
static void
drop_mbox_line(struct sbuf *sb)
{
	const char *nl;
	size_t n;

	if (sb->len < 5 || memcmp(sb->buf, "From ", 5) != 0)
		return;
	nl = memchr(sb->buf, '\n', sb->len);
	n = nl != NULL ? (size_t)(nl - sb->buf) + 1 : sb->len;
	memmove(sb->buf, sb->buf + n, sb->len - n);
	sb->len -= n;
}

int
rfc5322_read(int fd, int dot_ends, size_t cap, char **buf, size_t *len,
    struct smimp_err *err)
{
	char chunk[64 * 1024];
	struct sbuf sb;
	size_t scanned = 0;
	ssize_t n;
	int ended = 0;

	sbuf_init(&sb, cap + 1);
	while (!ended) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
			    "message");
			goto fail;
		}
		if (n == 0)
			break;
		if (sb.len + (size_t)n > cap || sbuf_add(&sb, chunk,
		    (size_t)n) != 0) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "the message is "
			    "larger than %zu bytes, the most taken", cap);
			goto fail;
		}
		ended = dot_ends && dot_line(&sb, &scanned, 0);
	}
	if (dot_ends && !ended)
		(void)dot_line(&sb, &scanned, 1);
	drop_mbox_line(&sb);
	if (sbuf_add(&sb, "", 1) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto fail;
	}
	*buf = sb.buf;
	*len = sb.len - 1;
	return 0;
fail:
	sbuf_release(&sb);
	return -1;
}

/* ---- header fields ---- */

void
rfc5322_release(struct rfc5322_header *h)
{
	free(h->f);
	free(h->buf);
	memset(h, 0, sizeof(*h));
}

/* The length of a field name that starts line[0..n), then ':'; or 0. */
static size_t
field_name(const char *line, size_t n)
{
	size_t i, end;

	for (i = 0; i < n && line[i] > ' ' && line[i] < 0x7f &&
	    line[i] != ':'; i++)
		;
	end = i;
	/* Obsolete syntax: blanks before the colon. */
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return end > 0 && i < n && line[i] == ':' ? end : 0;
}

/* The value being built ends: blanks at its end dropped, a NUL. */
static int
value_end(struct sbuf *sb, size_t start)
{
	while (sb->len > start && (sb->buf[sb->len - 1] == ' ' ||
	    sb->buf[sb->len - 1] == '\t'))
		sb->len--;
	return sbuf_add(sb, "", 1);
}

/* A new field from the line: its name and the start of its value. */
static int
field_start(struct rfc5322_header *h, struct sbuf *sb, const char *line,
    size_t n, size_t name_len)
{
	struct rfc5322_field *f;
	size_t i = name_len;

	if (h->n == RFC5322_MAX_FIELDS)
		return -1;
	if (h->n % 32 == 0) {
		f = realloc(h->f, (h->n + 32) * sizeof(*h->f));
		if (f == NULL)
			return -1;
		h->f = f;
	}
	f = &h->f[h->n];
	f->name = sb->len;
	f->name_len = name_len;
	if (sbuf_add(sb, line, name_len) != 0 || sbuf_add(sb, "", 1) != 0)
		return -1;
	while (line[i] != ':')
		i++;
	for (i++; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	f->value = sb->len;
	h->n++;
	return sbuf_add(sb, line + i, n - i);
}

int
rfc5322_parse(const char *msg, size_t len, struct rfc5322_header *h,
    size_t *body, struct smimp_err *err)
{
	struct sbuf sb;
	const char *line, *nl;
	size_t pos = 0, n, name_len, next;
	int open = 0;

	memset(h, 0, sizeof(*h));
	sbuf_init(&sb, RFC5322_MAX_HEADER + RFC5322_MAX_FIELDS * 2);
	for (; pos < len; pos = next) {
		line = msg + pos;
		nl = memchr(line, '\n', len - pos);
		n = nl != NULL ? (size_t)(nl - line) : len - pos;
		next = pos + n + (nl != NULL);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0) {			/* the empty line */
			pos = next;
			break;
		}
		name_len = (line[0] == ' ' || line[0] == '\t') && open ? 0 :
		    field_name(line, n);
		if (name_len == 0 && !((line[0] == ' ' || line[0] == '\t') &&
		    open))
			break;			/* the body starts here */
		if (next > RFC5322_MAX_HEADER) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "a header section "
			    "of more than %d bytes", RFC5322_MAX_HEADER);
			goto fail;
		}
		if (name_len == 0) {		/* a folded line goes on */
			if (sbuf_add(&sb, line, n) != 0)
				goto full;
			continue;
		}
		if ((open && value_end(&sb, h->f[h->n - 1].value) != 0) ||
		    field_start(h, &sb, line, n, name_len) != 0)
			goto full;
		open = 1;
	}
	if (open && value_end(&sb, h->f[h->n - 1].value) != 0)
		goto full;
	h->buf = sb.buf;
	*body = pos > len ? len : pos;
	return 0;
full:
	smimp_err_set(err, SMIMP_EXIT_FAIL, "a header section of more than "
	    "%d fields", RFC5322_MAX_FIELDS);
fail:
	sbuf_release(&sb);
	rfc5322_release(h);
	return -1;
}

const char *
rfc5322_next(const struct rfc5322_header *h, const char *name, size_t *i)
{
	const struct rfc5322_field *f;

	while (*i < h->n) {
		f = &h->f[(*i)++];
		if (f->name_len == strlen(name) &&
		    strncasecmp(h->buf + f->name, name, f->name_len) == 0)
			return h->buf + f->value;
	}
	return NULL;
}

const char *
rfc5322_get(const struct rfc5322_header *h, const char *name)
{
	size_t i = 0;

	return rfc5322_next(h, name, &i);
}

/* ---- address lists ---- */

void
rfc5322_addrs_release(struct rfc5322_addrs *l)
{
	free(l->a);
	memset(l, 0, sizeof(*l));
}

int
rfc5322_addrs_has(const struct rfc5322_addrs *l, const char *address)
{
	return address_listed(l->a, l->n, address);
}

static int
addrs_add(struct rfc5322_addrs *l, const char *spec, const char *what,
    struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 1];
	struct smimp_err why;
	void *na;

	if (strchr(spec, '@') == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: '%.80s' has no "
		    "domain: messages go to addresses, user@domain", what,
		    spec);
	smimp_err_clear(&why);
	if (address_normalize(spec, norm, &why) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: %s", what,
		    why.msg);
	if (rfc5322_addrs_has(l, norm))
		return 0;
	if (l->n == RFC5322_MAX_ADDRESSES)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "more than %d "
		    "recipients", RFC5322_MAX_ADDRESSES);
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		na = realloc(l->a, l->cap * sizeof(*l->a));
		if (na == NULL)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of "
			    "memory");
		l->a = na;
	}
	memcpy(l->a[l->n++], norm, sizeof(norm));
	return 0;
}

/* Past blanks and comments (nested, with quoted pairs); -1 unclosed. */
static int
skip_cfws(const char **pp)
{
	const char *p = *pp;
	int depth;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			break;
		for (depth = 0; ; p++) {
			if (*p == '\0')
				return -1;
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0)
				break;
		}
		p++;
	}
	*pp = p;
	return 0;
}

/* A quoted string or domain literal at *pp (to close), onto sb. */
static int
take_quoted(const char **pp, char close, struct sbuf *sb)
{
	const char *p = *pp + 1;

	for (; *p != close; p++) {
		if (*p == '\0')
			return -1;
		if (*p == '\\' && p[1] != '\0')
			p++;
	}
	p++;
	if (sbuf_add(sb, *pp, (size_t)(p - *pp)) != 0)
		return -1;
	*pp = p;
	return 0;
}

static int
atom_char(unsigned char c)
{
	return c >= 0x80 || (c > ' ' && c < 0x7f &&
	    strchr("()<>[]:;,\\\"", c) == NULL);
}

/* What an address list is read into as it goes. */
struct alist {
	struct sbuf spec;	/* the words of the item, blanks dropped */
	struct sbuf angle;	/* what is between < and > */
	int have_angle, in_group;
};

/* The item ends: its address, if it has one, into l. */
static int
item_end(struct alist *a, struct rfc5322_addrs *l, const char *what,
    struct smimp_err *err)
{
	struct sbuf *sb = a->have_angle ? &a->angle : &a->spec;
	const char *spec;
	int ret = 0;

	if (sb->len > 0) {
		if (sbuf_add(sb, "", 1) != 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: an "
			    "address too long", what);
		/* An obsolete route, "<@a,@b:user@x>": only the address. */
		spec = strrchr(sb->buf, ':') != NULL ?
		    strrchr(sb->buf, ':') + 1 : sb->buf;
		ret = addrs_add(l, spec, what, err);
	}
	a->spec.len = 0;
	a->angle.len = 0;
	a->have_angle = 0;
	return ret;
}

/* <...> at *pp, its words into a->angle. */
static int
take_angle(const char **pp, struct alist *a)
{
	const char *p = *pp + 1;

	a->angle.len = 0;
	for (;;) {
		if (skip_cfws(&p) != 0 || *p == '\0')
			return -1;
		if (*p == '>')
			break;
		if (*p == '"' || *p == '[') {
			if (take_quoted(&p, *p == '"' ? '"' : ']',
			    &a->angle) != 0)
				return -1;
		} else if (atom_char((unsigned char)*p) || *p == ':' ||
		    *p == ',') {
			if (sbuf_add(&a->angle, p++, 1) != 0)
				return -1;
		} else
			return -1;
	}
	*pp = p + 1;
	a->have_angle = 1;
	return 0;
}

/* One step of the list at *pp: 1 at its end, 0 on, -1 malformed. */
static int
list_step(const char **pp, struct alist *a, struct rfc5322_addrs *l,
    const char *what, struct smimp_err *err)
{
	const char *p = *pp;
	char c;

	if (skip_cfws(&p) != 0)
		return -1;
	c = *p;
	if (c == '\0' || c == ',' || (c == ';' && a->in_group)) {
		if (item_end(a, l, what, err) != 0)
			return -2;
		if (c == ';')
			a->in_group = 0;
		*pp = c == '\0' ? p : p + 1;
		return c == '\0';
	}
	if (c == ':' && !a->in_group && !a->have_angle) {
		a->in_group = 1;	/* a group: its name was no address */
		a->spec.len = 0;
		p++;
	} else if (c == '<') {
		if (a->have_angle || take_angle(&p, a) != 0)
			return -1;
	} else if (c == '"' || c == '[') {
		if (take_quoted(&p, c == '"' ? '"' : ']', &a->spec) != 0)
			return -1;
	} else if (atom_char((unsigned char)c)) {
		for (; atom_char((unsigned char)*p); p++)
			if (sbuf_add(&a->spec, p, 1) != 0)
				return -1;
	} else
		return -1;
	*pp = p;
	return 0;
}

int
rfc5322_addresses(const char *value, const char *what,
    struct rfc5322_addrs *l, struct smimp_err *err)
{
	struct alist a;
	const char *p = value;
	int r;

	memset(&a, 0, sizeof(a));
	sbuf_init(&a.spec, 1024);
	sbuf_init(&a.angle, 1024);
	while ((r = list_step(&p, &a, l, what, err)) == 0)
		;
	sbuf_release(&a.spec);
	sbuf_release(&a.angle);
	if (r == -1)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: not an address "
		    "list: '%.80s'", what, value);
	return r == 1 ? 0 : -1;
}

/* ---- encoded words ---- */

/* Decoded words waiting to be turned to UTF-8: adjacent ones join. */
struct words {
	struct sbuf bytes;
	enum mime_charset cs;
};

static int
words_flush(struct words *w, struct sbuf *out, const char *what,
    struct smimp_err *err)
{
	size_t bad;
	int r;

	if (w->bytes.len == 0)
		return 0;
	r = mime_to_utf8(w->cs, (unsigned char *)w->bytes.buf, w->bytes.len,
	    out, &bad);
	w->bytes.len = 0;
	if (r == MIME_BAD)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: an encoded "
		    "word that is not valid in its charset", what);
	return r == MIME_OK ? 0 : -1;
}

/*
 * An encoded word "=?CHARSET?B|Q?TEXT?=" at in: its length, its bytes
 * into w (flushed first if its charset is another); 0 when in starts
 * none (it is text then); -1 for a charset not read.
 */
static int
encoded_word(const char *in, struct words *w, struct sbuf *out,
    const char *what, struct smimp_err *err)
{
	const char *cs = in + 2, *q, *text, *end;
	enum mime_charset c;
	size_t cs_len, had;
	int enc;

	q = strchr(cs, '?');
	if (q == NULL || q == cs || (q[1] != 'B' && q[1] != 'b' &&
	    q[1] != 'Q' && q[1] != 'q') || q[2] != '?')
		return 0;
	enc = q[1] == 'B' || q[1] == 'b';
	text = q + 3;
	end = strstr(text, "?=");
	if (end == NULL || strcspn(cs, " \t") < (size_t)(end - cs) ||
	    end - in > 1000)
		return 0;
	/* RFC 2231's language ("utf-8*en") says nothing of the bytes. */
	cs_len = strcspn(cs, "*?");
	c = mime_charset(cs, cs_len);
	if (c == CHARSET_UNKNOWN)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is in the "
		    "charset '%.*s': smimp reads only " MIME_CHARSETS_READ,
		    what, (int)(cs_len > 40 ? 40 : cs_len), cs);
	if (c != w->cs && words_flush(w, out, what, err) != 0)
		return -1;
	w->cs = c;
	had = w->bytes.len;
	if ((enc ? mime_base64(text, (size_t)(end - text), &w->bytes) :
	    mime_qp(text, (size_t)(end - text), 1, &w->bytes)) != MIME_OK) {
		w->bytes.len = had;	/* not a word after all: text */
		return 0;
	}
	return (int)(end + 2 - in);
}

/* The result, one line: tabs made spaces, controls refused. */
static int
one_line(struct sbuf *sb, const char *what, char *out, size_t cap,
    struct smimp_err *err)
{
	const unsigned char *s = (const unsigned char *)sb->buf;
	uint32_t cp;
	size_t i;
	int n;

	for (i = 0; i < sb->len; i += (size_t)n) {
		n = utf8_next(s + i, sb->len - i, &cp);
		if (n <= 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: not "
			    "UTF-8", what);
		if (cp == '\t')
			sb->buf[i] = ' ';
		else if (codepoint_unsafe(cp) || cp == 0x2028 ||
		    cp == 0x2029)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s holds a "
			    "control character (U+%04X)", what, (unsigned)cp);
	}
	if (sb->len >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: longer than "
		    "%zu bytes", what, cap - 1);
	if (sb->len > 0)
		memcpy(out, sb->buf, sb->len);
	out[sb->len] = '\0';
	return 0;
}

/* Text (not an encoded word) in[0..n), as UTF-8 or else Latin-1. */
static int
add_text(struct sbuf *sb, const char *in, size_t n)
{
	size_t bad;

	return mime_to_utf8(CHARSET_ASCII, (const unsigned char *)in, n, sb,
	    &bad);
}

int
rfc2047_decode(const char *in, const char *what, char *out, size_t cap,
    struct smimp_err *err)
{
	struct words w;
	struct sbuf sb;
	const char *p = in;
	size_t blanks, word;
	int n, after_word = 0, ret = -1;

	sbuf_init(&sb, cap * 4 + 16);
	sbuf_init(&w.bytes, cap * 4 + 16);
	w.cs = CHARSET_UTF8;
	while (*p != '\0') {
		blanks = strspn(p, " \t");
		n = p[blanks] == '=' && p[blanks + 1] == '?' ?
		    encoded_word(p + blanks, &w, &sb, what, err) : 0;
		if (n < 0)
			goto out;
		if (n > 0) {
			/* Blanks between two encoded words are dropped. */
			if (!after_word && blanks > 0 &&
			    (words_flush(&w, &sb, what, err) != 0 ||
			    add_text(&sb, p, blanks) != MIME_OK))
				goto full;
			p += blanks + (size_t)n;
			after_word = 1;
			continue;
		}
		/* Text, with the blanks before it. */
		word = blanks + strcspn(p + blanks, " \t");
		if (words_flush(&w, &sb, what, err) != 0 ||
		    add_text(&sb, p, word) != MIME_OK)
			goto full;
		p += word;
		after_word = 0;
	}
	if (words_flush(&w, &sb, what, err) != 0)
		goto full;
	ret = one_line(&sb, what, out, cap, err);
	goto out;
full:
	if (err->msg[0] == '\0')
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: longer than %zu "
		    "bytes", what, cap - 1);
out:
	sbuf_release(&sb);
	sbuf_release(&w.bytes);
	return ret;
}
