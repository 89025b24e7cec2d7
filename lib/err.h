/*
 * err.h - the caller-owned error record every lib/ function fills.
 *
 * lib/ never prints and never exits: a failing function returns -1 (or
 * NULL) and describes the failure here.  The code is an exit status from
 * exitcode.h, so a command maps a library failure to its exit code by
 * returning err.code.
 */
#ifndef SMIMP_ERR_H
#define SMIMP_ERR_H

#include <stddef.h>

#define SMIMP_ERR_MSG 1024

struct smimp_err {
	int code;		/* exit status, from exitcode.h */
	int detail;		/* module's failure class (enum age_failure) */
	char msg[SMIMP_ERR_MSG];
};

/* Record a failure; returns -1 so callers can `return smimp_err_set(...)`. */
int smimp_err_set(struct smimp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like smimp_err_set, with ": strerror(errno)" appended. */
int smimp_err_sys(struct smimp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void smimp_err_clear(struct smimp_err *err);

#endif
