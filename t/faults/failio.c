/*
 * failio.so - make writes and syncs fail, for the fault suites: loaded
 * with LD_PRELOAD, it fails fsync, fdatasync, write and pwrite (and
 * their vector and 64-bit forms) on the files whose path matches a
 * pattern, from the Nth such call on, with an errno of one's choice,
 * as a disk that went bad or full would.
 *
 * Settings, "name=value" one a line in the file that FAILIO_CONTROL
 * names, read again at each call, so that a test switches the faults
 * on and off while the process runs (no file, or an empty one: off);
 * the count of calls starts again whenever the file is replaced.
 * Without FAILIO_CONTROL, the environment variables of the same names
 * in capitals, FAILIO_PATH and so on, hold for the life of the process.
 *
 *	path=PATTERN	fnmatch(3) pattern ('*' matches '/' too) for the
 *			file's path as /proc/self/fd shows it; required
 *	ops=LIST	of fsync, fdatasync, write, pwrite (default
 *			fsync,fdatasync)
 *	errno=NAME	EIO (default), ENOSPC, EDQUOT or a number
 *	from=N		fail from the Nth matching call on (default 1)
 *	log=FILE	append "OP PATH" there for each call failed
 *
 * Built on its own (no sanitizer: it only stands between the program
 * and the C library), by the Makefile, into BUILD/t/failio.so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define SETTINGS_MAX	4096

enum op { OP_FSYNC = 1, OP_FDATASYNC = 2, OP_WRITE = 4, OP_PWRITE = 8 };

struct settings {
	char path[1024];
	char log[1024];
	unsigned int ops;
	int err;
	unsigned long from;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long calls;		/* matching calls since the file changed */
static struct stat seen;		/* the control file as last counted */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void *
next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static unsigned int
parse_ops(const char *s)
{
	unsigned int ops = 0;

	if (strstr(s, "fsync") != NULL)
		ops |= OP_FSYNC;
	if (strstr(s, "fdatasync") != NULL)
		ops |= OP_FDATASYNC;
	if (strstr(s, "pwrite") != NULL)
		ops |= OP_PWRITE;
	/* "write" on its own, not as the tail of "pwrite". */
	for (const char *p = s; (p = strstr(p, "write")) != NULL; p++)
		if (p == s || p[-1] != 'p')
			ops |= OP_WRITE;
	return ops;
}

