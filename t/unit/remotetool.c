/*
 * remotetool - lib/remote.c on its own, for tests that point it at
 * servers that misbehave.  The resolve map, CA bundle and plain-HTTP
 * domains come from the environment and config file, as for the
 * commands.  All requests of one run share one handle.
 *	remotetool base DOMAIN...	each domain's base URL
 *	remotetool meta DOMAIN		the server key it publishes (base64)
 *	remotetool lookup KEY ADDRESS...	the verified identity's address,
 *					looked up signed by KEY (a .key
 *					without passphrase, or a .recovery)
 * A failure prints "remotetool: MESSAGE" and exits with its code; with
 * several domains, every one is tried and the last failure counts.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "idlog.h"
#include "keys.h"
#include "lookup.h"
#include "clientconf.h"
#include "remote.h"

static int
fail(const struct smimp_err *err)
{
	fprintf(stderr, "remotetool: %s\n", err->msg);
	return err->code != 0 ? err->code : SMIMP_EXIT_FAIL;
}

int
main(int argc, char **argv)
{
	struct clientconf conf;
	struct smimp_err err;
	struct remote *r = NULL;
	struct idlog log;
	unsigned char key[32];
	char base[512], b64[64];
	struct passphrase_source src = { NULL, 0 };
	struct secret_key sk;
	struct signer who;
	char name[ADDRESS_MAX + 16];
	int i, first = 2, rc = SMIMP_EXIT_OK;

	if (sodium_init() < 0 || argc < 3 ||
	    (strcmp(argv[1], "lookup") == 0 && argc < 4)) {
		fprintf(stderr, "usage: remotetool base|meta ARG...\n"
		    "       remotetool lookup KEY ADDRESS...\n");
		return SMIMP_EXIT_USAGE;
	}
	memset(&conf, 0, sizeof(conf));
	memset(&sk, 0, sizeof(sk));
	smimp_err_clear(&err);
	if (strcmp(argv[1], "lookup") == 0) {
		if (secret_key_load(&sk, argv[2], &src, &err) != 0)
			return fail(&err);
		(void)snprintf(name, sizeof(name), "%s%s", sk.is_recovery ?
		    "recovery:" : "", sk.address);
		signer_secret(&who, name, sk.identity_secret);
		first = 3;
	}
	if (clientconf_load(&conf, &err) != 0 ||
	    (r = remote_new(&conf.remote, &err)) == NULL) {
		secret_key_release(&sk);
		return fail(&err);
	}
	for (i = first; i < argc; i++) {
		smimp_err_clear(&err);
		if (strcmp(argv[1], "base") == 0) {
			if (remote_base(r, argv[i], base, sizeof(base),
			    &err) != 0) {
				rc = fail(&err);
				continue;
			}
			printf("%s\n", base);
		} else if (strcmp(argv[1], "meta") == 0) {
			if (remote_base(r, argv[i], base, sizeof(base),
			    &err) != 0 || remote_server_key(r, argv[i], base,
			    key, &err) != 0) {
				rc = fail(&err);
				continue;
			}
			sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
			    sodium_base64_VARIANT_ORIGINAL);
			printf("%s\n", b64);
		} else if (strcmp(argv[1], "lookup") == 0) {
			if (lookup_directory(r, argv[i], &who, &log,
			    &err) != 0) {
				rc = fail(&err);
				continue;
			}
			printf("%s\n", log.address);
			idlog_release(&log);
		} else {
			fprintf(stderr, "remotetool: unknown command '%s'\n",
			    argv[1]);
			rc = SMIMP_EXIT_USAGE;
			break;
		}
	}
	remote_free(r);
	secret_key_release(&sk);
	return rc;
}
