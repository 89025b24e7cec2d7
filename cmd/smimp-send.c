/*
 * smimp-send - hand sealed messages to the sender's home server over
 * HTTPS.  The recipients and message id are read back from each message
 * (its sender can open it), so nobody names recipients twice:
 *	smimp-seal -r bob@example.net -s "build 42" < log | smimp-send
 * Prints each message id on success.  A recipient whose policy asks
 * strangers for a proof of work gets one, computed here before the
 * message goes (--max-work caps the time), with progress on a terminal.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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
	unsigned int max_work;
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
	    "[--max-work SECONDS]\n"
	    "                  [FILE ...]\n");
}

static int
parse_args(int argc, char **argv, struct send_opts *o)
{
	enum { OPT_PASSFILE = 256, OPT_VERSION, OPT_MAX_WORK };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		REMOTE_LONGOPTS,
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "max-work", required_argument, NULL, OPT_MAX_WORK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t secs;
	int c;

	memset(o, 0, sizeof(*o));
	o->max_work = SEND_MAX_WORK_DEFAULT;
	while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_MAX_WORK:
			if (parse_u64(optarg, strlen(optarg), &secs) != 0 ||
			    secs < 1 || secs > SEND_MAX_WORK_MAX)
				return usage_error("--max-work takes 1 to %d "
				    "seconds, not '%s'", SEND_MAX_WORK_MAX,
				    optarg);
			o->max_work = (unsigned int)secs;
			break;
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

/* The progress of a proof of work: one line, rewritten in place. */
struct shown {
	int open;		/* a line is on the terminal, not ended */
	double last;		/* when it was last rewritten */
};

static void
show_progress(const struct send_progress *p, void *arg)
{
	struct shown *sh = arg;

	if (!p->done && sh->open && p->secs - sh->last < 0.1)
		return;
	fprintf(stderr, "\r\033[K%s: proof of work for %s (%u bits): ",
	    progname, p->recipient, p->bits);
	if (p->done)
		fprintf(stderr, "done in %.1f s\n", p->secs);
	else
		fprintf(stderr, "%.1f s, %.1f M tries", p->secs,
		    (double)p->tries / 1e6);
	fflush(stderr);
	sh->open = !p->done;
	sh->last = p->secs;
}

static void
show_note(const char *msg, void *arg)
{
	struct shown *sh = arg;

	if (sh->open)
		fputc('\n', stderr);
	sh->open = 0;
	warnx_("%s", msg);
}

/* Send one file ("-" is stdin); report and return its exit code. */
static int
send_one(struct remote *r, const struct identity *id,
    const struct send_consent *c, const char *file)
{
	struct shown *sh = c->arg;
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
	rc = send_message(r, id, fd, c, mid, sizeof(mid), &err);
	close(fd);
	if (sh->open)
		fputc('\n', stderr);
	sh->open = 0;
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
	struct send_consent consent;
	struct shown shown = { 0, 0 };
	int rc, i, worst = SMIMP_EXIT_OK, one;

	smimp_err_clear(&err);
	if (cmd_start("smimp-send") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	src.file = o.passphrase_file;
	src.allow_prompt = isatty(0) && o.nfiles > 0;
	if (identity_load_for(&id, o.identity, &src, IDENTITY_LOG_NEED,
	    IDACT_SEND, &err) != 0)
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
	/* Progress only on a terminal; notes wherever stderr goes. */
	consent.max_work = o.max_work;
	consent.progress = isatty(STDERR_FILENO) ? show_progress : NULL;
	consent.note = show_note;
	consent.arg = &shown;
	/* Every message is tried; the exit code is the worst seen. */
	for (i = 0; i < o.nfiles; i++) {
		one = send_one(r, &id, &consent, o.files[i]);
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
