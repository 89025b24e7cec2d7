#define _GNU_SOURCE		/* sync_file_range, F_SETLEASE */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "util.h"
#include "banned.h"

/* What fd_copy moves at a time. */
#define COPY_CHUNK	(64 * 1024)
/* How much is written to a file to sync before its writeback starts. */
#define WRITEBACK_EVERY	(8u * 1024 * 1024)

/*
 * The file this thread writes to be synced at its end, and how much was
 * written to it since its writeback was last started.
 */
static _Thread_local struct {
	int fd;
	size_t since;
} writeback = { -1, 0 };

void
fd_writeback_start(int fd)
{
	writeback.fd = fd;
	writeback.since = 0;
}

void
fd_writeback_stop(int fd)
{
	if (writeback.fd == fd)
		writeback.fd = -1;
}

/*
 * Start writing back what is dirty in the file (not waiting for it),
 * every WRITEBACK_EVERY bytes: the disk works while the rest is made,
 * and the fsync at the end has little left to wait for.
 */
static void
writeback_progress(int fd, size_t len)
{
	if (fd != writeback.fd)
		return;
	writeback.since += len;
	if (writeback.since < WRITEBACK_EVERY)
		return;
	writeback.since = 0;
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int
fd_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	writeback_progress(fd, len);

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fd_copy(int from, int to, const char *to_name, struct smimp_err *err)
{
	unsigned char *buf;
	ssize_t n;
	int ret = -1;

	if (lseek(from, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read spool");
	buf = malloc(COPY_CHUNK);
	if (buf == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (;;) {
		n = read(from, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read spool");
			goto out;
		}
		if (n == 0)
			break;
		if (fd_write_all(to, buf, (size_t)n) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write %s",
			    to_name);
			goto out;
		}
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int
fd_read_full(int fd, void *buf, size_t cap, size_t *got)
{
	unsigned char *p = buf;
	ssize_t n;

	*got = 0;
	while (*got < cap) {
		n = read(fd, p + *got, cap - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/*
 * File systems whose bytes can change behind this kernel's back: FUSE
 * (sshfs and the like: its server decides what a read returns, and
 * what fstat says), 9P, and network and cluster file systems.
 */
static const unsigned long remote_fs[] = {
	0x65735546,	/* FUSE */
	0x01021997,	/* 9P */
	0x00006969,	/* NFS */
	0x0000517b,	/* SMB */
	0xff534d42,	/* CIFS */
	0xfe534d42,	/* SMB2 */
	0x00c36400,	/* Ceph */
	0x5346414f,	/* AFS */
	0x6b414653,	/* AFS (kAFS) */
	0x73757245,	/* Coda */
	0x0bd00bd0,	/* Lustre */
	0x01161970,	/* GFS2 */
	0x7461636f,	/* OCFS2 */
};

int
fd_lease_read(int fd)
{
	struct statfs sf;
	size_t i;

	if (fstatfs(fd, &sf) != 0)
		return -1;
	for (i = 0; i < sizeof(remote_fs) / sizeof(remote_fs[0]); i++)
		if ((unsigned long)sf.f_type == remote_fs[i]) {
			errno = EOPNOTSUPP;
			return -1;
		}
	/* Told by a signal that does nothing, not by SIGIO, which kills. */
	if (fcntl(fd, F_SETSIG, SIGURG) != 0 ||
	    fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
		return -1;
	return 0;
}

int
fd_lease_held(int fd)
{
	return fcntl(fd, F_GETLEASE) == F_RDLCK;
}

void
fd_lease_release(int fd)
{
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
}

int
fsync_dir(const char *dir, struct smimp_err *err)
{
	int fd, ret = -1;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    dir);
	if (fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot sync '%s'", dir);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int
fsync_parent_dir(const char *path, struct smimp_err *err)
{
	char buf[PATH_MAX];

	if (strlen(path) >= sizeof(buf))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	memcpy(buf, path, strlen(path) + 1);
	return fsync_dir(dirname(buf), err);
}

int
file_copy_new(const char *from, const char *path, struct smimp_err *err)
{
	unsigned char *buf = NULL;
	int in = -1, out = -1, ret = -1;
	ssize_t n;

	in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'", from);
		goto out;
	}
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (out < 0) {
		if (errno == EEXIST)
			ret = 1;
		else
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create "
			    "'%s'", path);
		goto out;
	}
	buf = malloc(COPY_CHUNK);
	if (buf == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto fail;
	}
	while ((n = read(in, buf, COPY_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || fd_write_all(out, buf, (size_t)n) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot copy '%s'",
			    from);
			goto fail;
		}
	}
	if (fsync(out) != 0 || close(out) != 0) {
		out = -1;
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", path);
		goto fail;
	}
	out = -1;
	ret = 0;
	goto out;
fail:
	(void)unlink(path);
out:
	if (out >= 0)
		(void)close(out);
	if (in >= 0)
		(void)close(in);
	free(buf);
	return ret;
}

int
name_beside(const char *path, char *tmp, size_t cap,
    int (*make)(const char *, void *), void *arg, struct smimp_err *err)
{
	unsigned char rnd[6];
	char hex[13];
	int r, tries;

	for (tries = 0; tries < 16; tries++) {
		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
		if ((size_t)snprintf(tmp, cap, "%s.tmp.%s", path, hex) >= cap)
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "path too long: '%.80s'", path);
		r = make(tmp, arg);
		if (r >= 0)
			return r;
		if (errno != EEXIST)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot create '%s'", tmp);
	}
	tmp[0] = '\0';
	return smimp_err_set(err, SMIMP_EXIT_FAIL,
	    "cannot create a temporary file beside '%s'", path);
}

static int
create_private(const char *name, void *arg)
{
	(void)arg;
	return open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
}

int
tmpfile_beside(const char *path, char *tmp, size_t cap,
    struct smimp_err *err)
{
	return name_beside(path, tmp, cap, create_private, NULL, err);
}

const char *
file_kind(mode_t mode)
{
	static const struct {
		mode_t type;
		const char *name;
	} kinds[] = {
		{ S_IFREG, "a regular file" },
		{ S_IFDIR, "a directory" },
		{ S_IFCHR, "a character device" },
		{ S_IFBLK, "a block device" },
		{ S_IFIFO, "a FIFO" },
		{ S_IFSOCK, "a socket" },
		{ S_IFLNK, "a symbolic link" },
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if ((mode & S_IFMT) == kinds[i].type)
			return kinds[i].name;
	return "a special file";
}

/*
 * What is at path (follow: through a symbolic link) must be of type want
 * (S_IFREG, S_IFDIR), named what in the refusal: 1 with it in st, 0 when
 * nothing is there, -1 when something else is.
 */
static int
inspect(const char *path, int follow, mode_t want, const char *what,
    struct stat *st, struct smimp_err *err)
{
	if ((follow ? stat(path, st) : lstat(path, st)) != 0)
		return errno == ENOENT ? 0 : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot inspect '%s'", path);
	if ((st->st_mode & S_IFMT) == want)
		return 1;
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is %s, not %s",
	    path, file_kind(st->st_mode), what);
}

int
file_check_regular(const char *path, struct smimp_err *err)
{
	struct stat st;

	return inspect(path, 0, S_IFREG, "a regular file: refusing to "
	    "replace it", &st, err) < 0 ? -1 : 0;
}

int
file_commit(const char *tmp, const char *path, int replace,
    struct smimp_err *err)
{
	if (replace) {
		/* Only a regular file is ever replaced, never a device. */
		if (file_check_regular(path, err) != 0) {
			(void)unlink(tmp);
			return -1;
		}
		if (rename(tmp, path) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot rename onto '%s'", path);
			(void)unlink(tmp);
			return -1;
		}
	} else {
		if (link(tmp, path) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot create '%s'", path);
			(void)unlink(tmp);
			return -1;
		}
		(void)unlink(tmp);
	}
	return fsync_parent_dir(path, err);
}

int
file_stage(const char *path, const void *data, size_t len, mode_t mode,
    char *tmp, size_t cap, struct smimp_err *err)
{
	int fd;

	fd = tmpfile_beside(path, tmp, cap, err);
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) != 0 || fd_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	if (close(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

int
file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, int replace, struct smimp_err *err)
{
	char tmp[PATH_MAX];

	if (!replace && access(path, F_OK) == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "'%s' already exists", path);
	if (file_stage(path, data, len, mode, tmp, sizeof(tmp), err) != 0)
		return -1;
	return file_commit(tmp, path, replace, err);
}

int
fd_read_into(int fd, const char *name, size_t cap, unsigned char *buf,
    size_t *len, struct smimp_err *err)
{
	size_t have = 0;

	for (;;) {
		ssize_t n = read(fd, buf + have, cap + 1 - have);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read '%s'", name);
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > cap)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "'%s' is too large (over %zu bytes)", name, cap);
	}
	buf[have] = '\0';
	*len = have;
	return 0;
}

int
fd_read_all(int fd, const char *name, size_t cap, unsigned char **out,
    size_t *len, struct smimp_err *err)
{
	unsigned char *buf = NULL;
	size_t bufcap = 4096, have = 0;

	/* Grow as data arrives, so a small input costs little. */
	for (;;) {
		unsigned char *nbuf;
		ssize_t n;

		if (have + 1 >= bufcap || buf == NULL) {
			if (buf != NULL)
				bufcap *= 2;
			if (bufcap > cap + 2)
				bufcap = cap + 2;
			nbuf = realloc(buf, bufcap);
			if (nbuf == NULL) {
				free(buf);
				return smimp_err_sys(err, SMIMP_EXIT_FAIL,
				    "cannot read '%s'", name);
			}
			buf = nbuf;
		}
		n = read(fd, buf + have, bufcap - 1 - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read '%s'", name);
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > cap) {
			free(buf);
			return smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "'%s' is too large (over %zu bytes)", name, cap);
		}
	}
	buf[have] = '\0';
	*out = buf;
	*len = have;
	return 0;
}

int
file_read_all(const char *path, size_t cap, unsigned char **out,
    size_t *len, struct smimp_err *err)
{
	int fd, ret;

	if (strcmp(path, "-") == 0)
		return fd_read_all(STDIN_FILENO, "stdin", cap, out, len, err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	ret = fd_read_all(fd, path, cap, out, len, err);
	close(fd);
	return ret;
}

/*
 * The user's (or root's: root can do anything anyway) and writable by
 * no one else, or another user could swap it for his own.
 */
static int
check_owned(const char *path, const struct stat *st, struct smimp_err *err)
{
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' belongs to "
		    "uid %u, not to you: refusing to use it", path,
		    (unsigned)st->st_uid);
	if ((st->st_mode & 022) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is writable "
		    "by group or others (mode %03o); run chmod go-w '%s'",
		    path, (unsigned)(st->st_mode & 0777), path);
	return 0;
}

int
fd_check_owned(int fd, const char *path, struct smimp_err *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'",
		    path);
	return check_owned(path, &st, err);
}

/* Open, creating exclusively if asked; never blocking, on no FIFO. */
static int
open_nonblock(const char *path, int flags, unsigned how)
{
	int fd, tries;

	flags |= O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (how & FILE_NOFOLLOW)
		flags |= O_NOFOLLOW;
	for (tries = 0; tries < 8; tries++) {
		/* O_EXCL also refuses a symbolic link in the way. */
		if (how & FILE_CREATE) {
			fd = open(path, flags | O_CREAT | O_EXCL, 0600);
			if (fd >= 0 || errno != EEXIST)
				return fd;
		}
		fd = open(path, flags);
		/* Removed since we found it there: create it after all. */
		if (fd >= 0 || errno != ENOENT || !(how & FILE_CREATE))
			return fd;
	}
	return -1;
}

int
file_open_input(const char *path, struct smimp_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	if (fstat(fd, &st) != 0)
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'", path);
	else if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'", path);
	} else
		return fd;
	close(fd);
	return -1;
}

int
file_open(const char *path, int flags, unsigned how, struct smimp_err *err)
{
	struct stat st;
	int fd, fl;

	fd = open_nonblock(path, flags, how);
	if (fd < 0 && errno == ELOOP && (how & FILE_NOFOLLOW))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is a symbolic "
		    "link: refusing to follow it", path);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	if (fstat(fd, &st) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is %s, not a regular "
		    "file: refusing to use it", path, file_kind(st.st_mode));
		goto fail;
	}
	if ((how & FILE_PRIVATE) && (st.st_mode & 077) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "'%s' is accessible by others (mode %03o); run chmod 600 "
		    "'%s'", path, (unsigned)(st.st_mode & 0777), path);
		goto fail;
	}
	if ((how & FILE_OWNED) && check_owned(path, &st, err) != 0)
		goto fail;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'", path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
open_private(const char *path, struct smimp_err *err)
{
	return file_open(path, O_RDONLY, FILE_PRIVATE, err);
}

int
file_read_checked(const char *path, unsigned how, size_t cap,
    unsigned char **out, size_t *len, struct smimp_err *err)
{
	int fd, ret;

	fd = file_open(path, O_RDONLY, how, err);
	if (fd < 0)
		return -1;
	ret = fd_read_all(fd, path, cap, out, len, err);
	close(fd);
	return ret;
}

int
dir_check_owned(const char *path, struct smimp_err *err)
{
	struct stat st;
	int r = inspect(path, 1, S_IFDIR, "a directory", &st, err);

	return r <= 0 ? r : check_owned(path, &st, err);
}

int
dir_check_private(const char *path, struct smimp_err *err)
{
	struct stat st;
	int r = inspect(path, 0, S_IFDIR, "a directory: refusing to use it",
	    &st, err);

	return r <= 0 ? r : check_owned(path, &st, err);
}

int
mkdir_p(const char *path, mode_t mode, struct smimp_err *err)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "bad directory '%s'",
		    path);
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot create directory '%s'", buf);
		buf[i] = path[i];
	}
	return 0;
}

