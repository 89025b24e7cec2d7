/*
 * introduction - checks of lib/introduction.c that a test can fail, and
 * what a test needs to make statements the commands would refuse to.
 *
 *	introduction vector DIR		check DIR/introduction.txt (the
 *					statement alice, seed 01*32, makes)
 *					and DIR/introduction.b64 (its
 *					encoding), then the parser's rules
 *	introduction vector --generate DIR
 *					write them (only when the format
 *					changes on purpose)
 *	introduction sign KEY FILE	the lines in FILE signed as a
 *					statement by KEY's identity key,
 *					whatever they say, on stdout
 *	introduction verify PUB FILE	does FILE parse and verify under
 *					the identity key of the log PUB?
 *	introduction encode FILE	FILE in unpadded base64url
 *
 * vector prints "ok NAME" or "FAIL NAME" per check, then a count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "idlog.h"
#include "introduction.h"
#include "keys.h"
#include "util.h"

#include "check.h"

#define EXPIRES		1796328000	/* 2026-12-03T20:00:00Z */

/* Sign lines[0..len) as a statement with the 64-byte secret sk. */
static int
sign_lines(const char *lines, size_t len, const unsigned char *sk,
    struct sbuf *out)
{
	static const char ctx[] = "smimp/1 introduction";
	unsigned char sig[64];
	struct sbuf m;
	int r;

	sbuf_init(&m, 4096);
	r = sbuf_add(&m, ctx, sizeof(ctx)) || sbuf_add(&m, lines, len);
	if (r == 0)
		crypto_sign_detached(sig, NULL, (unsigned char *)m.buf, m.len,
		    sk);
	sbuf_release(&m);
	return r || sbuf_add(out, lines, len) ||
	    sbuf_add(out, "signature: ", 11) || sbuf_add_b64(out, sig, 64) ||
	    sbuf_add(out, "\n", 1) ? -1 : 0;
}

/* Does text, signed by sk, parse?  1 if so. */
static int
parses_signed(const char *text, const unsigned char *sk)
{
	struct introduction in;
	struct smimp_err err;
	struct sbuf sb;
	int ok;

	sbuf_init(&sb, 8192);
	ok = sign_lines(text, strlen(text), sk, &sb) == 0 &&
	    introduction_parse(&in, (unsigned char *)sb.buf, sb.len,
	    &err) == 0;
	sbuf_release(&sb);
	return ok;
}

#define LINES(a, b, c, d) INTRO_MAGIC "introducer: " a "\nintroduced: " b \
	"\nto: " c "\nexpires: " d "\n"
#define GOOD LINES("alice@example.org", "carol@example.com", \
	"bob@example.net", "2026-12-03T20:00:00Z")

/* The parser's rules: each variant of the good lines is refused. */
static void
strictness(const unsigned char *sk)
{
	static const struct { const char *text, *name; } bad[] = {
		{ LINES("Alice@example.org", "carol@example.com",
		    "bob@example.net", "2026-12-03T20:00:00Z"),
		    "an address not normalized is refused" },
		{ LINES("alice#example.org", "carol@example.com",
		    "bob@example.net", "2026-12-03T20:00:00Z"),
		    "the # spelling is refused" },
		{ LINES("alice@example.org", "carol@example.com",
		    "bob@example.net", "2026-02-30T20:00:00Z"),
		    "a date that does not round-trip is refused" },
		{ LINES("alice@example.org", "carol@example.com",
		    "bob@example.net", "2026-12-03 20:00:00Z"),
		    "a date in another form is refused" },
		{ INTRO_MAGIC "introduced: carol@example.com\n"
		    "introducer: alice@example.org\nto: bob@example.net\n"
		    "expires: 2026-12-03T20:00:00Z\n",
		    "lines out of order are refused" },
		{ INTRO_MAGIC "introducer: alice@example.org\n"
		    "introduced: carol@example.com\nto: bob@example.net\n"
		    "to: dave@example.net\nexpires: 2026-12-03T20:00:00Z\n",
		    "a repeated line is refused" },
		{ INTRO_MAGIC "introducer: alice@example.org\n"
		    "introduced: carol@example.com\nto: bob@example.net\n"
		    "note: hi\nexpires: 2026-12-03T20:00:00Z\n",
		    "an unknown line is refused" },
		{ "smimp-introduction/2\nintroducer: alice@example.org\n"
		    "introduced: carol@example.com\nto: bob@example.net\n"
		    "expires: 2026-12-03T20:00:00Z\n",
		    "another version is refused" },
		{ INTRO_MAGIC "introducer:  alice@example.org\n"
		    "introduced: carol@example.com\nto: bob@example.net\n"
		    "expires: 2026-12-03T20:00:00Z\n",
		    "a space before a value is refused" },
		{ INTRO_MAGIC "introducer: alice@example.org\r\n"
		    "introduced: carol@example.com\nto: bob@example.net\n"
		    "expires: 2026-12-03T20:00:00Z\n",
		    "a CR is refused" },
	};
	size_t i;

	check(parses_signed(GOOD, sk), "the good lines, signed, parse");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(!parses_signed(bad[i].text, sk), bad[i].name);
}

