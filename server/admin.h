/*
 * admin.h - what smimpd's subcommands for the administrator share
 * (admin.c), and the ones that live in files of their own: the relay
 * queue (queue.c), the store's counts (admin.c), the checks of this
 * server and of another domain (check.c, peercheck.c).  Each prints
 * what it found on stdout, as text or, with --json, as JSON; errors go
 * back in err for smimpd's one line on stderr.
 */
#ifndef SMIMPD_ADMIN_H
#define SMIMPD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "err.h"
#include "remote.h"

/* The flags a subcommand takes, besides its words. */
#define ADMIN_JSON		1	/* --json */
#define ADMIN_NO_BOUNCE		2	/* --no-bounce */
#define ADMIN_WORDS_MAX		4

struct admin_args {
	unsigned int flags;		/* those given */
	char *word[ADMIN_WORDS_MAX];	/* the other arguments, in order */
	int nwords;
};

/*
 * The arguments of subcommand sub: flags among allowed, anywhere, and
 * at most max words; anything else is a usage error.
 */
int admin_args_parse(const char *sub, char **args, int nargs,
    unsigned int allowed, int max, struct admin_args *a,
    struct smimp_err *err);
/* A usage error: the message, then " (see 'smimpd --help')". */
int admin_usage(struct smimp_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* obj as compact JSON on stdout, then freed; -1 if it could not. */
int admin_json_put(json_t *obj, struct smimp_err *err);
/* The same, and a newline: one line. */
int admin_json_line(json_t *obj, struct smimp_err *err);
/* A span of seconds for people: "45s", "3m12s", "2h5m", "3d4h". */
void admin_duration(int64_t secs, char *out, size_t cap);
/* A date as JSON: the RFC 3339 string, or null for 0. */
json_t *admin_json_date(int64_t t);

/* ---- checks (check.c): one line each, or one JSON object each ---- */

enum check_status { CHECK_OK, CHECK_WARN, CHECK_FAIL, CHECK_SKIP };

/* A certificate that runs out sooner than this is warned about. */
#define CHECK_EXPIRY_WARN_DAYS	14
#define CHECK_MSG_MAX		640

struct check_report {
	int json;
	json_t *checks;			/* for --json */
	unsigned int n, failed;
};
void check_init(struct check_report *cr, int json);
/*
 * One check's outcome, in plain words (escaped on the way out: they
 * may quote another server), how long it took (ms; -1 untimed) and,
 * for --json, details (taken; NULL none).
 */
void check_say(struct check_report *cr, const char *name,
    enum check_status st, int64_t ms, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/*
 * The JSON document, with about (a domain, or NULL), when asked for;
 * then 0 when nothing failed, else -1 with err saying how many did.
 */
int check_done(struct check_report *cr, const char *about,
    struct smimp_err *err);
/* Milliseconds on a clock that never jumps, to time each step. */
int64_t check_ms(void);
/*
 * The host (without brackets) and port (the scheme's when none) of a
 * URL; -1 when it has none that fits.
 */
int check_url_host(const char *url, char *host, size_t hcap, char *port,
    size_t pcap);
/*
 * How a client reaches servers: the environment (SMIMP_RESOLVE,
 * SMIMP_CACERT, SMIMP_ALLOW_HTTP) first, then this server's settings.
 */
void check_remote_opts(const struct smimpd_config *cfg,
    struct remote_opts *o);

/* What a certificate check found (tlscheck.c). */
struct tls_report {
	enum check_status status;
	char msg[CHECK_MSG_MAX];
	json_t *details;		/* the caller takes it */
};
/*
 * This server's certificate chain and key files: they load, the key is
 * the first certificate's, each certificate is issued by the next, none
 * has expired or is not valid yet, the first names host (the base URL's;
 * "" not checked), and when it runs out.
 */
void tls_check_files(const char *cert, const char *key, const char *host,
    int64_t now, struct tls_report *r);
/*
 * The TLS of host:port as a client sees it, trusting cacert (NULL: the
 * system's authorities): the handshake, the version, the chain the
 * server sends, whether it verifies for host and why not, expiry.
 */
void tls_check_peer(const char *host, const char *port, const char *cacert,
    int64_t now, struct tls_report *r);

int queue_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int stats_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int check_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int backup_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int peercheck_run(const char *domain, int json, struct smimpd_config *cfg,
    struct smimp_err *err);

#endif
