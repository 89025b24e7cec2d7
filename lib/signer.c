/*
 * signer.c - a signer over a secret key in memory (see signer.h).
 */
#include <sodium.h>

#include "signer.h"
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
