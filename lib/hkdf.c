/* hkdf.c - HKDF-SHA-256 (RFC 5869) on libsodium's HMAC-SHA-256. */
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "banned.h"

int
hkdf_sha256(unsigned char *out, size_t out_len,
    const unsigned char *ikm, size_t ikm_len,
    const unsigned char *salt, size_t salt_len,
    const unsigned char *info, size_t info_len)
{
	crypto_auth_hmacsha256_state st;
	unsigned char prk[32], t[32];
	size_t done = 0, t_len = 0;
	unsigned char counter = 0;
	static const unsigned char no_salt[32];

	if (out_len > 255 * 32)
		return -1;
	/* Extract.  An empty salt is HashLen zero bytes (RFC 5869). */
	crypto_auth_hmacsha256_init(&st, salt_len > 0 ? salt : no_salt,
	    salt_len > 0 ? salt_len : sizeof(no_salt));
	crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
	crypto_auth_hmacsha256_final(&st, prk);
	/* Expand. */
	while (done < out_len) {
		size_t n;

		counter++;
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		crypto_auth_hmacsha256_update(&st, t, t_len);
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);
		t_len = sizeof(t);
		n = out_len - done < sizeof(t) ? out_len - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return 0;
}
