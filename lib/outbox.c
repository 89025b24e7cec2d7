/*
 * outbox.c - the durable outbox under SMIMP_HOME (outbox.h): entries
 * written whole or not at all, delivered oldest first by one flush at a
 * time, each removed only after the server took it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "outbox.h"
#include "banned.h"

#define ENTRY_MAGIC	"smimp-outbox/1"
/* The keys a flush remembers as unreachable or unusable. */
#define FLUSH_MARKS	32

/* ---- the directory and its names ---- */

int
outbox_dir(char *out, size_t cap, int create, int *exists,
    struct smimp_err *err)
{
	char home[PATH_MAX];
	int had;

	if (smimp_home(home, sizeof(home), err) != 0)
		return -1;
	if ((size_t)snprintf(out, cap, "%s/%s", home, OUTBOX_DIR) >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	if (dir_check_private(out, err) != 0)
		return -1;
	had = access(out, F_OK) == 0;
	/* A new outbox is synced into SMIMP_HOME before anything in it. */
	if (!had && create && (mkdir_p(out, 0700, err) != 0 ||
	    dir_check_private(out, err) != 0 ||
	    fsync_parent_dir(out, err) != 0))
		return -1;
	*exists = had || create;
	return 0;
}

/* A name for a new entry: when, in nanoseconds, then 12 random hex. */
static void
entry_name(char name[OUTBOX_NAME_LEN + 1])
{
	struct timespec ts;
	unsigned char rnd[6];
	char hex[13];

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	(void)snprintf(name, OUTBOX_NAME_LEN + 1, "%020lld-%s",
	    (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, hex);
}

static int
name_valid(const char *s)
{
	size_t i;

	if (strlen(s) != OUTBOX_NAME_LEN || s[20] != '-')
		return 0;
	for (i = 0; i < OUTBOX_NAME_LEN; i++)
		if (i != 20 && !((s[i] >= '0' && s[i] <= '9') ||
		    (i > 20 && s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

struct names {
	char (*v)[OUTBOX_NAME_LEN + 1];
	size_t n, cap;
};

static int
names_add(struct names *l, const char *name)
{
	void *nv;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		nv = realloc(l->v, l->cap * sizeof(*l->v));
		if (nv == NULL)
			return -1;
		l->v = nv;
	}
	memcpy(l->v[l->n++], name, OUTBOX_NAME_LEN + 1);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* What a writer killed mid-entry left, once it is old enough. */
static void
stale_remove(int dfd, const char *name)
{
	struct stat st;

	if (strstr(name, ".tmp.") == NULL ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st.st_mode) ||
	    st.st_mtime > time(NULL) - OUTBOX_STALE_SECS)
		return;
	(void)unlinkat(dfd, name, 0);
}

/*
 * The entries' names in dir, oldest first (at most OUTBOX_MAX_ENTRIES
 * of them); with sweep, stale temporary files are removed on the way.
 * A directory that is not there has none.
 */
static int
names_read(const char *dir, int sweep, struct names *l,
    struct smimp_err *err)
{
	struct dirent *de;
	DIR *d;

	memset(l, 0, sizeof(*l));
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot read '%s'", dir);
	errno = 0;
	while (l->n < OUTBOX_MAX_ENTRIES && (de = readdir(d)) != NULL) {
		if (name_valid(de->d_name) && names_add(l, de->d_name) != 0)
			break;
		if (sweep)
			stale_remove(dirfd(d), de->d_name);
		errno = 0;
	}
	if (errno != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'", dir);
		closedir(d);
		free(l->v);
		memset(l, 0, sizeof(*l));
		return -1;
	}
	closedir(d);
	if (l->n > 0)
		qsort(l->v, l->n, sizeof(*l->v), name_cmp);
	return 0;
}

/* ---- an entry's header ---- */

/* Printable ASCII of in, anything else as '?': for the reason line. */
static void
printable_copy(char *out, size_t cap, const char *in)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < cap; i++)
		out[i] = in[i] >= 0x20 && in[i] <= 0x7e ? in[i] : '?';
	out[i] = '\0';
}

int
outbox_header_build(struct sbuf *sb, const struct outbox_entry *e)
{
	return sbuf_addf(sb, ENTRY_MAGIC "\nidentity: %s\nmessage-id: %s\n"
	    "to: %s\nqueued: %s\nreason: %s\nlength: %llu\n\n", e->identity,
	    e->message_id, e->to, e->queued, e->reason,
	    (unsigned long long)e->length);
}

/* The value of the next line of buf, which must be name's. */
static int
header_field(const char *buf, size_t len, size_t *pos, const char *name,
    char *out, size_t cap)
{
	struct kv_line kv;

	return kv_next(buf, len, pos, OUTBOX_HEADER_MAX, &kv) == 1 &&
	    kv_is(&kv, name) && kv_value_copy(&kv, out, cap) == 0 ? 0 : -1;
}

int
outbox_header_parse(const char *buf, size_t len, struct outbox_entry *e,
    size_t *hlen)
{
	char length[24];
	uint64_t n;
	int64_t t;
	size_t pos = sizeof(ENTRY_MAGIC);

	if (len < pos || memcmp(buf, ENTRY_MAGIC "\n", pos) != 0 ||
	    header_field(buf, len, &pos, "identity", e->identity,
	    sizeof(e->identity)) != 0 ||
	    header_field(buf, len, &pos, "message-id", e->message_id,
	    sizeof(e->message_id)) != 0 ||
	    header_field(buf, len, &pos, "to", e->to, sizeof(e->to)) != 0 ||
	    header_field(buf, len, &pos, "queued", e->queued,
	    sizeof(e->queued)) != 0 ||
	    header_field(buf, len, &pos, "reason", e->reason,
	    sizeof(e->reason)) != 0 ||
	    header_field(buf, len, &pos, "length", length,
	    sizeof(length)) != 0 ||
	    pos >= len || buf[pos] != '\n')
		return -1;
	if (e->identity[0] != '/' || !message_id_valid(e->message_id) ||
	    e->to[0] == '\0' ||
	    time_parse(e->queued, strlen(e->queued), &t) != 0 ||
	    parse_u64(length, strlen(length), &n) != 0 ||
	    n > REMOTE_MAX_BODY)
		return -1;
	e->length = n;
	*hlen = pos + 1;
	return 0;
}

/*
 * Open the entry dir/name and read its header into e: the descriptor,
 * at the start of the sealed message, or -1 (err->detail ENOENT when
 * the file is gone).
 */
static int
entry_open(const char *dir, const char *name, struct outbox_entry *e,
    struct smimp_err *err)
{
	char path[PATH_MAX], buf[OUTBOX_HEADER_MAX];
	struct stat st;
	size_t got, hlen;
	int fd;

	memset(e, 0, sizeof(*e));
	memcpy(e->name, name, OUTBOX_NAME_LEN + 1);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	fd = file_open(path, O_RDONLY, FILE_NOFOLLOW | FILE_OWNED, err);
	if (fd < 0) {
		err->detail = access(path, F_OK) != 0 && errno == ENOENT ?
		    ENOENT : 0;
		return -1;
	}
	if (fd_read_full(fd, buf, sizeof(buf), &got) != 0 ||
	    fstat(fd, &st) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'", path);
		goto fail;
	}
	if (outbox_header_parse(buf, got, e, &hlen) != 0 ||
	    (uint64_t)st.st_size != hlen + e->length) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is no outbox entry "
		    "(malformed or cut short)", path);
		goto fail;
	}
	if (lseek(fd, (off_t)hlen, SEEK_SET) != (off_t)hlen) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'", path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* ---- queueing ---- */

/* Write the entry e with the sealed message data into dir, durably. */
static int
entry_write(const char *dir, const struct outbox_entry *e,
    const unsigned char *data, size_t len, struct smimp_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct sbuf sb;
	int fd, ret = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->name) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	sbuf_init(&sb, OUTBOX_HEADER_MAX);
	if (outbox_header_build(&sb, e) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the outbox entry's header "
		    "is too long");
		goto out;
	}
	fd = tmpfile_beside(path, tmp, sizeof(tmp), err);
	if (fd < 0)
		goto out;
	if (fd_write_all(fd, sb.buf, sb.len) != 0 ||
	    fd_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		close(fd);
		(void)unlink(tmp);
		goto out;
	}
	if (close(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		(void)unlink(tmp);
		goto out;
	}
	/* Linked into place, never replacing; the directory synced. */
	ret = file_commit(tmp, path, 0, err);
out:
	sbuf_release(&sb);
	return ret;
}

int
outbox_add(const struct identity *id, const struct submission *s,
    const char *why, char *name, struct smimp_err *err)
{
	struct outbox_entry *e = calloc(1, sizeof(*e));
	char dir[PATH_MAX];
	int exists, ret = -1;

	if (e == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	/* The key as a path that a flush from anywhere finds again. */
	if (realpath(id->key_path, e->identity) == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot find '%s'",
		    id->key_path);
		goto out;
	}
	if (text_has_control(e->identity)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the path of the key '%s' "
		    "holds a control character: it cannot be queued",
		    id->key_path);
		goto out;
	}
	(void)snprintf(e->message_id, sizeof(e->message_id), "%.200s",
	    s->message_id);
	(void)snprintf(e->to, sizeof(e->to), "%s", s->to);
	time_format(time_now(), e->queued);
	printable_copy(e->reason, sizeof(e->reason), why);
	e->length = s->len;
	if (outbox_dir(dir, sizeof(dir), 1, &exists, err) != 0)
		goto out;
	entry_name(e->name);
	if (entry_write(dir, e, s->data, s->len, err) != 0)
		goto out;
	if (name != NULL)
		memcpy(name, e->name, OUTBOX_NAME_LEN + 1);
	ret = 0;
out:
	free(e);
	return ret;
}

