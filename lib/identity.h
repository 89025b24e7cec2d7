/*
 * identity.h - one's own identity (secret key plus identity log) and
 * other people's (a .pub file or an address pinned in the trust store):
 * the lookups that seal, open and trust share.
 */
#ifndef SMIMP_IDENTITY_H
#define SMIMP_IDENTITY_H

#include <limits.h>

#include "err.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "reqsig.h"
#include "signer.h"
#include "trust.h"

struct identity {
	struct secret_key sk;
	struct idlog log;
	int has_log;
	char key_path[PATH_MAX];	/* where sk came from */
	char pub_path[PATH_MAX];	/* where log is: beside it, ".pub" */
	/*
	 * Who signs its requests: the address for the identity key,
	 * "device:NAME:ADDRESS" for a device's key (sk.is_device).
	 */
	char signer[REQSIG_SIGNER_MAX + 1];
};

/*
 * What a command does with a key.  The identity key does everything; a
 * device's key what its scope in the identity log allows
 * (doc/PROTOCOL.md, "Devices"): full, all but IDACT_IDENTITY; send,
 * IDACT_SEAL and IDACT_SEND; receive, IDACT_FETCH and IDACT_OPEN; any
 * device, IDACT_LOOKUP.
 */
enum identity_act {
	IDACT_IDENTITY,		/* change the log, publish a policy, ... */
	IDACT_SEAL,
	IDACT_SEND,
	IDACT_FETCH,		/* list, download, acknowledge */
	IDACT_OPEN,
	IDACT_LOOKUP		/* sign directory lookups */
};

/*
 * Load the secret key at keypath (NULL: the default identity) and, with
 * need_log IDENTITY_LOG_NEED, the identity log beside it (".key"
 * replaced by ".pub"), checking that the two belong together; with
 * IDENTITY_LOG_IF_PRESENT, the log only when that file exists (has_log
 * says); with IDENTITY_LOG_NONE, no log.
 */
#define IDENTITY_LOG_NONE	0
#define IDENTITY_LOG_NEED	1
#define IDENTITY_LOG_IF_PRESENT	2
int identity_load(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, struct smimp_err *err);
/*
 * The same with the log always, keeping the passphrase the key was
 * read with (*pass NULL when it has none; for passphrase_free), so that
 * what replaces the key is written under it.
 */
int identity_load_keep(struct identity *id, const char *keypath,
    const struct passphrase_source *src, char **pass, size_t *pass_len,
    struct smimp_err *err);
/*
 * The same for a command that does act: a device's key is taken when
 * its scope allows act (identity_may), with its log beside it, which a
 * device needs for every act but IDACT_FETCH (which refreshes it,
 * fetch_device_log) and IDACT_LOOKUP; for the identity key need_log
 * says, as above.  identity_load is identity_load_for IDACT_IDENTITY:
 * a device's key is refused.
 */
int identity_load_for(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, enum identity_act act,
    struct smimp_err *err);
/*
 * May id do act?  The identity key, always.  A device's key when log
 * (its identity's, NULL: id->log) names it live with this very key and
 * a scope that allows act; else -1: a log that lacks it (SMIMP_EXIT_FAIL),
 * a device removed or an identity revoked (SMIMP_EXIT_KEYCHANGED), a
 * scope that does not allow act (SMIMP_EXIT_FAIL).
 */
int identity_may(const struct identity *id, const struct idlog *log,
    enum identity_act act, struct smimp_err *err);
/* A signer of requests as id (its signer name, its signing key). */
void identity_signer(const struct identity *id, struct signer *s);
void identity_release(struct identity *id);
/*
 * Where the log of the identity whose key is at keypath (NULL: the
 * default identity) is, as identity_load reads it, without the key.
 */
int identity_pub_path(const char *keypath, char *out, size_t cap,
    struct smimp_err *err);

/* The recipient that log names, with its receiving devices. */
void recipient_from_log(struct msg_recipient *r, const struct idlog *log);
/* Is arg, given as a recipient, a file: with a '/' or ending in ".pub"? */
int recipient_is_file(const char *arg);
/*
 * A recipient named by a file, checked against the store
 * (trust_recipient_log), or by a pinned address.  arg is a file with
 * as_file, or when written as one: with a '/' or ending in ".pub".
 */
int recipient_resolve(const char *arg, int as_file,
    const struct trust_store *ts, struct msg_recipient *r,
    struct smimp_err *err);

#endif
