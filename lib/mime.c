/*
 * mime.c - a verified message as RFC 5322 with MIME, and its headers
 * read back (mime.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bounce.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
#include "mime.h"
#include "banned.h"

#define CHUNK		(64 * 1024)
#define LINE_SOFT	78	/* RFC 5322: lines SHOULD be at most this */
#define LINE_HARD	998	/* and MUST be at most this */
#define QP_LINE		76	/* RFC 2045: encoded lines at most this */
#define B64_GROUP	57	/* bytes in a 76-character base64 line */
/* Bytes of UTF-8 in one encoded word: "=?UTF-8?B?" 56 "?=" is 68. */
#define WORD_BYTES	42
/* Characters of a filename parameter that stay on one header line. */
#define PARAM_SEGMENT	60
/*
 * The boundary's fixed part: "=_" occurs in nothing written between
 * boundaries (base64 has no '_', quoted-printable follows '=' with hex
 * digits, an 8bit body holding "=_" is quoted-printable instead, and
 * headers never start a line with "--"), so no body can end a part.
 */
#define BOUNDARY_PREFIX	"=_smimp_"
#define BOUNDARY_MAX	(sizeof(BOUNDARY_PREFIX) + 32)

/* ---- output: buffered, the first failure kept ---- */

struct out {
	int fd;
	int failed;
	size_t n;
	unsigned char buf[CHUNK];
};

static void
out_flush(struct out *o)
{
	if (o->n > 0 && !o->failed && fd_write_all(o->fd, o->buf, o->n) != 0)
		o->failed = 1;
	o->n = 0;
}

/* Everything put out, or the error naming name: 0 or -1. */
static int
out_finish(struct out *o, const char *name, struct smimp_err *err)
{
	out_flush(o);
	return o->failed ? smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write "
	    "%s", name) : 0;
}

static void
out_put(struct out *o, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t room;

	while (len > 0) {
		if (o->n == sizeof(o->buf))
			out_flush(o);
		room = sizeof(o->buf) - o->n;
		if (room > len)
			room = len;
		memcpy(o->buf + o->n, p, room);
		o->n += room;
		p += room;
		len -= room;
	}
}

static void
out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* ---- the body: what it holds decides how it is written ---- */

enum body_form { BODY_8BIT, BODY_QP, BODY_BINARY };

struct scan {
	int bad_utf8, nul, cr, long_line, eq_us;
	size_t line;
	unsigned char prev;
	unsigned char carry[4];
	size_t ncarry;
};

/* One chunk's bytes (after what the last one left of a character). */
static void
scan_bytes(struct scan *s, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			s->line = 0;
		} else if (++s->line > LINE_HARD) {
			s->long_line = 1;
		}
		s->nul |= p[i] == '\0';
		s->cr |= p[i] == '\r';
		s->eq_us |= s->prev == '=' && p[i] == '_';
		s->prev = p[i];
	}
}

/* Check UTF-8 across chunks: a character cut by a chunk is carried. */
static void
scan_utf8(struct scan *s, const unsigned char *p, size_t n)
{
	unsigned char joined[8];
	size_t i = 0, j, take;
	uint32_t cp;
	int k;

	if (s->ncarry > 0) {
		take = n < 4 ? n : 4;
		memcpy(joined, s->carry, s->ncarry);
		memcpy(joined + s->ncarry, p, take);
		k = utf8_next(joined, s->ncarry + take, &cp);
		if (k < 0 || (k == 0 && n >= 4)) {
			s->bad_utf8 = 1;
			return;
		}
		if (k == 0) {	/* still short: a tiny chunk */
			memcpy(s->carry + s->ncarry, p, n);
			s->ncarry += n;
			return;
		}
		i = (size_t)k - s->ncarry;
		s->ncarry = 0;
	}
	while (i < n) {
		k = utf8_next(p + i, n - i, &cp);
		if (k < 0) {
			s->bad_utf8 = 1;
			return;
		}
		if (k == 0) {
			for (j = i; j < n; j++)
				s->carry[s->ncarry++] = p[j];
			return;
		}
		i += (size_t)k;
	}
}

