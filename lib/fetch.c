/*
 * fetch.c - download a mailbox into a Maildir: file each message by its
 * sender's tier, durably, and only then acknowledge it on the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>

#include "bounce.h"
#include "exitcode.h"
#include "fetch.h"
#include "fileio.h"
#include "lookup.h"
#include "maildir.h"
#include "mime.h"
#include "outfile.h"
#include "prekeys.h"
#include "banned.h"

/*
 * Follow the pinned identity of the sender of a verified message to the
 * newer log it carries (as smimp-open does), and tell hooks.  -1 for a
 * log the pin may not follow; a store that cannot be written keeps the
 * pin where it was.
 */
static int
follow_sender(struct trust_store *ts, const struct msg_meta *meta,
    const struct fetch_hooks *hooks)
{
	struct idlog_changes c;
	struct smimp_err ferr;
	size_t was;

	if (meta->own)
		return 0;
	if (trust_follow_sender(ts, &meta->sender, &was, &c, &ferr) != 0)
		return ferr.code == SMIMP_EXIT_KEYCHANGED ? -1 : 0;
	if (c.added > 0 && hooks->followed != NULL)
		hooks->followed(&meta->sender, was, &c, hooks->arg);
	return 0;
}

/*
 * Who introduced the unknown sender of a verified message to id, as
 * the trust store says (trust_introducer), into f->introducer.
 */
static void
introduced_by(const struct identity *id, const struct trust_store *ts,
    const struct msg_meta *meta, struct fetched *f)
{
	const char *by = trust_introducer(ts, meta->intros, meta->nintros,
	    meta->from, id->sk.address, time_now());

	if (by != NULL)
		(void)snprintf(f->introducer, sizeof(f->introducer), "%s", by);
}

/*
 * Where the plain envelope of a message sealed to one of our prekeys
 * goes while it is opened: tmp/NAME.plain, empty (its fd into *fd);
 * none (-1) when id holds no prekey.
 */
static int
kept_open(const struct identity *id, const char *dir, const char *name,
    char *tmp, size_t cap, int *fd, struct smimp_err *err)
{
	char plain[MAILDIR_NAME_SIZE + 8];

	*fd = -1;
	if (id->sk.prekeys == NULL || id->sk.prekeys->n == 0)
		return 0;
	(void)snprintf(plain, sizeof(plain), "%s.plain", name);
	*fd = maildir_spool(dir, plain, NULL, 0, tmp, cap, err);
	return *fd < 0 ? -1 : 0;
}

/*
 * What the Maildir files of a message a prekey opened: its plain
 * envelope (kept, synced) in place of the sealed one (tmp), which
 * nothing can open once the prekey's secret is gone.
 */
static int
kept_swap(int kept_fd, const char *kept, const char *tmp,
    struct smimp_err *err)
{
	if (fsync(kept_fd) != 0 || rename(kept, tmp) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot keep '%s'",
		    kept);
	return 0;
}

/*
 * The names of messages filed but perhaps not yet acknowledged, kept in
 * DIR/.smimp-pending until a fetch completes: after a crash between the
 * two, the next fetch recognises them even if they left new/ meanwhile.
 */
#define PENDING_FILE	".smimp-pending"
#define PENDING_MAX	(4 * 1024 * 1024)

#define ACK_BATCH	64

/*
 * The mailbox ids acknowledged in this run, sorted.  A server that lists
 * them again (a broken one, a replica behind, a hostile one) is not
 * asked for them twice, and one that lists nothing else is given up on
 * instead of keeping the fetch going for ever.
 */
struct id_set {
	long long *v;
	size_t n, cap;
};

static int
id_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int
id_set_has(const struct id_set *s, long long id)
{
	return s->n > 0 && bsearch(&id, s->v, s->n, sizeof(*s->v),
	    id_cmp) != NULL;
}

