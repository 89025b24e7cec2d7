/*
 * lookup.h - identities from their own domain's directory, over HTTPS:
 * looked up for smimp-trust fetch, and looked up and pinned on first
 * use for a recipient smimp-seal has no key for.
 *
 * Directories answer only signed lookups (doc/PROTOCOL.md, "Directory
 * lookups"), so that addresses cannot be harvested: every lookup here
 * is signed by who, the user's identity (or her recovery key, as
 * recovery:ADDRESS, for her own log), never NULL.
 */
#ifndef SMIMP_LOOKUP_H
#define SMIMP_LOOKUP_H

#include "address.h"
#include "clientconf.h"
#include "err.h"
#include "idlog.h"
#include "message.h"
#include "remote.h"
#include "trust.h"

/*
 * The identity log that the directory of address's own domain serves
 * for it, verified, and checked to be address's.  When the directory
 * answered otherwise than 200, err->detail is its HTTP status (401: it
 * refused who), else 0.
 */
int lookup_directory(struct remote *r, const char *address,
    const struct signer *who, struct idlog *log, struct smimp_err *err);
/* The same with a remote of its own, address not yet normalized. */
int lookup_identity(const struct remote_opts *o, const char *address,
    const struct signer *who, struct idlog *log, struct smimp_err *err);

/* What following a pinned identity found. */
struct refresh_result {
	size_t was;			/* records pinned before */
	struct idlog log;		/* the log now pinned */
	struct idlog_changes changes;	/* its records past was, or past
					   the cut of a recovery */
	struct idlog_follow how;	/* a recovery, and what it voided */
};
/*
 * Fetch the log of a pinned address (normalized) from its domain's
 * directory and follow it in home's trust store (trust_follow): only
 * a log that extends the pinned one, or recovers it, is taken, else
 * SMIMP_EXIT_KEYCHANGED
 * with the reason.  res->log is released with idlog_release.
 */
int lookup_refresh(struct remote *r, const char *home, const char *address,
    const struct signer *who, struct refresh_result *res,
    struct smimp_err *err);

/* What looking a recipient up did, for the caller to tell the user. */
struct recipient_lookup {
	int pinned_now;		/* looked up and pinned on first use: the
				   user should check the fingerprint */
	int refreshed;		/* checked against its directory: res */
	struct refresh_result res;
	char warning[SMIMP_ERR_MSG];	/* the check could not be made: the
					   pin was used as it is */
};
void recipient_lookup_release(struct recipient_lookup *l);

/*
 * What one command's lookups share: its settings (clientconf.h), read
 * once, and one remote handle, made on first use, so that recipients
 * of one domain share its connection, and a domain that could not be
 * reached is not asked again for each of them (remote_base).
 */
#define LOOKUP_DOWN_MAX	8
struct lookup_session {
	struct clientconf conf;
	int loaded;
	struct remote *rem;
	/* domains whose server gave no answer, and what failed */
	char down[LOOKUP_DOWN_MAX][ADDRESS_DOMAIN_MAX + 1];
	char down_why[LOOKUP_DOWN_MAX][SMIMP_ERR_MSG];
	size_t ndown;
};
void lookup_session_init(struct lookup_session *s);
/*
 * Did the server of address's domain give no answer (no connection, a
 * timeout) to an earlier request of s?  Its failure, else NULL.
 */
const char *lookup_session_down(const struct lookup_session *s,
    const char *address);
/* Remember that, if err says no answer came for address's domain. */
void lookup_session_failed(struct lookup_session *s, const char *address,
    const struct smimp_err *err);
int lookup_session_conf(struct lookup_session *s, struct smimp_err *err);
struct remote *lookup_session_remote(struct lookup_session *s,
    struct smimp_err *err);
void lookup_session_release(struct lookup_session *s);

/*
 * A recipient named by a file (see recipient_resolve) or by an address
 * pinned in ts, else looked up in its domain's directory (settings from
 * clientconf.h) and pinned in home's trust store on first use.  A
 * pinned address last checked against its directory (trust_check_due)
 * a refresh interval ago or more is checked again and followed
 * (lookup_refresh): a log the pin may not follow, or one that says the
 * identity is revoked, fails with SMIMP_EXIT_KEYCHANGED; a directory
 * that cannot be asked (down, unreachable, no such user) leaves the pin
 * as it is, with l->warning.  l is released with
 * recipient_lookup_release, also on failure.  The network goes through
 * s.
 */
int lookup_recipient(const char *home, const struct trust_store *ts,
    const char *arg, int as_file, const struct signer *who,
    struct lookup_session *s, struct msg_recipient *r,
    struct recipient_lookup *l, struct smimp_err *err);

#endif