int
smimp_home(char *out, size_t cap, struct smimp_err *err)
{
	const char *home = getenv("SMIMP_HOME");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	int n;

	if (home != NULL && home[0] != '\0')
		n = snprintf(out, cap, "%s", home);
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(out, cap, "%s/smimp", xdg);
	else if ((home = getenv("HOME")) != NULL && home[0] != '\0')
		n = snprintf(out, cap, "%s/.config/smimp", home);
	else
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot find the smimp home: set SMIMP_HOME or HOME");
	if (n < 0 || (size_t)n >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	return dir_check_owned(out, err);
}

int
client_config_path(char *out, size_t cap, int *named, struct smimp_err *err)
{
	const char *cfg = getenv("SMIMP_CONFIG");
	char home[PATH_MAX];
	int n;

	*named = cfg != NULL && cfg[0] != '\0';
	if (*named)
		n = snprintf(out, cap, "%s", cfg);
	else if (smimp_home(home, sizeof(home), err) != 0)
		return -1;
	else
		n = snprintf(out, cap, "%s/config", home);
	if (n < 0 || (size_t)n >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, *named ?
		    "SMIMP_CONFIG is too long" : "SMIMP_HOME is too long");
	return 0;
}

int
client_config_known(const char *name)
{
	static const char *const names[] = {
		"resolve", "cacert", "allow-http", "refresh-interval",
		"identity",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

int
client_config_read(char *path, size_t cap, unsigned char **buf,
    size_t *len, struct smimp_err *err)
{
	unsigned how = FILE_OWNED;	/* a named one may be a symlink */
	int named;

	if (client_config_path(path, cap, &named, err) != 0)
		return -1;
	if (!named) {
		if (access(path, F_OK) != 0)	/* no config file: fine */
			return 0;
		how |= FILE_NOFOLLOW;
	}
	if (file_read_checked(path, how, 64 * 1024, buf, len, err) != 0)
		return -1;
	if (text_nul_check(path, *buf, *len, err) != 0) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	return 1;
}

int
text_nul_check(const char *path, const void *text, size_t len,
    struct smimp_err *err)
{
	const unsigned char *t = text, *nul = memchr(t, '\0', len);
	size_t line = 1;

	if (nul == NULL)
		return 0;
	for (; t < nul; t++)
		line += *t == '\n';
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: a NUL byte in "
	    "the line", path, line);
}

#define LOCK_WAIT	10	/* seconds a writer waits for a lock */
#define LOCK_WAIT_MAX	3600

/* How long a writer waits for a lock: SMIMP_LOCK_TIMEOUT, in seconds. */
static int
lock_timeout(unsigned *secs, struct smimp_err *err)
{
	const char *v = getenv("SMIMP_LOCK_TIMEOUT");
	uint64_t n;

	*secs = LOCK_WAIT;
	if (v == NULL || v[0] == '\0')
		return 0;
	if (parse_u64(v, strlen(v), &n) != 0 || n > LOCK_WAIT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "SMIMP_LOCK_TIMEOUT "
		    "is not a number of seconds from 0 to %d", LOCK_WAIT_MAX);
	*secs = (unsigned)n;
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
file_lock_wait(int fd, const char *path, const char *what,
    struct smimp_err *err)
{
	struct timespec nap;
	int64_t deadline, now;
	long delay = 1;		/* ms, doubled up to 100 */
	unsigned secs;

	if (lock_timeout(&secs, err) != 0)
		return -1;
	deadline = mono_ms() + (int64_t)secs * 1000;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot lock '%s'", path);
		now = mono_ms();
		if (now >= deadline)
			return smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "%s is "
			    "locked: another process held '%s' for %u s, try "
			    "again later", what, path, secs);
		if (delay > deadline - now)
			delay = (long)(deadline - now);
		nap.tv_sec = 0;
		nap.tv_nsec = delay * 1000000;
		(void)nanosleep(&nap, NULL);
		if (delay < 100)
			delay = delay * 2 < 100 ? delay * 2 : 100;
	}
}

int
file_lock_open(const char *path, const char *what, struct smimp_err *err)
{
	int fd = file_open(path, O_RDWR, FILE_CREATE | FILE_NOFOLLOW |
	    FILE_OWNED, err);

	if (fd >= 0 && file_lock_wait(fd, path, what, err) != 0) {
		(void)close(fd);
		fd = -1;
	}
	return fd;
}

/* flock(fd) without waiting: 1 taken, 0 held elsewhere (fd closed), -1. */
static int
flock_try(int *fd, const char *path, struct smimp_err *err)
{
	int r;

	for (;;) {
		if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
			return 1;
		if (errno == EWOULDBLOCK)
			r = 0;
		else if (errno != EINTR)
			r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot lock "
			    "'%s'", path);
		else
			continue;
		break;
	}
	(void)close(*fd);
	*fd = -1;
	return r;
}

int
lock_try(const char *dir, const char *name, int *fd, struct smimp_err *err)
{
	char path[PATH_MAX];

	*fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	*fd = file_open(path, O_RDWR, FILE_CREATE | FILE_NOFOLLOW |
	    FILE_OWNED, err);
	if (*fd < 0)
		return -1;
	return flock_try(fd, path, err);
}

int
lock_dir_try(const char *dir, int *fd, struct smimp_err *err)
{
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    dir);
	return flock_try(fd, dir, err);
}
