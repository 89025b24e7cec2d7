/*
 * x25519.c - an X25519 public key from the Ed25519 fixed-base
 * multiplication (see x25519.h).  The arithmetic modulo p = 2^255 - 19
 * below handles public values only (the point, never the secret): it
 * is plain, and need not take the same time for every value.
 */
#include <endian.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "x25519.h"
#include "banned.h"

/*
 * A field element: four 64-bit limbs, least significant first, below
 * 2^256; reduced below p where it matters (fe_reduce).
 */
typedef uint64_t fe[4];

static const fe P = { 0xffffffffffffffedULL, 0xffffffffffffffffULL,
    0xffffffffffffffffULL, 0x7fffffffffffffffULL };

static int
fe_geq_p(const fe a)
{
	int i;

	for (i = 3; i >= 0; i--)
		if (a[i] != P[i])
			return a[i] > P[i];
	return 1;
}

/* a += b + carry modulo 2^256; the carry out. */
static uint64_t
add_raw(fe a, const fe b, uint64_t carry)
{
	unsigned __int128 s;
	int i;

	for (i = 0; i < 4; i++) {
		s = (unsigned __int128)a[i] + b[i] + carry;
		a[i] = (uint64_t)s;
		carry = (uint64_t)(s >> 64);
	}
	return carry;
}

/* a -= b modulo 2^256, as a + ~b + 1; 1 if it borrowed (b was larger). */
static int
sub_raw(fe a, const fe b)
{
	fe nb = { ~b[0], ~b[1], ~b[2], ~b[3] };

	return add_raw(a, nb, 1) == 0;
}

/* a < 2^256 to a < p: 2^256 is 2p + 38, so p goes at most twice. */
static void
fe_reduce(fe a)
{
	while (fe_geq_p(a))
		(void)sub_raw(a, P);
}

/* a + b < 2p < 2^256: no carry out. */
static void
fe_add(fe r, const fe a, const fe b)
{
	memcpy(r, a, sizeof(fe));
	(void)add_raw(r, b, 0);
	fe_reduce(r);
}

/* a - b, plus p when that went below 0 (modulo 2^256 it comes right). */
static void
fe_sub(fe r, const fe a, const fe b)
{
	memcpy(r, a, sizeof(fe));
	if (sub_raw(r, b))
		(void)add_raw(r, P, 0);
}

/*
 * r = a * b, a and b below 2^256, r below 2^256 (not reduced: fe_reduce
 * makes the final value canonical).
 */
static void
fe_mul(fe r, const fe a, const fe b)
{
	uint64_t w[8] = { 0 }, carry;
	unsigned __int128 acc;
	int i, j;

	for (i = 0; i < 4; i++) {
		carry = 0;
		for (j = 0; j < 4; j++) {
			acc = (unsigned __int128)a[i] * b[j] + w[i + j] +
			    carry;
			w[i + j] = (uint64_t)acc;
			carry = (uint64_t)(acc >> 64);
		}
		w[i + 4] = carry;
	}
	/* 2^256 = 38 (mod p): fold the high half in, then what carried. */
	carry = 0;
	for (i = 0; i < 4; i++) {
		acc = (unsigned __int128)w[i + 4] * 38 + w[i] + carry;
		w[i] = (uint64_t)acc;
		carry = (uint64_t)(acc >> 64);
	}
	acc = (unsigned __int128)carry * 38;
	for (i = 0; i < 4; i++) {
		acc += w[i];
		r[i] = (uint64_t)acc;
		acc >>= 64;
	}
	if (acc != 0)
		r[0] += 38;	/* r wrapped: it is small now, no carry */
}

/* r = a^(2^n) * b: n squarings, then a multiplication. */
static void
fe_sqmul(fe r, const fe a, int n, const fe b)
{
	fe t;

	memcpy(t, a, sizeof(fe));
	while (n-- > 0)
		fe_mul(t, t, t);
	fe_mul(r, t, b);
}

/*
 * r = a^(p - 2) = 1 / a (a not 0), by the addition chain of
 * curve25519's reference code: 254 squarings and 11 multiplications.
 * Each name is the power of a it holds.
 */
static void
fe_invert(fe r, const fe a)
{
	fe z2, z9, z11, z31, z2_10, z2_20, z2_40, z2_50, z2_100, z2_200;
	fe z2_250;

	fe_mul(z2, a, a);
	fe_sqmul(z9, z2, 2, a);
	fe_mul(z11, z9, z2);
	fe_sqmul(z31, z11, 1, z9);		/* 2^5 - 1 */
	fe_sqmul(z2_10, z31, 5, z31);		/* 2^10 - 1, and so on */
	fe_sqmul(z2_20, z2_10, 10, z2_10);
	fe_sqmul(z2_40, z2_20, 20, z2_20);
	fe_sqmul(z2_50, z2_40, 10, z2_10);
	fe_sqmul(z2_100, z2_50, 50, z2_50);
	fe_sqmul(z2_200, z2_100, 100, z2_100);
	fe_sqmul(z2_250, z2_200, 50, z2_50);
	fe_sqmul(r, z2_250, 5, z11);		/* 2^255 - 21 */
}

int
x25519_base(unsigned char pk[32], const unsigned char sk[32])
{
	unsigned char ed[32];
	fe y, num, den, one = { 1, 0, 0, 0 };
	int i;

	/* The same clamping as X25519's; refused only for the identity. */
	if (crypto_scalarmult_ed25519_base(ed, sk) != 0)
		return crypto_scalarmult_base(pk, sk);
	ed[31] &= 0x7f;			/* the sign of x */
	for (i = 0; i < 4; i++) {
		memcpy(&y[i], ed + 8 * i, 8);
		y[i] = le64toh(y[i]);
	}
	if (fe_geq_p(y))
		return crypto_scalarmult_base(pk, sk);	/* not libsodium's */
	fe_add(num, one, y);
	fe_sub(den, one, y);
	if ((den[0] | den[1] | den[2] | den[3]) == 0)
		return crypto_scalarmult_base(pk, sk);
	fe_invert(den, den);
	fe_mul(num, num, den);
	fe_reduce(num);
	for (i = 0; i < 4; i++) {
		y[i] = htole64(num[i]);
		memcpy(pk + 8 * i, &y[i], 8);
	}
	return 0;
}
