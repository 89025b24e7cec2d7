/*
 * smimp-send - hand sealed messages to the sender's home server over
 * HTTPS.  The recipients and message id are read back from each message
 * (its sender can open it), so nobody names recipients twice:
 *	smimp-seal -r bob@example.net -s "build 42" < log | smimp-send
 * Prints each message id on success.  A recipient whose policy asks
 * strangers for a proof of work gets one, computed here before the
 * message goes (--max-work caps the time), with progress on a terminal.
 * With --queue, a message the home server cannot take now waits in the
 * outbox (lib/outbox.h), which --flush delivers and --list-queue shows.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "identity.h"
#include "outbox.h"
#include "remote.h"
#include "send.h"
#include "cmd.h"
#include "banned.h"

enum send_mode { MODE_SEND, MODE_QUEUE, MODE_FLUSH, MODE_LIST };

struct send_opts {
	const char *identity;
	const char *passphrase_file;
	struct clientconf conf;
	unsigned int max_work;
	enum send_mode mode;
	int verbose, quiet;
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
	    "                  [--queue] [-q] [FILE ...]\n"
	    "       smimp-send --flush [-v | -q] [--resolve DOMAIN=HOST:PORT] "
	    "[--cacert FILE]\n"
	    "                  [--allow-http DOMAIN] [--passphrase-file FILE] "
	    "[--max-work SECONDS]\n"
	    "       smimp-send --list-queue\n");
}

/* --queue, --flush, --list-queue: one of them at most. */
static int
set_mode(struct send_opts *o, enum send_mode m, const char *name)
{
	static const char *given;

	if (o->mode != MODE_SEND && o->mode != m)
		return usage_error("%s and %s exclude each other", given, name);
	o->mode = m;
	given = name;
	return 0;
}

/* What goes with what, once every option is read. */
static int
check_mode(const struct send_opts *o)
{
	if (o->mode == MODE_FLUSH || o->mode == MODE_LIST) {
		if (o->nfiles > 0)
			return usage_error("unexpected argument '%s': %s takes "
			    "no file", o->files[0], o->mode == MODE_FLUSH ?
			    "--flush" : "--list-queue");
		if (o->identity != NULL)
			return usage_error("%s: each message goes with the "
			    "key it was queued with, -i is not for it",
			    o->mode == MODE_FLUSH ? "--flush" : "--list-queue");
	}
	if (o->verbose && o->mode != MODE_FLUSH)
		return usage_error("-v goes with --flush");
	if (o->quiet && o->verbose)
		return usage_error("-q and -v exclude each other");
	if (o->quiet && o->mode != MODE_FLUSH && o->mode != MODE_QUEUE)
		return usage_error("-q goes with --queue or --flush");
	return 0;
}