static int
body_scan(int fd, uint64_t len, enum body_form *form, struct smimp_err *err)
{
	unsigned char *buf = malloc(CHUNK);
	struct scan s;
	uint64_t off = 0;
	size_t want;
	ssize_t got;

	if (buf == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	memset(&s, 0, sizeof(s));
	while (off < len && !s.bad_utf8 && !s.nul) {
		want = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
		got = pread(fd, buf, want, (off_t)off);
		if (got <= 0) {
			free(buf);
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read spool");
		}
		scan_bytes(&s, buf, (size_t)got);
		scan_utf8(&s, buf, (size_t)got);
		off += (uint64_t)got;
	}
	free(buf);
	if (s.bad_utf8 || s.nul || s.ncarry > 0)
		*form = BODY_BINARY;
	else if (s.cr || s.long_line || s.eq_us)
		*form = BODY_QP;
	else
		*form = BODY_8BIT;
	return 0;
}

/* ---- encoders ---- */

enum part_enc { ENC_8BIT, ENC_QP, ENC_B64 };

struct writer {
	struct out out;
	enum part_enc enc;
	size_t col;		/* quoted-printable: characters on the line */
	int pend_ws;		/* quoted-printable: a space or tab held back */
	unsigned char group[B64_GROUP];
	size_t ngroup;
	int multipart;
	char boundary[BOUNDARY_MAX];
	enum body_form form;
	const struct msg_meta *meta;
	struct sbuf head;	/* a part's header lines */
	const char *name;	/* the output's, for errors */
};

static void
qp_room(struct writer *w, size_t n)
{
	if (w->col + n > QP_LINE - 1) {
		out_put(&w->out, "=\n", 2);
		w->col = 0;
	}
}

static void
qp_hex(struct writer *w, unsigned char b)
{
	static const char hex[] = "0123456789ABCDEF";
	char t[3] = { '=', hex[b >> 4], hex[b & 15] };

	qp_room(w, 3);
	out_put(&w->out, t, 3);
	w->col += 3;
}

static void
qp_lit(struct writer *w, unsigned char b)
{
	qp_room(w, 1);
	out_put(&w->out, &b, 1);
	w->col++;
}

/*
 * RFC 2045 6.7: '=' and what is not printable ASCII as =XX, a space or
 * tab that ends a line too (it would be taken away), soft line breaks
 * to keep lines within 76 characters.
 */
static void
qp_byte(struct writer *w, unsigned char b)
{
	int ws = w->pend_ws;

	if (ws != 0) {
		w->pend_ws = 0;
		if (b == '\n')
			qp_hex(w, (unsigned char)ws);
		else
			qp_lit(w, (unsigned char)ws);
	}
	if (b == '\n') {
		out_put(&w->out, "\n", 1);
		w->col = 0;
	} else if (b == ' ' || b == '\t') {
		w->pend_ws = b;
	} else if (b >= 33 && b <= 126 && b != '=') {
		qp_lit(w, b);
	} else {
		qp_hex(w, b);
	}
}

static void
b64_line(struct writer *w)
{
	char line[B64_GROUP / 3 * 4 + 1];

	if (w->ngroup == 0)
		return;
	sodium_bin2base64(line, sizeof(line), w->group, w->ngroup,
	    sodium_base64_VARIANT_ORIGINAL);
	out_str(&w->out, line);
	out_put(&w->out, "\n", 1);
	w->ngroup = 0;
}

static void
enc_data(struct writer *w, const unsigned char *p, size_t n)
{
	size_t i, take;

	switch (w->enc) {
	case ENC_8BIT:
		out_put(&w->out, p, n);
		break;
	case ENC_QP:
		for (i = 0; i < n; i++)
			qp_byte(w, p[i]);
		break;
	case ENC_B64:
		while (n > 0) {
			take = B64_GROUP - w->ngroup;
			if (take > n)
				take = n;
			memcpy(w->group + w->ngroup, p, take);
			w->ngroup += take;
			p += take;
			n -= take;
			if (w->ngroup == B64_GROUP)
				b64_line(w);
		}
		break;
	}
}

static void
enc_finish(struct writer *w)
{
	if (w->enc == ENC_QP && w->pend_ws != 0) {
		qp_hex(w, (unsigned char)w->pend_ws);
		w->pend_ws = 0;
	}
	if (w->enc == ENC_B64)
		b64_line(w);
}

/* ---- header values ---- */

/*
 * What goes into a header as it is must be printable ASCII: the last
 * guard against a line break or a control character from the sender.
 */
static int
safe_value(const char *s, struct smimp_err *err)
{
	if (!printable_ascii(s, strlen(s), LINE_HARD - 40))
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot write "
		    "the message as MIME: a header value is not printable "
		    "ASCII");
	return 0;
}

static int
atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5322 dot-atom-text: atext runs joined by single dots. */
static int
dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '.' ? s[i + 1] == '.' : !atext((unsigned char)s[i]))
			return 0;
	return 1;
}

/* An address as a mailbox: its local part quoted when no dot-atom. */
static int
add_addr(struct sbuf *sb, const char *address)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || dot_atom(address, (size_t)(at - address)))
		return sbuf_addf(sb, "%s", address);
	return sbuf_addf(sb, "\"%.*s\"%s", (int)(at - address), address, at);
}

static void
hash_hex(const char *a, const char *b, char hex[33])
{
	static const char ctx[] = "smimp/1 mime-id";
	crypto_generichash_state st;
	unsigned char h[16];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)ctx,
	    sizeof(ctx));
	if (a != NULL)
		crypto_generichash_update(&st, (const unsigned char *)a,
		    strlen(a) + 1);
	crypto_generichash_update(&st, (const unsigned char *)b, strlen(b));
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, 33, h, sizeof(h));
}

void
mime_msgid(const char *id, const char *sender, char out[MIME_MSGID_MAX])
{
	const char *at = strchr(id, '@');
	const char *dom = sender != NULL ? strchr(sender, '@') : NULL;
	char hex[33];
	int ok = at != NULL && dot_atom(id, (size_t)(at - id)) &&
	    dot_atom(at + 1, strlen(at + 1)) && strlen(id) <= MESSAGE_ID_MAX;

	if (ok && (dom == NULL || strcasecmp(at + 1, dom + 1) == 0)) {
		(void)snprintf(out, MIME_MSGID_MAX, "<%s>", id);
	} else if (ok) {
		/* Another domain's id: this sender's own, in its domain. */
		hash_hex(sender, id, hex);
		(void)snprintf(out, MIME_MSGID_MAX, "<%s@%s>", hex, dom + 1);
	} else {
		hash_hex(NULL, id, hex);
		(void)snprintf(out, MIME_MSGID_MAX, "<%s@smimp.invalid>", hex);
	}
}

/* "Name: a, b," folded before an address that would pass 78. */
static int
add_addr_list(struct sbuf *h, const char *name, const struct msg_meta *m,
    int cc)
{
	struct sbuf one;
	size_t i, col, n = 0;
	int r = 0;

	for (i = 0; i < m->nrcpts; i++)
		n += m->rcpts[i].cc == cc;
	if (n == 0)
		return 0;
	r |= sbuf_addf(h, "%s:", name);
	col = strlen(name) + 1;
	sbuf_init(&one, ADDRESS_MAX + 8);
	for (i = 0; i < m->nrcpts && r == 0; i++) {
		if (m->rcpts[i].cc != cc)
			continue;
		one.len = 0;
		r |= add_addr(&one, m->rcpts[i].address);
		r |= sbuf_add(&one, ",", --n > 0 ? 1 : 0);
		if (r == 0 && col > strlen(name) + 1 &&
		    col + 1 + one.len > LINE_SOFT) {
			r |= sbuf_add(h, "\n", 1);
			col = 0;
		}
		r |= sbuf_add(h, " ", 1);
		r |= sbuf_add(h, one.buf, one.len);
		col += 1 + one.len;
	}
	sbuf_release(&one);
	return r | sbuf_add(h, "\n", 1);
}

