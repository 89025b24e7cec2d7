/*
 * smimp-padding - what padding a sealed message's plaintext costs
 * (doc/PROTOCOL.md 9), for SEMP's scheme (4 KiB times a power of two)
 * and for Padmé above a floor, over a mix of message sizes.
 *
 *	smimp-padding [-n MESSAGES] [-s SEED]
 *
 * The mix, by count: 50% notifications, bodies of 100 B to 2 KiB; 40%
 * mail text, 2 to 20 KiB; 10% with attachments, 50 KiB to 20 MiB in
 * all; each size log-uniform in its range (as many messages of 100 to
 * 200 bytes as of 1 to 2 KiB).  Each message is sealed by one sender to
 * one recipient: the envelope header is the one the library builds for
 * a new identity with a short subject (measured here), the age header
 * that of two stanzas.  The overhead is the sealed file's growth over
 * the same message unpadded: the mean of each message's, the whole
 * mix's bytes, and the worst message's; and how many sizes the
 * messages of each class seal to.  Deterministic for a seed.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "envelope.h"
#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "padding.h"

#define NCLASSES	3
#define NSCHEMES	4
#define AGE_HEADER_2	266	/* version, two X25519 stanzas, MAC */
#define SIZES_MAX	4096	/* distinct sealed sizes counted per class */

static const struct class {
	const char *name;
	double share, lo, hi;
} classes[NCLASSES] = {
	{ "notifications (100 B-2 KiB)", 0.50, 100, 2048 },
	{ "mail text (2-20 KiB)", 0.40, 2048, 20480 },
	{ "attachments (50 KiB-20 MiB)", 0.10, 50 * 1024, 20 << 20 },
};

/* SEMP: 4 KiB times the smallest power of two that holds len. */
static uint64_t
semp(uint64_t len)
{
	uint64_t b = 4096;

	while (b < len)
		b <<= 1;
	return b;
}

static uint64_t
padme_floor(uint64_t len, uint64_t floor)
{
	return len <= floor ? floor : pad_padme(len);
}

/* smimp's own is the library's, pad_bucket: Padmé above PAD_FLOOR. */
static const char *scheme_names[NSCHEMES] = {
	"SEMP (4 KiB x 2^n)", "smimp: Padme >= floor", "Padme, 8 KiB floor",
	"Padme, no floor",
};

/* The padded plaintext of one of len bytes (P's trailer counted). */
static uint64_t
padded(int scheme, uint64_t len)
{
	switch (scheme) {
	case 0:
		return semp(len);
	case 1:
		return pad_bucket(len);
	case 2:
		return padme_floor(len, 8192);
	default:
		return pad_padme(len);
	}
}

/* What an age file of a plaintext of len bytes weighs, two stanzas. */
static double
sealed(uint64_t len)
{
	uint64_t chunks = (len + AGE_CHUNK_SIZE - 1) / AGE_CHUNK_SIZE;

	return (double)(AGE_HEADER_2 + AGE_NONCE_SIZE + len +
	    AGE_TAG_SIZE * (chunks == 0 ? 1 : chunks));
}

/* splitmix64: the same mix on every machine for a seed. */
static uint64_t
next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
uniform(uint64_t *s)
{
	return (double)(next(s) >> 11) / (double)(1ULL << 53);
}

struct tally {
	double n, ratio_sum, worst, bytes, padded_bytes;
	uint64_t sizes[SIZES_MAX];
	size_t nsizes;
};

static void
tally_add(struct tally *t, double plain, double pad, uint64_t size)
{
	double r = pad / plain - 1;
	size_t i;

	t->n++;
	t->ratio_sum += r;
	if (r > t->worst)
		t->worst = r;
	t->bytes += plain;
	t->padded_bytes += pad;
	for (i = 0; i < t->nsizes; i++)
		if (t->sizes[i] == size)
			return;
	if (t->nsizes < SIZES_MAX)
		t->sizes[t->nsizes++] = size;
}

