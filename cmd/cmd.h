/*
 * cmd.h - what every command's main needs: the program name, one-line
 * errors on stderr, --version.  Only commands include this; lib/ never
 * prints.
 */
#ifndef SMIMP_CMD_H
#define SMIMP_CMD_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "exitcode.h"

static const char *progname;

__attribute__((format(printf, 1, 2), unused)) static void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Print a library error and return its exit code. */
__attribute__((unused)) static int
report(const struct smimp_err *err)
{
	fprintf(stderr, "%s: %s\n", progname, err->msg);
	return err->code != 0 ? err->code : SMIMP_EXIT_FAIL;
}

__attribute__((unused)) static int
print_version(void)
{
	printf("%s %s\n", progname, SMIMP_VERSION);
	return SMIMP_EXIT_OK;
}

/* Usage error: the message, then a pointer to --help. */
__attribute__((format(printf, 1, 2), unused)) static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s --help')\n", progname);
	return SMIMP_EXIT_USAGE;
}

#endif
