/*
 * mailmsg.c - an Internet message as smimp seals it (mailmsg.h).
 */
#include <string.h>

#include "exitcode.h"
#include "mailmsg.h"
#include "banned.h"

void
mailmsg_release(struct mailmsg *m)
{
	rfc5322_addrs_release(&m->to);
	rfc5322_addrs_release(&m->cc);
	rfc5322_addrs_release(&m->bcc);
	sbuf_release(&m->body);
}

/*
 * The addresses of every field named name into l.  Unless strict, a
 * list that does not parse adds what it added up to there: without -t
 * the headers only say where the recipients given go.
 */
static int
header_lists(const struct rfc5322_header *h, const char *name, int strict,
    struct rfc5322_addrs *l, struct smimp_err *err)
{
	struct smimp_err ignored;
	const char *v;
	size_t i = 0;

	while ((v = rfc5322_next(h, name, &i)) != NULL)
		if (rfc5322_addresses(v, name, l, strict ? err : &ignored) !=
		    0 && strict)
			return -1;
	return 0;
}

/* address into l, unless one of the others (NULL-ended) has it. */
static int
add_unless(struct rfc5322_addrs *l, const char *address,
    const struct rfc5322_addrs *a, const struct rfc5322_addrs *b,
    const struct rfc5322_addrs *c, struct smimp_err *err)
{
	if ((a != NULL && rfc5322_addrs_has(a, address)) ||
	    (b != NULL && rfc5322_addrs_has(b, address)) ||
	    (c != NULL && rfc5322_addrs_has(c, address)))
		return 0;
	return rfc5322_addresses(address, "recipient", l, err);
}

/* With -t: the headers' recipients, and args as blind copies. */
static int
from_headers(const struct rfc5322_addrs *hdr, const struct rfc5322_addrs *args,
    struct mailmsg *m, struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < hdr[0].n; i++)
		if (add_unless(&m->to, hdr[0].a[i], NULL, NULL, NULL, err) != 0)
			return -1;
	for (i = 0; i < hdr[1].n; i++)
		if (add_unless(&m->cc, hdr[1].a[i], &m->to, NULL, NULL,
		    err) != 0)
			return -1;
	for (i = 0; i < hdr[2].n; i++)
		if (add_unless(&m->bcc, hdr[2].a[i], &m->to, &m->cc, NULL,
		    err) != 0)
			return -1;
	for (i = 0; args != NULL && i < args->n; i++)
		if (add_unless(&m->bcc, args->a[i], &m->to, &m->cc, &m->bcc,
		    err) != 0)
			return -1;
	return 0;
}

/*
 * Without -t: args, placed as the headers place them.  One that no To,
 * Cc or Bcc names is a blind copy when the message has any of those
 * fields: mutt, mailx and git send-email write no Bcc field and pass
 * its recipients as arguments, which sendmail never shows the others.
 * A message with none of those fields (a script's) has args in to.
 */
static int
from_args(const struct rfc5322_header *h, const struct rfc5322_addrs *hdr,
    const struct rfc5322_addrs *args, struct mailmsg *m,
    struct smimp_err *err)
{
	int fields = rfc5322_get(h, "To") != NULL ||
	    rfc5322_get(h, "Cc") != NULL || rfc5322_get(h, "Bcc") != NULL;
	struct rfc5322_addrs *l;
	const char *a;
	size_t i;

	for (i = 0; args != NULL && i < args->n; i++) {
		a = args->a[i];
		if (rfc5322_addrs_has(&hdr[0], a) || !fields)
			l = &m->to;
		else if (rfc5322_addrs_has(&hdr[1], a))
			l = &m->cc;
		else
			l = &m->bcc;
		if (add_unless(l, a, &m->to, &m->cc, &m->bcc, err) != 0)
			return -1;
	}
	return 0;
}

static int
recipients(const struct rfc5322_header *h, const struct mailmsg_opts *o,
    struct mailmsg *m, struct smimp_err *err)
{
	static const char *const names[3] = { "To", "Cc", "Bcc" };
	struct rfc5322_addrs hdr[3], swap;
	int i, ret = -1;

	memset(hdr, 0, sizeof(hdr));
	for (i = 0; i < 3; i++)
		if (header_lists(h, names[i], o->from_headers, &hdr[i],
		    err) != 0)
			goto out;
	if ((o->from_headers ? from_headers(hdr, o->args, m, err) :
	    from_args(h, hdr, o->args, m, err)) != 0)
		goto out;
	/*
	 * An envelope names at least one recipient in to (smimp-open
	 * refuses one that names none, and so would every recipient): a
	 * message whose header names some in Cc and none in To has its Cc
	 * recipients there.
	 */
	if (m->to.n == 0) {
		swap = m->to;
		m->to = m->cc;
		m->cc = swap;
	}
	if (m->to.n + m->cc.n + m->bcc.n == 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, o->from_headers ? "no "
		    "recipient: the message has no To, Cc or Bcc" : "no "
		    "recipient: name them, or take them from the message with "
		    "-t");
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < 3; i++)
		rfc5322_addrs_release(&hdr[i]);
	return ret;
}

/*
 * The first (or, with last, the last) msg-id "<ID>" of the field named
 * name whose ID an envelope can carry, into out; -1 when there is none.
 */
static int
header_msgid(const struct rfc5322_header *h, const char *name, int last,
    char out[MESSAGE_ID_MAX + 1])
{
	const char *v = rfc5322_get(h, name), *lt, *gt;
	char id[MESSAGE_ID_MAX + 1];
	size_t n;
	int found = 0;

	for (; v != NULL; v = gt + 1) {
		lt = strchr(v, '<');
		gt = lt != NULL ? strchr(lt + 1, '>') : NULL;
		if (gt == NULL)
			break;
		n = (size_t)(gt - lt - 1);
		if (n == 0 || n > MESSAGE_ID_MAX)
			continue;
		memcpy(id, lt + 1, n);
		id[n] = '\0';
		if (!message_id_valid(id))
			continue;
		memcpy(out, id, n + 1);
		found = 1;
		if (!last)
			break;
	}
	return found ? 0 : -1;
}

/* The message answered and its thread (mailmsg_parse). */
static void
thread_ids(const struct rfc5322_header *h, struct mailmsg *m)
{
	if (header_msgid(h, "In-Reply-To", 0, m->in_reply_to) != 0 &&
	    header_msgid(h, "References", 1, m->in_reply_to) != 0)
		return;
	if (header_msgid(h, "References", 0, m->thread_id) != 0)
		memcpy(m->thread_id, m->in_reply_to, sizeof(m->thread_id));
}

int
mailmsg_parse(const char *raw, size_t len, const struct mailmsg_opts *o,
    struct mailmsg *m, struct smimp_err *err)
{
	struct rfc5322_header h;
	const char *subject;
	size_t body;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	/* Decoded text takes at most 3 bytes for one (Windows-1252). */
	sbuf_init(&m->body, len * 3 + 16);
	if (rfc5322_parse(raw, len, &h, &body, err) != 0)
		return -1;
	if (recipients(&h, o, m, err) != 0)
		goto out;
	subject = rfc5322_get(&h, "Subject");
	m->has_subject = subject != NULL;
	if (subject != NULL && rfc2047_decode(subject, "Subject", m->subject,
	    sizeof(m->subject), err) != 0)
		goto out;
	thread_ids(&h, m);
	if (mime_walk(&h, raw + body, len - body, o->sink, &m->body,
	    &m->has_body, err) != 0)
		goto out;
	ret = 0;
out:
	rfc5322_release(&h);
	return ret;
}
