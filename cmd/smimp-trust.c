/*
 * smimp-trust - the local trust store: pin identities (from a .pub file
 * or from a sealed message), list and show them, set the tier of an
 * address or a whole domain, check a fingerprint read aloud, follow
 * pinned identities through their rotations and revocations; publish
 * the consent policy made from it to the home server, and publish it
 * again when a tier changes.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "identity.h"
#include "introduction.h"
#include "lookup.h"
#include "outfile.h"
#include "prekeys.h"
#include "publish.h"
#include "remote.h"
#include "trust.h"
#include "util.h"
#include "cmd.h"
#include "banned.h"

struct trust_opts {
	const char *sub;
	const char *args[2];
	int nargs;
	char **list;		/* refresh: the addresses, or none for all */
	int nlist;
	const char *tier;
	const char *from_message;
	const char *identity;
	const char *passphrase_file;
	struct clientconf conf;
	int replace;
	int json;		/* refresh: a JSON object per address */
	const char *to;		/* introduce: to whom */
	const char *expires;	/* introduce: a duration */
	const char *output;	/* introduce: -o */
	const char *unknown;	/* publish */
	const char *allowance;
	int show;
	const char *count;	/* prekeys: --count */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-trust add FILE.pub [--tier TIER] [--replace]\n"
	    "       smimp-trust add --from-message FILE [-i IDENTITY] "
	    "[--tier TIER] [--replace]\n"
	    "                   [--passphrase-file FILE]\n"
	    "       smimp-trust list\n"
	    "       smimp-trust show ADDRESS\n"
	    "       smimp-trust set ADDRESS|@DOMAIN TIER\n"
	    "       smimp-trust remove ADDRESS|@DOMAIN\n"
	    "       smimp-trust verify ADDRESS FINGERPRINT\n"
	    "       smimp-trust fetch ADDRESS [-i IDENTITY] [--tier TIER] "
	    "[--replace]\n"
	    "                   [--passphrase-file FILE] "
	    "[--resolve DOMAIN=HOST:PORT]\n"
	    "                   [--cacert FILE] [--allow-http DOMAIN]\n"
	    "       smimp-trust refresh [ADDRESS ...] [-i IDENTITY] [--json]\n"
	    "                   [--passphrase-file FILE] "
	    "[--resolve DOMAIN=HOST:PORT]\n"
	    "                   [--cacert FILE] [--allow-http DOMAIN]\n"
	    "       smimp-trust introduce ADDRESS --to ADDRESS [-i IDENTITY] "
	    "[--expires DURATION]\n"
	    "                   [-o FILE] [--passphrase-file FILE]\n"
	    "       smimp-trust publish [-i IDENTITY] "
	    "[--unknown open|pow[:BITS]|introduction|closed]\n"
	    "                   [--allowance N] [--passphrase-file FILE] "
	    "[--resolve DOMAIN=HOST:PORT]\n"
	    "                   [--cacert FILE] [--allow-http DOMAIN]\n"
	    "       smimp-trust publish --show [-i IDENTITY] "
	    "[--passphrase-file FILE] [--resolve ...]\n"
	    "       smimp-trust prekeys [-i IDENTITY] [--count N] "
	    "[--passphrase-file FILE]\n"
	    "                   [--resolve DOMAIN=HOST:PORT] [--cacert FILE] "
	    "[--allow-http DOMAIN]\n"
	    "TIER is trusted, known or blocked\n");
}

