/*
 * parts.c - sealing and opening messages with parts (parts.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fileio.h"
#include "outfile.h"
#include "parts.h"
#include "banned.h"

#define CHUNK		(64 * 1024)
/* "STEM (N).EXT" is tried up to this N. */
#define NUMBERED_MAX	999

/* ---- sealing ---- */

/* Each part is cleared as it is added: not PART_MAX of them for none. */
void
parts_list_init(struct parts_list *l)
{
	l->n = 0;
}

void
parts_list_release(struct parts_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->p[i].fd >= 0)
			close(l->p[i].fd);
	l->n = 0;
}

/* Room, a name and a type a sealer may write: into the next part. */
static int
part_fields(struct parts_list *l, const char *name, const char *type,
    struct smimp_err *err)
{
	struct msg_part *p = &l->p[l->n];
	const char *why = part_name_problem(name, strlen(name));
	size_t i;

	if (l->n == PART_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many "
		    "attachments (at most %d)", PART_MAX);
	if (why != NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "cannot attach "
		    "'%s': its name %s", name, why);
	if (type == NULL)
		type = part_type_guess(name);
	if (!part_type_valid(type, strlen(type)))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "invalid "
		    "attachment type '%.80s': type/subtype in lower case, "
		    "then ;name=value parameters, no space, at most %d bytes",
		    type, PART_TYPE_MAX);
	for (i = 0; i < l->n; i++)
		if (strcmp(l->p[i].name, name) == 0)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "two "
			    "attachments named '%s'", name);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	(void)snprintf(p->kind, sizeof(p->kind), "%s", PART_ATTACHMENT);
	p->known = 1;
	(void)snprintf(p->name, sizeof(p->name), "%s", name);
	(void)snprintf(p->type, sizeof(p->type), "%s", type);
	return 0;
}

/* The bytes of fd from where it stands; a regular file's only. */
static int
size_from(int fd, const char *name, uint64_t *size, struct smimp_err *err)
{
	struct stat st;
	off_t at;

	if (fstat(fd, &st) != 0 || (at = lseek(fd, 0, SEEK_CUR)) < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "attachment '%s'", name);
	*size = st.st_size > at ? (uint64_t)(st.st_size - at) : 0;
	if (*size > PART_SIZE_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the attachment "
		    "'%s' is larger than 2^50 bytes", name);
	return 0;
}

/* Copy the rest of fd (a pipe) into a new spool: its fd, or -1. */
static int
spool_rest(int fd, const char *name, uint64_t *size, struct smimp_err *err)
{
	unsigned char *buf = malloc(CHUNK);
	int sp = -1;
	size_t got;

	*size = 0;
	if (buf == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return -1;
	}
	sp = spool_open(err);
	while (sp >= 0) {
		if (fd_read_full(fd, buf, CHUNK, &got) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
			    "attachment '%s'", name);
			goto fail;
		}
		if (got == 0)
			break;
		*size += got;
		if (*size > PART_SIZE_MAX) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "the attachment "
			    "'%s' is larger than 2^50 bytes", name);
			goto fail;
		}
		if (fd_write_all(sp, buf, got) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool the "
			    "attachment '%s'", name);
			goto fail;
		}
	}
	if (sp >= 0 && lseek(sp, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read spool");
		goto fail;
	}
	free(buf);
	return sp;
fail:
	free(buf);
	close(sp);
	return -1;
}

int
parts_add_fd(struct parts_list *l, int fd, const char *name,
    const char *type, struct smimp_err *err)
{
	struct msg_part *p = &l->p[l->n];
	struct stat st;
	int sp;

	if (part_fields(l, name, type, err) != 0) {
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "attachment '%s'", name);
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		if (size_from(fd, name, &p->size, err) != 0) {
			close(fd);
			return -1;
		}
		p->fd = fd;
	} else {
		sp = spool_rest(fd, name, &p->size, err);
		close(fd);
		if (sp < 0)
			return -1;
		p->fd = sp;
	}
	l->n++;
	return 0;
}

int
parts_add_file(struct parts_list *l, const char *path, const char *type,
    struct smimp_err *err)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;
	int fd;

	/* Said before the file is opened: the name is the user's. */
	if (part_fields(l, name, type, err) != 0)
		return -1;
	fd = file_open(path, O_RDONLY, 0, err);
	if (fd < 0)
		return -1;
	return parts_add_fd(l, fd, name, type, err);
}

