/*
 * admin.c - smimpd's subcommands for the administrator, run on the store
 * directly (the server may be running: the store takes concurrent
 * writers):
 *
 *	smimpd adduser ADDRESS FILE.pub		register an account
 *	smimpd deluser ADDRESS			remove it, with its mailbox
 *	smimpd updatelog ADDRESS FILE.pub	a log that extends (or recovers) the stored one
 *	smimpd users				list them
 *	smimpd invite ADDRESS [HOURS]		a single-use token
 *	smimpd invites				pending invitations
 *	smimpd stats [--json]			what the store holds
 *	smimpd queue ...			the relay queue (queue.c)
 *	smimpd check [--json] [DOMAIN]		this server, or another
 *						domain (check.c, peercheck.c)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "admin.h"
#include "auth.h"
#include "exitcode.h"
#include "idlog.h"
#include "server.h"
#include "util.h"
#include "banned.h"

static int
print_user(const char *address, const unsigned char *log, size_t len,
    void *arg)
{
	struct idlog parsed;
	struct smimp_err err;
	char fp[FINGERPRINT_STRLEN];

	(void)arg;
	if (idlog_parse_verified(&parsed, log, len, &err) != 0) {
		printf("%s (unreadable log)\n", address);
		return 0;
	}
	fingerprint_format(parsed.fingerprint, fp);
	printf("%s %s\n", address, fp);
	idlog_release(&parsed);
	return 0;
}

static int
print_invite(const char *address, int64_t expires, void *arg)
{
	char when[TIME_STRLEN];

	(void)arg;
	time_format(expires, when);
	printf("%s expires %s%s\n", address, when,
	    expires < time_now() ? " (expired)" : "");
	return 0;
}

/*
 * smimpd updatelog ADDRESS FILE.pub: the identity log delivered by hand
 * (smimp-revoke --no-publish) in place of the stored one, which it must
 * extend, as the append endpoint would have taken it.
 */
static int
update_log(struct store *st, const char *addr, const struct idlog *log,
    struct smimp_err *err)
{
	unsigned char *old = NULL;
	struct store_device devs[STORE_DEVICES_MAX];
	struct idlog_follow how;
	struct idlog stored;
	struct store_log sl;
	size_t len;
	int r, ret = -1;

	r = store_user_get(st, addr, &old, &len, err);
	if (r == STORE_NOT_FOUND)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s has no account",
		    addr);
	if (r != STORE_OK)
		return -1;
	if (idlog_parse_verified(&stored, old, len, err) != 0)
		goto out;
	if (idlog_check_follows(log, &stored, &how, err) != 0)
		goto release;
	if (log->raw_len == stored.raw_len) {
		printf("%s: unchanged (%zu records)\n", addr, log->n);
		ret = 0;
		goto release;
	}
	server_store_log(log, &sl, devs);
	r = store_user_log_update(st, addr, old, len, &sl, time_now(), err);
	if (r == STORE_OK) {
		printf("%s: %zu records, %zu before", addr, log->n, stored.n);
		if (how.recovery)
			printf(", a recovery: %zu records void", how.voided);
		printf("\n");
		ret = 0;
	} else if (r == STORE_NOT_FOUND) {
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "the log of %s changed "
		    "meanwhile: try again", addr);
	}
release:
	idlog_release(&stored);
out:
	free(old);
	return ret;
}

/* smimpd adduser ADDRESS FILE.pub: the account, with its devices. */
static int
add_user(struct store *st, const char *addr, const struct idlog *log,
    struct smimp_err *err)
{
	struct store_device devs[STORE_DEVICES_MAX];
	struct store_log sl;

	server_store_log(log, &sl, devs);
	return store_user_add(st, addr, &sl, time_now(), err);
}

#define INVITE_TOKEN_BYTES	24
#define INVITE_DEFAULT_HOURS	168

