/*
 * trust.h - the local trust store: pinned identities and trust tiers,
 * and the decisions taken on them.
 *
 * One human-readable file, $SMIMP_HOME/trust (format: smimp-trust(5)).
 * Entries are addresses (pinned to an identity log, so also a key) or
 * whole domains ("@example.net", a tier only).  Every change takes an
 * exclusive lock, reloads, applies, and replaces the file atomically
 * (temporary file, fsync, rename, fsync of the directory).
 */
#ifndef SMIMP_TRUST_H
#define SMIMP_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "introduction.h"

#define TRUST_MAX_BYTES		(16 * 1024 * 1024)
#define TRUST_MAX_ENTRIES	65536

enum trust_tier {
	TIER_UNKNOWN = 0,	/* no entry: never stored */
	TIER_BLOCKED,
	TIER_KNOWN,
	TIER_TRUSTED
};

struct trust_entry {
	char name[ADDRESS_MAX + 2];	/* "user@domain" or "@domain" */
	enum trust_tier tier;
	int has_log;			/* addresses: pinned identity */
	struct idlog log;
	int verified;			/* fingerprint checked by a person */
	int64_t added;
	/*
	 * When the pinned log was last checked against its domain's
	 * directory (looked up, fetched or refreshed); 0 when never, and
	 * then added stands for it (trust_check_due).
	 */
	int64_t checked;
};

struct trust_names;		/* trust.c's index of the entries by name */

struct trust_store {
	char home[4096];		/* the directory it was loaded from */
	char path[4096];
	struct trust_entry *entries;	/* in file order */
	size_t n;
	size_t cap;			/* entries allocated, grown by doubling */
	struct trust_names *names;	/* so that trust_find takes constant time */
};

const char *trust_tier_name(enum trust_tier tier);
int trust_tier_parse(const char *s, enum trust_tier *tier);

/* Load the store of home ($SMIMP_HOME); a missing file is an empty store. */
int trust_load(struct trust_store *ts, const char *home,
    struct smimp_err *err);
void trust_release(struct trust_store *ts);

/* Entry for a normalized address or "@domain", or NULL. */
const struct trust_entry *trust_find(const struct trust_store *ts,
    const char *name);
/*
 * The tier that applies to an address: its own entry's, else its
 * domain's, else TIER_UNKNOWN.  *pinned gets the address's own entry
 * (with its log) or NULL.
 */
enum trust_tier trust_tier_for(const struct trust_store *ts,
    const char *address, const struct trust_entry **pinned);

/* The trust decisions, taken here only: commands and lib/ ask these. */

/*
 * How far the sender address of a verified message, signed under log,
 * is trusted.  A tier applies only to an address with a pinned
 * identity: an unpinned sender is TIER_UNKNOWN whatever the tier of its
 * address or domain (unless blocked).  own (the reader's own identity
 * signed the message): TIER_TRUSTED.  Fails with SMIMP_EXIT_KEYCHANGED
 * when the address is pinned to another identity, or to one that log
 * forks from.
 */
int trust_sender_tier(const struct trust_store *ts, const char *address,
    const struct idlog *log, int own, enum trust_tier *tier,
    struct smimp_err *err);
/*
 * The sender's state, once a message's signature verified: what log
 * (the one the message, sealed at date sealed, carries) and the pinned
 * log of address, when it extends log and knows more, say of the
 * message.  Fails with SMIMP_EXIT_KEYCHANGED when either says the
 * identity is revoked (since when and why), or when the key that signed
 * it had been rotated before the message's date; note (cap bytes, else
 * empty) says when that key was rotated after it.  A message that the
 * device named device (not NULL or "") signed with device_key is judged
 * by the device instead: SMIMP_EXIT_BADMSG when the pinned log says it
 * was removed, as idlog_sending_device says.
 */
int trust_sender_state(const struct trust_store *ts, const char *address,
    const struct idlog *log, int64_t sealed, const char *device,
    const unsigned char *device_key, char *note, size_t cap,
    struct smimp_err *err);
/*
 * Follow the pinned identity of the sender of a verified message (its
 * signature checked: never before) to log, the one the message carries,
 * when log is of the same identity and is not already pinned or older
 * than the pinned one: trust_follow decides whether log may replace the
 * pin, in ts's home and in ts itself, so that later decisions on ts see
 * it.  *was gets how many records were pinned, 0 when nothing was
 * followed (not pinned, another identity, not newer), and *changes what
 * the records past them changed.  A log the pin may not follow fails
 * with SMIMP_EXIT_KEYCHANGED and the reason.  Not a check against the
 * directory: the date it was checked stays.
 */
