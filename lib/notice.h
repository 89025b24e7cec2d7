/*
 * notice.h - identity notices (doc/PROTOCOL.md, 4.4): once smimp-revoke
 * has changed one's own identity log, a signed message to every trusted
 * and known contact in the trust store, carrying the new log as every
 * message carries its sender's.  Each notice is an ordinary message of
 * type identity-notice, sealed to one contact only (one notice to all
 * would show each contact the others) and submitted to the home server
 * as smimp-send submits, which relays it.
 *
 * Who is told: every address entry with a pinned identity at tier
 * trusted or known; not blocked ones, not domains, not an address with
 * no pinned identity, not a contact whose pinned identity is revoked,
 * not oneself.  Each contact is first looked up in its own domain's
 * directory: a server that does not answer, or an address it does not
 * know, is a failure for that contact, said now rather than bounced
 * days later; the notice is sealed to the later of that log and the
 * pinned one, never to a log the pin does not allow (trust.h).
 */
#ifndef SMIMP_NOTICE_H
#define SMIMP_NOTICE_H

#include <stddef.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "remote.h"
#include "trust.h"

/*
 * Seconds given the home server's relay after the notices of a
 * revocation went to other domains, before the revocation is published:
 * a receiving server refuses every stamp of a revoked identity, so a
 * notice it has not taken by then bounces.  A client cannot see when
 * the relay delivered; this is a bet, said so in the protocol.
 */
#define NOTICE_RELAY_WAIT	5

/* What became of the notice to one contact. */
struct notice_sent {
	char address[ADDRESS_MAX + 2];	/* as a trust entry's name */
	char message_id[256];		/* when sent */
	int code;			/* 0 sent, else why not (exitcode.h) */
	char error[SMIMP_ERR_MSG];	/* and in words */
};

struct notice_report {
	struct notice_sent *to;		/* in the trust store's order */
	size_t n;
	size_t failed;
};

struct notice_params {
	const struct remote_opts *remote;
	const char *home;		/* whose trust store names the contacts */
	const struct secret_key *sk;	/* the key in force after the change */
	const struct idlog *log;	/* the log after the change */
	size_t first;			/* the change's first record */
};

/*
 * Send the notice of the change that p->log's records from p->first on
 * make to every contact.  Fails (nothing sent) only when the notices
 * cannot be made at all: no trust store, no memory.  A contact that
 * could not be told is in rep with its reason; the others are told
 * still.  For a revocation (p->log revoked), waits NOTICE_RELAY_WAIT
 * seconds when a notice went to another domain.  rep is released with
 * notice_report_release, also on failure.
 */
int notice_send(const struct notice_params *p, struct notice_report *rep,
    struct smimp_err *err);
void notice_report_release(struct notice_report *rep);

/*
 * One line on what an opened identity notice tells its reader: the
 * change its log makes past the identity ts pins for the sender, or
 * that it holds nothing new, or that the sender is not pinned.
 */
void notice_describe(const struct msg_meta *meta,
    const struct trust_store *ts, char *out, size_t cap);

#endif
