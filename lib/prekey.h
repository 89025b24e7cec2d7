/*
 * prekey.h - one-time prekeys (doc/PROTOCOL.md, section 10): X25519
 * keys a receiving device (the identity key, or a device of scope full
 * or receive) uploads in batches to its home server, each signed by
 * that device's signing key, which the server hands out once each to
 * senders, so that a message sealed to one stays secret after the
 * prekey's secret is deleted, whatever becomes of the long-term keys.
 *
 * This module is the byte format: one prekey's signed statement, and
 * the batch a device uploads.
 */
#ifndef SMIMP_PREKEY_H
#define SMIMP_PREKEY_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "signer.h"
#include "util.h"

#define PREKEY_ID_LEN		16	/* lowercase hex digits */
#define PREKEY_BATCH_MAGIC	"smimp-prekeys/1\n"
/* Prekeys in one batch at most, and by default (smimp-trust prekeys). */
#define PREKEY_BATCH_MAX	200
#define PREKEY_BATCH_DEFAULT	100
/* A batch's text at most: its lines, each well under 200 bytes. */
#define PREKEY_BATCH_BYTES	(64 * 1024)
/* What a server keeps in one device's pool at most. */
#define PREKEY_POOL_MAX		1000
/* smimp-fetch uploads a batch once the pool holds fewer than this. */
#define PREKEY_LOW		25
/* How far a batch's date may be from the server's clock, in seconds. */
#define PREKEY_DATE_WINDOW	300

/* One prekey, as its owner signs it and a sender checks it. */
struct prekey {
	char address[ADDRESS_MAX + 1];
	char device[IDDEV_NAME_MAX + 1];	/* "": the identity key's */
	int64_t date;				/* its batch's */
	char id[PREKEY_ID_LEN + 1];
	unsigned char key[32];			/* X25519 */
	unsigned char sig[64];			/* Ed25519 */
};

/* Is s[0..len) a prekey id: PREKEY_ID_LEN of 0-9 a-f? */
int prekey_id_valid(const char *s, size_t len);
/* A new random id. */
void prekey_id_new(char id[PREKEY_ID_LEN + 1]);

/*
 * Sign p (its fields filled) with signer, the key of the device p
 * names (the identity key for ""): into p->sig.  0, or -1.
 */
int prekey_sign(struct prekey *p, const struct signer *signer,
    struct smimp_err *err);
/* Does p->sig verify under pub?  0 if so, else -1 (SMIMP_EXIT_BADMSG). */
int prekey_verify(const struct prekey *p, const unsigned char pub[32],
    struct smimp_err *err);
/*
 * The key that must have signed p, by log (the owner's identity log):
 * the identity key, or the signing key of the device p names, live and
 * receiving (scope full or receive).  NULL when there is none.
 */
const unsigned char *prekey_signing_key(const struct prekey *p,
    const struct idlog *log);

/* A batch: n prekeys of one owner (address, device) and one date. */
struct prekey_batch {
	char address[ADDRESS_MAX + 1];
	char device[IDDEV_NAME_MAX + 1];
	int64_t date;
	struct prekey *keys;		/* malloc'd */
	size_t n;
};
/* The batch's text (1 to PREKEY_BATCH_MAX prekeys, all b's), into sb. */
int prekey_batch_build(const struct prekey_batch *b, struct sbuf *sb,
    struct smimp_err *err);
/*
 * Parse a batch strictly (SMIMP_EXIT_BADMSG, saying what is wrong): the
 * lines in order, 1 to PREKEY_BATCH_MAX prekeys, no id twice, no key of
 * low order.  Signatures are the caller's to check.  b is released with
 * prekey_batch_release, also on failure.
 */
int prekey_batch_parse(struct prekey_batch *b, const unsigned char *buf,
    size_t len, struct smimp_err *err);
void prekey_batch_release(struct prekey_batch *b);

#endif