static int
add_date(struct sbuf *h, int64_t when)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)when;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		(void)gmtime_r(&t, &tm);
	}
	return sbuf_addf(h, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Text that the sender chose (a subject, a content type) written as it
 * is: printable ASCII that no reader decodes ("=?"), with single spaces
 * between words, each of which fits a line.
 */
static int
text_plain(const char *s)
{
	size_t n = strlen(s), i, word = 0;

	if (!printable_ascii(s, n, MSG_MAX_SUBJECT) || strstr(s, "=?") ||
	    s[0] == ' ' || s[n - 1] == ' ' || strstr(s, "  "))
		return 0;
	for (i = 0; i < n; i++) {
		word = s[i] == ' ' ? 0 : word + 1;
		if (word > LINE_SOFT - 10)
			return 0;
	}
	return 1;
}

static int
add_text_plain(struct sbuf *h, const char *name, const char *s)
{
	size_t first = strlen(name) + 1, col = first, len;
	const char *sp;
	int r = sbuf_addf(h, "%s:", name);

	while (r == 0 && *s != '\0') {
		sp = strchr(s, ' ');
		len = sp != NULL ? (size_t)(sp - s) : strlen(s);
		if (col > first && col + 1 + len > LINE_SOFT) {
			r |= sbuf_add(h, "\n", 1);
			col = 0;
		}
		r |= sbuf_add(h, " ", 1) | sbuf_add(h, s, len);
		col += 1 + len;
		s += len + (sp != NULL);
	}
	return r | sbuf_add(h, "\n", 1);
}

/*
 * Anything else as RFC 2047 encoded words of whole UTF-8 characters,
 * one to a line: readers decode them and drop the space between.
 */
static int
add_text_words(struct sbuf *h, const char *name, const char *s,
    struct smimp_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, take;
	char b64[WORD_BYTES / 3 * 4 + 8];
	uint32_t cp;
	int k, r = sbuf_addf(h, "%s:", name);

	if (!text_value_ok(s, n))
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot write "
		    "the message as MIME: the %s is not header text", name);
	while (i < n && r == 0) {
		take = 0;
		while (i + take < n) {
			k = utf8_next(p + i + take, n - i - take, &cp);
			if (k <= 0 || take + (size_t)k > WORD_BYTES)
				break;
			take += (size_t)k;
		}
		sodium_bin2base64(b64, sizeof(b64), p + i, take,
		    sodium_base64_VARIANT_ORIGINAL);
		r |= sbuf_addf(h, "%s=?UTF-8?B?%s?=", i > 0 ? "\n " : " ",
		    b64);
		i += take;
	}
	if (r != 0 || sbuf_add(h, "\n", 1) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	return 0;
}

/* The field name: s, plain or in encoded words; nothing for s empty. */
static int
add_text(struct sbuf *h, const char *name, const char *s,
    struct smimp_err *err)
{
	if (s[0] == '\0')
		return 0;
	if (text_plain(s))
		return add_text_plain(h, name, s) != 0 ? smimp_err_set(err,
		    SMIMP_EXIT_FAIL, "out of memory") : 0;
	return add_text_words(h, name, s, err);
}

/* In-Reply-To, and References: the thread's first message, the parent. */
static int
add_thread(struct sbuf *h, const struct msg_meta *m)
{
	char root[MIME_MSGID_MAX], parent[MIME_MSGID_MAX];
	int r = 0;

	mime_msgid(m->thread_id, NULL, root);
	if (m->in_reply_to[0] != '\0') {
		mime_msgid(m->in_reply_to, NULL, parent);
		r |= sbuf_addf(h, "In-Reply-To: %s\n", parent);
		if (strcmp(m->thread_id, m->in_reply_to) != 0 &&
		    strcmp(m->thread_id, m->message_id) != 0)
			r |= sbuf_addf(h, "References: %s\n %s\n", root, parent);
		else
			r |= sbuf_addf(h, "References: %s\n", parent);
	} else if (strcmp(m->thread_id, m->message_id) != 0) {
		r |= sbuf_addf(h, "References: %s\n", root);
	}
	return r;
}

/*
 * What the reader checked, for people and for filters: the verified
 * sender and key, the tier, the device, who introduced a stranger, and
 * whether the signed envelope says the message was sealed to the
 * reader's one-time prekeys (doc/PROTOCOL.md, 10.4).  The content type
 * is the sender's text: written as the subject is, so that no reader
 * decodes an encoded word in it into lines of its own.
 */
static int
add_checks(struct sbuf *h, const struct msg_meta *m, const char *tier,
    struct smimp_err *err)
{
	char fp[FINGERPRINT_STRLEN];
	size_t i;
	int r = 0;

	fingerprint_format(m->sender.fingerprint, fp);
	r |= sbuf_addf(h, "X-Smimp-Verified: yes\nX-Smimp-Sender: %s\n"
	    "X-Smimp-Fingerprint: %s\nX-Smimp-Tier: %s%s\n", m->from, fp,
	    tier, m->own ? " (own identity)" : "");
	if (m->from_device[0] != '\0')
		r |= sbuf_addf(h, "X-Smimp-Device: %s\n", m->from_device);
	if (m->introducer[0] != '\0')
		r |= sbuf_addf(h, "X-Smimp-Introduced-By: %s\n",
		    m->introducer);
	r |= sbuf_addf(h, "X-Smimp-Forward-Secrecy: %s\nX-Smimp-Type: %s\n",
	    m->forward_secret ? "yes" : "no", m->type);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	if (add_text(h, "X-Smimp-Content-Type", m->content_type, err) != 0)
		return -1;
	r |= sbuf_addf(h, "X-Smimp-Message-Id: %s\nX-Smimp-Thread-Id: %s\n",
	    m->message_id, m->thread_id);
	for (i = 0; i < m->nparts; i++)
		if (!m->parts[i].known)
			r |= sbuf_addf(h, "X-Smimp-Left-Out: part %zu, of the "
			    "kind %s, %llu bytes\n", i + 1, m->parts[i].kind,
			    (unsigned long long)m->parts[i].size);
	return r != 0 ? smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory") :
	    0;
}

/* Every value of the envelope that goes into a header as it is. */
static int
check_values(const struct msg_meta *m, const char *tier,
    struct smimp_err *err)
{
	size_t i;

	if (safe_value(m->from, err) || safe_value(tier, err) ||
	    safe_value(m->type, err) || safe_value(m->content_type, err) ||
	    safe_value(m->message_id, err) || safe_value(m->thread_id, err) ||
	    (m->in_reply_to[0] != '\0' && safe_value(m->in_reply_to, err)) ||
	    (m->from_device[0] != '\0' && safe_value(m->from_device, err)) ||
	    (m->introducer[0] != '\0' && safe_value(m->introducer, err)))
		return -1;
	for (i = 0; i < m->nrcpts; i++)
		if (safe_value(m->rcpts[i].address, err) != 0)
			return -1;
	for (i = 0; i < m->nparts; i++)
		if (!m->parts[i].known && safe_value(m->parts[i].kind, err))
			return -1;
	return 0;
}

static int
message_head(struct sbuf *h, const struct msg_meta *m, const char *tier,
    struct smimp_err *err)
{
	char id[MIME_MSGID_MAX];
	int r;

	if (check_values(m, tier, err) != 0)
		return -1;
	mime_msgid(m->message_id, m->from, id);
	r = sbuf_add(h, "From: ", 6) | add_addr(h, m->from) |
	    sbuf_add(h, "\n", 1) | add_addr_list(h, "To", m, 0) |
	    add_addr_list(h, "Cc", m, 1);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	if (add_text(h, "Subject", m->subject, err) != 0)
		return -1;
	r = add_date(h, m->date) | sbuf_addf(h, "Message-ID: %s\n", id) |
	    add_thread(h, m);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	if (add_checks(h, m, tier, err) != 0)
		return -1;
	return sbuf_add(h, "MIME-Version: 1.0\n", 18) != 0 ?
	    smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory") : 0;
}

/* ---- parts ---- */

/*
 * A part's media type, made safe to write: its type and subtype and a
 * charset, no other parameter (a name, a boundary); never multipart or
 * message, which a reader would parse for parts of their own.
 */
static int
add_part_type(struct sbuf *h, const char *type)
{
	const char *semi = strchr(type, ';'), *cs;
	size_t n = semi != NULL ? (size_t)(semi - type) : strlen(type), cn;

	if (strncmp(type, "multipart/", 10) == 0 ||
	    strncmp(type, "message/", 8) == 0)
		return sbuf_addf(h, "Content-Type: application/octet-stream");
	if (sbuf_addf(h, "Content-Type: %.*s", (int)n, type) != 0)
		return -1;
	cs = semi != NULL ? strstr(semi, ";charset=") : NULL;
	if (cs == NULL)
		return 0;
	cs += 9;
	cn = strcspn(cs, ";");
	return sbuf_addf(h, "; charset=%.*s", (int)cn, cs);
}

/*
 * A name that can go in quotes as it is: short printable ASCII, no "=?"
 * (which some readers decode in a filename), no '"' and no backslash.
 * The quoted-pair \" is valid, but mblaze ends a name at the first '"'
 * whatever stands before it; RFC 2231 form (%22) every reader decodes.
 */
static int
name_quotable(const char *name)
{
	size_t n = strlen(name);

	return n <= PARAM_SEGMENT && printable_ascii(name, n, PARAM_SEGMENT) &&
	    strstr(name, "=?") == NULL && strpbrk(name, "\"\\") == NULL;
}

static int
add_quoted(struct sbuf *h, const char *s)
{
	return sbuf_addf(h, "\"%s\"", s);
}

/*
 * filename*0*=utf-8''%XX...; filename*1*=... (RFC 2231): any name, in
 * lines of at most PARAM_SEGMENT characters, never splitting a %XX.
 */
static int
add_name_2231(struct sbuf *h, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)name;
	size_t seg = 0, col = 0, n;
	char t[3];
	int r = 0;

	for (; *p != '\0' && r == 0; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_') {
			t[0] = (char)*p;
			n = 1;
		} else {
			t[0] = '%';
			t[1] = hex[*p >> 4];
			t[2] = hex[*p & 15];
			n = 3;
		}
		if (seg == 0 || col + n > PARAM_SEGMENT) {
			r |= sbuf_addf(h, ";\n filename*%zu*=%s", seg,
			    seg == 0 ? "utf-8''" : "");
			col = seg++ == 0 ? 7 : 0;
		}
		r |= sbuf_add(h, t, n);
		col += n;
	}
	return r;
}

