/*
 * peertool - what a test needs to play another domain's server that
 * lies: its key and the delivery stamps it makes with keys it holds.
 *	peertool server-key FILE	a new server key file (as smimpd
 *					makes one); prints its public half
 *					in base64, as /v1/meta publishes it
 *	peertool stamp KEY FROM TO MESSAGE-ID FILE DATE
 *					prints the delivery stamp KEY's
 *					identity key makes for FILE, whatever
 *					address KEY is for and FROM says
 * TO is every recipient, comma-separated, in any order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "keys.h"
#include "reqsig.h"
#include "stamp.h"
#include "util.h"

#define MAX_BODY	(1 << 26)

static int
server_key(const char *path)
{
	unsigned char seed[32], pk[32], sk[64];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char text[128];
	struct smimp_err err;
	int n;

	randombytes_buf(seed, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_bin2base64(b64, sizeof(b64), seed, sizeof(seed),
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(text, sizeof(text), "smimp-server-key/1\nsecret: %s\n",
	    b64);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	if (file_write_atomic(path, text, (size_t)n, 0600, 0, &err) != 0) {
		sodium_memzero(text, sizeof(text));
		fprintf(stderr, "peertool: %s\n", err.msg);
		return 1;
	}
	sodium_memzero(text, sizeof(text));
	sodium_bin2base64(b64, sizeof(b64), pk, sizeof(pk),
	    sodium_base64_VARIANT_ORIGINAL);
	printf("%s\n", b64);
	return 0;
}

static int
stamp(char **argv)
{
	struct passphrase_source src = { NULL, 0 };
	unsigned char hash[32], *body = NULL;
	char out[STAMP_STRLEN], sorted[8192];
	struct secret_key sk;
	struct smimp_err err;
	size_t len = 0;
	int ret = 1;

	memset(&sk, 0, sizeof(sk));
	if (secret_key_load(&sk, argv[0], &src, &err) != 0 ||
	    file_read_all(argv[4], MAX_BODY, &body, &len, &err) != 0) {
		fprintf(stderr, "peertool: %s\n", err.msg);
		goto out;
	}
	if (stamp_recipients(argv[2], sorted, sizeof(sorted)) != 0) {
		fprintf(stderr, "peertool: bad recipient list '%s'\n",
		    argv[2]);
		goto out;
	}
	reqsig_body_hash(hash, body, len);
	if (stamp_sign(out, argv[1], sorted, argv[3], hash, argv[5],
	    sk.identity_secret, &err) != 0) {
		fprintf(stderr, "peertool: %s\n", err.msg);
		goto out;
	}
	printf("%s\n", out);
	ret = 0;
out:
	free(body);
	if (sk.secrets != NULL)
		secret_key_release(&sk);
	return ret;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "server-key") == 0)
		return server_key(argv[2]);
	if (argc == 8 && strcmp(argv[1], "stamp") == 0)
		return stamp(argv + 2);
	fprintf(stderr, "usage: peertool server-key FILE\n"
	    "       peertool stamp KEY FROM TO MESSAGE-ID FILE DATE\n");
	return 2;
}
