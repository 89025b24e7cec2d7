#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "bounce.h"
#include "fileio.h"
#include "reqsig.h"
#include "send.h"
#include "stamp.h"
#include "banned.h"

/* An unlinked private temporary file. */
static int
anon_tmpfile(struct smimp_err *err)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	if ((size_t)snprintf(path, sizeof(path), "%s/smimp.XXXXXX", dir) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "TMPDIR too long");
	fd = mkstemp(path);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create a "
		    "temporary file in '%s'", dir);
	(void)unlink(path);
	return fd;
}

static int
home_base(struct remote *r, const struct identity *id, char *base,
    size_t cap, struct smimp_err *err)
{
	return remote_base(r, address_domain(id->sk.address), base, cap, err);
}

/* Map an HTTP answer to an error: 5xx and 429 are temporary. */
static int
http_fail(const struct remote_reply *rep, const char *what,
    struct smimp_err *err)
{
	int code = rep->status >= 500 || rep->status == 429 ?
	    SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_FAIL;

	return smimp_err_set(err, code, "%s: HTTP %ld%s%s", what,
	    rep->status, rep->error[0] != '\0' ? ": " : "", rep->error);
}

void
submission_release(struct submission *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
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
	tmp = anon_tmpfile(err);
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
	char base[512], sorted[8192], stamp[STAMP_STRLEN], when[TIME_STRLEN];
	char to_h[8300], mid_h[300], stamp_h[STAMP_STRLEN + 16], date_h[64];
	const char *extra[5] = { to_h, mid_h, stamp_h, date_h, NULL };
	unsigned char hash[32];
	struct signer me;

	/*
	 * The delivery stamp: what other domains check before accepting.
	 * Messages that stay in the sender's domain need none.
	 */
	if (!other_domains(s->to, address_domain(id->sk.address)))
		extra[2] = NULL;
	signer_secret(&me, id->sk.address, id->sk.identity_secret);
	time_format(time_now(), when);
	reqsig_body_hash(hash, s->data, s->len);
	if (extra[2] != NULL && (stamp_recipients(s->to, sorted,
	    sizeof(sorted)) != 0 || stamp_sign(stamp, id->sk.address, sorted,
	    s->message_id, hash, when, id->sk.identity_secret,
	    err) != 0))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot stamp the "
		    "message");
	(void)snprintf(to_h, sizeof(to_h), "Smimp-To: %s", s->to);
	(void)snprintf(mid_h, sizeof(mid_h), "Smimp-Message-Id: %s",
	    s->message_id);
	(void)snprintf(stamp_h, sizeof(stamp_h), "Smimp-Stamp: %s", stamp);
	(void)snprintf(date_h, sizeof(date_h), "Smimp-Stamp-Date: %s", when);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/messages", s->data, s->len, &me, extra, REMOTE_MAX_STATUS,
	    &rep, err) != 0)
		return -1;
	if (rep.status != 201 && rep.status != 200) {
		http_fail(&rep, s->message_id, err);
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
	if (token[0] == '\0' || strlen(token) > 128 ||
	    strpbrk(token, "\r\n ") != NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "malformed "
		    "invitation token");
	(void)snprintf(tok_h, sizeof(tok_h), "Smimp-Invite: %s", token);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/register", id->log.raw, id->log.raw_len, &me, extra,
	    REMOTE_MAX_STATUS, &rep, err) != 0)
		return -1;
	if (rep.status == 201)
		ret = 0;
	else
		http_fail(&rep, "registering", err);
	remote_reply_release(&rep);
	return ret;
}

/* ---- fetch ---- */

