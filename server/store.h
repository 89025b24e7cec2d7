/*
 * store.h - smimpd's storage interface: one table of operations
 * (struct store_ops) per back end, chosen at start-up from a store URI.
 *
 *	sqlite:DIR		the embedded store (the default, from --data)
 *	postgresql://...	PostgreSQL (libpq's URI), shared by several
 *				nodes; each node keeps only its spool in its
 *				own directory
 *
 * Rules every back end keeps, and every caller may rely on:
 *
 * - Every operation returns one of enum store_status.  STORE_ERROR means
 *   the store could not answer (err says why, for the log; the client
 *   gets 503 and may retry); the others are answers.
 * - No clock inside the store: whatever depends on time takes `now`
 *   (Unix seconds) from the caller.
 * - Every operation is safe to call from any thread at any time, all of
 *   them concurrently.  Reads see only committed data.  A write returns
 *   only once it is on stable storage (file and directory fsynced);
 *   writes from many threads may share one commit.
 * - Message bodies never pass through the store as whole buffers when
 *   they are large: they come in as spooled files (struct store_body)
 *   and go out as file descriptors, so memory stays constant per
 *   request whatever the message size.
 * - A message in a mailbox is identified by (recipient, sender, message
 *   id): a delivery can never hide or replace another sender's message.
 *   The same triple delivered again stores nothing (STORE_OK), also
 *   after the recipient acknowledged it, for as long as
 *   limits.idempotency seconds.
 * - A mailbox holds one copy of each message, and a delivery state for
 *   each device of its owner that receives: the identity key (the
 *   device "", always) and each device the caller last named with the
 *   owner's log (struct store_log; the store never reads logs), as they
 *   were when the message arrived.  A device lists, opens and
 *   acknowledges only what is pending for it.  The message leaves (its
 *   triple kept as an acknowledged one) once no device is pending, or
 *   limits.retention seconds after its first acknowledgement.  A log
 *   that no longer names a device drops the device's pending states in
 *   the transaction that stores the log, and with them the messages
 *   that no device is pending for any more.  A quota counts the copy
 *   once, whatever the number of devices.
 * - The relay queue is claimed with leases: a worker (an owner string,
 *   unique per node and worker) claims due entries until a lease
 *   expiry; only the owner may finish them; a lease that expires (a
 *   crashed worker or node) makes the entries claimable again.  Nothing
 *   about the queue lives in one process's memory.
 */
#ifndef SMIMPD_STORE_H
#define SMIMPD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "policy.h"

enum store_status {
	STORE_ERROR = -1,	/* no answer: err says why */
	STORE_OK = 0,
	STORE_NOT_FOUND,	/* no such user, invitation, message, entry */
	STORE_EXISTS,		/* the address has an account already */
	STORE_REPLAY,		/* the request's nonce was seen before */
	STORE_QUOTA,		/* a quota would be exceeded: nothing stored */
};

/* What the store refuses to grow past; 0 means no limit. */
struct store_limits {
	uint64_t mailbox_bytes;		/* stored for one recipient */
	uint64_t sender_queue_bytes;	/* queued for relay, per local sender */
	/*
	 * Accepted per day from one remote domain for recipients who never
	 * wrote to that domain.
	 */
	uint64_t stranger_domain_bytes;
	int64_t idempotency;		/* seconds a delivered id is kept */
	/*
	 * Seconds a message stays after its first acknowledgement by one
	 * device, for the devices that have not acknowledged it yet.
	 */
	int64_t retention;
	/*
	 * Connections a back end over a database server holds at most,
	 * one per caller at a time (the others wait); 0: its default.
	 */
	unsigned int connections;
};

/*
 * A message body for the store.  Either a complete, fsynced file under
 * store_spool_dir() (the store links or copies it; the caller removes
 * its own name afterwards in any case), or bytes in memory (small
 * things the server makes itself: bounce notices).
 */
struct store_body {
	const char *path;		/* or NULL: then data */
	const unsigned char *data;
	size_t len;
};

/* Bodies given in memory up to this size are kept inside the database. */
#define STORE_INLINE_MAX	(64 * 1024)

/*
 * The devices of a user that receive (doc/PROTOCOL.md: live, of scope
 * full or receive), at most STORE_DEVICES_MAX; the identity key is no
 * device here, it always receives.
 */
#define STORE_DEVICES_MAX	64
#define STORE_DEVICE_NAME_MAX	32	/* bytes */

struct store_device {
	const char *name;
	/*
	 * Its signing key: a name removed and added again (with new keys)
	 * is another device, which gets nothing of the old one's.
	 */
	unsigned char key[32];
};

/* A user's identity log as stored, with what the store needs of it. */
struct store_log {
	const unsigned char *raw;
	size_t len;
	const struct store_device *devices;	/* those that receive */
	size_t ndevices;
};

/* One copy of a message for a local mailbox. */
struct store_delivery {
	const char *recipient, *sender, *message_id;
	const struct store_body *body;
};

