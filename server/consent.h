/*
 * consent.h - the server's consent decision: may this sender's message
 * reach this local recipient, by the recipient's signed policy
 * (lib/policy.h), the proof of work and introduction it came with, the
 * recipient's daily allowance for unknown senders and the hourly cap
 * on unknown senders of one domain?  doc/PROTOCOL.md, "Consent
 * policies", says why each step is as it is.
 *
 * A refusal never says why: a blocked sender, one without the work or
 * introduction asked for, and an address without an account all get
 * CONSENT_ABSENT after the same store lookups and hashing, so that the
 * answers built on it cannot be told apart, by their bytes or by time.
 */
#ifndef SMIMPD_CONSENT_H
#define SMIMPD_CONSENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct server;

struct consent_ask {
	const char *sender;		/* normalized address */
	const char *recipient;		/* normalized address of this domain */
	const char *message_id;		/* the message's, when it is counted */
	unsigned int work_bits;		/* the value of the sender's proof */
	const char *introducer;		/* verified introducer, or NULL */
};

enum consent_verdict {
	CONSENT_ACCEPT,
	CONSENT_ABSENT,	/* refused: answered exactly as an unknown recipient */
	CONSENT_LATER,	/* over an allowance or a domain cap: 429, *retry_after */
	CONSENT_ERROR	/* the store failed: 503 */
};

/*
 * The decision for one message from a->sender to a->recipient at now.
 * An unknown sender that gets in is counted (store_consent_count),
 * against the recipient's allowance only when the recipient does not
 * hold a->message_id from a->sender already.
 */
enum consent_verdict consent_check(struct server *srv,
    const struct consent_ask *a, int64_t now, unsigned int *retry_after,
    struct smimp_err *err);

/*
 * Could an introduction by a->introducer (not yet verified) be what
 * lets a->sender reach a->recipient: the recipient exists, allows that
 * introducer, and asks of an unknown sender, as a->sender is to her,
 * an introduction or more work than a->work_bits brings?  1 or 0 from
 * the store alone, -1 when it fails.  Asked before the introduction's
 * signature is checked, which may cost a request to the introducer's
 * domain: a sender cannot make this server fetch logs for recipients
 * that do not exist or introducers that nobody allows.
 */
int consent_introduction_counts(struct server *srv,
    const struct consent_ask *a, struct smimp_err *err);

/* The longest Smimp-Requires value: "introduction". */
#define CONSENT_REQUIRES_MAX	16

/*
 * What recipient requires of requester (a normalized address, a bare
 * domain for a server, or NULL for one who did not say), for the
 * directory's Smimp-Requires: CONSENT_ACCEPT with "none", "pow:BITS",
 * "introduction" or "closed" in req ("none" for the recipient
 * herself); CONSENT_ABSENT for an address without an account and for
 * a requester the recipient blocks, after the same work; CONSENT_ERROR.
 *
 * A server whose domain the recipient blocks is not blocked when the
 * recipient has written to that domain, or when it looks her up for
 * one of its users (on_behalf, a normalized address of its domain, or
 * NULL) whom she allows by name (doc/PROTOCOL.md 8.11).
 */
enum consent_verdict consent_requirement(struct server *srv,
    const char *recipient, const char *requester, const char *on_behalf,
    char req[CONSENT_REQUIRES_MAX], struct smimp_err *err);

#endif
