/*
 * b64check - b64_decode_public (lib/util.c) against b64_decode, which is
 * libsodium's decoder behind the refusal of bytes past ASCII: the same
 * verdict, and the same bytes when both
 * accept, for 400,000 strings from a fixed generator: encodings of
 * random bytes whole, cut, lengthened, or with a character changed
 * (to one of the alphabet, "=", or a byte outside it), and strings of
 * random characters, each decoded into a buffer of random room.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util.h"
#include "xorshift.h"

static uint64_t state = 0x13198a2e03707344ULL;
static size_t passed, failed;

static uint64_t
next(void)
{
	return xorshift_next(&state);
}

static void
compare(const char *s, size_t len, size_t cap)
{
	unsigned char a[128], b[128];
	size_t na = 0, nb = 0;
	int ra = b64_decode_public(s, len, a, cap, &na);
	int rb = b64_decode(s, len, b, cap, &nb);

	if (ra == rb && (ra != 0 || (na == nb && memcmp(a, b, na) == 0))) {
		passed++;
	} else if (failed++ < 10) {
		printf("FAIL '%.*s' (room %zu): %d, libsodium %d\n", (int)len,
		    s, cap, ra, rb);
	}
}

int
main(void)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/=-_ .\n\x80";
	unsigned char bin[64];
	char s[128];
	size_t i, n, len;

	if (sodium_init() < 0)
		return 2;
	for (i = 0; i < 400000; i++) {
		if (i % 2 == 0) {
			n = next() % 48;
			randombytes_buf(bin, n);
			sodium_bin2base64(s, sizeof(s), bin, n,
			    sodium_base64_VARIANT_ORIGINAL);
			len = strlen(s);
			if (i % 8 == 2 && len > 0)
				len -= 1 + next() % len;	/* cut */
			else if (i % 8 == 4 && len < 90)
				s[len++] = chars[next() % (sizeof(chars) - 1)];
			else if (i % 8 == 6 && len > 0)
				s[next() % len] = chars[next() %
				    (sizeof(chars) - 1)];
		} else {
			len = next() % 40;
			for (n = 0; n < len; n++)
				s[n] = chars[next() % (i % 4 == 1 ? 64 :
				    sizeof(chars) - 1)];
		}
		compare(s, len, next() % 70);
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed != 0;
}
