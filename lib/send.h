/*
 * send.h - hand sealed messages to the sender's home server and fetch a
 * mailbox into a Maildir, the work of smimp-send and smimp-fetch.
 */
#ifndef SMIMP_SEND_H
#define SMIMP_SEND_H

#include <stddef.h>

#include "err.h"
#include "identity.h"
#include "remote.h"
#include "trust.h"

/* A sealed message ready to submit, with what was read back from it. */
struct submission {
	unsigned char *data;
	size_t len;
	char message_id[256];
	char to[8192];		/* "a@x.org, b@y.net" */
};

/* Read the sealed message in fd (sealed by id) and its recipients. */
int send_prepare(const struct identity *id, int fd, struct submission *s,
    struct smimp_err *err);
/* Stamp and submit it to the sender's home server. */
int send_submit(struct remote *r, const struct identity *id,
    const struct submission *s, struct smimp_err *err);
void submission_release(struct submission *s);

/*
 * Send the sealed message in fd (sealed by id): read its recipients and
 * id back, then submit it with a signed request.  message_id gets the id.
 */
int send_message(struct remote *r, const struct identity *id, int fd,
    char *message_id, size_t cap, struct smimp_err *err);

/*
 * Register the identity (its key and log) with its home server by
 * redeeming an invitation token from the server's admin.
 */
int send_register(struct remote *r, const struct identity *id,
    const char *token, struct smimp_err *err);

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
