/*
 * age.h - the age v1 file format (C2SP age spec) on libsodium: header
 * parsing and writing, X25519 and scrypt stanzas, the header MAC and the
 * ChaCha20-Poly1305 STREAM payload in 64 KiB chunks.  The files are read
 * and written through the streams of armor.h, which handle ASCII armor.
 *
 * Two levels of API.  The streaming one (age_decrypt_read, age_encryptor)
 * is what tools and the test vectors use.  The chunk level one
 * (age_decryptor_read_chunks, age_chunk_seal/open) lets seal and open
 * spread chunks over several threads.
 *
 * Every failure fills err with code SMIMP_EXIT_BADMSG (input is bad) or
 * SMIMP_EXIT_FAIL (I/O), and err->detail with an enum age_failure
 * (armor.h) so a caller can tell a header error from a MAC error from a
 * payload error.
 */
#ifndef SMIMP_AGE_H
#define SMIMP_AGE_H

#include <stddef.h>
#include <stdint.h>

#include "armor.h"
#include "err.h"

/* The first line of every age file (its binary form). */
#define AGE_VERSION_LINE	"age-encryption.org/v1"
#define AGE_CHUNK_SIZE		65536
#define AGE_TAG_SIZE		16
#define AGE_CT_CHUNK_SIZE	(AGE_CHUNK_SIZE + AGE_TAG_SIZE)
#define AGE_FILE_KEY_SIZE	16
#define AGE_PAYLOAD_KEY_SIZE	32
#define AGE_NONCE_SIZE		16
#define AGE_MAX_HEADER		(256 * 1024)	/* whole header, bytes */
#define AGE_MAX_LINE		(16 * 1024)	/* one header line */
#define AGE_MAX_STANZAS		1024
#define AGE_SCRYPT_MAX_LOGN	22		/* as age's default cap */
#define AGE_SCRYPT_LOGN		18		/* work factor we write */
#define AGE_IDENTITY_STRLEN	75	/* AGE-SECRET-KEY-1... plus NUL */
#define AGE_RECIPIENT_STRLEN	63	/* age1... plus NUL */

/*
 * smimp's one-time prekeys (doc/PROTOCOL.md, section 10): a stanza
 * "-> smimp-prekey ID" with an empty body stands right before the
 * X25519 stanza sealed to the prekey ID, so that its holder knows which
 * of its secrets to try on it; age itself skips it, as it skips every
 * stanza of a type it does not know.
 */
#define AGE_PREKEY_STANZA	"smimp-prekey"
#define AGE_PREKEY_ID_LEN	16	/* lowercase hex digits */

/*
 * What can decrypt: an X25519 secret key, a passphrase (scrypt), or
 * the one-time prekeys whose secrets prekey_find gives by their id.
 */
enum age_identity_type { AGE_ID_X25519, AGE_ID_SCRYPT, AGE_ID_PREKEYS };

struct age_identity {
	enum age_identity_type type;
	const unsigned char *x25519_secret;	/* 32 bytes, caller owns */
	const char *passphrase;			/* caller owns */
	size_t passphrase_len;
	/* AGE_ID_PREKEYS: the secret of the prekey id, or NULL. */
	const unsigned char *(*prekey_find)(const void *arg, const char *id);
	const void *prekey_arg;
};

struct age_recipient {
	unsigned char x25519_public[32];
	/* A one-time prekey's id: its smimp-prekey stanza first; or "". */
	char prekey_id[AGE_PREKEY_ID_LEN + 1];
};

/*
 * Can a file key be wrapped to this X25519 public key?  Not when it is
 * of low order (a point of the small subgroup, or equivalent to one):
 * every shared secret with it is all zero, so anyone could unwrap the
 * file key.  1 if usable, 0 if not.
 */
int age_x25519_public_usable(const unsigned char pk[32]);

/* Decryption. */
struct age_decryptor;
/*
 * Read and check the header (stanzas, file key, MAC) and the payload
 * nonce from in.  On success the decryptor is positioned at the first
 * payload chunk.
 */
struct age_decryptor *age_decrypt_begin(struct age_in *in,
    const struct age_identity *ids, size_t nids, struct smimp_err *err);
