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
 * --receipts waits, after sending, for every recipient domain's signed
 * receipt; --status ID says where a message sent earlier is.  Either
 * checks each receipt under its domain's server key, not on the home
 * server's word.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "outbox.h"
#include "remote.h"
#include "send.h"
#include "status.h"
#include "cmd.h"
#include "banned.h"

enum send_mode { MODE_SEND, MODE_QUEUE, MODE_FLUSH, MODE_LIST, MODE_STATUS };

struct send_opts {
	const char *identity;
	const char *passphrase_file;
	struct clientconf conf;
	unsigned int max_work;
	enum send_mode mode;
	const char *mode_name;	/* the option that set mode */
	int verbose, quiet;
	int receipts;		/* wait for them */
	unsigned int timeout;	/* that long at most */
	const char *status;	/* a message id to ask after */
	int json;
	char **files;
	int nfiles;
};

#define RECEIPTS_TIMEOUT_DEFAULT	300
#define RECEIPTS_TIMEOUT_MAX		(7 * 24 * 3600)

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-send [-i IDENTITY] [--resolve DOMAIN=HOST:PORT] "
	    "[--cacert FILE]\n"
	    "                  [--allow-http DOMAIN] [--passphrase-file FILE]\n"
	    "                  [--max-work SECONDS] [--queue] [-q]\n"
	    "                  [--receipts [--timeout SECONDS]] [--json] "
	    "[FILE ...]\n"
	    "       smimp-send [-i IDENTITY] [--resolve DOMAIN=HOST:PORT] "
	    "[--cacert FILE]\n"
	    "                  [--allow-http DOMAIN] [--passphrase-file FILE]\n"
	    "                  --status ID [--json]\n"
	    "       smimp-send --flush [-v | -q] [--resolve DOMAIN=HOST:PORT]\n"
	    "                  [--cacert FILE] [--allow-http DOMAIN]\n"
	    "                  [--passphrase-file FILE] [--max-work SECONDS]\n"
	    "       smimp-send --list-queue\n");
}

/* --queue, --flush, --list-queue, --status: one of them at most. */
static int
set_mode(struct send_opts *o, enum send_mode m, const char *name)
{
	if (o->mode != MODE_SEND && o->mode != m)
		return usage_error("%s and %s exclude each other",
		    o->mode_name, name);
	o->mode = m;
	o->mode_name = name;
	return 0;
}

/* What goes with what, once every option is read. */
static int
check_mode(const struct send_opts *o)
{
	if (o->mode == MODE_FLUSH || o->mode == MODE_LIST) {
		if (o->nfiles > 0)
			return usage_error("unexpected argument '%s': %s takes "
			    "no file", o->files[0], o->mode_name);
		if (o->identity != NULL)
			return usage_error("%s: each message goes with the "
			    "key it was queued with, -i is not for it",
			    o->mode_name);
	}
	/* A queued message has no receipt yet to wait for. */
	if (o->receipts && o->mode != MODE_SEND)
		return usage_error("--receipts and %s exclude each other",
		    o->mode_name);
	if (o->verbose && o->mode != MODE_FLUSH)
		return usage_error("-v goes with --flush");
	if (o->quiet && o->verbose)
		return usage_error("-q and -v exclude each other");
	if (o->quiet && o->mode != MODE_FLUSH && o->mode != MODE_QUEUE)
		return usage_error("-q goes with --queue or --flush");
	return 0;
}

/* What goes together for receipts: checked once all are read. */
static int
check_args(const struct send_opts *o, int timeout_given)
{
	if (o->status != NULL && !message_id_valid(o->status))
		return usage_error("--status takes a message id, not '%s'",
		    o->status);
	if (o->status != NULL && (o->nfiles > 0 || o->receipts))
		return usage_error("--status asks after a message sent "
		    "before: no FILE, no --receipts");
	if (timeout_given && !o->receipts)
		return usage_error("--timeout is for --receipts");
	if (o->json && !o->receipts && o->status == NULL)
		return usage_error("--json is for --receipts and --status");
	return 0;
}