static int
parse_args(int argc, char **argv, struct trust_opts *o)
{
	enum { OPT_TIER = 256, OPT_FROM, OPT_REPLACE, OPT_PASSFILE,
		OPT_JSON, OPT_TO, OPT_EXPIRES, OPT_UNKNOWN, OPT_ALLOWANCE, OPT_SHOW,
		OPT_COUNT, OPT_VERSION };
	static const struct option longopts[] = {
		{ "tier", required_argument, NULL, OPT_TIER },
		{ "from-message", required_argument, NULL, OPT_FROM },
		{ "replace", no_argument, NULL, OPT_REPLACE },
		{ "identity", required_argument, NULL, 'i' },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "to", required_argument, NULL, OPT_TO },
		{ "expires", required_argument, NULL, OPT_EXPIRES },
		{ "output", required_argument, NULL, 'o' },
		{ "unknown", required_argument, NULL, OPT_UNKNOWN },
		{ "allowance", required_argument, NULL, OPT_ALLOWANCE },
		{ "show", no_argument, NULL, OPT_SHOW },
		{ "count", required_argument, NULL, OPT_COUNT },
		REMOTE_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const struct { const char *name; int min, max; } subs[] = {
		{ "add", 0, 1 }, { "list", 0, 0 }, { "show", 1, 1 },
		{ "set", 2, 2 }, { "remove", 1, 1 }, { "verify", 2, 2 },
		{ "fetch", 1, 1 }, { "introduce", 1, 1 }, { "publish", 0, 0 },
		{ "prekeys", 0, 0 },
	};
	static const char shortopts[] = "i:o:h";
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TIER: o->tier = optarg; break;
		case OPT_FROM: o->from_message = optarg; break;
		case OPT_REPLACE: o->replace = 1; break;
		case 'i': o->identity = optarg; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_TO: o->to = optarg; break;
		case OPT_EXPIRES: o->expires = optarg; break;
		case 'o': o->output = optarg; break;
		case OPT_UNKNOWN: o->unknown = optarg; break;
		case OPT_ALLOWANCE: o->allowance = optarg; break;
		case OPT_SHOW: o->show = 1; break;
		case OPT_COUNT: o->count = optarg; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
	}
	if (optind == argc)
		return usage_error("a subcommand is needed");
	o->sub = argv[optind++];
	if ((o->to || o->expires || o->output) &&
	    strcmp(o->sub, "introduce") != 0)
		return usage_error("--to, --expires and -o go with introduce");
	if (strcmp(o->sub, "introduce") == 0 && o->to == NULL)
		return usage_error("introduce needs --to ADDRESS");
	if (strcmp(o->sub, "refresh") == 0) {
		o->list = argv + optind;
		o->nlist = argc - optind;
		if (o->tier || o->replace || o->from_message)
			return usage_error("--tier, --replace and "
			    "--from-message go with add or fetch");
		return remote_options_finish(&o->conf);
	}
	if (o->json)
		return usage_error("--json goes with refresh");
	if (o->count != NULL && strcmp(o->sub, "prekeys") != 0)
		return usage_error("--count goes with prekeys");
	if ((o->unknown || o->allowance || o->show) &&
	    strcmp(o->sub, "publish") != 0)
		return usage_error("--unknown, --allowance and --show go with "
		    "publish");
	if (o->show && (o->unknown || o->allowance))
		return usage_error("--show takes neither --unknown nor "
		    "--allowance");
	for (; optind < argc; optind++) {
		if (o->nargs == 2)
			return usage_error("unexpected argument '%s'",
			    argv[optind]);
		o->args[o->nargs++] = argv[optind];
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(o->sub, subs[i].name) != 0)
			continue;
		if (o->nargs < subs[i].min || o->nargs > subs[i].max)
			return usage_error("wrong number of arguments for "
			    "'%s'", o->sub);
		if (strcmp(o->sub, "add") == 0 &&
		    (o->nargs == 1) == (o->from_message != NULL))
			return usage_error("add takes FILE.pub or "
			    "--from-message FILE");
		if (strcmp(o->sub, "add") != 0 && strcmp(o->sub, "fetch") &&
		    (o->tier || o->replace || o->from_message))
			return usage_error("--tier, --replace and "
			    "--from-message go with add or fetch");
		/*
		 * fetch and publish go on the network; the others only to
		 * publish a policy again, and load the settings then.
		 */
		return strcmp(o->sub, "fetch") == 0 ||
		    strcmp(o->sub, "publish") == 0 ||
		    strcmp(o->sub, "prekeys") == 0 ?
		    remote_options_finish(&o->conf) : 0;
	}
	return usage_error("unknown subcommand '%s'", o->sub);
}

static int
tier_arg(const char *s, enum trust_tier *tier)
{
	if (trust_tier_parse(s, tier) != 0) {
		usage_error("invalid tier '%s': use trusted, known or blocked",
		    s);
		return -1;
	}
	return 0;
}

