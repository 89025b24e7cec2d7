#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "stamp.h"
#include "banned.h"

#define STAMP_CONTEXT	"smimp/1 delivery-stamp"
#define STAMP_MAX	16384

static int
stamp_bytes(struct sbuf *sb, const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date)
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), hash, 32);
	return sbuf_add(sb, STAMP_CONTEXT, sizeof(STAMP_CONTEXT)) ||
	    sbuf_addf(sb, "%s\n%s\n%s\n%s\n%s", from, to, message_id, hex,
	    date) ? -1 : 0;
}

int
stamp_hash(unsigned char sh[32], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date)
{
	struct sbuf sb;
	int ret = -1;

	sbuf_init(&sb, STAMP_MAX);
	if (stamp_bytes(&sb, from, to, message_id, hash, date) == 0) {
		crypto_generichash(sh, 32, (unsigned char *)sb.buf, sb.len,
		    NULL, 0);
		ret = 0;
	}
	sbuf_release(&sb);
	return ret;
}

int
stamp_sign(char out[STAMP_STRLEN], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char secret[64], struct smimp_err *err)
{
	unsigned char sig[64];
	struct sbuf sb;

	sbuf_init(&sb, STAMP_MAX);
	if (stamp_bytes(&sb, from, to, message_id, hash, date) != 0) {
		sbuf_release(&sb);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "stamp too long");
	}
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, sb.len,
	    secret);
	sbuf_release(&sb);
	sodium_bin2base64(out, STAMP_STRLEN, sig, sizeof(sig),
	    sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int
stamp_verify(const char *stamp, const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char pub[32], struct smimp_err *err)
{
	unsigned char sig[64];
	struct sbuf sb;
	int ok;

	if (b64_decode_exact(stamp, strlen(stamp), sig, 64) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed stamp");
	sbuf_init(&sb, STAMP_MAX);
	ok = stamp_bytes(&sb, from, to, message_id, hash, date) == 0 &&
	    crypto_sign_verify_detached(sig, (unsigned char *)sb.buf, sb.len,
	    pub) == 0;
	sbuf_release(&sb);
	return ok ? 0 : smimp_err_set(err, SMIMP_EXIT_BADMSG,
	    "delivery stamp does not verify");
}

int
stamp_date_check(const char *date, int64_t now, int64_t max_age,
    struct smimp_err *err)
{
	int64_t when;

	if (time_parse(date, strlen(date), &when) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed stamp "
		    "date");
	if (when > now + STAMP_SKEW || when < now - max_age)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "stamp date out "
		    "of range");
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
stamp_recipients(const char *list, char *out, size_t cap)
{
	char *copy, *p, *items[256];
	size_t n = 0, i, off = 0;

	copy = strdup(list);
	if (copy == NULL)
		return -1;
	for (p = copy; p != NULL && *p != '\0';) {
		char *comma = strchr(p, ',');

		if (comma != NULL)
			*comma = '\0';
		while (*p == ' ')
			p++;
		if (*p != '\0') {
			if (n == 256) {
				free(copy);
				return -1;
			}
			items[n++] = p;
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	qsort(items, n, sizeof(items[0]), cmp_str);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		size_t l = strlen(items[i]);

		if (off + l + 2 > cap) {
			free(copy);
			return -1;
		}
		if (i > 0)
			out[off++] = ',';
		memcpy(out + off, items[i], l + 1);
		off += l;
	}
	free(copy);
	return 0;
}

/*
 * The next entry of a recipient list from *p (blanks before it
 * skipped): its start, *dom its domain (after '@') of *dlen bytes, *len
 * its length; *p moves past it.  NULL at the end.
 */
static const char *
list_next(const char **p, const char **dom, size_t *dlen, size_t *len)
{
	const char *s = *p, *end, *at;

	if (*s == '\0')
		return NULL;
	while (*s == ' ')
		s++;
	end = strchr(s, ',');
	if (end == NULL)
		end = s + strlen(s);
	*p = *end == ',' ? end + 1 : end;
	*len = (size_t)(end - s);
	at = memchr(s, '@', *len);
	*dom = at != NULL ? at + 1 : end;
	*dlen = (size_t)(end - *dom);
	return s;
}

int
stamp_recipients_at(const char *list, const char *domain, char *out,
    size_t cap)
{
	size_t dl = strlen(domain), len, elen;
	const char *p = list, *e, *dom;
	struct sbuf sb;
	int ret = -1;

	sbuf_init(&sb, STAMP_MAX);
	while ((e = list_next(&p, &dom, &len, &elen)) != NULL) {
		if (len != dl || strncmp(dom, domain, dl) != 0)
			continue;
		if (sbuf_addf(&sb, "%s%.*s", sb.len > 0 ? "," : "", (int)elen,
		    e) != 0)
			goto out;
	}
	if (sb.len > 0 && sbuf_add(&sb, "", 1) == 0)
		ret = stamp_recipients(sb.buf, out, cap);
out:
	sbuf_release(&sb);
	return ret;
}

size_t
stamp_domains(const char *list, char (*out)[ADDRESS_DOMAIN_MAX + 1],
    size_t cap)
{
	const char *p = list, *dom;
	size_t n = 0, i, len, elen;

	while (list_next(&p, &dom, &len, &elen) != NULL) {
		if (len == 0 || len > ADDRESS_DOMAIN_MAX)
			continue;
		for (i = 0; i < n; i++)
			if (strlen(out[i]) == len &&
			    strncmp(out[i], dom, len) == 0)
				break;
		if (i < n || n == cap)
			continue;
		memcpy(out[n], dom, len);
		out[n++][len] = '\0';
	}
	return n;
}

/* One "DOMAIN=STAMP" of a Smimp-Stamps value, from p to its end. */
struct stamps_entry {
	const char *domain, *stamp, *end;
	size_t dlen;
};

/* The entry at p: 0, or -1 when it is no entry at all. */
static int
stamps_entry(const char *p, struct stamps_entry *e)
{
	e->domain = p;
	e->end = strchr(p, ',');
	if (e->end == NULL)
		e->end = p + strlen(p);
	/* A domain has no '=': the first one ends it. */
	e->stamp = memchr(p, '=', (size_t)(e->end - p));
	if (e->stamp == NULL)
		return -1;
	e->dlen = (size_t)(e->stamp - p);
	e->stamp++;
	return 0;
}

int
stamps_count(const char *v)
{
	char dom[ADDRESS_DOMAIN_MAX + 1], norm[ADDRESS_DOMAIN_MAX + 1];
	struct stamps_entry e, o;
	unsigned char sig[64];
	struct smimp_err err;
	const char *p = v, *q;
	int n = 0;

	if (strlen(v) > STAMPS_MAX)
		return -1;
	for (;;) {
		if (stamps_entry(p, &e) != 0 || e.dlen == 0 ||
		    e.dlen > ADDRESS_DOMAIN_MAX ||
		    (size_t)(e.end - e.stamp) != STAMP_STRLEN - 1 ||
		    b64_decode_exact(e.stamp, STAMP_STRLEN - 1, sig, 64) != 0)
			return -1;
		memcpy(dom, e.domain, e.dlen);
		dom[e.dlen] = '\0';
		if (domain_normalize(dom, norm, &err) != 0 ||
		    strcmp(norm, dom) != 0)
			return -1;
		/* No domain twice. */
		for (q = v; q < p; q = o.end + 1)
			if (stamps_entry(q, &o) != 0 || (o.dlen == e.dlen &&
			    memcmp(o.domain, e.domain, e.dlen) == 0))
				return -1;
		n++;
		if (*e.end == '\0')
			return n;
		p = e.end + 1;
	}
}

int
stamps_find(const char *v, const char *domain, char out[STAMP_STRLEN])
{
	size_t dl = strlen(domain);
	struct stamps_entry e;
	const char *p;

	for (p = v; *p != '\0' && stamps_entry(p, &e) == 0; p = e.end +
	    (*e.end == ',')) {
		if (e.dlen != dl || memcmp(e.domain, domain, dl) != 0 ||
		    (size_t)(e.end - e.stamp) != STAMP_STRLEN - 1)
			continue;
		memcpy(out, e.stamp, STAMP_STRLEN - 1);
		out[STAMP_STRLEN - 1] = '\0';
		return 1;
	}
	return 0;
}

int
stamps_add(struct sbuf *sb, const char *domain, const char *stamp)
{
	return sbuf_addf(sb, "%s%s=%s", sb->len > 0 ? "," : "", domain,
	    stamp);
}