static int
parse_args(int argc, char **argv, struct send_opts *o)
{
	enum { OPT_PASSFILE = 256, OPT_VERSION, OPT_MAX_WORK, OPT_QUEUE,
		OPT_FLUSH, OPT_LIST, OPT_RECEIPTS, OPT_TIMEOUT, OPT_STATUS,
		OPT_JSON };
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
		{ "receipts", no_argument, NULL, OPT_RECEIPTS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "i:vqh";
	uint64_t secs;
	int c, timeout_given = 0, rc = 0;

	memset(o, 0, sizeof(*o));
	o->max_work = SEND_MAX_WORK_DEFAULT;
	o->timeout = RECEIPTS_TIMEOUT_DEFAULT;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
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
		case OPT_RECEIPTS: o->receipts = 1; break;
		case OPT_TIMEOUT:
			if (parse_u64(optarg, strlen(optarg), &secs) != 0 ||
			    secs < 1 || secs > RECEIPTS_TIMEOUT_MAX)
				return usage_error("--timeout takes 1 to %d "
				    "seconds, not '%s'", RECEIPTS_TIMEOUT_MAX,
				    optarg);
			o->timeout = (unsigned int)secs;
			timeout_given = 1;
			break;
		case OPT_STATUS:
			o->status = optarg;
			rc = set_mode(o, MODE_STATUS, "--status");
			break;
		case OPT_JSON: o->json = 1; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
		if (rc != 0)
			return rc;
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	rc = check_args(o, timeout_given);
	if (rc == 0)
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
    const char *file, struct send_result *res)
{
	struct shown *sh = c->arg;
	struct smimp_err err;
	char why[SMIMP_ERR_MSG];
	int fd, rc, queued = 0;

	smimp_err_clear(&err);
	if (strcmp(file, "-") != 0)
		fd = file_open_input(file, &err);
	else if ((fd = dup(STDIN_FILENO)) < 0)
		smimp_err_sys(&err, SMIMP_EXIT_FAIL, "cannot read the "
		    "standard input");
	if (fd < 0)
		return report(&err);
	if (o->mode == MODE_QUEUE)
		rc = outbox_send(r, id, fd, NULL, c, res->message_id,
		    sizeof(res->message_id), &queued, why, &err);
	else
		rc = send_message(r, id, fd, c, res, &err);
	close(fd);
	if (sh->open)
		fputc('\n', stderr);
	sh->open = 0;
	if (rc != 0)
		return report(&err);
	if (queued && !o->quiet)
		warnx_("%s queued in the outbox (smimp-send --flush sends it): "
		    "%s", res->message_id, why);
	/* With --json the ids come in the JSON. */
	if (o->json)
		return SMIMP_EXIT_OK;
	/* At once, for a script that reads ids as they come. */
	printf("%s\n", res->message_id);
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

/* The worse of two exit codes: a forgery, a failure, a wait. */
static int
worse(int a, int b)
{
	static const int order[] = { SMIMP_EXIT_OK, SMIMP_EXIT_TEMPFAIL,
	    SMIMP_EXIT_FAIL, SMIMP_EXIT_BADMSG };
	int ia = 0, ib = 0, i;

	for (i = 0; i < 4; i++) {
		ia = order[i] == a ? i : ia;
		ib = order[i] == b ? i : ib;
	}
	return ia >= ib ? a : b;
}

static const char *const state_words[] = { "missing", "queued", "delivered",
    "bounced" };
static const char *const check_words[] = { "none", "verified", "failed",
    "unreachable" };

/* What a delivered domain's receipt came to, in words. */
static void
receipt_words(const struct status_domain *d, char *out, size_t cap)
{
	char why[VIS_OUT_MAX(SMIMP_ERR_MSG)];

	vis_line(d->why, why, sizeof(why));
	switch (d->check) {
	case CHECK_VERIFIED:
		(void)snprintf(out, cap, "receipt verified");
		break;
	case CHECK_FAILED:
		(void)snprintf(out, cap, "receipt refused: %s", why);
		break;
	case CHECK_UNREACHABLE:
		(void)snprintf(out, cap, "receipt not checked: %s", why);
		break;
	default:
		(void)snprintf(out, cap, "no receipt");
	}
}

/* One domain's line; what others wrote made safe for a terminal. */
static void
print_domain(const struct status_domain *d)
{
	char rcpts[VIS_OUT_MAX(RECEIPT_LIST_MAX)];
	char text[VIS_OUT_MAX(STATUS_TEXT_MAX)];
	char words[VIS_OUT_MAX(SMIMP_ERR_MSG) + 64];

	vis_line(d->recipients, rcpts, sizeof(rcpts));
	vis_line(d->text, text, sizeof(text));
	if (d->state == STATUS_DELIVERED) {
		receipt_words(d, words, sizeof(words));
		printf("  %s: delivered to %s at %s; %s\n", d->domain, rcpts,
		    d->date, words);
	} else if (d->state == STATUS_QUEUED) {
		printf("  %s: queued for %s since %s, %u attempt%s, next at "
		    "%s%s%s%s\n", d->domain, rcpts, d->date, d->attempts,
		    d->attempts == 1 ? "" : "s", d->next_try,
		    d->held ? " (held)" : "", text[0] != '\0' ? "; last: " :
		    "", text);
	} else {
		printf("  %s: bounced for %s at %s: %s\n", d->domain, rcpts,
		    d->date, text);
	}
}

static json_t *
domain_json(const struct status_domain *d)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "domain", d->domain,
	    "state", state_words[d->state], "recipients", d->recipients,
	    "date", d->date);

	if (o == NULL)
		return NULL;
	if (d->state == STATUS_QUEUED) {
		(void)json_object_set_new(o, "attempts",
		    json_integer(d->attempts));
		(void)json_object_set_new(o, "next_try",
		    json_string(d->next_try));
		(void)json_object_set_new(o, "held", json_boolean(d->held));
	}
	if (d->state != STATUS_DELIVERED) {
		(void)json_object_set_new(o, d->state == STATUS_QUEUED ?
		    "error" : "reason", json_text(d->text));
		return o;
	}
	(void)json_object_set_new(o, "receipt", d->receipt != NULL ?
	    json_string(d->receipt) : json_null());
	(void)json_object_set_new(o, "check",
	    json_string(check_words[d->check]));
	if (d->check == CHECK_FAILED || d->check == CHECK_UNREACHABLE)
		(void)json_object_set_new(o, "why", json_text(d->why));
	return o;
}

