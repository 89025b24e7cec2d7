/*
 * signer.h - whoever signs requests and notices: a name and a function
 * that signs with a key the caller never sees.  A client's signer holds
 * its identity key in memory; the server's lives in one module
 * (server/serverkey.c) and signs on request.
 */
#ifndef SMIMP_SIGNER_H
#define SMIMP_SIGNER_H

#include <stddef.h>

struct signer {
	const char *name;	/* an address, or server:DOMAIN */
	/* Ed25519 over msg into sig; 0, or -1. */
	int (*sign)(void *key, const unsigned char *msg, size_t len,
	    unsigned char sig[64]);
	void *key;
};

/* A signer over a secret key in memory (libsodium's 64-byte form). */
void signer_secret(struct signer *s, const char *name,
    const unsigned char *secret);

/*
 * A signature in a context: over context || NUL || data, so that a
 * signature made for one kind of statement never passes for another.
 * s signs into sig: 0, or -1.
 */
int signer_sign_in_context(const struct signer *s, const char *context,
    const void *data, size_t len, unsigned char sig[64]);
/* Does sig verify as pub's, in context, over data?  0 if so, else -1. */
int signature_verify_in_context(const char *context, const void *data,
    size_t len, const unsigned char sig[64], const unsigned char pub[32]);

#endif