static int
attachment_head(struct writer *w, const struct msg_part *p,
    struct smimp_err *err)
{
	struct sbuf *h = &w->head;
	int r;

	if (!part_type_valid(p->type, strlen(p->type)) ||
	    part_name_problem(p->name, strlen(p->name)) != NULL)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot write "
		    "the message as MIME: an attachment's name or type");
	w->enc = ENC_B64;
	r = add_part_type(h, p->type);
	if (name_quotable(p->name))
		r |= sbuf_add(h, "; name=", 7) | add_quoted(h, p->name);
	r |= sbuf_addf(h, "\nContent-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment");
	if (name_quotable(p->name))
		r |= sbuf_add(h, "; filename=", 11) | add_quoted(h, p->name);
	else
		r |= add_name_2231(h, p->name);
	r |= sbuf_add(h, "\n", 1);
	return r != 0 ? smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory") :
	    0;
}

/* An attachment of the message is named name. */
static int
part_named(const struct msg_meta *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nparts; i++)
		if (strcmp(m->parts[i].name, name) == 0)
			return 1;
	return 0;
}

/*
 * A body that is no text is an attachment named "body", or "body (N)"
 * for the first N no attachment has: a reader that saves every part
 * (mshow -x) must not find two of one name.
 */
static int
body_head(struct writer *w)
{
	char name[32] = "body";
	unsigned int n;

	if (w->form == BODY_BINARY) {
		w->enc = ENC_B64;
		for (n = 1; part_named(w->meta, name) && n <= PART_MAX; n++)
			(void)snprintf(name, sizeof(name), "body (%u)", n);
		return sbuf_addf(&w->head, "Content-Type: "
		    "application/octet-stream\nContent-Transfer-Encoding: "
		    "base64\nContent-Disposition: attachment; "
		    "filename=\"%s\"\n", name);
	}
	w->enc = w->form == BODY_QP ? ENC_QP : ENC_8BIT;
	return sbuf_addf(&w->head, "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: %s\n", w->form == BODY_QP ?
	    "quoted-printable" : "8bit");
}

