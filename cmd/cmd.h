/*
 * cmd.h - what every command's main needs: a safe start, the program
 * name, one-line errors on stderr, --version, a checked end.  Only
 * commands include this; lib/ never prints.
 */
#ifndef SMIMP_CMD_H
#define SMIMP_CMD_H

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "exitcode.h"
#include "clientconf.h"
#include "idlog.h"
#include "jsontext.h"
#include "options.h"
#include "proc.h"
#include "util.h"
#include "vis.h"

static const char *progname;

/*
 * One line on stderr: "progname: message".  The message is escaped
 * (lib/vis.h): it may quote a file name, a header or a server's words,
 * and none of them may drive the terminal.
 */
static void
say(const char *msg, const char *suffix)
{
	char safe[VIS_OUT_MAX(SMIMP_ERR_MSG * 2)];

	vis_line(msg, safe, sizeof(safe));
	fprintf(stderr, "%s: %s%s\n", progname, safe, suffix);
}

__attribute__((format(printf, 1, 2), unused)) static void
warnx_(const char *fmt, ...)
{
	char msg[SMIMP_ERR_MSG * 2];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say(msg, "");
}

/* Print a library error and return its exit code. */
__attribute__((unused)) static int
report(const struct smimp_err *err)
{
	say(err->msg, "");
	return err->code != 0 ? err->code : SMIMP_EXIT_FAIL;
}

/*
 * Every command's start: descriptors 0-2 valid, no core dumps (secrets
 * and plaintext pass through every command), its name for messages,
 * and libsodium ready.
 */
__attribute__((unused)) static int
cmd_start(const char *name)
{
	struct smimp_err err;

	progname = name;
	/* A refused option is said in one line, by option_error(). */
	opterr = 0;
	smimp_err_clear(&err);
#ifdef M_MMAP_THRESHOLD
	/*
	 * The message pipeline's buffers (half a MiB each) from the heap,
	 * not a mapping each: mapped, each costs two system calls and a
	 * page fault even for a 1 KiB message.  The memory is the same.
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
#endif
	if (proc_std_fds(&err) != 0 || proc_no_core(&err) != 0) {
		report(&err);
		return -1;
	}
	if (sodium_init() < 0) {
		warnx_("cannot initialize libsodium");
		return -1;
	}
	return 0;
}

/* Standard output could not be written: said once, and exit 1. */
static int stdout_failed;

/*
 * Flush standard output; a failure (a full disk, a closed descriptor)
 * is said once and gives -1.
 */
__attribute__((unused)) static int
stdout_check(void)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	if (!stdout_failed)
		warnx_("cannot write to standard output%s%s", errno != 0 ?
		    ": " : "", errno != 0 ? strerror(errno) : "");
	stdout_failed = 1;
	return -1;
}

/*
 * Every command's end: standard output flushed and closed.  Output
 * that did not get out makes a command that succeeded fail; any other
 * failure keeps its own code.
 */
__attribute__((unused)) static int
cmd_exit(int rc)
{
	static int closed;

	if (!closed) {
		closed = 1;
		errno = 0;
		if (stdout_check() == 0 && fclose(stdout) != 0) {
			warnx_("cannot write to standard output: %s",
			    strerror(errno));
			stdout_failed = 1;
		}
	}
	return stdout_failed && rc == SMIMP_EXIT_OK ? SMIMP_EXIT_FAIL : rc;
}

__attribute__((unused)) static int
print_version(void)
{
	printf("%s %s\n", progname, SMIMP_VERSION);
	return cmd_exit(SMIMP_EXIT_OK);
}

/* Usage error: the message, then a pointer to --help. */
__attribute__((format(printf, 1, 2), unused)) static int
usage_error(const char *fmt, ...)
{
	char msg[SMIMP_ERR_MSG * 2], suffix[64];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)snprintf(suffix, sizeof(suffix), " (see '%s --help')", progname);
	say(msg, suffix);
	return SMIMP_EXIT_USAGE;
}

/* getopt_long's '?': what it refused, in one line (options.h). */
__attribute__((unused)) static int
option_error(char *const argv[], const char *optstring,
    const struct option *longopts)
{
	char msg[256];

	option_refused(msg, sizeof(msg), argv, optstring, longopts);
	return usage_error("%s", msg);
}

/*
 * Print j as one line of compact JSON, its keys in the order they were
 * built, and free it: the one form of every --json output.  In ASCII,
 * every control and every other character escaped (\uHHHH): the
 * strings may quote a server's words, and none of them may drive the
 * terminal that shows the line.
 */
__attribute__((unused)) static void
print_json(json_t *j)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT |
	    JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;

	if (text != NULL)
		printf("%s\n", text);
	free(text);
	json_decref(j);
}

/*
 * What following a pinned identity from was records to log changed
 * (c), in the words of smimp-trust refresh: "identity key rotated; new
 * encryption key; 3 records, 1 before".  Every command that follows an
 * identity says it so.
 */
__attribute__((unused)) static void
describe_follow(char *buf, size_t cap, const struct idlog *log, size_t was,
    const struct idlog_changes *c)
{
	char when[TIME_STRLEN];
	size_t n = 0;

#define ADD(...) (void)(n < cap ? n += (size_t)snprintf(buf + n, cap - n, \
	__VA_ARGS__) : 0)
	buf[0] = '\0';
	if (c->recovered) {
		time_format(c->recovered_at, when);
		ADD("recovered with its recovery key on %s", when);
		if (c->voided > 0)
			ADD(", %zu record%s cut back, void", c->voided,
			    c->voided == 1 ? "" : "s");
		ADD("; ");
	}
	if (c->rotated)
		ADD("identity key rotated; ");
	if (c->encryption)
		ADD("new encryption key; ");
	if (c->devices_added > 0)
		ADD("%zu device%s added; ", c->devices_added,
		    c->devices_added == 1 ? "" : "s");
	if (c->devices_removed > 0)
		ADD("%zu device%s removed; ", c->devices_removed,
		    c->devices_removed == 1 ? "" : "s");
	if (c->revoked) {
		time_format(log->revoked_at, when);
		ADD("revoked on %s (\"%s\"); ", when, log->reason);
	}
	ADD("%zu records, %zu before", log->n, was);
#undef ADD
}

/* The options of every command that talks to servers. */
enum { OPT_RESOLVE = 900, OPT_CACERT, OPT_ALLOW_HTTP };
#define REMOTE_LONGOPTS \
	{ "resolve", required_argument, NULL, OPT_RESOLVE }, \
	{ "cacert", required_argument, NULL, OPT_CACERT }, \
	{ "allow-http", required_argument, NULL, OPT_ALLOW_HTTP }

/* 1 if getopt's c was one of them (now in conf), else 0. */
__attribute__((unused)) static int
remote_option(int c, const char *arg, struct clientconf *conf)
{
	switch (c) {
	case OPT_RESOLVE: conf->remote.resolve = arg; return 1;
	case OPT_CACERT: conf->remote.cacert = arg; return 1;
	case OPT_ALLOW_HTTP: conf->remote.allow_http = arg; return 1;
	default: return 0;
	}
}

/* After the flags: the environment, then the config file. */
__attribute__((unused)) static int
remote_options_finish(struct clientconf *conf)
{
	struct smimp_err err;

	smimp_err_clear(&err);
	return clientconf_load(conf, &err) != 0 ? report(&err) : 0;
}

#endif
