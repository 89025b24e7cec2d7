/*
 * smimp-sendmail - the sendmail interface, for what already sends mail
 * that way (cron, mailx, git send-email, CI scripts): an RFC 5322
 * message on standard input, sealed to each recipient (looked up and
 * pinned as smimp-seal does) and sent by the sender's home server.
 * When that server cannot take it now, the sealed message waits in the
 * outbox (lib/outbox.h) and smimp-sendmail exits 0 once it is on disk:
 * smimp-send --flush sends it later.  Any other failure exits non-zero
 * with one line that says what became of the message.  As smimp-seal
 * does, it takes a one-time prekey for each key of each recipient whose
 * server hands them out (forward secrecy), unless --no-prekeys.
 *
 *	printf 'To: ops@example.net\nSubject: disk full\n\n%s\n' "$(df -h)" |
 *	    smimp-sendmail -t
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "mailmsg.h"
#include "message.h"
#include "outbox.h"
#include "outfile.h"
#include "parts.h"
#include "prekeys.h"
#include "remote.h"
#include "cmd.h"
#include "recipients.h"
#include "banned.h"

struct sendmail_opts {
	const char *identity;
	const char *passphrase_file;
	const char *from;		/* -f: checked, never believed */
	struct clientconf conf;
	unsigned int max_work;
	int from_headers;		/* -t */
	int dot_ends;			/* no -i: a lone dot ends the input */
	int no_prekeys;			/* --no-prekeys */
	struct rfc5322_addrs args;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-sendmail [-t] [-i] [-oi] [-f FROM] [-F NAME] "
	    "[--identity KEY]\n"
	    "                      [--resolve DOMAIN=HOST:PORT] [--cacert "
	    "FILE] [--allow-http DOMAIN]\n"
	    "                      [--passphrase-file FILE] [--max-work "
	    "SECONDS] [--no-prekeys]\n"
	    "                      [RECIPIENT ...]\n");
}

/*
 * sendmail's other flags that callers pass: -o (-oi is -i; -oem, -odi
 * and the rest change nothing here), -B (8BITMIME: any body is read),
 * the DSN requests -N, -R and -V (smimp's bounces and receipts say what
 * became of a message), -v, -U, -G, -n, -m, -L and -X, which change
 * nothing either; -b with m only (deliver a message; no daemon, no
 * queue listing) and no -q (no queue runner).
 */
static int
sendmail_flag(int c, const char *arg, struct sendmail_opts *o)
{
	switch (c) {
	case 'o':
		if (strcmp(arg, "i") == 0)
			o->dot_ends = 0;
		return 0;
	case 'B': case 'N': case 'R': case 'V': case 'L': case 'X':
	case 'v': case 'U': case 'G': case 'n': case 'm':
		return 0;
	case 'q':
		return usage_error("-q%s: smimp-sendmail runs no queue; the "
		    "outbox is smimp-send's (--flush, --list-queue)",
		    arg != NULL ? arg : "");
	case 'b':
		if (strcmp(arg, "m") == 0)
			return 0;
		return usage_error("-b%s: smimp-sendmail only delivers a "
		    "message (-bm); the outbox is smimp-send's (--flush, "
		    "--list-queue)", arg);
	default:
		return -1;
	}
}

