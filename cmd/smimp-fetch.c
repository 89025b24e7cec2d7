/*
 * smimp-fetch - download the mailbox into a local Maildir, filed by the
 * local trust store: trusted and known senders to the inbox, unknown
 * ones to .Other, blocked ones dropped.  Each message is fsynced and
 * renamed into place before it is acknowledged on the server, so an
 * interrupted fetch loses nothing: what was not acknowledged comes again.
 * With a device's key it first brings the identity log beside the key
 * up to date from the directory, and files the copies of what the
 * user sent from another device in .Sent.  With --mime it files each
 * message that verified as RFC 5322 with MIME, which mail readers show,
 * and keeps the sealed original in the Maildir's .sealed directory.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "prekeys.h"
#include "remote.h"
#include "fetch.h"
#include "cmd.h"
#include "banned.h"

struct fetch_opts {
	const char *identity;
	const char *dir;
	const char *passphrase_file;
	struct clientconf conf;
	int json;
	int mime;
	int quiet;
	int log_only;		/* a device's log, and no mail */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-fetch [-i IDENTITY] [-d DIR] [--mime] [--json] [-q] "
	    "[--log-only]\n"
	    "                   [--resolve DOMAIN=HOST:PORT] [--cacert FILE] "
	    "[--allow-http DOMAIN]\n"
	    "                   [--passphrase-file FILE]\n");
}

static int
parse_args(int argc, char **argv, struct fetch_opts *o)
{
	enum { OPT_PASSFILE = 256, OPT_JSON, OPT_MIME, OPT_LOG_ONLY,
		OPT_VERSION };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "mime", no_argument, NULL, OPT_MIME },
		{ "quiet", no_argument, NULL, 'q' },
		{ "log-only", no_argument, NULL, OPT_LOG_ONLY },
		REMOTE_LONGOPTS,
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "i:d:qh";
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'd': o->dir = optarg; break;
		case 'q': o->quiet = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_MIME: o->mime = 1; break;
		case OPT_LOG_ONLY: o->log_only = 1; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->dir != NULL && o->dir[0] == '\0')
		return usage_error("-d names a Maildir: not an empty name");
	return remote_options_finish(&o->conf);
}

/* A progress bar on a terminal, for more than a few messages. */
static void
progress(const char *message_id, const char *from, const char *folder,
    size_t done, size_t total, void *arg)
{
	const struct fetch_opts *o = arg;
	size_t width = 30, fill = total > 0 ? done * width / total : width, i;

	(void)message_id;
	(void)from;
	(void)folder;
	if (o->quiet || o->json || total < 5 || !isatty(STDERR_FILENO))
		return;
	fputc('\r', stderr);
	for (i = 0; i < width; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, " %zu/%zu", done, total);
	if (done == total)
		fputc('\n', stderr);
}

/*
 * A fetched message moved the pinned identity of its sender on: say
 * what changed, in one line (also with -q or --json: the store changed).
 */
static void
followed(const struct idlog *log, size_t was, const struct idlog_changes *c,
    void *arg)
{
	char what[SMIMP_ERR_MSG * 2];

	(void)arg;
	describe_follow(what, sizeof(what), log, was, c);
	warnx_("%s: %s (followed from a message)", log->address, what);
}

/*
 * A message from an unknown sender went to the inbox on an
 * introduction: say by whom, one line each (not with -q).
 */
static void
introduced(const char *message_id, const char *from, const char *introducer,
    void *arg)
{
	const struct fetch_opts *o = arg;

	if (!o->quiet)
		warnx_("%s: from %s, introduced by %s: to the inbox",
		    message_id, from, introducer);
}

/* " (N introduced)" for the summary line. */
static const char *
introduced_note(size_t n)
{
	static char note[64];

	(void)snprintf(note, sizeof(note), " (%zu introduced)", n);
	return note;
}

/* "N to Sent, " for the summary line. */
static const char *
sent_note(size_t n)
{
	static char note[64];

	(void)snprintf(note, sizeof(note), "%zu to Sent, ", n);
	return note;
}

/* ", N filed before" for the summary line. */
static const char *
again_note(size_t n)
{
	static char note[64];

	(void)snprintf(note, sizeof(note), ", %zu filed before", n);
	return note;
}

/*
 * A device's log beside its key was brought up to date: said in one
 * line when it changed (not with -q), with the fingerprint the first
 * time, for its owner to compare.
 */
static void
say_device_log(const struct fetch_opts *o, const struct identity *id,
    const struct device_log_update *up)
{
	char fp[FINGERPRINT_STRLEN], what[SMIMP_ERR_MSG * 2];

	if (o->quiet)
		return;
	if (up->first) {
		fingerprint_format(id->log.fingerprint, fp);
		warnx_("wrote the identity log of %s beside the key: '%s', "
		    "fingerprint %s (compare it with the identity's)",
		    id->log.address, id->pub_path, fp);
	} else if (up->changes.added > 0) {
		describe_follow(what, sizeof(what), &id->log, up->was,
		    &up->changes);
		warnx_("%s: %s (the log beside the key)", id->log.address,
		    what);
	}
}


/*
 * Once the mailbox is fetched: a new batch of one-time prekeys when
 * the server's pool of this key runs low (forward secrecy on: the key
 * has a prekey store), said in one line (not with -q).  A failure is
 * only a warning: the mail is safe, and the next fetch tries again.
 */
