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
 */
#ifndef SMIMP_MAILDIR_H
#define SMIMP_MAILDIR_H

#include <stddef.h>

#include "err.h"

/* A file name: 32 hex digits and ".smimp", with its NUL. */
#define MAILDIR_NAME_SIZE	64

enum maildir_folder { MAILDIR_INBOX, MAILDIR_OTHER, MAILDIR_SENT };

/* Create dir, dir/.Other and dir/.Sent, each with tmp/, new/ and cur/. */
int maildir_make(const char *dir, struct smimp_err *err);
/* The file name of the message data. */
void maildir_name(const unsigned char *data, size_t len,
    char name[MAILDIR_NAME_SIZE]);
/* Is a message of this name in new/ of any folder? */
int maildir_has(const char *dir, const char *name);
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

#endif