static int
parse_args(int argc, char **argv, struct sendmail_opts *o)
{
	enum { OPT_IDENTITY = 256, OPT_PASSFILE, OPT_MAX_WORK, OPT_NO_PREKEYS,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, OPT_IDENTITY },
		REMOTE_LONGOPTS,
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "max-work", required_argument, NULL, OPT_MAX_WORK },
		{ "no-prekeys", no_argument, NULL, OPT_NO_PREKEYS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] =
	    "tio:f:r:F:B:b:hN:R:V:L:X:vUGnmq::";
	struct smimp_err err;
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->max_work = SEND_MAX_WORK_DEFAULT;
	o->dot_ends = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts,
	    NULL)) != -1) {
		switch (c) {
		case 't': o->from_headers = 1; break;
		case 'i': o->dot_ends = 0; break;
		case 'f':
		case 'r': o->from = optarg; break;
		case 'F': break;	/* an envelope has no display name */
		case OPT_IDENTITY: o->identity = optarg; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_NO_PREKEYS: o->no_prekeys = 1; break;
		case OPT_MAX_WORK:
			if (send_max_work_parse(optarg, &o->max_work) != 0)
				return usage_error("--max-work takes 1 to %d "
				    "seconds, not '%s'", SEND_MAX_WORK_MAX,
				    optarg);
			break;
		case 'h':
			/*
			 * sendmail's -h N is a hop count: with a message
			 * waiting, the usage and exit 0 would lose it.
			 */
			if (argc > 2)
				return usage_error("-h (--help) goes alone; "
				    "sendmail's hop count (-h N) is not "
				    "taken");
			usage(stdout);
			exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			rc = sendmail_flag(c, optarg, o);
			if (rc >= 0) {
				if (rc != 0)
					return rc;
				break;
			}
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
	}
	smimp_err_clear(&err);
	for (; optind < argc; optind++)
		if (rfc5322_addresses(argv[optind], "recipient", &o->args,
		    &err) != 0)
			return usage_error("%s", err.msg);
	if (o->args.n == 0 && !o->from_headers)
		return usage_error("no recipient: name them, or take them from "
		    "the message with -t");
	return remote_options_finish(&o->conf);
}

/*
 * Each part that is not the body (an HTML alternative too): spooled,
 * and sealed as one of the envelope's parts (lib/parts.h), in order.
 */
static int
add_attachment(void *arg, const char *name, const char *type,
    const unsigned char *data, size_t len, struct smimp_err *err)
{
	struct parts_list *parts = arg;
	int fd;

	if (parts->n == PART_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "more than %d "
		    "attachments: nothing was sent", PART_MAX);
	fd = spool_open(err);
	if (fd < 0)
		return -1;
	if (fd_write_all(fd, data, len) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool the "
		    "attachment '%s'", name);
	}
	return parts_add_fd(parts, fd, name, type, err);
}

/* Every part from its start, for the next copy sealed. */
static int
parts_rewind(const struct parts_list *parts, struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < parts->n; i++)
		if (lseek(parts->p[i].fd, 0, SEEK_SET) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot "
			    "read the attachment '%s'", parts->p[i].name);
	return 0;
}

/* -f names the sender; the key does, and -f is only compared. */
static void
check_from(const char *from, const struct identity *id)
{
	char norm[ADDRESS_MAX + 1];
	struct smimp_err err;

	smimp_err_clear(&err);
	if (from == NULL || from[0] == '\0' || strcmp(from, "<>") == 0)
		return;
	if (address_normalize(from, norm, &err) == 0 &&
	    strcmp(norm, id->sk.address) == 0)
		return;
	warnx_("warning: -f %s ignored: the message goes from %s, whose key "
	    "signs it", from, id->sk.address);
}

/* The body into a private spool, read from its start by each seal. */
static int
body_spool(const struct mailmsg *m, struct smimp_err *err)
{
	int fd = spool_open(err);

	if (fd < 0)
		return -1;
	if (fd_write_all(fd, m->body.buf, m->body.len) != 0) {
		close(fd);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool the "
		    "message");
	}
	return fd;
}

/* What sealing and sending every copy needs. */
struct sending {
	const struct sendmail_opts *o;
	struct identity id;
	struct mailmsg m;
	struct msg_recipient *rcpts;	/* to, cc, then the blind copies */
	size_t nshown;			/* to and cc */
	struct remote *r;
	struct send_consent consent;
	int body;			/* the body's spool */
	struct parts_list parts;	/* the other parts, spooled */
	/* Each recipient's one-time prekeys: rcpts[i] points into them. */
	struct prekeys_claim claims[MSG_MAX_RECIPIENTS];
	size_t nclaims;
	char thread[256];		/* the first copy's id */
};