static int
parse_args(int argc, char **argv, struct send_opts *o)
{
	enum { OPT_PASSFILE = 256, OPT_VERSION, OPT_MAX_WORK, OPT_QUEUE,
		OPT_FLUSH, OPT_LIST };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		REMOTE_LONGOPTS,
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "max-work", required_argument, NULL, OPT_MAX_WORK },
		{ "queue", no_argument, NULL, OPT_QUEUE },
		{ "flush", no_argument, NULL, OPT_FLUSH },
		{ "list-queue", no_argument, NULL, OPT_LIST },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc = 0;

	memset(o, 0, sizeof(*o));
	o->max_work = SEND_MAX_WORK_DEFAULT;
	while ((c = getopt_long(argc, argv, "i:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'v': o->verbose = 1; break;
		case 'q': o->quiet = 1; break;
		case OPT_QUEUE: rc = set_mode(o, MODE_QUEUE, "--queue"); break;
		case OPT_FLUSH: rc = set_mode(o, MODE_FLUSH, "--flush"); break;
		case OPT_LIST:
			rc = set_mode(o, MODE_LIST, "--list-queue");
			break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_MAX_WORK:
			if (send_max_work_parse(optarg, &o->max_work) != 0)
				return usage_error("--max-work takes 1 to %d "
				    "seconds, not '%s'", SEND_MAX_WORK_MAX,
				    optarg);
			break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			usage(stderr);
			return SMIMP_EXIT_USAGE;
		}
		if (rc != 0)
			return rc;
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	rc = check_mode(o);
	return rc != 0 ? rc : remote_options_finish(&o->conf);
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

/*
 * Send one file ("-" is stdin), or with --queue queue it when the home
 * server cannot take it now; report and return its exit code.
 */
static int
send_one(struct remote *r, const struct identity *id,
    const struct send_consent *c, const struct send_opts *o,
    const char *file)
{
	struct shown *sh = c->arg;
	struct smimp_err err;
	char mid[256], why[SMIMP_ERR_MSG];
	int fd, rc, queued = 0;

	smimp_err_clear(&err);
	fd = strcmp(file, "-") == 0 ? dup(STDIN_FILENO) :
	    open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		smimp_err_sys(&err, SMIMP_EXIT_FAIL, "cannot open '%s'", file);
		return report(&err);
	}
	if (o->mode == MODE_QUEUE)
		rc = outbox_send(r, id, fd, NULL, c, mid, sizeof(mid), &queued,
		    why, &err);
	else
		rc = send_message(r, id, fd, c, mid, sizeof(mid), &err);
	close(fd);
	if (sh->open)
		fputc('\n', stderr);
	sh->open = 0;
	if (rc != 0)
		return report(&err);
	if (queued && !o->quiet)
		warnx_("%s queued in the outbox (smimp-send --flush sends it): "
		    "%s", mid, why);
	/* At once, for a script that reads ids as they come. */
	printf("%s\n", mid);
	return stdout_check() == 0 ? SMIMP_EXIT_OK : SMIMP_EXIT_FAIL;
}

/* What a flush tells, as it goes and at its end. */
struct flushed {
	const struct send_opts *o;
	char kept[SMIMP_ERR_MSG];	/* why the first one waits */
	char stuck[SMIMP_ERR_MSG];
};

static const char *
entry_label(const struct outbox_entry *e)
{
	return e->message_id[0] != '\0' ? e->message_id : e->name;
}

static void
flushed_one(void *arg, const struct outbox_entry *e, enum outbox_outcome oc,
    const char *why)
{
	struct flushed *fl = arg;
	char *first = oc == OUTBOX_KEPT ? fl->kept : fl->stuck;

	switch (oc) {
	case OUTBOX_SENT:
		if (fl->o->verbose) {
			printf("%s\n", e->message_id);
			(void)stdout_check();
		}
		return;
	case OUTBOX_REFUSED:
		warnx_("%s to %s: refused, moved to %s/%s/%s: %s",
		    entry_label(e), e->to[0] != '\0' ? e->to : "?",
		    OUTBOX_DIR, OUTBOX_FAILED, e->name, why);
		return;
	case OUTBOX_KEPT:
	case OUTBOX_STUCK:
		if (fl->o->verbose)
			warnx_("%s to %s: waits in the outbox: %s",
			    entry_label(e), e->to, why);
		if (first[0] == '\0')
			(void)snprintf(first, SMIMP_ERR_MSG, "%s", why);
		return;
	}
}

/* The end of a flush, said; its exit code. */
static int
flush_said(const struct flushed *fl, const struct outbox_totals *t)
{
	const struct send_opts *o = fl->o;

	if (t->busy) {
		if (!o->quiet)
			warnx_("another smimp-send --flush is running: it "
			    "delivers the outbox");
		return SMIMP_EXIT_OK;
	}
	if (t->kept > 0 && !o->quiet && !o->verbose)
		warnx_("%zu message%s wait%s in the outbox: %s", t->kept,
		    t->kept == 1 ? "" : "s", t->kept == 1 ? "s" : "", fl->kept);
	if (t->stuck > 0 && !o->verbose)
		warnx_("%zu message%s cannot be sent and wait%s in the outbox: "
		    "%s", t->stuck, t->stuck == 1 ? "" : "s",
		    t->stuck == 1 ? "s" : "", fl->stuck);
	if (o->verbose)
		warnx_("outbox: %zu sent, %zu waiting, %zu refused", t->sent,
		    t->kept + t->stuck, t->refused);
	if (t->refused > 0 || t->stuck > 0)
		return SMIMP_EXIT_FAIL;
	return t->kept > 0 ? SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_OK;
}

static int
flush_main(const struct send_opts *o, const struct send_consent *c)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct outbox_flush fo;
	struct outbox_totals t;
	struct flushed fl;
	struct smimp_err err;

	smimp_err_clear(&err);
	memset(&fl, 0, sizeof(fl));
	fl.o = o;
	fo.remote = &o->conf.remote;
	fo.src = &src;
	fo.consent = c;
	fo.each = flushed_one;
	fo.arg = &fl;
	if (outbox_flush_all(&fo, &t, &err) != 0) {
		(void)flush_said(&fl, &t);
		return report(&err);
	}
	return flush_said(&fl, &t);
}

/* One line for each entry, its path under SMIMP_HOME first. */
static void
listed(void *arg, const struct outbox_entry *e)
{
	static char line[16384], safe[VIS_OUT_MAX(16384)];

	(void)arg;
	if (e->message_id[0] == '\0')
		(void)snprintf(line, sizeof(line), "%s/%s%s: cannot be read: "
		    "%s", OUTBOX_DIR, e->failed ? OUTBOX_FAILED "/" : "",
		    e->name, e->reason);
	else
		(void)snprintf(line, sizeof(line), "%s/%s%s: %s to %s, "
		    "queued %s with %s: %s%s", OUTBOX_DIR, e->failed ?
		    OUTBOX_FAILED "/" : "", e->name, e->message_id, e->to,
		    e->queued, e->identity, e->failed ? "refused " : "",
		    e->reason);
	vis_line(line, safe, sizeof(safe));
	printf("%s\n", safe);
}

static int
list_main(void)
{
	struct smimp_err err;

	smimp_err_clear(&err);
	if (outbox_each(1, listed, NULL, &err) != 0)
		return report(&err);
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
	/* Progress only on a terminal; notes wherever stderr goes. */
	consent.max_work = o.max_work;
	consent.progress = isatty(STDERR_FILENO) ? show_progress : NULL;
	consent.note = show_note;
	consent.arg = &shown;
	if (o.mode == MODE_FLUSH)
		return flush_main(&o, &consent);
	if (o.mode == MODE_LIST)
		return list_main();
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
	/* Every message is tried; the exit code is the worst seen. */
	for (i = 0; i < o.nfiles; i++) {
		one = send_one(r, &id, &consent, &o, o.files[i]);
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
