/*
 * introductions.h - the server's check of the introductions that a
 * sender carries in Smimp-Introduction (doc/PROTOCOL.md, 8.10): which
 * statement, if any, lets a sender through to a local recipient.
 */
#ifndef SMIMPD_INTRODUCTIONS_H
#define SMIMPD_INTRODUCTIONS_H

#include <stdint.h>

#include "address.h"

struct server;
struct consent_ask;

/*
 * Who introduced a->sender to a->recipient (a user of this domain) at
 * now, as header_value (the header's value, NULL when there is none)
 * says: the first statement whose introduced is the sender and whose to
 * is the recipient, in force at now (introduction_check), is the one
 * looked at (a sealer writes at most one for each recipient), so that a
 * sender costs at most one lookup per recipient, and only where the
 * statement could count (consent_introduction_counts: the recipient
 * exists, allows that introducer and asks for more than the sender
 * brings, a->work_bits).  Its signature must verify
 * under the introducer's current identity key: from the store for a
 * user of this domain, else from the introducer's own domain
 * (server/peers.c), fetched again once when it does not verify, as for
 * stamps; never a revoked identity's.  1 with the address in
 * introducer; 0 for nobody (no header, a malformed one, no statement
 * for the pair, a signature that does not verify, an introducer whose
 * log cannot be had); -1 when the store fails (the caller answers 503).
 */
int introduction_for(struct server *srv, const char *header_value,
    const struct consent_ask *a, int64_t now,
    char introducer[ADDRESS_MAX + 1]);

/*
 * The same statement's check without asking whether it could count:
 * for t/unit/introserver, which tests the check itself.
 */
int introduction_verify_header(struct server *srv, const char *header_value,
    const char *sender, const char *recipient, int64_t now,
    char introducer[ADDRESS_MAX + 1]);

#endif