/*
 * Seal the body to rcpts[0..n) and send it to only (NULL: all of
 * them), or queue it; say so.  Its exit code.
 */
static int
send_copy(struct sending *s, const struct msg_recipient *rcpts, size_t n,
    const char *only)
{
	char mid[256], why[SMIMP_ERR_MSG];
	struct seal_params p;
	struct smimp_err err;
	int out, queued, rc = -1;

	smimp_err_clear(&err);
	memset(&p, 0, sizeof(p));
	p.sender = &s->id.sk;
	p.sender_log = &s->id.log;
	p.rcpts = rcpts;
	p.nrcpts = n;
	p.type = "email";
	p.subject = s->m.has_subject ? s->m.subject : NULL;
	p.thread_id = s->thread[0] != '\0' ? s->thread : NULL;
	p.in_reply_to = s->m.in_reply_to[0] != '\0' ? s->m.in_reply_to : NULL;
	p.parts = s->parts.p;
	p.nparts = s->parts.n;
	out = spool_open(&err);
	if (out < 0)
		return report(&err);
	if (parts_rewind(&s->parts, &err) != 0 ||
	    lseek(s->body, 0, SEEK_SET) != 0 ||
	    message_seal(&p, s->body, out, mid, sizeof(mid), &err) != 0 ||
	    lseek(out, 0, SEEK_SET) != 0)
		goto out;
	if (s->thread[0] == '\0')
		(void)snprintf(s->thread, sizeof(s->thread), "%s", mid);
	rc = outbox_send(s->r, &s->id, out, only, &s->consent, mid,
	    sizeof(mid), &queued, why, &err);
	if (rc == 0 && queued)
		warnx_("%s queued in the outbox (smimp-send --flush sends it): "
		    "%s", mid, why);
out:
	close(out);
	if (rc == 0)
		return SMIMP_EXIT_OK;
	if (err.msg[0] == '\0')
		smimp_err_sys(&err, SMIMP_EXIT_FAIL, "cannot seal the message");
	if (only != NULL)
		warnx_("the copy for %s: %s", only, err.msg);
	else
		say(err.msg, "");
	return err.code != 0 ? err.code : SMIMP_EXIT_FAIL;
}

/* The copy for those shown, then one for each blind copy. */
static int
send_all(struct sending *s)
{
	size_t nb = s->m.bcc.n, i;
	int worst = SMIMP_EXIT_OK, one;

	if (s->nshown > 0)
		worst = send_copy(s, s->rcpts, s->nshown, NULL);
	/* The others' copy not gone: no blind copy goes without it. */
	if (worst != SMIMP_EXIT_OK && nb > 0) {
		warnx_("the blind cop%s for %s%s not sent either",
		    nb == 1 ? "y" : "ies", s->m.bcc.a[0],
		    nb == 1 ? " was" : " and the others were");
		return worst;
	}
	for (i = 0; i < nb; i++) {
		/* Its envelope shows the others, and it, in cc. */
		s->rcpts[s->nshown] = s->rcpts[s->nshown + i];
		s->rcpts[s->nshown].cc = s->nshown > 0;
		one = send_copy(s, s->rcpts, s->nshown + 1,
		    s->m.bcc.a[i]);
		if (one != SMIMP_EXIT_OK && (worst == SMIMP_EXIT_OK ||
		    one != SMIMP_EXIT_TEMPFAIL))
			worst = one;
	}
	return worst;
}

