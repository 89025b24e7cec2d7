/*
 * smimpd - the smimp server: identity directory, accounts, mailboxes and
 * store-and-forward relay over HTTPS (libmicrohttpd with its built-in
 * TLS), on a store chosen by URI (the embedded SQLite store by default).
 *
 *	smimpd [-d] [-n] [-v] [-f FILE] [options]	serve
 *	smimpd [options] adduser|deluser|updatelog|users|invite|invites ...
 *	(admin.c), queue ... (queue.c), stats (admin.c)
 *	smimpd [options] check [DOMAIN]	(check.c, peercheck.c)
 *	smimpd [options] backup DEST	(backup.c)
 *
 * Who does what: http.c dispatches the routes of routes.c, auth.c
 * authenticates, directory.c, accounts.c, submission.c, mailbox.c and
 * inbound.c answer, relay.c forwards to other domains, peers.c caches
 * what they publish, serverkey.c holds the server's key, metrics.c
 * counts and shows it, reload.c takes a new configuration on SIGHUP.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "http.h"
#include "notify.h"
#include "metrics.h"
#include "options.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimpd [-d] [-n] [-v] [-f FILE] [--domain DOMAIN] "
	    "[--listen ADDR:PORT]\n"
	    "              [--data DIR] [--store URI] [--cert FILE --key FILE "
	    "| --plain-http]\n"
	    "              [--base-url URL] [--metrics ADDR:PORT]\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] "
	    "[--domain DOMAIN]\n"
	    "              adduser ADDRESS FILE.pub\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] deluser "
	    "ADDRESS\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] "
	    "[--domain DOMAIN]\n"
	    "              updatelog ADDRESS FILE.pub\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] users\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] --domain "
	    "DOMAIN\n"
	    "              invite ADDRESS [HOURS]\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] invites\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] [--domain "
	    "DOMAIN]\n"
	    "              queue list|show ID|hold ID|release ID|retry ID"
	    "|delete ID\n"
	    "              [--no-bounce] [--json]\n"
	    "       smimpd [-f FILE] [--data DIR] [--store URI] stats "
	    "[--json]\n"
	    "       smimpd [-f FILE] [options] check [--json] [DOMAIN]\n"
	    "       smimpd [-f FILE] [--data DIR] backup [--json] DEST\n");
}

/*
 * An account from before the store kept receiving devices: they come
 * from its log, which stays as it is.  One that fails waits for the
 * next start (or its next log update); the others go on.
 */
static int
sync_devices(const char *address, const unsigned char *raw, size_t len,
    void *arg)
{
	struct store_device devs[STORE_DEVICES_MAX];
	struct store *st = arg;
	struct store_log sl;
	struct smimp_err err;
	struct idlog log;

	if (idlog_parse_verified(&log, raw, len, &err) != 0) {
		log_warnx("stored identity of %s: %s", address, err.msg);
		return 0;
	}
	server_store_log(&log, &sl, devs);
	if (store_user_log_update(st, address, raw, len, &sl, time_now(),
	    &err) == STORE_ERROR)
		log_warnx("devices of %s: %s", address, err.msg);
	idlog_release(&log);
	return 0;
}

struct store *
server_store_open(const struct smimpd_config *cfg, int create,
    struct smimp_err *err)
{
	struct store_limits lim;
	struct store *st;

	config_store_limits(cfg, &lim);
	st = (create ? store_open : store_open_existing)(cfg->store,
	    cfg->datadir, &lim, err);
	if (st != NULL && store_user_list_unsynced(st, sync_devices, st,
	    err) != STORE_OK) {
		store_close(st);
		return NULL;
	}
	return st;
}

/*
 * Started as root: give up root for the configured user once the port
 * is bound, and own the data directory as that user.
 */
static int
drop_privileges(const struct smimpd_config *cfg, struct smimp_err *err)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (cfg->user[0] == '\0')
		return 0;	/* serve() warns, once all is set up */
	pw = getpwnam(cfg->user);
	if (pw == NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "no such user '%s'",
		    cfg->user);
	if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot become %s",
		    cfg->user);
	if (setuid(0) == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "could regain root "
		    "after dropping it");
	return 0;
}

enum { OPT_DOMAIN = 256, OPT_LISTEN, OPT_DATA, OPT_CERT, OPT_KEY, OPT_PLAIN,
	OPT_BASE, OPT_STORE, OPT_METRICS, OPT_LOG_LEVEL, OPT_VERSION };

struct smimpd_opts {
	const char *config;
	int foreground;
	int check_only;
	const char *sub;
	char **args;
	int nargs;
	/* Settings given as flags, by OPT_ value: they override the file. */
	const char *flags[OPT_LOG_LEVEL - OPT_DOMAIN + 1];
	/* --store's URI, copied: its password is blotted out of argv. */
	char store[sizeof(((struct smimpd_config *)NULL)->store)];
};