/* The statement's size cap, and what may follow the signature. */
static void
bounds(const struct introduction *good)
{
	struct introduction in;
	struct smimp_err err;
	char text[INTRO_MAX + 64];

	memcpy(text, good->text, good->len);
	text[good->len] = '\n';
	check(introduction_parse(&in, (unsigned char *)text, good->len + 1,
	    &err) != 0, "an empty line after the signature is refused");
	check(introduction_parse(&in, (unsigned char *)text, good->len - 1,
	    &err) != 0, "a statement without its last LF is refused");
	memset(text, 'a', sizeof(text));
	check(introduction_parse(&in, (unsigned char *)text, INTRO_MAX + 1,
	    &err) != 0 && strstr(err.msg, "over 1024 bytes") != NULL,
	    "a statement over 1024 bytes is refused as such");
}

/* What introduction_check says of the vector at several times. */
static void
checks(const struct introduction *in)
{
	struct smimp_err err;
	const char *c = "carol@example.com", *b = "bob@example.net";

	check(introduction_check(in, c, b, EXPIRES - 1, &err) == 0,
	    "good for carol to bob a second before it expires");
	check(introduction_check(in, c, b, EXPIRES, &err) != 0 &&
	    strstr(err.msg, "has expired") != NULL,
	    "expired at its expiry");
	check(introduction_check(in, "dave@example.com", b, EXPIRES - 60,
	    &err) != 0 && strstr(err.msg, "introduces carol@example.com, "
	    "not dave@example.com") != NULL, "not for another sender");
	check(introduction_check(in, c, "eve@example.net", EXPIRES - 60,
	    &err) != 0 && strstr(err.msg, "is to bob@example.net, not to "
	    "eve@example.net") != NULL, "not to another recipient");
	check(introduction_check(in, c, b, EXPIRES - INTRO_MAX_SECS -
	    INTRO_SKEW - 1, &err) != 0 && strstr(err.msg, "more than 90 "
	    "days") != NULL, "refused when it ends over 90 days ahead");
	check(introduction_check(in, c, b, EXPIRES - INTRO_MAX_SECS -
	    INTRO_SKEW, &err) == 0, "taken 90 days (and the skew) ahead");
}

/* c, a base64url digit of even value, with its lowest bit set. */
static char
b64url_low_bit(char c)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = strchr(digits, c);

	return p != NULL && (p - digits) % 2 == 0 ? digits[p - digits + 1] :
	    c;
}

/*
 * A statement of 230 bytes (not a multiple of 3: its last base64url
 * digit has unused bits) decodes, and not once such a bit is set.
 */
