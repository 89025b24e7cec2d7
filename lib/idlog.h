/*
 * idlog.h - the identity log: a hash-chained list of signed records
 * (genesis, new encryption key, rotation, revocation, recovery, a
 * device added or removed) that together say which keys speak for an
 * address.  A .pub file holds a
 * whole log; its first record is the genesis, from which the
 * fingerprint is derived.  Byte format: doc/PROTOCOL.md, smimp-identity(5).
 */
#ifndef SMIMP_IDLOG_H
#define SMIMP_IDLOG_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"

#define IDLOG_MAX_BYTES		(1024 * 1024)	/* whole log */
#define IDLOG_MAX_RECORDS	1024
#define IDREC_MAX_BYTES		4096		/* one record */
#define FINGERPRINT_SIZE	20
#define FINGERPRINT_STRLEN	40	/* 8 groups of 4, '-', NUL */
#define IDLOG_HASH_SIZE		32
#define IDREC_REASON_MAX	200	/* a revocation's reason, in bytes */
#define IDDEV_NAME_MAX		32	/* a device's name, in bytes */
#define IDLOG_MAX_DEVICES	64	/* live (added, not removed) at once */

enum idrec_type {
	IDREC_GENESIS,		/* names identity, encryption, recovery keys */
	IDREC_ENCRYPTION_KEY,	/* a new encryption key */
	IDREC_ROTATE,		/* a new identity key */
	IDREC_REVOKE,		/* the identity is revoked */
	IDREC_RECOVER,		/* recovery key replaces a lost identity key */
	IDREC_DEVICE_ADD,	/* a device's keys and scope */
	IDREC_DEVICE_REMOVE	/* a device no longer speaks for the address */
};

/* What a device may do for the identity (doc/PROTOCOL.md, "Devices"). */
enum iddev_scope {
	IDDEV_FULL,		/* everything but changing the log */
	IDDEV_SEND,		/* seal and submit only */
	IDDEV_RECEIVE		/* fetch and open only */
};

/*
 * A device the log added: live until a device-remove names it.  A
 * removed device stays in the list (with removed set), so that what it
 * signed can be told from what a stranger signed, and its keys never
 * come back.
 */
struct iddevice {
	char name[IDDEV_NAME_MAX + 1];
	enum iddev_scope scope;
	unsigned char signing_key[32];		/* Ed25519 */
	unsigned char encryption_key[32];	/* X25519 */
	int64_t added;			/* the device-add record's date */
	size_t added_rec;		/* and its index in the log */
	int removed;
	int64_t removed_at;		/* the device-remove record's date */
	size_t removed_rec;
};

struct idrec {
	enum idrec_type type;
	uint64_t seq;
	int64_t date;			/* seconds since the epoch, UTC */
	int by_recovery;		/* signed by the recovery key */
	unsigned char prev[IDLOG_HASH_SIZE];	/* zero for the genesis */
	unsigned char hash[IDLOG_HASH_SIZE];	/* of the whole record */
	const unsigned char *raw;	/* points into idlog.raw */
	size_t raw_len;
};

struct idlog {
	unsigned char *raw;		/* the log's bytes, owned */
	size_t raw_len;
	struct idrec *recs;
	size_t n;
	/* The state the verified log arrives at. */
	char address[ADDRESS_MAX + 1];
	unsigned char fingerprint[FINGERPRINT_SIZE];
	unsigned char identity_key[32];		/* Ed25519, current */
	unsigned char encryption_key[32];	/* X25519, current */
	unsigned char recovery_key[32];		/* Ed25519 */
	unsigned char head[IDLOG_HASH_SIZE];	/* hash of the last record */
	int revoked;
	int64_t revoked_at;			/* the revoke record's date */
	char reason[IDREC_REASON_MAX + 1];	/* and its reason */
	/*
	 * Every device the log added, in the order of their records; those
	 * without removed are live (nlive of them).  Owned.
	 */
	struct iddevice *devices;
	size_t ndevices;
	size_t nlive;
};

/*
 * Parse a log and verify it: record syntax, sequence numbers, the hash
 * chain and every signature.  Copies buf.  Fails with SMIMP_EXIT_BADMSG.
 */
int idlog_parse(struct idlog *log, const unsigned char *buf, size_t len,
    struct smimp_err *err);
