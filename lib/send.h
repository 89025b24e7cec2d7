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

/* A sealed message ready to submit, with what was read back from it. */
struct submission {
	unsigned char *data;
	size_t len;
	char message_id[256];
	char to[8192];		/* "a@x.org, b@y.net" */
	/* The envelope's introductions, as Smimp-Introduction carries them. */
	char introductions[INTRO_LIST_MAX + 1];
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
