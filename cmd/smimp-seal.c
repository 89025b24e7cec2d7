/*
 * smimp-seal - plaintext in, sealed message out: a signed envelope
 * encrypted to every recipient with age.  Streams any size in constant
 * memory.  The sender's identity log travels inside, so a recipient can
 * check the signature before trusting the sender.  A recipient looked
 * up and pinned on first use becomes known, so that their replies get
 * through; a consent policy published before is published again with
 * them in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "lookup.h"
#include "message.h"
#include "outfile.h"
#include "publish.h"
#include "trust.h"
#include "cmd.h"
#include "recipients.h"
#include "banned.h"

struct seal_opts {
	const char *identity;
	const char *rcpt_args[MSG_MAX_RECIPIENTS];
	int rcpt_cc[MSG_MAX_RECIPIENTS];
	int rcpt_file[MSG_MAX_RECIPIENTS];	/* -R, --cc-file */
	size_t nrcpts;
	const char *subject;
	const char *type;
	const char *content_type;
	const char *thread_id;
	const char *in_reply_to;
	const char *output;
	const char *input;
	const char *passphrase_file;
	const char *intro_files[INTRO_LIST_ENTRIES];	/* --introduction */
	size_t nintros;
	int armor;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-seal [-i IDENTITY] -r RECIPIENT | -R FILE [-r ...] "
	    "[-c RECIPIENT]\n"
	    "                  [--cc-file FILE] [-s SUBJECT] [-t TYPE] [-a] "
	    "[-o OUT]\n"
	    "                  [--content-type TYPE] [--thread ID] "
	    "[--in-reply-to ID]\n"
	    "                  [--introduction FILE] [--passphrase-file FILE] "
	    "[FILE]\n");
}

static int
add_rcpt(struct seal_opts *o, const char *arg, int cc, int file)
{
	if (o->nrcpts == MSG_MAX_RECIPIENTS)
		return usage_error("too many recipients (at most %d)",
		    MSG_MAX_RECIPIENTS);
	o->rcpt_args[o->nrcpts] = arg;
	o->rcpt_file[o->nrcpts] = file;
	o->rcpt_cc[o->nrcpts++] = cc;
	return 0;
}

static int
parse_args(int argc, char **argv, struct seal_opts *o)
{
	enum { OPT_CTYPE = 256, OPT_THREAD, OPT_REPLY, OPT_PASSFILE,
		OPT_CCFILE, OPT_INTRO, OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "recipient-file", required_argument, NULL, 'R' },
		{ "cc", required_argument, NULL, 'c' },
		{ "cc-file", required_argument, NULL, OPT_CCFILE },
		{ "subject", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "armor", no_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "content-type", required_argument, NULL, OPT_CTYPE },
		{ "thread", required_argument, NULL, OPT_THREAD },
		{ "in-reply-to", required_argument, NULL, OPT_REPLY },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "introduction", required_argument, NULL, OPT_INTRO },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->type = "email";
	while ((c = getopt_long(argc, argv, "i:r:R:c:s:t:ao:h", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'r':
		case 'R':
		case 'c':
		case OPT_CCFILE:
			rc = add_rcpt(o, optarg, c == 'c' || c == OPT_CCFILE,
			    c == 'R' || c == OPT_CCFILE);
			if (rc != 0)
				return rc;
			break;
		case 's': o->subject = optarg; break;
		case 't': o->type = optarg; break;
		case 'a': o->armor = 1; break;
		case 'o': o->output = optarg; break;
		case OPT_CTYPE: o->content_type = optarg; break;
		case OPT_THREAD: o->thread_id = optarg; break;
		case OPT_REPLY: o->in_reply_to = optarg; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_INTRO:
			if (o->nintros == INTRO_LIST_ENTRIES)
				return usage_error("too many introductions (at "
				    "most %d)", INTRO_LIST_ENTRIES);
			o->intro_files[o->nintros++] = optarg;
			break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default: usage(stderr); return SMIMP_EXIT_USAGE;
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->nrcpts == 0 || o->rcpt_cc[0])
		return usage_error("at least one recipient is needed: "
		    "-r RECIPIENT or -R FILE");
	return 0;
}

/* Every recipient of the command line, to or cc as given. */
static int
resolve_all(const struct seal_opts *o, const struct identity *id,
    struct msg_recipient *rcpts, size_t *pinned, struct smimp_err *err)
{
	size_t i;

	if (resolve_recipients(o->rcpt_args, o->rcpt_file, o->nrcpts, id,
	    rcpts, pinned, err) != 0)
		return -1;
	for (i = 0; i < o->nrcpts; i++)
		rcpts[i].cc = o->rcpt_cc[i];
	return 0;
}

/*
 * Read the statements of --introduction; whether they fit the message
 * (the sender's, to its recipients, in force) is the envelope's check.
 */
static int
read_intros(const struct seal_opts *o, struct introduction *intros,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < o->nintros; i++)
		if (introduction_read_file(&intros[i], o->intro_files[i],
		    err) != 0)
			return -1;
	return 0;
}

static int
seal(const struct seal_opts *o, struct smimp_err *err)
{
	static struct introduction intros[INTRO_LIST_ENTRIES];
	static struct msg_recipient rcpts[MSG_MAX_RECIPIENTS];
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct seal_params p;
	struct identity id;
	struct outfile of;
	int in = STDIN_FILENO, ret = -1;
	size_t pinned = 0;

	memset(&id, 0, sizeof(id));
	/* A refused OUT is said first: before a passphrase, before a pin. */
	if (outfile_open(&of, o->output, err) != 0)
		return -1;
	/* The identity signs the recipients' lookups: it comes first. */
	if (read_intros(o, intros, err) != 0 ||
	    identity_load_for(&id, o->identity, &src, IDENTITY_LOG_NEED,
	    IDACT_SEAL, err) != 0 ||
	    resolve_all(o, &id, rcpts, &pinned, err) != 0)
		goto out;
	if (o->input != NULL && strcmp(o->input, "-") != 0) {
		in = open(o->input, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
			    o->input);
			goto out;
		}
	}
	memset(&p, 0, sizeof(p));
	p.sender = &id.sk;
	p.sender_log = &id.log;
	p.rcpts = rcpts;
	p.nrcpts = o->nrcpts;
	p.type = o->type;
	p.subject = o->subject;
	p.content_type = o->content_type;
	p.thread_id = o->thread_id;
	p.in_reply_to = o->in_reply_to;
	p.armor = o->armor;
	p.intros = intros;
	p.nintros = o->nintros;
	/* OUT appears whole or not at all. */
	if (message_seal(&p, in, of.fd, NULL, 0, err) != 0 ||
	    outfile_commit(&of, err) != 0)
		goto out;
	if (pinned > 0)
		republish(&id, &src);
	ret = 0;
out:
	outfile_close(&of);
	if (in != STDIN_FILENO)
		close(in);
	identity_release(&id);
	return ret;
}

static int
seal_main(int argc, char **argv)
{
	struct seal_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-seal") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (seal(&o, &err) != 0)
		return report(&err);
	return SMIMP_EXIT_OK;
}

int
main(int argc, char **argv)
{
	return cmd_exit(seal_main(argc, argv));
}
