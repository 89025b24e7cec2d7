/*
 * remotetool - lib/remote.c on its own, for tests that point it at
 * servers that misbehave.  The resolve map, CA bundle and plain-HTTP
 * domains come from the environment and config file, as for the
 * commands.  All requests of one run share one handle.
 *	remotetool base DOMAIN...	each domain's base URL
 *	remotetool meta DOMAIN		the server key it publishes (base64)
 *	remotetool lookup ADDRESS	the verified identity's address
 * A failure prints "remotetool: MESSAGE" and exits with its code; with
 * several domains, every one is tried and the last failure counts.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "idlog.h"
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
	int i, rc = SMIMP_EXIT_OK;

	if (sodium_init() < 0 || argc < 3) {
		fprintf(stderr, "usage: remotetool base|meta|lookup ARG...\n");
		return SMIMP_EXIT_USAGE;
	}
	memset(&conf, 0, sizeof(conf));
	smimp_err_clear(&err);
	if (clientconf_load(&conf, &err) != 0 ||
	    (r = remote_new(&conf.remote, &err)) == NULL)
		return fail(&err);
	for (i = 2; i < argc; i++) {
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
			if (lookup_directory(r, argv[i], &log, &err) != 0) {
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
	return rc;
}
