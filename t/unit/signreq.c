/*
 * signreq - print the headers of a signed request, for tests that replay
 * or tamper with requests:
 *	signreq KEY METHOD DOMAIN PATH [BODYFILE]
 *	signreq --server SERVERKEY SERVERDOMAIN METHOD DOMAIN PATH [BODYFILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "keys.h"
#include "reqsig.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct passphrase_source src = { NULL, 0 };
	unsigned char hash[32], *body = NULL;
	struct secret_key sk;
	struct smimp_err err;
	struct reqsig rs;
	size_t len = 0;

	unsigned char seed[32], spk[32], ssk[64];
	char signer[400];
	const unsigned char *secret;

	memset(&sk, 0, sizeof(sk));
	if (argc > 3 && strcmp(argv[1], "--server") == 0) {
		/* smimp-server-key/1, secret: base64 seed */
		if (sodium_init() < 0 || argc < 7 ||
		    file_read_all(argv[2], 4096, &body, &len, &err) != 0 ||
		    len < 19 + 8 + 44 ||
		    b64_decode_exact((char *)body + 19 + 8, 44, seed, 32) != 0) {
			fprintf(stderr, "signreq: bad server key\n");
			return 1;
		}
		free(body);
		body = NULL;
		len = 0;
		crypto_sign_seed_keypair(spk, ssk, seed);
		snprintf(signer, sizeof(signer), "server:%s", argv[3]);
		argv += 2;
		argc -= 2;
		secret = ssk;
		goto sign;
	}
	if (sodium_init() < 0 || argc < 5) {
		fprintf(stderr, "usage: signreq KEY METHOD DOMAIN PATH "
		    "[BODYFILE]\n");
		return 2;
	}
	if (secret_key_load(&sk, argv[1], &src, &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	snprintf(signer, sizeof(signer), "%s", sk.address);
	secret = sk.identity_secret;
sign:
	if (argc > 5 && file_read_all(argv[5], 1 << 26, &body, &len,
	    &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	reqsig_body_hash(hash, body != NULL ? body : (unsigned char *)"", len);
	if (reqsig_sign(&rs, signer, argv[2], argv[3], argv[4], hash,
	    secret, time_now(), &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	printf("%s: %s\n%s: %s\n%s: %s\n%s: %s\n", REQSIG_H_SIGNER, rs.signer,
	    REQSIG_H_DATE, rs.date, REQSIG_H_NONCE, rs.nonce,
	    REQSIG_H_SIGNATURE, rs.signature);
	free(body);
	if (sk.secrets != NULL)
		secret_key_release(&sk);
	return 0;
}
