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
};

/* Called after each message is safe on disk (or dropped). */
typedef void (*fetch_progress_fn)(const char *message_id, const char *from,
    const char *folder, size_t done, size_t total, void *arg);

/*
 * Fetch the mailbox of id into the Maildir dir: each message is written
 * to tmp/, fsynced, renamed into new/ (the inbox for trusted and known
 * senders, dir/.Other for unknown ones and messages that do not verify;
 * blocked senders are dropped), the directory fsynced, and only then
 * acknowledged on the server.
 */
int fetch_mailbox(struct remote *r, const struct identity *id,
    const struct trust_store *ts, const char *dir, struct fetch_stats *st,
    fetch_progress_fn progress, void *arg, struct smimp_err *err);

#endif