int
outbox_send(struct remote *r, const struct identity *id, int fd,
    const char *only, const struct send_consent *c, char *message_id,
    size_t cap, int *queued, char *why, struct smimp_err *err)
{
	struct submission s;
	struct smimp_err first;
	int ret = -1;

	*queued = 0;
	why[0] = '\0';
	if (send_prepare(id, fd, &s, err) != 0)
		return -1;
	(void)snprintf(message_id, cap, "%s", s.message_id);
	if (only != NULL && send_restrict(&s, only, err) != 0)
		goto out;
	smimp_err_clear(&first);
	if (send_submission(r, id, &s, c, &first) == 0) {
		ret = 0;
		goto out;
	}
	if (first.code != SMIMP_EXIT_TEMPFAIL) {
		*err = first;
		goto out;
	}
	(void)snprintf(why, SMIMP_ERR_MSG, "%s", first.msg);
	if (outbox_add(id, &s, first.msg, NULL, err) != 0) {
		/* Neither sent nor queued: both said. */
		(void)snprintf(first.msg, sizeof(first.msg), "%s", err->msg);
		smimp_err_set(err, err->code, "cannot queue %s: %s (and the "
		    "home server cannot take it: %s)", s.message_id, first.msg,
		    why);
		goto out;
	}
	*queued = 1;
	ret = 0;
out:
	submission_release(&s);
	return ret;
}