/* The sender's identity log carried inside a sealed message. */
static int
log_from_message(const struct trust_opts *o, struct idlog *log,
    struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct trust_store none;	/* the message's word alone */
	struct msg_meta meta;
	struct identity id;
	char note[SMIMP_ERR_MSG];
	int fd, ret = -1;

	fd = strcmp(o->from_message, "-") == 0 ? dup(STDIN_FILENO) :
	    open(o->from_message, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    o->from_message);
	if (identity_load_for(&id, o->identity, &src, IDENTITY_LOG_NONE,
	    IDACT_OPEN, err) != 0)
		goto out;
	memset(&none, 0, sizeof(none));
	if (message_open(&id.sk, NULL, fd, -1, NULL, &meta, err) == 0) {
		/* A revoked identity is not pinned from its own message. */
		if (trust_sender_state(&none, meta.from, &meta.sender,
		    meta.date, meta.from_device, meta.signing_key, note,
		    sizeof(note), err) == 0)
			ret = idlog_copy(log, &meta.sender, err);
		msg_meta_release(&meta);
	}
	identity_release(&id);
out:
	close(fd);
	return ret;
}

/*
 * The identity that signs the lookups of fetch and refresh (directories
 * answer no one else): -i, or the default one; its log is not needed.
 */
static int
load_signer(const struct trust_opts *o, struct identity *id,
    struct signer *who, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	char why[SMIMP_ERR_MSG];

	if (identity_load_for(id, o->identity, &src, IDENTITY_LOG_NONE,
	    IDACT_LOOKUP, err) != 0) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, err->code, "directory lookups are "
		    "signed: %.180s", why);
	}
	identity_signer(id, who);
	return 0;
}

/* fetch: the log ADDRESS's directory serves, looked up as -i. */
static int
fetch_log(const struct trust_opts *o, struct idlog *log,
    struct smimp_err *err)
{
	struct identity id;
	struct signer who;
	int ret;

	if (load_signer(o, &id, &who, err) != 0)
		return -1;
	ret = lookup_identity(&o->conf.remote, o->args[0], &who, log, err);
	identity_release(&id);
	return ret;
}

static int
cmd_add(const char *home, const struct trust_opts *o, struct smimp_err *err)
{
	enum trust_tier tier = TIER_UNKNOWN, pinned;
	struct idlog log;
	char fp[FINGERPRINT_STRLEN];
	int ret;

	if (o->tier != NULL && tier_arg(o->tier, &tier) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
	if (strcmp(o->sub, "fetch") == 0) {
		if (fetch_log(o, &log, err) != 0)
			return -1;
	} else if ((o->from_message != NULL ? log_from_message(o, &log, err) :
	    idlog_read_file(&log, o->args[0], err)) != 0) {
		return -1;
	}
	ret = trust_pin(home, &log, tier, o->replace,
	    strcmp(o->sub, "fetch") == 0, &pinned, err);
	if (ret == 0) {
		fingerprint_format(log.fingerprint, fp);
		printf("%s %s %s\n", log.address, trust_tier_name(pinned),
		    fp);
	}
	idlog_release(&log);
	return ret;
}

static int
cmd_list(const char *home, struct smimp_err *err)
{
	struct trust_store ts;
	char fp[FINGERPRINT_STRLEN];
	size_t i;

	if (trust_load(&ts, home, err) != 0)
		return -1;
	for (i = 0; i < ts.n; i++) {
		const struct trust_entry *e = &ts.entries[i];

		if (e->has_log)
			fingerprint_format(e->log.fingerprint, fp);
		printf("%-32s %-8s %s%s\n", e->name, trust_tier_name(e->tier),
		    e->has_log ? fp : "-",
		    e->has_log && e->verified ? " verified" : "");
	}
	trust_release(&ts);
	return 0;
}

/* One line for each live device: its name, scope and when it came. */
static void
show_devices(const struct idlog *log)
{
	char when[TIME_STRLEN];
	size_t i;

	for (i = 0; i < log->ndevices; i++) {
		if (log->devices[i].removed)
			continue;
		time_format(log->devices[i].added, when);
		printf("device: %s %s %s\n", log->devices[i].name,
		    iddev_scope_name(log->devices[i].scope), when);
	}
}

static int
cmd_show(const char *home, const char *name, struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 2], fp[FINGERPRINT_STRLEN], when[TIME_STRLEN];
	char b64[64];
	const struct trust_entry *e;
	struct trust_store ts;
	int ret = -1;

	if (name[0] == '@') {
		norm[0] = '@';
		if (domain_normalize(name + 1, norm + 1, err) != 0)
			return -1;
	} else if (address_normalize(name, norm, err) != 0) {
		return -1;
	}
	if (trust_load(&ts, home, err) != 0)
		return -1;
	e = trust_find(&ts, norm);
	if (e == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is not in the trust "
		    "store", norm);
		goto out;
	}
	time_format(e->added, when);
	printf("name: %s\ntier: %s\nadded: %s\n", e->name,
	    trust_tier_name(e->tier), when);
	if (e->has_log) {
		fingerprint_format(e->log.fingerprint, fp);
		printf("fingerprint: %s\nverified: %s\nrecords: %zu\n", fp,
		    e->verified ? "yes" : "no", e->log.n);
		sodium_bin2base64(b64, sizeof(b64), e->log.identity_key, 32,
		    sodium_base64_VARIANT_ORIGINAL);
		printf("identity-key: %s\n", b64);
		sodium_bin2base64(b64, sizeof(b64), e->log.encryption_key, 32,
		    sodium_base64_VARIANT_ORIGINAL);
		printf("encryption-key: %s\n", b64);
		show_devices(&e->log);
		if (e->log.revoked)
			printf("revoked: yes\n");
	}
	ret = 0;
