/*
 * reqsig.c - sign and verify requests.  The signed bytes are
 *
 *	"smimp/1 request" NUL METHOD LF AUTHORITY LF PATH LF DATE LF
 *	NONCE LF SIGNER LF hex(BLAKE2b-256(body))
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "reqsig.h"
#include "banned.h"

#define REQSIG_CONTEXT	"smimp/1 request"
#define REQSIG_MAX	8192

void
reqsig_body_hash(unsigned char out[32], const void *body, size_t len)
{
	crypto_generichash(out, 32, body, len, NULL, 0);
}

static int
signed_bytes(struct sbuf *sb, const struct reqsig *rs, const char *method,
    const char *authority, const char *path,
    const unsigned char body_hash[32])
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), body_hash, 32);
	return sbuf_add(sb, REQSIG_CONTEXT, sizeof(REQSIG_CONTEXT)) ||
	    sbuf_addf(sb, "%s\n%s\n%s\n%s\n%s\n%s\n%s", method, authority,
	    path, rs->date, rs->nonce, rs->signer, hex) ? -1 : 0;
}

int
reqsig_sign(struct reqsig *rs, const char *signer, const char *method,
    const char *authority, const char *path,
    const unsigned char body_hash[32], const unsigned char secret[64],
    int64_t now, struct smimp_err *err)
{
	unsigned char nonce[16], sig[64];
	struct sbuf sb;
	int ret = -1;

	memset(rs, 0, sizeof(*rs));
	if ((size_t)snprintf(rs->signer, sizeof(rs->signer), "%s", signer) >=
	    sizeof(rs->signer))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "signer too long");
	time_format(now, rs->date);
	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2base64(rs->nonce, sizeof(rs->nonce), nonce, sizeof(nonce),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sbuf_init(&sb, REQSIG_MAX);
	if (signed_bytes(&sb, rs, method, authority, path, body_hash) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "request too long to sign");
		goto out;
	}
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, sb.len,
	    secret);
	sodium_bin2base64(rs->signature, sizeof(rs->signature), sig,
	    sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	ret = 0;
out:
	sbuf_release(&sb);
	return ret;
}

int
reqsig_verify(const struct reqsig *rs, const char *method,
    const char *authority, const char *path,
    const unsigned char body_hash[32], const unsigned char pub[32],
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
	if (sodium_base642bin(nonce, sizeof(nonce), rs->nonce,
	    strlen(rs->nonce), NULL, &len, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || len != 16)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad nonce");
	if (b64_decode_exact(rs->signature, strlen(rs->signature), sig,
	    64) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "bad signature");
	sbuf_init(&sb, REQSIG_MAX);
	if (signed_bytes(&sb, rs, method, authority, path, body_hash) != 0) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "request too long");
		goto out;
	}
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
