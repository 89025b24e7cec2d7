/*
 * padding.h - what a sealed message shows of its size and of how many
 * keys it is sealed to (doc/PROTOCOL.md 9).
 *
 * Sizes: the age plaintext of a padded envelope is H || B || P ||
 * T || S, where P is zero bytes and T the 8-byte big-endian length of
 * P, so that the whole plaintext is a bucket: PAD_FLOOR for anything
 * up to it, above it Padmé's (only the top bits of a length kept,
 * rounding up).  P and T come after the body, so a sealer reading a
 * pipe of unknown length pads once it has seen the end, in constant
 * memory; a reader finds P's length in T.
 *
 * Stanzas: the keys a message is sealed to are made up to a power of
 * two with keys of no one (X25519 keys whose secrets are thrown away at
 * once), in a random order, so that the age header shows only a power
 * of two.  When some of them are one-time prekeys (a smimp-prekey
 * stanza before the X25519 one, age.h), every other key gets a
 * smimp-prekey stanza too, naming a random id that nobody holds: the
 * header then shows neither which keys are prekeys nor how many.
 */
#ifndef SMIMP_PADDING_H
#define SMIMP_PADDING_H

#include <stddef.h>
#include <stdint.h>

#include "age.h"
#include "err.h"

/* The scheme's name, the value of the envelope's padding line. */
#define PAD_SCHEME	"padme"
/* The smallest padded plaintext: everything shorter seals to it. */
#define PAD_FLOOR	4096
/* T: the padding's length, uint64 big-endian, right before S. */
#define PAD_TRAILER	8
/* A plaintext this long is never padded (its bucket would overflow). */
#define PAD_MAX		((uint64_t)1 << 62)

/* Padmé: len rounded up to keep only its top bits (len >= 1). */
uint64_t pad_padme(uint64_t len);
/*
 * The bucket of a plaintext of len bytes (T and S counted): PAD_FLOOR
 * up to it, else Padmé.  0 when len is over PAD_MAX.
 */
uint64_t pad_bucket(uint64_t len);

void pad_trailer_put(unsigned char out[PAD_TRAILER], uint64_t padding);
uint64_t pad_trailer_get(const unsigned char in[PAD_TRAILER]);

/*
 * What a sealer writes after the body: the padding's zero bytes, then
 * T.  pad_tail_begin takes the plaintext's length without P and T
 * (with S) and fails (SMIMP_EXIT_FAIL) when it has no bucket;
 * pad_tail_read gives up to len more bytes of P || T, 0 once all are
 * given.
 */
struct pad_tail {
	uint64_t zeros;		/* bytes of P still to give */
	unsigned char trailer[PAD_TRAILER];
	size_t trailer_given;
};
int pad_tail_begin(struct pad_tail *t, uint64_t unpadded,
    struct smimp_err *err);
size_t pad_tail_read(struct pad_tail *t, unsigned char *buf, size_t len);

/* The smallest power of two >= n (n >= 1). */
size_t pad_stanza_count(size_t n);
/*
 * Make the n keys of k (room for cap) up to pad_stanza_count(n) with
 * keys of no one, then put all of them in a random order; when any has
 * a prekey id, give each other one a random id.  cap, a power of two,
 * is the most stanzas the header may hold: n <= cap never pads past it,
 * and with prekeys, whose keys take two stanzas each, n <= cap / 2
 * (SMIMP_EXIT_USAGE past it).
 */
int pad_stanzas(struct age_recipient *k, size_t *n, size_t cap,
    struct smimp_err *err);

#endif
