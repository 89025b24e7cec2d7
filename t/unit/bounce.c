/*
 * bounce - checks of lib/bounce.c that a test can fail: notices verify
 * under their server's key only, signed under their own context, and
 * another server's words are quoted as one printable, capped line;
 * bounce_parse reads a notice's fields and nothing else, and
 * mime_bounce_write makes any byte of them printable, in lines that
 * fit.  Prints "ok NAME" or "FAIL NAME" per check, then a count.
 *
 *	bounce key		the public key of a server key of seed
 *				0x31 bytes, base64
 *	bounce sign < LINES	LINES (a notice's, or anything) and the
 *				signature line of that key under the
 *				notice's context: what a lying server of
 *				one's own signs
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bounce.h"
#include "fileio.h"
#include "mime.h"
#include "util.h"

#include "check.h"

static int
parses(const struct sbuf *sb, struct bounce *out, char *storage,
    size_t cap)
{
	return bounce_parse((const unsigned char *)sb->buf, sb->len, out,
	    storage, cap) == 0;
}

/* A notice with its first from changed to with (n bytes). */
static int
parses_changed_n(const struct sbuf *sb, const char *from, const char *with,
    size_t n)
{
	struct sbuf c;
	struct bounce out;
	char storage[4096];
	const char *at = strstr(sb->buf, from);
	int r;

	sbuf_init(&c, 65536);
	(void)sbuf_add(&c, sb->buf, (size_t)(at - sb->buf));
	(void)sbuf_add(&c, with, n);
	(void)sbuf_add(&c, at + strlen(from), sb->len - (size_t)(at - sb->buf) -
	    strlen(from));
	r = parses(&c, &out, storage, sizeof(storage));
	sbuf_release(&c);
	return r;
}

static int
parses_changed(const struct sbuf *sb, const char *from, const char *with)
{
	return parses_changed_n(sb, from, with, strlen(with));
}

static void
parse_checks(const struct sbuf *sb, const struct bounce *b)
{
	struct bounce out;
	char storage[4096];

	check(parses(sb, &out, storage, sizeof(storage)) &&
	    strcmp(out.server, b->server) == 0 &&
	    strcmp(out.message_id, b->message_id) == 0 &&
	    strcmp(out.recipients, b->recipients) == 0 &&
	    strcmp(out.date, b->date) == 0 &&
	    strcmp(out.reason, b->reason) == 0, "parse: every field");
	check(!parses(sb, &out, storage, sb->len), "parse: too little room");
	check(!parses_changed(sb, "server: ", "serverx "), "parse: a field "
	    "missing");
	check(!parses_changed(sb, "date: 2026-11-26T00:00:00Z",
	    "date: 2026-13-26T00:00:00Z"), "parse: a bad date");
	check(!parses_changed(sb, "smimp-bounce/1\n", "smimp-bounce/12\n"),
	    "parse: another magic");
	check(!parses_changed(sb, "reason: ", "reason: a\nextra: "),
	    "parse: an extra line");
	check(parses_changed_n(sb, "m1\n", "m2\n", 3) &&
	    !parses_changed_n(sb, "m1\n", "m\0001\n", 4), "parse: a NUL");
}

/* What mime_bounce_write writes of b, into out (cap bytes). */
static int
written(const struct bounce *b, char *out, size_t cap)
{
	struct smimp_err err;
	FILE *f = tmpfile();
	size_t n;

	if (f == NULL || mime_bounce_write(b, "alice@example.org", fileno(f),
	    "a temporary file", &err) != 0 || fseek(f, 0, SEEK_SET) != 0) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	return 0;
}

/* Printable ASCII in lines of at most 78, and nothing else. */
static int
plain_lines(const char *s)
{
	size_t col = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			col = 0;
		else if (*s < 0x20 || *s >= 0x7f || ++col > 78)
			return 0;
	}
	return 1;
}

static void
mime_checks(void)
{
	static const char hostile[] = "a\033]0;owned\007\tb\177 ";
	static char out[256 * 1024], rcpts[300 * 17 + 1], reason[3000];
	struct bounce b = { "example.org", "=?utf-8?q?x?=@example.org\033[2J",
	    rcpts, "2026-11-26T00:00:00Z", reason };
	size_t i;

	for (i = 0; i < 300; i++)
		(void)snprintf(rcpts + 17 * i, 18, "%s%03zu@example.net",
		    i > 0 ? ",r" : "rr", i % 1000);
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	memcpy(reason, hostile, strlen(hostile));
	check(written(&b, out, sizeof(out)) == 0, "mime: written");
	check(plain_lines(out), "mime: printable, lines of 78 at most");
	check(strstr(out, "\nSubject: Undelivered: =_utf-8?q?x?=@example.org"
	    "?[2J\n") != NULL, "mime: the id made plain in Subject");
	check(strstr(out, "\nReason: a?]0;owned??b? xxx") != NULL,
	    "mime: the reason made plain");
	check(strstr(out, "\nDate: Thu, 26 Nov 2026 00:00:00 +0000\n") !=
	    NULL, "mime: the date");
	check(strstr(out, "Not delivered to: rr000@example.net\n") != NULL &&
	    strstr(out, "Not delivered to: r099@example.net\n") != NULL &&
	    strstr(out, "Not delivered to: r100@") == NULL &&
	    strstr(out, "Not delivered to: 200 more\n") != NULL,
	    "mime: 100 recipients, then a count");
	b.date = "yesterday";
	check(written(&b, out, sizeof(out)) != 0, "mime: a bad date refused");
}