/* Add ids[0..n), then sort again: once a page, so n log n a page. */
static int
id_set_add(struct id_set *s, const long long *ids, size_t n)
{
	long long *nv;
	size_t ncap;

	if (n == 0)
		return 0;
	if (s->n + n > s->cap) {
		ncap = s->cap > 0 ? s->cap : 1024;
		while (ncap < s->n + n)
			ncap *= 2;
		nv = realloc(s->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		s->v = nv;
		s->cap = ncap;
	}
	memcpy(s->v + s->n, ids, n * sizeof(*ids));
	s->n += n;
	qsort(s->v, s->n, sizeof(*s->v), id_cmp);
	return 0;
}

struct fetch_ctx {
	struct remote *r;
	long long acks[ACK_BATCH];	/* filed, to acknowledge */
	size_t nacks;
	struct id_set acked;		/* acknowledged in this run */
	int ack_singly;			/* the server has no batch ack */
	int pending_fd;
	unsigned char *pending;		/* what an earlier fetch left */
	size_t pending_len;
	const struct identity *id;
	struct signer me;		/* signs as id: identity or device */
	struct trust_store *ts;
	const char *dir, *domain;
	char base[512];
	unsigned char server_key[32];
	int have_key;
	struct fetch_stats *st;
	const struct fetch_hooks *hooks;
	int mime;			/* verified messages filed as MIME */
};

static int
pending_open(struct fetch_ctx *fc, struct smimp_err *err)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", fc->dir,
	    PENDING_FILE) >= sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	fc->pending_fd = file_open(path, O_RDWR | O_APPEND, FILE_CREATE |
	    FILE_NOFOLLOW | FILE_OWNED, err);
	if (fc->pending_fd < 0)
		return -1;
	return fd_read_all(fc->pending_fd, path, PENDING_MAX, &fc->pending,
	    &fc->pending_len, err);
}