/* Streaming plaintext; *got is 0 at a clean, authenticated EOF. */
int age_decrypt_read(struct age_decryptor *d, unsigned char *buf,
    size_t len, size_t *got, struct smimp_err *err);
/*
 * Chunk level: read up to n ciphertext chunks into buf (n *
 * AGE_CT_CHUNK_SIZE bytes), their lengths into lens[], their count into
 * *count.  *last is set when the final chunk read is the stream's last.
 * The first chunk read has counter age_decryptor_counter() before the
 * call.  Checks framing only; authenticity is age_chunk_open's job.
 */
int age_decryptor_read_chunks(struct age_decryptor *d, unsigned char *buf,
    size_t n, size_t *lens, size_t *count, int *last, struct smimp_err *err);
uint64_t age_decryptor_counter(const struct age_decryptor *d);
/* The id of the one-time prekey that opened it, or "". */
const char *age_decryptor_prekey(const struct age_decryptor *d);
const unsigned char *age_decryptor_payload_key(const struct age_decryptor *d);
void age_decrypt_free(struct age_decryptor *d);

/*
 * Does fd hold an age file whose header parses (armored or not)?  0 if
 * so; reads the header and nothing decrypts.  The fd's offset moves.
 */
int age_header_check_fd(int fd, struct smimp_err *err);
/* The same for an age file of len bytes in memory (at most 256 KiB). */
int age_header_check_mem(const void *data, size_t len,
    struct smimp_err *err);

/* Encryption: write header and payload nonce, return the payload key. */
int age_encrypt_begin(struct age_out *out, const struct age_recipient *rcpts,
    size_t n, unsigned char payload_key[AGE_PAYLOAD_KEY_SIZE],
    struct smimp_err *err);
int age_encrypt_begin_passphrase(struct age_out *out, const char *pass,
    size_t pass_len, int log_n, unsigned char payload_key[AGE_PAYLOAD_KEY_SIZE],
    struct smimp_err *err);

/*
 * After age_encrypt_begin*: all of the payload at once (a small file
 * held in memory), sealed in chunks; the caller then closes out.
 */
int age_encrypt_all(struct age_out *out,
    const unsigned char payload_key[AGE_PAYLOAD_KEY_SIZE], const void *data,
    size_t len, struct smimp_err *err);

/* Streaming encryption on top of age_encrypt_begin*. */
struct age_encryptor;
struct age_encryptor *age_encryptor_new(struct age_out *out,
    const unsigned char payload_key[AGE_PAYLOAD_KEY_SIZE],
    struct smimp_err *err);
int age_encryptor_write(struct age_encryptor *e, const void *buf, size_t len,
    struct smimp_err *err);
/* Seal the final chunk; does not close out. */
int age_encryptor_finish(struct age_encryptor *e, struct smimp_err *err);
void age_encryptor_free(struct age_encryptor *e);

/*
 * One STREAM chunk.  ct holds len + AGE_TAG_SIZE bytes.  Thread-safe:
 * no state beyond the arguments.  age_chunk_open returns -1 if the tag
 * does not verify (or an empty chunk is not the first one).
 */
void age_chunk_seal(const unsigned char key[AGE_PAYLOAD_KEY_SIZE],
    uint64_t counter, int last, const unsigned char *pt, size_t len,
    unsigned char *ct);
int age_chunk_open(const unsigned char key[AGE_PAYLOAD_KEY_SIZE],
    uint64_t counter, int last, const unsigned char *ct, size_t ct_len,
    unsigned char *pt);

/* age's Bech32 key strings. */
int age_identity_encode(const unsigned char secret[32],
    char out[AGE_IDENTITY_STRLEN]);
int age_recipient_encode(const unsigned char pub[32],
    char out[AGE_RECIPIENT_STRLEN]);
int age_identity_decode(const char *s, unsigned char secret[32]);
int age_recipient_decode(const char *s, unsigned char pub[32]);

/* HKDF-SHA-256 (RFC 5869); -1 if out_len > 255 * 32. */
int hkdf_sha256(unsigned char *out, size_t out_len,
    const unsigned char *ikm, size_t ikm_len,
    const unsigned char *salt, size_t salt_len,
    const unsigned char *info, size_t info_len);

#endif