/* The settings of the flags, in the order of their OPT_ values. */
static const char *const flag_names[] = { "domain", "listen", "data",
	"cert", "key", "plain-http", "base-url", "store", "metrics-listen",
	"log-level" };

/*
 * The configuration: defaults, the file, then the flags.  The same on
 * SIGHUP, so that a flag still overrides what the file now says.
 */
static int
load_config(struct smimpd_config *cfg, const struct smimpd_opts *o,
    int serving, struct smimp_err *err)
{
	size_t i;

	config_defaults(cfg);
	if (o->config != NULL && config_read(cfg, o->config, err) != 0)
		return -1;
	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (o->flags[i] != NULL && config_set(cfg, flag_names[i],
		    o->flags[i], err) != 0)
			return -1;
	return config_finish(cfg, serving, err);
}

/* SIGHUP: the log reopened; a valid configuration taken, else none. */
static void
reload(struct server *srv, const struct smimpd_opts *o)
{
	struct smimpd_config *next;
	struct smimp_err err;

	server_log_reopen(srv);
	log_info("SIGHUP: reading the configuration%s%s", o->config != NULL ?
	    " from " : "", o->config != NULL ? o->config : "");
	next = malloc(sizeof(*next));	/* too large for the stack */
	if (next == NULL || load_config(next, o, 1, &err) != 0) {
		log_warnx("reload: %s; the configuration stays as it was",
		    next == NULL ? "out of memory" : err.msg);
		metrics_reload(0);
	} else {
		(void)server_reload(srv, next);
	}
	free(next);
}

static int
serve(struct server *srv, const struct smimpd_opts *o,
    struct smimp_err *err)
{
	const struct timespec tick = { 1, 0 };
	sigset_t set;
	int sig;

	/* Per-domain limits count per site: the list, read once. */
	if (sites_init() != 0)
		log_warnx("no Public Suffix List: each domain is its own site "
		    "for per-domain limits");
	if (ratelimit_init(&srv->per_sender, srv->cfg.rate_sender) != 0 ||
	    ratelimit_init(&srv->per_domain, srv->cfg.rate_domain) != 0 ||
	    ratelimit_init(&srv->per_source, srv->cfg.rate_failures) != 0 ||
	    ratelimit_init(&srv->per_lookup, srv->cfg.rate_lookup) != 0 ||
	    ratelimit_init(&srv->per_lookup_domain,
	    srv->cfg.rate_lookup_domain) != 0 ||
	    ratelimit_init(&srv->per_status, srv->cfg.rate_status) != 0 ||
	    ratelimit_init(&srv->per_prekey, srv->cfg.rate_prekeys) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up rate "
		    "limits");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Every thread inherits the mask; the main thread waits. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (http_start(srv, err) != 0)
		return -1;
	if (metrics_start(srv, err) != 0) {
		http_stop(srv);
		return -1;
	}
	if (relay_start(srv) != 0) {
		metrics_stop(srv);
		http_stop(srv);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start the "
		    "relay");
	}
	log_info("serving %s on %s (%s)", srv->cfg.domain, srv->cfg.listen,
	    srv->cfg.plain_http ? "plain HTTP" : "HTTPS");
	notify_state("READY=1\nSTATUS=serving %s on %s", srv->cfg.domain,
	    srv->cfg.listen);
	if (geteuid() == 0)
		log_warnx("running as root: set 'user' to the account to run "
		    "as");
	/* Once a second, the services a reload replaced may be done. */
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		http_reap(srv);
		if (sig == SIGHUP) {
			notify_reloading();
			reload(srv, o);
			notify_state("READY=1");
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
	}
	notify_state("STOPPING=1");
	log_info("signal %d: finishing requests in flight", sig);
	metrics_stop(srv);
	http_stop(srv);
	relay_stop(srv);
	log_info("stopped");
	return 0;
}

/*
 * What smimpd printed (the usage, the version, "configuration OK", an
 * administration command's answer) got out: a full disk or a closed
 * pipe is a failure, never a silent exit 0.
 */
static int
stdout_done(struct smimp_err *err)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout) && fclose(stdout) == 0)
		return 0;
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot write to standard "
	    "output%s%s", errno != 0 ? ": " : "",
	    errno != 0 ? strerror(errno) : "");
}

/* The exit status of --help and --version: 0 once their line got out. */
static int
printed_exit(void)
{
	struct smimp_err err;

	smimp_err_clear(&err);
	if (stdout_done(&err) == 0)
		return SMIMP_EXIT_OK;
	fprintf(stderr, "smimpd: %s\n", err.msg);
	return err.code;
}

