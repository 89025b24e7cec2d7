/*
 * padding.c - buckets for the envelope's length, the trailer that says
 * how long the padding is, and the stanzas of no one (padding.h).
 */
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "padding.h"
#include "banned.h"

/* floor(log2(x)), x >= 1. */
static unsigned int
log2_floor(uint64_t x)
{
	unsigned int e = 0;

	while (x >>= 1)
		e++;
	return e;
}

/*
 * Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted
 * Files and Communication with PURBs", 2019): of a length whose
 * highest bit is bit E, keep the top floor(log2(E)) + 1 bits and round
 * the rest up.  The overhead is at most 2^-(floor(log2(E)) + 1) of the
 * length: under 6.25% from 256 bytes, 3.2% from 64 KiB; a length of
 * E bits is one of at most 2^(floor(log2(E)) + 1) sizes in its octave.
 */
uint64_t
pad_padme(uint64_t len)
{
	unsigned int e, s;
	uint64_t mask;

	if (len < 4)
		return len;
	e = log2_floor(len);
	s = log2_floor(e) + 1;
	mask = ((uint64_t)1 << (e - s)) - 1;
	return (len + mask) & ~mask;
}

uint64_t
pad_bucket(uint64_t len)
{
	if (len > PAD_MAX)
		return 0;
	return len <= PAD_FLOOR ? PAD_FLOOR : pad_padme(len);
}

void
pad_trailer_put(unsigned char out[PAD_TRAILER], uint64_t padding)
{
	int i;

	for (i = 0; i < PAD_TRAILER; i++)
		out[i] = (unsigned char)(padding >> (56 - 8 * i));
}

uint64_t
pad_trailer_get(const unsigned char in[PAD_TRAILER])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < PAD_TRAILER; i++)
		v = v << 8 | in[i];
	return v;
}

int
pad_tail_begin(struct pad_tail *t, uint64_t unpadded, struct smimp_err *err)
{
	uint64_t want = unpadded + PAD_TRAILER, bucket = pad_bucket(want);

	memset(t, 0, sizeof(*t));
	if (bucket == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the message is too "
		    "large to pad");
	t->zeros = bucket - want;
	pad_trailer_put(t->trailer, t->zeros);
	return 0;
}

size_t
pad_tail_read(struct pad_tail *t, unsigned char *buf, size_t len)
{
	size_t n, given = 0;

	n = t->zeros < len ? (size_t)t->zeros : len;
	memset(buf, 0, n);
	t->zeros -= n;
	given += n;
	n = PAD_TRAILER - t->trailer_given;
	if (n > len - given)
		n = len - given;
	memcpy(buf + given, t->trailer + t->trailer_given, n);
	t->trailer_given += n;
	return given + n;
}

size_t
pad_stanza_count(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * A key of no one: the public half of a secret thrown away at once.  A
 * stanza to it is made as any other (a fresh ephemeral share, the file
 * key wrapped), so nothing tells it from a recipient's: its share is a
 * point of the curve, its wrap an AEAD ciphertext of the same length.
 */
static void
nobody_key(unsigned char pk[32])
{
	unsigned char sk[32];

	do
		randombytes_buf(sk, sizeof(sk));
	while (crypto_scalarmult_base(pk, sk) != 0 ||
	    !age_x25519_public_usable(pk));
	sodium_memzero(sk, sizeof(sk));
}

/* Is any of the n keys of k a one-time prekey? */
static int
any_prekey(const struct age_recipient *k, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (k[i].prekey_id[0] != '\0')
			return 1;
	return 0;
}

/*
 * An id for a key that is no prekey, as a prekey's looks (16 lowercase
 * hex digits, random): its holder has no secret of that name, and
 * tries its long-term key on the stanza as on any other.
 */
static void
nobody_prekey(char id[AGE_PREKEY_ID_LEN + 1])
{
	unsigned char raw[AGE_PREKEY_ID_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	(void)sodium_bin2hex(id, AGE_PREKEY_ID_LEN + 1, raw, sizeof(raw));
}

int
pad_stanzas(struct age_recipient *k, size_t *n, size_t cap,
    struct smimp_err *err)
{
	size_t want = pad_stanza_count(*n), i, j;
	int paired = any_prekey(k, *n);
	struct age_recipient tmp;

	if (paired && want > cap / 2)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many keys to "
		    "seal to with one-time prekeys: the recipients' and their "
		    "devices', and the sender's, come to more than %zu",
		    cap / 2);
	if (*n == 0 || want > cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot pad %zu "
		    "stanzas", *n);
	for (i = *n; i < want; i++)
		nobody_key(k[i].x25519_public);
	for (i = 0; paired && i < want; i++)
		if (k[i].prekey_id[0] == '\0')
			nobody_prekey(k[i].prekey_id);
	*n = want;
	/* Fisher-Yates: where a key stands says nothing of whose it is. */
	for (i = want - 1; i > 0; i--) {
		j = randombytes_uniform((uint32_t)(i + 1));
		tmp = k[i];
		k[i] = k[j];
		k[j] = tmp;
	}
	return 0;
}