/* smimpd invite ADDRESS [HOURS]: print a new single-use token. */
static int
invite(struct store *st, const char *addr, const char *hours,
    struct smimp_err *err)
{
	unsigned char raw[INVITE_TOKEN_BYTES], hash[INVITE_HASH_SIZE];
	char token[sodium_base64_ENCODED_LEN(INVITE_TOKEN_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	uint64_t h = INVITE_DEFAULT_HOURS;
	int64_t expires;

	if (hours != NULL && (parse_u64(hours, strlen(hours), &h) != 0 ||
	    h == 0 || h > 24 * 365))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "HOURS is a number "
		    "from 1 to 8760");
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(token, sizeof(token), raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	auth_invite_hash(token, hash);
	expires = time_now() + (int64_t)h * 3600;
	if (store_invite_add(st, hash, addr, expires, err) != STORE_OK)
		return -1;
	printf("%s\n", token);
	sodium_memzero(token, sizeof(token));
	/* A token no one saw is an invitation no one can use: say so. */
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot write the "
		    "token to standard output (the invitation for %s is of "
		    "no use: make another)%s%s", addr, errno != 0 ? ": " : "",
		    errno != 0 ? strerror(errno) : "");
	return 0;
}

int
admin_usage(struct smimp_err *err, const char *fmt, ...)
{
	char msg[SMIMP_ERR_MSG - 32];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s (see 'smimpd "
	    "--help')", msg);
}

int
admin_args_parse(const char *sub, char **args, int nargs,
    unsigned int allowed, int max, struct admin_args *a,
    struct smimp_err *err)
{
	static const struct {
		const char *name;
		unsigned int flag;
	} flags[] = {
		{ "--json", ADMIN_JSON },
		{ "--no-bounce", ADMIN_NO_BOUNCE },
	};
	size_t k;
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < nargs; i++) {
		for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
			if ((allowed & flags[k].flag) &&
			    strcmp(args[i], flags[k].name) == 0)
				break;
		if (k < sizeof(flags) / sizeof(flags[0]))
			a->flags |= flags[k].flag;
		else if (args[i][0] == '-')
			return admin_usage(err, "%s: unknown option '%.40s'",
			    sub, args[i]);
		else if (a->nwords == max || a->nwords == ADMIN_WORDS_MAX)
			return admin_usage(err, "%s: too many arguments", sub);
		else
			a->word[a->nwords++] = args[i];
	}
	return 0;
}

/* ASCII, as every command's --json: nothing in it drives a terminal. */
int
admin_json_put(json_t *obj, struct smimp_err *err)
{
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT |
	    JSON_ENSURE_ASCII) : NULL;

	json_decref(obj);
	if (text == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	fputs(text, stdout);
	free(text);
	return 0;
}

int
admin_json_line(json_t *obj, struct smimp_err *err)
{
	if (admin_json_put(obj, err) != 0)
		return -1;
	putchar('\n');
	return 0;
}

void
admin_duration(int64_t secs, char *out, size_t cap)
{
	static const struct {
		int64_t secs;
		char unit;
	} u[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t i;

	if (secs < 0)
		secs = 0;
	for (i = 0; i + 1 < sizeof(u) / sizeof(u[0]) && secs < u[i].secs; i++)
		continue;
	/* The largest unit, and the next one when it is not zero. */
	if (i + 1 < sizeof(u) / sizeof(u[0]) &&
	    secs % u[i].secs / u[i + 1].secs != 0)
		(void)snprintf(out, cap, "%lld%c%lld%c", (long long)(secs /
		    u[i].secs), u[i].unit, (long long)(secs % u[i].secs /
		    u[i + 1].secs), u[i + 1].unit);
	else
		(void)snprintf(out, cap, "%lld%c", (long long)(secs /
		    u[i].secs), u[i].unit);
}

json_t *
admin_json_date(int64_t t)
{
	char when[TIME_STRLEN];

	if (t == 0)
		return json_null();
	time_format(t, when);
	return json_string(when);
}

/* smimpd stats [--json]: what the store holds, counted. */
int
stats_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	struct admin_args a;
	struct store_stats s;
	struct store *st;
	char age[32];
	int64_t oldest;
	int r;

	if (admin_args_parse("stats", args, nargs, ADMIN_JSON, 0, &a,
	    err) != 0)
		return -1;
	st = server_store_open(cfg, 0, err);
	if (st == NULL)
		return -1;
	r = store_stats(st, &s, err);
	store_close(st);
	if (r != STORE_OK)
		return -1;
	oldest = s.queue_oldest != 0 ? time_now() - s.queue_oldest : 0;
	if (a.flags & ADMIN_JSON)
		return admin_json_line(json_pack("{s:I,s:{s:I,s:I},s:{s:I,s:I,"
		    "s:I,s:I,s:I,s:o,s:I},s:o}", "users", (json_int_t)s.users,
		    "mailbox", "messages", (json_int_t)s.mailbox_messages,
		    "bytes", (json_int_t)s.mailbox_bytes, "queue", "entries",
		    (json_int_t)s.queue_entries, "bytes",
		    (json_int_t)s.queue_bytes, "held", (json_int_t)s.queue_held,
		    "retrying", (json_int_t)s.queue_retrying, "domains",
		    (json_int_t)s.queue_domains, "oldest",
		    admin_json_date(s.queue_oldest), "oldest_age",
		    (json_int_t)oldest, "store_bytes", s.store_bytes >= 0 ?
		    json_integer(s.store_bytes) : json_null()), err);
	admin_duration(oldest, age, sizeof(age));
	printf("users: %llu\n", (unsigned long long)s.users);
	printf("mailbox: %llu messages, %llu bytes\n",
	    (unsigned long long)s.mailbox_messages,
	    (unsigned long long)s.mailbox_bytes);
	printf("queue: %llu entries, %llu bytes, %llu held, %llu retrying, "
	    "%llu domains\n", (unsigned long long)s.queue_entries,
	    (unsigned long long)s.queue_bytes,
	    (unsigned long long)s.queue_held,
	    (unsigned long long)s.queue_retrying,
	    (unsigned long long)s.queue_domains);
	if (s.queue_oldest != 0)
		printf("queue oldest: %s old\n", age);
	if (s.store_bytes >= 0)
		printf("store: %lld bytes\n", (long long)s.store_bytes);
	else
		printf("store: size unknown\n");
	return 0;
}

