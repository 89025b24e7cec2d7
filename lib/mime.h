/*
 * mime.h - a verified message in the form mail readers read: RFC 5322
 * with MIME (RFC 2045, 2046, 2047, 2231), for smimp-open --mime and
 * smimp-fetch --mime; and the headers of such a message read back, for
 * smimp-seal --reply (doc/PROTOCOL.md, 4.6).
 *
 * Everything in the headers that the sender chose (the subject, the
 * names and types of attachments, ids) is either checked to be safe
 * printable ASCII or encoded (RFC 2047 encoded words, RFC 2231
 * parameters), so that no sender can make a line break, a header of
 * its own or a MIME boundary: mime_write refuses (SMIMP_EXIT_BADMSG)
 * what it cannot write so, rather than write it.
 */
#ifndef SMIMP_MIME_H
#define SMIMP_MIME_H

#include <stddef.h>

#include "address.h"
#include "err.h"
#include "message.h"
#include "parts.h"
#include "util.h"

/* Bytes of the header block mime_head_parse reads at most. */
#define MIME_HEAD_MAX	(256 * 1024)

/*
 * Write the message that parts_open verified into sp (the body to
 * sp->body_fd, which must be readable back, and the attachments kept)
 * to out_fd: headers for what the envelope says and what the reader
 * checked (X-Smimp-Verified, -Sender, -Fingerprint, -Tier of tier,
 * -Device, -Introduced-By), then a text/plain body (8bit, or
 * quoted-printable when a line is too long or the body holds a CR or
 * "=_"), or a multipart/mixed one with each attachment after the body
 * in base64.  Streams in fixed chunks: constant memory at any size.
 * Only for a message its caller judged (trust_may_release and the
 * rest): everything written is taken for verified.  A write error names
 * out_name ("standard output", or a quoted path).
 */
int mime_write(const struct msg_meta *meta, const char *tier,
    const struct parts_spool *sp, int out_fd, const char *out_name,
    struct smimp_err *err);

/*
 * The Message-ID (with its angle brackets) a smimp message id id
 * stands for in mail readers: <ID> when id is an RFC 5322 msg-id
 * already, else <HEX@smimp.invalid> of its hash.  sender (or NULL):
 * the message's own id, which is taken as it is only in the sender's
 * domain, so that nobody can take the id of another domain's message.
 */
#define MIME_MSGID_MAX	(MESSAGE_ID_MAX + 3)
void mime_msgid(const char *id, const char *sender,
    char out[MIME_MSGID_MAX]);

/*
 * A bounce notice from the user's own server (one bounce_verify
 * accepted under its key, and bounce_parse read) to out_fd as a plain
 * text message to user: from the server's postmaster, dated as the
 * notice, "Undelivered: ID", its Message-ID a hash of the notice, In-
 * Reply-To and References the sent message's Message-ID as mime_write
 * writes it, X-Smimp-Tier: server; the body names the recipients and
 * the reason.  Every field made printable ASCII ('?' for any other
 * byte), each cut to BOUNCE_TEXT_MAX bytes, the recipients to
 * BOUNCE_RCPTS_SHOWN.  SMIMP_EXIT_BADMSG for a
 * date not in the notice's form; a write error names out_name, as
 * mime_write's does.
 */
/*
 * A message that did not verify (or whose sender's key was revoked or
 * changed), for a Maildir folder that mail readers read, as a notice of
 * smimp's own: its bytes as they came would be parsed for header fields
 * (mblaze reads any "Name: value" line before the first empty one), and
 * a sender chooses every byte after an age header.  From "not verified"
 * <unverified@smimp.invalid> to user, "Subject: Not verified: ...",
 * Date when, Message-ID <NAME@smimp.invalid>, X-Smimp-Verified: no; a
 * text part that says so, then the bytes of in_fd (from its start) in
 * base64 as the attachment NAME.smimp, in constant memory.  NAME: the
 * hex of the sealed message's Maildir name (maildir_name).  A write
 * error names out_name, as mime_write's does.
 */
int mime_unverified_write(int in_fd, const char *name, const char *user,
    int64_t when, int out_fd, const char *out_name, struct smimp_err *err);

#define BOUNCE_TEXT_MAX		4096
#define BOUNCE_RCPTS_SHOWN	100	/* then only how many more */
struct bounce;
int mime_bounce_write(const struct bounce *b, const char *user, int out_fd,
    const char *out_name, struct smimp_err *err);

/* A recipient as the To and Cc headers name it. */
struct mime_rcpt {
	char address[ADDRESS_MAX + 1];
	int cc;
};

/* What mime_head_parse reads from the headers that mime_write wrote. */
struct mime_head {
	char sender[ADDRESS_MAX + 1];		/* X-Smimp-Sender */
	char message_id[MESSAGE_ID_MAX + 1];	/* X-Smimp-Message-Id */
	char thread_id[MESSAGE_ID_MAX + 1];	/* X-Smimp-Thread-Id */
	char subject[MSG_MAX_SUBJECT + 1];	/* Subject, decoded */
	struct mime_rcpt *rcpts;		/* To, then Cc */
	size_t nrcpts;
};

/*
 * Read the header block of a message mime_write wrote, from the start
 * of buf[0..len) (at most MIME_HEAD_MAX bytes of it): X-Smimp-Verified
 * must say yes, and the fields above be there and well formed; else
 * SMIMP_EXIT_BADMSG.  mime_head_release frees it.
 */
int mime_head_parse(const char *buf, size_t len, struct mime_head *h,
    struct smimp_err *err);
void mime_head_release(struct mime_head *h);

#endif