static int
tool(const char *what)
{
	unsigned char seed[32], pk[32], sk[64], sig[64], *in = NULL;
	struct smimp_err err;
	struct signer who;
	struct sbuf sb;
	size_t len;
	int r;

	memset(seed, 0x31, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	sbuf_init(&sb, 1024 * 1024);
	if (strcmp(what, "key") == 0) {
		r = sbuf_add_b64(&sb, pk, 32);
	} else {
		signer_secret(&who, "server:example.net", sk);
		r = fd_read_all(0, "stdin", 512 * 1024, &in, &len, &err) ||
		    sbuf_add(&sb, in, len) ||
		    signer_sign_in_context(&who, "smimp/1 bounce", sb.buf,
		    sb.len, sig) || sbuf_add(&sb, "signature: ", 11) ||
		    sbuf_add_b64(&sb, sig, 64);
	}
	r = r || sbuf_add(&sb, "\n", 1) ||
	    fwrite(sb.buf, 1, sb.len, stdout) != sb.len;
	free(in);
	sbuf_release(&sb);
	return r ? 1 : 0;
}

int
main(int argc, char **argv)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64], sig[64];
	struct bounce b = { "example.org", "m1", "bob@example.net",
	    "2026-11-26T00:00:00Z", "example.net answered HTTP 404" };
	char quoted[512], hostile[1024], storage[4096];
	struct bounce parsed;
	struct sbuf sb, bare;
	struct signer who;
	size_t i, start;

	if (sodium_init() < 0)
		return 1;
	if (argc == 2 && (strcmp(argv[1], "key") == 0 ||
	    strcmp(argv[1], "sign") == 0))
		return tool(argv[1]);
	if (argc != 1) {
		fprintf(stderr, "usage: bounce [key | sign]\n");
		return 2;
	}
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	signer_secret(&who, "server:example.org", sk);
	sbuf_init(&sb, 65536);
	check(bounce_build(&sb, &b, &who) == 0, "build");
	check(bounce_verify((unsigned char *)sb.buf, sb.len, pk) == 1,
	    "verifies under its key");
	check(bounce_verify((unsigned char *)sb.buf, sb.len, pk2) == 0,
	    "not under another key");
	parse_checks(&sb, &b);
	mime_checks();
	sb.buf[20] ^= 1;
	check(bounce_verify((unsigned char *)sb.buf, sb.len, pk) == 0,
	    "a changed line fails");
	sb.buf[20] ^= 1;
	/* The same lines signed without the context must not verify. */
	for (start = 0, i = sb.len - 1; i > 0; i--)
		if (sb.buf[i - 1] == '\n') {
			start = i;
			break;
		}
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, start, sk);
	sbuf_init(&bare, 65536);
	(void)sbuf_add(&bare, sb.buf, start);
	(void)sbuf_add(&bare, "signature: ", 11);
	(void)sbuf_add_b64(&bare, sig, 64);
	(void)sbuf_add(&bare, "\n", 1);
	check(bounce_verify((unsigned char *)bare.buf, bare.len, pk) == 0,
	    "a signature without the context fails");
	b.reason = "\033[2J\tbell\007";
	sb.len = 0;
	check(bounce_build(&sb, &b, &who) == 0 &&
	    bounce_verify((unsigned char *)sb.buf, sb.len, pk) == 1 &&
	    parses(&sb, &parsed, storage, sizeof(storage)) &&
	    strcmp(parsed.reason, b.reason) == 0, "parse: control bytes in "
	    "the reason as they were signed");
	b.reason = "two\nlines";
	check(bounce_build(&bare, &b, &who) != 0, "a field of two lines is "
	    "refused");
	memset(hostile, 'A', sizeof(hostile) - 1);
	hostile[sizeof(hostile) - 1] = '\0';
	memcpy(hostile, "\033]0;owned\007\r\nreason: forged", 26);
	bounce_quote("evil.example", hostile, quoted, sizeof(quoted));
	check(strncmp(quoted, "evil.example said: ", 19) == 0, "quote is "
	    "marked as theirs");
	check(strlen(quoted) == 19 + BOUNCE_QUOTE_MAX, "quote is capped");
	for (i = 0; quoted[i] != '\0'; i++)
		if (quoted[i] < 0x20 || quoted[i] >= 0x7f)
			break;
	check(quoted[i] == '\0', "quote is printable, one line");
	sbuf_release(&sb);
	sbuf_release(&bare);
	return check_summary();
}