/* What a submission queues for one other domain. */
struct store_outbound_new {
	const char *domain;
	const char *recipients;		/* of that domain, comma-separated */
	/* Consent headers carried to that domain; NULL or "" when none. */
	const char *work;		/* Smimp-Work: its recipients' proofs */
	const char *introduction;	/* Smimp-Introduction */
	/*
	 * Its own delivery stamp, naming its recipients only: queued with
	 * recipients as what it names.  NULL: the submission's stamp and
	 * all (a stamp over every recipient, from before stamps were per
	 * domain).
	 */
	const char *stamp;
};

/*
 * A submission, in one transaction: the request's nonce is claimed, the
 * message queued once per other domain (idempotent on domain, sender,
 * message id), copies delivered to local mailboxes.
 */
/* A request's nonce, claimed in the transaction of what it asks. */
struct store_nonce {
	const char *signer, *nonce;
	int64_t expires;
};

struct store_sent;

struct store_submission {
	const char *signer, *nonce;
	int64_t nonce_expires;
	const char *sender, *message_id;
	const char *all;		/* every recipient, as stamped */
	const char *stamp, *stamp_date;
	const char *stamp_device;	/* the device that stamped, or "" */
	const struct store_body *body;
	const struct store_outbound_new *obs;
	size_t nobs;
	const char *const *local;	/* local recipients */
	size_t nlocal;
	/*
	 * The sender's device that submitted ("" or NULL the identity
	 * key).  A sent copy goes into the sender's own mailbox, pending
	 * for each other device of the sender that receives (the identity
	 * key too, when a device submitted); none when that is no device.
	 */
	const char *device;
	/*
	 * What became of it at the sender's own domain (its receipt for
	 * the local recipients), recorded in the same transaction as by
	 * store_sent_put; NULL when there is none to record.
	 */
	const struct store_sent *sent;
};

struct mailbox_entry {
	int64_t id;			/* random, 1 .. 2^53-1: reveals nothing */
	char sender[ADDRESS_MAX + 8];	/* an address, or server:DOMAIN */
	char message_id[256];
	uint64_t size;
	int64_t received;
	int sent;			/* a copy of what the owner sent */
};

/* A relay queue entry, as claimed.  Its body: store_outbound_open(). */
struct outbound {
	int64_t id;
	char domain[ADDRESS_DOMAIN_MAX + 1];
	char sender[ADDRESS_MAX + 1];
	char *recipients;	/* of this domain, comma-separated; malloc'd */
	char *all;		/* every recipient, as stamped; malloc'd */
	char message_id[256];
	char stamp[96];
	char stamp_date[24];
	char stamp_device[IDDEV_NAME_MAX + 1];	/* "": the identity key */
	uint64_t len;
	unsigned int attempts;
	int64_t first_try;
	unsigned char *data;	/* the body, when the claim brought it (a
				   small one); malloc'd, else NULL */
	char *work;		/* Smimp-Work to send, "" when none; malloc'd */
	char *introduction;	/* Smimp-Introduction, "" when none; malloc'd */
	/*
	 * The administrator asked for an attempt now (store_outbound_admin,
	 * STORE_QUEUE_RETRY): what the relay remembers of the domain's
	 * failures must not answer for it.  Cleared by the next retry.
	 */
	int forced;
};
void outbound_release(struct outbound *ob);

/*
 * What deciding on a delivery needs of a recipient's consent policy,
 * read without its lists (the lists are looked up entry by entry).
 */
struct store_policy_head {
	int has_policy;			/* else: no policy published */
	int64_t date;
	enum policy_unknown unknown;
	unsigned int bits;
	uint32_t allowance;
	unsigned char salt[POLICY_SALT_SIZE];
};

/* Where an entry stands in a user's policy (store_policy_match). */
enum store_listed {
	STORE_UNLISTED = 0,
	STORE_LISTED_BLOCK,
	STORE_LISTED_ALLOW
};

/*
 * One unknown sender's delivery to count against the recipient's daily
 * allowance and the sending domain's hourly cap.
 */
struct store_consent_count {
	const char *recipient;
	const char *sender, *message_id;	/* the message counted */
	int64_t allowance;		/* a day; -1: no limit */
	const char *domain;		/* the sender's; NULL: no cap */
	unsigned int domain_cap;	/* an hour */
	unsigned int ignore_secs;	/* a domain far past its cap */
};

/* The relay queue at a glance (store_outbound_stats). */
struct store_queue_stats {
	uint64_t entries;
	int64_t oldest;		/* when the oldest entry was queued; 0: none */
};

/* Why the last attempt failed, as kept: cut to this many bytes. */
#define STORE_REASON_MAX	480

