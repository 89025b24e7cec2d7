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
	size_t sent;	/* copies of what the user sent, to .Sent */
	size_t again;	/* filed by an earlier, interrupted fetch */
	size_t introduced;	/* of the inbox, unknown senders introduced */
	size_t missing;		/* listed, then 404 on download: skipped */
	int busy;		/* another fetch holds the Maildir: none done */
};

/* Where one fetched message went, and what filed it there. */
struct fetched {
	const char *folder;	/* inbox, Other, Sent, dropped, again */
	char from[ADDRESS_MAX + 1];	/* the verified sender, or "?" */
	int own;		/* signed by our own identity (a device) */
	char introducer[ADDRESS_MAX + 1];	/* or empty */
	/*
	 * The one-time prekey of ours that opened it, or "": the Maildir
	 * then keeps its plain envelope, and the prekey's secret goes.
	 */
	char prekey_id[AGE_PREKEY_ID_LEN + 1];
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

/* fetch_mailbox's flags. */
#define FETCH_MIME	1	/* verified messages as MIME, for readers */

/*
 * Fetch the mailbox of id into the Maildir dir: each message is written
 * to tmp/, fsynced, renamed into new/ (the inbox for trusted and known
 * senders and for unknown ones that a trusted or known contact
 * introduced, dir/.Other for other unknown ones and messages that do not
 * verify; blocked senders are dropped), the directory fsynced, and only then
 * acknowledged on the server.  An entry the server lists as a sent copy
 * ("sent": true) that verifies as our own identity's goes to dir/.Sent;
 * any other is filed as if it were not so flagged.  A verified message
 * that carries a newer
 * log of its sender's pinned identity moves the pin on, in ts and in
 * its home; one that carries a log the pin may not follow is filed in
 * Other.  With FETCH_MIME, a message that verified from a sender whose
 * key stands (any tier but blocked) is filed as RFC 5322 with MIME
 * (mime.h) in its folder, and its sealed original kept in
 * dir/.sealed (maildir.h); both are synced before it is acknowledged.
 * A message that one of the one-time prekeys of id->sk.prekeys opens
 * (forward secrecy, doc/PROTOCOL.md 10.6) is filed as its plain
 * envelope, once verified (with FETCH_MIME, that is what .sealed
 * keeps), and the prekey's secret then deleted: the Maildir holds the
 * only copy that can still be read.  One fetch at a time into a Maildir
 * (flock(2) on dir itself): while another holds it, st->busy is set and
 * nothing is done (0).
 */
int fetch_mailbox(struct remote *r, const struct identity *id,
    struct trust_store *ts, const char *dir, unsigned flags,
    struct fetch_stats *st, const struct fetch_hooks *hooks,
    struct smimp_err *err);

/* What fetch_device_log did to the log beside a device's key. */
struct device_log_update {
	int first;		/* there was none: written the first time */
	size_t was;		/* records it had */
	struct idlog_changes changes;	/* what the records past was, or
					   past a recovery's cut, changed */
};
/*
 * For a device's key (id->sk.is_device): look up the identity log its
 * domain's directory serves for its address, signed as the device,
 * check that it follows the log beside the key (extends it, or
 * recovers it; idlog_check_follows) when there is one, and that it
 * names this very device live with this very key (identity_may), then
 * write it there in place of the old (a new file, synced, renamed,
 * the directory synced) and into id->log.  SMIMP_EXIT_KEYCHANGED for a
 * log that does not follow, or that says the device was removed or
 * the identity revoked; nothing written then.
 */
int fetch_device_log(struct remote *r, struct identity *id,
    struct device_log_update *up, struct smimp_err *err);

/*
 * fetch_device_log, for a device that seals, when the log beside its
 * key was last fetched a refresh interval ago or more (clientconf.h):
 * a device that only seals (a CI job's send device) would otherwise
 * keep sealing its sent copies to a device removed since, whose key
 * may have been stolen, or to an encryption key replaced since.  A
 * log that does not follow, or that says the device was removed, fails
 * (SMIMP_EXIT_KEYCHANGED); a directory that cannot be asked leaves the
 * log as it is, with warning set (else warning is empty).  0 for an
 * identity's key, whose log is always its own latest.
 */
struct lookup_session;
int fetch_device_log_due(struct lookup_session *s, struct identity *id,
    char *warning, size_t cap, struct smimp_err *err);

#endif
