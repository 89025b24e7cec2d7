/*
 * envelope.h - the signed envelope inside the age payload.
 *
 * The age plaintext is H || B || S: the header block H (text, ends with
 * an empty line), the body B, and S, the 64-byte Ed25519 signature; a
 * padded one (its header says so) is H || B || P || T || S (padding.h).
 * The signature covers a two-level hash of H || B: a BLAKE2b-256 leaf per
 * 64 KiB chunk (aligned with age's chunks, so each chunk can be hashed
 * on its own core) and a root over the leaves and the length.
 */
#ifndef SMIMP_ENVELOPE_H
#define SMIMP_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "err.h"
#include "message.h"
#include "trust.h"
#include "util.h"

#define ENV_MAGIC	"smimp-envelope/1\n"
#define ENV_SIG_SIZE	64
#define ENV_LEAF_SIZE	32

/* Hash one chunk of H || B. */
void env_leaf(unsigned char out[ENV_LEAF_SIZE], const unsigned char *data,
    size_t len);

struct env_root {
	crypto_generichash_state st;
	uint64_t leaves;
};
void env_root_init(struct env_root *r);
void env_root_add(struct env_root *r, const unsigned char leaf[ENV_LEAF_SIZE]);
void env_root_final(struct env_root *r, uint64_t signed_len,
    unsigned char out[32]);

void env_sign(unsigned char sig[ENV_SIG_SIZE], const unsigned char root[32],
    const unsigned char identity_secret[64]);
int env_verify(const unsigned char sig[ENV_SIG_SIZE],
    const unsigned char root[32], const unsigned char identity_public[32]);

/* Build H for p; message_id gets the new id. */
int env_header_build(struct sbuf *out, const struct seal_params *p,
    char *message_id, size_t message_id_cap, struct smimp_err *err);
/*
 * Find and parse H at the start of buf; *hlen gets its length (with the
 * empty line).  Verifies the sender log and that it matches from.
 */
/*
 * With ts, a sender log byte-identical to the one pinned for the sender
 * was verified when it was pinned, and is not verified again.
 */
int env_header_parse(const unsigned char *buf, size_t len, size_t *hlen,
    struct msg_meta *meta, const struct trust_store *ts,
    struct smimp_err *err);

#endif