static int
pending_has(const struct fetch_ctx *fc, const char *name)
{
	size_t n = strlen(name), i = 0;

	while (i + n < fc->pending_len) {
		if (memcmp(fc->pending + i, name, n) == 0 &&
		    fc->pending[i + n] == '\n')
			return 1;
		while (i < fc->pending_len && fc->pending[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

/*
 * Add the line prefix + name, synced when sync; one that cannot be
 * written whole (a full disk) is taken back, as half a line would run
 * into the next one.
 */
static int
pending_write(struct fetch_ctx *fc, const char *prefix, const char *name,
    int sync, struct smimp_err *err)
{
	char line[128];
	struct stat st;
	const char *what = "write";
	int n = snprintf(line, sizeof(line), "%s%s\n", prefix, name), e;

	if (fstat(fc->pending_fd, &st) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat "
		    "'%s/%s'", fc->dir, PENDING_FILE);
	if (fd_write_all(fc->pending_fd, line, (size_t)n) != 0)
		goto fail;
	what = "sync";
	if (sync && fsync(fc->pending_fd) != 0)
		goto fail;
	return 0;
fail:
	e = errno;
	if (ftruncate(fc->pending_fd, st.st_size) != 0 && e == 0)
		e = errno;
	errno = e;
	return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot %s '%s/%s'", what,
	    fc->dir, PENDING_FILE);
}

static int
pending_add(struct fetch_ctx *fc, const char *name, struct smimp_err *err)
{
	return pending_write(fc, "", name, 1, err);
}

/*
 * Before a message goes into new/, where a mail reader may move it to
 * cur/ at once, "?NAME": a fetch cut short between the rename and
 * pending_add leaves this, and the next one looks for the message in
 * cur/ too (pending_meant).  Not synced by itself: what makes the
 * rename durable comes after, and pending_add syncs both lines.
 */
static int
pending_intent(struct fetch_ctx *fc, const char *name, struct smimp_err *err)
{
	return pending_write(fc, "?", name, 0, err);
}

/* Was name about to be filed (pending_intent), and is it filed? */
static int
pending_meant(const struct fetch_ctx *fc, const char *name)
{
	char line[128];

	(void)snprintf(line, sizeof(line), "?%s", name);
	return pending_has(fc, line) && maildir_find(fc->dir, name);
}

/*
 * Everything filed is acknowledged now: forget it.  Should the removal
 * not survive a crash, the names left are of acknowledged messages only,
 * which is harmless.
 */
static int
pending_clear(struct fetch_ctx *fc, struct smimp_err *err)
{
	char path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/%s", fc->dir, PENDING_FILE);
	if (unlink(path) != 0 && errno != ENOENT)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot remove '%s'",
		    path);
	return 0;
}

/*
 * A fetched message opened: what it says in meta (released by the
 * caller), and whether it verified (1) or not (0).  With sp, for
 * MIME, the plaintext is spooled there; else it is dropped.  Opened by
 * a one-time prekey, its plain envelope goes to kept_fd (-1: none).
 */
static int
open_fetched(const struct identity *id, const struct trust_store *ts,
    int fd, int kept_fd, struct parts_spool *sp, struct msg_meta *meta)
{
	const struct idlog *mine = id->has_log ? &id->log : NULL;
	struct smimp_err oerr;

	smimp_err_clear(&oerr);
	if (sp != NULL)
		return parts_open(&id->sk, mine, fd, kept_fd, ts, sp, meta,
		    &oerr) == 0;
	return message_open_kept(&id->sk, mine, fd, kept_fd, NULL, ts, meta,
	    &oerr) == 0;
}

/*
 * The tier of a verified message's sender, its sender into f: unknown
 * (and *state_ok 0) for one whose key changed or whose identity was
 * revoked (as its log or the pinned one says); for an unknown sender,
 * who introduced it, also into meta->introducer.
 */
static enum trust_tier
judge(const struct identity *id, struct trust_store *ts,
    const struct fetch_hooks *hooks, struct msg_meta *meta,
    struct fetched *f, int *state_ok)
{
	enum trust_tier tier = TIER_UNKNOWN;
	struct smimp_err oerr;
	char note[SMIMP_ERR_MSG];

	(void)snprintf(f->from, sizeof(f->from), "%s", meta->from);
	f->own = meta->own;
	*state_ok = 0;
	/* Key changed, or revoked: not the inbox. */
	if (follow_sender(ts, meta, hooks) != 0 ||
	    trust_sender_tier(ts, meta->from, &meta->sender, meta->own, &tier,
	    &oerr) != 0 || trust_sender_state(ts, meta->from, &meta->sender,
	    meta->date, meta->from_device, meta->signing_key, note,
	    sizeof(note), &oerr) != 0)
		return TIER_UNKNOWN;
	*state_ok = 1;
	if (tier == TIER_UNKNOWN) {
		introduced_by(id, ts, meta, f);
		(void)snprintf(meta->introducer, sizeof(meta->introducer),
		    "%s", f->introducer);
	}
	return tier;
}

/* What filing one message needs besides the fetch's own state. */
struct filing {
	char name[MAILDIR_NAME_SIZE];	/* of the sealed message */
	char tmp[PATH_MAX];		/* where it is spooled */
	struct parts_spool sp;		/* its plaintext, for MIME */
	int tmpdir_fd, body_fd;
	/* Its plain envelope, while a prekey of ours may open it. */
	char kept[PATH_MAX];
	int kept_fd;
	struct msg_meta meta;
	int opened, state_ok;
	int server_notice;		/* signed by our own server's key */
	enum trust_tier tier;
	/* A notice from our own server, for MIME: its fields, in notice. */
	struct bounce bounce;
	char *notice;
	int notice_oom;		/* no room to read it: not filed now */
};

/*
 * A spool for the plaintext of a message to file as MIME: the body
 * and the attachments in files with no name in the Maildir's tmp/ (in
 * TMPDIR where its file system has none).
 */
static int
filing_spool(struct fetch_ctx *fc, struct filing *fl, struct smimp_err *err)
{
	char path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/tmp", fc->dir);
	fl->tmpdir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fl->tmpdir_fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	fl->body_fd = unnamed_open_at(fl->tmpdir_fd, ".");
	if (fl->body_fd < 0 && errno == EOPNOTSUPP)
		fl->body_fd = spool_open(err);
	else if (fl->body_fd < 0)
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create a spool "
		    "file in '%s'", path);
	if (fl->body_fd < 0)
		return -1;
	parts_spool_init(&fl->sp, fl->tmpdir_fd, fl->body_fd, 1);
	return 0;
}

static void
filing_release(struct filing *fl)
{
	parts_spool_release(&fl->sp);
	if (fl->body_fd >= 0)
		close(fl->body_fd);
	if (fl->tmpdir_fd >= 0)
		close(fl->tmpdir_fd);
	/* Not put in the sealed one's place: not needed, or failed. */
	if (fl->kept_fd >= 0) {
		close(fl->kept_fd);
		(void)unlink(fl->kept);
	}
	if (fl->opened)
		msg_meta_release(&fl->meta);
	free(fl->notice);
}

/*
 * A verified notice read for MIME into fl; one not in its form (which
 * our server never writes) stays as it came.  Its copy is no bigger
 * than the notice, which the fetch already holds whole.
 */
static void
filing_notice(struct filing *fl, const unsigned char *data, size_t len)
{
	fl->notice = malloc(len + 1);
	fl->notice_oom = fl->notice == NULL;
	if (fl->notice != NULL && bounce_parse(data, len, &fl->bounce,
	    fl->notice, len + 1) != 0) {
		free(fl->notice);
		fl->notice = NULL;
	}
}

/*
 * Decide how the message spooled at fl->tmp is filed: open it (into
 * fl->sp for MIME), judge its sender; a notice from our own server is
 * trusted, anything else that does not verify unknown.  A message that
 * the server says someone else than its signed sender delivered
 * (delivered_by, the listing's "from") is one that a recipient or a
 * relay handed on again: a replay, judged as what does not verify.
 */
static void
filing_judge(struct fetch_ctx *fc, struct filing *fl, int fd,
    const unsigned char *data, size_t len, const char *delivered_by,
    struct fetched *f)
{
	fl->tier = TIER_UNKNOWN;
	if (open_fetched(fc->id, fc->ts, fd, fl->kept_fd, fc->mime ?
	    &fl->sp : NULL, &fl->meta)) {
		fl->opened = 1;
		memcpy(f->prekey_id, fl->meta.prekey_id, sizeof(f->prekey_id));
		if (strcmp(fl->meta.from, delivered_by) != 0)
			(void)snprintf(f->from, sizeof(f->from), "?");
		else
			fl->tier = judge(fc->id, fc->ts, fc->hooks, &fl->meta,
			    f, &fl->state_ok);
	} else if (bounce_verify(data, len, fc->have_key ? fc->server_key :
	    NULL)) {
		/* Our own server telling us a message could not be relayed. */
		(void)snprintf(f->from, sizeof(f->from), "server:%s",
		    address_domain(fc->id->sk.address));
		fl->tier = TIER_TRUSTED;
		fl->server_notice = 1;
		if (fc->mime)
			filing_notice(fl, data, len);
	} else {
		(void)snprintf(f->from, sizeof(f->from), "?");
	}
}

/*
 * What did not verify (or comes from a key revoked or changed), as
 * smimp's notice that says so with its bytes (fl->tmp's) attached:
 * a sender chooses every byte after an age header, which mail readers
 * would read as header fields of its choosing.
 */
static int
write_unverified(const struct fetch_ctx *fc, const struct filing *fl,
    int fd, const char *label, struct smimp_err *err)
{
	char stem[MAILDIR_NAME_SIZE];
	const char *dot = strrchr(fl->name, '.');
	int in, r;

	(void)snprintf(stem, sizeof(stem), "%.*s", dot != NULL ?
	    (int)(dot - fl->name) : (int)strlen(fl->name), fl->name);
	in = open(fl->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'",
		    fl->tmp);
	r = mime_unverified_write(in, stem, fc->id->sk.address, time_now(),
	    fd, label, err);
	close(in);
	return r;
}

/*
 * File a verified message (or our server's notice, or the notice of
 * smimp's that says a message did not verify) as MIME in folder, its
 * sealed original (the notice as it came) in .sealed after it: so
 * that the original there says both are filed.
 * The MIME form's name goes into the pending list before it is
 * filed, so that a fetch cut short between the two finds what it
 * filed (also moved to cur/ by a reader) and files it once.
 */
static int
file_mime(struct fetch_ctx *fc, struct filing *fl,
    enum maildir_folder folder, struct smimp_err *err)
{
	char mname[MAILDIR_NAME_SIZE], mtmp[PATH_MAX], mlabel[PATH_MAX + 2];
	int fd, r;

	maildir_mime_name(fl->name, mname);
	if (pending_has(fc, mname) && maildir_find(fc->dir, mname)) {
		(void)snprintf(mtmp, sizeof(mtmp), "%s/tmp/%s", fc->dir, mname);
		(void)unlink(mtmp);
		return maildir_keep_sealed(fc->dir, fl->name, fl->tmp, err);
	}
	fd = maildir_create(fc->dir, mname, mtmp, sizeof(mtmp), err);
	if (fd < 0)
		return -1;
	(void)snprintf(mlabel, sizeof(mlabel), "'%s'", mtmp);
	if (fl->notice != NULL)
		r = mime_bounce_write(&fl->bounce, fc->id->sk.address, fd,
		    mlabel, err);
	else if (fl->opened && fl->state_ok)
		r = mime_write(&fl->meta, trust_tier_name(fl->tier), &fl->sp,
		    fd, mlabel, err);
	else
		r = write_unverified(fc, fl, fd, mlabel, err);
	if (r == 0 && fsync(fd) != 0)
		r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'",
		    mtmp);
	close(fd);
	if (r != 0 || pending_add(fc, mname, err) != 0 ||
	    maildir_file(fc->dir, folder, mname, mtmp, err) != 0) {
		(void)unlink(mtmp);
		return -1;
	}
	return maildir_keep_sealed(fc->dir, fl->name, fl->tmp, err);
}