int
admin_run(const char *sub, char **args, int nargs,
    struct smimpd_config *cfg, struct smimp_err *err)
{
	/* The subcommands of this file, with their words. */
	static const struct {
		const char *name;
		int min, max;
		const char *words;
	} subs[] = {
		{ "adduser", 2, 2, " ADDRESS FILE.pub" },
		{ "deluser", 1, 1, " ADDRESS" },
		{ "updatelog", 2, 2, " ADDRESS FILE.pub" },
		{ "users", 0, 0, "" },
		{ "invite", 1, 2, " ADDRESS [HOURS]" },
		{ "invites", 0, 0, "" },
	};
	struct store *st;
	struct idlog log;
	char addr[ADDRESS_MAX + 1];
	size_t i;
	int ret = -1, r;

	if (strcmp(sub, "queue") == 0)
		return queue_run(args, nargs, cfg, err);
	if (strcmp(sub, "stats") == 0)
		return stats_run(args, nargs, cfg, err);
	if (strcmp(sub, "check") == 0)
		return check_run(args, nargs, cfg, err);
	if (strcmp(sub, "backup") == 0)
		return backup_run(args, nargs, cfg, err);
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(sub, subs[i].name) == 0)
			break;
	if (i == sizeof(subs) / sizeof(subs[0]))
		return admin_usage(err, "unknown subcommand '%.40s'", sub);
	if (nargs < subs[i].min || nargs > subs[i].max)
		return admin_usage(err, "usage: smimpd %s%s", sub,
		    subs[i].words);
	if (nargs > 0 && address_normalize(args[0], addr, err) != 0)
		return -1;
	if (nargs > 0 && cfg->domain[0] != '\0' &&
	    strcmp(address_domain(addr), cfg->domain) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is not an "
		    "address of %s", addr, cfg->domain);
	if (strcmp(sub, "invite") == 0 && cfg->domain[0] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "invite needs the "
		    "server's domain (--domain or the config file)");
	st = server_store_open(cfg, strcmp(sub, "adduser") == 0 ||
	    strcmp(sub, "invite") == 0, err);
	if (st == NULL)
		return -1;
	if (strcmp(sub, "users") == 0) {
		ret = store_user_list(st, print_user, NULL, err);
	} else if (strcmp(sub, "invites") == 0) {
		ret = store_invite_list(st, print_invite, NULL, err);
	} else if (strcmp(sub, "invite") == 0) {
		ret = invite(st, addr, nargs > 1 ? args[1] : NULL, err);
	} else if (strcmp(sub, "deluser") == 0) {
		r = store_user_del(st, addr, time_now(), err);
		if (r == STORE_NOT_FOUND)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "%s has no account",
			    addr);
		ret = r == STORE_OK ? 0 : -1;
	} else if (idlog_read_file(&log, args[1], err) == 0) {
		if (strcmp(log.address, addr) != 0)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the "
			    "identity of %s, not %s", args[1], log.address,
			    addr);
		else if (strcmp(sub, "updatelog") == 0)
			ret = update_log(st, addr, &log, err);
		else
			ret = add_user(st, addr, &log, err);
		if (ret == STORE_EXISTS) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "%s already has an "
			    "account", addr);
			ret = -1;
		}
		idlog_release(&log);
	}
	store_close(st);
	return ret;
}

