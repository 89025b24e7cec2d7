/*
 * maildir.h - filing messages into a Maildir durably: each is written
 * to tmp/ and fsynced, then renamed into new/ of its folder, and the
 * folder's directory fsynced.  Three folders: the inbox (the Maildir
 * itself), its .Other subfolder and, for the copies of what the user
 * sent from another device, .Sent (Maildir++ names).
 *
 * A message's file name comes from its bytes, so that one filed twice
 * (a crash between filing it and acknowledging it on the server) is
 * recognised and filed once.
 *
 * For mail readers (smimp-fetch --mime) a verified message is filed as
 * RFC 5322 with MIME under the same name with ".eml" for ".smimp", and
 * its sealed original kept in dir/.sealed/ under its own name: no
 * Maildir folder (it has no new/ or cur/), so that no mail reader
 * lists it, and never moved, so that it tells what was filed.
 */
#ifndef SMIMP_MAILDIR_H
#define SMIMP_MAILDIR_H

#include <stddef.h>

#include "err.h"

/* A file name: 32 hex digits and ".smimp", with its NUL. */
#define MAILDIR_NAME_SIZE	64
/* Where the sealed originals of messages filed as MIME are kept. */
#define MAILDIR_SEALED		".sealed"

enum maildir_folder { MAILDIR_INBOX, MAILDIR_OTHER, MAILDIR_SENT };

/* Create dir, dir/.Other and dir/.Sent, each with tmp/, new/ and cur/. */
int maildir_make(const char *dir, struct smimp_err *err);
/* dir/.sealed, the user's, 0700. */
int maildir_make_sealed(const char *dir, struct smimp_err *err);
/* The file name of the message data. */
void maildir_name(const unsigned char *data, size_t len,
    char name[MAILDIR_NAME_SIZE]);
/* The name of its MIME form: ".eml" for ".smimp". */
void maildir_mime_name(const char *name, char out[MAILDIR_NAME_SIZE]);
/* Is a message of this name in new/ of any folder? */
int maildir_has(const char *dir, const char *name);
/* Is the sealed original of this name in dir/.sealed? */
int maildir_has_sealed(const char *dir, const char *name);
/*
 * Is a message of this name in new/ or cur/ of any folder, in cur/
 * perhaps with the flags a mail reader gives it ("NAME:2,S")?  Reads
 * cur/ whole: for recovering from a fetch cut short only.
 */
int maildir_find(const char *dir, const char *name);
/*
 * A new file dir/tmp/name (its path into tmp), made exclusively, mode
 * 0600, read and written: its fd, or -1.  One that a killed fetch left
 * there is the same message, and is made anew.
 */
int maildir_create(const char *dir, const char *name, char *tmp,
    size_t cap, struct smimp_err *err);
/*
 * Write data to dir/tmp/name (its path into tmp) and fsync it: an fd to
 * read it back from its start, or -1 with nothing left behind.
 */
int maildir_spool(const char *dir, const char *name,
    const unsigned char *data, size_t len, char *tmp, size_t cap,
    struct smimp_err *err);
/* Rename the spooled tmp into new/ of folder, and fsync the directory. */
int maildir_file(const char *dir, enum maildir_folder folder,
    const char *name, const char *tmp, struct smimp_err *err);
/* Rename the spooled tmp into dir/.sealed, and fsync that directory. */
int maildir_keep_sealed(const char *dir, const char *name, const char *tmp,
    struct smimp_err *err);

#endif