/* parts_each: a part (NULL: the body) begins. */
static int
part_begin(void *arg, const struct msg_part *part, struct smimp_err *err)
{
	struct writer *w = arg;

	w->head.len = 0;
	if (w->multipart && sbuf_addf(&w->head, "\n--%s\n", w->boundary) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	if (part == NULL ? body_head(w) != 0 :
	    attachment_head(w, part, err) != 0) {
		if (err->code == SMIMP_EXIT_OK)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
		return -1;
	}
	out_put(&w->out, w->head.buf, w->head.len);
	out_put(&w->out, "\n", 1);
	w->col = 0;
	w->pend_ws = 0;
	w->ngroup = 0;
	return 0;
}

static int
part_data(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	struct writer *w = arg;

	enc_data(w, buf, len);
	return w->out.failed ? smimp_err_sys(err, SMIMP_EXIT_FAIL,
	    "cannot write %s", w->name) : 0;
}

static int
part_end(void *arg, struct smimp_err *err)
{
	(void)err;
	enc_finish(arg);
	return 0;
}

/* A boundary from the message's own id: the same file every time. */
static void
make_boundary(const struct msg_meta *m, char out[BOUNDARY_MAX])
{
	char hex[33];

	hash_hex(m->from, m->message_id, hex);
	(void)snprintf(out, BOUNDARY_MAX, "%s%s", BOUNDARY_PREFIX, hex);
}

static int
kept_parts(const struct parts_spool *sp, const struct msg_meta *m)
{
	size_t i;

	for (i = 0; i < m->nparts && i < PART_MAX; i++)
		if (sp->fds[i] >= 0)
			return 1;
	return 0;
}

static int
write_all_parts(struct writer *w, const struct parts_spool *sp,
    const struct msg_meta *m, struct smimp_err *err)
{
	struct parts_reader r = { part_begin, part_data, part_end, w };

	if (w->multipart) {
		out_str(&w->out, "Content-Type: multipart/mixed;\n boundary=\"");
		out_str(&w->out, w->boundary);
		out_str(&w->out, "\"\n\nThis is a message in MIME format, "
		    "verified by smimp.\n");
	}
	if (parts_each(sp, m, &r, err) != 0)
		return -1;
	if (w->multipart) {
		out_str(&w->out, "\n--");
		out_str(&w->out, w->boundary);
		out_str(&w->out, "--\n");
	}
	return 0;
}

int
mime_write(const struct msg_meta *meta, const char *tier,
    const struct parts_spool *sp, int out_fd, const char *out_name,
    struct smimp_err *err)
{
	struct writer *w;
	struct sbuf h;
	int ret = -1;

	if (sp->body_fd < 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no body to write");
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	sbuf_init(&h, MIME_HEAD_MAX);
	sbuf_init(&w->head, 4096);
	w->out.fd = out_fd;
	w->name = out_name;
	w->meta = meta;
	w->multipart = kept_parts(sp, meta);
	make_boundary(meta, w->boundary);
	if (body_scan(sp->body_fd, meta->body_len, &w->form, err) != 0 ||
	    message_head(&h, meta, tier, err) != 0)
		goto out;
	out_put(&w->out, h.buf, h.len);
	if (write_all_parts(w, sp, meta, err) != 0)
		goto out;
	if (out_finish(&w->out, out_name, err) != 0)
		goto out;
	ret = 0;
out:
	sbuf_release(&w->head);
	sbuf_release(&h);
	free(w);
	return ret;
}

/* ---- a bounce notice from one's own server ---- */

/*
 * s[0..n) as text that may stand in a header or a line: printable
 * ASCII (any other byte '?'), no "=?" that a reader would decode (its
 * '?' '_'), cut to max bytes with "..." after.
 */
static int
add_plain(struct sbuf *sb, const char *s, size_t n, size_t max)
{
	size_t i;
	char c;
	int r = 0;

	for (i = 0; i < n && i < max; i++) {
		c = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
		if (c == '?' && i > 0 && s[i - 1] == '=')
			c = '_';
		r |= sbuf_add(sb, &c, 1);
	}
	return r | sbuf_add(sb, "...", n > max ? 3 : 0);
}

/*
 * "Label: TEXT" in the body, TEXT made plain and broken into lines of
 * at most LINE_SOFT (at a space where there is one), the later ones
 * indented.
 */
static int
add_wrapped(struct sbuf *sb, const char *label, const char *text)
{
	struct sbuf one;
	size_t i = 0, n, room, col = strlen(label);
	int r;

	sbuf_init(&one, BOUNCE_TEXT_MAX + 4);
	r = add_plain(&one, text, strlen(text), BOUNCE_TEXT_MAX) |
	    sbuf_addf(sb, "%s", label);
	while (r == 0 && i < one.len) {
		room = LINE_SOFT - col;
		n = one.len - i <= room ? one.len - i : room;
		if (i + n < one.len)
			while (n > room / 2 && one.buf[i + n] != ' ')
				n--;
		if (n <= room / 2)
			n = one.len - i <= room ? one.len - i : room;
		r |= sbuf_add(sb, one.buf + i, n) | sbuf_add(sb, "\n", 1);
		for (i += n; i < one.len && one.buf[i] == ' '; i++)
			;
		if (i < one.len)
			r |= sbuf_add(sb, "  ", 2);
		col = 2;
	}
	if (one.len == 0)
		r |= sbuf_add(sb, "\n", 1);
	sbuf_release(&one);
	return r;
}

/* The notice's Message-ID: a hash of its fields, in the user's domain. */
static void
bounce_msgid(const struct bounce *b, const char *domain,
    char out[MIME_MSGID_MAX])
{
	static const char ctx[] = "smimp/1 mime-bounce-id";
	const char *f[5] = { b->server, b->message_id, b->recipients,
	    b->date, b->reason };
	crypto_generichash_state st;
	unsigned char h[16];
	char hex[33];
	size_t i;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)ctx,
	    sizeof(ctx));
	for (i = 0; i < 5; i++)
		crypto_generichash_update(&st, (const unsigned char *)f[i],
		    strlen(f[i]) + 1);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	(void)snprintf(out, MIME_MSGID_MAX, "<%s@%s>", hex, domain);
}

