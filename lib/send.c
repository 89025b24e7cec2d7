/*
 * send.c - submit sealed messages to the sender's home server: the
 * recipients and id read back from the message, a delivery stamp for
 * other domains, one signed request each.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "outfile.h"
#include "reqsig.h"
#include "send.h"
#include "stamp.h"
#include "banned.h"

static int
home_base(struct remote *r, const struct identity *id, char *base,
    size_t cap, struct smimp_err *err)
{
	return remote_base(r, address_domain(id->sk.address), base, cap, err);
}

void
submission_release(struct submission *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
}

/*
 * The header value that carries the envelope's introductions to the
 * servers, which cannot read the envelope: each statement in unpadded
 * base64url, joined by commas (doc/PROTOCOL.md, "Introductions"); empty
 * when there are none.  The envelope holds them to INTRO_LIST_MAX.
 */
static int
send_introductions(const struct msg_meta *meta, char *out, size_t cap,
    struct smimp_err *err)
{
	struct sbuf sb;
	size_t i;
	int r = 0;

	sbuf_init(&sb, cap - 1);
	for (i = 0; i < meta->nintros && r == 0; i++)
		r = (i > 0 && sbuf_add(&sb, ",", 1) != 0) ||
		    introduction_encode(&meta->intros[i], &sb) != 0;
	if (r == 0 && sb.len < cap) {
		memcpy(out, sb.buf != NULL ? sb.buf : "", sb.len);
		out[sb.len] = '\0';
	} else {
		r = smimp_err_set(err, SMIMP_EXIT_FAIL, "introductions of "
		    "more than %d bytes", INTRO_LIST_MAX);
	}
	sbuf_release(&sb);
	return r;
}

int
send_prepare(const struct identity *id, int fd, struct submission *s,
    struct smimp_err *err)
{
	struct msg_meta meta;
	size_t i, off = 0;
	int tmp, ret = -1;

	memset(s, 0, sizeof(*s));
	if (fd_read_all(fd, "the message", REMOTE_MAX_BODY, &s->data, &s->len,
	    err) != 0)
		return -1;
	/* Read it back as its sender: recipients and message id. */
	tmp = spool_open(err);
	if (tmp < 0)
		goto out;
	if (fd_write_all(tmp, s->data, s->len) != 0 ||
	    lseek(tmp, 0, SEEK_SET) != 0) {
		close(tmp);
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool");
		goto out;
	}
	ret = message_open_sent(&id->sk, tmp, &meta, err);
	close(tmp);
	if (ret != 0)
		goto out;
	ret = -1;
	for (i = 0; i < meta.nrcpts; i++) {
		int n = snprintf(s->to + off, sizeof(s->to) - off, "%s%s",
		    i > 0 ? ", " : "", meta.rcpts[i].address);

		if (n < 0 || (size_t)n >= sizeof(s->to) - off) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "too many "
			    "recipients");
			goto meta;
		}
		off += (size_t)n;
	}
	(void)snprintf(s->message_id, sizeof(s->message_id), "%s",
	    meta.message_id);
	if (send_introductions(&meta, s->introductions,
	    sizeof(s->introductions), err) != 0)
		goto meta;
	ret = 0;
meta:
	msg_meta_release(&meta);
out:
	if (ret != 0)
		submission_release(s);
	return ret;
}

/* Is any address in the list "a@x, b@y" of a domain other than own? */
static int
other_domains(const char *list, const char *own)
{
	size_t n = strlen(own);
	const char *at;

	for (at = strchr(list, '@'); at != NULL; at = strchr(at + 1, '@'))
		if (strncmp(at + 1, own, n) != 0 ||
		    (at[1 + n] != '\0' && at[1 + n] != ','))
			return 1;
	return 0;
}

