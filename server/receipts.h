/*
 * receipts.h - delivery receipts (doc/PROTOCOL.md 8.14).  This server
 * signs one, with its server key, for every message it takes: from
 * another domain's server (inbound.c answers with it) and from its own
 * users for their recipients here (submission.c records it unsigned,
 * and it is signed when its sender asks for it).  What the
 * relay delivers elsewhere comes back with the other domain's receipt,
 * checked here under that domain's server key before it is kept.  Each
 * sender may then ask where a message of its own is, signed:
 * GET {base}/v1/messages/ID.
 */
#ifndef SMIMPD_RECEIPTS_H
#define SMIMPD_RECEIPTS_H

#include <stddef.h>

#include "receipt.h"
#include "store.h"

struct server;
struct outbound;

/*
 * This server's receipt for the message (from, message id, hash) it
 * took for recipients (comma-separated, of its domain), dated now,
 * into *text (malloc'd).  0, or -1 (out of memory).
 */
int receipts_sign(struct server *srv, const char *from, const char *mid,
    const unsigned char hash[32], const char *recipients, char **text,
    struct smimp_err *err);

/*
 * The same unsigned (receipt_build_unsigned), for a submission's own
 * domain: kept so, and signed when its sender asks where the message
 * is (GET {base}/v1/messages/ID), which costs the submission no
 * signature.  Ed25519 is deterministic: the receipt is the same
 * whenever it is signed, under the same key.
 */
int receipts_draft(struct server *srv, const char *from, const char *mid,
    const unsigned char hash[32], const char *recipients, char **text,
    struct smimp_err *err);

/*
 * The receipt the domain of ob answered for its delivery (the sealed
 * message's hash is hash): well formed, for this very delivery (the
 * domain, sender, message id, hash; recipients it was asked to take
 * only), and dated now give or take STAMP_SKEW.  0 when it is one to
 * keep; -1 with why.  Its signature is the sender's to check, as she
 * checks every receipt herself (doc/PROTOCOL.md 8.14): a check here
 * would cost the relay a third of what a delivery costs it, for
 * receipts most senders never ask for.
 */
int receipts_check_peer(const struct outbound *ob,
    const unsigned char hash[32], const char *text, struct smimp_err *err);

/*
 * Forget the records of sent messages older than receipt-retention:
 * at most once every ten seconds, whoever calls.
 */
void receipts_expire(struct server *srv);

#endif
