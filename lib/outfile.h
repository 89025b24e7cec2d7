/*
 * outfile.h - a command's output file, -o OUT: only ever a regular
 * file, and never one half written or unverified under any name.
 *
 * The bytes go to a file with no name (O_TMPFILE) in OUT's directory,
 * and only outfile_commit gives it one: smimp-open commits once the
 * signature verified, so a command killed at any point before leaves
 * nothing anywhere.  Where the filesystem has no O_TMPFILE, the bytes go
 * to an unlinked file in TMPDIR and are copied beside OUT at the commit.
 * Anything at OUT but a regular file (a device, a FIFO, a symbolic link,
 * a directory) is refused, never replaced.  "-" (or no name) is standard
 * output, written as it comes.
 */
#ifndef SMIMP_OUTFILE_H
#define SMIMP_OUTFILE_H

#include <limits.h>

#include "err.h"

enum outfile_kind { OUTFILE_STDOUT, OUTFILE_UNNAMED, OUTFILE_TMPDIR };

struct outfile {
	int fd;				/* write here; -1 when closed */
	enum outfile_kind kind;
	char path[PATH_MAX];
};

/* Start OUT (NULL or "-": standard output); nothing is on disk yet. */
int outfile_open(struct outfile *of, const char *path,
    struct smimp_err *err);
/*
 * Give the file its name, replacing a regular file at OUT, with the
 * file and its directory synced: OUT is then whole, or as it was.
 * Signals wait meanwhile, so no temporary name outlives the command.
 */
int outfile_commit(struct outfile *of, struct smimp_err *err);
/*
 * Close it, committed or not: what was not committed is gone, as it
 * never had a name.  Standard output stays open.
 */
void outfile_close(struct outfile *of);
/*
 * What an error names OUT by: "standard output", or the path quoted
 * (in buf, of cap bytes).
 */
const char *outfile_label(const struct outfile *of, char *buf, size_t cap);

/*
 * A file with no name (O_TMPFILE, mode 0600) in the directory dir
 * (relative to dirfd), read and written; -1 with errno, EOPNOTSUPP when
 * its file system has none.
 */
int unnamed_open_at(int dirfd, const char *dir);
/*
 * Give the unnamed file fd the name name in dirfd, never replacing or
 * following anything there (EEXIST, as link(2) does); -1 with errno.
 */
int unnamed_link_at(int fd, int dirfd, const char *name);

/*
 * A private spool with no name, in TMPDIR (or /tmp), read and written:
 * for what must not appear anywhere until it is released.
 */
int spool_open(struct smimp_err *err);

#endif
