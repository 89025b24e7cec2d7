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
/* obj as one line of JSON on stdout, then freed; -1 if it could not. */
int admin_json_line(json_t *obj, struct smimp_err *err);
/* A span of seconds for people: "45s", "3m12s", "2h5m", "3d4h". */
void admin_duration(int64_t secs, char *out, size_t cap);
/* A date as JSON: the RFC 3339 string, or null for 0. */
json_t *admin_json_date(int64_t t);

int queue_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int stats_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int check_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err);
int peercheck_run(const char *domain, int json, struct smimpd_config *cfg,
    struct smimp_err *err);

#endif
