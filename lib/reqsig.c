/*
 * reqsig.c - sign and verify requests.  The signed bytes are
 *
 *	"smimp/1 request" NUL METHOD LF AUTHORITY LF TARGET LF DATE LF
 *	NONCE LF SIGNER LF hex(BLAKE2b-256(body)) LF
 *	then, for each signed header (Smimp-* but the signature's own,
 *	with a value) in order of its lowercased name:
 *	lowercased-name ":" value LF
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "exitcode.h"
#include "reqsig.h"
#include "util.h"
#include "banned.h"

#define REQSIG_CONTEXT	"smimp/1 request"
#define REQSIG_MAX	(64 * 1024)

/* The headers that make up the signature, not covered by it. */
static const char *const own_headers[] = {
	REQSIG_H_SIGNER, REQSIG_H_DATE, REQSIG_H_NONCE, REQSIG_H_SIGNATURE,
	REQSIG_H_BODY_HASH
};

void
reqsig_body_hash(unsigned char out[32], const void *body, size_t len)
{
	crypto_generichash(out, 32, len > 0 ? body : (const void *)"", len,
	    NULL, 0);
}

int
reqsig_header_signed(const char *name)
{
	size_t i;

	if (strncasecmp(name, "Smimp-", 6) != 0)
		return 0;
	for (i = 0; i < sizeof(own_headers) / sizeof(own_headers[0]); i++)
		if (strcasecmp(name, own_headers[i]) == 0)
			return 0;
	return 1;
}

static int
cmp_header(const void *a, const void *b)
{
	const struct reqsig_header *x = *(const struct reqsig_header *const *)a;
	const struct reqsig_header *y = *(const struct reqsig_header *const *)b;

	return strcasecmp(x->name, y->name);
}

/* The signed headers of h, sorted; -1 if too many or one repeats. */
static int
signed_headers(const struct reqsig_header *h, size_t n,
    const struct reqsig_header **out, size_t *nout, struct smimp_err *err)
{
	size_t i;

	*nout = 0;
	for (i = 0; i < n; i++) {
		/* An empty header counts as absent: proxies drop them. */
		if (!reqsig_header_signed(h[i].name) || h[i].value[0] == '\0')
			continue;
		if (*nout == REQSIG_HEADERS_MAX)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "too many "
			    "Smimp- headers");
		out[(*nout)++] = &h[i];
	}
	qsort(out, *nout, sizeof(*out), cmp_header);
	for (i = 1; i < *nout; i++)
		if (strcasecmp(out[i - 1]->name, out[i]->name) == 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "header "
			    "%.40s repeated", out[i]->name);
	return 0;
}

static int
add_lower(struct sbuf *sb, const char *s)
{
	char c;

	for (; *s != '\0'; s++) {
		c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
		if (sbuf_add(sb, &c, 1) != 0)
			return -1;
	}
	return 0;
}

/*
 * Could s move a line of the signed bytes?  Each field is one line, and
 * a header's name ends at its colon: a field that holds a line break
 * (or a name that holds a colon) could be read as two.
 */
static int
splits_line(const char *s, const char *breaks)
{
	return strpbrk(s, breaks) != NULL;
}

static int
signed_bytes(struct sbuf *sb, const struct reqsig *rs, const char *method,
    const char *authority, const char *target,
    const struct reqsig_header *h, size_t n, struct smimp_err *err)
{
	const struct reqsig_header *sorted[REQSIG_HEADERS_MAX];
	char hex[REQSIG_HASH_STRLEN];
	size_t ns, i;

	if (signed_headers(h, n, sorted, &ns, err) != 0)
		return -1;
	if (splits_line(method, "\n") || splits_line(authority, "\n") ||
	    splits_line(target, "\n") || splits_line(rs->date, "\n") ||
	    splits_line(rs->nonce, "\n") || splits_line(rs->signer, "\n"))
		goto split;
	sodium_bin2hex(hex, sizeof(hex), rs->body_hash, 32);
	if (sbuf_add(sb, REQSIG_CONTEXT, sizeof(REQSIG_CONTEXT)) ||
	    sbuf_addf(sb, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n", method, authority,
	    target, rs->date, rs->nonce, rs->signer, hex))
		goto long_;
	for (i = 0; i < ns; i++) {
		if (splits_line(sorted[i]->name, "\n:") ||
		    splits_line(sorted[i]->value, "\n"))
			goto split;
		if (add_lower(sb, sorted[i]->name) != 0 ||
		    sbuf_addf(sb, ":%s\n", sorted[i]->value) != 0)
			goto long_;
	}
	return 0;
long_:
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "request too long to "
	    "sign");
split:
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a line break in a "
	    "signed field");
}