/* H as the library writes it, padded or not, for a new identity. */
static int
header_lengths(size_t *unpadded, size_t *pad)
{
	struct secret_key a, b;
	struct idlog la, lb;
	struct msg_recipient r;
	struct seal_params p;
	struct smimp_err err;
	struct sbuf h;
	unsigned char rec_pk[32], rec_sk[64];
	int ret = -1;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	crypto_sign_keypair(rec_pk, rec_sk);
	if (secret_key_generate(&a, "alice@example.org", &err) != 0 ||
	    secret_key_generate(&b, "bob@example.net", &err) != 0 ||
	    idlog_genesis(&la, "alice@example.org", a.identity_secret,
	    secret_key_encryption_public(&a), rec_pk, 1767225600, &err) != 0)
		goto out;
	if (idlog_genesis(&lb, "bob@example.net", b.identity_secret,
	    secret_key_encryption_public(&b), rec_pk, 1767225600, &err) != 0) {
		idlog_release(&la);
		goto out;
	}
	recipient_from_log(&r, &lb);
	memset(&p, 0, sizeof(p));
	p.sender = &a;
	p.sender_log = &la;
	p.rcpts = &r;
	p.nrcpts = 1;
	p.type = "email";
	p.subject = "Re: the build of Thursday";
	for (p.no_padding = 0; p.no_padding < 2; p.no_padding++) {
		sbuf_init(&h, MSG_MAX_HEADER);
		if (env_header_build(&h, &p, NULL, 0, &err) != 0) {
			sbuf_release(&h);
			break;
		}
		*(p.no_padding ? unpadded : pad) = h.len;
		sbuf_release(&h);
	}
	ret = p.no_padding == 2 ? 0 : -1;
	idlog_release(&la);
	idlog_release(&lb);
out:
	if (ret != 0)
		fprintf(stderr, "smimp-padding: %s\n", err.msg);
	secret_key_release(&a);
	secret_key_release(&b);
	return ret;
}

static void
report(const struct tally t[NSCHEMES][NCLASSES + 1], size_t h_plain,
    size_t h_pad, unsigned long n, uint64_t seed)
{
	const char *label;
	int s, c;

	printf("--- padding: %lu messages (seed %llu); envelope header %zu "
	    "bytes unpadded, %zu padded; smimp's floor %d bytes; overhead "
	    "on the sealed file ---\n", n, (unsigned long long)seed, h_plain,
	    h_pad, PAD_FLOOR);
	printf("%-28s %-22s %8s %8s %8s %6s\n", "class", "scheme", "mean",
	    "bytes", "worst", "sizes");
	for (c = 0; c <= NCLASSES; c++) {
		label = c < NCLASSES ? classes[c].name : "all (the mix)";
		for (s = 0; s < NSCHEMES; s++) {
			const struct tally *x = &t[s][c];

			printf("%-28s %-22s %7.1f%% %7.1f%% %7.1f%% %6zu\n",
			    s == 0 ? label : "", scheme_names[s],
			    100 * x->ratio_sum / x->n,
			    100 * (x->padded_bytes / x->bytes - 1),
			    100 * x->worst, x->nsizes);
		}
	}
}

int
main(int argc, char **argv)
{
	static struct tally t[NSCHEMES][NCLASSES + 1];
	unsigned long n = 1000000, i;
	uint64_t seed = 15, st;
	size_t h_plain = 0, h_pad = 0;
	int opt, c, s;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			n = strtoul(optarg, NULL, 10);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: smimp-padding [-n MESSAGES] "
			    "[-s SEED]\n");
			return 2;
		}
	}
	if (n == 0 || sodium_init() < 0 || header_lengths(&h_plain,
	    &h_pad) != 0)
		return 1;
	st = seed;
	for (i = 0; i < n; i++) {
		double u = uniform(&st), acc = 0, body;
		uint64_t plain, want, p;

		for (c = 0; c < NCLASSES - 1; c++) {
			acc += classes[c].share;
			if (u < acc)
				break;
		}
		body = exp(log(classes[c].lo) + uniform(&st) *
		    (log(classes[c].hi) - log(classes[c].lo)));
		plain = h_plain + (uint64_t)body + 64;
		want = h_pad + (uint64_t)body + PAD_TRAILER + 64;
		for (s = 0; s < NSCHEMES; s++) {
			p = padded(s, want);
			tally_add(&t[s][c], sealed(plain), sealed(p), p);
			tally_add(&t[s][NCLASSES], sealed(plain), sealed(p),
			    p);
		}
	}
	report(t, h_plain, h_pad, n, seed);
	return 0;
}