/* An entry as store_outbound_list shows it; valid during the callback. */
struct store_queue_entry {
	int64_t id;
	const char *domain, *sender, *recipients, *message_id;
	uint64_t size;
	unsigned int attempts;
	int64_t first_try;	/* when it was queued */
	int64_t next_try;
	const char *lease_owner;	/* "" when none */
	int64_t lease_until;	/* 0 when none (a past one: expired) */
	int held;
	const char *last_error;	/* of the last attempt; "" none yet */
};

enum store_queue_op {
	STORE_QUEUE_HOLD,	/* never claimed until released */
	STORE_QUEUE_RELEASE,	/* claimed again when due */
	STORE_QUEUE_RETRY,	/* due now, released if held, forced */
};

/* What the store holds, counted (smimpd stats). */
struct store_stats {
	uint64_t users;
	uint64_t mailbox_messages, mailbox_bytes;
	uint64_t queue_entries, queue_bytes;
	uint64_t queue_held;		/* held by the administrator */
	uint64_t queue_retrying;	/* failed at least once */
	uint64_t queue_domains;		/* other domains waited for */
	int64_t queue_oldest;		/* the oldest's first_try; 0 none */
	int64_t store_bytes;		/* on disk; -1 when unknown */
};

/* What smimpd check finds of the store itself. */
struct store_health {
	int64_t version;		/* the schema's, as opened */
	int integrity;			/* a consistency check ran */
	char problem[256];		/* what it found wrong; "" nothing */
};

/*
 * What became of a message at one domain (doc/PROTOCOL.md 8.14), kept
 * for its sender: delivered, with the receipt that domain's server
 * signed ("" when none verified), or bounced, with the bounce notice
 * (or why, when none went).  One record per (sender, message id,
 * domain), the latest.
 */
enum store_sent_state {
	STORE_SENT_QUEUED = 0,		/* an entry of the relay queue */
	STORE_SENT_DELIVERED = 1,
	STORE_SENT_BOUNCED = 2,
};

struct store_sent {
	const char *sender, *message_id, *domain;
	enum store_sent_state state;
	const char *recipients;		/* of domain, comma-separated */
	const char *text;		/* the receipt, notice or reason */
	int64_t at;			/* when */
};

/* As store_sent_list shows it; valid during the callback. */
struct store_sent_row {
	const char *domain, *recipients;
	enum store_sent_state state;
	const char *text;		/* queued: why its last attempt failed */
	int64_t at;			/* queued: when it was queued */
	unsigned int attempts;		/* queued: the rest */
	int64_t next_try;
	int held;
};

/* One-time prekeys (doc/PROTOCOL.md, section 10): one as stored. */
#define STORE_PREKEY_ID_MAX	16
struct store_prekey {
	char id[STORE_PREKEY_ID_MAX + 1];
	unsigned char key[32];
	int64_t date;			/* its batch's */
	unsigned char sig[64];		/* its owner's, over all of it */
};

/* A batch for the pool of one device of a user ("" the identity key). */
struct store_prekey_batch {
	const char *address, *device;
	int64_t date;
	const struct store_prekey *keys;
	size_t n;
	size_t max;			/* the pool holds at most */
	int64_t now;
};

/* What store_prekey_claim found in a device's pool. */
enum store_prekey_state {
	STORE_PREKEY_TAKEN,		/* one, handed out and removed */
	STORE_PREKEY_EMPTY,		/* none left of what was uploaded */
	STORE_PREKEY_NONE		/* none ever uploaded */
};

struct store;
struct store_queue_args;	/* store_backend.h */

struct store_ops {
	/*
	 * rest: the URI after "scheme:"; local: as for store_open.
	 * exists: whether an earlier open made the store (0: none there),
	 * 1 too where that cannot be told before connecting.
	 */
	int (*exists)(const char *rest);
	struct store *(*open)(const char *rest, const char *local,
	    struct smimp_err *err);
	void (*close)(struct store *st);
	const char *(*spool_dir)(struct store *st);

	int (*user_add)(struct store *, const char *address,
	    const struct store_log *log, int64_t now, struct smimp_err *);
	int (*user_get)(struct store *, const char *address,
	    unsigned char **log, size_t *len, struct smimp_err *);
	int (*user_log_update)(struct store *, const char *address,
	    const unsigned char *old, size_t old_len,
	    const struct store_log *log, int64_t now, struct smimp_err *);
	int (*user_del)(struct store *, const char *address, int64_t now,
	    struct smimp_err *);
	int (*user_list)(struct store *, int (*fn)(const char *address,
	    const unsigned char *log, size_t len, void *arg), void *arg,
	    struct smimp_err *);
	int (*user_list_unsynced)(struct store *, int (*fn)(const char *,
	    const unsigned char *, size_t, void *), void *arg,
	    struct smimp_err *);