out:
	trust_release(&ts);
	return ret;
}

/* One line for what following address's identity found. */
static void
say_refreshed(const char *address, const struct refresh_result *res)
{
	char what[SMIMP_ERR_MSG * 2];

	if (res->changes.added == 0) {
		printf("%s: unchanged (%zu records)\n", address, res->log.n);
		return;
	}
	describe_follow(what, sizeof(what), &res->log, res->was,
	    &res->changes);
	printf("%s: %s\n", address, what);
}

/*
 * The same as one JSON object: the address, the records pinned before
 * and now, what changed (as the record types that changed it), and for
 * a revocation since when and why.
 */
static void
refreshed_json(const char *address, const struct refresh_result *res)
{
	const struct idlog_changes *c = &res->changes;
	json_t *j = json_pack("{s:s,s:I,s:I,s:[]}", "address", address,
	    "records_before", (json_int_t)res->was, "records",
	    (json_int_t)res->log.n, "changes");
	json_t *changes = json_object_get(j, "changes");
	char when[TIME_STRLEN];

	if (c->recovered)
		json_array_append_new(changes, json_string("recover"));
	if (c->voided > 0)
		json_object_set_new(j, "voided",
		    json_integer((json_int_t)c->voided));
	if (c->rotated)
		json_array_append_new(changes, json_string("rotate"));
	if (c->encryption)
		json_array_append_new(changes, json_string("encryption-key"));
	if (c->devices_added > 0)
		json_array_append_new(changes, json_string("device-add"));
	if (c->devices_removed > 0)
		json_array_append_new(changes, json_string("device-remove"));
	if (c->revoked) {
		json_array_append_new(changes, json_string("revoke"));
		time_format(res->log.revoked_at, when);
		json_object_set_new(j, "revoked", json_string(when));
		json_object_set_new(j, "reason", json_string(res->log.reason));
	}
	print_json(j);
}

/* An address that could not be refreshed: said, and its exit code. */
static int
refresh_failed(const struct trust_opts *o, const char *address,
    const struct smimp_err *err)
{
	int code = report(err);

	if (o->json)
		print_json(json_pack("{s:s,s:o,s:i}", "address", address,
		    "error", json_text(err->msg), "status", code));
	return code;
}

/* Exit codes, the worst first: a refused log, a failure, a retry. */
static int
worse(int a, int b)
{
	if (a == SMIMP_EXIT_KEYCHANGED || b == SMIMP_EXIT_KEYCHANGED)
		return SMIMP_EXIT_KEYCHANGED;
	if (a == SMIMP_EXIT_OK || a == SMIMP_EXIT_TEMPFAIL)
		return b != SMIMP_EXIT_OK ? b : a;
	return a;
}

