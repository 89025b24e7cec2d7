/*
 * sealmany - many messages sealed in one process, for the suites that
 * need a mailbox of hundreds of them: what smimp-seal -i KEY -r RCPT
 * makes of each body (the same library call), without a process for
 * each.
 *
 *	sealmany KEY PUB RCPT COUNT PREFIX
 *		seal COUNT messages from the identity KEY (log PUB) to
 *		the .pub RCPT, the Nth (1 to COUNT) of body "N\n", into
 *		PREFIXN.age
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "outfile.h"

#include "sealpair.h"

static int
fail(const char *what, const struct smimp_err *err)
{
	fprintf(stderr, "sealmany: %s: %s\n", what, err->msg);
	return 1;
}

/* The Nth message, whole into PREFIXN.age or not at all. */
static int
seal_one(const struct sealpair *sp, const char *prefix, long n,
    struct smimp_err *err)
{
	char path[4096], body[32];
	struct outfile of;
	int in, len, ret = -1;

	len = snprintf(body, sizeof(body), "%ld\n", n);
	if (snprintf(path, sizeof(path), "%s%ld.age", prefix, n) >=
	    (int)sizeof(path))
		return smimp_err_set(err, 1, "a name too long");
	in = spool_open(err);
	if (in < 0)
		return -1;
	if (fd_write_all(in, body, (size_t)len) != 0 ||
	    lseek(in, 0, SEEK_SET) != 0) {
		close(in);
		return smimp_err_sys(err, 1, "cannot spool the body");
	}
	if (outfile_open(&of, path, err) == 0) {
		if (message_seal(&sp->p, in, of.fd, NULL, 0, err) == 0 &&
		    outfile_commit(&of, err) == 0)
			ret = 0;
		outfile_close(&of);
	}
	close(in);
	return ret;
}

int
main(int argc, char **argv)
{
	static struct sealpair sp;
	struct smimp_err err;
	char *end;
	long count, i;
	int ret = 0;

	smimp_err_clear(&err);
	if (argc != 6 || (count = strtol(argv[4], &end, 10)) < 1 ||
	    *end != '\0') {
		fprintf(stderr, "usage: sealmany KEY PUB RCPT COUNT PREFIX\n");
		return 2;
	}
	if (sodium_init() < 0 ||
	    sealpair_load(&sp, argv[1], argv[2], argv[3], &err) != 0)
		return fail("cannot load the keys", &err);
	for (i = 1; i <= count && ret == 0; i++)
		if (seal_one(&sp, argv[5], i, &err) != 0)
			ret = fail("cannot seal", &err);
	sealpair_release(&sp);
	return ret;
}