/* ---- flushing ---- */

/* A key a flush gave up on: its entries wait, untried. */
struct mark {
	char path[PATH_MAX];
	enum outbox_outcome oc;		/* OUTBOX_KEPT or OUTBOX_STUCK */
	char why[SMIMP_ERR_MSG];
};

struct flushing {
	const struct outbox_flush *o;
	struct outbox_totals *t;
	struct remote *r;
	char dir[PATH_MAX];
	struct identity id;		/* the key loaded last */
	int loaded;
	struct mark marks[FLUSH_MARKS];
	size_t nmarks;
};

static void
tell(const struct flushing *f, const struct outbox_entry *e,
    enum outbox_outcome oc, const char *why)
{
	switch (oc) {
	case OUTBOX_SENT: f->t->sent++; break;
	case OUTBOX_KEPT: f->t->kept++; break;
	case OUTBOX_STUCK: f->t->stuck++; break;
	case OUTBOX_REFUSED: f->t->refused++; break;
	}
	if (f->o->each != NULL)
		f->o->each(f->o->arg, e, oc, why);
}

static const struct mark *
mark_find(const struct flushing *f, const char *path)
{
	size_t i;

	for (i = 0; i < f->nmarks; i++)
		if (strcmp(f->marks[i].path, path) == 0)
			return &f->marks[i];
	return NULL;
}

static void
mark_add(struct flushing *f, const char *path, enum outbox_outcome oc,
    const char *why)
{
	struct mark *m;

	if (f->nmarks == FLUSH_MARKS)
		return;		/* its later entries are tried again */
	m = &f->marks[f->nmarks++];
	(void)snprintf(m->path, sizeof(m->path), "%s", path);
	m->oc = oc;
	(void)snprintf(m->why, sizeof(m->why), "%s", why);
}

/* The key at path, loaded unless it is the one loaded last. */
static int
key_switch(struct flushing *f, const char *path, struct smimp_err *err)
{
	if (f->loaded && strcmp(f->id.key_path, path) == 0)
		return 0;
	if (f->loaded)
		identity_release(&f->id);
	f->loaded = 0;
	if (identity_load_for(&f->id, path, f->o->src, IDENTITY_LOG_NEED,
	    IDACT_SEND, err) != 0)
		return -1;
	f->loaded = 1;
	return 0;
}

