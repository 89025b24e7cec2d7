/*
 * introduction.c - make, parse, verify and encode introduction
 * statements (see introduction.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "introduction.h"
#include "util.h"
#include "banned.h"

#define INTRO_CONTEXT	"smimp/1 introduction"
#define SIGLINE		"signature: "
#define B64URL		sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* Is s a valid address, written exactly as normalization writes it? */
static int
normalized(const char *s)
{
	char norm[ADDRESS_MAX + 1];
	struct smimp_err ignore;

	return address_normalize(s, norm, &ignore) == 0 &&
	    strcmp(norm, s) == 0;
}

static int
make_check(const char *introducer, const char *introduced, const char *to,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	if (!normalized(introducer) || !normalized(introduced) ||
	    !normalized(to))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "an introduction "
		    "names normalized addresses only");
	if (strcmp(introducer, introduced) == 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s cannot "
		    "introduce itself", introducer);
	if (strcmp(introduced, to) == 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s needs no "
		    "introduction to itself", to);
	if (strcmp(introducer, to) == 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "an introduction "
		    "to oneself says nothing: add %s to the trust store "
		    "instead", introduced);
	if (expires <= now || expires - now > INTRO_MAX_SECS)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "an introduction "
		    "expires within %d days", INTRO_MAX_SECS / 86400);
	return 0;
}

int
introduction_make(struct introduction *in, const char *introduced,
    const char *to, int64_t expires, int64_t now,
    const struct signer *signer, struct smimp_err *err)
{
	char when[TIME_STRLEN];
	struct sbuf sb;
	int ret = -1;

	memset(in, 0, sizeof(*in));
	if (make_check(signer->name, introduced, to, expires, now, err) != 0)
		return -1;
	time_format(expires, when);
	sbuf_init(&sb, INTRO_MAX);
	if (sbuf_addf(&sb, INTRO_MAGIC "introducer: %s\nintroduced: %s\n"
	    "to: %s\nexpires: %s\n", signer->name, introduced, to, when) != 0 ||
	    signer_sign_in_context(signer, INTRO_CONTEXT, sb.buf, sb.len,
	    in->sig) != 0 ||
	    sbuf_add(&sb, SIGLINE, strlen(SIGLINE)) != 0 ||
	    sbuf_add_b64(&sb, in->sig, 64) != 0 ||
	    sbuf_add(&sb, "\n", 1) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot sign the "
		    "introduction");
		goto out;
	}
	ret = introduction_parse(in, (const unsigned char *)sb.buf, sb.len,
	    err);
out:
	sbuf_release(&sb);
	return ret;
}

static int
malformed(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG,
	    "malformed introduction: %s", what);
}

/* The next line, which must be "name: " and a normalized address. */
static int
address_line(const char *buf, size_t len, size_t *pos, const char *name,
    char out[ADDRESS_MAX + 1])
{
	struct kv_line kv;

	return kv_next(buf, len, pos, INTRO_MAX, &kv) == 1 &&
	    kv_is(&kv, name) && kv_value_copy(&kv, out, ADDRESS_MAX + 1) == 0
	    && normalized(out) ? 0 : -1;
}

int
introduction_parse(struct introduction *in, const unsigned char *buf,
    size_t len, struct smimp_err *err)
{
	const char *t = (const char *)buf;
	struct kv_line kv;
	size_t pos = strlen(INTRO_MAGIC);

	memset(in, 0, sizeof(*in));
	if (len > INTRO_MAX)
		return malformed(err, "over 1024 bytes");
	if (len < pos || memcmp(t, INTRO_MAGIC, pos) != 0)
		return malformed(err, "not a smimp-introduction/1 statement");
	if (address_line(t, len, &pos, "introducer", in->introducer) != 0)
		return malformed(err, "bad introducer");
	if (address_line(t, len, &pos, "introduced", in->introduced) != 0)
		return malformed(err, "bad introduced");
	if (address_line(t, len, &pos, "to", in->to) != 0)
		return malformed(err, "bad to");
	if (kv_next(t, len, &pos, INTRO_MAX, &kv) != 1 ||
	    !kv_is(&kv, "expires") ||
	    time_parse(kv.value, kv.value_len, &in->expires) != 0)
		return malformed(err, "bad expires");
	in->signed_len = pos;
	if (kv_next(t, len, &pos, INTRO_MAX, &kv) != 1 ||
	    !kv_is(&kv, "signature") ||
	    b64_decode_exact(kv.value, kv.value_len, in->sig, 64) != 0)
		return malformed(err, "bad signature line");
	if (pos != len)
		return malformed(err, "bytes after the signature");
	memcpy(in->text, t, len);
	in->text[len] = '\0';
	in->len = len;
	return 0;
}