/* ---- opening ---- */

void
parts_spool_init(struct parts_spool *sp, int dirfd, int body_fd, int keep)
{
	size_t i;

	memset(sp, 0, sizeof(*sp));
	sp->dirfd = dirfd;
	sp->body_fd = body_fd;
	sp->keep = keep;
	for (i = 0; i < PART_MAX; i++)
		sp->fds[i] = -1;
}

void
parts_spool_release(struct parts_spool *sp)
{
	size_t i;

	for (i = 0; i < PART_MAX; i++)
		if (sp->fds[i] >= 0)
			close(sp->fds[i]);
	for (i = 0; i < PART_MAX; i++)
		sp->fds[i] = -1;
}

/* A new attachment: a file with no name to hold it, or none. */
static int
spool_begin(void *arg, size_t i, const struct msg_part *part,
    struct smimp_err *err)
{
	struct parts_spool *sp = arg;
	int fd = -1;

	if (!sp->keep || !part->known || i >= PART_MAX)
		return 0;
	if (sp->dirfd >= 0) {
		fd = unnamed_open_at(sp->dirfd, ".");
		if (fd < 0 && errno != EOPNOTSUPP)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot "
			    "create a file for an attachment");
	}
	if (fd < 0) {
		fd = spool_open(err);
		if (fd < 0)
			return -1;
		sp->in_tmpdir[i] = 1;
	}
	/* Whatever the umask: 0600, as the man page says. */
	if (fchmod(fd, 0600) != 0) {
		close(fd);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create a "
		    "file for an attachment");
	}
	sp->fds[i] = fd;
	return 0;
}

static int
spool_data(void *arg, size_t i, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	struct parts_spool *sp = arg;

	if (i >= PART_MAX || sp->fds[i] < 0)
		return 0;
	if (fd_write_all(sp->fds[i], buf, len) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write an "
		    "attachment");
	return 0;
}

static int
spool_body(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	struct parts_spool *sp = arg;

	if (sp->body_fd >= 0 && fd_write_all(sp->body_fd, buf, len) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write %s",
		    sp->body_name != NULL ? sp->body_name : "the body");
	return 0;
}

int
parts_open(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int kept_fd, const struct trust_store *ts,
    struct parts_spool *sp, struct msg_meta *meta, struct smimp_err *err)
{
	struct msg_sink sink = { spool_begin, spool_data, NULL, spool_body,
	    sp, sp->replay };

	return message_open_kept(me, mine, in_fd, kept_fd, &sink, ts, meta,
	    err);
}

/* Candidate n for part p's name: its own (0), or "STEM (N).EXT". */
static void
numbered(const struct msg_part *p, int n, char *out, size_t cap)
{
	const char *dot = strrchr(p->name, '.');
	size_t stem = dot != NULL ? (size_t)(dot - p->name) :
	    strlen(p->name);

	if (n == 0)
		(void)snprintf(out, cap, "%s", p->name);
	else
		(void)snprintf(out, cap, "%.*s (%d)%s", (int)stem, p->name, n,
		    dot != NULL ? dot : "");
}

/*
 * A file of its own in dirfd, named name: the unnamed spool linked in,
 * or, for one in TMPDIR, a new file created there (O_EXCL, never
 * following a link) and the spool copied into it.  -1 with errno
 * EEXIST when name is taken.
 */
static int
place(int fd, int in_tmpdir, int dirfd, const char *name,
    struct smimp_err *err)
{
	int out;

	if (!in_tmpdir) {
		if (unnamed_link_at(fd, dirfd, name) == 0)
			return 0;
		return errno == EEXIST ? -1 : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot create '%s'", name);
	}
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (out < 0)
		return errno == EEXIST ? -1 : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot create '%s'", name);
	if (fd_copy(fd, out, name, err) != 0 || fchmod(out, 0600) != 0 ||
	    fsync(out) != 0) {
		if (err->code == SMIMP_EXIT_OK)
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'",
			    name);
		close(out);
		(void)unlinkat(dirfd, name, 0);
		return -1;
	}
	if (close(out) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", name);
		(void)unlinkat(dirfd, name, 0);
		return -1;
	}
	return 0;
}