static int
bounce_head(struct sbuf *h, const struct bounce *b, const char *user,
    const char *dom, int64_t when)
{
	char id[MIME_MSGID_MAX], orig[MIME_MSGID_MAX];
	int r;

	bounce_msgid(b, dom, id);
	/* The sent message's own id, as mime_write wrote it: a thread. */
	mime_msgid(b->message_id, user, orig);
	r = sbuf_addf(h, "From: \"%s mail server\" <postmaster@%s>\nTo: ",
	    dom, dom) | add_addr(h, user) |
	    sbuf_add(h, "\nSubject: Undelivered: ", 23) |
	    add_plain(h, b->message_id, strlen(b->message_id),
	    MESSAGE_ID_MAX) |
	    sbuf_add(h, "\n", 1) | add_date(h, when);
	return r | sbuf_addf(h, "Message-ID: %s\nIn-Reply-To: %s\n"
	    "References: %s\nX-Smimp-Verified: yes\nX-Smimp-Sender: server:%s\n"
	    "X-Smimp-Tier: server\nX-Smimp-Type: bounce\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "Content-Transfer-Encoding: 7bit\n\n", id, orig, orig, dom);
}

static int
bounce_body(struct sbuf *h, const struct bounce *b, const char *dom)
{
	const char *p = b->recipients, *comma;
	struct sbuf one;
	size_t n = 0;
	int r;

	sbuf_init(&one, ADDRESS_MAX + 8);
	r = sbuf_addf(h, "Your server could not deliver a message you sent "
	    "to the recipients\nbelow, and gave up on it.\n\n") |
	    add_wrapped(h, "Message: ", b->message_id) |
	    add_wrapped(h, "When: ", b->date);
	/* One recipient a line, each made plain; so many, then a count. */
	do {
		comma = strchr(p, ',');
		if (n++ < BOUNCE_RCPTS_SHOWN) {
			one.len = 0;
			r |= add_plain(&one, p, comma != NULL ?
			    (size_t)(comma - p) : strlen(p), ADDRESS_MAX) |
			    sbuf_add(&one, "", 1);
			r |= add_wrapped(h, "Not delivered to: ", one.buf);
		}
		if (comma != NULL)
			p = comma + 1;
	} while (comma != NULL && r == 0);
	sbuf_release(&one);
	if (n > BOUNCE_RCPTS_SHOWN)
		r |= sbuf_addf(h, "Not delivered to: %zu more\n",
		    n - BOUNCE_RCPTS_SHOWN);
	return r | add_wrapped(h, "Reason: ", b->reason) |
	    sbuf_addf(h, "\nThis notice is signed by the server of %s, and "
	    "smimp-fetch checked\nthe signature.\n", dom);
}

int
mime_bounce_write(const struct bounce *b, const char *user, int out_fd,
    const char *out_name, struct smimp_err *err)
{
	const char *dom = address_domain(user);
	struct sbuf h;
	int64_t when;
	int r;

	if (time_parse(b->date, strlen(b->date), &when) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot write the "
		    "bounce notice as MIME: a bad date");
	/* A domain that cannot stand in a Message-ID whole: none. */
	if (dom == NULL || !dot_atom(dom, strlen(dom)) ||
	    strlen(dom) > MIME_MSGID_MAX - 40)
		dom = "smimp.invalid";
	/* Every field is cut: this bounds what is written. */
	sbuf_init(&h, MIME_HEAD_MAX);
	r = bounce_head(&h, b, user, dom, when) | bounce_body(&h, b, dom);
	if (r != 0) {
		sbuf_release(&h);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	r = fd_write_all(out_fd, h.buf, h.len);
	sbuf_release(&h);
	return r != 0 ? smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write %s",
	    out_name) : 0;
}

/* ---- a message that did not verify ---- */

int
mime_unverified_write(int in_fd, const char *name, const char *user,
    int64_t when, int out_fd, const char *out_name, struct smimp_err *err)
{
	size_t n = strlen(name);
	struct writer *w = NULL;
	unsigned char *buf = NULL;
	struct sbuf h;
	uint64_t off = 0;
	ssize_t got;
	int r, ret = -1;

	sbuf_init(&h, MIME_HEAD_MAX);
	if (n == 0 || n > 64 || strspn(name, "0123456789abcdef") != n) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot write the message "
		    "as MIME: a bad name");
		goto out;
	}
	w = calloc(1, sizeof(*w));
	buf = malloc(CHUNK);
	if (w == NULL || buf == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	w->out.fd = out_fd;
	w->enc = ENC_B64;
	r = sbuf_addf(&h, "From: \"not verified\" <unverified@smimp.invalid>\n"
	    "To: ") | add_addr(&h, user) | sbuf_addf(&h, "\nSubject: Not "
	    "verified: a message that did not check out\n") |
	    add_date(&h, when);
	r |= sbuf_addf(&h, "Message-ID: <%s@smimp.invalid>\n"
	    "X-Smimp-Verified: no\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed;\n boundary=\"" BOUNDARY_PREFIX
	    "%s\"\n\nThis is a message in MIME format, written by "
	    "smimp-fetch.\n\n--" BOUNDARY_PREFIX "%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "Content-Transfer-Encoding: 7bit\n\n"
	    "smimp-fetch could not verify this message: it does not decrypt,\n"
	    "is malformed or its signature does not check out, or its\n"
	    "sender's key was revoked or changed since it was pinned.\n"
	    "Nothing in it can be trusted, not even who sent it, so it is not\n"
	    "shown as mail.\n\n"
	    "It is attached as it came, and kept in .sealed/%s.smimp, where\n"
	    "smimp-open says what is wrong with it.\n\n"
	    "--" BOUNDARY_PREFIX "%s\n"
	    "Content-Type: application/octet-stream\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"%s.smimp\"\n\n",
	    name, name, name, name, name, name);
	if (r != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	out_put(&w->out, h.buf, h.len);
	for (;;) {
		got = pread(in_fd, buf, CHUNK, (off_t)off);
		if (got < 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
			    "message");
			goto out;
		}
		if (got == 0)
			break;
		enc_data(w, buf, (size_t)got);
		off += (uint64_t)got;
	}
	enc_finish(w);
	out_str(&w->out, "\n--" BOUNDARY_PREFIX);
	out_str(&w->out, name);
	out_str(&w->out, "--\n");
	if (out_finish(&w->out, out_name, err) != 0)
		goto out;
	ret = 0;
out:
	sbuf_release(&h);
	free(buf);
	free(w);
	return ret;
}