/*
 * Move the entry aside, to failed/NAME, with failed/NAME.reason beside
 * it (written first: a kill between the two leaves the entry to be
 * tried, and refused, again).
 */
static int
entry_refuse(const struct flushing *f, const char *name, const char *why,
    struct smimp_err *err)
{
	char failed[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	char reason[PATH_MAX], line[SMIMP_ERR_MSG + TIME_STRLEN + 2];
	char when[TIME_STRLEN];

	if ((size_t)snprintf(failed, sizeof(failed), "%s/%s", f->dir,
	    OUTBOX_FAILED) >= sizeof(failed) ||
	    (size_t)snprintf(from, sizeof(from), "%s/%s", f->dir, name) >=
	    sizeof(from) ||
	    (size_t)snprintf(to, sizeof(to), "%s/%s", failed, name) >=
	    sizeof(to) ||
	    (size_t)snprintf(reason, sizeof(reason), "%s.reason", to) >=
	    sizeof(reason))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (mkdir(failed, 0700) != 0 && errno != EEXIST)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create "
		    "'%s'", failed);
	if (dir_check_private(failed, err) != 0)
		return -1;
	time_format(time_now(), when);
	(void)snprintf(line, sizeof(line), "%s ", when);
	printable_copy(line + strlen(line), SMIMP_ERR_MSG, why);
	(void)snprintf(line + strlen(line), 2, "\n");
	if (file_write_atomic(reason, line, strlen(line), 0600, 1, err) != 0)
		return -1;
	if (rename(from, to) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot move '%s' "
		    "to '%s'", from, failed);
	return fsync_parent_dir(to, err) != 0 ||
	    fsync_parent_dir(from, err) != 0 ? -1 : 0;
}

/* Sent: the entry goes, and the directory is synced. */
static int
entry_done(const struct flushing *f, const char *name, struct smimp_err *err)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", f->dir, name) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (unlink(path) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot remove "
		    "'%s'", path);
	return fsync_parent_dir(path, err);
}

/*
 * Read the message back with its key and send it to the recipients
 * the entry names: 0 sent, else -1 with why and what became of it.
 */
static int
entry_submit(struct flushing *f, int fd, const struct outbox_entry *e,
    struct smimp_err *why, enum outbox_outcome *oc)
{
	struct submission s;
	int ret = -1;

	*oc = OUTBOX_REFUSED;	/* no message of its key, as it says */
	if (send_prepare(&f->id, fd, &s, why) != 0)
		return -1;
	if (strcmp(s.message_id, e->message_id) != 0 ||
	    s.len != e->length) {
		smimp_err_set(why, SMIMP_EXIT_FAIL, "the entry holds another "
		    "message than its header says");
		goto out;
	}
	if (send_restrict(&s, e->to, why) != 0)
		goto out;
	why->detail = 0;
	ret = send_submission(f->r, &f->id, &s, f->o->consent, why);
	/*
	 * Refused for good only by an answer (detail: its status), or by
	 * a proof of work that takes too long; what kept it from an answer
	 * is the server's to mend, or the settings'.
	 */
	if (ret != 0 && why->code == SMIMP_EXIT_TEMPFAIL)
		*oc = OUTBOX_KEPT;
	else if (ret != 0 && why->detail == 0 && why->code != SMIMP_EXIT_WORK)
		*oc = OUTBOX_STUCK;
out:
	submission_release(&s);
	return ret;
}

/* Refused for good: aside with the reason, or -1 when it cannot be. */
static int
refuse(struct flushing *f, const struct outbox_entry *e, const char *why,
    struct smimp_err *err)
{
	if (entry_refuse(f, e->name, why, err) != 0)
		return -1;
	tell(f, e, OUTBOX_REFUSED, why);
	return 0;
}

