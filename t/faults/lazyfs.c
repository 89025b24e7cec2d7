/*
 * lazyfs - a file system that can lose power, for the fault suites (as
 * LazyFS does for Jepsen): a FUSE pass-through to a backing directory
 * that keeps what is written to a file in memory until the file is
 * fsynced (fsync or fdatasync through any of its names or descriptors),
 * and drops all of it on command.  Reads see what was written, synced
 * or not, as a page cache would.  What changes names (create, rename,
 * link, unlink, mkdir, truncate, chmod) goes to the backing directory
 * at once: after a drop a file keeps its name but only its synced
 * bytes, as on a journaling file system that orders metadata but not
 * data, so a file renamed into place unsynced comes back empty or
 * short.
 *
 *	lazyfs BACKING MOUNTPOINT [FUSE OPTIONS]
 *
 * Commands are written to the file .lazyfs at the root of the mount
 * (it lists nowhere): "drop" forgets every unsynced byte (power lost:
 * kill the programs that wrote first), "sync" writes them all down.
 * The write returns once it is done.
 *
 * Single-threaded (FUSE's -s); built on its own by the Makefile into
 * BUILD/t/lazyfs when libfuse3 is there.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <fuse.h>

#define CONTROL		"/.lazyfs"
#define CONTROL_FH	UINT64_MAX

/* Bytes written at off and not yet synced. */
struct extent {
	off_t off;
	size_t len;
	char *data;
	struct extent *next;
};

/* A file with unsynced bytes, or open: by its backing inode. */
struct node {
	dev_t dev;
	ino_t ino;
	int fd;			/* its own, to write down at a sync */
	int opens;
	struct extent *head;	/* oldest first */
	struct node *next;
};

static int root = -1;
static struct node *nodes;

/* A path of the mount as one relative to the backing directory. */
static const char *
rel(const char *path)
{
	return path[1] == '\0' ? "." : path + 1;
}

static struct node *
node_find(dev_t dev, ino_t ino)
{
	struct node *n;

	for (n = nodes; n != NULL; n = n->next)
		if (n->dev == dev && n->ino == ino)
			return n;
	return NULL;
}

static struct node *
node_of_fd(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 ? node_find(sb.st_dev, sb.st_ino) : NULL;
}

static void
extents_free(struct node *n)
{
	struct extent *e, *next;

	for (e = n->head; e != NULL; e = next) {
		next = e->next;
		free(e->data);
		free(e);
	}
	n->head = NULL;
}

/* A node gone once nothing is open and nothing pending. */
static void
node_maybe_free(struct node *n)
{
	struct node **p;

	if (n->opens > 0 || n->head != NULL)
		return;
	for (p = &nodes; *p != NULL; p = &(*p)->next)
		if (*p == n) {
			*p = n->next;
			break;
		}
	(void)close(n->fd);
	free(n);
}

static struct node *
node_get(int fd)
{
	struct stat sb;
	struct node *n;

	if (fstat(fd, &sb) != 0)
		return NULL;
	n = node_find(sb.st_dev, sb.st_ino);
	if (n != NULL)
		return n;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->fd = dup(fd);
	if (n->fd < 0) {
		free(n);
		return NULL;
	}
	n->dev = sb.st_dev;
	n->ino = sb.st_ino;
	n->next = nodes;
	nodes = n;
	return n;
}

/* Where the pending bytes end (0 for none). */
static off_t
pending_end(const struct node *n)
{
	const struct extent *e;
	off_t end = 0;

	for (e = n != NULL ? n->head : NULL; e != NULL; e = e->next)
		if (e->off + (off_t)e->len > end)
			end = e->off + (off_t)e->len;
	return end;
}

/* Cut pending bytes at size (a truncation). */
static void
pending_cut(struct node *n, off_t size)
{
	struct extent **p = &n->head, *e;

	while ((e = *p) != NULL) {
		if (e->off >= size) {
			*p = e->next;
			free(e->data);
			free(e);
			continue;
		}
		if (e->off + (off_t)e->len > size)
			e->len = (size_t)(size - e->off);
		p = &e->next;
	}
}

/* Write the pending bytes down and sync: 0 or -errno. */
static int
pending_sync(struct node *n, int datasync)
{
	struct extent *e;
	size_t done;
	ssize_t w;

	for (e = n->head; e != NULL; e = e->next)
		for (done = 0; done < e->len; done += (size_t)w) {
			w = pwrite(n->fd, e->data + done, e->len - done,
			    e->off + (off_t)done);
			if (w < 0)
				return -errno;
		}
	if ((datasync ? fdatasync(n->fd) : fsync(n->fd)) != 0)
		return -errno;
	extents_free(n);
	return 0;
}