static int
maildir_make(const char *dir, struct smimp_err *err)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    subs[i]) >= sizeof(path))
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "Maildir path too long");
		if (mkdir_p(path, 0700, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * A message's Maildir name, from its bytes: the same message always gets
 * the same name, so that one fetched twice (a crash between filing and
 * acknowledging) is recognised and filed once.
 */
#define CONTENT_NAME_BYTES	16
static void
maildir_name(const unsigned char *data, size_t len, char *out, size_t cap)
{
	unsigned char h[CONTENT_NAME_BYTES];
	char hex[2 * CONTENT_NAME_BYTES + 1];

	(void)crypto_generichash(h, sizeof(h), data, len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	(void)snprintf(out, cap, "%s.smimp", hex);
}

/* Is a message of this name in new/ of the inbox or of .Other? */
static int
already_filed(const char *dir, const char *name)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/new/%s", dir, name) <
	    sizeof(path) && access(path, F_OK) == 0)
		return 1;
	return (size_t)snprintf(path, sizeof(path), "%s/.Other/new/%s", dir,
	    name) < sizeof(path) && access(path, F_OK) == 0;
}

/*
 * Write data durably into dir/tmp, decide its folder by the verified
 * sender's tier, then rename it into that folder's new/.
 */
static int
file_message(const struct identity *id, const struct trust_store *ts,
    const unsigned char *server_key, const char *dir,
    const unsigned char *data, size_t len, const char **folder, char *from,
    size_t fromcap, struct smimp_err *err)
{
	char name[128], tmp[PATH_MAX], dst[PATH_MAX];
	struct msg_meta meta;
	struct smimp_err oerr;
	enum trust_tier tier = TIER_UNKNOWN;
	int fd, verified;

	maildir_name(data, len, name, sizeof(name));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name) >=
	    sizeof(tmp))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	/*
	 * The name comes from the content: a file left in tmp/ by a fetch
	 * that was killed is this same message, and is simply rewritten.
	 */
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create '%s'",
		    tmp);
	if (fd_write_all(fd, data, len) != 0 || fsync(fd) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	verified = message_open(&id->sk, fd, -1, ts, &meta, &oerr) == 0;
	close(fd);
	if (!verified && bounce_verify(data, len, server_key)) {
		/* Our own server telling us a message could not be relayed. */
		(void)snprintf(from, fromcap, "server:%s",
		    address_domain(id->sk.address));
		tier = TIER_TRUSTED;
	} else if (verified) {
		(void)snprintf(from, fromcap, "%s", meta.from);
		if (sender_tier(ts, &meta, &tier, &oerr) != 0)
			tier = TIER_UNKNOWN;	/* key changed: not inbox */
		msg_meta_release(&meta);
	} else {
		(void)snprintf(from, fromcap, "?");
	}
	if (tier == TIER_BLOCKED) {
		*folder = "dropped";
		(void)unlink(tmp);
		return 0;
	}
	*folder = tier == TIER_TRUSTED || tier == TIER_KNOWN ? "inbox" :
	    "Other";
	if ((size_t)snprintf(dst, sizeof(dst), "%s%s/new/%s", dir,
	    strcmp(*folder, "inbox") == 0 ? "" : "/.Other", name) >=
	    sizeof(dst))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (rename(tmp, dst) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot file '%s'", dst);
		(void)unlink(tmp);
		return -1;
	}
	return fsync_parent_dir(dst, err);
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
	struct signer me;		/* signs with id's identity key */
	const struct trust_store *ts;
	const char *dir, *domain;
	char base[512];
	unsigned char server_key[32];
	int have_key;
	struct fetch_stats *st;
	fetch_progress_fn progress;
	void *arg;
};

static int
pending_open(struct fetch_ctx *fc, struct smimp_err *err)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", fc->dir,
	    PENDING_FILE) >= sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	fc->pending_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (fc->pending_fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
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
			http_fail(&ack, "acknowledge", err);
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
		http_fail(&rep, "acknowledge", err);
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

/* Download and file one mailbox entry, to be acknowledged. */
static int
fetch_one(struct fetch_ctx *fc, json_t *item, size_t done, size_t total,
    struct smimp_err *err)
{
	const char *folder = "";
	long long mid = entry_id(item);
	const char *msgid = json_string_value(json_object_get(item,
	    "message_id"));
	struct remote_reply msg;
	char path[64], from[ADDRESS_MAX + 1], name[128];
	int ret;

	(void)snprintf(path, sizeof(path), "/v1/mailbox/%lld", mid);
	if (remote_request(fc->r, "GET", fc->domain, fc->base, path, NULL, 0,
	    &fc->me, NULL, REMOTE_MAX_BODY, &msg, err) != 0)
		return -1;
	if (msg.status != 200) {
		http_fail(&msg, "download", err);
		remote_reply_release(&msg);
		return -1;
	}
	maildir_name((unsigned char *)msg.body.buf, msg.body.len, name,
	    sizeof(name));
	if (already_filed(fc->dir, name) || pending_has(fc, name)) {
		folder = "again";	/* filed before: only acknowledge */
		(void)snprintf(from, sizeof(from), "?");
		ret = 0;
	} else {
		ret = file_message(fc->id, fc->ts, fc->have_key ?
		    fc->server_key : NULL, fc->dir,
		    (unsigned char *)msg.body.buf, msg.body.len, &folder, from,
		    sizeof(from), err);
		if (ret == 0 && strcmp(folder, "dropped") != 0)
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
	if (strcmp(folder, "inbox") == 0)
		fc->st->inbox++;
	else if (strcmp(folder, "Other") == 0)
		fc->st->other++;
	else if (strcmp(folder, "again") == 0)
		fc->st->again++;
	else
		fc->st->dropped++;
	if (fc->progress != NULL)
		fc->progress(msgid != NULL ? msgid : "", from, folder, done,
		    total, fc->arg);
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
		http_fail(&rep, "mailbox", err);
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
    const struct trust_store *ts, const char *dir, struct fetch_stats *st,
    fetch_progress_fn progress, void *arg, struct smimp_err *err)
{
	struct fetch_ctx fc;
	char other[PATH_MAX];
	long n;

	memset(st, 0, sizeof(*st));
	memset(&fc, 0, sizeof(fc));
	fc.r = r;
	fc.id = id;
	signer_secret(&fc.me, id->sk.address, id->sk.identity_secret);
	fc.ts = ts;
	fc.dir = dir;
	fc.domain = address_domain(id->sk.address);
	fc.st = st;
	fc.progress = progress;
	fc.arg = arg;
	if ((size_t)snprintf(other, sizeof(other), "%s/.Other", dir) >=
	    sizeof(other) || maildir_make(dir, err) != 0 ||
	    maildir_make(other, err) != 0)
		return -1;
	fc.pending_fd = -1;
	if (home_base(r, id, fc.base, sizeof(fc.base), err) != 0 ||
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
