/*
 * prekeystore.h - the secrets of one's own one-time prekeys (prekey.h),
 * kept beside the key file whose device they belong to: PREFIX.prekeys
 * for PREFIX.key (doc/PROTOCOL.md, section 10.5).
 *
 * The file is never plain text: it is an age v1 file sealed to the key
 * file's own encryption key (so age -d with the exported identity opens
 * it), mode 0600, replaced whole (temporary file, fsync, rename, fsync
 * of the directory) under an exclusive lock on PREFIX.prekeys.lock, so
 * that a secret deleted once a message is opened is gone from the file
 * the moment the call returns.  In memory the secrets live in
 * sodium_malloc'd memory, wiped when released.
 */
#ifndef SMIMP_PREKEYSTORE_H
#define SMIMP_PREKEYSTORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "keys.h"
#include "prekey.h"

/*
 * Secrets kept at most: twice a full pool, so that what a server still
 * hands out is always here; past it the oldest batch's go first.
 */
#define PREKEY_STORE_MAX	(2 * PREKEY_POOL_MAX)
#define PREKEY_STORE_MAGIC	"smimp-prekey-secrets/1\n"

struct prekey_secret {
	char id[PREKEY_ID_LEN + 1];
	int64_t date;				/* its batch's */
	unsigned char secret[32];		/* X25519 */
};

struct prekey_store {
	char path[PATH_MAX];
	char lock_path[PATH_MAX + 8];
	/* sodium_malloc'd, PREKEY_STORE_MAX; NULL until a file or an add. */
	struct prekey_secret *s;
	size_t n;
	int exists;			/* the file was there when loaded */
	int lock_fd;			/* held when loaded with lock, or -1 */
};

/* Where the secrets of the key at keypath live: PREFIX.prekeys. */
int prekey_store_path(const char *keypath, char *out, size_t cap,
    struct smimp_err *err);
/*
 * Read the secrets at path (none when there is no file: ps->exists 0),
 * decrypting with sk's encryption key or one it retired; the file must
 * be sk's (its address and device).  With lock, an exclusive lock is
 * taken first and held until prekey_store_release, so that what is
 * read, changed and saved meanwhile is nobody else's change undone.
 * ps is released with prekey_store_release, also on failure.
 */
int prekey_store_load(struct prekey_store *ps, const char *path,
    const struct secret_key *sk, int lock, struct smimp_err *err);
/* The secret of prekey id, or NULL. */
const unsigned char *prekey_store_find(const struct prekey_store *ps,
    const char *id);
/*
 * Add a secret (its public key is derived when needed); past
 * PREKEY_STORE_MAX the oldest goes.  0, or -1 for a bad id (or no
 * memory for the secrets).
 */
int prekey_store_add(struct prekey_store *ps, const char *id, int64_t date,
    const unsigned char secret[32]);
/* Remove the secret of id: 1 if it was there, 0 if not. */
int prekey_store_remove(struct prekey_store *ps, const char *id);
/*
 * Write the secrets in place of the file, sealed to sk's current
 * encryption key (the file is made when there was none).
 */
int prekey_store_save(struct prekey_store *ps, const struct secret_key *sk,
    struct smimp_err *err);
/* Wipe and free the secrets; unlock. */
void prekey_store_release(struct prekey_store *ps);

#endif
