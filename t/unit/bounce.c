/*
 * bounce - checks of lib/bounce.c that a test can fail: notices verify
 * under their server's key only, signed under their own context, and
 * another server's words are quoted as one printable, capped line.
 * Prints "ok NAME" or "FAIL NAME" per check, then a count.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "bounce.h"
#include "util.h"

#include "check.h"

int
main(void)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64], sig[64];
	struct bounce b = { "example.org", "m1", "bob@example.net",
	    "2026-11-26T00:00:00Z", "example.net answered HTTP 404" };
	char quoted[512], hostile[1024];
	struct sbuf sb, bare;
	struct signer who;
	size_t i, start;

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	signer_secret(&who, "server:example.org", sk);
	sbuf_init(&sb, 65536);
	check(bounce_build(&sb, &b, &who) == 0, "build");
	check(bounce_verify((unsigned char *)sb.buf, sb.len, pk) == 1,
	    "verifies under its key");
	check(bounce_verify((unsigned char *)sb.buf, sb.len, pk2) == 0,
	    "not under another key");
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