/*
 * The same, without checking signatures again: for logs that were
 * verified before they were stored (the trust store).  Syntax, sequence
 * and hash chain are still checked.
 */
int idlog_parse_verified(struct idlog *log, const unsigned char *buf,
    size_t len, struct smimp_err *err);
/*
 * Parse and verify a log that may extend one verified before (a pin):
 * when buf begins with all of verified's bytes, the signatures of those
 * records are not checked again, and only the records after them are
 * (a sender's rotation since it was pinned costs one verification, not
 * one per record); any other buf, verified NULL included, is verified
 * whole, as by idlog_parse.
 */
int idlog_parse_after(struct idlog *log, const unsigned char *buf,
    size_t len, const struct idlog *verified, struct smimp_err *err);
int idlog_read_file(struct idlog *log, const char *path,
    struct smimp_err *err);
int idlog_read_file_verified(struct idlog *log, const char *path,
    struct smimp_err *err);
void idlog_release(struct idlog *log);
/* Deep copy. */
int idlog_copy(struct idlog *dst, const struct idlog *src,
    struct smimp_err *err);

/*
 * Make a genesis record signed by identity_secret (64-byte Ed25519
 * secret key) and parse it into log.
 */
int idlog_genesis(struct idlog *log, const char *address,
    const unsigned char identity_secret[64],
    const unsigned char encryption_public[32],
    const unsigned char recovery_public[32], int64_t date,
    struct smimp_err *err);

/* Does newer extend older (same genesis, older is a prefix)? */
int idlog_extends(const struct idlog *newer, const struct idlog *older);

/*
 * How newer may replace older, a log pinned or stored before.  Either it
 * extends older, or it is a recovery: the first record where the two
 * differ is newer's `recover` (signed by the recovery key of their shared
 * genesis), and older's records from there on, which newer cuts back,
 * hold no `recover` of their own.  Those records are void.
 */
struct idlog_follow {
	int recovery;		/* newer cuts older back */
	size_t cut;		/* older's records from this index are void */
	size_t voided;		/* how many: older->n - cut */
	int64_t recovered_at;	/* the recover record's date */
};
/*
 * 0 with how filled in, or -1 with SMIMP_EXIT_KEYCHANGED and the reason:
 * another identity, a truncation, a fork that is no recovery, or a
 * recovery that would cut back an earlier one (how->recovery set then).
 * how->cut is where the two differ, on failure too.
 */
int idlog_check_follows(const struct idlog *newer, const struct idlog *older,
    struct idlog_follow *how, struct smimp_err *err);
/*
 * The log that records (one or more, as posted to a server) make of
 * stored: they follow stored's record seq - 1, where seq is the first
 * one's, so that a recovery may begin before stored's head.  Verified
 * whole; the caller checks with idlog_check_follows that it may replace
 * stored.  SMIMP_EXIT_BADMSG for records that do not parse or verify.
 */
int idlog_splice(const struct idlog *stored, const unsigned char *records,
    size_t len, struct idlog *next, struct smimp_err *err);
/*
 * Was the key that signed under msglog voided by a recovery that pinned
 * records?  That is, msglog shares pinned's genesis and differs from it
 * at a record where pinned has a `recover`: then 1, and *recovered_at is
 * its date.
 */
int idlog_voided_by(const struct idlog *pinned, const struct idlog *msglog,
    int64_t *recovered_at);
/*
 * The first record of log after its first `from` that replaced the
 * identity key (a rotate or recover), or NULL: a message signed under
 * log's first `from` records by its identity key speaks only for what
 * it sealed up to that record's date.
 */
const struct idrec *idlog_key_replaced_after(const struct idlog *log,
    size_t from);