/* ---- reading the headers back ---- */

static int
bad_head(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "not a message that "
	    "smimp-open --mime wrote: %s", what);
}

/*
 * Decode one RFC 2047 encoded word w[0..n) (UTF-8 or US-ASCII, B or
 * Q) onto out: 1 if it was one, 0 if it is not an encoded word, -1 if
 * it does not fit.
 */
static int
decode_word(const char *w, size_t n, struct sbuf *out)
{
	const char *q1, *q2, *text;
	size_t tlen, i, got;
	unsigned char buf[LINE_HARD];
	int r = 0;

	if (n < 8 || strncmp(w, "=?", 2) != 0 ||
	    strncmp(w + n - 2, "?=", 2) != 0)
		return 0;
	q1 = memchr(w + 2, '?', n - 4);
	if (q1 == NULL || q1 + 2 >= w + n - 2 || q1[2] != '?')
		return 0;
	q2 = q1 + 1;
	text = q2 + 2;
	tlen = (size_t)(w + n - 2 - text);
	if (!((q1 - w - 2 == 5 && strncasecmp(w + 2, "utf-8", 5) == 0) ||
	    (q1 - w - 2 == 8 && strncasecmp(w + 2, "us-ascii", 8) == 0)))
		return 0;
	if (*q2 == 'B' || *q2 == 'b') {
		if (b64_decode(text, tlen, buf, sizeof(buf), &got) != 0)
			return 0;
		return sbuf_add(out, buf, got) != 0 ? -1 : 1;
	}
	if (*q2 != 'Q' && *q2 != 'q')
		return 0;
	for (i = 0; i < tlen && r == 0; i++) {
		if (text[i] == '_') {
			r = sbuf_add(out, " ", 1);
		} else if (text[i] == '=') {
			/* =XX, in either case */
			if (i + 2 >= tlen || sodium_hex2bin(buf, 1, text + i + 1,
			    2, NULL, &got, NULL) != 0 || got != 1)
				return 0;
			r = sbuf_add(out, buf, 1);
			i += 2;
		} else {
			r = sbuf_add(out, text + i, 1);
		}
	}
	return r != 0 ? -1 : 1;
}

/*
 * The unfolded value of Subject, decoded: encoded words, with the
 * white space between two of them dropped, and text as it is.
 */
static int
decode_subject(const char *v, size_t n, char *out, size_t cap,
    struct smimp_err *err)
{
	struct sbuf sb, word;
	size_t i = 0, ws, w;
	int prev_word = 0, k, r = 0, ret = -1;

	sbuf_init(&sb, cap - 1);
	sbuf_init(&word, LINE_HARD);
	while (i < n && r == 0) {
		for (ws = i; i < n && (v[i] == ' ' || v[i] == '\t'); i++)
			;
		for (w = i; i < n && v[i] != ' ' && v[i] != '\t'; i++)
			;
		word.len = 0;
		k = w < i ? decode_word(v + w, i - w, &word) : 0;
		if (k < 0)
			goto out;
		if (k == 0 || !prev_word)
			r |= sbuf_add(&sb, v + ws, w - ws);
		r |= k == 1 ? sbuf_add(&sb, word.buf, word.len) :
		    sbuf_add(&sb, v + w, i - w);
		prev_word = k == 1;
	}
	if (r != 0)
		goto out;
	if (!text_value_ok(sb.len > 0 ? sb.buf : "", sb.len)) {
		bad_head(err, "the subject is not header text");
		goto out;
	}
	if (sb.len > 0)
		memcpy(out, sb.buf, sb.len);
	out[sb.len] = '\0';
	ret = 0;
out:
	if (ret != 0 && err->code == SMIMP_EXIT_OK)
		bad_head(err, "the subject is too long");
	sbuf_release(&word);
	sbuf_release(&sb);
	return ret;
}

/* One address of a To or Cc list: a mailbox, perhaps quoted or <>. */
static int
parse_one_addr(const char *s, size_t n, char out[ADDRESS_MAX + 1])
{
	char raw[ADDRESS_MAX + 8];
	const char *lt, *gt;
	struct smimp_err ignore;
	size_t i, k = 0;

	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	lt = memchr(s, '<', n);
	gt = lt != NULL ? memchr(lt, '>', n - (size_t)(lt - s)) : NULL;
	if (lt != NULL && gt != NULL) {
		n = (size_t)(gt - lt - 1);
		s = lt + 1;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			continue;
		if (k + 1 >= sizeof(raw))
			return -1;
		raw[k++] = s[i];
	}
	raw[k] = '\0';
	return address_normalize(raw, out, &ignore);
}

