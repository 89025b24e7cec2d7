/*
 * signreq - print the headers of a signed request, for tests that replay
 * or tamper with requests:
 *	signreq KEY METHOD DOMAIN PATH [BODYFILE [HEADER...]]
 * (KEY a .key, a device's .key that signs as device:NAME:ADDRESS, or
 * a .recovery that signs as recovery:ADDRESS)
 *	signreq --server SERVERKEY SERVERDOMAIN METHOD DOMAIN PATH
 *	    [BODYFILE [HEADER...]]
 * BODYFILE "-" means no body.  Each HEADER ("Name: value") is signed
 * and printed after the signature headers, so that a test passes them
 * all to curl.
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
	struct signer who;
	size_t len = 0;

	unsigned char seed[32], spk[32], ssk[64];
	struct reqsig_header h[REQSIG_HEADERS_MAX];
	char names[REQSIG_HEADERS_MAX][64], hex[REQSIG_HASH_STRLEN], *colon;
	size_t nh = 0;
	int i;
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
	/*
	 * A recovery key signs as recovery:ADDRESS, a device's key as
	 * device:NAME:ADDRESS.
	 */
	if (sk.is_device)
		(void)reqsig_device_signer(signer, sizeof(signer), sk.device,
		    sk.address);
	else
		snprintf(signer, sizeof(signer), "%s%s", sk.is_recovery ?
		    "recovery:" : "", sk.address);
	secret = sk.identity_secret;
sign:
	if (argc > 5 && strcmp(argv[5], "-") != 0 && file_read_all(argv[5],
	    1 << 26, &body, &len, &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	for (i = 6; i < argc && nh < REQSIG_HEADERS_MAX; i++) {
		colon = strchr(argv[i], ':');
		if (colon == NULL || (size_t)(colon - argv[i]) >= 64) {
			fprintf(stderr, "signreq: bad header '%s'\n", argv[i]);
			return 2;
		}
		memcpy(names[nh], argv[i], (size_t)(colon - argv[i]));
		names[nh][colon - argv[i]] = '\0';
		h[nh].name = names[nh];
		h[nh].value = colon + 1 + strspn(colon + 1, " ");
		nh++;
	}
	reqsig_body_hash(hash, body, len);
	signer_secret(&who, signer, secret);
	if (reqsig_sign(&rs, &who, argv[2], argv[3], argv[4], hash, h, nh,
	    time_now(), &err) != 0) {
		fprintf(stderr, "signreq: %s\n", err.msg);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	printf("%s: %s\n%s: %s\n%s: %s\n%s: %s\n%s: %s\n", REQSIG_H_SIGNER,
	    rs.signer, REQSIG_H_DATE, rs.date, REQSIG_H_NONCE, rs.nonce,
	    REQSIG_H_SIGNATURE, rs.signature, REQSIG_H_BODY_HASH, hex);
	for (i = 0; i < (int)nh; i++)
		printf("%s\n", argv[6 + i]);
	free(body);
	if (sk.secrets != NULL)
		secret_key_release(&sk);
	return 0;
}
