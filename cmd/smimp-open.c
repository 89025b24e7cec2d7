/*
 * smimp-open - sealed message in, plaintext out, only once it decrypts,
 * its signature verifies and it was addressed to us.  The body is
 * spooled to a private file with no name and released only then, so no
 * unverified byte ever reaches the output (EFAIL), not even a file that
 * a killed command leaves behind.  Reports the sender, its
 * fingerprint and its tier in the trust store on stderr.  With --mime it
 * writes the message as RFC 5322 with MIME, for mail readers.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "message.h"
#include "mime.h"
#include "notice.h"
#include "outfile.h"
#include "parts.h"
#include "prekeys.h"
#include "trust.h"
#include "cmd.h"
#include "banned.h"

struct open_opts {
	const char *identity;
	const char *output;
	const char *input;
	const char *passphrase_file;
	const char *extract;		/* --extract DIR */
	int headers;
	int json;
	int mime;
	int accept_unknown;
	int quiet;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-open [-i IDENTITY] [-o OUT] [--extract DIR] "
	    "[--headers] [--json] [--mime]\n"
	    "                  [--accept-unknown] [-q] [--passphrase-file FILE] "
	    "[FILE]\n");
}

static int
parse_args(int argc, char **argv, struct open_opts *o)
{
	enum { OPT_HEADERS = 256, OPT_JSON, OPT_ACCEPT, OPT_PASSFILE,
		OPT_EXTRACT, OPT_MIME, OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "headers", no_argument, NULL, OPT_HEADERS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "mime", no_argument, NULL, OPT_MIME },
		{ "accept-unknown", no_argument, NULL, OPT_ACCEPT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "extract", required_argument, NULL, OPT_EXTRACT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "i:o:qh";
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'o': o->output = optarg; break;
		case 'q': o->quiet = 1; break;
		case OPT_HEADERS: o->headers = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_MIME: o->mime = 1; break;
		case OPT_ACCEPT: o->accept_unknown = 1; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_EXTRACT: o->extract = optarg; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default: return option_error(argv, shortopts, longopts);
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->headers && o->json)
		return usage_error("--headers and --json exclude each other");
	if (o->mime && (o->headers || o->json || o->extract != NULL))
		return usage_error("--mime excludes --headers, --json and "
		    "--extract: the attachments are in the MIME message");
	if (o->output != NULL && strcmp(o->output, "-") == 0)
		o->output = NULL;	/* standard output */
	return 0;
}

/* Is fd /dev/null?  Then nothing is released and nothing need be kept. */
static int
is_dev_null(int fd)
{
	struct stat st, null;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	    stat("/dev/null", &null) == 0 && st.st_rdev == null.st_rdev;
}

/*
 * Where the body waits for its signature, with no name anywhere: for a
 * plain -o, OUT itself, named only once released; else a spool in
 * TMPDIR.  -1 with no error when it can be discarded (stdout is
 * /dev/null).
 */
static int
open_spool(const struct open_opts *o, const struct outfile *of,
    const struct msg_replay *rp, struct smimp_err *err)
{
	if (o->output != NULL && !o->json && !o->headers && !o->mime)
		return of->fd;
	if (o->output == NULL && is_dev_null(STDOUT_FILENO))
		return -1;
	if (rp->usable)
		return -1;	/* read twice instead (message.h) */
	return spool_open(err);
}

/*
 * The body of a file to standard output: read twice rather than
 * spooled, when the file allows it (message_replay_check).
 */
static int
replay_check(const struct open_opts *o, const struct outfile *of, int in,
    struct msg_replay *rp, struct smimp_err *err)
{
	memset(rp, 0, sizeof(*rp));
	if (of->kind != OUTFILE_STDOUT || o->json || o->mime ||
	    o->extract != NULL || is_dev_null(STDOUT_FILENO))
		return 0;
	return message_replay_check(in, rp, err) < 0 ? -1 : 0;
}

