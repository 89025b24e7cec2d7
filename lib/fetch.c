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

#include <jansson.h>

#include "bounce.h"
#include "exitcode.h"
#include "fetch.h"
#include "fileio.h"
#include "lookup.h"
#include "maildir.h"
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
 * The tier a fetched message is filed by, its sender into f: a
 * verified sender's tier, unknown for one whose key changed or whose
 * identity was revoked (as its log or the pinned one says), or for a
 * message that does not verify, trusted for a bounce notice from our
 * own server; for an unknown sender, who introduced it.  fd holds the
 * message, read from its start.
 */
static enum trust_tier
fetched_tier(const struct identity *id, struct trust_store *ts,
    const struct fetch_hooks *hooks, const unsigned char *server_key, int fd,
    int kept_fd, const unsigned char *data, size_t len, struct fetched *f)
{
	enum trust_tier tier = TIER_UNKNOWN;
	struct msg_meta meta;
	struct smimp_err oerr;
	char note[SMIMP_ERR_MSG];

	if (message_open_kept(&id->sk, id->has_log ? &id->log : NULL,
	    fd, kept_fd, ts, &meta, &oerr) == 0) {
		(void)snprintf(f->from, sizeof(f->from), "%s", meta.from);
		memcpy(f->prekey_id, meta.prekey_id, sizeof(f->prekey_id));
		f->own = meta.own;
		/* Key changed, or revoked: not the inbox. */
		if (follow_sender(ts, &meta, hooks) != 0 ||
		    trust_sender_tier(ts, meta.from, &meta.sender, meta.own,
		    &tier, &oerr) != 0 || trust_sender_state(ts, meta.from,
		    &meta.sender, meta.date, meta.from_device,
		    meta.signing_key, note, sizeof(note), &oerr) != 0)
			tier = TIER_UNKNOWN;
		else if (tier == TIER_UNKNOWN)
			introduced_by(id, ts, &meta, f);
		msg_meta_release(&meta);
	} else if (bounce_verify(data, len, server_key)) {
		/* Our own server telling us a message could not be relayed. */
		(void)snprintf(f->from, sizeof(f->from), "server:%s",
		    address_domain(id->sk.address));
		tier = TIER_TRUSTED;
	} else {
		(void)snprintf(f->from, sizeof(f->from), "?");
	}
	return tier;
}

/*
 * Write data durably into the Maildir, decide its folder by the
 * verified sender's tier (or its introduction), then file it there (or
 * drop it).  A sent copy (the server's word, sent) goes to .Sent when
 * it is our own identity's: the server's flag alone puts nothing there.
 */
/* File tmp into the folder that tier (or a sent copy) calls for. */
static int
file_in(const char *dir, enum trust_tier tier, int sent, const char *name,
    const char *tmp, struct fetched *f, struct smimp_err *err)
{
	if (sent && f->own) {
		f->folder = "Sent";
		return maildir_file(dir, MAILDIR_SENT, name, tmp, err);
	}
	if (tier == TIER_BLOCKED) {
		f->folder = "dropped";
		(void)unlink(tmp);
		return 0;
	}
	if (tier == TIER_TRUSTED || tier == TIER_KNOWN ||
	    f->introducer[0] != '\0') {
		f->folder = "inbox";
		return maildir_file(dir, MAILDIR_INBOX, name, tmp, err);
	}
	f->folder = "Other";
	return maildir_file(dir, MAILDIR_OTHER, name, tmp, err);
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

static int
file_message(const struct identity *id, struct trust_store *ts,
    const struct fetch_hooks *hooks, const unsigned char *server_key,
    const char *dir, const unsigned char *data, size_t len, int sent,
    struct fetched *f, struct smimp_err *err)
{
	char name[MAILDIR_NAME_SIZE], tmp[PATH_MAX], kept[PATH_MAX];
	enum trust_tier tier;
	int fd, kept_fd, r;

	maildir_name(data, len, name);
	fd = maildir_spool(dir, name, data, len, tmp, sizeof(tmp), err);
	if (fd < 0)
		return -1;
	if (kept_open(id, dir, name, kept, sizeof(kept), &kept_fd, err) != 0) {
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	tier = fetched_tier(id, ts, hooks, server_key, fd, kept_fd, data, len,
	    f);
	close(fd);
	r = 0;
	if (kept_fd >= 0) {
		if (f->prekey_id[0] != '\0')
			r = kept_swap(kept_fd, kept, tmp, err);
		else
			(void)unlink(kept);
		close(kept_fd);
	}
	if (r == 0)
		r = file_in(dir, tier, sent, name, tmp, f, err);
	/* Filed, or dropped: the prekey's secret has done its work. */
	if (r == 0 && f->prekey_id[0] != '\0')
		r = prekeys_forget(id, id->sk.prekeys, f->prekey_id, err);
	return r;
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

static int
pending_add(struct fetch_ctx *fc, const char *name, struct smimp_err *err)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%s\n", name);

	if (fd_write_all(fc->pending_fd, line, (size_t)n) != 0 ||
	    fsync(fc->pending_fd) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot record a "
		    "filed message in '%s'", fc->dir);
	return 0;
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
	if (msg.status != 200) {
		remote_reply_fail(&msg, "download", err);
		remote_reply_release(&msg);
		return -1;
	}
	maildir_name((unsigned char *)msg.body.buf, msg.body.len, name);
	if (maildir_has(fc->dir, name) || pending_has(fc, name)) {
		f.folder = "again";	/* filed before: only acknowledge */
		(void)snprintf(f.from, sizeof(f.from), "?");
		ret = forget_again(fc->id, (unsigned char *)msg.body.buf,
		    msg.body.len, err);
	} else {
		ret = file_message(fc->id, fc->ts, fc->hooks, fc->have_key ?
		    fc->server_key : NULL, fc->dir,
		    (unsigned char *)msg.body.buf, msg.body.len,
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
    struct trust_store *ts, const char *dir, struct fetch_stats *st,
    const struct fetch_hooks *hooks, struct smimp_err *err)
{
	struct fetch_ctx fc;
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
	if (maildir_make(dir, err) != 0)
		return -1;
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
out:
	if (fc.pending_fd >= 0)
		close(fc.pending_fd);
	free(fc.pending);
	free(fc.acked.v);
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