static void
unused_bits(const unsigned char *sk)
{
	static const char lines[] = LINES("alice@example.org",
	    "carol@example.com", "bo@example.net", "2026-12-03T20:00:00Z");
	struct introduction in, out;
	struct smimp_err err;
	struct sbuf sb;
	char *enc;
	size_t n;

	sbuf_init(&sb, 8192);
	(void)sign_lines(lines, strlen(lines), sk, &sb);
	(void)introduction_parse(&in, (unsigned char *)sb.buf, sb.len, &err);
	sb.len = 0;
	(void)introduction_encode(&in, &sb);
	(void)sbuf_add(&sb, "", 1);
	enc = sb.buf;
	n = strlen(enc);
	check(in.len % 3 != 0 && introduction_decode(&out, enc, n, &err) ==
	    0, "a statement of 230 bytes decodes");
	enc[n - 1] = b64url_low_bit(enc[n - 1]);
	check(introduction_decode(&out, enc, n, &err) != 0,
	    "base64url with unused bits set is refused");
	sbuf_release(&sb);
}

/* Encoding: one form, and lists of them. */
static void
encodings(const struct introduction *in, const char *b64, size_t blen)
{
	struct introduction out;
	struct smimp_err err;
	struct sbuf list;
	char *alt;
	size_t pos = 0, n = 0;
	int r;

	check(introduction_decode(&out, b64, blen, &err) == 0 &&
	    out.len == in->len && memcmp(out.text, in->text, in->len) == 0,
	    "introduction.b64 decodes to the statement");
	alt = malloc(blen + 3);
	memcpy(alt, b64, blen);
	memcpy(alt + blen, "==", 2);
	check(introduction_decode(&out, alt, blen + 2, &err) != 0,
	    "padding is refused");
	memcpy(alt, b64, blen);
	alt[3] = '+';
	check(introduction_decode(&out, alt, blen, &err) != 0,
	    "the standard alphabet is refused");
	free(alt);
	sbuf_init(&list, 1 << 20);
	while (list.len + blen + 1 <= INTRO_LIST_MAX) {
		if (list.len > 0)
			(void)sbuf_add(&list, ",", 1);
		(void)sbuf_add(&list, b64, blen);
	}
	while ((r = introduction_next(list.buf, list.len, &pos, &out,
	    &err)) == 1)
		n++;
	check(r == 0 && n > 1, "a list of 8192 bytes at most is read whole");
	(void)sbuf_add(&list, ",", 1);
	(void)sbuf_add(&list, b64, blen);
	pos = 0;
	check(introduction_next(list.buf, list.len, &pos, &out, &err) < 0,
	    "a list over 8192 bytes is refused");
	list.len = 0;
	(void)sbuf_addf(&list, "%.*s,,%.*s", (int)blen, b64, (int)blen, b64);
	pos = 0;
	check(introduction_next(list.buf, list.len, &pos, &out, &err) == 1 &&
	    introduction_next(list.buf, list.len, &pos, &out, &err) < 0,
	    "an empty entry is refused");
	list.len = 0;
	(void)sbuf_addf(&list, "%.*s,", (int)blen, b64);
	pos = 0;
	check(introduction_next(list.buf, list.len, &pos, &out, &err) < 0,
	    "a trailing comma is refused");
	sbuf_release(&list);
}

