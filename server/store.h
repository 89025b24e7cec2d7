/*
 * store.h - smimpd's storage interface.  One small set of operations
 * behind which the embedded SQLite store (store_sqlite.c) sits; a
 * PostgreSQL back end implements the same.
 *
 * Every write returns only once it is on stable storage.
 */
#ifndef SMIMPD_STORE_H
#define SMIMPD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "remote.h"

#include "err.h"

struct store;

/* Open (creating on first use) the store in the data directory. */
struct store *store_open(const char *datadir, struct smimp_err *err);
void store_close(struct store *st);

/* Accounts: an address of the server's domain and its identity log. */
int store_user_add(struct store *st, const char *address,
    const unsigned char *log, size_t log_len, struct smimp_err *err);
/* 1 found (log malloc'd into *log), 0 not found, -1 error. */
int store_user_get(struct store *st, const char *address,
    unsigned char **log, size_t *log_len, struct smimp_err *err);
/* 1 removed, 0 not found, -1 error. */
int store_user_del(struct store *st, const char *address,
    struct smimp_err *err);
/* Calls fn for each user in address order. */
int store_user_list(struct store *st,
    int (*fn)(const char *address, const unsigned char *log, size_t len,
    void *arg), void *arg, struct smimp_err *err);

/*
 * Invitations: whoever holds the token may register an identity for
 * the address until it expires.  Only a hash of the token is stored.
 */
#define INVITE_HASH_SIZE	32
int store_invite_add(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], const char *address,
    int64_t expires, struct smimp_err *err);
/*
 * Register log for address with the invitation hash, using it up, in
 * one transaction: 1 registered, 0 no such invitation for this address
 * or expired, 2 the address has an account already, -1 error.
 */
int store_invite_redeem(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], const char *address,
    const unsigned char *log, size_t len, int64_t now,
    struct smimp_err *err);
/* Calls fn for each pending invitation, by address. */
int store_invite_list(struct store *st,
    int (*fn)(const char *address, int64_t expires, void *arg), void *arg,
    struct smimp_err *err);

/*
 * Nonce cache for signed requests: 1 if (signer, nonce) is new (and now
 * remembered until expires), 0 if seen before (a replay), -1 error.
 */
int store_nonce_claim(struct store *st, const char *signer,
    const char *nonce, int64_t expires, struct smimp_err *err);

/*
 * Deliver a message into a local mailbox.  The message id is an
 * idempotency key: delivering the same (recipient, message id) again
 * stores nothing and returns 0 as well.  Durable when it returns.
 */
int store_deliver(struct store *st, const char *recipient,
    const char *sender, const char *message_id, const unsigned char *data,
    size_t len, struct smimp_err *err);

/* Several deliveries in one transaction: all stored, or none. */
struct store_delivery {
	const char *recipient, *sender, *message_id;
	const unsigned char *data;
	size_t len;
};
int store_deliver_many(struct store *st, const struct store_delivery *d,
    size_t n, struct smimp_err *err);
/*
 * A submission in one transaction: claim the request's nonce, queue the
 * message for other domains, deliver it to local mailboxes.  1 stored,
 * 0 the nonce was seen before (nothing stored), -1 error.
 */
struct outbound;
struct store_submission {
	const char *signer, *nonce;
	int64_t expires, now;
	const struct outbound *obs;
	size_t nobs;
	const struct store_delivery *d;
	size_t nd;
};
int store_submit(struct store *st, const struct store_submission *sub,
    struct smimp_err *err);

/* Several relay queue entries done, in one transaction. */
int store_outbound_done_many(struct store *st, const int64_t *ids,
    size_t n, struct smimp_err *err);

struct mailbox_entry {
	int64_t id;
	char sender[ADDRESS_MAX + 1];
	char message_id[256];
	size_t size;
	int64_t received;
};
/* The owner's oldest MAILBOX_PAGE entries (remote.h), in arrival order. */
int store_mailbox_list(struct store *st, const char *owner,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err);
/* 1 found (data malloc'd), 0 not found, -1 error. */
int store_mailbox_get(struct store *st, const char *owner, int64_t id,
    unsigned char **data, size_t *len, struct smimp_err *err);
/* 1 removed, 0 not found, -1 error. */
int store_mailbox_ack(struct store *st, const char *owner, int64_t id,
    struct smimp_err *err);

/* Several at once, in one transaction; *acked gets how many went. */
int store_mailbox_ack_many(struct store *st, const char *owner,
    const int64_t *ids, size_t n, size_t *acked, struct smimp_err *err);

/* The relay queue: one entry per (message, recipient domain). */
struct outbound {
	int64_t id;
	char domain[ADDRESS_DOMAIN_MAX + 1];
	char sender[ADDRESS_MAX + 1];
	char *recipients;	/* of this domain, comma-separated */
	char *all;		/* every recipient, as stamped */
	char message_id[256];
	unsigned char *data;
	size_t len;
	char stamp[96];
	char stamp_date[24];
	unsigned int attempts;
	int64_t first_try;
};
void outbound_release(struct outbound *ob);
/* Entries are queued by store_submit (idempotent on domain, sender, id). */
/*
 * Up to cap entries due at now with ids above after, in id order, into
 * obs (*n of them, each to be released).
 */
int store_outbound_due(struct store *st, int64_t now, int64_t after,
    struct outbound *obs, size_t cap, size_t *n, struct smimp_err *err);
int store_outbound_retry(struct store *st, int64_t id, int64_t next_try,
    struct smimp_err *err);

#endif
