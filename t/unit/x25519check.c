/*
 * x25519check - x25519_base (lib/x25519.h) against crypto_scalarmult_base
 * byte for byte: every private key of the Wycheproof X25519 vectors when
 * a directory is given, scalars at the edges (all zero, all one bits,
 * single bits, values near p and near the group order), and 200,000
 * scalars from a fixed generator.  Usage: x25519check [DIR].
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "x25519.h"
#include "xorshift.h"

static size_t passed, failed;
static uint64_t state = 0x243f6a8885a308d3ULL;

static uint64_t
next(void)
{
	return xorshift_next(&state);
}

static void
check(const unsigned char sk[32])
{
	unsigned char a[32], b[32];
	int ra = x25519_base(a, sk), rb = crypto_scalarmult_base(b, sk);
	char hex[65];

	if (ra == rb && (ra != 0 || memcmp(a, b, 32) == 0)) {
		passed++;
	} else if (failed++ < 10) {
		sodium_bin2hex(hex, sizeof(hex), sk, 32);
		printf("FAIL %s\n", hex);
	}
}

/* Every "private" of the Wycheproof X25519 file in dir. */
static int
vectors(const char *dir)
{
	char path[4096];
	json_error_t jerr;
	json_t *root, *g, *t;
	size_t i, j, len;
	unsigned char sk[32];

	(void)snprintf(path, sizeof(path), "%s/x25519_test.json", dir);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		printf("cannot read %s\n", path);
		return -1;
	}
	json_array_foreach(json_object_get(root, "testGroups"), i, g)
		json_array_foreach(json_object_get(g, "tests"), j, t) {
			const char *h = json_string_value(json_object_get(t,
			    "private"));

			if (h != NULL && sodium_hex2bin(sk, 32, h, strlen(h),
			    NULL, &len, NULL) == 0 && len == 32)
				check(sk);
		}
	json_decref(root);
	return 0;
}

int
main(int argc, char **argv)
{
	static const unsigned char order[32] = {	/* the group order */
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c,
		0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0x10 };
	unsigned char sk[32];
	size_t i, k;

	if (sodium_init() < 0)
		return 2;
	if (argc > 1 && vectors(argv[1]) != 0)
		return 2;
	memset(sk, 0, 32);
	check(sk);
	memset(sk, 0xff, 32);
	check(sk);
	for (i = 0; i < 256; i++) {
		memset(sk, 0, 32);
		sk[i / 8] = (unsigned char)(1u << (i % 8));
		check(sk);
		memset(sk, 0xff, 32);
		sk[i / 8] ^= (unsigned char)(1u << (i % 8));
		check(sk);
	}
	for (k = 0; k < 64; k++) {
		/* The order and its small multiples, give or take. */
		memcpy(sk, order, 32);
		sk[0] = (unsigned char)(sk[0] + k - 32);
		sk[31] = (unsigned char)(sk[31] << (k % 4));
		check(sk);
	}
	for (i = 0; i < 200000; i++) {
		for (k = 0; k < 4; k++) {
			uint64_t v = next();

			memcpy(sk + 8 * k, &v, 8);
		}
		check(sk);
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed != 0;
}
