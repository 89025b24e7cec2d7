/*
 * notice.c - identity notices to one's contacts after a change to one's
 * own identity log (see notice.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "identity.h"
#include "lookup.h"
#include "notice.h"
#include "outfile.h"
#include "send.h"
#include "util.h"
#include "banned.h"

#define NOTICE_MAGIC	"smimp-identity-notice/1\n"
#define NOTICE_MAX_BODY	4096

/* The change's name in a notice's body, the strongest first. */
static const char *
change_name(const struct idlog_changes *c)
{
	if (c->revoked)
		return "revoke";
	if (c->recovered)
		return "recover";
	if (c->rotated)
		return "rotate";
	if (c->encryption)
		return "encryption-key";
	return c->devices_removed > 0 ? "device-remove" : "device-add";
}

/* The subject: what happened, in a few words. */
static void
subject(const struct idlog *log, const struct idlog_changes *c, char *out,
    size_t cap)
{
	(void)snprintf(out, cap, "identity notice: %s %s", log->address,
	    c->revoked ? "revoked its identity" : c->recovered ?
	    "recovered its identity with its recovery key" : c->rotated ?
	    "has a new identity key and a new encryption key" :
	    c->encryption ? "has a new encryption key" :
	    c->devices_removed > 0 ? "removed a device" : "added a device");
}

/* The body (doc/PROTOCOL.md, 4.4): fields, an empty line, one sentence. */
static int
body(const struct notice_params *p, const struct idlog_changes *c,
    struct sbuf *sb)
{
	const struct idlog *log = p->log;
	char fp[FINGERPRINT_STRLEN], when[TIME_STRLEN];

	fingerprint_format(log->fingerprint, fp);
	time_format(log->recs[p->first].date, when);
	if (sbuf_addf(sb, "%saddress: %s\nfingerprint: %s\nchange: %s\n"
	    "first: %zu\nrecords: %zu\nhead: ", NOTICE_MAGIC, log->address, fp,
	    change_name(c), p->first, log->n) != 0 ||
	    sbuf_add_b64(sb, log->head, sizeof(log->head)) != 0 ||
	    sbuf_addf(sb, "\ndate: %s\n", when) != 0)
		return -1;
	if (c->revoked && sbuf_addf(sb, "reason: %s\n", log->reason) != 0)
		return -1;
	if (c->revoked)
		return sbuf_addf(sb, "\n%s revoked its identity on %s. Nothing "
		    "signed by it is its owner's word from then on, and "
		    "nothing should be sealed to it.\n", log->address, when);
	return sbuf_addf(sb, "\nFrom %s on, %s %s. The identity log this "
	    "message carries says so; your client takes it only when it "
	    "extends the one it pinned for %s.\n", when, log->address,
	    c->rotated || c->recovered ? "signs with a new identity key and "
	    "takes messages sealed to a new encryption key" : c->encryption ?
	    "takes messages sealed to a new encryption key" :
	    c->devices_removed > 0 ? "has a device fewer: nothing it signs "
	    "speaks for its owner" : "has a new device", log->address);
}

/* Is e a contact to tell: an address pinned at trusted or known? */
static int
is_contact(const struct trust_entry *e, const char *self)
{
	return e->name[0] != '@' && e->has_log && !e->log.revoked &&
	    (e->tier == TIER_TRUSTED || e->tier == TIER_KNOWN) &&
	    strcmp(e->name, self) != 0;
}

/* What notify_one needs of every contact alike. */
struct notice_ctx {
	const struct notice_params *p;
	const struct trust_store *ts;
	struct remote *r;
	struct identity me;	/* a view of p->sk and p->log: never released */
	struct signer who;	/* p->sk signs the lookups, as the notices */
	const char *subject;
	int body_fd;		/* the body, read from its start each time */
};

