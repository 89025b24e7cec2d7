/*
 * outfile.c - a command's output file (see outfile.h).
 */
#define _GNU_SOURCE		/* O_TMPFILE, AT_EMPTY_PATH */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fileio.h"
#include "outfile.h"
#include "banned.h"

/* The directory of path, into dir (PATH_MAX bytes). */
static void
dir_of(const char *path, char *dir)
{
	char buf[PATH_MAX];
	const char *d;

	memcpy(buf, path, strlen(path) + 1);
	d = dirname(buf);
	memmove(dir, d, strlen(d) + 1);
}

/* An unnamed file in dir, or -1 (errno EOPNOTSUPP: the fs has none). */
static int
open_unnamed(const char *dir)
{
	return unnamed_open_at(AT_FDCWD, dir);
}

int
spool_open(struct smimp_err *err)
{
	const char *dir = getenv("TMPDIR");
	char tmp[PATH_MAX];
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	fd = open_unnamed(dir);
	if (fd >= 0 || errno != EOPNOTSUPP) {
		if (fd < 0)
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create a "
			    "spool file in '%s'", dir);
		return fd;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/smimp.XXXXXX", dir) >=
	    sizeof(tmp))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "TMPDIR too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot create a spool file in '%s'", dir);
	(void)unlink(tmp);	/* empty still: nothing was ever under it */
	return fd;
}

const char *
outfile_label(const struct outfile *of, char *buf, size_t cap)
{
	if (of->kind == OUTFILE_STDOUT)
		return "standard output";
	(void)snprintf(buf, cap, "'%s'", of->path);
	return buf;
}

int
outfile_open(struct outfile *of, const char *path, struct smimp_err *err)
{
	char dir[PATH_MAX];
	struct stat st;

	memset(of, 0, sizeof(*of));
	of->fd = -1;
	if (path == NULL || strcmp(path, "-") == 0) {
		of->kind = OUTFILE_STDOUT;
		of->fd = STDOUT_FILENO;
		/* A file: written back as it grows, as OUT is (fileio.h). */
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode))
			fd_writeback_start(STDOUT_FILENO);
		return 0;
	}
	/* Refused now, not at the commit, after all the work. */
	if (path[0] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the output file "
		    "name is empty (- is standard output)");
	if (strlen(path) >= sizeof(of->path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "path too long: '%.80s'", path);
	memcpy(of->path, path, strlen(path) + 1);
	if (file_check_regular(path, err) != 0)
		return -1;
	dir_of(path, dir);
	of->kind = OUTFILE_UNNAMED;
	of->fd = open_unnamed(dir);
	if (of->fd >= 0) {
		fd_writeback_start(of->fd);	/* fsynced at the commit */
		return 0;
	}
	if (errno != EOPNOTSUPP)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'",
		    path);
	/* Fail now, not after all the work, if the commit could not. */
	if (access(dir, W_OK | X_OK) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'",
		    path);
	of->kind = OUTFILE_TMPDIR;
	of->fd = spool_open(err);
	return of->fd < 0 ? -1 : 0;
}

int
unnamed_open_at(int dirfd, const char *dir)
{
	int fd = openat(dirfd, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	/* EISDIR: a kernel older than O_TMPFILE took it for O_DIRECTORY. */
	if (fd < 0 && (errno == EISDIR || errno == EINVAL))
		errno = EOPNOTSUPP;
	return fd;
}

int
unnamed_link_at(int fd, int dirfd, const char *name)
{
	char proc[64];

	(void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	if (access("/proc/self/fd", F_OK) == 0) {
		errno = ENOENT;		/* the directory is gone */
		return -1;
	}
	/* No /proc: by the descriptor itself (CAP_DAC_READ_SEARCH). */
	return linkat(fd, "", dirfd, name, AT_EMPTY_PATH);
}

/* Give the unnamed file fd the name dst; -1 with errno. */
static int
link_fd(int fd, const char *dst)
{
	return unnamed_link_at(fd, AT_FDCWD, dst);
}

static int
link_beside(const char *name, void *arg)
{
	return link_fd(*(const int *)arg, name);
}

/* OUTFILE_UNNAMED: link it in as OUT, or beside OUT and rename over. */
static int
link_into_place(struct outfile *of, struct smimp_err *err)
{
	char tmp[PATH_MAX];

	if (file_check_regular(of->path, err) != 0)
		return -1;
	if (link_fd(of->fd, of->path) == 0)
		return fsync_parent_dir(of->path, err);
	if (errno != EEXIST)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create '%s'",
		    of->path);
	if (name_beside(of->path, tmp, sizeof(tmp), link_beside, &of->fd,
	    err) < 0)
		return -1;
	return file_commit(tmp, of->path, 1, err);
}

/* OUTFILE_TMPDIR: copy to a new file beside OUT, rename it over OUT. */
static int
copy_into_place(struct outfile *of, struct smimp_err *err)
{
	char tmp[PATH_MAX], name[PATH_MAX + 2];
	int fd, synced;

	fd = tmpfile_beside(of->path, tmp, sizeof(tmp), err);
	if (fd < 0)
		return -1;
	(void)snprintf(name, sizeof(name), "'%s'", tmp);
	if (fd_copy(of->fd, fd, name, err) != 0)
		goto fail;
	synced = fsync(fd);
	if (close(fd) != 0 || synced != 0) {
		fd = -1;
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		goto fail;
	}
	return file_commit(tmp, of->path, 1, err);
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return -1;
}

int
outfile_commit(struct outfile *of, struct smimp_err *err)
{
	sigset_t all, old;
	int ret;

	if (of->kind == OUTFILE_STDOUT)
		return 0;
	if (of->kind == OUTFILE_UNNAMED && fsync(of->fd) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'",
		    of->path);
	/*
	 * From the first name the file gets to the last rename, signals
	 * wait: a temporary name beside OUT must not outlive the command
	 * (only SIGKILL, which nothing can catch, may still leave one).
	 */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = of->kind == OUTFILE_UNNAMED ? link_into_place(of, err) :
	    copy_into_place(of, err);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

void
outfile_close(struct outfile *of)
{
	if (of->fd >= 0)
		fd_writeback_stop(of->fd);
	if (of->kind != OUTFILE_STDOUT && of->fd >= 0)
		close(of->fd);
	of->fd = -1;
}