static int
parse_errno(const char *s)
{
	if (strcmp(s, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(s, "EDQUOT") == 0)
		return EDQUOT;
	if (strcmp(s, "EIO") == 0 || *s == '\0')
		return EIO;
	return atoi(s) > 0 ? atoi(s) : EIO;
}

static void
set(struct settings *st, const char *name, const char *value)
{
	if (strcmp(name, "path") == 0)
		(void)snprintf(st->path, sizeof(st->path), "%s", value);
	else if (strcmp(name, "log") == 0)
		(void)snprintf(st->log, sizeof(st->log), "%s", value);
	else if (strcmp(name, "ops") == 0)
		st->ops = parse_ops(value);
	else if (strcmp(name, "errno") == 0)
		st->err = parse_errno(value);
	else if (strcmp(name, "from") == 0)
		st->from = strtoul(value, NULL, 10);
}

static void
defaults(struct settings *st)
{
	memset(st, 0, sizeof(*st));
	st->ops = OP_FSYNC | OP_FDATASYNC;
	st->err = EIO;
	st->from = 1;
}

/* The settings from the control file: 1 on, 0 off. */
static int
from_file(const char *file, struct settings *st)
{
	char buf[SETTINGS_MAX], *line, *eq, *save = NULL;
	struct stat sb;
	ssize_t n;
	int fd;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = fstat(fd, &sb) == 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	(void)close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		eq = strchr(line, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		set(st, line, eq + 1);
	}
	/* A new file (or a rewritten one) counts afresh. */
	pthread_mutex_lock(&mu);
	if (sb.st_ino != seen.st_ino || sb.st_mtim.tv_sec !=
	    seen.st_mtim.tv_sec || sb.st_mtim.tv_nsec != seen.st_mtim.tv_nsec ||
	    sb.st_size != seen.st_size) {
		seen = sb;
		calls = 0;
	}
	pthread_mutex_unlock(&mu);
	return st->path[0] != '\0';
}

static int
from_env(struct settings *st)
{
	const char *v;

	if ((v = getenv("FAILIO_PATH")) == NULL || *v == '\0')
		return 0;
	set(st, "path", v);
	if ((v = getenv("FAILIO_OPS")) != NULL)
		set(st, "ops", v);
	if ((v = getenv("FAILIO_ERRNO")) != NULL)
		set(st, "errno", v);
	if ((v = getenv("FAILIO_FROM")) != NULL)
		set(st, "from", v);
	if ((v = getenv("FAILIO_LOG")) != NULL)
		set(st, "log", v);
	return 1;
}

static void
note(const struct settings *st, const char *op, const char *path)
{
	char line[1200];
	int fd, n;

	if (st->log[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "%s %s\n", op, path);
	fd = open(st->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (n > 0 && (size_t)n < sizeof(line))
		(void)real_write(fd, line, (size_t)n);
	(void)close(fd);
}

/* Should this call on fd fail?  Then *err is the errno to fail with. */
static int
decide(int fd, enum op op, const char *name, int *err)
{
	struct settings st;
	const char *control = getenv("FAILIO_CONTROL");
	char link[64], path[1024];
	unsigned long n;
	ssize_t len;

	defaults(&st);
	if (control != NULL ? !from_file(control, &st) : !from_env(&st))
		return 0;
	if (!(st.ops & op))
		return 0;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, path, sizeof(path) - 1);
	if (len <= 0)
		return 0;
	path[len] = '\0';
	if (fnmatch(st.path, path, 0) != 0)
		return 0;
	pthread_mutex_lock(&mu);
	n = ++calls;
	pthread_mutex_unlock(&mu);
	if (n < st.from)
		return 0;
	note(&st, name, path);
	*err = st.err;
	return 1;
}

static void init(void);

/* Should this call fail?  Then errno is set and 1 returned; else errno
   is as it was. */
static int
fails(int fd, enum op op, const char *name)
{
	int saved = errno, err = 0;

	if (real_fdatasync == NULL)
		init();
	if (decide(fd, op, name, &err)) {
		errno = err;
		return 1;
	}
	errno = saved;
	return 0;
}

/* Also at the first call, which may come before the constructor. */
__attribute__((constructor)) static void
init(void)
{
	real_write = next("write");
	real_pwrite = next("pwrite");
	real_pwrite64 = next("pwrite64");
	real_writev = next("writev");
	real_pwritev = next("pwritev");
	real_pwritev64 = next("pwritev64");
	real_fsync = next("fsync");
	real_fdatasync = next("fdatasync");
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	if (fails(fd, OP_WRITE, "write"))
		return -1;
	return real_write(fd, buf, len);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	if (fails(fd, OP_WRITE, "writev"))
		return -1;
	return real_writev(fd, iov, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fails(fd, OP_PWRITE, "pwrite"))
		return -1;
	return real_pwrite(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	if (fails(fd, OP_PWRITE, "pwrite64"))
		return -1;
	return real_pwrite64(fd, buf, len, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	if (fails(fd, OP_PWRITE, "pwritev"))
		return -1;
	return real_pwritev(fd, iov, n, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
	if (fails(fd, OP_PWRITE, "pwritev64"))
		return -1;
	return real_pwritev64(fd, iov, n, off);
}

int
fsync(int fd)
{
	if (fails(fd, OP_FSYNC, "fsync"))
		return -1;
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	if (fails(fd, OP_FDATASYNC, "fdatasync"))
		return -1;
	return real_fdatasync(fd);
}