/* Look every recipient up: to, cc, then the blind copies. */
static int
resolve(struct sending *s, size_t *pinned, struct smimp_err *err)
{
	static const char *args[MSG_MAX_RECIPIENTS];
	static int as_file[MSG_MAX_RECIPIENTS];	/* addresses all */
	const struct rfc5322_addrs *l[3] = { &s->m.to, &s->m.cc, &s->m.bcc };
	struct lookup_session ls;
	size_t n = 0, i, k;
	int ret;

	if (s->m.to.n + s->m.cc.n + s->m.bcc.n > MSG_MAX_RECIPIENTS)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "more than %d "
		    "recipients", MSG_MAX_RECIPIENTS);
	for (k = 0; k < 3; k++)
		for (i = 0; i < l[k]->n; i++)
			args[n++] = l[k]->a[i];
	s->nshown = s->m.to.n + s->m.cc.n;
	lookup_session_init(&ls);
	ret = own_log_due(&s->id, &ls, err);
	if (ret == 0)
		ret = resolve_recipients(args, as_file, n, &s->id, &ls,
		    s->rcpts, pinned, err);
	/*
	 * A blind copy seals to those shown too, with their prekeys; only
	 * its blind recipient receives it, so that each recipient is sent
	 * one message sealed to its prekey.
	 */
	if (ret == 0 && !s->o->no_prekeys) {
		s->nclaims = n;		/* released at the end, taken or not */
		ret = take_prekeys(&s->id, &ls, s->rcpts, as_file, n,
		    s->claims, err);
	}
	lookup_session_release(&ls);
	if (ret != 0)
		return -1;
	for (i = s->m.to.n; i < s->nshown; i++)
		s->rcpts[i].cc = 1;
	return 0;
}

/* Read, parse, load the key, look the recipients up. */
static int
prepare(struct sending *s, const struct passphrase_source *src,
    size_t *pinned, struct smimp_err *err)
{
	struct mime_sink sink = { add_attachment, &s->parts };
	struct mailmsg_opts mo = { s->o->from_headers, &s->o->args, &sink };
	char *raw = NULL;
	size_t len;
	int ret = -1;

	if (rfc5322_read(STDIN_FILENO, s->o->dot_ends, MAILMSG_MAX_INPUT, &raw,
	    &len, err) != 0)
		return -1;
	if (mailmsg_parse(raw, len, &mo, &s->m, err) != 0 ||
	    identity_load_for(&s->id, s->o->identity, src, IDENTITY_LOG_NEED,
	    IDACT_SEAL, err) != 0)
		goto out;
	if (identity_may(&s->id, NULL, IDACT_SEND, err) != 0)
		goto out;
	check_from(s->o->from, &s->id);
	if (resolve(s, pinned, err) != 0)
		goto out;
	/* A reply is in the thread it answers: every copy of it. */
	(void)snprintf(s->thread, sizeof(s->thread), "%s", s->m.thread_id);
	s->body = body_spool(&s->m, err);
	if (s->body < 0)
		goto out;
	s->r = remote_new(&s->o->conf.remote, err);
	ret = s->r != NULL ? 0 : -1;
out:
	free(raw);
	return ret;
}

static int
sendmail_main(int argc, char **argv)
{
	static struct msg_recipient rcpts[MSG_MAX_RECIPIENTS + 1];
	static struct sending s;
	struct passphrase_source src;
	struct sendmail_opts o;
	struct smimp_err err;
	size_t pinned = 0;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-sendmail") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	/* The message is on standard input: never a prompt there. */
	src.file = o.passphrase_file;
	src.allow_prompt = 0;
	s.o = &o;
	s.rcpts = rcpts;
	s.body = -1;
	parts_list_init(&s.parts);
	s.consent.max_work = o.max_work;
	if (prepare(&s, &src, &pinned, &err) != 0) {
		rc = report(&err);
		goto out;
	}
	rc = send_all(&s);
	if (pinned > 0)
		republish(&s.id, &src);
out:
	remote_free(s.r);
	if (s.body >= 0)
		close(s.body);
	parts_list_release(&s.parts);
	for (size_t i = 0; i < s.nclaims; i++)
		prekeys_claim_release(&s.claims[i]);
	mailmsg_release(&s.m);
	identity_release(&s.id);
	rfc5322_addrs_release(&o.args);
	return rc;
}

int
main(int argc, char **argv)
{
	return cmd_exit(sendmail_main(argc, argv));
}