/* Bytes of the body escaped at a time, for a terminal. */
#define SHOW_CHUNK	(64 * 1024)

/* The output's name in a write error: standard output, or 'OUT'. */
static char out_label[PATH_MAX + 2] = "standard output";

/*
 * Write len bytes (at most SHOW_CHUNK) to out, escaped through v when v
 * is not NULL; *nl says whether the last byte out ended a line.
 */
static int
put_out(int out, struct vis *v, const void *data, size_t len, int *nl,
    struct smimp_err *err)
{
	static char shown[VIS_OUT_MAX(SHOW_CHUNK)];
	const char *p = data;

	if (v != NULL) {
		len = data != NULL ? vis_feed(v, data, len, shown) :
		    vis_finish(v, shown);
		p = shown;
	}
	if (len == 0)
		return 0;
	if (fd_write_all(out, p, len) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write %s",
		    out_label);
	*nl = p[len - 1] == '\n';
	return 0;
}

static int
copy_fd(int from, int to, struct vis *v, int *nl, struct smimp_err *err)
{
	static unsigned char buf[256 * 1024];
	size_t want = v != NULL ? SHOW_CHUNK : sizeof(buf), n;

	if (lseek(from, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read spool");
	do {
		if (fd_read_full(from, buf, want, &n) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read spool");
		if ((n > 0 || v != NULL) &&
		    put_out(to, v, n > 0 ? buf : NULL, n, nl, err) != 0)
			return -1;
	} while (n > 0);
	return 0;
}

/* Where message_replay writes the body: out, through vis or not. */
struct replay_out {
	int fd;
	struct vis *v;
	int *nl;
};

static int
replay_put(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	struct replay_out *ro = arg;

	return put_out(ro->fd, ro->v, buf, len, ro->nl, err);
}

/* The body, from the spool or by reading the message again. */
static int
body_out(int spool, struct msg_replay *rp, int in, const struct msg_meta *meta,
    int out, struct vis *v, int *nl, struct smimp_err *err)
{
	struct replay_out ro = { out, v, nl };

	if (spool >= 0)
		return copy_fd(spool, out, v, nl, err);
	if (message_replay(rp, in, meta, replay_put, &ro, err) != 0)
		return -1;
	return v != NULL ? put_out(out, v, NULL, 0, nl, err) : 0;
}

/*
 * --mime: the message as mail readers read it.  On a terminal it goes
 * to a spool first, and from there through vis like any body.
 */
static int
release_mime(const struct msg_meta *meta, const char *tier,
    const struct parts_spool *sp, struct outfile *of, int *nl,
    struct smimp_err *err)
{
	struct vis vis;
	int tty = isatty(of->fd), fd = of->fd, ret = -1;

	if (tty && (fd = spool_open(err)) < 0)
		return -1;
	if (mime_write(meta, tier, sp, fd, tty ? "a spool file" : out_label,
	    err) != 0)
		goto out;
	vis_init(&vis, VIS_LINES);
	if (tty && copy_fd(fd, of->fd, &vis, nl, err) != 0)
		goto out;
	ret = outfile_commit(of, err);
out:
	if (tty)
		close(fd);
	return ret;
}

/*
 * Write what the user asked for: body, headers and body, JSON, or MIME.  To a
 * terminal, what the sender wrote goes through vis(lib/vis.h): its
 * control characters and bidirectional overrides are shown, not obeyed.
 * *nl says whether the output ended a line.
 */
static int
release(const struct open_opts *o, const struct msg_meta *meta,
    const char *tier, int spool, int in, const struct parts_spool *sp,
    struct outfile *of, int *nl, struct smimp_err *err)
{
	struct vis vis, *v = NULL;
	size_t off, n;

	if (of->kind != OUTFILE_STDOUT && spool == of->fd)
		return outfile_commit(of, err);	/* the body is OUT */
	if (o->mime)
		return release_mime(meta, tier, sp, of, nl, err);
	if (isatty(of->fd)) {
		vis_init(&vis, VIS_LINES);
		v = &vis;
	}
	if (o->json) {
		/* ASCII with every control escaped: safe on a terminal. */
		if (msg_meta_json_write(meta, tier, spool, of->fd, out_label,
		    err) != 0)
			return -1;
	} else {
		for (off = 0; o->headers && off < meta->header_len; off += n) {
			n = meta->header_len - off < SHOW_CHUNK ?
			    meta->header_len - off : SHOW_CHUNK;
			if (put_out(of->fd, v, meta->header_text + off, n, nl,
			    err) != 0)
				return -1;
		}
		if (o->headers && put_out(of->fd, v, "\n", 1, nl, err) != 0)
			return -1;
		if (body_out(spool, sp->replay, in, meta, of->fd, v, nl,
		    err) != 0)
			return -1;
	}
	return outfile_commit(of, err);
}

/* Do standard output and standard error show on the same terminal? */
static int
shared_terminal(void)
{
	struct stat out, errst;

	return isatty(STDOUT_FILENO) && isatty(STDERR_FILENO) &&
	    fstat(STDOUT_FILENO, &out) == 0 &&
	    fstat(STDERR_FILENO, &errst) == 0 && out.st_rdev == errst.st_rdev;
}

/*
 * The sender line: who signed (", device NAME" for one of its devices),
 * and how far the trust store trusts them
 * ("trusted (own identity)" for a message we signed ourselves; "unknown,
 * introduced by ADDRESS" for a stranger someone we trust vouches for); then
 * what became of their key since, when something did; then, for an
 * identity notice, what it tells.
 */
static void
say_sender(const struct msg_meta *meta, const char *fp, enum trust_tier tier,
    const char *note, const char *notice)
{
	fprintf(stderr, "%s: from %s%s%s, fingerprint %s, %s%s%s%s\n",
	    progname, meta->from, meta->from_device[0] != '\0' ?
	    ", device " : "", meta->from_device, fp, trust_tier_name(tier),
	    meta->own ? " (own identity)" : "",
	    meta->introducer[0] != '\0' ? ", introduced by " : "",
	    meta->introducer);
	if (note[0] != '\0')
		fprintf(stderr, "%s: %s\n", progname, note);
	if (notice[0] != '\0')
		fprintf(stderr, "%s: %s\n", progname, notice);
}

/*
 * A verified message from a pinned sender that carries a newer log of
 * the same identity: follow it in the trust store, and say what changed
 * (even with -q: the store changed).  A log the pin may not follow is
 * refused (exit 5); a store that cannot be written only keeps the pin
 * where it was, with a warning: the message's log is verified, and the
 * decisions that follow see it all the same.
 */
static int
follow_sender(struct trust_store *ts, const struct msg_meta *meta,
    struct smimp_err *err)
{
	struct idlog_changes c;
	char what[SMIMP_ERR_MSG * 2];
	size_t was;

	if (meta->own)
		return 0;
	if (trust_follow_sender(ts, &meta->sender, &was, &c, err) != 0) {
		if (err->code == SMIMP_EXIT_KEYCHANGED)
			return -1;
		warnx_("cannot follow %s in the trust store: %s", meta->from,
		    err->msg);
		smimp_err_clear(err);
		return 0;
	}
	if (c.added == 0)
		return 0;
	describe_follow(what, sizeof(what), &meta->sender, was, &c);
	warnx_("%s: %s (followed from the message)", meta->from, what);
	return 0;
}

/*
 * --extract DIR: a directory this user may write in, opened once, so
 * that what is extracted goes where it was named even if DIR is
 * renamed meanwhile.  Said before any passphrase is asked for.
 */
static int
open_extract_dir(const char *dir, struct smimp_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    dir);
	if (faccessat(fd, ".", W_OK | X_OK, 0) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write in '%s'",
		    dir);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * What became of each part: where an attachment was written, or that
 * none was (without --extract); a part of a kind this version does not
 * know was verified with the rest and is left out.
 */
static void
say_parts(const struct msg_meta *meta, int mime)
{
	const struct msg_part *p;
	size_t i, left = 0;

	for (i = 0; i < meta->nparts; i++) {
		p = &meta->parts[i];
		if (!p->known)
			warnx_("part %zu is of a kind this version does not "
			    "know ('%s', %llu bytes): verified, and left out",
			    i + 1, p->kind, (unsigned long long)p->size);
		else if (p->path != NULL)
			warnx_("wrote '%s' (%s, %llu bytes)", p->path, p->type,
			    (unsigned long long)p->size);
		else
			left++;
	}
	if (left > 0 && !mime)
		warnx_("%zu attachment%s not written: --extract DIR writes "
		    "them", left, left == 1 ? "" : "s");
}

/*
 * The message was sealed to a one-time prekey and its plaintext is
 * stored now: the prekey's secret goes, and with it every way to open
 * this copy again (forward secrecy).  Said, unless quiet.
 */
static int
forget_prekey(const struct open_opts *o, const struct identity *id,
    struct prekey_store *ps, const struct msg_meta *meta,
    struct smimp_err *err)
{
	char why[SMIMP_ERR_MSG];

	if (meta->prekey_id[0] == '\0')
		return 0;
	if (prekeys_forget(id, ps, meta->prekey_id, err) != 0) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, err->code, "the message is out, but "
		    "the secret of its one-time prekey %s is not deleted: "
		    "%.150s", meta->prekey_id, why);
	}
	if (!o->quiet)
		warnx_("forward secrecy: the one-time prekey %s is deleted, "
		    "this copy cannot be opened again", meta->prekey_id);
	return 0;
}


/* Who introduced an unknown sender to me, into meta->introducer. */
static void
introduced_by(const struct trust_store *ts, struct msg_meta *meta,
    const char *me)
{
	const char *by = trust_introducer(ts, meta->intros, meta->nintros,
	    meta->from, me, time_now());

	if (by != NULL)
		(void)snprintf(meta->introducer, sizeof(meta->introducer),
		    "%s", by);
}

static int
open_message(const struct open_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct prekey_store ps;
	struct smimp_err warn;
	struct parts_spool sp;
	struct msg_replay rp;
	struct trust_store ts;
	struct msg_meta meta;
	struct identity id;
	struct outfile of;
	enum trust_tier tier = TIER_UNKNOWN;
	char home[PATH_MAX], fp[FINGERPRINT_STRLEN], note[SMIMP_ERR_MSG];
	char notice[SMIMP_ERR_MSG];
	int in = STDIN_FILENO, spool = -1, ret = -1, opened = 0, late = 0;
	int nl = 1, dirfd = -1, released = 0;

	note[0] = notice[0] = '\0';
	memset(&rp, 0, sizeof(rp));
	parts_spool_init(&sp, -1, -1, 0);
	memset(&ps, 0, sizeof(ps));
	ps.lock_fd = -1;
	memset(&ts, 0, sizeof(ts));
	memset(&id, 0, sizeof(id));
	memset(&of, 0, sizeof(of));
	of.fd = -1;
	if (o->input != NULL && strcmp(o->input, "-") != 0) {
		in = file_open_input(o->input, err);
		if (in < 0)
			return -1;
	}
	/* A refused OUT or DIR is said before any passphrase is asked for. */
	if (o->extract != NULL &&
	    (dirfd = open_extract_dir(o->extract, err)) < 0)
		goto out;
	if (output_not_secret_key(o->output, err) != 0 ||
	    outfile_open(&of, o->output, err) != 0)
		goto out;
	(void)outfile_label(&of, out_label, sizeof(out_label));
	if (smimp_home(home, sizeof(home), err) != 0 ||
	    trust_load(&ts, home, err) != 0 ||
	    identity_load_for(&id, o->identity, &src, IDENTITY_LOG_IF_PRESENT,
	    IDACT_OPEN, err) != 0)
		goto out;
	prekeys_load(&id, &ps, &warn);
	if (warn.msg[0] != '\0')
		warnx_("warning: %s", warn.msg);
	if (replay_check(o, &of, in, &rp, err) != 0)
		goto out;
	spool = open_spool(o, &of, &rp, err);
	if (spool < 0 && err->code != SMIMP_EXIT_OK)
		goto out;
	/* The attachments wait in DIR, with no name, for the checks. */
	parts_spool_init(&sp, dirfd, spool, dirfd >= 0 || o->mime);
	sp.replay = &rp;
	/* The body written straight into OUT: a write error names OUT. */
	if (of.kind != OUTFILE_STDOUT && spool == of.fd)
		sp.body_name = out_label;
	if (parts_open(&id.sk, id.has_log ? &id.log : NULL, in, -1, &ts, &sp,
	    &meta, err) != 0)
		goto out;
	opened = 1;
	fingerprint_format(meta.sender.fingerprint, fp);
	/* The signature verified: now the sender's state. */
	if (follow_sender(&ts, &meta, err) != 0 ||
	    trust_sender_tier(&ts, meta.from, &meta.sender, meta.own, &tier,
	    err) != 0 ||
	    trust_sender_state(&ts, meta.from, &meta.sender, meta.date,
	    meta.from_device, meta.signing_key, note, sizeof(note), err) != 0)
		goto out;
	if (strcmp(meta.type, MSG_TYPE_NOTICE) == 0)
		notice_describe(&meta, &ts, notice, sizeof(notice));
	/* Named only: an introduction vouches for an address, no key. */
	if (tier == TIER_UNKNOWN)
		introduced_by(&ts, &meta, id.sk.address);
	/*
	 * When the body shows on the terminal that shows stderr, the
	 * sender line comes after it, where nothing in the body can
	 * overwrite it or pass for it.
	 */
	late = !o->quiet && of.kind == OUTFILE_STDOUT && shared_terminal();
	if (!o->quiet && !late)
		say_sender(&meta, fp, tier, note, notice);
	if (trust_may_release(tier, meta.from, o->accept_unknown, err) != 0)
		goto out;
	/* Attachments first: the body may be on a terminal already. */
	if (dirfd >= 0 && parts_extract(&sp, &meta, dirfd, o->extract,
	    err) != 0)
		goto out;
	released = 1;
	if (!o->quiet && !o->json && !late)
		say_parts(&meta, o->mime);
	if ((spool >= 0 || rp.usable) && (release(o, &meta,
	    trust_tier_name(tier), spool, in, &sp, &of, &nl, err) != 0 ||
	    forget_prekey(o, &id, &ps, &meta, err) != 0))
		goto out;
	ret = 0;
	if (tier == TIER_UNKNOWN)
		smimp_err_set(err, SMIMP_EXIT_UNTRUSTED, "%s", "unknown sender");
out:
	if (late) {
		if (!nl)
			fputc('\n', stderr);
		say_sender(&meta, fp, tier, note, notice);
		if (released && !o->json)
			say_parts(&meta, o->mime);
	}
	parts_spool_release(&sp);
	msg_replay_release(&rp);
	if (dirfd >= 0)
		close(dirfd);
	if (spool >= 0 && (of.kind == OUTFILE_STDOUT || spool != of.fd))
		close(spool);
	outfile_close(&of);
	if (in != STDIN_FILENO)
		close(in);
	if (opened)
		msg_meta_release(&meta);
	identity_release(&id);
	prekey_store_release(&ps);
	trust_release(&ts);
	return ret;
}

static int
open_main(int argc, char **argv)
{
	struct open_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-open") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (open_message(&o, &err) != 0)
		return report(&err);
	/* Released under --accept-unknown: still say the sender is unknown. */
	return err.code;
}

int
main(int argc, char **argv)
{
	return cmd_exit(open_main(argc, argv));
}