static int
parse_addr_list(const char *v, size_t n, int cc, struct mime_head *h,
    struct smimp_err *err)
{
	const char *comma;
	size_t len;

	while (n > 0) {
		comma = memchr(v, ',', n);
		len = comma != NULL ? (size_t)(comma - v) : n;
		if (h->nrcpts == MSG_MAX_RECIPIENTS)
			return bad_head(err, "too many recipients");
		if (parse_one_addr(v, len, h->rcpts[h->nrcpts].address) != 0)
			return bad_head(err, "a recipient is no address");
		h->rcpts[h->nrcpts++].cc = cc;
		if (comma == NULL)
			break;
		v = comma + 1;
		n -= len + 1;
	}
	return 0;
}

/* The header fields mime_head_parse takes, each at most once. */
enum head_field { F_VERIFIED, F_SENDER, F_MSGID, F_THREAD, F_SUBJECT,
	F_TO, F_CC, F_COUNT };

static int
head_field(const char *name, size_t n)
{
	static const char *const names[F_COUNT] = { "X-Smimp-Verified",
	    "X-Smimp-Sender", "X-Smimp-Message-Id", "X-Smimp-Thread-Id",
	    "Subject", "To", "Cc" };
	int i;

	for (i = 0; i < F_COUNT; i++)
		if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
			return i;
	return -1;
}

static int
copy_id(const char *v, size_t n, char out[MESSAGE_ID_MAX + 1])
{
	if (n == 0 || n > MESSAGE_ID_MAX)
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return message_id_valid(out) ? 0 : -1;
}

/* One unfolded field: name[0..nn), value v[0..n). */
static int
take_field(int f, const char *v, size_t n, struct mime_head *h,
    struct smimp_err *err)
{
	char addr[ADDRESS_MAX + 8];

	switch (f) {
	case F_VERIFIED:
		return n == 3 && memcmp(v, "yes", 3) == 0 ? 0 :
		    bad_head(err, "X-Smimp-Verified is not yes");
	case F_SENDER:
		if (n >= sizeof(addr) || parse_one_addr(v, n, h->sender) != 0)
			return bad_head(err, "a bad X-Smimp-Sender");
		return 0;
	case F_MSGID:
		return copy_id(v, n, h->message_id) != 0 ?
		    bad_head(err, "a bad X-Smimp-Message-Id") : 0;
	case F_THREAD:
		return copy_id(v, n, h->thread_id) != 0 ?
		    bad_head(err, "a bad X-Smimp-Thread-Id") : 0;
	case F_SUBJECT:
		return decode_subject(v, n, h->subject, sizeof(h->subject),
		    err);
	default:
		return parse_addr_list(v, n, f == F_CC, h, err);
	}
}

/*
 * The next field of buf[*pos..end), unfolded into line: its name and
 * value.  0 at the empty line that ends the header, -1 on a line that
 * is no field, -2 at the end of buf.
 */
static int
next_field(const char *buf, size_t end, size_t *pos, struct sbuf *line,
    size_t *name_len)
{
	size_t i = *pos, eol;
	const char *colon;

	line->len = 0;
	if (i >= end)
		return -2;
	for (;;) {
		const char *nl = memchr(buf + i, '\n', end - i);

		eol = nl != NULL ? (size_t)(nl - buf) : end;
		if (sbuf_add(line, buf + i, eol - i - (eol > i &&
		    buf[eol - 1] == '\r')) != 0)
			return -1;
		i = eol + 1;
		if (i >= end || (buf[i] != ' ' && buf[i] != '\t'))
			break;
	}
	*pos = i;
	if (line->len == 0)
		return 0;
	colon = memchr(line->buf, ':', line->len);
	if (colon == NULL || colon == line->buf)
		return -1;
	*name_len = (size_t)(colon - line->buf);
	return 1;
}

int
mime_head_parse(const char *buf, size_t len, struct mime_head *h,
    struct smimp_err *err)
{
	struct sbuf line;
	size_t pos = 0, nn, vstart;
	int seen[F_COUNT] = { 0 }, f, k, ret = -1;

	memset(h, 0, sizeof(*h));
	if (len > MIME_HEAD_MAX)
		len = MIME_HEAD_MAX;
	h->rcpts = calloc(MSG_MAX_RECIPIENTS, sizeof(*h->rcpts));
	if (h->rcpts == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	sbuf_init(&line, MIME_HEAD_MAX);
	while ((k = next_field(buf, len, &pos, &line, &nn)) == 1) {
		f = head_field(line.buf, nn);
		if (f < 0)
			continue;
		if (seen[f]++)
			goto bad_twice;
		vstart = nn + 1;
		while (vstart < line.len && (line.buf[vstart] == ' ' ||
		    line.buf[vstart] == '\t'))
			vstart++;
		if (take_field(f, line.buf + vstart, line.len - vstart, h,
		    err) != 0)
			goto out;
	}
	if (k < 0) {
		bad_head(err, k == -1 ? "a line that is no header field" :
		    "no end of the header");
		goto out;
	}
	if (!seen[F_VERIFIED] || !seen[F_SENDER] || !seen[F_MSGID] ||
	    !seen[F_THREAD]) {
		bad_head(err, "no X-Smimp-Verified, -Sender, -Message-Id or "
		    "-Thread-Id");
		goto out;
	}
	ret = 0;
	goto out;
bad_twice:
	bad_head(err, "a header field twice");
out:
	sbuf_release(&line);
	if (ret != 0)
		mime_head_release(h);
	return ret;
}

void
mime_head_release(struct mime_head *h)
{
	free(h->rcpts);
	h->rcpts = NULL;
	h->nrcpts = 0;
}