	int (*invite_add)(struct store *, const unsigned char hash[32],
	    const char *address, int64_t expires, struct smimp_err *);
	int (*invite_check)(struct store *, const unsigned char hash[32],
	    int64_t now, char address[ADDRESS_MAX + 1], struct smimp_err *);
	int (*invite_redeem)(struct store *, const unsigned char hash[32],
	    const char *address, const struct store_log *log, int64_t now,
	    struct smimp_err *);
	int (*invite_list)(struct store *, int (*fn)(const char *address,
	    int64_t expires, void *arg), void *arg, struct smimp_err *);

	int (*nonce_claim)(struct store *, const char *signer,
	    const char *nonce, int64_t expires, int64_t now,
	    struct smimp_err *);

	int (*submit)(struct store *, const struct store_submission *,
	    int64_t now, struct smimp_err *);
	int (*deliver)(struct store *, const struct store_nonce *nonce,
	    const struct store_delivery *d, size_t n, int *results,
	    int64_t now, struct smimp_err *);

	int (*mailbox_list)(struct store *, const char *owner,
	    const char *device, int (*fn)(const struct mailbox_entry *,
	    void *), void *arg, struct smimp_err *);
	int (*mailbox_open)(struct store *, const char *owner,
	    const char *device, int64_t id, int *fd, uint64_t *len,
	    struct smimp_err *);
	int (*mailbox_ack)(struct store *, const char *owner,
	    const char *device, const int64_t *ids, size_t n, size_t *acked,
	    int64_t now, struct smimp_err *);

	int (*outbound_claim)(struct store *, const char *owner, int64_t now,
	    int64_t lease_until, unsigned int domain_cap, uint64_t max_bytes,
	    const int64_t *done, size_t ndone, struct outbound *obs,
	    size_t cap, size_t *n, struct smimp_err *);
	int (*outbound_open)(struct store *, int64_t id, int *fd,
	    uint64_t *len, struct smimp_err *);
	int (*outbound_done)(struct store *, const char *owner,
	    const int64_t *ids, size_t n, struct smimp_err *);
	int (*outbound_renew)(struct store *, const char *owner,
	    const int64_t *ids, size_t n, int64_t lease_until,
	    struct smimp_err *);
	int (*outbound_retry)(struct store *, const char *owner, int64_t id,
	    int64_t next_try, const char *reason, struct smimp_err *);
	int (*outbound_bounce)(struct store *, const char *owner, int64_t id,
	    const struct store_delivery *notice, int64_t now,
	    struct smimp_err *);
	int (*outbound_count)(struct store *, uint64_t *n,
	    struct smimp_err *);
	int (*outbound_stats)(struct store *, struct store_queue_stats *qs,
	    struct smimp_err *);
	int (*outbound_list)(struct store *, int64_t id,
	    int (*fn)(const struct store_queue_entry *, void *), void *arg,
	    struct smimp_err *);
	/* a->op on entry a->id; a take of it for a->owner into a->ob */
	int (*outbound_admin)(struct store *,
	    struct store_queue_args *a, struct smimp_err *);
	int (*outbound_take)(struct store *,
	    struct store_queue_args *a, struct smimp_err *);
	int (*stats)(struct store *, struct store_stats *,
	    struct smimp_err *);
	int (*check)(struct store *, struct store_health *,
	    struct smimp_err *);
	int (*backup)(struct store *, const char *dir, uint64_t *bodies,
	    struct smimp_err *);

	int (*policy_put)(struct store *, const struct policy *p,
	    const unsigned char *text, size_t len, int64_t now,
	    struct smimp_err *);
	int (*policy_get)(struct store *, const char *address,
	    unsigned char **text, size_t *len, struct smimp_err *);
	int (*policy_head)(struct store *, const char *address,
	    struct store_policy_head *h, struct smimp_err *);
	int (*policy_match)(struct store *, const char *address,
	    const unsigned char (*entries)[POLICY_ENTRY_SIZE], size_t n,
	    int *listed, struct smimp_err *);
	int (*consent_count)(struct store *,
	    const struct store_consent_count *c, int64_t now,
	    unsigned int *retry_after, struct smimp_err *);
	int (*correspondent)(struct store *, const char *local,
	    const char *domain, struct smimp_err *);

	int (*sent_put)(struct store *, const struct store_sent *s, size_t n,
	    struct smimp_err *);
	int (*sent_list)(struct store *, const char *sender,
	    const char *message_id, int (*fn)(const struct store_sent_row *,
	    void *), void *arg, struct smimp_err *);
	int (*sent_expire)(struct store *, int64_t before, uint64_t *n,
	    struct smimp_err *);

	int (*prekey_add)(struct store *, const struct store_prekey_batch *b,
	    size_t *count, struct smimp_err *);
	int (*prekey_count)(struct store *, const char *address,
	    const char *device, size_t *count, struct smimp_err *);
	int (*prekey_claim)(struct store *, const char *address,
	    const char *const *devices, size_t n, struct store_prekey *keys,
	    int *states, int64_t now, struct smimp_err *);
	int (*prekey_drop)(struct store *, const char *address,
	    const char *device, int64_t through, int64_t now,
	    struct smimp_err *);