/* Seal the body to rcpt into a new spool file; -1 on failure. */
static int
seal_to(const struct notice_ctx *x, const struct msg_recipient *rcpt,
    char *mid, size_t cap, struct smimp_err *err)
{
	struct seal_params sp;
	int out;

	out = spool_open(err);
	if (out < 0)
		return -1;
	memset(&sp, 0, sizeof(sp));
	sp.sender = x->p->sk;
	sp.sender_log = x->p->log;
	sp.rcpts = rcpt;
	sp.nrcpts = 1;
	sp.type = MSG_TYPE_NOTICE;
	sp.subject = x->subject;
	if (lseek(x->body_fd, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the notice");
		goto fail;
	}
	if (message_seal(&sp, x->body_fd, out, mid, cap, err) != 0)
		goto fail;
	if (lseek(out, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the notice");
		goto fail;
	}
	return out;
fail:
	close(out);
	return -1;
}

/*
 * Tell one contact: its directory asked first, the notice sealed to the
 * later of its log and the pinned one, submitted.  s->to gets the
 * contact, s->message_id the notice's id.
 */
static int
notify_one(const struct notice_ctx *x, const struct trust_entry *e,
    struct submission *s, struct smimp_err *err)
{
	const struct idlog *use;
	struct msg_recipient rcpt;
	struct idlog dir;
	char source[300];
	int fd, ret = -1;

	memset(s, 0, sizeof(*s));
	if (lookup_directory(x->r, e->name, &x->who, &dir, err) != 0)
		return -1;
	(void)snprintf(source, sizeof(source), "the directory of %s",
	    address_domain(e->name));
	if (trust_recipient_log(x->ts, &dir, source, &use, err) != 0)
		goto out;
	recipient_from_log(&rcpt, use);
	fd = seal_to(x, &rcpt, s->message_id, sizeof(s->message_id), err);
	if (fd < 0)
		goto out;
	ret = fd_read_all(fd, "the notice", REMOTE_MAX_BODY, &s->data,
	    &s->len, err);
	close(fd);
	if (ret != 0)
		goto out;
	(void)snprintf(s->to, sizeof(s->to), "%s", e->name);
	ret = send_submit(x->r, &x->me, s, err);
out:
	idlog_release(&dir);
	return ret;
}

/* The body into a spool file, for sealing to each contact in turn. */
static int
body_spool(const struct notice_params *p, const struct idlog_changes *c,
    struct smimp_err *err)
{
	struct sbuf sb;
	int fd;

	sbuf_init(&sb, NOTICE_MAX_BODY);
	if (body(p, c, &sb) != 0) {
		sbuf_release(&sb);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot make the notice");
		return -1;
	}
	fd = spool_open(err);
	if (fd >= 0 && fd_write_all(fd, sb.buf, sb.len) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool the notice");
		close(fd);
		fd = -1;
	}
	sbuf_release(&sb);
	return fd;
}

/* Tell every contact of x->ts; *others says whether one is elsewhere. */
static int
notify_all(struct notice_ctx *x, struct notice_report *rep, int *others,
    struct smimp_err *err)
{
	const char *self = x->p->log->address;
	struct notice_sent *o;
	struct submission s;
	struct smimp_err one;
	size_t i;

	rep->to = calloc(x->ts->n + 1, sizeof(*rep->to));
	if (rep->to == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < x->ts->n; i++) {
		const struct trust_entry *e = &x->ts->entries[i];

		if (!is_contact(e, self))
			continue;
		o = &rep->to[rep->n++];
		memcpy(o->address, e->name, sizeof(o->address));
		smimp_err_clear(&one);
		if (notify_one(x, e, &s, &one) != 0) {
			o->code = one.code != 0 ? one.code : SMIMP_EXIT_FAIL;
			memcpy(o->error, one.msg, sizeof(o->error));
			rep->failed++;
		} else {
			memcpy(o->message_id, s.message_id,
			    sizeof(o->message_id));
			if (strcmp(address_domain(e->name),
			    address_domain(self)) != 0)
				*others = 1;
		}
		submission_release(&s);
	}
	return 0;
}

int
notice_send(const struct notice_params *p, struct notice_report *rep,
    struct smimp_err *err)
{
	struct idlog_changes c;
	struct trust_store ts;
	struct notice_ctx x;
	char subj[MSG_MAX_SUBJECT + 1];
	int others = 0, ret = -1;

	memset(rep, 0, sizeof(*rep));
	memset(&ts, 0, sizeof(ts));
	memset(&x, 0, sizeof(x));
	x.body_fd = -1;
	idlog_changes_since(p->log, p->first, &c);
	if (p->first == 0 || c.added == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no change to the "
		    "identity log of %s to give notice of", p->log->address);
	if (trust_load(&ts, p->home, err) != 0)
		return -1;
	x.p = p;
	x.ts = &ts;
	/* A view, not a copy: send_submit reads the key and the address. */
	x.me.sk = *p->sk;
	x.me.log = *p->log;
	x.me.has_log = 1;
	signer_secret(&x.who, p->sk->address, p->sk->identity_secret);
	subject(p->log, &c, subj, sizeof(subj));
	x.subject = subj;
	x.body_fd = body_spool(p, &c, err);
	if (x.body_fd < 0)
		goto out;
	x.r = remote_new(p->remote, err);
	if (x.r == NULL || notify_all(&x, rep, &others, err) != 0)
		goto out;
	/*
	 * A revocation published now would make the receiving servers
	 * refuse what the relay has not delivered yet (PROTOCOL.md, 4.4).
	 */
	if (p->log->revoked && others)
		sleep(NOTICE_RELAY_WAIT);
	ret = 0;
out:
	if (x.r != NULL)
		remote_free(x.r);
	if (x.body_fd >= 0)
		close(x.body_fd);
	trust_release(&ts);
	return ret;
}

void
notice_report_release(struct notice_report *rep)
{
	free(rep->to);
	memset(rep, 0, sizeof(*rep));
}

void
notice_describe(const struct msg_meta *meta, const struct trust_store *ts,
    char *out, size_t cap)
{
	const struct idlog *log = &meta->sender;
	const struct trust_entry *e = trust_find(ts, meta->from);
	struct idlog_changes c;

	if (e == NULL || !e->has_log)
		(void)snprintf(out, cap, "identity notice from %s, whose "
		    "identity is not pinned: nothing is followed", meta->from);
	else if (log->n > e->log.n && idlog_extends(log, &e->log)) {
		idlog_changes_since(log, e->log.n, &c);
		(void)snprintf(out, cap, "identity notice from %s:%s%s%s%s%s "
		    "%zu records, %zu pinned", meta->from, c.recovered ?
		    " recovered with its recovery key;" : "", c.rotated ?
		    " identity key rotated;" : "", c.encryption ?
		    " new encryption key;" : "", c.devices_added > 0 ?
		    " device added;" : "", c.devices_removed > 0 ?
		    " device removed;" : "", log->n, e->log.n);
	} else if (idlog_extends(&e->log, log))
		(void)snprintf(out, cap, "identity notice from %s: nothing "
		    "new, the pinned log has its %zu records", meta->from,
		    log->n);
	else
		(void)snprintf(out, cap, "identity notice from %s: its log "
		    "does not extend the pinned one", meta->from);
}
