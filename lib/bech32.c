/*
 * bech32.c - BIP 173 Bech32 as age uses it for keys: no length limit,
 * one case throughout.
 */
#include <ctype.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "banned.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t
polymod_step(uint32_t chk, unsigned int v)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
		0x3d4233dd, 0x2a1462b3 };
	uint32_t top = chk >> 25;
	int i;

	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

static uint32_t
hrp_polymod(const char *hrp)
{
	uint32_t chk = 1;
	size_t i, n = strlen(hrp);

	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned char)hrp[i] >> 5);
	chk = polymod_step(chk, 0);
	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned char)hrp[i] & 31);
	return chk;
}

#define BECH32_GROUPS	128	/* 5-bit groups: room for 80 bytes */

/*
 * Encode data under lowercase hrp into out (cap bytes); upper: uppercase.
 * five is room for the 5-bit groups, which the caller wipes: the data
 * may be a secret key.
 */
static int
encode_groups(char *out, size_t cap, const char *hrp,
    const unsigned char *data, size_t len, int upper,
    unsigned char five[BECH32_GROUPS])
{
	size_t n5 = 0, i, o = 0, hl = strlen(hrp);
	unsigned int acc = 0, bits = 0;
	uint32_t chk;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (n5 == BECH32_GROUPS)
				return -1;
			five[n5++] = (acc >> bits) & 31;
		}
	}
	if (bits > 0) {
		if (n5 == BECH32_GROUPS)
			return -1;
		five[n5++] = (acc << (5 - bits)) & 31;
	}
	if (hl + 1 + n5 + 6 + 1 > cap)
		return -1;
	chk = hrp_polymod(hrp);
	for (i = 0; i < hl; i++)
		out[o++] = upper ? (char)toupper((unsigned char)hrp[i]) : hrp[i];
	out[o++] = '1';
	for (i = 0; i < n5; i++) {
		chk = polymod_step(chk, five[i]);
		out[o++] = charset[five[i]];
	}
	for (i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	for (i = 0; i < 6; i++)
		out[o++] = charset[(chk >> (5 * (5 - i))) & 31];
	out[o] = '\0';
	if (upper)
		for (i = hl + 1; i < o; i++)
			out[i] = (char)toupper((unsigned char)out[i]);
	return 0;
}

static int
bech32_encode(char *out, size_t cap, const char *hrp,
    const unsigned char *data, size_t len, int upper)
{
	unsigned char five[BECH32_GROUPS];
	int r;

	r = encode_groups(out, cap, hrp, data, len, upper, five);
	sodium_memzero(five, sizeof(five));
	return r;
}

#define BECH32_MAX	256	/* an encoded string's characters, NUL too */

/*
 * Decode s; the hrp must equal want (lowercase); exactly len bytes.  low
 * is room for a lowercase copy of s, which the caller wipes.
 */
static int
decode_lower(const char *s, const char *want, unsigned char *out,
    size_t len, char low[BECH32_MAX])
{
	size_t n = strlen(s), i, sep, o = 0;
	int has_upper = 0, has_lower = 0;
	unsigned int acc = 0, bits = 0;
	uint32_t chk;

	if (n >= BECH32_MAX || n < 8)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126)
			return -1;
		has_upper |= isupper(c) != 0;
		has_lower |= islower(c) != 0;
		low[i] = (char)tolower(c);
	}
	low[n] = '\0';
	if (has_upper && has_lower)
		return -1;
	sep = (size_t)(strrchr(low, '1') - low);
	if (strrchr(low, '1') == NULL || sep != strlen(want) ||
	    memcmp(low, want, sep) != 0 || n - sep - 1 < 6)
		return -1;
	chk = hrp_polymod(want);
	for (i = sep + 1; i < n; i++) {
		const char *p = strchr(charset, low[i]);

		if (p == NULL)
			return -1;
		chk = polymod_step(chk, (unsigned int)(p - charset));
		if (i >= n - 6)
			continue;
		acc = (acc << 5) | (unsigned int)(p - charset);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o == len)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (chk != 1 || o != len || bits >= 5 || (acc & ((1u << bits) - 1)))
		return -1;
	return 0;
}

static int
bech32_decode(const char *s, const char *want, unsigned char *out,
    size_t len)
{
	char low[BECH32_MAX];
	int r;

	r = decode_lower(s, want, out, len, low);
	sodium_memzero(low, sizeof(low));
	return r;
}

int
age_identity_encode(const unsigned char secret[32],
    char out[AGE_IDENTITY_STRLEN])
{
	return bech32_encode(out, AGE_IDENTITY_STRLEN, "age-secret-key-",
	    secret, 32, 1);
}

int
age_recipient_encode(const unsigned char pub[32],
    char out[AGE_RECIPIENT_STRLEN])
{
	return bech32_encode(out, AGE_RECIPIENT_STRLEN, "age", pub, 32, 0);
}

int
age_identity_decode(const char *s, unsigned char secret[32])
{
	return bech32_decode(s, "age-secret-key-", secret, 32);
}

int
age_recipient_decode(const char *s, unsigned char pub[32])
{
	return bech32_decode(s, "age", pub, 32);
}
