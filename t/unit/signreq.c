/*
 * signreq - print the headers of a signed request, for tests that replay
 * or tamper with requests: signreq KEY METHOD DOMAIN PATH [BODYFILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "keys.h"
#include "reqsig.h"

int
main(int argc, char **argv)
{
	struct passphrase_source src = { NULL, 0 };
	unsigned char hash[32], *body = NULL;
	struct secret_key sk;
	struct smimp_err err;
	struct reqsig rs;
	size_t len = 0;

	if (sodium_init() < 0 || argc < 5) {
		fprintf(stderr, "usage: signreq KEY METHOD DOMAIN PATH "
		    "[BODYFILE]\n");
		return 2;
	}
	if (secret_key_load(&sk, argv[1], &src, &err) != 0 ||
	    (argc > 5 && file_read_all(argv[5], 1 << 26, &body, &len,
	    &err) != 0)) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	reqsig_body_hash(hash, body != NULL ? body : (unsigned char *)"", len);
	if (reqsig_sign(&rs, sk.address, argv[2], argv[3], argv[4], hash,
	    sk.identity_secret, time_now(), &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	printf("%s: %s\n%s: %s\n%s: %s\n%s: %s\n", REQSIG_H_SIGNER, rs.signer,
	    REQSIG_H_DATE, rs.date, REQSIG_H_NONCE, rs.nonce,
	    REQSIG_H_SIGNATURE, rs.signature);
	free(body);
	secret_key_release(&sk);
	return 0;
}