int trust_follow_sender(struct trust_store *ts, const struct idlog *log,
    size_t *was, struct idlog_changes *changes, struct smimp_err *err);
/*
 * Is the pinned identity of address due to be checked against its
 * directory again: last checked (else added) interval seconds or more
 * before now?  0 for an address with no pinned identity.
 */
int trust_check_due(const struct trust_store *ts, const char *address,
    int64_t interval, int64_t now);
/*
 * May the body of a verified message from sender, at tier, be released?
 * Never from a blocked sender; from an unknown one only when the user
 * accepts unknown senders.  Fails with SMIMP_EXIT_UNTRUSTED if not.
 */
int trust_may_release(enum trust_tier tier, const char *sender,
    int accept_unknown, struct smimp_err *err);
/*
 * Who, of the introducers of in[0..n) (a message's introductions),
 * introduced sender to reader at now: the first whose statement is for
 * them (introduction_check) and verifies under the current identity key
 * of the introducer's pinned, unrevoked log, and whom the store holds
 * trusted or known.  Their address (in in), or NULL.  Only for a
 * sender the store does not know: a tier decides for the others.
 */
const char *trust_introducer(const struct trust_store *ts,
    const struct introduction *in, size_t n, const char *sender,
    const char *reader, int64_t now);
/*
 * The pinned log to encrypt to for a normalized address.  Fails with
 * SMIMP_EXIT_UNTRUSTED when none is pinned (the caller may look the
 * address up), SMIMP_EXIT_FAIL when it is blocked, SMIMP_EXIT_KEYCHANGED
 * when its identity is revoked.
 */
int trust_recipient(const struct trust_store *ts, const char *address,
    const struct idlog **log, struct smimp_err *err);

/*
 * May the log of a recipient named by a file (source, for messages) be
 * encrypted to?  Not when its address is blocked (SMIMP_EXIT_FAIL), nor
 * when the address is pinned to another identity or to a log this one
 * forks from, nor when the identity is revoked (SMIMP_EXIT_KEYCHANGED):
 * a file never overrides what the store says of its address.  *use gets
 * the later of the file's log and the pinned one.
 */
int trust_recipient_log(const struct trust_store *ts, const struct idlog *log,
    const char *source, const struct idlog **use, struct smimp_err *err);

/*
 * Under the lock: pin log for its address with a tier.  If the address
 * is already pinned to a different genesis, fail with
 * SMIMP_EXIT_KEYCHANGED unless replace is set; a log that extends the
 * pinned one updates it, and an older copy (a prefix) leaves it as it
 * is.  looked_up: log is what the address's directory serves now, so
 * the entry is marked checked now, and an older copy is a truncation,
 * refused with SMIMP_EXIT_KEYCHANGED.  tier TIER_UNKNOWN: none given,
 * so that a new entry, or another identity put in place (replace), is
 * known, and an entry of the same identity keeps its tier (a blocked
 * one stays blocked).  *pinned (unless NULL) gets the entry's tier.
 */
int trust_pin(const char *home, const struct idlog *log,
    enum trust_tier tier, int replace, int looked_up,
    enum trust_tier *pinned, struct smimp_err *err);
/*
 * Pin an identity found by looking its address up, trusting it on first
 * use: at tier known, and never over another identity already pinned.
 * The entry is marked checked now.
 */
int trust_pin_first_use(const char *home, const struct idlog *log,
    struct smimp_err *err);
/*
 * Under the lock: follow the pinned identity of log's address to log,
 * which must extend the pinned log or recover it (SMIMP_EXIT_KEYCHANGED
 * with the reason otherwise: another identity, a truncation, a fork, a
 * recovery of a recovery); tier and verification stay.  *was gets how
 * many records the pinned log had, how whether log recovered it and
 * what that voided (idlog_check_follows).  log is the one its directory
 * serves now: the entry is marked checked now, also when log is the
 * pinned one.
 */
int trust_follow(const char *home, const struct idlog *log, size_t *was,
    struct idlog_follow *how, struct smimp_err *err);
int trust_set_tier(const char *home, const char *name, enum trust_tier tier,
    struct smimp_err *err);
int trust_remove(const char *home, const char *name, struct smimp_err *err);
int trust_mark_verified(const char *home, const char *address,
    const unsigned char fp[FINGERPRINT_SIZE], struct smimp_err *err);

#endif
