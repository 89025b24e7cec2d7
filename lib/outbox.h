/*
 * outbox.h - the durable outbox: sealed messages that could not reach
 * the home server wait in $SMIMP_HOME/outbox/ until smimp-send --flush
 * delivers them.  The work of smimp-send --queue and --flush, and of
 * smimp-sendmail.
 *
 * One file per message, named for when it was queued (so that names
 * sort oldest first): a short header that says which key sends it, its
 * id, its recipients and why it was queued, then the sealed message.
 * It is written under a temporary name, synced, linked into place and
 * the directory synced before the caller is told it is queued.  A
 * flush sends first and removes the file after: the server stores a
 * message id once (doc/PROTOCOL.md, 8.4), so a flush killed between the
 * two sends it again and nothing is delivered twice.  One flush at a
 * time (a lock file in the outbox); a message refused for good is moved
 * to outbox/failed/ with the reason beside it, never tried again.
 */
#ifndef SMIMP_OUTBOX_H
#define SMIMP_OUTBOX_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "identity.h"
#include "remote.h"
#include "send.h"
#include "util.h"

#define OUTBOX_DIR		"outbox"
#define OUTBOX_FAILED		"failed"
#define OUTBOX_LOCK		".lock"
/* A name: 20 digits of nanoseconds, '-', 12 hex digits. */
#define OUTBOX_NAME_LEN		33
/* An entry's header at most; the sealed message at most REMOTE_MAX_BODY. */
#define OUTBOX_HEADER_MAX	(16 * 1024)
/* Entries a flush or a listing takes at most (the oldest ones). */
#define OUTBOX_MAX_ENTRIES	100000
/* A temporary file left by a writer killed this long ago is removed. */
#define OUTBOX_STALE_SECS	3600

struct outbox_entry {
	char name[OUTBOX_NAME_LEN + 1];
	int failed;			/* in outbox/failed/ */
	char identity[PATH_MAX];	/* the key that sends it */
	char message_id[MESSAGE_ID_MAX + 1];
	char to[8192];			/* "a@x, b@y": whom it goes to */
	char queued[TIME_STRLEN];
	char reason[SMIMP_ERR_MSG];	/* why it was queued, or refused */
	uint64_t length;		/* of the sealed message */
};

/*
 * An entry's header: its lines into sb, and read back from the start
 * of buf[0..len) into e (*hlen its size, the sealed message after it):
 * 0, or -1 for a header that is malformed or not all there.
 */
int outbox_header_build(struct sbuf *sb, const struct outbox_entry *e);
int outbox_header_parse(const char *buf, size_t len, struct outbox_entry *e,
    size_t *hlen);

/*
 * The outbox's path, $SMIMP_HOME/outbox, into out: a directory of the
 * user's that no one else can write to and no symbolic link (made
 * 0700 when create and it is absent).  Without create, 0 and out set
 * also when there is none yet: *exists says.
 */
int outbox_dir(char *out, size_t cap, int create, int *exists,
    struct smimp_err *err);

/*
 * Put the sealed message s (read by send_prepare, to go to s->to) in
 * the outbox, to be sent by the key id was loaded from, for the reason
 * why; on disk and synced once it returns 0.  name (OUTBOX_NAME_LEN + 1
 * bytes, or NULL) gets the entry's name.
 */
int outbox_add(const struct identity *id, const struct submission *s,
    const char *why, char *name, struct smimp_err *err);

/*
 * Send the sealed message in fd (sealed by id) as send_message does,
 * to only ("a@x, b@y", some of its recipients; NULL: all of them).
 * When the home server cannot be reached (no connection, no answer in
 * time, 5xx, 429: SMIMP_EXIT_TEMPFAIL), put it in the outbox instead:
 * *queued = 1 and why (SMIMP_ERR_MSG bytes) the failure.  Any other
 * failure queues nothing.  message_id gets the id either way.
 */
int outbox_send(struct remote *r, const struct identity *id, int fd,
    const char *only, const struct send_consent *c, char *message_id,
    size_t cap, int *queued, char *why, struct smimp_err *err);

/* What became of an entry in a flush. */
enum outbox_outcome {
	OUTBOX_SENT,		/* delivered and removed */
	OUTBOX_KEPT,		/* the server cannot be reached: it waits */
	OUTBOX_STUCK,		/* it waits, but not for the server to come
				   back: its key cannot be loaded, or the
				   server cannot be used as set up (a
				   certificate, an address refused) */
	OUTBOX_REFUSED		/* refused for good by the server, or no
				   longer a message of its key: moved to
				   failed/ */
};

struct outbox_flush {
	const struct remote_opts *remote;
	const struct passphrase_source *src;	/* for the entries' keys */
	const struct send_consent *consent;
	/* Told of each entry (may be NULL); why is "" for OUTBOX_SENT. */
	void (*each)(void *arg, const struct outbox_entry *e,
	    enum outbox_outcome oc, const char *why);
	void *arg;
};

struct outbox_totals {
	size_t sent, kept, stuck, refused;
	int busy;		/* another flush holds the lock: nothing done */
};

/*
 * Deliver the outbox, oldest first, each entry with the key it names.
 * An entry that waits (OUTBOX_KEPT, OUTBOX_STUCK) keeps the later ones
 * of its key waiting too, untried.  A refusal by the server (4xx), a
 * proof of work not found in time, or an entry that is no message of
 * its key moves it to failed/.  When another flush holds the lock,
 * t->busy is set and nothing is done.  -1 only when the outbox itself
 * cannot be used.
 */
int outbox_flush_all(const struct outbox_flush *o, struct outbox_totals *t,
    struct smimp_err *err);

/*
 * Hand each entry waiting (and, with failed, then each one moved to
 * failed/ with its reason) to fn, oldest first.
 */
int outbox_each(int failed, void (*fn)(void *arg,
    const struct outbox_entry *e), void *arg, struct smimp_err *err);

#endif