int
introduction_read_file(struct introduction *in, const char *path,
    struct smimp_err *err)
{
	unsigned char *buf = NULL;
	char why[SMIMP_ERR_MSG];
	size_t len;
	int r;

	if (file_read_all(path, INTRO_MAX, &buf, &len, err) != 0)
		return -1;
	r = introduction_parse(in, buf, len, err);
	free(buf);
	if (r != 0) {
		(void)snprintf(why, sizeof(why), "%s", err->msg);
		smimp_err_set(err, err->code, "'%s': %s", path, why);
	}
	return r;
}

int
introduction_verify(const struct introduction *in,
    const unsigned char pub[32])
{
	return in->len > 0 && signature_verify_in_context(INTRO_CONTEXT,
	    in->text, in->signed_len, in->sig, pub) == 0;
}

int
introduction_check(const struct introduction *in, const char *sender,
    const char *recipient, int64_t now, struct smimp_err *err)
{
	if (strcmp(in->introduced, sender) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the introduction "
		    "by %s introduces %s, not %s", in->introducer,
		    in->introduced, sender);
	if (strcmp(in->to, recipient) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the introduction "
		    "by %s is to %s, not to %s", in->introducer, in->to,
		    recipient);
	if (strcmp(in->introducer, in->introduced) == 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the introduction "
		    "of %s is by %s itself", in->introduced, in->introducer);
	if (in->expires <= now)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the introduction "
		    "by %s of %s to %s has expired", in->introducer,
		    in->introduced, in->to);
	if (in->expires - now > INTRO_MAX_SECS + INTRO_SKEW)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the introduction "
		    "by %s of %s to %s expires more than %d days from now",
		    in->introducer, in->introduced, in->to,
		    INTRO_MAX_SECS / 86400);
	return 0;
}

int
introduction_encode(const struct introduction *in, struct sbuf *sb)
{
	char out[INTRO_ENCODED_MAX + 1];

	sodium_bin2base64(out, sizeof(out), (const unsigned char *)in->text,
	    in->len, B64URL);
	return sbuf_add(sb, out, strlen(out));
}

size_t
introduction_encoded_len(const struct introduction *in)
{
	return (in->len * 4 + 2) / 3;
}

int
introduction_decode(struct introduction *in, const char *s, size_t len,
    struct smimp_err *err)
{
	unsigned char buf[INTRO_MAX];
	char back[INTRO_ENCODED_MAX + 1];
	const char *end;
	size_t n;

	if (len == 0 || len > INTRO_ENCODED_MAX || b64_has_high_byte(s, len) ||
	    sodium_base642bin(buf, sizeof(buf), s, len, NULL, &n, &end,
	    B64URL) != 0 || end != s + len)
		return malformed(err, "not unpadded base64url of at most "
		    "1024 bytes");
	/* One encoding only: the statement is named by it in headers. */
	sodium_bin2base64(back, sizeof(back), buf, n, B64URL);
	if (strlen(back) != len || memcmp(back, s, len) != 0)
		return malformed(err, "base64url that is not canonical");
	return introduction_parse(in, buf, n, err);
}

int
introduction_next(const char *list, size_t len, size_t *pos,
    struct introduction *in, struct smimp_err *err)
{
	const char *comma;
	size_t start = *pos, n;

	if (len > INTRO_LIST_MAX)
		return malformed(err, "a list over 8192 bytes");
	if (start >= len)
		return 0;
	comma = memchr(list + start, ',', len - start);
	n = comma != NULL ? (size_t)(comma - (list + start)) : len - start;
	*pos = start + n + (comma != NULL);
	/* "a,,b" and a comma at either end are refused, not skipped. */
	if (n == 0 || (comma != NULL && *pos == len))
		return malformed(err, "an empty entry in a list");
	return introduction_decode(in, list + start, n, err) == 0 ? 1 : -1;
}