/*
 * Write data durably into the Maildir, decide its folder by the
 * verified sender's tier (or its introduction), then file it there (or
 * drop it).  A sent copy (the server's word, sent) goes to .Sent when
 * it is our own identity's: the server's flag alone puts nothing there.
 * With --mime, a message that verified, from a sender in good
 * standing, is filed as MIME, and so is a notice from our own server;
 * any other as it came.  One that a
 * one-time prekey of ours opened is filed (or kept in .sealed) as its
 * plain envelope, and the prekey's secret then deleted.
 */
static int
file_message(struct fetch_ctx *fc, const unsigned char *data, size_t len,
    const char *delivered_by, int sent, struct fetched *f,
    struct smimp_err *err)
{
	enum maildir_folder folder = MAILDIR_OTHER;
	struct filing fl;
	int fd, ret = -1;

	memset(&fl, 0, sizeof(fl));
	fl.tmpdir_fd = fl.body_fd = fl.kept_fd = -1;
	parts_spool_init(&fl.sp, -1, -1, 0);
	maildir_name(data, len, fl.name);
	fd = maildir_spool(fc->dir, fl.name, data, len, fl.tmp,
	    sizeof(fl.tmp), err);
	if (fd < 0)
		return -1;
	if ((fc->mime && filing_spool(fc, &fl, err) != 0) ||
	    kept_open(fc->id, fc->dir, fl.name, fl.kept, sizeof(fl.kept),
	    &fl.kept_fd, err) != 0) {
		close(fd);
		(void)unlink(fl.tmp);
		goto out;
	}
	filing_judge(fc, &fl, fd, data, len, delivered_by, f);
	close(fd);
	/* Filed as it came now, it might be filed twice (as MIME before). */
	if (fl.notice_oom) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		(void)unlink(fl.tmp);
		goto out;
	}
	if (f->prekey_id[0] != '\0') {
		if (kept_swap(fl.kept_fd, fl.kept, fl.tmp, err) != 0) {
			(void)unlink(fl.tmp);
			goto out;
		}
		close(fl.kept_fd);
		fl.kept_fd = -1;
	}
	f->folder = "Other";
	if (sent && f->own) {
		f->folder = "Sent";
		folder = MAILDIR_SENT;
	} else if (fl.tier == TIER_BLOCKED) {
		f->folder = "dropped";
		(void)unlink(fl.tmp);
		ret = 0;
		goto out;
	} else if (fl.tier == TIER_TRUSTED || fl.tier == TIER_KNOWN ||
	    f->introducer[0] != '\0') {
		f->folder = "inbox";
		folder = MAILDIR_INBOX;
	}
	/*
	 * With --mime, mail readers read the folders: only what smimp
	 * wrote goes there (a notice of our own server's not in its form,
	 * signed by it, aside), the rest into .sealed.
	 */
	if (fc->mime && (fl.notice != NULL || !fl.server_notice))
		ret = file_mime(fc, &fl, folder, err);
	else if (pending_intent(fc, fl.name, err) != 0)
		(void)unlink(fl.tmp);
	else
		ret = maildir_file(fc->dir, folder, fl.name, fl.tmp, err);
