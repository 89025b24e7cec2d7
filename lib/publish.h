/*
 * publish.h - one's consent policy (policy.h) on one's home server: the
 * work of smimp-trust publish.  The policy is made from the trust
 * store (trusted and known addresses and domains allowed, blocked ones
 * blocked), with a fresh salt, signed by the identity key, and posted
 * with a signed request; the settings chosen for unknown senders are
 * remembered in $SMIMP_HOME/policy (0600), one line per address:
 *
 *	ADDRESS UNKNOWN ALLOWANCE DATE KEYFILE
 *
 * so that publishing again after the trust store changed (smimp-trust
 * set, smimp-seal pinning a new recipient) keeps them.  Publications
 * from one home are made one at a time, under an exclusive lock on
 * $SMIMP_HOME/policy.lock, each dated after the last.
 */
#ifndef SMIMP_PUBLISH_H
#define SMIMP_PUBLISH_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "identity.h"
#include "keys.h"
#include "policy.h"
#include "remote.h"
#include "trust.h"

/* What unknown senders may deliver a day, unless the user said. */
#define PUBLISH_ALLOWANCE_DEFAULT	100

struct publish_settings {
	char address[ADDRESS_MAX + 1];
	enum policy_unknown unknown;
	unsigned int bits;
	uint32_t allowance;
	int64_t date;			/* the last publication's, or 0 */
	char key_path[PATH_MAX];	/* the identity that published it */
};

/*
 * The settings remembered for address: 1, or 0 when there are none
 * (then s holds the defaults: open, PUBLISH_ALLOWANCE_DEFAULT), or -1.
 */
int publish_settings_get(const char *home, const char *address,
    struct publish_settings *s, struct smimp_err *err);
/* Has any policy been published from home?  1, 0, or -1. */
int publish_settings_any(const char *home, struct smimp_err *err);

/* What a publication sent. */
struct publish_result {
	size_t nblock, nallow;
	int64_t date;
};

/*
 * Publish id's policy with the settings s (s->address is id's): made
 * from home's trust store, dated now (after the last publication),
 * posted to the home server.  Once the server has it, s (with its date
 * and id's key file) is remembered.  The server cannot be reached:
 * SMIMP_EXIT_TEMPFAIL.
 */
int publish_policy(const struct remote_opts *o, const char *home,
    const struct identity *id, struct publish_settings *s,
    struct publish_result *res, struct smimp_err *err);

/*
 * The policy id's home server holds, fetched with a signed request and
 * verified under id's identity key: p (policy_release), or -1 (none
 * published: SMIMP_EXIT_FAIL).
 */
int publish_fetch(const struct remote_opts *o, const struct identity *id,
    struct policy *p, struct smimp_err *err);

/*
 * Which names of ts the policy p lists: fn(name, class, arg) for each,
 * in the store's order; *unmatched gets how many entries of p match no
 * name of ts.
 */
void publish_names(const struct policy *p, const struct trust_store *ts,
    void (*fn)(const char *name, enum policy_class c, void *arg),
    void *arg, size_t *unmatched);

/*
 * The trust store of home changed: publish again every policy
 * published from it before (with id, for id's address only, when id
 * is not NULL; else each with the key file it was published with,
 * read with src).  Returns how many were published; what could not be
 * (no server, a passphrase not given) is said in warning (cap bytes),
 * which stays empty when all went well: never an error.
 */
int publish_again(const struct remote_opts *o, const char *home,
    const struct identity *id, const struct passphrase_source *src,
    char *warning, size_t cap);

#endif
