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

/*
 * How file_open treats what it finds at a path.  Whatever the flags it
 * never blocks and takes nothing but a regular file: a FIFO that nobody
 * writes to would hang the command, and a device is no file of ours.
 */
#define FILE_NOFOLLOW	0x01	/* refuse a symbolic link (O_NOFOLLOW) */
#define FILE_CREATE	0x02	/* if absent, create it exclusively, 0600 */
#define FILE_PRIVATE	0x04	/* a secret: no access for group or others */
#define FILE_OWNED	0x08	/* the user's (or root's), no one else's to write */

/*
 * Open path with flags (O_RDONLY, O_RDWR, O_APPEND; O_CLOEXEC is added)
 * as how says; on a refusal the message names the path and the reason.
 */
int file_open(const char *path, int flags, unsigned how,
    struct smimp_err *err);

/*
 * Open a command's input file to read: a file, a pipe or a device, not
 * a directory (which open(2) allows and read(2) then refuses, where no
 * name could be given).
 */
int file_open_input(const char *path, struct smimp_err *err);

/*
 * Take the lock file dir/name (made if need be, the user's, never
 * through a symbolic link) without waiting: 1 taken, with *fd to close
 * when done (which releases it); 0 another process holds it; -1.
 */
int lock_try(const char *dir, const char *name, int *fd,
    struct smimp_err *err);
/*
 * The same lock on the directory dir itself: no file made in it.  A
 * symbolic link that dir names is followed, as what is filed through
 * dir follows it: the lock is the directory's, whatever its name.
 */
int lock_dir_try(const char *dir, int *fd, struct smimp_err *err);

/*
 * Open a secret file (a key, a passphrase): a regular file that group and
 * others cannot access.
 */
int open_private(const char *path, struct smimp_err *err);

/*
 * What fd (opened from path) is must be the user's (or root's) and
 * writable by no one else, as FILE_OWNED asks, whatever its kind (a
 * pipe passes: only its maker can write it): 0, or -1 with err set.
 */
int fd_check_owned(int fd, const char *path, struct smimp_err *err);

/* file_read_all through file_open(path, O_RDONLY, how). */
int file_read_checked(const char *path, unsigned how, size_t cap,
    unsigned char **out, size_t *len, struct smimp_err *err);

/*
 * A directory the user keeps things in (SMIMP_HOME, a Maildir) must be
 * the user's (or root's) and writable by no one else, as ssh's
 * StrictModes asks: else another user could swap or plant files in it.
 * An absent one passes: it will be made 0700.
 */
int dir_check_owned(const char *path, struct smimp_err *err);
/*
 * The same for a directory inside SMIMP_HOME that holds what is the
 * user's alone (the outbox): a symbolic link there is refused too, as
 * the files beside it are opened without following one.
 */
int dir_check_private(const char *path, struct smimp_err *err);

/* Write all of buf to fd, retrying short writes and EINTR. */
int fd_write_all(int fd, const void *buf, size_t len);
/*
 * fd is a file this thread writes at length (and may fsync at the
 * end): its writeback starts as fd_write_all goes, every 8 MiB, so that
 * the disk works meanwhile and no fsync or dirty-page limit has it all
 * to do at once; until fd_writeback_stop.
 */
void fd_writeback_start(int fd);
void fd_writeback_stop(int fd);
/*
 * Read from fd until buf holds cap bytes or fd ends, retrying short
 * reads and EINTR; *got gets how many.  -1 with errno on an error.
 */
int fd_read_full(int fd, void *buf, size_t cap, size_t *got);

/*
 * A read lease (fcntl(2) F_SETLEASE) on fd, which must be open read-only
 * on a file of this user's: 0 once it is held, -1 (errno) when it cannot
 * be.  The kernel grants one only while no descriptor anywhere is open
 * for writing on the file, and from then on an open for writing or a
 * truncate must break it first (waiting fs.lease-break-time seconds
 * for its holder to let go): as long as fd_lease_held says so, the file
 * holds what it held when the lease was taken.  None is taken on a file
 * system whose bytes another machine or a process in user space can
 * change without this kernel's knowing (FUSE, 9P, network and cluster
 * file systems).  A lease being broken is told to the holder by SIGURG,
 * which does nothing unless the program catches it.
 */
int fd_lease_read(int fd);
/* Is the read lease on fd whole: nothing opened the file to write since? */
int fd_lease_held(int fd);
/* Let a lease go, so that a writer waiting for it goes on. */
void fd_lease_release(int fd);

