/*
 * reply.c - what a reply takes from the message it answers (reply.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "exitcode.h"
#include "fileio.h"
#include "reply.h"
#include "banned.h"

#define AGE_START	"age-encryption.org/v1\n"
#define ARMOR_START	"-----BEGIN AGE ENCRYPTED FILE-----"

/* What the original says, sealed or MIME, before the reply is made. */
struct original {
	char from[ADDRESS_MAX + 1];
	char message_id[MESSAGE_ID_MAX + 1];
	char thread_id[MESSAGE_ID_MAX + 1];
	char subject[MSG_MAX_SUBJECT + 1];
	struct mime_rcpt *rcpts;
	size_t nrcpts;
};

static int
has_rcpt(const struct reply *r, const char *address)
{
	size_t i;

	for (i = 0; i < r->nrcpts; i++)
		if (strcmp(r->rcpts[i].address, address) == 0)
			return 1;
	return 0;
}

static void
add_rcpt(struct reply *r, const char *address, int cc)
{
	if (has_rcpt(r, address) || r->nrcpts == MSG_MAX_RECIPIENTS)
		return;
	(void)snprintf(r->rcpts[r->nrcpts].address, ADDRESS_MAX + 1, "%s",
	    address);
	r->rcpts[r->nrcpts++].cc = cc;
}

/*
 * Whom to write to: the sender; for our own message, its to
 * recipients (ourselves for a note to self); with all, everyone else
 * it named, as cc.
 */
static void
choose_rcpts(const struct original *o, const char *me, int all,
    struct reply *r)
{
	size_t i;
	int own = strcmp(o->from, me) == 0;

	if (!own)
		add_rcpt(r, o->from, 0);
	for (i = 0; own && i < o->nrcpts; i++)
		if (!o->rcpts[i].cc && strcmp(o->rcpts[i].address, me) != 0)
			add_rcpt(r, o->rcpts[i].address, 0);
	if (r->nrcpts == 0)
		add_rcpt(r, me, 0);
	for (i = 0; all && i < o->nrcpts; i++)
		if (strcmp(o->rcpts[i].address, me) != 0)
			add_rcpt(r, o->rcpts[i].address, 1);
}

/*
 * "Re: " and the subject, unless it starts so already; cut at a
 * character to fit.
 */
static void
reply_subject(const char *s, char out[MSG_MAX_SUBJECT + 1])
{
	const unsigned char *p;
	size_t n;
	uint32_t cp;
	int k;

	if (strncasecmp(s, "re:", 3) == 0) {
		(void)snprintf(out, MSG_MAX_SUBJECT + 1, "%s", s);
		return;
	}
	if (s[0] == '\0') {
		(void)snprintf(out, MSG_MAX_SUBJECT + 1, "Re:");
		return;
	}
	(void)snprintf(out, MSG_MAX_SUBJECT + 1, "Re: ");
	n = 4;
	for (p = (const unsigned char *)s; *p != '\0'; p += k) {
		k = utf8_next(p, strlen((const char *)p), &cp);
		if (k <= 0 || n + (size_t)k > MSG_MAX_SUBJECT)
			break;
		memcpy(out + n, p, (size_t)k);
		n += (size_t)k;
	}
	out[n] = '\0';
}

static int
from_sealed(const struct secret_key *me, const struct idlog *mine, int fd,
    struct original *o, struct smimp_err *err)
{
	struct msg_meta meta;
	size_t i;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "message answered again (a sealed one must be a file)");
	if (message_open(me, mine, fd, -1, NULL, &meta, err) != 0)
		return -1;
	(void)snprintf(o->from, sizeof(o->from), "%s", meta.from);
	(void)snprintf(o->message_id, sizeof(o->message_id), "%.200s",
	    meta.message_id);
	(void)snprintf(o->thread_id, sizeof(o->thread_id), "%.200s",
	    meta.thread_id);
	(void)snprintf(o->subject, sizeof(o->subject), "%s", meta.subject);
	o->rcpts = calloc(MSG_MAX_RECIPIENTS, sizeof(*o->rcpts));
	if (o->rcpts == NULL) {
		msg_meta_release(&meta);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	for (i = 0; i < meta.nrcpts && i < MSG_MAX_RECIPIENTS; i++) {
		(void)snprintf(o->rcpts[i].address, ADDRESS_MAX + 1, "%s",
		    meta.rcpts[i].address);
		o->rcpts[i].cc = meta.rcpts[i].cc;
	}
	o->nrcpts = i;
	msg_meta_release(&meta);
	return 0;
}

static int
from_mime(const char *buf, size_t len, struct original *o,
    struct smimp_err *err)
{
	struct mime_head h;

	if (mime_head_parse(buf, len, &h, err) != 0)
		return -1;
	memcpy(o->from, h.sender, sizeof(o->from));
	memcpy(o->message_id, h.message_id, sizeof(o->message_id));
	memcpy(o->thread_id, h.thread_id, sizeof(o->thread_id));
	memcpy(o->subject, h.subject, sizeof(o->subject));
	o->rcpts = h.rcpts;
	o->nrcpts = h.nrcpts;
	return 0;
}

int
reply_read(const struct secret_key *me, const struct idlog *mine, int fd,
    int all, struct reply *r, struct smimp_err *err)
{
	struct original o;
	char *buf;
	size_t len;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	memset(&o, 0, sizeof(o));
	buf = malloc(MIME_HEAD_MAX);
	r->rcpts = calloc(MSG_MAX_RECIPIENTS, sizeof(*r->rcpts));
	if (buf == NULL || r->rcpts == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (fd_read_full(fd, buf, MIME_HEAD_MAX, &len) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the message "
		    "answered");
		goto out;
	}
	r->sealed = (len >= strlen(AGE_START) &&
	    memcmp(buf, AGE_START, strlen(AGE_START)) == 0) ||
	    (len >= strlen(ARMOR_START) &&
	    memcmp(buf, ARMOR_START, strlen(ARMOR_START)) == 0);
	if (r->sealed ? from_sealed(me, mine, fd, &o, err) != 0 :
	    from_mime(buf, len, &o, err) != 0)
		goto out;
	choose_rcpts(&o, me->address, all, r);
	reply_subject(o.subject, r->subject);
	memcpy(r->thread_id, o.thread_id, sizeof(r->thread_id));
	memcpy(r->in_reply_to, o.message_id, sizeof(r->in_reply_to));
	memcpy(r->from, o.from, sizeof(r->from));
	ret = 0;
out:
	free(o.rcpts);
	free(buf);
	if (ret != 0)
		reply_release(r);
	return ret;
}

void
reply_release(struct reply *r)
{
	free(r->rcpts);
	r->rcpts = NULL;
	r->nrcpts = 0;
}