/* Name part i's spool in dirfd; its path (dir_name/NAME) into meta. */
static int
extract_one(struct parts_spool *sp, struct msg_part *p, size_t i, int dirfd,
    const char *dir_name, struct smimp_err *err)
{
	char name[PART_NAME_MAX + 16];
	size_t dlen = strlen(dir_name);
	int n;

	if (!sp->in_tmpdir[i] && fsync(sp->fds[i]) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write the "
		    "attachment '%s'", p->name);
	for (n = 0; n <= NUMBERED_MAX; n++) {
		numbered(p, n, name, sizeof(name));
		smimp_err_clear(err);
		if (place(sp->fds[i], sp->in_tmpdir[i], dirfd, name, err) == 0)
			break;
		if (err->code != SMIMP_EXIT_OK)
			return -1;
	}
	if (n > NUMBERED_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no free name for "
		    "the attachment '%s' in '%s'", p->name, dir_name);
	p->path = malloc(dlen + 1 + strlen(name) + 1);
	if (p->path == NULL) {
		(void)unlinkat(dirfd, name, 0);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	(void)snprintf(p->path, dlen + 1 + strlen(name) + 1, "%s%s%s",
	    dir_name, dlen > 0 && dir_name[dlen - 1] == '/' ? "" : "/", name);
	return 0;
}

/* Take back the names given so far, on a failure of a later one. */
static void
unextract(struct msg_meta *meta, int dirfd)
{
	const char *base;
	size_t i;

	for (i = 0; i < meta->nparts; i++) {
		if (meta->parts[i].path == NULL)
			continue;
		base = strrchr(meta->parts[i].path, '/') + 1;
		(void)unlinkat(dirfd, base, 0);
		free(meta->parts[i].path);
		meta->parts[i].path = NULL;
	}
}

int
parts_extract(struct parts_spool *sp, struct msg_meta *meta, int dirfd,
    const char *dir_name, struct smimp_err *err)
{
	sigset_t all, old;
	size_t i;
	int ret = -1;

	/* A signal now would leave some names given and others not. */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < meta->nparts && i < PART_MAX; i++)
		if (sp->fds[i] >= 0 && extract_one(sp, &meta->parts[i], i,
		    dirfd, dir_name, err) != 0)
			goto out;
	if (fsync(dirfd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot sync '%s'",
		    dir_name);
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		unextract(meta, dirfd);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* Hand len bytes of fd, from its start, to r in chunks. */
static int
hand_over(int fd, uint64_t len, const struct parts_reader *r,
    unsigned char *buf, struct smimp_err *err)
{
	size_t want, got;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read spool");
	while (len > 0) {
		want = len < CHUNK ? (size_t)len : CHUNK;
		if (fd_read_full(fd, buf, want, &got) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read spool");
		if (got != want)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "the spool "
			    "changed while it was read");
		if (r->data != NULL && r->data(r->arg, buf, got, err) != 0)
			return -1;
		len -= got;
	}
	return 0;
}

/* begin, the bytes, end: one part (NULL: the body) to r. */
static int
hand_part(const struct msg_part *p, int fd, uint64_t len,
    const struct parts_reader *r, unsigned char *buf, struct smimp_err *err)
{
	if ((r->begin != NULL && r->begin(r->arg, p, err) != 0) ||
	    hand_over(fd, len, r, buf, err) != 0 ||
	    (r->end != NULL && r->end(r->arg, err) != 0))
		return -1;
	return 0;
}

int
parts_each(const struct parts_spool *sp, const struct msg_meta *meta,
    const struct parts_reader *r, struct smimp_err *err)
{
	unsigned char *buf = malloc(CHUNK);
	size_t i;
	int ret = -1;

	if (buf == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (sp->body_fd >= 0 && hand_part(NULL, sp->body_fd, meta->body_len,
	    r, buf, err) != 0)
		goto out;
	for (i = 0; i < meta->nparts && i < PART_MAX; i++)
		if (sp->fds[i] >= 0 && hand_part(&meta->parts[i], sp->fds[i],
		    meta->parts[i].size, r, buf, err) != 0)
			goto out;
	ret = 0;
out:
	free(buf);
	return ret;
}
