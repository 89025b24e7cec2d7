/*
 * sealpair.h - what the unit tools that seal share: the sender's key
 * and log and one recipient's log, loaded from files, and the
 * parameters of an email from the one to the other.  Included by a
 * tool's one .c file.
 */
#ifndef SMIMP_UNIT_SEALPAIR_H
#define SMIMP_UNIT_SEALPAIR_H

#include <string.h>

#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"

struct sealpair {
	struct secret_key sk;
	struct idlog from, to;
	struct msg_recipient r;
	struct seal_params p;
};

/* KEY (no passphrase), its log PUB, the recipient's log RCPT. */
static int
sealpair_load(struct sealpair *sp, const char *key, const char *pub,
    const char *rcpt, struct smimp_err *err)
{
	struct passphrase_source src = { NULL, 0 };

	memset(sp, 0, sizeof(*sp));
	if (secret_key_load(&sp->sk, key, &src, err) != 0 ||
	    idlog_read_file(&sp->from, pub, err) != 0 ||
	    idlog_read_file(&sp->to, rcpt, err) != 0)
		return -1;
	recipient_from_log(&sp->r, &sp->to);
	sp->p.sender = &sp->sk;
	sp->p.sender_log = &sp->from;
	sp->p.rcpts = &sp->r;
	sp->p.nrcpts = 1;
	sp->p.type = "email";
	return 0;
}

static void
sealpair_release(struct sealpair *sp)
{
	idlog_release(&sp->from);
	idlog_release(&sp->to);
	secret_key_release(&sp->sk);
}

#endif