/*
 * refresh: follow each address named (every pinned one when none is)
 * to the log its domain serves now.  Every address is tried.
 */
static int
cmd_refresh(const struct trust_opts *o)
{
	struct trust_store ts;
	struct refresh_result res;
	struct smimp_err err;
	struct remote *r = NULL;
	struct identity id;
	struct signer who;
	char home[PATH_MAX], addr[ADDRESS_MAX + 1];
	const char *name;
	size_t i, n;
	int rc = SMIMP_EXIT_OK;

	memset(&ts, 0, sizeof(ts));
	memset(&id, 0, sizeof(id));
	smimp_err_clear(&err);
	if (smimp_home(home, sizeof(home), &err) != 0 ||
	    trust_load(&ts, home, &err) != 0 ||
	    load_signer(o, &id, &who, &err) != 0 ||
	    (r = remote_new(&o->conf.remote, &err)) == NULL) {
		identity_release(&id);
		trust_release(&ts);
		return report(&err);
	}
	n = o->nlist > 0 ? (size_t)o->nlist : ts.n;
	for (i = 0; i < n; i++) {
		smimp_err_clear(&err);
		if (o->nlist > 0) {
			name = o->list[i];
		} else {
			if (!ts.entries[i].has_log)
				continue;
			name = ts.entries[i].name;
		}
		if (address_normalize(name, addr, &err) != 0) {
			rc = worse(rc, refresh_failed(o, name, &err));
			continue;
		}
		if (lookup_refresh(r, home, addr, &who, &res, &err) != 0) {
			rc = worse(rc, refresh_failed(o, addr, &err));
			continue;
		}
		if (o->json)
			refreshed_json(addr, &res);
		else
			say_refreshed(addr, &res);
		idlog_release(&res.log);
	}
	remote_free(r);
	identity_release(&id);
	trust_release(&ts);
	return rc;
}

/* An address argument, normalized, or a usage error said. */
static int
address_arg(const char *s, char out[ADDRESS_MAX + 1])
{
	struct smimp_err aerr;

	if (address_normalize(s, out, &aerr) == 0)
		return 0;
	usage_error("%s", aerr.msg);
	return -1;
}

/*
 * introduce: the identity's signed statement that ADDRESS may write to
 * --to until the expiry, to standard output or -o FILE.  Not a
 * secret: whoever holds it may only show it.
 */
static int
cmd_introduce(const struct trust_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	char who[ADDRESS_MAX + 1], to[ADDRESS_MAX + 1];
	struct introduction in;
	struct identity id;
	struct outfile of;
	struct signer me;
	int64_t secs = INTRO_DEFAULT_SECS, now = time_now();
	int ret = -1;

	if (address_arg(o->args[0], who) != 0 || address_arg(o->to, to) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
	if (o->expires != NULL && (duration_parse(o->expires, INTRO_MAX_SECS,
	    &secs) != 0 || secs == 0)) {
		usage_error("invalid expiry '%s': seconds, or a number with "
		    "s, m, h or d, up to %d days", o->expires,
		    INTRO_MAX_SECS / 86400);
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
	}
	memset(&id, 0, sizeof(id));
	if (output_not_secret_key(o->output, err) != 0 ||
	    outfile_open(&of, o->output, err) != 0)
		return -1;
	if (identity_load(&id, o->identity, &src, IDENTITY_LOG_IF_PRESENT,
	    err) != 0)
		goto out;
	/* A statement its readers would refuse: better said now. */
	if (id.has_log && id.log.revoked) {
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "%s is revoked: it "
		    "introduces nobody", id.sk.address);
		goto out;
	}
	signer_secret(&me, id.sk.address, id.sk.identity_secret);
	if (introduction_make(&in, who, to, now + secs, now, &me, err) != 0) {
		/* Oneself, to oneself: said as the usage errors they are. */
		if (err->code == SMIMP_EXIT_USAGE) {
			usage_error("%s", err->msg);
			err->msg[0] = '\0';	/* said */
		}
		goto out;
	}
	if (fd_write_all(of.fd, in.text, in.len) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write the "
		    "introduction");
		goto out;
	}
	ret = outfile_commit(&of, err);
