/*
 * parts.h - messages with parts (attachments) for the commands that
 * seal and open them: smimp-seal --attach, smimp-open --extract and
 * --json, and those that turn mail into messages and back.
 *
 * Sealing: a parts_list of named, typed parts from files or file
 * descriptors, handed to message_seal in seal_params (parts, nparts).
 * A part's size goes in the signed header before its bytes, so a pipe
 * is copied to a spool first; a file is read in place, and one that
 * changes size meanwhile fails the seal.
 *
 * Opening: parts_open verifies a message while it spools the body to
 * a descriptor of the caller's and each attachment to a file with no
 * name: in the directory it may be extracted to (so that extracting
 * is a link, not a copy) or in TMPDIR.  Only once it returned 0, and
 * the caller judged the sender, does parts_extract give the files
 * names, or parts_each hand them (name, type, size, then the bytes in
 * chunks) to callbacks.  So nothing unverified is ever named or
 * delivered, and a failure, or a kill, leaves nothing behind.
 */
#ifndef SMIMP_PARTS_H
#define SMIMP_PARTS_H

#include <stddef.h>

#include "err.h"
#include "message.h"
#include "part.h"

struct parts_list {
	struct msg_part p[PART_MAX];	/* each with its fd open */
	size_t n;
};

void parts_list_init(struct parts_list *l);
/*
 * Add the regular file at path, named for its last component, of type
 * (NULL: part_type_guess of the name).  Refused: a name or a type that
 * part.h refuses, a name taken, more than PART_MAX parts
 * (SMIMP_EXIT_USAGE); what is not a regular file, cannot be read or
 * holds more than PART_SIZE_MAX bytes (SMIMP_EXIT_FAIL).
 */
int parts_add_file(struct parts_list *l, const char *path, const char *type,
    struct smimp_err *err);
/*
 * Add what fd holds from where it stands, named name, of type (NULL:
 * guessed).  A regular file is read in place; anything else (a pipe,
 * a socket) is read to its end into a spool first.  The list owns fd
 * from then on, whether this succeeds or not.
 */
int parts_add_fd(struct parts_list *l, int fd, const char *name,
    const char *type, struct smimp_err *err);
/* Close every part's descriptor. */
void parts_list_release(struct parts_list *l);

struct parts_spool {
	int dirfd;		/* spool here when it can: -1, TMPDIR */
	int body_fd;		/* the body goes here; -1: dropped */
	const char *body_name;	/* what a write error calls it: NULL,
				   "the body"; set after parts_spool_init */
	int keep;		/* keep the attachments, or drop them */
	int fds[PART_MAX];	/* each attachment's spool; -1 for none */
	int in_tmpdir[PART_MAX];	/* spooled in TMPDIR, not dirfd */
	struct msg_replay *replay;	/* the msg_sink's: NULL, or set */
};

/*
 * A spool for parts_open: the body to body_fd (-1: dropped), and the
 * attachments, when keep, to files with no name in dirfd (-1, or a
 * file system without unnamed files: in TMPDIR).  Parts of a kind this
 * version does not know are verified with the rest and never kept.
 */
void parts_spool_init(struct parts_spool *sp, int dirfd, int body_fd,
    int keep);
/*
 * message_open with the plaintext spooled in sp; as message_open, the
 * sender is not judged here.  kept_fd: as message_open_kept's (-1 for
 * none).
 */
int parts_open(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int kept_fd, const struct trust_store *ts,
    struct parts_spool *sp, struct msg_meta *meta, struct smimp_err *err);
/*
 * Give every kept attachment a name in dirfd (called dir_name in
 * messages and in meta->parts[i].path): its own name, or, when that is
 * taken (by anything: a file, a directory, a symbolic link, which is
 * never followed), "STEM (N).EXT" for the first N from 1 that is not.
 * Each file is mode 0600 and synced before it is named, the directory
 * after.  All of them or none: on a failure the names given are taken
 * back.  Signals wait meanwhile.
 */
int parts_extract(struct parts_spool *sp, struct msg_meta *meta, int dirfd,
    const char *dir_name, struct smimp_err *err);

/*
 * What parts_each hands a verified message to: begin (part NULL for
 * the body, whose type is meta->content_type and size meta->body_len),
 * then its bytes in chunks of at most 64 KiB, then end.
 */
struct parts_reader {
	int (*begin)(void *arg, const struct msg_part *part,
	    struct smimp_err *err);
	int (*data)(void *arg, const unsigned char *buf, size_t len,
	    struct smimp_err *err);
	int (*end)(void *arg, struct smimp_err *err);
	void *arg;
};
/*
 * After parts_open returned 0: the body (when body_fd is a file it can
 * read back), then each kept attachment in order, to r.
 */
int parts_each(const struct parts_spool *sp, const struct msg_meta *meta,
    const struct parts_reader *r, struct smimp_err *err);
/* Close the spools: what was not extracted is gone with them. */
void parts_spool_release(struct parts_spool *sp);

#endif
