/*
 * smimp-send - hand sealed messages to the sender's home server over
 * HTTPS.  The recipients and message id are read back from each message
 * (its sender can open it), so nobody names recipients twice:
 *	smimp-seal -r bob@example.net -s "build 42" < log | smimp-send
 * Prints each message id on success.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "identity.h"
#include "remote.h"
#include "send.h"
#include "cmd.h"
#include "banned.h"

struct send_opts {
	const char *identity;
	const char *passphrase_file;
	struct clientconf conf;
	char **files;
	int nfiles;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-send [-i IDENTITY] [--resolve DOMAIN=HOST:PORT] "
	    "[--cacert FILE]\n"
	    "                  [--allow-http DOMAIN] [--passphrase-file FILE] "
	    "[FILE ...]\n");
}

static int
parse_args(int argc, char **argv, struct send_opts *o)
{
	enum { OPT_PASSFILE = 256, OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		REMOTE_LONGOPTS,
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
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
	o->files = argv + optind;
	o->nfiles = argc - optind;
	return remote_options_finish(&o->conf);
}

/* Send one file ("-" is stdin); report and return its exit code. */
static int
send_one(struct remote *r, const struct identity *id, const char *file)
{
	struct smimp_err err;
	char mid[256];
	int fd, rc;

	smimp_err_clear(&err);
	fd = strcmp(file, "-") == 0 ? dup(STDIN_FILENO) :
	    open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		smimp_err_sys(&err, SMIMP_EXIT_FAIL, "cannot open '%s'", file);
		return report(&err);
	}
	rc = send_message(r, id, fd, mid, sizeof(mid), &err);
	close(fd);
	if (rc != 0)
		return report(&err);
	/* At once, for a script that reads ids as they come. */
	printf("%s\n", mid);
	return stdout_check() == 0 ? SMIMP_EXIT_OK : SMIMP_EXIT_FAIL;
}

static int
send_main(int argc, char **argv)
{
	static char stdin_name[] = "-";
	char *stdin_only[] = { stdin_name };
	struct passphrase_source src;
	struct send_opts o;
	struct smimp_err err;
	struct identity id;
	struct remote *r;
	int rc, i, worst = SMIMP_EXIT_OK, one;

	smimp_err_clear(&err);
	if (cmd_start("smimp-send") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	src.file = o.passphrase_file;
	src.allow_prompt = isatty(0) && o.nfiles > 0;
	if (identity_load(&id, o.identity, &src, 1, &err) != 0)
		return report(&err);
	r = remote_new(&o.conf.remote, &err);
	if (r == NULL) {
		identity_release(&id);
		return report(&err);
	}
	if (o.nfiles == 0) {
		o.files = stdin_only;
		o.nfiles = 1;
	}
	/* Every message is tried; the exit code is the worst seen. */
	for (i = 0; i < o.nfiles; i++) {
		one = send_one(r, &id, o.files[i]);
		if (one != SMIMP_EXIT_OK && (worst == SMIMP_EXIT_OK ||
		    one != SMIMP_EXIT_TEMPFAIL))
			worst = one;
	}
	remote_free(r);
	identity_release(&id);
	return worst;
}

int
main(int argc, char **argv)
{
	return cmd_exit(send_main(argc, argv));
}