out:
	/* Filed, or dropped: the prekey's secret has done its work. */
	if (ret == 0 && f->prekey_id[0] != '\0')
		ret = prekeys_forget(fc->id, fc->id->sk.prekeys, f->prekey_id,
		    err);
	filing_release(&fl);
	return ret;
}

/* The batch was acknowledged: remember its ids, start the next. */
static int
acknowledged(struct fetch_ctx *fc, struct smimp_err *err)
{
	if (id_set_add(&fc->acked, fc->acks, fc->nacks) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	fc->nacks = 0;
	return 0;
}

/* One DELETE per message, for servers without the batch. */
static int
acknowledge_singly(struct fetch_ctx *fc, struct smimp_err *err)
{
	struct remote_reply ack;
	char path[64];
	size_t i;

	for (i = 0; i < fc->nacks; i++) {
		(void)snprintf(path, sizeof(path), "/v1/mailbox/%lld",
		    fc->acks[i]);
		if (remote_request(fc->r, "DELETE", fc->domain, fc->base, path,
		    NULL, 0, &fc->me, NULL, REMOTE_MAX_STATUS, &ack,
		    err) != 0)
			return -1;
		if (ack.status != 204 && ack.status != 404) {
			remote_reply_fail(&ack, "acknowledge", err);
			remote_reply_release(&ack);
			return -1;
		}
		remote_reply_release(&ack);
	}
	return acknowledged(fc, err);
}

/* Acknowledge what was filed, in one request. */
static int
acknowledge(struct fetch_ctx *fc, struct smimp_err *err)
{
	struct remote_reply rep;
	struct sbuf body;
	size_t i;
	int r = 0;

	if (fc->nacks == 0)
		return 0;
	if (fc->ack_singly)
		return acknowledge_singly(fc, err);
	sbuf_init(&body, 64 * 1024);
	for (i = 0; i < fc->nacks && r == 0; i++)
		r = sbuf_addf(&body, "%s%lld", i > 0 ? "," : "[", fc->acks[i]);
	if (r != 0 || sbuf_add(&body, "]", 1) != 0) {
		sbuf_release(&body);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	r = remote_request(fc->r, "POST", fc->domain, fc->base,
	    "/v1/mailbox/ack", body.buf, body.len, &fc->me, NULL,
	    REMOTE_MAX_STATUS, &rep, err);
	sbuf_release(&body);
	if (r != 0)
		return -1;
	if (rep.status == 404 || rep.status == 405) {
		remote_reply_release(&rep);
		fc->ack_singly = 1;
		return acknowledge_singly(fc, err);
	}
	if (rep.status != 200) {
		remote_reply_fail(&rep, "acknowledge", err);
		remote_reply_release(&rep);
		return -1;
	}
	remote_reply_release(&rep);
	return acknowledged(fc, err);
}

/*
 * Whether every entry of a listing is an object with a mailbox id (a
 * positive integer): a listing that is not is refused whole, before a
 * download, so that nothing is asked for an id the server never gave.
 */
static int
listing_valid(json_t *list)
{
	json_t *item, *id;
	size_t i;

	json_array_foreach(list, i, item) {
		id = json_object_get(item, "id");
		if (!json_is_integer(id) || json_integer_value(id) <= 0)
			return 0;
	}
	return 1;
}

/* A listing entry's mailbox id. */
static long long
entry_id(json_t *item)
{
	return (long long)json_integer_value(json_object_get(item, "id"));
}

/*
 * A message filed before, by a fetch that stopped between filing it and
 * deleting the secret of the prekey that opened it: that secret goes
 * now.  Found by opening the message again, so that only a prekey that
 * really opened it is deleted.
 */
static int
forget_again(const struct identity *id, const unsigned char *data,
    size_t len, struct smimp_err *err)
{
	struct msg_meta meta;
	struct smimp_err ignore;
	int fd, ret = 0;

	if (id->sk.prekeys == NULL || id->sk.prekeys->n == 0)
		return 0;
	fd = spool_open(err);
	if (fd < 0)
		return -1;
	if (fd_write_all(fd, data, len) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		ret = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool a "
		    "message");
	else if (message_open(&id->sk, id->has_log ? &id->log : NULL, fd, -1,
	    NULL, &meta, &ignore) == 0) {
		if (meta.prekey_id[0] != '\0')
			ret = prekeys_forget(id, id->sk.prekeys, meta.prekey_id,
			    err);
		msg_meta_release(&meta);
	}
	close(fd);
	return ret;
}

/* Download and file one mailbox entry, to be acknowledged. */
static int
fetch_one(struct fetch_ctx *fc, json_t *item, size_t done, size_t total,
    struct smimp_err *err)
{
	long long mid = entry_id(item);
	const char *msgid = json_string_value(json_object_get(item,
	    "message_id"));
	const char *from = json_string_value(json_object_get(item, "from"));
	struct remote_reply msg;
	struct fetched f;
	char path[64], name[MAILDIR_NAME_SIZE];
	int ret;

	memset(&f, 0, sizeof(f));
	f.folder = "";

	(void)snprintf(path, sizeof(path), "/v1/mailbox/%lld", mid);
	if (remote_request(fc->r, "GET", fc->domain, fc->base, path, NULL, 0,
	    &fc->me, NULL, REMOTE_MAX_BODY, &msg, err) != 0)
		return -1;
	if (msg.status == 404) {
		/*
		 * Listed, then gone: another fetch with this key took it,
		 * or the server lost its body.  Skipped, so that one entry
		 * does not hold back every later message; said at the end.
		 */
		remote_reply_release(&msg);
		fc->st->missing++;
		if (id_set_add(&fc->acked, &mid, 1) != 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "out of memory");
		return 0;
	}
	if (msg.status != 200) {
		remote_reply_fail(&msg, "download", err);
		remote_reply_release(&msg);
		return -1;
	}
	maildir_name((unsigned char *)msg.body.buf, msg.body.len, name);
	if (maildir_has(fc->dir, name) || pending_has(fc, name) ||
	    maildir_has_sealed(fc->dir, name) || pending_meant(fc, name)) {
		f.folder = "again";	/* filed before: only acknowledge */
		(void)snprintf(f.from, sizeof(f.from), "?");
		ret = forget_again(fc->id, (unsigned char *)msg.body.buf,
		    msg.body.len, err);
	} else {
		ret = file_message(fc, (unsigned char *)msg.body.buf,
		    msg.body.len, from != NULL ? from : "",
		    json_is_true(json_object_get(item, "sent")), &f, err);
		if (ret == 0 && strcmp(f.folder, "dropped") != 0)
			ret = pending_add(fc, name, err);
	}
	remote_reply_release(&msg);
	if (ret != 0)
		return -1;
	/* Safe on disk (or deliberately dropped): to acknowledge. */
	fc->acks[fc->nacks++] = mid;
	if (fc->nacks == ACK_BATCH && acknowledge(fc, err) != 0)
		return -1;
	fc->st->fetched++;
	if (strcmp(f.folder, "inbox") == 0)
		fc->st->inbox++;
	else if (strcmp(f.folder, "Other") == 0)
		fc->st->other++;
	else if (strcmp(f.folder, "Sent") == 0)
		fc->st->sent++;
	else if (strcmp(f.folder, "again") == 0)
		fc->st->again++;
	else
		fc->st->dropped++;
	if (f.introducer[0] != '\0') {
		fc->st->introduced++;
		if (fc->hooks->introduced != NULL)
			fc->hooks->introduced(msgid != NULL ? msgid : "",
			    f.from, f.introducer, fc->hooks->arg);
	}
	if (fc->hooks->progress != NULL)
		fc->hooks->progress(msgid != NULL ? msgid : "", f.from,
		    f.folder, done, total, fc->hooks->arg);
	return 0;
}

/*
 * One listing (at most MAILBOX_PAGE entries, oldest first), each entry
 * fetched: how many there were, or -1.
 */
static long
fetch_page(struct fetch_ctx *fc, struct smimp_err *err)
{
	struct remote_reply rep;
	json_error_t jerr;
	struct smimp_err ignore;
	json_t *list, *item;
	size_t i, total, old = 0, left;
	long ret = -1;

	if (remote_request(fc->r, "GET", fc->domain, fc->base, "/v1/mailbox",
	    NULL, 0, &fc->me, NULL, REMOTE_MAX_LISTING, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		remote_reply_fail(&rep, "mailbox", err);
		remote_reply_release(&rep);
		return -1;
	}
	list = json_loadb(rep.body.buf, rep.body.len, 0, &jerr);
	remote_reply_release(&rep);
	if (!json_is_array(list)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "mailbox: bad answer");
		goto out;
	}
	if (!listing_valid(list)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "mailbox: bad answer: an "
		    "entry without a valid id");
		goto out;
	}
	total = json_array_size(list);
	json_array_foreach(list, i, item)
		if (id_set_has(&fc->acked, entry_id(item)))
			old++;
	/* A full page of nothing new: the next would be the same. */
	if (total >= MAILBOX_PAGE && old == total) {
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "mailbox: the server "
		    "lists again %zu messages already acknowledged: no "
		    "progress", total);
		goto out;
	}
	/* Our server's key, to recognise its bounce notices. */
	if (total > old && !fc->have_key)
		fc->have_key = remote_server_key(fc->r, fc->domain, fc->base,
		    fc->server_key, &ignore) == 0;
	left = total - old;
	json_array_foreach(list, i, item) {
		if (old > 0 && id_set_has(&fc->acked, entry_id(item)))
			continue;
		if (fetch_one(fc, item, fc->st->fetched + 1,
		    fc->st->fetched + left--, err) != 0)
			goto out;
	}
	if (acknowledge(fc, err) != 0)
		goto out;
	ret = (long)total;
out:
	if (ret < 0 && fc->nacks > 0) {
		/* What was filed is safe: acknowledge it all the same. */
		struct smimp_err ignored;

		(void)acknowledge(fc, &ignored);
	}
	json_decref(list);
	return ret;
}