static int
parse_args(int argc, char **argv, struct smimpd_opts *o,
    struct smimp_err *err)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "plain-http", no_argument, NULL, OPT_PLAIN },
		{ "base-url", required_argument, NULL, OPT_BASE },
		{ "store", required_argument, NULL, OPT_STORE },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "+f:dnvh";
	char what[256];
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->config = optarg; break;
		case 'd': o->foreground = 1; break;
		case 'n': o->check_only = 1; break;
		case 'v': o->flags[OPT_LOG_LEVEL - OPT_DOMAIN] = "debug"; break;
		case 'h': usage(stdout); exit(printed_exit());
		case OPT_VERSION:
			printf("smimpd %s\n", SMIMP_VERSION);
			exit(printed_exit());
		case OPT_PLAIN: o->flags[OPT_PLAIN - OPT_DOMAIN] = "yes"; break;
		case OPT_STORE:
			/* Too long for the copy: refused as a setting. */
			o->flags[OPT_STORE - OPT_DOMAIN] = optarg;
			if ((size_t)snprintf(o->store, sizeof(o->store), "%s",
			    optarg) < sizeof(o->store))
				o->flags[OPT_STORE - OPT_DOMAIN] = o->store;
			/* Every local user reads a process's arguments. */
			store_uri_hide(optarg);
			break;
		default:
			if (c >= OPT_DOMAIN && c <= OPT_METRICS) {
				o->flags[c - OPT_DOMAIN] = optarg;
				break;
			}
			option_refused(what, sizeof(what), argv, shortopts,
			    longopts);
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s (see "
			    "'smimpd --help')", what);
		}
	}
	if (optind < argc) {
		o->sub = argv[optind++];
		o->args = argv + optind;
		o->nargs = argc - optind;
	}
	/*
	 * -h, --help and --version after a subcommand too, as every other
	 * command takes them wherever they stand (no subcommand takes a
	 * word that starts with '-' but its flags).
	 */
	for (c = 0; c < o->nargs; c++) {
		if (strcmp(o->args[c], "-h") == 0 ||
		    strcmp(o->args[c], "--help") == 0) {
			usage(stdout);
			exit(printed_exit());
		}
		if (strcmp(o->args[c], "--version") == 0) {
			printf("smimpd %s\n", SMIMP_VERSION);
			exit(printed_exit());
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct smimpd_opts o;
	struct server srv;
	struct smimp_err err;
	int ret;

	smimp_err_clear(&err);
	/* Whatever smimpd creates (store, bodies, keys) is its own alone. */
	(void)umask(077);
	memset(&srv, 0, sizeof(srv));
	srv.listen_fd = -1;
	srv.metrics_fd = -1;
	if (sodium_init() < 0) {
		fprintf(stderr, "smimpd: cannot initialize libsodium\n");
		return SMIMP_EXIT_FAIL;
	}
	if (parse_args(argc, argv, &o, &err) != 0 ||
	    load_config(&srv.cfg, &o, o.sub == NULL, &err) != 0)
		goto fail;
	log_verbose = srv.cfg.log_debug;
	if (o.sub != NULL) {
		if (admin_run(o.sub, o.args, o.nargs, &srv.cfg, &err) != 0 ||
		    stdout_done(&err) != 0)
			goto fail;
		return SMIMP_EXIT_OK;
	}
	if (o.check_only) {
		printf("smimpd: configuration OK\n");
		if (stdout_done(&err) != 0)
			goto fail;
		return SMIMP_EXIT_OK;
	}
	if (http_listen(&srv, &err) != 0 || metrics_listen(&srv, &err) != 0 ||
	    drop_privileges(&srv.cfg, &err) != 0)
		goto fail;
	/* As the user it runs as: a reopen after logrotate can open it. */
	if (srv.cfg.log[0] != '\0' && log_open(srv.cfg.log, &err) != 0)
		goto fail;
	srv.store = server_store_open(&srv.cfg, 1, &err);
	if (srv.store == NULL || serverkey_load(&srv, &err) != 0)
		goto fail;
	store_observe_commits(srv.store, metrics_commit, NULL);
	store_watch(srv.store, log_outage, &srv);
	if ((size_t)snprintf(srv.spool_prefix, sizeof(srv.spool_prefix),
	    "%s/upload", store_spool_dir(srv.store)) >=
	    sizeof(srv.spool_prefix)) {
		smimp_err_set(&err, SMIMP_EXIT_FAIL, "spool path too long");
		goto fail;
	}
	ret = serve(&srv, &o, &err);
	store_close(srv.store);
	serverkey_release();
	if (ret != 0)
		goto fail;
	return SMIMP_EXIT_OK;
fail:
	if (srv.listen_fd >= 0)
		(void)close(srv.listen_fd);
	if (srv.metrics_fd >= 0)
		(void)close(srv.metrics_fd);
	free(srv.tls_cert);
	if (srv.tls_key != NULL) {
		sodium_memzero(srv.tls_key, strlen(srv.tls_key));
		free(srv.tls_key);
	}
	if (err.msg[0] != '\0')
		fprintf(stderr, "smimpd: %s\n", err.msg);
	if (srv.store != NULL)
		store_close(srv.store);
	serverkey_release();
	return err.code != 0 ? err.code : SMIMP_EXIT_FAIL;
}