/* A message's status on standard output: lines, or one JSON object. */
static int
print_status(const struct msg_status *st, int final, int json)
{
	json_t *list, *o;
	char *text;
	size_t i;

	if (!json) {
		printf("%s\n", st->message_id);
		for (i = 0; i < st->n; i++)
			print_domain(&st->d[i]);
		return stdout_check();
	}
	list = json_array();
	for (i = 0; list != NULL && i < st->n; i++)
		if (json_array_append_new(list, domain_json(&st->d[i])) != 0) {
			json_decref(list);
			list = NULL;
		}
	o = list != NULL ? json_pack("{s:s,s:b,s:o}", "message_id",
	    st->message_id, "final", final, "domains", list) : NULL;
	text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) :
	    NULL;
	json_decref(o);
	if (text == NULL) {
		warnx_("out of memory");
		return -1;
	}
	printf("%s\n", text);
	free(text);
	return stdout_check();
}

/*
 * What st says of each domain that is not as hoped, on standard error,
 * and the exit code: a receipt that does not verify 3; with waiting
 * (to: the message's recipients), a bounce or a domain that took the
 * message without a receipt 1, a domain still to answer 75.
 */
static int
judge(const struct msg_status *st, const char *to, unsigned int timeout)
{
	char pend[STATUS_DOMAINS_MAX][ADDRESS_DOMAIN_MAX + 1];
	const char *mid = st->message_id;
	int rc = SMIMP_EXIT_OK;
	size_t i, n;

	for (i = 0; i < st->n; i++) {
		const struct status_domain *d = &st->d[i];

		if (d->check == CHECK_FAILED) {
			warnx_("%s: the receipt of %s does not verify: %s", mid,
			    d->domain, d->why);
			rc = worse(rc, SMIMP_EXIT_BADMSG);
		} else if (d->check == CHECK_UNREACHABLE) {
			warnx_("%s: the receipt of %s could not be checked: "
			    "%s", mid, d->domain, d->why);
			rc = worse(rc, SMIMP_EXIT_TEMPFAIL);
		} else if (to != NULL && d->state == STATUS_BOUNCED) {
			warnx_("%s: bounced by %s: %s", mid, d->domain,
			    d->text);
			rc = worse(rc, SMIMP_EXIT_FAIL);
		} else if (to != NULL && d->state == STATUS_DELIVERED &&
		    d->check == CHECK_NONE) {
			warnx_("%s: %s took it and signed no receipt", mid,
			    d->domain);
			rc = worse(rc, SMIMP_EXIT_FAIL);
		}
	}
	n = to != NULL ? status_pending(st, to, pend, STATUS_DOMAINS_MAX) : 0;
	for (i = 0; i < n && i < STATUS_DOMAINS_MAX; i++)
		warnx_("%s: no receipt from %s within %u s", mid, pend[i],
		    timeout);
	return n > 0 ? worse(rc, SMIMP_EXIT_TEMPFAIL) : rc;
}

