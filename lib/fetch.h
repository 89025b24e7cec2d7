/*
 * fetch.h - download the mailbox into a Maildir, the work of
 * smimp-fetch.
 */
#ifndef SMIMP_FETCH_H
#define SMIMP_FETCH_H

#include <stddef.h>

#include "err.h"
#include "identity.h"
#include "remote.h"
#include "trust.h"

struct fetch_stats {
	size_t fetched, inbox, other, dropped;
	size_t again;	/* filed by an earlier, interrupted fetch */
	size_t introduced;	/* of the inbox, unknown senders introduced */
};

/* Where one fetched message went, and what filed it there. */
struct fetched {
	const char *folder;	/* inbox, Other, dropped, again */
	char from[ADDRESS_MAX + 1];	/* the verified sender, or "?" */
	char introducer[ADDRESS_MAX + 1];	/* or empty */
};

/* What fetch_mailbox tells its caller as it goes; any may be NULL. */
struct fetch_hooks {
	/* After each message is safe on disk (or dropped). */
	void (*progress)(const char *message_id, const char *from,
	    const char *folder, size_t done, size_t total, void *arg);
	/*
	 * When a verified message moved the pinned identity of its sender
	 * from was records on to log (trust_follow_sender), changing c.
	 */
	void (*followed)(const struct idlog *log, size_t was,
	    const struct idlog_changes *c, void *arg);
	/*
	 * When a message from an unknown sender went to the inbox because
	 * introducer, trusted or known, introduced the sender to us.
	 */
	void (*introduced)(const char *message_id, const char *from,
	    const char *introducer, void *arg);
	void *arg;
};

/*
 * Fetch the mailbox of id into the Maildir dir: each message is written
 * to tmp/, fsynced, renamed into new/ (the inbox for trusted and known
 * senders and for unknown ones that a trusted or known contact
 * introduced, dir/.Other for other unknown ones and messages that do not
 * verify; blocked senders are dropped), the directory fsynced, and only then
 * acknowledged on the server.  A verified message that carries a newer
 * log of its sender's pinned identity moves the pin on, in ts and in
 * its home; one that carries a log the pin may not follow is filed in
 * Other.
 */
int fetch_mailbox(struct remote *r, const struct identity *id,
    struct trust_store *ts, const char *dir, struct fetch_stats *st,
    const struct fetch_hooks *hooks, struct smimp_err *err);

#endif
