/*
 * smimp-seal - plaintext in, sealed message out: a signed envelope
 * encrypted to every recipient with age.  Streams any size in constant
 * memory.  The sender's identity log travels inside, so a recipient can
 * check the signature before trusting the sender.  A recipient looked
 * up and pinned on first use becomes known, so that their replies get
 * through; a consent policy published before is published again with
 * them in it.  With --reply it answers a message: its recipients,
 * subject and thread come from the message answered.
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
#include "parts.h"
#include "prekeys.h"
#include "publish.h"
#include "reply.h"
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
	const char *attach[PART_MAX];		/* --attach */
	const char *attach_type[PART_MAX];	/* its --attach-type, or NULL */
	size_t nattach;
	const char *reply;			/* --reply FILE */
	int reply_all;
	int armor;
	int no_prekeys;		/* --no-prekeys */
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
	    "                  [--introduction FILE] [--attach FILE "
	    "[--attach-type TYPE]] ...\n"
	    "                  [--no-prekeys] [--passphrase-file FILE] "
	    "[FILE]\n"
	    "       smimp-seal [-i IDENTITY] --reply FILE [--reply-all] "
	    "[-r ...] [-c ...]\n"
	    "                  [-s SUBJECT] [... as above] [FILE]\n");
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

/*
 * --attach FILE, and --attach-type TYPE for the --attach before it:
 * so that "--attach a.pdf --attach-type application/pdf" reads as it
 * is meant, and a type given first, or twice, is an error.
 */
static int
add_attach(struct seal_opts *o, const char *path)
{
	if (o->nattach == PART_MAX)
		return usage_error("too many attachments (at most %d)",
		    PART_MAX);
	o->attach[o->nattach++] = path;
	return 0;
}

static int
add_attach_type(struct seal_opts *o, const char *type)
{
	if (o->nattach == 0)
		return usage_error("--attach-type '%s' follows no --attach: "
		    "it gives the type of the --attach before it", type);
	if (o->attach_type[o->nattach - 1] != NULL)
		return usage_error("two --attach-type for '%s'",
		    o->attach[o->nattach - 1]);
	o->attach_type[o->nattach - 1] = type;
	return 0;
}

