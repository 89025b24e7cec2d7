/*
 * signer.c - a signer over a secret key in memory (see signer.h).
 */
#include <sodium.h>

#include <string.h>

#include "signer.h"
#include "util.h"
#include "banned.h"

static int
sign_secret(void *key, const unsigned char *msg, size_t len,
    unsigned char sig[64])
{
	return crypto_sign_detached(sig, NULL, msg, len, key);
}

void
signer_secret(struct signer *s, const char *name, const unsigned char *secret)
{
	s->name = name;
	s->sign = sign_secret;
	s->key = (void *)secret;
}

/* context || NUL || data into m (released by the caller): 0, or -1. */
static int
in_context(struct sbuf *m, const char *context, const void *data,
    size_t len)
{
	size_t clen = strlen(context) + 1;

	sbuf_init(m, clen + len);
	return sbuf_add(m, context, clen) != 0 ||
	    sbuf_add(m, data, len) != 0 ? -1 : 0;
}

int
signer_sign_in_context(const struct signer *s, const char *context,
    const void *data, size_t len, unsigned char sig[64])
{
	struct sbuf m;
	int r;

	r = in_context(&m, context, data, len) == 0 &&
	    s->sign(s->key, (const unsigned char *)m.buf, m.len, sig) == 0 ?
	    0 : -1;
	sbuf_release(&m);
	return r;
}

int
signature_verify_in_context(const char *context, const void *data,
    size_t len, const unsigned char sig[64], const unsigned char pub[32])
{
	struct sbuf m;
	int r;

	r = in_context(&m, context, data, len) == 0 &&
	    crypto_sign_verify_detached(sig, (const unsigned char *)m.buf,
	    m.len, pub) == 0 ? 0 : -1;
	sbuf_release(&m);
	return r;
}