int
send_submit(struct remote *r, const struct identity *id,
    const struct submission *s, struct smimp_err *err)
{
	struct remote_reply rep;
	char base[512], sorted[8192], stamp[STAMP_STRLEN] = "";
	char when[TIME_STRLEN], to_h[8300], mid_h[300], date_h[64];
	char stamp_h[STAMP_STRLEN + 16], intro_h[INTRO_LIST_MAX + 32];
	const char *extra[6] = { to_h, mid_h, NULL };
	unsigned char hash[32];
	struct signer me;
	size_t n = 2;
	/*
	 * The delivery stamp: what other domains check before accepting.
	 * Messages that stay in the sender's domain need none.
	 */
	int stamped = other_domains(s->to, address_domain(id->sk.address));

	if (stamped) {
		extra[n++] = stamp_h;
		extra[n++] = date_h;
	}
	/* The introductions, for the recipients' servers to check. */
	if (s->introductions[0] != '\0')
		extra[n++] = intro_h;
	extra[n] = NULL;
	signer_secret(&me, id->sk.address, id->sk.identity_secret);
	time_format(time_now(), when);
	reqsig_body_hash(hash, s->data, s->len);
	if (stamped && (stamp_recipients(s->to, sorted,
	    sizeof(sorted)) != 0 || stamp_sign(stamp, id->sk.address, sorted,
	    s->message_id, hash, when, id->sk.identity_secret,
	    err) != 0))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot stamp the "
		    "message");
	(void)snprintf(to_h, sizeof(to_h), "Smimp-To: %s", s->to);
	(void)snprintf(mid_h, sizeof(mid_h), "Smimp-Message-Id: %s",
	    s->message_id);
	(void)snprintf(intro_h, sizeof(intro_h), "Smimp-Introduction: %s",
	    s->introductions);
	(void)snprintf(stamp_h, sizeof(stamp_h), "Smimp-Stamp: %s", stamp);
	(void)snprintf(date_h, sizeof(date_h), "Smimp-Stamp-Date: %s", when);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/messages", s->data, s->len, &me, extra, REMOTE_MAX_STATUS,
	    &rep, err) != 0)
		return -1;
	if (rep.status != 201 && rep.status != 200) {
		remote_reply_fail(&rep, s->message_id, err);
		remote_reply_release(&rep);
		return -1;
	}
	remote_reply_release(&rep);
	return 0;
}

int
send_message(struct remote *r, const struct identity *id, int fd,
    char *message_id, size_t cap, struct smimp_err *err)
{
	struct submission s;
	int ret;

	if (send_prepare(id, fd, &s, err) != 0)
		return -1;
	ret = send_submit(r, id, &s, err);
	if (ret == 0)
		(void)snprintf(message_id, cap, "%s", s.message_id);
	submission_release(&s);
	return ret;
}

/* A token as smimpd hands them out; never quoted back in an error. */
static int
token_check(const char *token, struct smimp_err *err)
{
	if (token[0] == '\0' || strlen(token) > SEND_TOKEN_MAX ||
	    strpbrk(token, "\r\n ") != NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "malformed "
		    "invitation token");
	return 0;
}

int
send_token_read(const char *file, int allow_prompt, char **token,
    struct smimp_err *err)
{
	size_t len;

	if (strcmp(file, "-") == 0 && allow_prompt)
		file = NULL;
	if (secret_get(file, "Invitation token: ", "invitation token", token,
	    &len, err) != 0)
		return -1;
	if (token_check(*token, err) != 0) {
		passphrase_free(*token, len);
		*token = NULL;
		return -1;
	}
	return 0;
}

int
send_register(struct remote *r, const struct identity *id,
    const char *token, struct smimp_err *err)
{
	struct remote_reply rep;
	char base[512], tok_h[200];
	const char *extra[2] = { tok_h, NULL };
	struct signer me;
	int ret = -1;

	signer_secret(&me, id->sk.address, id->sk.identity_secret);
	if (!id->has_log)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the identity's "
		    "log (its .pub file) is needed to register");
	if (token_check(token, err) != 0)
		return -1;
	(void)snprintf(tok_h, sizeof(tok_h), "Smimp-Invite: %s", token);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/register", id->log.raw, id->log.raw_len, &me, extra,
	    REMOTE_MAX_STATUS, &rep, err) != 0)
		goto out;
	if (rep.status == 201)
		ret = 0;
	else
		remote_reply_fail(&rep, "registering", err);
	remote_reply_release(&rep);
out:
	sodium_memzero(tok_h, sizeof(tok_h));
	return ret;
}