static void
control(const char *cmd, size_t len)
{
	struct node *n, *next;

	for (n = nodes; n != NULL; n = next) {
		next = n->next;
		if (len >= 4 && strncmp(cmd, "drop", 4) == 0)
			extents_free(n);
		else if (len >= 4 && strncmp(cmd, "sync", 4) == 0)
			(void)pending_sync(n, 0);
		node_maybe_free(n);
	}
}

static void *
lz_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->hard_remove = 1;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	return NULL;
}

static int
lz_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct node *n;
	off_t end;

	if (strcmp(path, CONTROL) == 0) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		return 0;
	}
	if (fi != NULL && fi->fh != CONTROL_FH ? fstat((int)fi->fh, st) :
	    fstatat(root, rel(path), st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	n = node_find(st->st_dev, st->st_ino);
	end = pending_end(n);
	if (end > st->st_size)
		st->st_size = end;
	return 0;
}

static int
lz_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(root, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int
lz_mkdir(const char *path, mode_t mode)
{
	return mkdirat(root, rel(path), mode) == 0 ? 0 : -errno;
}

static int
lz_unlink(const char *path)
{
	if (strcmp(path, CONTROL) == 0)
		return -EPERM;
	return unlinkat(root, rel(path), 0) == 0 ? 0 : -errno;
}

static int
lz_rmdir(const char *path)
{
	return unlinkat(root, rel(path), AT_REMOVEDIR) == 0 ? 0 : -errno;
}

static int
lz_symlink(const char *to, const char *path)
{
	return symlinkat(to, root, rel(path)) == 0 ? 0 : -errno;
}

static int
lz_rename(const char *from, const char *to, unsigned int flags)
{
	return renameat2(root, rel(from), root, rel(to), flags) == 0 ? 0 :
	    -errno;
}

static int
lz_link(const char *from, const char *to)
{
	return linkat(root, rel(from), root, rel(to), 0) == 0 ? 0 : -errno;
}

static int
lz_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fi != NULL && fi->fh != CONTROL_FH)
		return fchmod((int)fi->fh, mode) == 0 ? 0 : -errno;
	return fchmodat(root, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int
lz_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	if (fi != NULL && fi->fh != CONTROL_FH)
		return fchown((int)fi->fh, uid, gid) == 0 ? 0 : -errno;
	return fchownat(root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ?
	    0 : -errno;
}

static int
lz_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct node *n;
	int fd, r;

	if (strcmp(path, CONTROL) == 0)
		return 0;
	fd = fi != NULL ? (int)fi->fh : openat(root, rel(path),
	    O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = ftruncate(fd, size) == 0 ? 0 : -errno;
	n = node_of_fd(fd);
	if (r == 0 && n != NULL) {
		pending_cut(n, size);
		node_maybe_free(n);
	}
	if (fi == NULL)
		(void)close(fd);
	return r;
}

/* A backing descriptor for fi, its node counted open. */
static int
opened(int fd, struct fuse_file_info *fi)
{
	struct node *n;

	if (fd < 0)
		return -errno;
	n = node_get(fd);
	if (n == NULL) {
		(void)close(fd);
		return -ENOMEM;
	}
	n->opens++;
	if (fi->flags & O_TRUNC) {
		pending_cut(n, 0);
		(void)ftruncate(fd, 0);
	}
	fi->fh = (uint64_t)fd;
	return 0;
}

/* Flags for the backing file: readable always, for reads under writes. */
static int
backing_flags(int flags)
{
	int acc = (flags & O_ACCMODE) == O_RDONLY ? O_RDONLY : O_RDWR;

	return acc | (flags & (O_CREAT | O_EXCL | O_NOFOLLOW | O_DIRECTORY)) |
	    O_CLOEXEC;
}

static int
lz_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		fi->fh = CONTROL_FH;
		fi->direct_io = 1;
		return 0;
	}
	return opened(openat(root, rel(path), backing_flags(fi->flags)), fi);
}

static int
lz_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0)
		return lz_open(path, fi);
	return opened(openat(root, rel(path), backing_flags(fi->flags) |
	    O_CREAT, mode), fi);
}

static int
lz_read(const char *path, char *buf, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct extent *e;
	struct node *n;
	struct stat sb;
	off_t end, from, to;
	ssize_t got;
	size_t have = 0;

	(void)path;
	if (fi->fh == CONTROL_FH)
		return 0;
	if (fstat((int)fi->fh, &sb) != 0)
		return -errno;
	n = node_find(sb.st_dev, sb.st_ino);
	end = sb.st_size > pending_end(n) ? sb.st_size : pending_end(n);
	if (off >= end)
		return 0;
	if ((off_t)size > end - off)
		size = (size_t)(end - off);
	while (have < size) {
		got = pread((int)fi->fh, buf + have, size - have,
		    off + (off_t)have);
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		have += (size_t)got;
	}
	memset(buf + have, 0, size - have);
	for (e = n != NULL ? n->head : NULL; e != NULL; e = e->next) {
		from = e->off > off ? e->off : off;
		to = e->off + (off_t)e->len < off + (off_t)size ?
		    e->off + (off_t)e->len : off + (off_t)size;
		if (from < to)
			memcpy(buf + (from - off), e->data + (from - e->off),
			    (size_t)(to - from));
	}
	return (int)size;
}