	int (*server_key)(struct store *, const unsigned char *pk,
	    unsigned char recorded[32], struct smimp_err *);
};

/*
 * Open the store a URI names ("sqlite:DIR", a bare path meaning
 * "sqlite:PATH", or "postgresql://..."), creating or migrating its
 * schema; NULL on failure.  local is a directory of this node's own
 * (the data directory), where a back end that keeps nothing in files
 * spools uploads; the SQLite store keeps everything in DIR instead.
 */
struct store *store_open(const char *uri, const char *local,
    const struct store_limits *lim, struct smimp_err *err);
/*
 * The same, for a store that must be there already: a directory with
 * no store in it (a mistyped --data) is an error, not a new store.
 */
struct store *store_open_existing(const char *uri, const char *local,
    const struct store_limits *lim, struct smimp_err *err);
/* Is there a store at uri?  1 yes, 0 not yet, -1 a URI of no back end. */
int store_exists(const char *uri, struct smimp_err *err);
/*
 * The passwords a store URI holds (libpq's: "scheme://user:PASSWORD@"
 * and "password=PASSWORD"): whether there are any; overwritten with
 * 'x' in uri itself; and
 * each occurrence of them in text (cap bytes), said "<password>", so
 * that no message quotes them.
 */
int store_uri_has_password(const char *uri);
void store_uri_hide(char *uri);
void store_text_hide(char *text, size_t cap, const char *uri);
void store_close(struct store *st);
/*
 * Have fn(arg, microseconds) called with the time each write
 * transaction took, from its start to its commit on stable storage, on
 * the thread that committed it (the metrics).  Set once, before the
 * store is used from other threads.
 */
void store_observe_commits(struct store *st,
    void (*fn)(void *arg, int64_t usecs), void *arg);

/*
 * A directory on the store's own file system where callers spool
 * uploads before handing them over as a struct store_body.
 */
const char *store_spool_dir(struct store *st);

/*
 * Outages.  A back end that keeps its data on a database server
 * (PostgreSQL) fails with err->code SMIMP_EXIT_TEMPFAIL when it cannot
 * reach that server (stopped, crashed, restarting, unreachable): every
 * operation until it reaches it again.  It tells fn once when such an
 * outage begins (why: the first failure) and once when a connection
 * made after that succeeded (why: NULL), however many operations failed
 * in between; the calls never overlap, and come in that order.  Any
 * other failure is the operation's own (err->code not
 * SMIMP_EXIT_TEMPFAIL).  The SQLite store has no outages.
 */
typedef void store_watch_fn(void *arg, const char *why);
void store_watch(struct store *st, store_watch_fn *fn, void *arg);

/* ---- accounts ---- */

/*
 * STORE_OK, or STORE_EXISTS when the address has an account.  Its
 * receiving devices are log->devices from now on.
 */
int store_user_add(struct store *st, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err);
/* STORE_OK with the log malloc'd into *log, or STORE_NOT_FOUND. */
int store_user_get(struct store *st, const char *address,
    unsigned char **log, size_t *len, struct smimp_err *err);
/*
 * Replace the identity log of address with log, only if it is still old
 * (a compare and swap, so that of two writers that read the same log
 * only one replaces it): STORE_OK, or STORE_NOT_FOUND when there is no
 * such account or its log is no longer old.  In the same transaction
 * its receiving devices become log->devices: a device added gets what
 * arrives from now on; one no longer named (by name and key) loses its
 * pending states, and messages pending for no device then leave (their
 * triples kept as acknowledged at now).  log->raw may be old itself:
 * then only the devices change.
 */
int store_user_log_update(struct store *st, const char *address,
    const unsigned char *old, size_t old_len, const struct store_log *log,
    int64_t now, struct smimp_err *err);
/*
 * Remove the account and, in the same transaction, its mailbox, its
 * consent policy and what is remembered about it: a later owner of the
 * address never reads old mail.  STORE_OK or STORE_NOT_FOUND.
 */
int store_user_del(struct store *st, const char *address, int64_t now,
    struct smimp_err *err);
/* Calls fn for each user in address order; fn returning non-zero stops. */
int store_user_list(struct store *st,
    int (*fn)(const char *address, const unsigned char *log, size_t len,
    void *arg), void *arg, struct smimp_err *err);
/*
 * The same, only for the users whose receiving devices the store was
 * never given (accounts from before the store kept them): the caller
 * gives them with store_user_log_update (old and new the same log).
 */
int store_user_list_unsynced(struct store *st,
    int (*fn)(const char *address, const unsigned char *log, size_t len,
    void *arg), void *arg, struct smimp_err *err);

/* ---- invitations: only a hash of the token is stored ---- */

#define INVITE_HASH_SIZE	32
int store_invite_add(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], const char *address,
    int64_t expires, struct smimp_err *err);
