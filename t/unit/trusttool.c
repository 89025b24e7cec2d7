/*
 * trusttool - a large trust store for tests and the benchmark, made in
 * seconds instead of one smimp-trust add (and one rewrite) per entry:
 *	trusttool store FILE N PINNED
 * writes a store of N entries (smimp-trust(5)) to FILE, replacing it:
 * the first PINNED are user1@example.org, user2@example.org, ...
 * pinned to genesis logs of their own (all signed by one key, which the
 * store does not check again), the rest alternate between addresses
 * with a tier only (userI@example.org) and domains (@dI.example).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "idlog.h"
#include "trust.h"
#include "util.h"

static int
fail(const char *what)
{
	fprintf(stderr, "trusttool: %s\n", what);
	return 1;
}

static int
store(const char *path, unsigned long n, unsigned long pinned)
{
	unsigned char pk[32], sk[64], enc[32], rec[32];
	char name[ADDRESS_MAX + 2], fp[FINGERPRINT_STRLEN];
	struct smimp_err err;
	struct sbuf sb;
	unsigned long i;
	int ret = 1;

	smimp_err_clear(&err);
	crypto_sign_keypair(pk, sk);
	randombytes_buf(enc, sizeof(enc));
	randombytes_buf(rec, sizeof(rec));
	sbuf_init(&sb, (size_t)1 << 30);
	if (sbuf_add(&sb, "smimp-trust/1\n", 14) != 0)
		goto out;
	for (i = 1; i <= n; i++) {
		struct idlog log;

		if (i > pinned && i % 2 == 0)
			(void)snprintf(name, sizeof(name), "@d%lu.example", i);
		else
			(void)snprintf(name, sizeof(name), "user%lu@example.org",
			    i);
		if (sbuf_addf(&sb, "\nname: %s\ntier: known\n"
		    "added: 2026-11-24T22:00:00Z\n", name) != 0)
			goto out;
		if (i > pinned)
			continue;
		if (idlog_genesis(&log, name, sk, enc, rec, 1795557600,
		    &err) != 0) {
			ret = fail(err.msg);
			goto out;
		}
		fingerprint_format(log.fingerprint, fp);
		if (sbuf_addf(&sb, "fingerprint: %s\nverified: no\nlog: ",
		    fp) != 0 || sbuf_add_b64(&sb, log.raw, log.raw_len) != 0 ||
		    sbuf_add(&sb, "\n", 1) != 0) {
			idlog_release(&log);
			goto out;
		}
		idlog_release(&log);
	}
	if (file_write_atomic(path, sb.buf, sb.len, 0600, 1, &err) != 0) {
		ret = fail(err.msg);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0 && err.msg[0] == '\0')
		ret = fail("out of memory");
	sodium_memzero(sk, sizeof(sk));
	sbuf_release(&sb);
	return ret;
}

int
main(int argc, char **argv)
{
	unsigned long n, pinned;
	char *end;

	if (sodium_init() < 0)
		return fail("cannot initialize libsodium");
	if (argc != 5 || strcmp(argv[1], "store") != 0)
		return fail("usage: trusttool store FILE N PINNED");
	n = strtoul(argv[3], &end, 10);
	if (*end != '\0')
		return fail("N is a number");
	pinned = strtoul(argv[4], &end, 10);
	if (*end != '\0' || pinned > n)
		return fail("PINNED is a number up to N");
	return store(argv[2], n, pinned);
}