/*
 * Copy all of from, from its start, to to (named to_name in messages),
 * in 64 KiB chunks.
 */
int fd_copy(int from, int to, const char *to_name, struct smimp_err *err);

/* A directory's entries made durable: fsync of dir itself. */
int fsync_dir(const char *dir, struct smimp_err *err);
/* The same for the directory that holds path (path itself need not be). */
int fsync_parent_dir(const char *path, struct smimp_err *err);
/*
 * A synced copy of the file from (no symbolic link) at path, a new file
 * (0600): 0, 1 when path exists already (err not set), -1.  A copy
 * that fails is removed.
 */
int file_copy_new(const char *from, const char *path, struct smimp_err *err);

/*
 * Take the exclusive lock (flock) on fd, the lock file path, waiting
 * SMIMP_LOCK_TIMEOUT seconds at most (10 by default) for whoever holds
 * it: a writer that hung behind a stuck process would look like smimp
 * hanging.  Past that, SMIMP_EXIT_TEMPFAIL: "WHAT is locked: ...".
 */
int file_lock_wait(int fd, const char *path, const char *what,
    struct smimp_err *err);
/*
 * Open the lock file path (made if need be, the user's, never through a
 * symbolic link) and take its lock as file_lock_wait does: the fd to
 * close when done (which releases it), or -1.
 */
int file_lock_open(const char *path, const char *what, struct smimp_err *err);

/* mkdir -p with the given mode for the directories it creates. */
int mkdir_p(const char *path, mode_t mode, struct smimp_err *err);

/*
 * Call make(name, arg) with fresh names "<path>.tmp.XXXXXXXXXXXX" beside
 * path (into tmp, cap bytes) until one was not taken (make fails with
 * EEXIST): what make returned (>= 0), or -1.
 */
int name_beside(const char *path, char *tmp, size_t cap,
    int (*make)(const char *, void *), void *arg, struct smimp_err *err);

/*
 * A private temporary file beside path (same directory, so it can be
 * renamed onto path): "<path>.tmp.XXXXXX", O_EXCL, mode 0600.  Returns
 * the fd and the name in tmp (cap bytes).
 */
int tmpfile_beside(const char *path, char *tmp, size_t cap,
    struct smimp_err *err);

/*
 * Write len bytes with mode into a new temporary file beside path (its
 * name into tmp, cap bytes), synced: what file_commit then puts in place.
 */
int file_stage(const char *path, const void *data, size_t len, mode_t mode,
    char *tmp, size_t cap, struct smimp_err *err);

/*
 * Rename tmp onto path (or link without replacing), then fsync dir.
 * What is at path must be a regular file (file_check_regular).
 */
int file_commit(const char *tmp, const char *path, int replace,
    struct smimp_err *err);

/* "a FIFO", "a character device", ...: what mode is, for messages. */
const char *file_kind(mode_t mode);

/*
 * Nothing at path, or a regular file: never a device, a FIFO, a socket,
 * a directory or a symbolic link, which a command must not replace.
 */
int file_check_regular(const char *path, struct smimp_err *err);

/*
 * $SMIMP_HOME, or ~/.config/smimp; written into out.  Refused when it
 * fails dir_check_owned.
 */
int smimp_home(char *out, size_t cap, struct smimp_err *err);

/*
 * The client config file (smimp-config(5)): $SMIMP_CONFIG when set and
 * not empty (*named set), else $SMIMP_HOME/config; its name into out.
 */
int client_config_path(char *out, size_t cap, int *named,
    struct smimp_err *err);
/*
 * A config file's text[0..len) holds no NUL byte, which would end it
 * early with the lines after it unread: 0, or -1 with "PATH:LINE: a
 * NUL byte in the line" (SMIMP_EXIT_USAGE).
 */
int text_nul_check(const char *path, const void *text, size_t len,
    struct smimp_err *err);

/*
 * Is name a setting of the client config file (smimp-config(5))?  Each
 * reader of the file refuses a line of any other, whatever it reads.
 */
int client_config_known(const char *name);

/*
 * The client config file read whole (at most 64 KiB, the user's, and in
 * SMIMP_HOME no symbolic link) into a NUL-terminated malloc'd *buf,
 * its name into path: 1; 0 when $SMIMP_HOME/config does not exist (a
 * file named by $SMIMP_CONFIG must); -1 with err set.
 */
int client_config_read(char *path, size_t cap, unsigned char **buf,
    size_t *len, struct smimp_err *err);

#endif