/* Each attachment's name and type as a reader will take them. */
static int
check_attachments(const struct seal_opts *o)
{
	const char *name, *slash, *why, *other;
	size_t i, j;

	for (i = 0; i < o->nattach; i++) {
		slash = strrchr(o->attach[i], '/');
		name = slash != NULL ? slash + 1 : o->attach[i];
		why = part_name_problem(name, strlen(name));
		if (why != NULL)
			return usage_error("cannot attach '%s': its name %s",
			    o->attach[i], why);
		if (o->attach_type[i] != NULL && !part_type_valid(
		    o->attach_type[i], strlen(o->attach_type[i])))
			return usage_error("invalid attachment type '%s': "
			    "type/subtype in lower case, then ;name=value "
			    "parameters, no space", o->attach_type[i]);
		for (j = 0; j < i; j++) {
			slash = strrchr(o->attach[j], '/');
			other = slash != NULL ? slash + 1 : o->attach[j];
			if (strcmp(name, other) == 0)
				return usage_error("two attachments named '%s'",
				    name);
		}
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct seal_opts *o)
{
	enum { OPT_CTYPE = 256, OPT_THREAD, OPT_REPLY, OPT_PASSFILE,
		OPT_CCFILE, OPT_INTRO, OPT_ATTACH, OPT_ATTACH_TYPE, OPT_REPLY_TO,
		OPT_REPLY_ALL, OPT_NO_PREKEYS, OPT_VERSION };
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
		{ "attach", required_argument, NULL, OPT_ATTACH },
		{ "attach-type", required_argument, NULL, OPT_ATTACH_TYPE },
		{ "reply", required_argument, NULL, OPT_REPLY_TO },
		{ "reply-all", no_argument, NULL, OPT_REPLY_ALL },
		{ "no-prekeys", no_argument, NULL, OPT_NO_PREKEYS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "i:r:R:c:s:t:ao:h";
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->type = "email";
	while ((c = getopt_long(argc, argv, shortopts, longopts,
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
		case OPT_REPLY_TO: o->reply = optarg; break;
		case OPT_REPLY_ALL: o->reply_all = 1; break;
		case OPT_NO_PREKEYS: o->no_prekeys = 1; break;
		case OPT_INTRO:
			if (o->nintros == INTRO_LIST_ENTRIES)
				return usage_error("too many introductions (at "
				    "most %d)", INTRO_LIST_ENTRIES);
			o->intro_files[o->nintros++] = optarg;
			break;
		case OPT_ATTACH:
		case OPT_ATTACH_TYPE:
			rc = c == OPT_ATTACH ? add_attach(o, optarg) :
			    add_attach_type(o, optarg);
			if (rc != 0)
				return rc;
			break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default: return option_error(argv, shortopts, longopts);
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->reply_all && o->reply == NULL)
		return usage_error("--reply-all needs --reply FILE");
	if (o->reply != NULL && (o->thread_id != NULL ||
	    o->in_reply_to != NULL))
		return usage_error("--reply takes the thread from the message "
		    "answered: no --thread or --in-reply-to with it");
	if (o->reply == NULL && (o->nrcpts == 0 || o->rcpt_cc[0]))
		return usage_error("at least one recipient is needed: "
		    "-r RECIPIENT or -R FILE");
	return check_attachments(o);
}

/*
 * Every recipient of the command line, to or cc as given, each once:
 * one given twice (or by address and by file) is sealed to once.
 */
static int
resolve_all(struct seal_opts *o, const struct identity *id,
    struct lookup_session *s, struct msg_recipient *rcpts, size_t *pinned,
    struct smimp_err *err)
{
	size_t from[MSG_MAX_RECIPIENTS], i;

	if (resolve_recipients(o->rcpt_args, o->rcpt_file, o->nrcpts, id, s,
	    rcpts, pinned, err) != 0)
		return -1;
	for (i = 0; i < o->nrcpts; i++)
		rcpts[i].cc = o->rcpt_cc[i];
	o->nrcpts = msg_recipients_unique(rcpts, o->nrcpts, from);
	for (i = 0; i < o->nrcpts; i++) {
		o->rcpt_args[i] = o->rcpt_args[from[i]];
		o->rcpt_file[i] = o->rcpt_file[from[i]];
		o->rcpt_cc[i] = rcpts[i].cc;
	}
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

/* Is address one of the recipients given by address (not -R)? */
static int
given(const struct seal_opts *o, size_t n, const char *address)
{
	char norm[ADDRESS_MAX + 1];
	struct smimp_err ignore;
	size_t i;

	for (i = 0; i < n; i++)
		if (!o->rcpt_file[i] && address_normalize(o->rcpt_args[i],
		    norm, &ignore) == 0 && strcmp(norm, address) == 0)
			return 1;
	return 0;
}

/*
 * --reply FILE: whom the answer goes to, first and each once, then the
 * recipients given; its subject unless -s gave one; its thread.
 */
static int
read_reply(struct seal_opts *o, const struct identity *id, struct reply *r,
    struct smimp_err *err)
{
	static const char *args[MSG_MAX_RECIPIENTS];
	static int cc[MSG_MAX_RECIPIENTS], file[MSG_MAX_RECIPIENTS];
	int fd = open(o->reply, O_RDONLY | O_CLOEXEC), ret;
	size_t i, k = 0;

	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    o->reply);
	ret = reply_read(&id->sk, id->has_log ? &id->log : NULL, fd,
	    o->reply_all, r, err);
	close(fd);
	if (ret != 0)
		return -1;
	for (i = 0; i < r->nrcpts; i++) {
		if (given(o, o->nrcpts, r->rcpts[i].address))
			continue;
		if (k == MSG_MAX_RECIPIENTS)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many "
			    "recipients (at most %d)", MSG_MAX_RECIPIENTS);
		args[k] = r->rcpts[i].address;
		cc[k] = r->rcpts[i].cc;
		file[k++] = 0;
	}
	if (k + o->nrcpts > MSG_MAX_RECIPIENTS)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many "
		    "recipients (at most %d)", MSG_MAX_RECIPIENTS);
	memmove(o->rcpt_args + k, o->rcpt_args, o->nrcpts * sizeof(*args));
	memmove(o->rcpt_cc + k, o->rcpt_cc, o->nrcpts * sizeof(*cc));
	memmove(o->rcpt_file + k, o->rcpt_file, o->nrcpts * sizeof(*file));
	memcpy(o->rcpt_args, args, k * sizeof(*args));
	memcpy(o->rcpt_cc, cc, k * sizeof(*cc));
	memcpy(o->rcpt_file, file, k * sizeof(*file));
	o->nrcpts += k;
	if (o->subject == NULL)
		o->subject = r->subject;
	o->thread_id = r->thread_id;
	o->in_reply_to = r->in_reply_to;
	return 0;
}

/* The recipients' one-time prekeys, unless --no-prekeys. */
static int
seal_prekeys(const struct seal_opts *o, const struct identity *id,
    struct lookup_session *s, struct msg_recipient *rcpts,
    struct prekeys_claim *claims, struct smimp_err *err)
{
	int by_file[MSG_MAX_RECIPIENTS];
	size_t i;

	if (o->no_prekeys)
		return 0;
	for (i = 0; i < o->nrcpts; i++)
		by_file[i] = o->rcpt_file[i] || recipient_is_file(o->rcpt_args[i]);
	return take_prekeys(id, s, rcpts, by_file, o->nrcpts, claims, err);
}

/* Open every --attach: before any passphrase is asked for. */
static int
open_attachments(const struct seal_opts *o, struct parts_list *parts,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < o->nattach; i++)
		if (parts_add_file(parts, o->attach[i], o->attach_type[i],
		    err) != 0)
			return -1;
	return 0;
}

static int
seal(struct seal_opts *o, struct smimp_err *err)
{
	static struct introduction intros[INTRO_LIST_ENTRIES];
	static struct msg_recipient rcpts[MSG_MAX_RECIPIENTS];
	static struct prekeys_claim claims[MSG_MAX_RECIPIENTS];
	static struct parts_list parts;
	static struct reply reply;
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct lookup_session ls;
	struct seal_params p;
	struct identity id;
	struct outfile of;
	char oname[PATH_MAX + 2];
	int in = STDIN_FILENO, ret = -1;
	size_t pinned = 0;

	memset(&id, 0, sizeof(id));
	lookup_session_init(&ls);
	parts_list_init(&parts);
	/* A refused OUT is said first: before a passphrase, before a pin. */
	if (output_not_secret_key(o->output, err) != 0 ||
	    outfile_open(&of, o->output, err) != 0)
		return -1;
	/* The identity signs the recipients' lookups: it comes first. */
	if (open_attachments(o, &parts, err) != 0 ||
	    read_intros(o, intros, err) != 0 ||
	    identity_load_for(&id, o->identity, &src, IDENTITY_LOG_NEED,
	    IDACT_SEAL, err) != 0 || own_log_due(&id, &ls, err) != 0 ||
	    (o->reply != NULL && read_reply(o, &id, &reply, err) != 0) ||
	    resolve_all(o, &id, &ls, rcpts, &pinned, err) != 0 ||
	    seal_prekeys(o, &id, &ls, rcpts, claims, err) != 0)
		goto out;
	lookup_session_release(&ls);
	if (o->input != NULL && strcmp(o->input, "-") != 0) {
		in = file_open_input(o->input, err);
		if (in < 0)
			goto out;
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
	p.out_name = outfile_label(&of, oname, sizeof(oname));
	p.intros = intros;
	p.nintros = o->nintros;
	p.parts = parts.p;
	p.nparts = parts.n;
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
	parts_list_release(&parts);
	reply_release(&reply);
	for (size_t i = 0; i < o->nrcpts; i++)
		prekeys_claim_release(&claims[i]);
	lookup_session_release(&ls);
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