out:
	outfile_close(&of);
	identity_release(&id);
	return ret;
}

/* --unknown and --allowance into s; SMIMP_EXIT_USAGE said already. */
static int
publish_args(const struct trust_opts *o, struct publish_settings *s,
    struct smimp_err *err)
{
	uint64_t n;

	if (o->unknown != NULL && policy_unknown_parse(o->unknown,
	    &s->unknown, &s->bits) != 0) {
		usage_error("invalid --unknown '%s': use open, pow, pow:BITS "
		    "(1 to %d), introduction or closed", o->unknown,
		    WORK_MAX_BITS);
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
	}
	if (o->allowance != NULL) {
		if (parse_u64(o->allowance, strlen(o->allowance), &n) != 0 ||
		    n > POLICY_ALLOWANCE_MAX) {
			usage_error("invalid --allowance '%s': a number from 0 "
			    "to %d", o->allowance, POLICY_ALLOWANCE_MAX);
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
		}
		s->allowance = (uint32_t)n;
	}
	return 0;
}

static void
say_name(const char *name, enum policy_class c, void *arg)
{
	(void)arg;
	printf("%s: %s\n", c == POLICY_BLOCKED ? "block" : "allow", name);
}

/* publish --show: what the home server holds, verified. */
static int
show_policy(const char *home, const struct trust_opts *o,
    const struct identity *id, struct smimp_err *err)
{
	char date[TIME_STRLEN], unknown[16];
	struct trust_store ts;
	struct policy p;
	size_t unmatched;

	if (trust_load(&ts, home, err) != 0)
		return -1;
	if (publish_fetch(&o->conf.remote, id, &p, err) != 0) {
		trust_release(&ts);
		return -1;
	}
	time_format(p.date, date);
	policy_unknown_format(p.unknown, p.bits, unknown);
	printf("address: %s\ndate: %s\nunknown: %s\nallowance: %u\n"
	    "blocked: %zu\nallowed: %zu\n", p.address, date, unknown,
	    (unsigned int)p.allowance, p.nblock, p.nallow);
	publish_names(&p, &ts, say_name, NULL, &unmatched);
	printf("unmatched: %zu\n", unmatched);
	policy_release(&p);
	trust_release(&ts);
	return 0;
}

static int
cmd_publish(const char *home, const struct trust_opts *o,
    struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct publish_settings s;
	struct publish_result res;
	struct identity id;
	char unknown[16];
	int ret = -1;

	if (identity_load(&id, o->identity, &src, IDENTITY_LOG_NEED,
	    err) != 0)
		return -1;
	if (o->show) {
		ret = show_policy(home, o, &id, err);
		goto out;
	}
	if (publish_settings_get(home, id.log.address, &s, err) < 0 ||
	    publish_args(o, &s, err) != 0 ||
	    publish_policy(&o->conf.remote, home, &id, &s, &res, err) != 0)
		goto out;
	policy_unknown_format(s.unknown, s.bits, unknown);
	printf("%s: policy published (unknown: %s, allowance: %u, blocked: "
	    "%zu, allowed: %zu)\n", s.address, unknown,
	    (unsigned int)s.allowance, res.nblock, res.nallow);
	ret = 0;
out:
	identity_release(&id);
	return ret;
}

/*
 * The trust store changed: a policy published from it before is
 * published again, or a warning says why not.  Never a failure: the
 * change itself is made.
 */
static void
republish(const struct trust_opts *o, const char *home)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct clientconf conf = o->conf;
	struct identity id, *idp = NULL;
	struct smimp_err err;
	char warning[SMIMP_ERR_MSG * 2];
	int any;

	smimp_err_clear(&err);
	any = publish_settings_any(home, &err);
	if (any == 0)
		return;
	if (any < 0 || clientconf_load(&conf, &err) != 0 ||
	    (o->identity != NULL && identity_load(&id, o->identity, &src,
	    IDENTITY_LOG_NEED, &err) != 0)) {
		warnx_("warning: the policy is not published again: %s",
		    err.msg);
		return;
	}
	if (o->identity != NULL)
		idp = &id;
	if (publish_again(&conf.remote, home, idp, &src, warning,
	    sizeof(warning)) > 0 && warning[0] == '\0')
		warnx_("policy published again");
	if (warning[0] != '\0')
		warnx_("warning: %s", warning);
	if (idp != NULL)
		identity_release(idp);
}

