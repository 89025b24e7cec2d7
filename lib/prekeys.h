/*
 * prekeys.h - one-time prekeys over the network, and one's own secrets
 * of them (doc/PROTOCOL.md, section 10): a receiving device uploads
 * batches (smimp-trust prekeys, and smimp-fetch when its pool runs
 * low), a sealer takes one for each key of each recipient
 * (smimp-seal), and a reader deletes a prekey's secret once a message
 * sealed to it is opened and kept (smimp-open, smimp-fetch).
 */
#ifndef SMIMP_PREKEYS_H
#define SMIMP_PREKEYS_H

#include <stddef.h>

#include "err.h"
#include "identity.h"
#include "message.h"
#include "prekey.h"
#include "prekeystore.h"
#include "remote.h"

/*
 * Make count (1 to PREKEY_BATCH_MAX) prekeys for id's key (the
 * identity's, or its device's): their secrets into the store beside the
 * key first (so that what a sender takes can be opened), then the batch
 * to the home server, signed by that key.  *pool gets how many the
 * server's pool holds now.  A batch the server refuses takes its
 * secrets out again; one whose answer was lost leaves them (the server
 * may have it).
 */
int prekeys_upload(struct remote *r, const struct identity *id,
    size_t count, size_t *pool, struct smimp_err *err);
/* How many prekeys the server holds for id's key. */
int prekeys_count(struct remote *r, const struct identity *id,
    size_t *count, struct smimp_err *err);
/*
 * smimp-fetch: for id with a prekey store (forward secrecy is on once
 * smimp-trust prekeys made it), a batch of PREKEY_BATCH_DEFAULT when the
 * server holds fewer than PREKEY_LOW: *uploaded how many (0: none was
 * needed, or forward secrecy is off), *had how many the server held.
 */
int prekeys_refill(struct remote *r, const struct identity *id,
    size_t *uploaded, size_t *had, struct smimp_err *err);

/*
 * Load the secrets of id's prekeys, when there are any, into ps, and
 * let id's key open what is sealed to them (id->sk.prekeys).  A store
 * that cannot be read is left out, with the reason in warn: it opens
 * nothing sealed to its prekeys, and nothing else need wait for it.
 * ps is released with prekey_store_release, after id is done with it.
 */
void prekeys_load(struct identity *id, struct prekey_store *ps,
    struct smimp_err *warn);
/*
 * The message sealed to the prekey id of id's key is opened and kept:
 * its secret leaves the store beside the key for good (rewritten and
 * synced, under the store's lock), and ps (the loaded one, or NULL)
 * forgets it too.
 */
int prekeys_forget(const struct identity *id, struct prekey_store *ps,
    const char *prekey_id, struct smimp_err *err);

/* What a sealer took for one recipient. */
struct prekeys_claim {
	struct msg_prekey *keys;	/* malloc'd, 1 + its devices' */
	size_t taken;			/* of its keys, with a prekey */
	size_t exhausted;		/* of its keys, whose pool is empty */
	int unreachable;		/* its server did not answer: why */
	struct smimp_err why;
	char warning[SMIMP_ERR_MSG * 2];	/* said to the sender, or "" */
};
/*
 * Take one prekey for each key of rcpt (made from log, its pinned
 * identity log) from its server, signed by who, and verify each under
 * log: the identity key's prekey under the identity key, a device's
 * under that device's signing key (a prekey for a key log does not
 * name is left out).  rcpt->prekeys then points into c->keys, and
 * rcpt->forward_secret says whether every key got one.  A server that
 * cannot be asked, knows no prekeys or has none for rcpt changes
 * nothing but c (its warning says why, when the sender should know:
 * a pool that ran out, a rate limit).  Released with
 * prekeys_claim_release.
 */
void prekeys_claim(struct remote *r, const struct signer *who,
    const struct idlog *log, struct msg_recipient *rcpt,
    struct prekeys_claim *c);
void prekeys_claim_release(struct prekeys_claim *c);
/*
 * prekeys_claim's reading of its server's answer (body, len bytes of
 * JSON): each prekey that verifies under log into the slot of c->keys
 * (1 + rcpt's device keys, zeroed) of the key it is for, and the pools
 * that ran out counted; c->warning says what the sender should know.
 */
void prekeys_claim_read(const char *body, size_t len,
    const struct idlog *log, const struct msg_recipient *rcpt,
    struct prekeys_claim *c);
/*
 * smimp-seal: prekeys_claim for each of rcpts[0..n) whose identity came
 * from its own domain's directory: named by address (not by_file[i])
 * and pinned in home's trust store from a lookup, or checked there
 * since.  One pinned by hand from a file, and never checked, is sealed
 * to as it is, with no network: its sender chose to work offline.
 * Nor is the sender's own address (who's, a device's too): its keys
 * all get the sender's own copy, never a prekey.  claims[i] says what each got; the network goes through s (lookup.h),
 * which knows the domains its lookups could not reach.
 */
struct lookup_session;
int prekeys_claim_recipients(const char *home, const struct signer *who,
    struct lookup_session *s, struct msg_recipient *rcpts,
    const int *by_file, size_t n, struct prekeys_claim *claims,
    struct smimp_err *err);

#endif
