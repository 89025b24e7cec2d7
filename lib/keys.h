/*
 * keys.h - the secret key files: PREFIX.key (identity and encryption
 * secret keys, or a device's signing and encryption secret keys) and
 * PREFIX.recovery (the recovery secret key).
 *
 * A secret file is a short text (smimp-key(5)); with a passphrase it is
 * wrapped in an armored age file with an scrypt stanza, so that `age -d`
 * can open it too.  Secret bytes live in sodium_malloc memory.
 */
#ifndef SMIMP_KEYS_H
#define SMIMP_KEYS_H

#include <stddef.h>

#include "address.h"
#include "err.h"
#include "idlog.h"

#define KEYFILE_MAX_BYTES	(8 * 1024)	/* the text, in either form */
#define KEYFILE_LINE_MAX	512		/* a line, without its LF */
#define PASSPHRASE_MAX		1024
/*
 * Encryption secrets a key file keeps after a new encryption key
 * replaced them, so that messages sealed to them before still open.
 * Past this many, the oldest is dropped.
 */
#define KEY_RETIRED_MAX		64

/* Where a passphrase comes from: a file, else a terminal prompt. */
struct passphrase_source {
	const char *file;	/* --passphrase-file, or NULL */
	int allow_prompt;	/* stdin is a terminal */
};

struct prekey_store;

struct secret_key {
	char address[ADDRESS_MAX + 1];
	int is_recovery;		/* a .recovery file */
	/*
	 * A device's key (smimp-device-key/1): identity_secret holds the
	 * device's Ed25519 signing key, encryption_secret its X25519 key;
	 * the identity log names them in the device's device-add record.
	 */
	int is_device;
	char device[IDDEV_NAME_MAX + 1];
	unsigned char *secrets;		/* sodium_malloc: the three below */
	unsigned char *identity_secret;	/* Ed25519, 64 bytes */
	unsigned char *encryption_secret; /* X25519, 32 bytes */
	unsigned char identity_public[32];
	unsigned char encryption_public[32];	/* see below */
	int has_encryption_public;
	/* Retired X25519 secrets, newest first (sodium_malloc, or NULL). */
	unsigned char *retired;
	size_t nretired;
	/*
	 * The secrets of this key's one-time prekeys (prekeystore.h), when
	 * the caller loaded them: opening a message tries the one its
	 * stanza names.  Not released with the key: by its loader.
	 */
	struct prekey_store *prekeys;
};

/*
 * Read a passphrase (sodium_malloc'd, NUL-terminated, trailing newline
 * removed) from src; with confirm, a prompt asks twice.
 */
int passphrase_get(const struct passphrase_source *src, const char *prompt,
    int confirm, char **pass, size_t *len, struct smimp_err *err);
void passphrase_free(char *pass, size_t len);
/*
 * Read one line of another secret (an invitation token) the same way
 * into sodium_malloc'd memory, freed with passphrase_free: from file
 * ("-": standard input), or with file NULL from a prompt on the terminal
 * without echo.  what names it in errors; an empty line is refused.
 */
int secret_get(const char *file, const char *prompt, const char *what,
    char **out, size_t *len, struct smimp_err *err);

int secret_key_generate(struct secret_key *sk, const char *address,
    struct smimp_err *err);
/* Recovery keys: identity_secret holds the Ed25519 recovery key. */
int recovery_key_generate(struct secret_key *sk, const char *address,
    struct smimp_err *err);
/* A device's keys, for the device of that name (iddev_name_valid). */
int device_key_generate(struct secret_key *sk, const char *address,
    const char *device, struct smimp_err *err);
/* Serialize (encrypted when pass != NULL) and write with mode 0600. */
int secret_key_write(const struct secret_key *sk, const char *path,
    const char *pass, size_t pass_len, struct smimp_err *err);
/*
 * Serialize (encrypted when pass != NULL) into a new temporary file
 * beside path (its name into tmp, cap bytes), mode 0600, synced; the
 * caller renames it into place with file_commit (fileio.h) or unlinks
 * it.  So a key can be replaced only once what replaces it is safe.
 */
int secret_key_stage(const struct secret_key *sk, const char *path,
    const char *pass, size_t pass_len, char *tmp, size_t cap,
    struct smimp_err *err);
/* Read, decrypting when needed (asking src for the passphrase). */
int secret_key_load(struct secret_key *sk, const char *path,
    const struct passphrase_source *src, struct smimp_err *err);
/*
 * The same, keeping the passphrase (sodium_malloc'd, for
 * passphrase_free; NULL for a file without one) so that a key that
 * replaces this one can be written under it.
 */
int secret_key_load_keep(struct secret_key *sk, const char *path,
    const struct passphrase_source *src, char **pass, size_t *pass_len,
    struct smimp_err *err);
/* A new identity key (Ed25519) in place of the one sk holds. */
int secret_key_new_identity(struct secret_key *sk, struct smimp_err *err);
/*
 * A new encryption key: the current secret becomes the newest retired
 * one (the oldest is dropped past KEY_RETIRED_MAX).
 */
int secret_key_new_encryption(struct secret_key *sk, struct smimp_err *err);
void secret_key_release(struct secret_key *sk);
/*
 * A file beside the key file keypath: PREFIX.EXT for PREFIX.key, else
 * keypath with ".EXT" appended (the identity log is "pub", the
 * one-time prekeys' secrets "prekeys").  -1 when it does not fit.
 */
int key_path_beside(const char *keypath, const char *ext, char *out,
    size_t cap);
/*
 * Does path name a regular file (not followed) that holds a secret key:
 * an identity's, a device's or a recovery key, plain or encrypted (an
 * age file)?  1 if so, 0 if not or when it cannot be read: a file that
 * is to be replaced by something else is checked first with this.
 */
int secret_key_file_at(const char *path);
/*
 * An output file (-o OUT) is never put in the place of a secret key
 * (-i alice.key -o alice.key): -1 with err (exit 1) when path holds
 * one, else 0.  NULL and "-" (standard output) are 0.
 */
int output_not_secret_key(const char *path, struct smimp_err *err);
/* The X25519 public key, derived on first use; NULL on failure. */
const unsigned char *secret_key_encryption_public(struct secret_key *sk);

/*
 * The default identity's files, ext "key", "pub" or "recovery":
 * $SMIMP_HOME/identity.EXT, or, when there is no identity.key there,
 * the identity the client config file names ("identity FILE.key",
 * smimp-config(5)), with ext in place of its ".key".
 */
int default_identity_path(char *out, size_t cap, const char *ext,
    struct smimp_err *err);
/*
 * The identity key file the client config file ($SMIMP_CONFIG, else
 * $SMIMP_HOME/config) names, into out: 1, or 0 when it names none.
 */
int config_identity(char *out, size_t cap, struct smimp_err *err);
/*
 * Make keypath (an identity key made outside the home) the home's
 * default identity when it has none (no identity.key, no identity in
 * the config file, which is $SMIMP_HOME/config: a file named by
 * $SMIMP_CONFIG is never written): an "identity" line added at the
 * end of the config file, made if need be, which is replaced whole (a
 * new file with its mode, synced, renamed over it, the directory
 * synced): as it was, or with the whole line.  1 when recorded, 0 when
 * the home has a default identity already, -1 on error.
 */
int default_identity_record(const char *keypath, struct smimp_err *err);

#endif
