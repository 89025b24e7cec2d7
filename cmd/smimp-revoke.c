/*
 * smimp-revoke - take a key back.  Email cannot: a stolen key or
 * password keeps speaking for its owner.  Here the owner extends the
 * identity log that everyone checks: --rotate hands over to a new
 * identity key (and encryption key), --encryption replaces the
 * encryption key alone, --reason revokes the identity for good.  The
 * key file and the log beside it are replaced once the home server has
 * the new record (or, with --no-publish, at once, for delivery by hand).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "idlog.h"
#include "revoke.h"
#include "cmd.h"
#include "banned.h"

struct revoke_opts {
	const char *identity;
	const char *passphrase_file;
	const char *reason;
	const char *write;
	int rotate, encryption, no_publish, json;
	struct clientconf conf;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-revoke [-i IDENTITY] --rotate | --encryption | "
	    "--reason TEXT\n"
	    "                    [--no-publish] [-w FILE] [--json] "
	    "[--passphrase-file FILE]\n"
	    "                    [--resolve DOMAIN=HOST:PORT] [--cacert FILE] "
	    "[--allow-http DOMAIN]\n");
}

static int
parse_args(int argc, char **argv, struct revoke_opts *o)
{
	enum { OPT_ROTATE = 256, OPT_ENCRYPTION, OPT_REASON, OPT_NO_PUBLISH,
		OPT_JSON, OPT_PASSFILE, OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "rotate", no_argument, NULL, OPT_ROTATE },
		{ "encryption", no_argument, NULL, OPT_ENCRYPTION },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "no-publish", no_argument, NULL, OPT_NO_PUBLISH },
		{ "write", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		REMOTE_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "i:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'w': o->write = optarg; break;
		case OPT_ROTATE: o->rotate = 1; break;
		case OPT_ENCRYPTION: o->encryption = 1; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_NO_PUBLISH: o->no_publish = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			usage(stderr);
			return SMIMP_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->rotate + o->encryption + (o->reason != NULL) != 1)
		return usage_error("one of --rotate, --encryption and --reason "
		    "is needed");
	if (o->json && o->write != NULL && strcmp(o->write, "-") == 0)
		return usage_error("--json and -w - both write to standard "
		    "output");
	if (o->reason != NULL && !idlog_reason_valid(o->reason))
		return usage_error("the reason must be 1 to %d characters of "
		    "printable ASCII", IDREC_REASON_MAX);
	if (o->no_publish)
		return 0;
	return remote_options_finish(&o->conf);
}

/* What happened, as one JSON object. */
static void
say_json(const struct revoke_opts *o, const struct revoke_result *res)
{
	print_json(json_pack("{s:s,s:s,s:I,s:s,s:b,s:b,s:s}", "address",
	    res->address, "change", o->rotate ? "rotate" : o->encryption ?
	    "encryption-key" : "revoke", "records", (json_int_t)res->records,
	    "log", res->pub_path, "key_replaced", res->key_replaced,
	    "published", res->published, "domain",
	    address_domain(res->address)));
}

/* What happened, in one line. */
static void
say_done(const struct revoke_opts *o, const struct revoke_result *res)
{
	FILE *f = o->write != NULL && strcmp(o->write, "-") == 0 ? stderr :
	    stdout;
	const char *what = o->rotate ? "identity key rotated, with a new "
	    "encryption key" : o->encryption ? "new encryption key" :
	    "identity revoked";

	fprintf(f, "%s: %s (%zu records in '%s')", res->address, what,
	    res->records, res->pub_path);
	if (res->published)
		fprintf(f, ", published to %s\n",
		    address_domain(res->address));
	else
		fprintf(f, ", not published: give '%s' to the administrator of "
		    "%s\n", o->write != NULL && strcmp(o->write, "-") != 0 ?
		    o->write : res->pub_path, address_domain(res->address));
}

static int
revoke_main(int argc, char **argv)
{
	struct passphrase_source src;
	struct revoke_params p;
	struct revoke_result res;
	struct revoke_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-revoke") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	src.file = o.passphrase_file;
	src.allow_prompt = isatty(0);
	memset(&p, 0, sizeof(p));
	p.kind = o.rotate ? REVOKE_ROTATE : o.encryption ? REVOKE_ENCRYPTION :
	    REVOKE_REVOKE;
	p.keypath = o.identity;
	p.src = &src;
	p.reason = o.reason;
	p.publish = !o.no_publish;
	p.remote = &o.conf.remote;
	p.write_log = o.write;
	if (revoke_run(&p, &res, &err) != 0)
		return report(&err);
	if (o.json)
		say_json(&o, &res);
	else
		say_done(&o, &res);
	return SMIMP_EXIT_OK;
}

int
main(int argc, char **argv)
{
	return cmd_exit(revoke_main(argc, argv));
}