/* A record to append: what the log it extends does not fix already. */
struct idrec_new {
	enum idrec_type type;		/* any but IDREC_GENESIS */
	int by_recovery;		/* signed by the recovery key */
	int64_t date;
	/*
	 * recover only: the number of records of the log to keep, from 1
	 * to its length; those after it are cut back (void).  0 keeps all.
	 */
	size_t keep;
	const unsigned char *identity_key;	/* rotate, recover: 32 bytes */
	const unsigned char *encryption_key;	/* encryption-key, recover */
	const char *reason;		/* revoke: 1 to IDREC_REASON_MAX bytes
					   of printable ASCII */
	/* device-add, device-remove: the device's name */
	const char *device;
	/* device-add: its scope, Ed25519 signing and X25519 encryption keys */
	enum iddev_scope scope;
	const unsigned char *device_signing_key;
	const unsigned char *device_encryption_key;
};
/* Is s a revocation's reason as a record may carry it? */
int idlog_reason_valid(const char *s);
/* Is s a device's name: 1 to IDDEV_NAME_MAX of a-z 0-9 -, not first -? */
int iddev_name_valid(const char *s);
/* "full", "send", "receive"; and back (-1 for anything else). */
const char *iddev_scope_name(enum iddev_scope scope);
int iddev_scope_parse(const char *s, enum iddev_scope *scope);
/*
 * What a scope lets a device do: send (seal, stamp, submit: full and
 * send), receive (be sealed to, fetch, open: full and receive).
 */
int iddev_scope_sends(enum iddev_scope scope);
int iddev_scope_receives(enum iddev_scope scope);
/* The device of that name removed last, or NULL. */
const struct iddevice *idlog_removed_device(const struct idlog *log,
    const char *name);
/* The live device of that name, or NULL. */
const struct iddevice *idlog_device(const struct idlog *log,
    const char *name);
/*
 * The device, live or removed, whose signing key is key, or NULL: what
 * a device signed is checked against this, and refused when removed.
 */
const struct iddevice *idlog_device_by_key(const struct idlog *log,
    const unsigned char key[32]);
/*
 * The device that may have signed a message for log's identity: the
 * live device named name (whose signing key is key, unless key is
 * NULL) of scope full or send.  Else NULL, with SMIMP_EXIT_BADMSG and
 * why: it was removed (when), it is no device of the address, or it
 * only receives.  A reader refuses what such a device signed as it
 * refuses a revoked key's.
 */
const struct iddevice *idlog_sending_device(const struct idlog *log,
    const char *name, const unsigned char *key, struct smimp_err *err);
/*
 * The encryption keys of log's live devices that receive (scope full
 * or receive), in the order of their records, into keys: how many.
 * A sealer encrypts to each of them beside the identity's own key.
 */
size_t idlog_receiving_keys(const struct idlog *log,
    unsigned char keys[IDLOG_MAX_DEVICES][32]);
/*
 * Append the next record (seq, prev and address follow from log) signed
 * by signer, the 64-byte Ed25519 secret key that must be in force: the
 * current identity key, or the recovery key when by_recovery.  The whole
 * log is verified again; on failure (SMIMP_EXIT_BADMSG for a record the
 * log refuses, such as one signed by the wrong key, one after a
 * revocation, a device name already live or a removed device's keys;
 * SMIMP_EXIT_USAGE for a bad reason or device name) log is unchanged.
 */
int idlog_append(struct idlog *log, const struct idrec_new *rec,
    const unsigned char signer[64], struct smimp_err *err);

/* What the records of log from index from on changed. */
struct idlog_changes {
	size_t added;		/* records */
	int rotated;		/* identity key replaced (rotate) */
	int encryption;		/* encryption key replaced (encryption-key) */
	int recovered;		/* both replaced by the recovery key */
	int64_t recovered_at;	/* the last recover record's date */
	size_t voided;		/* records the recovery cut back
				   (idlog_changes_followed) */
	int revoked;
	size_t devices_added;	/* device-add records */
	size_t devices_removed;	/* device-remove records */
};
void idlog_changes_since(const struct idlog *log, size_t from,
    struct idlog_changes *c);
/*
 * What following to log from a pinned log of was records changed, how
 * being idlog_check_follows's answer: the records past was, or past the
 * cut of a recovery, with how many it voided.
 */
void idlog_changes_followed(const struct idlog *log, size_t was,
    const struct idlog_follow *how, struct idlog_changes *c);

/* "ABCD-EFGH-...": 32 base32 characters in 8 groups of 4. */
void fingerprint_format(const unsigned char fp[FINGERPRINT_SIZE],
    char out[FINGERPRINT_STRLEN]);
/* Accepts any case, with or without '-' or spaces. */
int fingerprint_parse(const char *s, unsigned char fp[FINGERPRINT_SIZE]);

#endif
