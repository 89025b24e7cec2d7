/*
 * store_backend.h - what store.c and the back ends share, and callers
 * never see: the head of every back end's own store.
 */
#ifndef SMIMPD_STORE_BACKEND_H
#define SMIMPD_STORE_BACKEND_H

#include "store.h"

/*
 * The first member of each back end's struct, so that a struct store *
 * points at both.  store_open() sets limits after ops->open() returns
 * and before any other operation: nothing in opening depends on them.
 */
struct store {
	const struct store_ops *ops;
	struct store_limits limits;
	/* store_observe_commits(): told how long each commit took. */
	void (*commit_fn)(void *arg, int64_t usecs);
	void *commit_arg;
	store_watch_fn *watch;		/* told of outages (store_watch) */
	void *watch_arg;
};

#define STORE_DAY_S		86400
#define STORE_HOUR_S		3600
#define STORE_ID_TRIES		8	/* fresh ids tried on a collision */

/* ---- what an operation hands the transaction that runs it ---- */

struct store_user_args {
	const char *address;
	const struct store_log *log;
	int64_t now;
};

struct store_log_update_args {
	const char *address;
	const unsigned char *old;
	size_t old_len;
	const struct store_log *log;
	int64_t now;
};

struct store_invite_args {
	const unsigned char *hash;
	const char *address;
	int64_t when;		/* expiry to store, or now */
	const struct store_log *log;
};

struct store_nonce_args {
	const char *signer, *nonce;
	int64_t expires, now;
};

/* The administrator's operation on one queue entry, or a take of it. */
struct store_queue_args {
	int64_t id, now, lease_until;
	enum store_queue_op op;
	const char *owner;
	struct outbound *ob;
};

/* ---- store_common.c: what every back end does alike ---- */

/* A write transaction begun at started (time_mono_us) has committed. */
void store_committed(struct store *st, int64_t started);
/* Release the *n entries of a claim, and make it none. */
void store_outbounds_release(struct outbound *obs, size_t *n);
/* A listing's callback asked to stop: the listing fails. */
int store_stopped(struct smimp_err *err);

/* A log as a caller may give it: sizes and device names in bounds. */
int store_log_check(const struct store_log *log, struct smimp_err *err);
/* Is the device (name, key) among log's? */
int store_log_names(const struct store_log *log, const char *name,
    const void *key, size_t keylen);

/* Stored devices of a user that a new log no longer names. */
struct store_gone_devices {
	size_t n, over;
	char name[STORE_DEVICES_MAX][STORE_DEVICE_NAME_MAX + 1];
};
/* Note the stored device (name, key) in g, unless log names it. */
void store_gone_note(struct store_gone_devices *g,
    const struct store_log *log, const char *name, const void *key,
    size_t keylen);
/* More devices were stored for address than there may be: -1. */
int store_gone_check(const struct store_gone_devices *g, const char *address,
    struct smimp_err *err);
/* The domain part of a sender: an address, or server:DOMAIN. */
const char *store_domain_of(const char *sender);
/* A random mailbox id, 1 .. 2^53-1: it tells nothing about others. */
int64_t store_random_id(void);
/* s is NULL, or does not fit in cap bytes with its NUL. */
int store_too_long(const char *s, size_t cap);
/* A device as the store keys it: "" the identity key, NULL too. */
const char *store_device_key(const char *device);
const char *store_or_empty(const char *s);
int store_delivery_check(const struct store_delivery *d,
    struct smimp_err *err);
/* store_deliver's arguments, each results[i] set to STORE_ERROR. */
int store_deliver_check(const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results,
    struct smimp_err *err);
int store_submission_check(const struct store_submission *sub,
    struct smimp_err *err);
/*
 * An inline body as a file to read: anonymous, in memory, at its
 * start, so that callers read every body the same way.
 */
int store_blob_fd(const void *data, size_t len, int *fd, uint64_t *outlen,
    struct smimp_err *err);
/* Remove what a directory holds, but what keep(arg, name) keeps. */
int store_dir_empty(const char *path, int (*keep)(void *, const char *),
    void *arg, struct smimp_err *err);
/*
 * Every process that opens a store holds DIR/smimpd.lock shared; the
 * one that finds it free holds it alone while it sweeps what crashes
 * leave behind, so that it never removes what another process is about
 * to commit, then takes it shared (store_lock_shared).  A DIR that
 * others may write, or that another user owns (but for root), is
 * refused.  Returns 1 alone, 0 shared, -1 error; *fd is the lock's (the
 * caller closes it).
 */
int store_lock_dir(const char *dir, int *fd, struct smimp_err *err);
/*
 * PATH, made in DIR, given to DIR's owner when root makes it (the
 * commands, on the directory of the user the server runs as, who could
 * not open it otherwise); 0, or -1.
 */
int store_give(const char *dir, const char *path, struct smimp_err *err);
int store_lock_shared(int fd, const char *path, struct smimp_err *err);
/*
 * The sending domain's count for this hour (*count, from a row of hour
 * now / STORE_HOUR_S, else 0) and its ignored_until (*until), one
 * delivery more: 1 with the values to store and *retry set when past
 * the cap (or now ignored), 0 when the domain is ignored (*retry set,
 * nothing to store).
 */
int store_consent_domain_step(const struct store_consent_count *c,
    int64_t now, int64_t *count, int64_t *until, unsigned int *retry);

/*
 * Is prekey batch b taken, given the pool's last batch date (has_last
 * 0: none yet) and how many keys it holds (count)?  STORE_EXISTS for a
 * batch older than the last one taken (a replay of an old upload),
 * STORE_QUOTA when the pool would pass its bound, else STORE_OK.
 */
int store_prekey_batch_verdict(const struct store_prekey_batch *b,
    int has_last, int64_t last, size_t count);

/*
 * A body given in memory (a notice), as a string: malloc'd; NULL out
 * of memory.  A body in a file reads "".
 */
char *store_body_text(const struct store_body *b);

#endif
