/*
 * mailmsg.h - an Internet message turned into what smimp seals: its
 * recipients (to, cc, and blind copies), its subject, its body, and its
 * other parts handed to the caller as attachments.  The work of
 * smimp-sendmail before sealing; the syntax is rfc5322.h's and mimewalk.h's.
 */
#ifndef SMIMP_MAILMSG_H
#define SMIMP_MAILMSG_H

#include <stddef.h>

#include "err.h"
#include "mimewalk.h"
#include "rfc5322.h"
#include "util.h"

#define MAILMSG_SUBJECT_MAX	998	/* as an envelope's subject */
/* A message read at most, as it comes, before any decoding. */
#define MAILMSG_MAX_INPUT	(32 * 1024 * 1024)

struct mailmsg {
	struct rfc5322_addrs to, cc;	/* named in the envelope */
	struct rfc5322_addrs bcc;	/* each gets a copy of its own */
	char subject[MAILMSG_SUBJECT_MAX + 1];
	int has_subject;
	struct sbuf body;		/* UTF-8, LF line ends */
	int has_body;
	/*
	 * The message answered and its thread, from In-Reply-To and
	 * References: ids an envelope can carry (message_id_valid), or "".
	 */
	char in_reply_to[MESSAGE_ID_MAX + 1];
	char thread_id[MESSAGE_ID_MAX + 1];
};

struct mailmsg_opts {
	/*
	 * -t: the recipients are those of To, Cc and Bcc, and args (which
	 * no header names, so that they are blind copies); else args are
	 * the recipients, each in to when the To header names it, in cc
	 * when the Cc header does, else a blind copy; in to when the
	 * message has no To, Cc or Bcc field at all.
	 */
	int from_headers;
	const struct rfc5322_addrs *args;
	const struct mime_sink *sink;	/* for the attachments */
};

/*
 * Parse the message raw[0..len) (rfc5322_read's).  in_reply_to is the
 * first id of In-Reply-To, else the last of References; thread_id the
 * first of References, else in_reply_to (ids an envelope cannot carry
 * passed over): so a reply a mail reader writes to a message filed by
 * smimp-fetch --mime stays in its thread.  An address in two
 * places counts once, in to before cc before a blind copy; when none is
 * in to, those of cc are (an envelope names one in to).  Refused
 * (SMIMP_EXIT_FAIL): no recipient at all, and whatever rfc5322.h and
 * mimewalk.h refuse.  m is released with mailmsg_release, also on failure.
 */
int mailmsg_parse(const char *raw, size_t len, const struct mailmsg_opts *o,
    struct mailmsg *m, struct smimp_err *err);
void mailmsg_release(struct mailmsg *m);

#endif
