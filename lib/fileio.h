/*
 * fileio.h - durable, careful file handling shared by every command:
 * atomic replacement (temporary file, fsync, rename, fsync of the
 * directory), bounded reads, permission checks on secret files.
 */
#ifndef SMIMP_FILEIO_H
#define SMIMP_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/*
 * Write len bytes to path atomically with the given mode.  With
 * replace == 0 an existing path is never touched: the call fails.
 */
int file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, int replace, struct smimp_err *err);

/*
 * Read a whole file of at most cap bytes into a NUL-terminated malloc'd
 * buffer, which the caller frees.  "-" means stdin.
 */
int file_read_all(const char *path, size_t cap, unsigned char **out,
    size_t *len, struct smimp_err *err);
int fd_read_all(int fd, const char *name, size_t cap, unsigned char **out,
    size_t *len, struct smimp_err *err);
/* Read the rest of fd into buf (cap + 1 bytes, NUL-terminated). */
int fd_read_into(int fd, const char *name, size_t cap, unsigned char *buf,
    size_t *len, struct smimp_err *err);

/* Open a secret file, refusing one that group or others can access. */
int open_private(const char *path, struct smimp_err *err);

/* Write all of buf to fd, retrying short writes and EINTR. */
int fd_write_all(int fd, const void *buf, size_t len);
/*
 * Read from fd until buf holds cap bytes or fd ends, retrying short
 * reads and EINTR; *got gets how many.  -1 with errno on an error.
 */
int fd_read_full(int fd, void *buf, size_t cap, size_t *got);

int fsync_parent_dir(const char *path, struct smimp_err *err);

/* mkdir -p with the given mode for the directories it creates. */
int mkdir_p(const char *path, mode_t mode, struct smimp_err *err);

/*
 * A private temporary file beside path (same directory, so it can be
 * renamed onto path): "<path>.tmp.XXXXXX", O_EXCL, mode 0600.  Returns
 * the fd and the name in tmp (cap bytes).
 */
int tmpfile_beside(const char *path, char *tmp, size_t cap,
    struct smimp_err *err);

/* Rename tmp onto path (or link without replacing), then fsync dir. */
int file_commit(const char *tmp, const char *path, int replace,
    struct smimp_err *err);

/* $SMIMP_HOME, or ~/.config/smimp; written into out. */
int smimp_home(char *out, size_t cap, struct smimp_err *err);

#endif