int
fetch_mailbox(struct remote *r, const struct identity *id,
    struct trust_store *ts, const char *dir, unsigned flags,
    struct fetch_stats *st, const struct fetch_hooks *hooks,
    struct smimp_err *err)
{
	struct fetch_ctx fc;
	int lockfd = -1, got;
	long n;

	memset(st, 0, sizeof(*st));
	memset(&fc, 0, sizeof(fc));
	/* A device fetches only when its scope says it receives. */
	if (identity_may(id, NULL, IDACT_FETCH, err) != 0)
		return -1;
	fc.r = r;
	fc.id = id;
	identity_signer(id, &fc.me);
	fc.ts = ts;
	fc.dir = dir;
	fc.domain = address_domain(id->sk.address);
	fc.st = st;
	fc.hooks = hooks;
	fc.mime = (flags & FETCH_MIME) != 0;
	if (maildir_make(dir, err) != 0 ||
	    (fc.mime && maildir_make_sealed(dir, err) != 0))
		return -1;
	/*
	 * Two fetches into one Maildir would each file what the other
	 * files, and one would clear the other's record of what waits
	 * for its acknowledgement: the second does nothing.  The lock
	 * is on the Maildir itself, so that mail readers see no file.
	 */
	if ((got = lock_dir_try(dir, &lockfd, err)) <= 0) {
		st->busy = got == 0;
		return got;
	}
	fc.pending_fd = -1;
	if (remote_base(r, fc.domain, fc.base, sizeof(fc.base), err) != 0 ||
	    pending_open(&fc, err) != 0) {
		n = -1;
		goto out;
	}
	/* A full page means there may be more: list again. */
	do {
		n = fetch_page(&fc, err);
	} while (n >= MAILBOX_PAGE);
	if (n >= 0 && pending_clear(&fc, err) != 0)
		n = -1;
	if (n >= 0 && st->missing > 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%zu listed message%s "
		    "could not be downloaded (HTTP 404): skipped; the "
		    "server may have lost %s", st->missing, st->missing == 1 ?
		    "" : "s", st->missing == 1 ? "it" : "them");
		n = -1;
	}
