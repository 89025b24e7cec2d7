/*
 * send.h - hand sealed messages to the sender's home server, and
 * register an identity with it: the work of smimp-send and of
 * smimp-keygen --redeem.  Fetching is fetch.h's.
 */
#ifndef SMIMP_SEND_H
#define SMIMP_SEND_H

#include <stddef.h>

#include "err.h"
#include "identity.h"
#include "remote.h"
#include "stamp.h"
#include "work.h"

/* A sealed message ready to submit, with what was read back from it. */
struct submission {
	unsigned char *data;
	size_t len;
	char message_id[256];
	char to[8192];		/* "a@x.org, b@y.net" */
	/*
	 * The consent headers.  A proof of work binds the stamp of its
	 * recipient's domain: stamped says that the stamps (a Smimp-Stamps
	 * value, malloc'd, one stamp per recipient domain) and their date
	 * were made for the proofs, and send_submit sends them as they are
	 * instead of stamping anew.
	 */
	int stamped;
	char *stamps;
	char stamp_date[TIME_STRLEN];
	char *work;		/* Smimp-Work, malloc'd; NULL when none */
	char *introduction;	/* Smimp-Introduction, malloc'd; NULL */
};

/* Read the sealed message in fd (sealed by id) and its recipients. */
int send_prepare(const struct identity *id, int fd, struct submission *s,
    struct smimp_err *err);
/* Stamp and submit it to the sender's home server. */
int send_submit(struct remote *r, const struct identity *id,
    const struct submission *s, struct smimp_err *err);
void submission_release(struct submission *s);

/* How a proof of work goes, for the caller to show. */
struct send_progress {
	const char *recipient;
	unsigned int bits;	/* the difficulty it requires */
	uint64_t tries;
	double secs;		/* spent on this recipient so far */
	int done;		/* 1 once found */
};

/*
 * What sending does about the recipients' consent policies: the cap on
 * the proofs of work of one message, and the caller's functions (each
 * may be NULL) to show progress and to tell the user what a recipient
 * requires that the sender does not give (the message goes anyway:
 * the recipient's server decides).
 */
#define SEND_MAX_WORK_DEFAULT	60
/* The stamp a proof binds must reach the home server within 300 s. */
#define SEND_MAX_WORK_MAX	240
/* --max-work's SECONDS: 1 to SEND_MAX_WORK_MAX into *secs, or -1. */
int send_max_work_parse(const char *s, unsigned int *secs);
struct send_consent {
	unsigned int max_work;	/* seconds, in all, for one message */
	void (*progress)(const struct send_progress *p, void *arg);
	void (*note)(const char *msg, void *arg);
	void *arg;
};

/*
 * What address requires of id's user, as its domain's directory says
 * (Smimp-Requires in the answer to a lookup signed by id; none when the
 * header is missing or the address is not found).  -1 when the
 * directory could not be asked or answered something malformed.
 */
int send_requirement(struct remote *r, const struct identity *id,
    const char *address, struct work_requirement *req,
    struct smimp_err *err);

/* What was sent: what its receipts must name (doc/PROTOCOL.md 8.14). */
struct send_result {
	char message_id[256];
	unsigned char hash[32];	/* BLAKE2b-256 of the sealed message */
	char to[8192];		/* its recipients, "a@x, b@y" */
};

/*
 * Submit s (send_prepare's) as send_message does: with the proofs of
 * work its recipients require, and once more, refused as for an
 * unknown recipient, if what they require changed.
 */
int send_submission(struct remote *r, const struct identity *id,
    struct submission *s, const struct send_consent *c,
    struct smimp_err *err);
/*
 * Submit s to some of its envelope's recipients only: only, "a@x, b@y",
 * each of them one of s->to, becomes s->to.  (A blind copy goes to its
 * blind recipient alone, while its envelope names the others.)
 */
int send_restrict(struct submission *s, const char *only,
    struct smimp_err *err);

/*
 * Send the sealed message in fd (sealed by id): read its recipients and
 * id back, learn what each requires (send_requirement), compute the
 * proofs of work asked for (SMIMP_EXIT_WORK when they take longer than
 * c->max_work: nothing sent), then submit it with a signed request.
 * Refused as for an unknown recipient (404), it learns the
 * requirements again, once, and sends again if they changed.  res gets
 * its id, hash and recipients.
 */
int send_message(struct remote *r, const struct identity *id, int fd,
    const struct send_consent *c, struct send_result *res,
    struct smimp_err *err);

#define SEND_TOKEN_MAX	128	/* bytes of an invitation token */

/*
 * Read an invitation token, never taken on the command line where every
 * user sees it: from file, or "-" for standard input, or a prompt when
 * allow_prompt (standard input is a terminal).  *token is
 * sodium_malloc'd, for passphrase_free.  A malformed one fails with
 * SMIMP_EXIT_USAGE.
 */
int send_token_read(const char *file, int allow_prompt, char **token,
    struct smimp_err *err);
/*
 * Register the identity (its key and log) with its home server by
 * redeeming an invitation token from the server's admin.
 */
int send_register(struct remote *r, const struct identity *id,
    const char *token, struct smimp_err *err);

#endif