/* --status ID: where a message sent before is, its receipts checked. */
static int
ask_status(struct remote *r, const struct identity *id,
    const struct send_opts *o)
{
	struct msg_status st;
	struct smimp_err err;
	size_t i;
	int rc;

	smimp_err_clear(&err);
	if (status_fetch(r, id, o->status, &st, &err) != 0)
		return report(&err);
	status_verify(r, id, &st, NULL, NULL);
	/* Final once no domain's entry waits in the queue. */
	for (i = 0; i < st.n && st.d[i].state != STATUS_QUEUED; i++)
		;
	rc = print_status(&st, i == st.n, o->json) != 0 ? SMIMP_EXIT_FAIL :
	    judge(&st, NULL, 0);
	msg_status_release(&st);
	return rc;
}

/* --receipts: wait for the messages sent, then say what came. */
static int
wait_receipts(struct remote *r, const struct identity *id,
    const struct send_opts *o, struct send_result *sent, size_t n)
{
	struct status_wait *w = calloc(n, sizeof(*w));
	struct smimp_err err;
	int rc = SMIMP_EXIT_OK;
	size_t i;

	if (w == NULL) {
		warnx_("out of memory");
		return SMIMP_EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		w[i].message_id = sent[i].message_id;
		memcpy(w[i].hash, sent[i].hash, 32);
		w[i].to = sent[i].to;
	}
	smimp_err_clear(&err);
	if (status_wait(r, id, w, n, o->timeout, &err) < 0)
		rc = report(&err);
	for (i = 0; i < n; i++) {
		if (w[i].st.n > 0 && print_status(&w[i].st, w[i].final,
		    o->json) != 0)
			rc = worse(rc, SMIMP_EXIT_FAIL);
		rc = worse(rc, judge(&w[i].st, w[i].to, o->timeout));
		msg_status_release(&w[i].st);
	}
	free(w);
	return rc;
}

/* Send each file, then wait for the receipts when asked to. */
static int
send_all(struct remote *r, const struct identity *id,
    const struct send_opts *o, const struct send_consent *c)
{
	struct send_result *sent = calloc((size_t)o->nfiles, sizeof(*sent));
	int i, one, worst = SMIMP_EXIT_OK;
	size_t n = 0;

	if (sent == NULL) {
		warnx_("out of memory");
		return SMIMP_EXIT_FAIL;
	}
	/* Every message is tried; the exit code is the worst seen. */
	for (i = 0; i < o->nfiles; i++) {
		one = send_one(r, id, c, o, o->files[i], &sent[n]);
		if (one == SMIMP_EXIT_OK)
			n++;
		else if (worst == SMIMP_EXIT_OK || one != SMIMP_EXIT_TEMPFAIL)
			worst = one;
	}
	if (o->receipts && n > 0) {
		one = wait_receipts(r, id, o, sent, n);
		if (worst == SMIMP_EXIT_OK)
			worst = one;
	}
	free(sent);
	return worst;
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
	int rc;

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
	src.allow_prompt = isatty(0) && (o.nfiles > 0 || o.status != NULL);
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
	rc = o.status != NULL ? ask_status(r, &id, &o) :
	    send_all(r, &id, &o, &consent);
	remote_free(r);
	identity_release(&id);
	return rc;
}

int
main(int argc, char **argv)
{
	return cmd_exit(send_main(argc, argv));
}