int
reqsig_sign(struct reqsig *rs, const struct signer *signer,
    const char *method, const char *authority, const char *target,
    const unsigned char body_hash[32], const struct reqsig_header *h,
    size_t n, int64_t now, struct smimp_err *err)
{
	unsigned char nonce[16], sig[64];
	struct sbuf sb;
	int ret = -1;

	memset(rs, 0, sizeof(*rs));
	if ((size_t)snprintf(rs->signer, sizeof(rs->signer), "%s",
	    signer->name) >=
	    sizeof(rs->signer))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "signer too long");
	time_format(now, rs->date);
	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2base64(rs->nonce, sizeof(rs->nonce), nonce, sizeof(nonce),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(rs->body_hash, body_hash, 32);
	sbuf_init(&sb, REQSIG_MAX);
	if (signed_bytes(&sb, rs, method, authority, target, h, n, err) != 0) {
		err->code = SMIMP_EXIT_FAIL;
		goto out;
	}
	if (signer->sign(signer->key, (unsigned char *)sb.buf, sb.len,
	    sig) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot sign the request");
		goto out;
	}
	sodium_bin2base64(rs->signature, sizeof(rs->signature), sig,
	    sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	ret = 0;
out:
	sbuf_release(&sb);
	return ret;
}

/* Copy a header value into a fixed field; -1 if absent or too long. */
static int
field(char *out, size_t cap, const char *v)
{
	size_t n;

	if (v == NULL || (n = strlen(v)) >= cap)
		return -1;
	memcpy(out, v, n + 1);
	return 0;
}

int
reqsig_parse(struct reqsig *rs, const char *signer, const char *date,
    const char *nonce, const char *signature, const char *body_hash,
    struct smimp_err *err)
{
	size_t len;

	memset(rs, 0, sizeof(*rs));
	if (signer == NULL || date == NULL || nonce == NULL ||
	    signature == NULL || body_hash == NULL)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "missing or "
		    "malformed request signature");
	if (field(rs->signer, sizeof(rs->signer), signer) != 0 ||
	    field(rs->date, sizeof(rs->date), date) != 0 ||
	    field(rs->nonce, sizeof(rs->nonce), nonce) != 0 ||
	    field(rs->signature, sizeof(rs->signature), signature) != 0 ||
	    strlen(body_hash) != 64 ||
	    sodium_hex2bin(rs->body_hash, 32, body_hash, 64, NULL, &len,
	    NULL) != 0 || len != 32)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "missing or "
		    "malformed request signature");
	return 0;
}

int
reqsig_verify(const struct reqsig *rs, const char *method,
    const char *authority, const char *target,
    const struct reqsig_header *h, size_t n, const unsigned char pub[32],
    int64_t now, struct smimp_err *err)
{
	unsigned char sig[64], nonce[16];
	struct sbuf sb;
	int64_t when;
	size_t len;
	int ret = -1;

	if (time_parse(rs->date, strlen(rs->date), &when) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad date");
	if (when < now - REQSIG_WINDOW || when > now + REQSIG_WINDOW)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "date outside the replay window");
	/* One spelling of a nonce only: a replay cannot respell it. */
	if (b64_has_high_byte(rs->nonce, strlen(rs->nonce)) ||
	    sodium_base642bin(nonce, sizeof(nonce), rs->nonce,
	    strlen(rs->nonce), NULL, &len, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || len != 16)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad nonce");
	if (b64_decode_exact(rs->signature, strlen(rs->signature), sig,
	    64) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad signature");
	sbuf_init(&sb, REQSIG_MAX);
	if (signed_bytes(&sb, rs, method, authority, target, h, n, err) != 0)
		goto out;
	if (crypto_sign_verify_detached(sig, (unsigned char *)sb.buf, sb.len,
	    pub) != 0) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad signature");
		goto out;
	}
	ret = 0;
out:
	sbuf_release(&sb);
	return ret;
}

int
reqsig_device_signer(char *out, size_t cap, const char *device,
    const char *address)
{
	int n = snprintf(out, cap, "device:%s:%s", device, address);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
reqsig_is_device_signer(const char *signer, char name[IDDEV_NAME_MAX + 1],
    const char **address)
{
	static const char prefix[] = "device:";
	const char *colon;
	size_t n;

	if (strncmp(signer, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	signer += sizeof(prefix) - 1;
	if ((colon = strchr(signer, ':')) == NULL ||
	    (n = (size_t)(colon - signer)) > IDDEV_NAME_MAX)
		return 0;
	memcpy(name, signer, n);
	name[n] = '\0';
	if (!iddev_name_valid(name))
		return 0;
	*address = colon + 1;
	return 1;
}