/* One entry; -1 only when the outbox itself fails. */
static int
flush_one(struct flushing *f, const char *name, struct smimp_err *err)
{
	struct outbox_entry e;
	struct smimp_err why;
	enum outbox_outcome oc;
	const struct mark *m;
	int fd, ret = -1;

	smimp_err_clear(&why);
	why.detail = 0;
	fd = entry_open(f->dir, name, &e, &why);
	if (fd < 0)	/* gone since it was listed: nothing to do */
		return why.detail == ENOENT ? 0 : refuse(f, &e, why.msg, err);
	m = mark_find(f, e.identity);
	if (m != NULL) {
		tell(f, &e, m->oc, m->why);
		ret = 0;
	} else if (key_switch(f, e.identity, &why) != 0) {
		mark_add(f, e.identity, OUTBOX_STUCK, why.msg);
		tell(f, &e, OUTBOX_STUCK, why.msg);
		ret = 0;
	} else if (entry_submit(f, fd, &e, &why, &oc) == 0) {
		if (entry_done(f, name, err) == 0) {
			tell(f, &e, OUTBOX_SENT, "");
			ret = 0;
		}
	} else if (oc == OUTBOX_REFUSED)
		ret = refuse(f, &e, why.msg, err);
	else {
		mark_add(f, e.identity, oc, why.msg);
		tell(f, &e, oc, why.msg);
		ret = 0;
	}
	close(fd);
	return ret;
}

int
outbox_flush_all(const struct outbox_flush *o, struct outbox_totals *t,
    struct smimp_err *err)
{
	struct flushing *f = calloc(1, sizeof(*f));
	struct names l;
	size_t i;
	int exists, got, lockfd = -1, ret = -1;

	memset(t, 0, sizeof(*t));
	memset(&l, 0, sizeof(l));
	if (f == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	f->o = o;
	f->t = t;
	if (outbox_dir(f->dir, sizeof(f->dir), 0, &exists, err) != 0)
		goto out;
	if (!exists) {
		ret = 0;
		goto out;
	}
	got = lock_try(f->dir, OUTBOX_LOCK, &lockfd, err);
	if (got <= 0) {
		t->busy = got == 0;
		ret = got;
		goto out;
	}
	if (names_read(f->dir, 1, &l, err) != 0)
		goto out;
	if (l.n > 0 && (f->r = remote_new(o->remote, err)) == NULL)
		goto out;
	for (i = 0; i < l.n; i++)
		if (flush_one(f, l.v[i], err) != 0)
			goto out;
	ret = 0;
out:
	if (f->loaded)
		identity_release(&f->id);
	remote_free(f->r);
	free(l.v);
	free(f);
	if (lockfd >= 0)
		close(lockfd);	/* releases the lock */
	return ret;
}

/* ---- listing ---- */

/* The reason beside a failed entry, into e->reason. */
static void
reason_read(const char *failed, struct outbox_entry *e)
{
	char path[PATH_MAX];
	unsigned char *buf = NULL;
	struct smimp_err err;
	size_t len;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.reason", failed,
	    e->name) >= sizeof(path) ||
	    file_read_checked(path, FILE_NOFOLLOW | FILE_OWNED,
	    SMIMP_ERR_MSG + TIME_STRLEN, &buf, &len, &err) != 0) {
		(void)snprintf(e->reason, sizeof(e->reason), "(no reason "
		    "recorded)");
		return;
	}
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	printable_copy(e->reason, sizeof(e->reason), (char *)buf);
	free(buf);
}

static int
each_in(const char *dir, int failed, void (*fn)(void *,
    const struct outbox_entry *), void *arg, struct smimp_err *err)
{
	struct outbox_entry *e = malloc(sizeof(*e));
	struct smimp_err bad;
	struct names l;
	size_t i;
	int fd;

	if (e == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (names_read(dir, 0, &l, err) != 0) {
		free(e);
		return -1;
	}
	for (i = 0; i < l.n; i++) {
		smimp_err_clear(&bad);
		fd = entry_open(dir, l.v[i], e, &bad);
		if (fd < 0 && bad.detail == ENOENT)
			continue;
		if (fd >= 0)
			close(fd);
		else
			printable_copy(e->reason, sizeof(e->reason), bad.msg);
		e->failed = failed;
		if (failed && fd >= 0)
			reason_read(dir, e);
		fn(arg, e);
	}
	free(l.v);
	free(e);
	return 0;
}

int
outbox_each(int failed, void (*fn)(void *arg, const struct outbox_entry *e),
    void *arg, struct smimp_err *err)
{
	char dir[PATH_MAX], fdir[PATH_MAX];
	int exists;

	if (outbox_dir(dir, sizeof(dir), 0, &exists, err) != 0)
		return -1;
	if (!exists)
		return 0;
	if (each_in(dir, 0, fn, arg, err) != 0)
		return -1;
	if (!failed)
		return 0;
	if ((size_t)snprintf(fdir, sizeof(fdir), "%s/%s", dir,
	    OUTBOX_FAILED) >= sizeof(fdir))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return dir_check_private(fdir, err) != 0 ? -1 :
	    each_in(fdir, 1, fn, arg, err);
}