static int
lz_write(const char *path, const char *buf, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct extent *e, **p;
	struct node *n;

	(void)path;
	if (fi->fh == CONTROL_FH) {
		control(buf, size);
		return (int)size;
	}
	n = node_get((int)fi->fh);
	e = calloc(1, sizeof(*e));
	if (n == NULL || e == NULL || (e->data = malloc(size + 1)) == NULL) {
		free(e);
		return -ENOMEM;
	}
	memcpy(e->data, buf, size);
	e->off = off;
	e->len = size;
	/* Older extents this one covers whole are of no more use. */
	for (p = &n->head; *p != NULL;) {
		struct extent *o = *p;

		if (o->off >= off && o->off + (off_t)o->len <= off +
		    (off_t)size) {
			*p = o->next;
			free(o->data);
			free(o);
		} else
			p = &o->next;
	}
	*p = e;
	return (int)size;
}

static int
lz_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fstatvfs(root, st) == 0 ? 0 : -errno;
}

static int
lz_release(const char *path, struct fuse_file_info *fi)
{
	struct node *n;

	(void)path;
	if (fi->fh == CONTROL_FH)
		return 0;
	n = node_of_fd((int)fi->fh);
	if (n != NULL) {
		n->opens--;
		node_maybe_free(n);
	}
	(void)close((int)fi->fh);
	return 0;
}

static int
lz_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct node *n;
	int r;

	(void)path;
	if (fi->fh == CONTROL_FH)
		return 0;
	n = node_of_fd((int)fi->fh);
	if (n == NULL)
		return (datasync ? fdatasync((int)fi->fh) :
		    fsync((int)fi->fh)) == 0 ? 0 : -errno;
	r = pending_sync(n, datasync);
	node_maybe_free(n);
	return r;
}

static int
lz_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dirent *de;
	DIR *d;
	int fd;

	(void)off;
	(void)fi;
	(void)flags;
	fd = openat(root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			(void)close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL)
		if (fill(buf, de->d_name, NULL, 0, 0) != 0)
			break;
	(void)closedir(d);
	return 0;
}

static int
lz_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd, r;

	(void)datasync;
	(void)fi;
	fd = openat(root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = fsync(fd) == 0 ? 0 : -errno;
	(void)close(fd);
	return r;
}

static int
lz_access(const char *path, int mask)
{
	if (strcmp(path, CONTROL) == 0)
		return 0;
	return faccessat(root, rel(path), mask, AT_SYMLINK_NOFOLLOW) == 0 ? 0 :
	    -errno;
}

static int
lz_utimens(const char *path, const struct timespec tv[2],
    struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0)
		return 0;
	if (fi != NULL)
		return futimens((int)fi->fh, tv) == 0 ? 0 : -errno;
	return utimensat(root, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 :
	    -errno;
}

static const struct fuse_operations ops = {
	.init = lz_init,
	.getattr = lz_getattr,
	.readlink = lz_readlink,
	.mkdir = lz_mkdir,
	.unlink = lz_unlink,
	.rmdir = lz_rmdir,
	.symlink = lz_symlink,
	.rename = lz_rename,
	.link = lz_link,
	.chmod = lz_chmod,
	.chown = lz_chown,
	.truncate = lz_truncate,
	.open = lz_open,
	.create = lz_create,
	.read = lz_read,
	.write = lz_write,
	.statfs = lz_statfs,
	.release = lz_release,
	.fsync = lz_fsync,
	.readdir = lz_readdir,
	.fsyncdir = lz_fsyncdir,
	.access = lz_access,
	.utimens = lz_utimens,
};

int
main(int argc, char *argv[])
{
	char *args[64];
	int i, n = 0;

	if (argc < 3 || argc > 60) {
		fprintf(stderr, "usage: lazyfs BACKING MOUNTPOINT "
		    "[FUSE OPTIONS]\n");
		return 2;
	}
	root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		perror(argv[1]);
		return 1;
	}
	args[n++] = argv[0];
	args[n++] = argv[2];
	args[n++] = "-s";
	args[n++] = "-f";
	for (i = 3; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	return fuse_main(n, args, &ops, NULL);
}