/* After a change to the trust store that succeeded (ret 0): republish. */
static int
changed(const struct trust_opts *o, const char *home, int ret)
{
	if (ret == 0)
		republish(o, home);
	return ret;
}

/* --count N: 1 to PREKEY_BATCH_MAX, PREKEY_BATCH_DEFAULT without it. */
static int
count_arg(const char *s, size_t *n)
{
	uint64_t v = PREKEY_BATCH_DEFAULT;

	if (s != NULL && (parse_u64(s, strlen(s), &v) != 0 || v == 0 ||
	    v > PREKEY_BATCH_MAX)) {
		usage_error("invalid --count '%s': a number from 1 to %d", s,
		    PREKEY_BATCH_MAX);
		return -1;
	}
	*n = (size_t)v;
	return 0;
}

/*
 * Upload a batch of one-time prekeys for the key (the identity's, or a
 * receiving device's): forward secrecy from now on, and smimp-fetch
 * keeps the pool from running out.
 */
static int
cmd_prekeys(const struct trust_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct remote *r = NULL;
	struct identity id;
	size_t count, pool = 0;
	int ret = -1;

	if (count_arg(o->count, &count) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
	if (identity_load_for(&id, o->identity, &src, IDENTITY_LOG_NONE,
	    IDACT_OPEN, err) != 0)
		return -1;
	r = remote_new(&o->conf.remote, err);
	if (r != NULL && prekeys_upload(r, &id, count, &pool, err) == 0) {
		printf("%s%s%s: %zu one-time prekeys uploaded, %zu in the "
		    "pool\n", id.sk.address, id.sk.is_device ? ", device " : "",
		    id.sk.is_device ? id.sk.device : "", count, pool);
		ret = 0;
	}
	remote_free(r);
	identity_release(&id);
	return ret;
}

static int
run(const struct trust_opts *o, struct smimp_err *err)
{
	unsigned char fp[FINGERPRINT_SIZE];
	enum trust_tier tier;
	char home[PATH_MAX];

	if (smimp_home(home, sizeof(home), err) != 0)
		return -1;
	if (strcmp(o->sub, "publish") == 0)
		return cmd_publish(home, o, err);
	if (strcmp(o->sub, "add") == 0 || strcmp(o->sub, "fetch") == 0)
		return changed(o, home, cmd_add(home, o, err));
	if (strcmp(o->sub, "list") == 0)
		return cmd_list(home, err);
	if (strcmp(o->sub, "show") == 0)
		return cmd_show(home, o->args[0], err);
	if (strcmp(o->sub, "set") == 0) {
		if (tier_arg(o->args[1], &tier) != 0)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
		return changed(o, home, trust_set_tier(home, o->args[0], tier,
		    err));
	}
	if (strcmp(o->sub, "remove") == 0)
		return changed(o, home, trust_remove(home, o->args[0], err));
	if (strcmp(o->sub, "introduce") == 0)
		return cmd_introduce(o, err);
	if (strcmp(o->sub, "prekeys") == 0)
		return cmd_prekeys(o, err);
	if (fingerprint_parse(o->args[1], fp) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "invalid "
		    "fingerprint '%.80s': expected 32 base32 characters",
		    o->args[1]);
	if (trust_mark_verified(home, o->args[0], fp, err) != 0)
		return -1;
	printf("%s: fingerprint verified\n", o->args[0]);
	return 0;
}

static int
trust_main(int argc, char **argv)
{
	struct trust_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-trust") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (strcmp(o.sub, "refresh") == 0)
		return cmd_refresh(&o);
	if (run(&o, &err) != 0) {
		/* A usage error was already printed. */
		if (err.code == SMIMP_EXIT_USAGE && err.msg[0] == '\0')
			return SMIMP_EXIT_USAGE;
		return report(&err);
	}
	return SMIMP_EXIT_OK;
}

int
main(int argc, char **argv)
{
	return cmd_exit(trust_main(argc, argv));
}
