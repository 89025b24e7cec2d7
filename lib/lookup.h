/*
 * lookup.h - identities from their own domain's directory, over HTTPS:
 * looked up for smimp-trust fetch, and looked up and pinned on first
 * use for a recipient smimp-seal has no key for.
 */
#ifndef SMIMP_LOOKUP_H
#define SMIMP_LOOKUP_H

#include "err.h"
#include "idlog.h"
#include "message.h"
#include "remote.h"
#include "trust.h"

/*
 * The identity log that the directory of address's own domain serves
 * for it, verified, and checked to be address's.
 */
int lookup_directory(struct remote *r, const char *address,
    struct idlog *log, struct smimp_err *err);
/* The same with a remote of its own, address not yet normalized. */
int lookup_identity(const struct remote_opts *o, const char *address,
    struct idlog *log, struct smimp_err *err);

/*
 * A recipient named by a file (see recipient_resolve) or by an address
 * pinned in ts, else looked up in its domain's directory (settings from
 * clientconf.h) and pinned in home's trust store on first use.
 * *pinned_now is set then, so that the caller can tell the user to
 * check the fingerprint.
 */
int lookup_recipient(const char *home, const struct trust_store *ts,
    const char *arg, int as_file, struct msg_recipient *r, int *pinned_now,
    struct smimp_err *err);

#endif