/*
 * Is there a live invitation with this hash?  STORE_OK with its address,
 * or STORE_NOT_FOUND.  Uses nothing up.
 */
int store_invite_check(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], int64_t now,
    char address[ADDRESS_MAX + 1], struct smimp_err *err);
/*
 * Register log for address with the invitation, using it up, in one
 * transaction: STORE_OK, STORE_NOT_FOUND (no live invitation for this
 * address), STORE_EXISTS (the address has an account).
 */
int store_invite_redeem(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE], const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err);
int store_invite_list(struct store *st,
    int (*fn)(const char *address, int64_t expires, void *arg), void *arg,
    struct smimp_err *err);

/* ---- signed requests ---- */

/*
 * Remember (signer, nonce) until expires: STORE_OK if new, STORE_REPLAY
 * if seen before.  Expired nonces are forgotten by the store; one that
 * several nodes share keeps them a while longer, so that a node whose
 * clock is ahead forgets none that another node, whose clock is behind,
 * would still take a replay of.
 */
int store_nonce_claim(struct store *st, const char *signer,
    const char *nonce, int64_t expires, int64_t now,
    struct smimp_err *err);

/* ---- messages ---- */

/*
 * A submission (struct store_submission), all or nothing: STORE_OK,
 * STORE_REPLAY (the nonce was seen: nothing stored), STORE_QUOTA (a
 * local mailbox or the sender's relay queue is full: nothing stored).
 * A local copy whose triple is still in the mailbox, or was
 * acknowledged within limits.idempotency seconds, is not stored again.
 * The sent copy (sub->device) has the triple (sender, sender, message
 * id): none when the sender is a local recipient too, or the triple is
 * known.  A sender's mailbox over its quota keeps no sent copy, and the
 * submission is still taken: what was sent is not held up by what
 * was received.
 */
int store_submit(struct store *st, const struct store_submission *sub,
    int64_t now, struct smimp_err *err);

/*
 * Deliveries from another domain, in one transaction with the claim of
 * the request's nonce (unless NULL; claimed also when n is 0):
 * STORE_REPLAY if it was seen, and nothing is stored.  Otherwise
 * results[i] gets STORE_OK (stored, or stored before) or STORE_QUOTA
 * for each; fails as a whole (STORE_ERROR) only when nothing could be
 * stored.
 */
int store_deliver(struct store *st, const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results, int64_t now,
    struct smimp_err *err);

/*
 * The oldest MAILBOX_PAGE entries (remote.h) pending for the owner's
 * device ("" the identity key), in arrival order.
 */
int store_mailbox_list(struct store *st, const char *owner,
    const char *device, int (*fn)(const struct mailbox_entry *, void *),
    void *arg, struct smimp_err *err);
/*
 * A message's body to read, if it is pending for the owner's device:
 * STORE_OK with *fd open read-only at its start (the caller closes it)
 * and *len its size, or STORE_NOT_FOUND.
 */
int store_mailbox_open(struct store *st, const char *owner,
    const char *device, int64_t id, int *fd, uint64_t *len,
    struct smimp_err *err);
/*
 * Acknowledge the owner's messages with these ids for its device, in
 * one transaction; ids not pending for it (not the owner's, gone, or
 * acknowledged by it before) are skipped; *acked gets how many were
 * pending.  A message no device is pending for any more is removed,
 * and its (sender, message id) stays remembered for limits.idempotency
 * seconds.
 */
int store_mailbox_ack(struct store *st, const char *owner,
    const char *device, const int64_t *ids, size_t n, size_t *acked,
    int64_t now, struct smimp_err *err);

/* ---- the relay queue: one entry per (message, recipient domain) ---- */

/*
 * Claim for owner, until lease_until, up to cap entries due at now that
 * no live lease holds, all for one domain (the domain of the oldest
 * such entry among domains that have fewer than domain_cap owners
 * holding leases), together at most max_bytes of bodies (at least one
 * entry if any is due).  *n = 0 when nothing is due.  Each entry in
 * obs is released by the caller.  The ndone entries in done, which
 * owner finished, are removed first in the same transaction (as by
 * store_outbound_done): a worker's next claim costs no commit of its
 * own.  On STORE_ERROR neither happened.
 */
int store_outbound_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_until, unsigned int domain_cap, uint64_t max_bytes,
    const int64_t *done, size_t ndone, struct outbound *obs, size_t cap,
    size_t *n, struct smimp_err *err);
/* An entry's body: STORE_OK with *fd (caller closes), or NOT_FOUND. */
int store_outbound_open(struct store *st, int64_t id, int *fd,
    uint64_t *len, struct smimp_err *err);
/* Delivered: remove the entries owner holds (others are skipped). */
int store_outbound_done(struct store *st, const char *owner,
    const int64_t *ids, size_t n, struct smimp_err *err);
/*
 * Extend to lease_until the leases that owner still holds on the
 * entries ids: an attempt that outlasts a lease keeps its claim.  An
 * entry that another owner took meanwhile, or that owner released, is
 * left as it is.
 */