static void
refill(const struct fetch_opts *o, struct remote *r,
    const struct identity *id)
{
	struct smimp_err err;
	size_t uploaded, had;

	smimp_err_clear(&err);
	if (prekeys_refill(r, id, &uploaded, &had, &err) != 0)
		warnx_("warning: one-time prekeys not refilled: %s", err.msg);
	else if (uploaded > 0 && !o->quiet)
		warnx_("uploaded %zu one-time prekeys (the server had %zu "
		    "left)", uploaded, had);
}

/*
 * Fetch for id: a device's log first, then the mailbox (unless
 * --log-only, or the device's scope does not let it).  r, ts: the
 * remote and the trust store.  *fetching: the mailbox was gone at.
 */
static int
fetch_for(const struct fetch_opts *o, struct remote *r, struct identity *id,
    struct trust_store *ts, const char *dir, struct fetch_stats *st,
    const struct fetch_hooks *hooks, int *fetching, struct smimp_err *err)
{
	struct device_log_update up;

	if (id->sk.is_device) {
		if (fetch_device_log(r, id, &up, err) != 0)
			return -1;
		say_device_log(o, id, &up);
	}
	if (o->log_only || identity_may(id, NULL, IDACT_FETCH, err) != 0)
		return o->log_only ? 0 : -1;
	*fetching = 1;
	if (fetch_mailbox(r, id, ts, dir, o->mime ? FETCH_MIME : 0, st, hooks,
	    err) != 0)
		return -1;
	if (!st->busy)
		refill(o, r, id);
	return 0;
}

static int
fetch_main(int argc, char **argv)
{
	struct passphrase_source src;
	struct prekey_store ps;
	struct smimp_err warn;
	struct fetch_hooks hooks;
	struct fetch_stats st;
	struct trust_store ts;
	struct fetch_opts o;
	struct smimp_err err;
	struct identity id;
	struct remote *r = NULL;
	char home[PATH_MAX], dir[PATH_MAX];
	int rc, ret, fetching = 0;

	smimp_err_clear(&err);
	memset(&ts, 0, sizeof(ts));
	memset(&st, 0, sizeof(st));
	if (cmd_start("smimp-fetch") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	hooks.progress = progress;
	hooks.followed = followed;
	hooks.introduced = introduced;
	hooks.arg = &o;
	src.file = o.passphrase_file;
	src.allow_prompt = isatty(0);
	if (smimp_home(home, sizeof(home), &err) != 0)
		return report(&err);
	if ((size_t)snprintf(dir, sizeof(dir), "%s", o.dir != NULL ? o.dir :
	    home) >= sizeof(dir) || (o.dir == NULL &&
	    strlen(dir) + 9 >= sizeof(dir)))
		return usage_error("directory name too long");
	if (o.dir == NULL)
		memcpy(dir + strlen(dir), "/Maildir", 9);
	if (identity_load_for(&id, o.identity, &src, IDENTITY_LOG_IF_PRESENT,
	    IDACT_FETCH, &err) != 0)
		return report(&err);
	if (o.log_only && !id.sk.is_device) {
		identity_release(&id);
		return usage_error("--log-only is for a device's key: the "
		    "identity key's log is the one smimp-keygen and "
		    "smimp-revoke write");
	}
	/* A device's summary only once it goes at the mailbox. */
	fetching = !id.sk.is_device;
	prekeys_load(&id, &ps, &warn);
	if (warn.msg[0] != '\0')
		warnx_("warning: %s", warn.msg);
	ret = trust_load(&ts, home, &err);
	if (ret == 0 && (r = remote_new(&o.conf.remote, &err)) == NULL)
		ret = -1;
	if (ret == 0)
		ret = fetch_for(&o, r, &id, &ts, dir, &st, &hooks, &fetching,
		    &err);
	/* What was fetched before a failure is safe: say so either way. */
	if (st.busy && o.json)
		print_json(json_pack("{s:b,s:s}", "busy", 1, "maildir", dir));
	else if (st.busy && !o.quiet)
		warnx_("another smimp-fetch is filing into '%s': it fetches "
		    "the mailbox", dir);
	else if (o.json && fetching)
		print_json(json_pack("{s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:o*}",
		    "fetched", (json_int_t)st.fetched, "inbox",
		    (json_int_t)st.inbox, "other", (json_int_t)st.other,
		    "dropped", (json_int_t)st.dropped, "again",
		    (json_int_t)st.again, "maildir", dir, "introduced",
		    (json_int_t)st.introduced, "sent", (json_int_t)st.sent,
		    "missing", st.missing > 0 ?
		    json_integer((json_int_t)st.missing) : NULL));
	else if (!o.quiet && fetching)
		fprintf(stderr, "%s: %zu fetched: %zu to the inbox%s, %zu to "
		    "Other, %s%zu dropped%s\n", progname, st.fetched, st.inbox,
		    st.introduced > 0 ? introduced_note(st.introduced) : "",
		    st.other, st.sent > 0 ? sent_note(st.sent) : "",
		    st.dropped, st.again > 0 ? again_note(st.again) : "");
	remote_free(r);
	trust_release(&ts);
	identity_release(&id);
	prekey_store_release(&ps);
	return ret != 0 ? report(&err) : SMIMP_EXIT_OK;
}

int
main(int argc, char **argv)
{
	return cmd_exit(fetch_main(argc, argv));
}