static int
vector(const char *dir, int generate)
{
	unsigned char seed[32], pk[32], sk[64], pk2[32], sk2[64];
	struct introduction in, parsed;
	struct signer alice;
	struct smimp_err err;
	struct sbuf enc;
	unsigned char *file = NULL, *b64 = NULL;
	char path[4096];
	size_t len = 0, blen = 0;

	memset(seed, 0x01, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	memset(seed, 0x11, 32);
	crypto_sign_seed_keypair(pk2, sk2, seed);
	signer_secret(&alice, "alice@example.org", sk);
	if (introduction_make(&in, "carol@example.com", "bob@example.net",
	    EXPIRES, EXPIRES - 7 * 86400, &alice, &err) != 0) {
		printf("FAIL make: %s\n", err.msg);
		return 1;
	}
	sbuf_init(&enc, INTRO_LIST_MAX);
	(void)introduction_encode(&in, &enc);
	(void)sbuf_add(&enc, "\n", 1);
	if (generate) {
		snprintf(path, sizeof(path), "%s/introduction.txt", dir);
		if (file_write_atomic(path, in.text, in.len, 0644, 1,
		    &err) != 0)
			goto fail;
		snprintf(path, sizeof(path), "%s/introduction.b64", dir);
		if (file_write_atomic(path, enc.buf, enc.len, 0644, 1,
		    &err) != 0)
			goto fail;
		sbuf_release(&enc);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/introduction.txt", dir);
	if (file_read_all(path, 4096, &file, &len, &err) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/introduction.b64", dir);
	if (file_read_all(path, 4096, &b64, &blen, &err) != 0)
		goto fail;
	check(len == in.len && memcmp(file, in.text, len) == 0,
	    "introduction.txt: the bytes the library makes");
	check(blen == enc.len && memcmp(b64, enc.buf, blen) == 0,
	    "introduction.b64: its unpadded base64url");
	check(introduction_parse(&parsed, file, len, &err) == 0 &&
	    introduction_verify(&parsed, pk), "verifies under alice's key");
	check(!introduction_verify(&parsed, pk2), "not under bob's key");
	parsed.text[30] ^= 1;
	check(!introduction_verify(&parsed, pk), "a changed byte fails");
	parsed.text[30] ^= 1;
	strictness(sk);
	bounds(&in);
	checks(&in);
	unused_bits(sk);
	if (blen > 1)
		encodings(&in, (char *)b64, blen - 1);
	free(file);
	free(b64);
	sbuf_release(&enc);
	(void)check_summary();
	return failed == 0 && passed > 0 ? 0 : 1;
fail:
	printf("FAIL %s\n", err.msg);
	free(file);
	free(b64);
	sbuf_release(&enc);
	return 1;
}

/* Tools for tests: sign any lines, verify, encode. */
static int
tool(const char *what, const char *a, const char *b)
{
	struct passphrase_source src = { NULL, 0 };
	struct introduction in;
	struct secret_key sk;
	struct smimp_err err;
	struct idlog log;
	struct sbuf out;
	unsigned char *buf = NULL;
	size_t len;
	int ret = 1;

	memset(&sk, 0, sizeof(sk));
	sbuf_init(&out, 1 << 20);
	if (strcmp(what, "sign") == 0) {
		if (secret_key_load(&sk, a, &src, &err) != 0 ||
		    file_read_all(b, 1 << 16, &buf, &len, &err) != 0)
			goto out;
		ret = sign_lines((char *)buf, len, sk.identity_secret, &out);
	} else if (strcmp(what, "verify") == 0) {
		if (idlog_read_file(&log, a, &err) != 0)
			goto out;
		if (introduction_read_file(&in, b, &err) == 0)
			ret = !introduction_verify(&in, log.identity_key);
		idlog_release(&log);
		if (ret != 0)
			(void)snprintf(err.msg, sizeof(err.msg), "%s",
			    "does not verify");
		(void)sbuf_add(&out, "verifies\n", ret == 0 ? 9 : 0);
	} else if (introduction_read_file(&in, a, &err) == 0) {
		ret = introduction_encode(&in, &out) || sbuf_add(&out, "\n", 1);
	}
out:
	if (ret != 0)
		fprintf(stderr, "introduction: %s\n", err.msg);
	else
		fwrite(out.buf, 1, out.len, stdout);
	free(buf);
	sbuf_release(&out);
	if (sk.secrets != NULL)
		secret_key_release(&sk);
	return ret != 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "vector") == 0)
		return vector(argv[2], 0);
	if (argc == 4 && strcmp(argv[1], "vector") == 0 &&
	    strcmp(argv[2], "--generate") == 0)
		return vector(argv[3], 1);
	if (argc == 4 && (strcmp(argv[1], "sign") == 0 ||
	    strcmp(argv[1], "verify") == 0))
		return tool(argv[1], argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "encode") == 0)
		return tool(argv[1], argv[2], NULL);
	fprintf(stderr, "usage: introduction vector [--generate] DIR\n"
	    "       introduction sign KEY FILE\n"
	    "       introduction verify PUB FILE\n"
	    "       introduction encode FILE\n");
	return 2;
}
