/*
 * sealpair.h - what the unit tools that seal share: the sender's key
 * and log and the recipients' logs (one, or a few), loaded from files,
 * and the parameters of an email from the one to the others.  Included
 * by a tool's one .c file.
 */
#ifndef SMIMP_UNIT_SEALPAIR_H
#define SMIMP_UNIT_SEALPAIR_H

#include <string.h>

#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"

#define SEALPAIR_MAX_TO	4

struct sealpair {
	struct secret_key sk;
	struct idlog from, to, more[SEALPAIR_MAX_TO - 1];
	struct msg_recipient r[SEALPAIR_MAX_TO];
	size_t nto;		/* logs read: to, then more */
	struct seal_params p;
};

/*
 * KEY (no passphrase), its log PUB, the recipients' logs RCPT[0..n)
 * (1 to SEALPAIR_MAX_TO; the first is sp->to).
 */
__attribute__((unused)) static int
sealpair_load_n(struct sealpair *sp, const char *key, const char *pub,
    char *const *rcpt, size_t n, struct smimp_err *err)
{
	struct passphrase_source src = { NULL, 0 };
	struct idlog *log;
	size_t i;

	memset(sp, 0, sizeof(*sp));
	if (n < 1 || n > SEALPAIR_MAX_TO)
		return smimp_err_set(err, 2, "1 to %d recipients",
		    SEALPAIR_MAX_TO);
	if (secret_key_load(&sp->sk, key, &src, err) != 0 ||
	    idlog_read_file(&sp->from, pub, err) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		log = i == 0 ? &sp->to : &sp->more[i - 1];
		if (idlog_read_file(log, rcpt[i], err) != 0)
			return -1;
		sp->nto++;
		recipient_from_log(&sp->r[i], log);
	}
	sp->p.sender = &sp->sk;
	sp->p.sender_log = &sp->from;
	sp->p.rcpts = sp->r;
	sp->p.nrcpts = n;
	sp->p.type = "email";
	return 0;
}

/* KEY (no passphrase), its log PUB, the recipient's log RCPT. */
__attribute__((unused)) static int
sealpair_load(struct sealpair *sp, const char *key, const char *pub,
    const char *rcpt, struct smimp_err *err)
{
	char *one[1] = { (char *)rcpt };

	return sealpair_load_n(sp, key, pub, one, 1, err);
}

static void
sealpair_release(struct sealpair *sp)
{
	size_t i;

	idlog_release(&sp->from);
	for (i = 0; i < sp->nto; i++)
		idlog_release(i == 0 ? &sp->to : &sp->more[i - 1]);
	secret_key_release(&sp->sk);
}

#endif