out:
	if (fc.pending_fd >= 0)
		close(fc.pending_fd);
	free(fc.pending);
	free(fc.acked.v);
	close(lockfd);	/* releases the lock */
	return n < 0 ? -1 : 0;
}

int
fetch_device_log(struct remote *r, struct identity *id,
    struct device_log_update *up, struct smimp_err *err)
{
	struct idlog_follow how;
	struct signer who;
	struct idlog log;
	char why[SMIMP_ERR_MSG];
	int ret = -1;

	memset(up, 0, sizeof(*up));
	if (!id->sk.is_device)
		return 0;
	identity_signer(id, &who);
	if (lookup_directory(r, id->sk.address, &who, &log, err) != 0)
		return -1;
	if (id->has_log) {
		/* Never back: a truncated or forked log hides a removal. */
		if (idlog_check_follows(&log, &id->log, &how, err) != 0) {
			memcpy(why, err->msg, sizeof(why));
			smimp_err_set(err, err->code, "the log of %s that its "
			    "directory serves does not follow '%s': %.150s; "
			    "nothing written", id->sk.address, id->pub_path,
			    why);
			goto out;
		}
		up->was = id->log.n;
		idlog_changes_followed(&log, up->was, &how, &up->changes);
	} else {
		up->first = 1;
		idlog_changes_since(&log, 0, &up->changes);
	}
	/* It must name this very device, live: else it is not ours. */
	if (identity_may(id, &log, IDACT_LOOKUP, err) != 0 ||
	    file_write_atomic(id->pub_path, log.raw, log.raw_len, 0644, 1,
	    err) != 0)
		goto out;
	if (id->has_log)
		idlog_release(&id->log);
	id->log = log;
	id->has_log = 1;
	return 0;
out:
	idlog_release(&log);
	return ret;
}