int store_outbound_renew(struct store *st, const char *owner,
    const int64_t *ids, size_t n, int64_t lease_until,
    struct smimp_err *err);
/*
 * Try again at next_try: one more attempt counted, the lease released,
 * reason (why it failed; NULL none) kept for the administrator, cut to
 * STORE_REASON_MAX bytes and escaped (it quotes other servers).
 * STORE_NOT_FOUND when owner does not hold the entry (nothing changes).
 */
int store_outbound_retry(struct store *st, const char *owner, int64_t id,
    int64_t next_try, const char *reason, struct smimp_err *err);
/*
 * Given up: remove the entry and deliver the notice, in one transaction,
 * which records the bounce (store_sent_put) with the notice as its text;
 * STORE_NOT_FOUND (nothing changes) when owner does not hold the entry.
 */
int store_outbound_bounce(struct store *st, const char *owner, int64_t id,
    const struct store_delivery *notice, int64_t now,
    struct smimp_err *err);
/* How many entries are queued (for tests and the admin). */
int store_outbound_count(struct store *st, uint64_t *n,
    struct smimp_err *err);
/* How many entries are queued, and since when the oldest (metrics). */
int store_outbound_stats(struct store *st, struct store_queue_stats *qs,
    struct smimp_err *err);

/* ---- the relay queue, as the administrator sees and steers it ---- */

/*
 * fn for the entry id, or for every entry in queue order when id is 0,
 * fn returning non-zero stops (a failure); STORE_NOT_FOUND when there
 * is no entry id.
 */
int store_outbound_list(struct store *st, int64_t id,
    int (*fn)(const struct store_queue_entry *, void *), void *arg,
    struct smimp_err *err);

/*
 * Hold, release or retry the entry id: STORE_OK, STORE_NOT_FOUND, or
 * for a retry STORE_EXISTS when a live lease holds it (an attempt is
 * under way: its outcome would decide the next try anyway).  A hold
 * or release applies to an entry under a lease too: the attempt under
 * way finishes, and a held entry it leaves is not claimed again.
 */
int store_outbound_admin(struct store *st, int64_t id,
    enum store_queue_op op, int64_t now, struct smimp_err *err);
/*
 * Claim the one entry id for owner until lease_until, held or not,
 * into *ob (released by the caller) for store_outbound_done or
 * store_outbound_bounce: STORE_OK, STORE_NOT_FOUND, or STORE_EXISTS
 * when another live lease holds it.
 */
int store_outbound_take(struct store *st, int64_t id, const char *owner,
    int64_t now, int64_t lease_until, struct outbound *ob,
    struct smimp_err *err);

/* What the store holds, counted (struct store_stats). */
int store_stats(struct store *st, struct store_stats *s,
    struct smimp_err *err);

/*
 * The schema version, and whatever consistency check the back end can
 * make (SQLite: its integrity check, and every body file a row names
 * there): STORE_OK with h->problem set or empty, or STORE_ERROR when
 * the store could not be asked.
 */
int store_check(struct store *st, struct store_health *h,
    struct smimp_err *err);

/*
 * A copy of the store, whole as of one moment, into dir (a directory
 * the caller made, empty), taken while the store serves: the database,
 * and the files of the bodies its rows name (*bodies of them).  Writers
 * wait only while the bodies are linked aside, not while they are
 * copied.  The SQLite store; PostgreSQL's is pg_dump's job (STORE_ERROR,
 * saying so).
 */
int store_backup(struct store *st, const char *dir, uint64_t *bodies,
    struct smimp_err *err);

/* ---- consent policies (doc/PROTOCOL.md, "Consent policies") ---- */

/*
 * Store the policy p of a user (its statement text, checked by the
 * caller) in place of any earlier one, its entries indexed for
 * store_policy_match, in one transaction: STORE_OK (also when the very
 * same statement is stored already), STORE_NOT_FOUND (no such user),
 * STORE_EXISTS (a policy of a later date, or another of the same date,
 * is stored: nothing changes).
 */
int store_policy_put(struct store *st, const struct policy *p,
    const unsigned char *text, size_t len, int64_t now,
    struct smimp_err *err);
/* The statement stored for address, malloc'd: STORE_OK or NOT_FOUND. */
int store_policy_get(struct store *st, const char *address,
    unsigned char **text, size_t *len, struct smimp_err *err);
/*
 * What the policy of address says beyond its lists: STORE_OK
 * (h->has_policy 0 when the user has published none), or
 * STORE_NOT_FOUND when there is no such user.
 */
int store_policy_head(struct store *st, const char *address,
    struct store_policy_head *h, struct smimp_err *err);
/*
 * Where each of n entries stands in the policy of address: listed[i]
 * gets an enum store_listed (STORE_UNLISTED when address has no policy
 * or no account).  One lookup per entry, whatever the policy's size.
 */
