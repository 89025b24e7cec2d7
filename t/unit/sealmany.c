/*
 * sealmany - many messages sealed in one process, for the suites that
 * need hundreds of them: what smimp-seal -i KEY -r RCPT... makes of
 * each body (the same library call), without a process for each.
 *
 *	sealmany [-m NAME] KEY PUB COUNT PREFIX RCPT...
 *		seal COUNT messages from the identity KEY (log PUB) to
 *		the .pub files RCPT, the Nth (1 to COUNT) into
 *		PREFIXN.age: of body "N\n"; with -m, "message NAME.N\n",
 *		and every tenth 75,000 random bytes more, in base64
 *		lines of 76 (a message too large to be kept inline)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "outfile.h"
#include "util.h"

#include "sealpair.h"

#define RANDOM_BYTES	75000

struct many {
	struct sealpair sp;
	const char *name;	/* -m, or NULL */
};

static int
fail(const char *what, const struct smimp_err *err)
{
	fprintf(stderr, "sealmany: %s: %s\n", what, err->msg);
	return 1;
}

/* The Nth body into sb. */
static int
body(const struct many *m, long n, struct sbuf *sb)
{
	static unsigned char raw[RANDOM_BYTES];
	static char b64[RANDOM_BYTES * 4 / 3 + 4];
	size_t len, i;

	if (m->name == NULL)
		return sbuf_addf(sb, "%ld\n", n);
	if (sbuf_addf(sb, "message %s.%ld\n", m->name, n) != 0)
		return -1;
	if (n % 10 != 0)
		return 0;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
	    sodium_base64_VARIANT_ORIGINAL);
	len = strlen(b64);
	for (i = 0; i < len; i += 76)
		if (sbuf_add(sb, b64 + i, len - i < 76 ? len - i : 76) != 0 ||
		    sbuf_add(sb, "\n", 1) != 0)
			return -1;
	return 0;
}

/* The Nth message, whole into PREFIXN.age or not at all. */
static int
seal_one(const struct many *m, const char *prefix, long n,
    struct smimp_err *err)
{
	char path[4096];
	struct outfile of;
	struct sbuf sb;
	int in = -1, ret = -1;

	sbuf_init(&sb, 2 * RANDOM_BYTES);
	if (snprintf(path, sizeof(path), "%s%ld.age", prefix, n) >=
	    (int)sizeof(path) || body(m, n, &sb) != 0) {
		smimp_err_set(err, 1, "a name or a body too long");
		goto out;
	}
	in = spool_open(err);
	if (in < 0)
		goto out;
	if (fd_write_all(in, sb.buf, sb.len) != 0 ||
	    lseek(in, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, 1, "cannot spool the body");
		goto out;
	}
	if (outfile_open(&of, path, err) == 0) {
		if (message_seal(&m->sp.p, in, of.fd, NULL, 0, err) == 0 &&
		    outfile_commit(&of, err) == 0)
			ret = 0;
		outfile_close(&of);
	}
out:
	if (in >= 0)
		close(in);
	sbuf_release(&sb);
	return ret;
}

int
main(int argc, char **argv)
{
	static struct many m;
	struct smimp_err err;
	char *end;
	long count = 0, i;
	int a = 1, ret = 0;

	smimp_err_clear(&err);
	if (argc > 2 && strcmp(argv[1], "-m") == 0) {
		m.name = argv[2];
		a = 3;
	}
	if (argc - a < 5 || (count = strtol(argv[a + 2], &end, 10)) < 1 ||
	    *end != '\0') {
		fprintf(stderr, "usage: sealmany [-m NAME] KEY PUB COUNT "
		    "PREFIX RCPT...\n");
		return 2;
	}
	if (sodium_init() < 0 || sealpair_load_n(&m.sp, argv[a], argv[a + 1],
	    argv + a + 4, (size_t)(argc - a - 4), &err) != 0)
		ret = fail("cannot load the keys", &err);
	for (i = 1; i <= count && ret == 0; i++)
		if (seal_one(&m, argv[a + 3], i, &err) != 0)
			ret = fail("cannot seal", &err);
	sealpair_release(&m.sp);
	return ret;
}