int
fetch_device_log_due(struct lookup_session *s, struct identity *id,
    char *warning, size_t cap, struct smimp_err *err)
{
	struct device_log_update up;
	struct smimp_err why;
	struct remote *rem;
	struct stat st;

	warning[0] = '\0';
	if (!id->sk.is_device)
		return 0;
	if (lookup_session_conf(s, err) != 0)
		return -1;
	/* The file is written anew at each fetch: its age is the check's. */
	if (stat(id->pub_path, &st) == 0 &&
	    time_now() - (int64_t)st.st_mtime < s->conf.refresh_secs)
		return 0;
	rem = lookup_session_remote(s, err);
	if (rem == NULL)
		return -1;
	smimp_err_clear(&why);
	if (fetch_device_log(rem, id, &up, &why) == 0)
		return 0;
	/* A removal, a revocation, a log that does not follow: refused. */
	if (why.code == SMIMP_EXIT_KEYCHANGED) {
		*err = why;
		return -1;
	}
	/* Offline, or the directory cannot say: the log beside stands. */
	if (snprintf(warning, cap, "cannot check the log of %s in its "
	    "directory, sealing with '%s' as it is: %.150s", id->sk.address,
	    id->pub_path, why.msg) >= (int)cap)
		warning[cap - 1] = '\0';	/* cut */
	return 0;
}
