/*
 * reply.h - what a reply takes from the message it answers, for
 * smimp-seal --reply: whom to write to, the subject, and the thread.
 * The message is either sealed (opened and verified here, with the
 * replier's key) or the MIME form smimp-open --mime and smimp-fetch
 * --mime write (doc/PROTOCOL.md, 4.6), whose headers are taken as the
 * file says.
 */
#ifndef SMIMP_REPLY_H
#define SMIMP_REPLY_H

#include <stddef.h>

#include "err.h"
#include "keys.h"
#include "message.h"
#include "mime.h"

struct reply {
	/* The recipients: the ones answered (to), the others (cc). */
	struct mime_rcpt *rcpts;
	size_t nrcpts;
	char subject[MSG_MAX_SUBJECT + 1];	/* "Re: " once */
	char thread_id[MESSAGE_ID_MAX + 1];	/* the original's thread */
	char in_reply_to[MESSAGE_ID_MAX + 1];	/* the original's id */
	char from[ADDRESS_MAX + 1];		/* the original's sender */
	int sealed;		/* it was a sealed message, verified */
};

/*
 * Read the message answered from fd: a sealed one (age, binary or
 * armored, which must be a file fd can seek back in) is opened with me
 * (mine: me's log, or NULL) and must verify; anything else is read as
 * the MIME form.  me answers the original's sender, or, for a message
 * me sent, its to recipients; with all, the other recipients too, as
 * cc, me never among them.  SMIMP_EXIT_BADMSG for a message that does
 * not verify or a file that is no such message.
 */
int reply_read(const struct secret_key *me, const struct idlog *mine,
    int fd, int all, struct reply *r, struct smimp_err *err);
void reply_release(struct reply *r);

#endif