int store_policy_match(struct store *st, const char *address,
    const unsigned char (*entries)[POLICY_ENTRY_SIZE], size_t n,
    int *listed, struct smimp_err *err);
/*
 * Has the local user written to domain (a submission of hers queued a
 * message for it)?  STORE_OK if so, else STORE_NOT_FOUND.
 */
int store_correspondent(struct store *st, const char *local,
    const char *domain, struct smimp_err *err);
/*
 * Count one unknown sender's delivery (struct store_consent_count), in
 * the store so that every node counts together: STORE_OK, or
 * STORE_QUOTA with *retry_after the seconds until it would be taken
 * (the recipient's allowance is used up for the day, the sending domain
 * is past its cap for the hour, or ignored).  A domain that sends as
 * many again past its cap within the hour is ignored for ignore_secs.
 * What a refusal counts stays counted.  A message the recipient holds
 * already (sender, message id), or acknowledged within
 * limits.idempotency seconds, is not counted against its allowance
 * again: it would not be stored again (a retry whose answer was lost,
 * or the same message sent again with the same proof of work).  Nor is
 * one counted for the recipient that day already (copies that come at
 * once, before any is stored, to one node or to several).
 */
int store_consent_count(struct store *st,
    const struct store_consent_count *c, int64_t now,
    unsigned int *retry_after, struct smimp_err *err);

/* ---- what became of sent messages (doc/PROTOCOL.md 8.14) ---- */

/*
 * Record the n states of s in one transaction, each in place of the
 * record of its (sender, message id, domain) if any.  A bounce is
 * recorded by store_outbound_bounce itself, with its notice, in the
 * transaction that removes the entry; a submission's own domain by
 * store_submit (sub->sent).
 */
int store_sent_put(struct store *st, const struct store_sent *s, size_t n,
    struct smimp_err *err);
/*
 * fn for each entry of the relay queue (state STORE_SENT_QUEUED), then
 * each record, of the message (sender, message id), in domain order;
 * fn returning non-zero stops (a failure).  STORE_NOT_FOUND when there
 * is neither: another sender's message is not found either.
 */
int store_sent_list(struct store *st, const char *sender,
    const char *message_id, int (*fn)(const struct store_sent_row *,
    void *), void *arg, struct smimp_err *err);
/* Forget the records made before before; *n gets how many. */
int store_sent_expire(struct store *st, int64_t before, uint64_t *n,
    struct smimp_err *err);

/* ---- one-time prekeys (doc/PROTOCOL.md, section 10) ---- */

/*
 * Add a batch to the pool of (b->address, b->device), all of it or
 * nothing: STORE_OK with *count the prekeys in the pool now;
 * STORE_NOT_FOUND when there is no such user; STORE_EXISTS when the
 * pool took a batch of a later date before (an older batch replayed),
 * or holds one of its ids already; STORE_QUOTA when the pool would
 * hold more than b->max (*count then says how many it holds).
 */
int store_prekey_add(struct store *st, const struct store_prekey_batch *b,
    size_t *count, struct smimp_err *err);
/* How many prekeys the pool of (address, device) holds now. */
int store_prekey_count(struct store *st, const char *address,
    const char *device, size_t *count, struct smimp_err *err);
/*
 * Hand out one prekey from the pool of each of the n devices of address
 * ("" the identity key), each removed in the same transaction that
 * finds it, so that no prekey ever goes to two callers, whatever the
 * nodes: states[i] gets an enum store_prekey_state, keys[i] the prekey
 * when STORE_PREKEY_TAKEN.  The oldest goes first (by its batch's date,
 * then its id): a device keeps the secrets of its latest uploads only
 * (PREKEY_STORE_MAX, twice a full pool), so that a pool handed out in
 * any other order would hand out prekeys whose secrets are gone.
 */
int store_prekey_claim(struct store *st, const char *address,
    const char *const *devices, size_t n, struct store_prekey *keys,
    int *states, int64_t now, struct smimp_err *err);
/*
 * Remove the prekeys of the pool of (address, device) dated through
 * (a batch's date) or before: a key that signed them no longer speaks
 * for the device, and neither do its older batches.
 */
int store_prekey_drop(struct store *st, const char *address,
    const char *device, int64_t through, int64_t now,
    struct smimp_err *err);

/* ---- the domain's server key ---- */

/*
 * The public server key that the nodes of the domain sign with, as the
 * store records it, into recorded: STORE_OK.  When none is recorded
 * yet, pk is (the first node's key, recorded once whatever the nodes
 * that start together), unless pk is NULL: then STORE_NOT_FOUND.  A
 * store that one process alone opens (SQLite: the key lies beside it,
 * and is the only one) records none, and answers with pk.
 */
int store_server_key(struct store *st, const unsigned char *pk,
    unsigned char recorded[32], struct smimp_err *err);

/* Back ends. */
extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_postgresql_ops;

#endif
