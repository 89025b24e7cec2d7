/*
 * keys.c - secret key files and passphrases.
 *
 * Plain form (smimp-key(5)):
 *	smimp-secret-key/1
 *	address: alice@example.org
 *	identity-secret: <base64 Ed25519 seed>
 *	encryption-secret: <base64 X25519 secret>
 *	retired-encryption-secret: <base64 X25519 secret>	(0 or more)
 * or for the recovery key "smimp-recovery-key/1", address,
 * "recovery-secret"; or for a device's key "smimp-device-key/1",
 * address, "device", "signing-secret", "encryption-secret".  With a passphrase the plain form is wrapped in an
 * armored age file with one scrypt stanza.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "exitcode.h"
#include "fileio.h"
#include "keys.h"
#include "util.h"
#include "banned.h"

#define KEY_MAGIC	"smimp-secret-key/1\n"
#define RETIRED_FIELD	"retired-encryption-secret"
#define RECOVERY_MAGIC	"smimp-recovery-key/1\n"
#define DEVICE_MAGIC	"smimp-device-key/1\n"
#define SEED_SIZE	32
/*
 * secrets block: Ed25519 secret (64), X25519 secret (32), then room for
 * the two seeds the pair is made from (64), wiped once it is made; a
 * key read from a file has its text after them (PLAIN_ROOM), wiped once
 * parsed.  One locked allocation for all: each is several system calls.
 */
#define SECRETS_SIZE	(64 + 32 + 64)
#define SEEDS(sk)	((sk)->secrets + 96)
/* One more byte than a key file may hold, to tell it is too long. */
#define PLAIN_ROOM	(KEYFILE_MAX_BYTES + 2)

static int
secrets_alloc(struct secret_key *sk, size_t extra, struct smimp_err *err)
{
	sk->secrets = sodium_malloc(SECRETS_SIZE + extra);
	if (sk->secrets == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	sk->identity_secret = sk->secrets;
	sk->encryption_secret = sk->secrets + 64;
	return 0;
}

void
secret_key_release(struct secret_key *sk)
{
	if (sk->secrets != NULL)
		sodium_free(sk->secrets);
	if (sk->retired != NULL)
		sodium_free(sk->retired);
	memset(sk, 0, sizeof(*sk));
}

/* Room for KEY_RETIRED_MAX retired secrets, once. */
static int
retired_alloc(struct secret_key *sk, struct smimp_err *err)
{
	if (sk->retired != NULL)
		return 0;
	sk->retired = sodium_malloc(KEY_RETIRED_MAX * 32);
	if (sk->retired == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	return 0;
}

/*
 * Fill the key pair from seeds (encryption seed ignored for recovery).
 * The X25519 public key is derived only on request: opening a message
 * does not need it, and a scalar multiplication is most of a small
 * command's time.
 */
static int
derive(struct secret_key *sk, const unsigned char *id_seed,
    const unsigned char *enc_secret)
{
	if (crypto_sign_seed_keypair(sk->identity_public, sk->identity_secret,
	    id_seed) != 0)
		return -1;
	if (!sk->is_recovery)
		memcpy(sk->encryption_secret, enc_secret, 32);
	return 0;
}

int
key_path_beside(const char *keypath, const char *ext, char *out, size_t cap)
{
	size_t len = strlen(keypath);
	int n;

	if (len > 4 && strcmp(keypath + len - 4, ".key") == 0)
		n = snprintf(out, cap, "%.*s.%s", (int)(len - 4), keypath, ext);
	else
		n = snprintf(out, cap, "%s.%s", keypath, ext);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
secret_key_file_at(const char *path)
{
	/*
	 * An encrypted key is age with an scrypt stanza first, armored:
	 * its first base64 is that of "age-encryption.org/v1\n-> scryp".
	 * A sealed message, to X25519 keys, is never taken for one.
	 */
	static const char *const heads[] = {
		"smimp-secret-key/1\n", "smimp-device-key/1\n",
		"smimp-recovery-key/1\n", AGE_VERSION_LINE "\n-> scrypt ",
		"-----BEGIN AGE ENCRYPTED FILE-----\n"
		    "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlw",
	};
	char head[96];
	struct stat st;
	size_t got, i, n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    fd_read_full(fd, head, sizeof(head), &got) == 0) {
		for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
			n = strlen(heads[i]);
			if (got >= n && memcmp(head, heads[i], n) == 0)
				ret = 1;
		}
	}
	(void)close(fd);
	return ret;
}

int
output_not_secret_key(const char *path, struct smimp_err *err)
{
	if (path == NULL || strcmp(path, "-") == 0 ||
	    !secret_key_file_at(path))
		return 0;
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' holds a secret "
	    "key: refusing to replace it", path);
}

const unsigned char *
secret_key_encryption_public(struct secret_key *sk)
{
	if (!sk->has_encryption_public &&
	    crypto_scalarmult_base(sk->encryption_public,
	    sk->encryption_secret) == 0)
		sk->has_encryption_public = 1;
	return sk->has_encryption_public ? sk->encryption_public : NULL;
}

static int
generate(struct secret_key *sk, const char *address, int recovery,
    struct smimp_err *err)
{
	unsigned char *seeds;
	int ret = -1;

	memset(sk, 0, sizeof(*sk));
	if (secrets_alloc(sk, 0, err) != 0)
		return -1;
	seeds = SEEDS(sk);
	randombytes_buf(seeds, 64);
	sk->is_recovery = recovery;
	(void)snprintf(sk->address, sizeof(sk->address), "%s", address);
	if (derive(sk, seeds, seeds + 32) != 0 ||
	    (!recovery && secret_key_encryption_public(sk) == NULL)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot derive keys");
		goto out;
	}
	ret = 0;
out:
	sodium_memzero(seeds, 64);
	if (ret != 0)
		secret_key_release(sk);
	return ret;
}

int
secret_key_generate(struct secret_key *sk, const char *address,
    struct smimp_err *err)
{
	return generate(sk, address, 0, err);
}

int
recovery_key_generate(struct secret_key *sk, const char *address,
    struct smimp_err *err)
{
	return generate(sk, address, 1, err);
}

int
device_key_generate(struct secret_key *sk, const char *address,
    const char *device, struct smimp_err *err)
{
	if (!iddev_name_valid(device))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' is no "
		    "device name: 1 to %d characters of a-z, 0-9 and '-', not "
		    "starting with '-'", device, IDDEV_NAME_MAX);
	if (generate(sk, address, 0, err) != 0)
		return -1;
	sk->is_device = 1;
	(void)snprintf(sk->device, sizeof(sk->device), "%s", device);
	return 0;
}

/* "name: <base64 of 32 bytes>\n" onto buf at *off (cap bytes). */
static int
put_secret(char *buf, size_t cap, size_t *off, const char *name,
    const unsigned char secret[32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	int n;

	sodium_bin2base64(b64, sizeof(b64), secret, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(buf + *off, cap - *off, "%s: %s\n", name, b64);
	sodium_memzero(b64, sizeof(b64));
	if (n < 0 || (size_t)n >= cap - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

/* The plain text form, in sodium_malloc memory. */
static char *
serialize(const struct secret_key *sk, size_t *len)
{
	size_t cap = 512 + sk->nretired * 80, off = 0, i;
	char *buf = sodium_malloc(cap);
	int n;

	if (buf == NULL)
		return NULL;
	if (sk->is_device)
		n = snprintf(buf, cap, "%saddress: %s\ndevice: %s\n",
		    DEVICE_MAGIC, sk->address, sk->device);
	else
		n = snprintf(buf, cap, "%saddress: %s\n", sk->is_recovery ?
		    RECOVERY_MAGIC : KEY_MAGIC, sk->address);
	if (n < 0 || (size_t)n >= cap)
		goto fail;
	off = (size_t)n;
	/* The Ed25519 secret key's first 32 bytes are its seed. */
	if (put_secret(buf, cap, &off, sk->is_recovery ? "recovery-secret" :
	    sk->is_device ? "signing-secret" : "identity-secret",
	    sk->identity_secret) != 0)
		goto fail;
	if (!sk->is_recovery && put_secret(buf, cap, &off,
	    "encryption-secret", sk->encryption_secret) != 0)
		goto fail;
	for (i = 0; i < sk->nretired; i++)
		if (put_secret(buf, cap, &off, RETIRED_FIELD,
		    sk->retired + 32 * i) != 0)
			goto fail;
	*len = off;
	return buf;
fail:
	sodium_free(buf);
	return NULL;
}

static int
write_encrypted(int fd, const char *text, size_t len, const char *pass,
    size_t pass_len, struct smimp_err *err)
{
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	struct age_out *out;
	int ret;

	out = age_out_open_fd(fd, 1, err);
	if (out == NULL)
		return -1;
	ret = age_encrypt_begin_passphrase(out, pass, pass_len,
	    AGE_SCRYPT_LOGN, key, err) != 0 || age_encrypt_all(out, key, text,
	    len, err) != 0 || age_out_close(out, err) != 0 ? -1 : 0;
	sodium_memzero(key, sizeof(key));
	age_out_free(out);
	return ret;
}

int
secret_key_stage(const struct secret_key *sk, const char *path,
    const char *pass, size_t pass_len, char *tmp, size_t cap,
    struct smimp_err *err)
{
	char *text;
	size_t len;
	int fd, ret = -1;

	text = serialize(sk, &len);
	if (text == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot serialize the key");
	fd = tmpfile_beside(path, tmp, cap, err);
	if (fd < 0) {
		sodium_free(text);
		return -1;
	}
	if (pass != NULL) {
		if (write_encrypted(fd, text, len, pass, pass_len, err) != 0)
			goto fail;
	} else if (fd_write_all(fd, text, len) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		goto fail;
	}
	if (fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot sync '%s'", tmp);
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		goto fail;
	}
	fd = -1;
	ret = 0;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
out:
	sodium_free(text);
	return ret;
}

int
secret_key_write(const struct secret_key *sk, const char *path,
    const char *pass, size_t pass_len, struct smimp_err *err)
{
	char tmp[PATH_MAX];

	if (access(path, F_OK) == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' already "
		    "exists", path);
	if (secret_key_stage(sk, path, pass, pass_len, tmp, sizeof(tmp),
	    err) != 0)
		return -1;
	return file_commit(tmp, path, 0, err);
}

int
secret_key_new_identity(struct secret_key *sk, struct smimp_err *err)
{
	unsigned char *seed = sodium_malloc(32);
	int r;

	if (seed == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	randombytes_buf(seed, 32);
	r = crypto_sign_seed_keypair(sk->identity_public, sk->identity_secret,
	    seed);
	sodium_free(seed);
	return r == 0 ? 0 : smimp_err_set(err, SMIMP_EXIT_FAIL,
	    "cannot derive keys");
}

int
secret_key_new_encryption(struct secret_key *sk, struct smimp_err *err)
{
	size_t keep;

	if (sk->is_recovery)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a recovery key has "
		    "no encryption key");
	if (retired_alloc(sk, err) != 0)
		return -1;
	keep = sk->nretired < KEY_RETIRED_MAX ? sk->nretired :
	    KEY_RETIRED_MAX - 1;
	memmove(sk->retired + 32, sk->retired, keep * 32);
	memcpy(sk->retired, sk->encryption_secret, 32);
	sk->nretired = keep + 1;
	randombytes_buf(sk->encryption_secret, 32);
	sk->has_encryption_public = 0;
	if (secret_key_encryption_public(sk) == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot derive "
		    "keys");
	return 0;
}

/*
 * The next line of buf, which must be "name: value" (one colon, one
 * space, no control character, at most KEYFILE_LINE_MAX bytes, LF).
 */
static int
field(const char *buf, size_t len, size_t *pos, const char *name,
    struct kv_line *kv)
{
	return kv_next(buf, len, pos, KEYFILE_LINE_MAX, kv) == 1 &&
	    kv_is(kv, name) ? 0 : -1;
}

/*
 * Parse the plain form held in buf (NUL-terminated, in sk's secrets
 * block, which sk has and nothing else yet); the caller releases sk on
 * failure.
 */
static int
parse_plain(struct secret_key *sk, const char *buf, size_t len,
    const char *path, struct smimp_err *err)
{
	unsigned char *seeds = SEEDS(sk);
	struct kv_line kv;
	size_t pos;
	char addr[ADDRESS_MAX + 1];
	struct smimp_err aerr;
	int ret = -1, recovery = 0, device = 0;

	if (len >= strlen(KEY_MAGIC) &&
	    memcmp(buf, KEY_MAGIC, strlen(KEY_MAGIC)) == 0) {
		pos = strlen(KEY_MAGIC);
	} else if (len >= strlen(RECOVERY_MAGIC) &&
	    memcmp(buf, RECOVERY_MAGIC, strlen(RECOVERY_MAGIC)) == 0) {
		recovery = 1;
		pos = strlen(RECOVERY_MAGIC);
	} else if (len >= strlen(DEVICE_MAGIC) &&
	    memcmp(buf, DEVICE_MAGIC, strlen(DEVICE_MAGIC)) == 0) {
		device = 1;
		pos = strlen(DEVICE_MAGIC);
	} else {
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "'%s' is not a smimp secret key file", path);
	}
	sk->is_recovery = recovery;
	sk->is_device = device;
	/* The address as written: normalized, as smimp-keygen writes it. */
	if (field(buf, len, &pos, "address", &kv) != 0 ||
	    kv_value_copy(&kv, addr, sizeof(addr)) != 0 ||
	    address_normalize(addr, sk->address, &aerr) != 0 ||
	    strcmp(addr, sk->address) != 0)
		goto malformed;
	if (device && (field(buf, len, &pos, "device", &kv) != 0 ||
	    kv_value_copy(&kv, sk->device, sizeof(sk->device)) != 0 ||
	    !iddev_name_valid(sk->device)))
		goto malformed;
	if (field(buf, len, &pos, recovery ? "recovery-secret" : device ?
	    "signing-secret" : "identity-secret", &kv) != 0 ||
	    b64_decode_exact(kv.value, kv.value_len, seeds, 32) != 0)
		goto malformed;
	if (!recovery && (field(buf, len, &pos, "encryption-secret", &kv) != 0
	    || b64_decode_exact(kv.value, kv.value_len, seeds + 32, 32) != 0))
		goto malformed;
	/* Retired encryption secrets, newest first, in identity files. */
	while (!recovery && !device && pos < len) {
		if (field(buf, len, &pos, RETIRED_FIELD, &kv) != 0 ||
		    sk->nretired == KEY_RETIRED_MAX)
			goto malformed;
		if (retired_alloc(sk, err) != 0)
			goto out;
		if (b64_decode_exact(kv.value, kv.value_len,
		    sk->retired + 32 * sk->nretired, 32) != 0)
			goto malformed;
		sk->nretired++;
	}
	if (pos != len)
		goto malformed;
	if (derive(sk, seeds, seeds + 32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "'%s': bad key", path);
		goto out;
	}
	ret = 0;
	goto out;
malformed:
	smimp_err_set(err, SMIMP_EXIT_BADMSG, "'%s': malformed secret key file",
	    path);
out:
	sodium_memzero(seeds, 64);
	return ret;
}

/*
 * The age layer's refusal of the key file at path, said with its name:
 * on its own, "malformed armor: ..." would pass for the message's.
 */
static int
keyfile_refused(const char *path, struct smimp_err *err)
{
	char msg[SMIMP_ERR_MSG];

	memcpy(msg, err->msg, sizeof(msg));
	return smimp_err_set(err, err->code, "'%s': %s", path, msg);
}

static int
decrypt_keyfile(int fd, const char *path, const struct passphrase_source *src,
    char *plain, size_t cap, size_t *len, char **keep, size_t *keep_len,
    struct smimp_err *err)
{
	struct age_decryptor *d = NULL;
	struct age_identity id;
	struct age_in *in;
	char *pass = NULL;
	size_t pass_len = 0, got;
	int ret = -1;

	in = age_in_open_fd(fd, err);
	if (in == NULL)
		return keyfile_refused(path, err);
	if (passphrase_get(src, "Passphrase for the secret key: ", 0, &pass,
	    &pass_len, err) != 0)
		goto out;
	memset(&id, 0, sizeof(id));
	id.type = AGE_ID_SCRYPT;
	id.passphrase = pass;
	id.passphrase_len = pass_len;
	d = age_decrypt_begin(in, &id, 1, err);
	if (d == NULL) {
		if (err->detail == AGE_FAIL_NO_MATCH)
			smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "'%s': wrong passphrase", path);
		else
			keyfile_refused(path, err);
		goto out;
	}
	*len = 0;
	for (;;) {
		if (age_decrypt_read(d, (unsigned char *)plain + *len,
		    cap - *len, &got, err) != 0) {
			keyfile_refused(path, err);
			goto out;
		}
		if (got == 0)
			break;
		*len += got;
		if (*len == cap) {
			smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "'%s': secret key too large", path);
			goto out;
		}
	}
	plain[*len] = '\0';
	ret = 0;
	if (keep != NULL) {
		*keep = pass;
		*keep_len = pass_len;
		pass = NULL;
	}
out:
	age_decrypt_free(d);
	age_in_free(in);
	passphrase_free(pass, pass_len);
	return ret;
}

static int
load(struct secret_key *sk, const char *path,
    const struct passphrase_source *src, char **keep, size_t *keep_len,
    struct smimp_err *err)
{
	char *plain = NULL;
	unsigned char head[40];
	size_t len = 0;
	ssize_t n;
	int fd, ret = -1;

	memset(sk, 0, sizeof(*sk));
	fd = open_private(path, err);
	if (fd < 0)
		return -1;
	if (secrets_alloc(sk, PLAIN_ROOM, err) != 0)
		goto out;
	plain = (char *)sk->secrets + SECRETS_SIZE;
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'", path);
		goto out;
	}
	if ((size_t)n >= strlen(AGE_ARMOR_BEGIN) &&
	    (memcmp(head, AGE_ARMOR_BEGIN, strlen(AGE_ARMOR_BEGIN)) == 0 ||
	    memcmp(head, "age-encryption.org/v1\n", 22) == 0)) {
		if (decrypt_keyfile(fd, path, src, plain, KEYFILE_MAX_BYTES + 1,
		    &len, keep, keep_len, err) != 0)
			goto out;
	} else if (fd_read_into(fd, path, KEYFILE_MAX_BYTES,
	    (unsigned char *)plain, &len, err) != 0) {
		goto out;
	}
	ret = parse_plain(sk, plain, len, path, err);
out:
	if (plain != NULL)
		sodium_memzero(plain, PLAIN_ROOM);
	if (ret != 0)
		secret_key_release(sk);
	close(fd);
	return ret;
}

int
secret_key_load(struct secret_key *sk, const char *path,
    const struct passphrase_source *src, struct smimp_err *err)
{
	return load(sk, path, src, NULL, NULL, err);
}

int
secret_key_load_keep(struct secret_key *sk, const char *path,
    const struct passphrase_source *src, char **pass, size_t *pass_len,
    struct smimp_err *err)
{
	*pass = NULL;
	*pass_len = 0;
	if (load(sk, path, src, pass, pass_len, err) == 0)
		return 0;
	passphrase_free(*pass, *pass_len);
	*pass = NULL;
	return -1;
}

/* Is line "identity VALUE"?  VALUE, trimmed, into *value. */
static int
identity_line(char *line, char **value)
{
	char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, "identity", 8) != 0 || (line[8] != ' ' &&
	    line[8] != '\t'))
		return 0;
	line += 8;
	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	*value = line;
	return 1;
}

/*
 * A line of the config file that names no setting, or none with a
 * value, is an error here too (smimp-config(5)), as in clientconf.c:
 * the command that reads only the identity does not pass over a typo.
 */
static int
config_line_check(const char *path, size_t lineno, const char *line,
    struct smimp_err *err)
{
	char name[41];
	size_t n;

	line += strspn(line, " \t");
	if (*line == '\0' || *line == '#')
		return 0;
	n = strcspn(line, " \t");
	(void)snprintf(name, sizeof(name), "%.*s", (int)(n < 40 ? n : 40),
	    line);
	if (n > 40 || !client_config_known(name))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: unknown "
		    "setting '%s'", path, lineno, name);
	line += n;
	if (line[strspn(line, " \t\r")] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: %s needs "
		    "a value", path, lineno, name);
	return 0;
}

int
config_identity(char *out, size_t cap, struct smimp_err *err)
{
	char path[PATH_MAX], *line, *next, *value = NULL;
	unsigned char *buf;
	size_t len, n, lineno = 0;
	int r, found = 0;

	if ((r = client_config_read(path, sizeof(path), &buf, &len, err)) <= 0)
		return r;
	for (line = (char *)buf; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (config_line_check(path, ++lineno, line, err) != 0) {
			free(buf);
			return -1;
		}
		if (!found)
			found = identity_line(line, &value);
	}
	if (found) {
		n = strlen(value);
		if (value[0] != '/' || n < 5 || strcmp(value + n - 4, ".key") ||
		    n >= cap) {
			free(buf);
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s: identity "
			    "must name a key file by its absolute path, ending "
			    "in .key", path);
		}
		memcpy(out, value, n + 1);
	}
	free(buf);
	return found;
}

int
default_identity_path(char *out, size_t cap, const char *ext,
    struct smimp_err *err)
{
	char home[PATH_MAX], key[PATH_MAX];
	struct stat st;
	size_t len;
	int n, r;

	if (smimp_home(home, sizeof(home), err) != 0)
		return -1;
	n = snprintf(key, sizeof(key), "%s/identity.key", home);
	if (n < 0 || (size_t)n >= sizeof(key))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	/* The home's own identity first; else the one its config names. */
	if (lstat(key, &st) != 0 && errno == ENOENT &&
	    (r = config_identity(key, sizeof(key), err)) != 0) {
		if (r < 0)
			return -1;
		len = strlen(key) - 4;		/* without ".key" */
		n = snprintf(out, cap, "%.*s.%s", (int)len, key, ext);
		if (n < 0 || (size_t)n >= cap)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "the "
			    "default identity's name is too long");
		return 0;
	}
	n = snprintf(out, cap, "%s/identity.%s", home, ext);
	if (n < 0 || (size_t)n >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	/* Nothing in SMIMP_HOME is followed elsewhere (-i names one). */
	if (lstat(out, &st) == 0 && S_ISLNK(st.st_mode))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is a symbolic "
		    "link: refusing to follow it", out);
	return 0;
}

int
default_identity_record(const char *keypath, struct smimp_err *err)
{
	char home[PATH_MAX], path[PATH_MAX], named_key[PATH_MAX];
	char line[PATH_MAX + 16];
	unsigned char *old = NULL;
	struct sbuf sb;
	struct stat st;
	mode_t mode = 0600;
	size_t old_len = 0;
	int named, n, r, ret = -1;

	if (client_config_path(path, sizeof(path), &named, err) != 0)
		return -1;
	if (named || smimp_home(home, sizeof(home), err) != 0)
		return named ? 0 : -1;
	n = snprintf(line, sizeof(line), "%s/identity.key", home);
	if (n < 0 || (size_t)n >= sizeof(line) || lstat(line, &st) == 0 ||
	    errno != ENOENT)
		return 0;
	if ((r = config_identity(named_key, sizeof(named_key), err)) != 0)
		return r < 0 ? -1 : 0;
	/* A line break would write a line of its own into the file. */
	if (text_has_control(keypath))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a key path with a "
		    "control character cannot be named in the config file");
	n = snprintf(line, sizeof(line), "identity %s\n", keypath);
	if (n < 0 || (size_t)n >= sizeof(line) || keypath[0] != '/')
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot name '%s' "
		    "in the config file", keypath);
	if (mkdir_p(home, 0700, err) != 0)
		return -1;
	/*
	 * The file is replaced whole (a new file, synced, renamed over
	 * it), never appended to: a write cut short by a full disk or a
	 * kill would leave half a line that every command then refuses.
	 */
	r = client_config_read(path, sizeof(path), &old, &old_len, err);
	if (r < 0)
		return -1;
	if (r > 0 && lstat(path, &st) == 0)
		mode = st.st_mode & 0777;
	sbuf_init(&sb, 64 * 1024 + sizeof(line) + 1);
	if ((old_len > 0 && (sbuf_add(&sb, old, old_len) != 0 ||
	    (old[old_len - 1] != '\n' && sbuf_add(&sb, "\n", 1) != 0))) ||
	    sbuf_add(&sb, line, (size_t)n) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot name '%s' in the "
		    "config file: it is too long", keypath);
		goto out;
	}
	if (file_write_atomic(path, sb.buf, sb.len, mode, 1, err) != 0)
		goto out;
	ret = 1;
out:
	free(old);
	sbuf_release(&sb);
	return ret;
}

void
passphrase_free(char *pass, size_t len)
{
	(void)len;
	if (pass != NULL)
		sodium_free(pass);
}

/*
 * A signal that comes while the prompt has turned echo off is noted
 * here, so that the terminal gets its echo back before the signal does
 * what it would have done (as readpassphrase(3) does).
 */
static volatile sig_atomic_t prompt_signal;

/*
 * Read one line from fd into buf (sodium memory); strips the newline
 * and a CR before it, which takes no room: a line of cap - 1 bytes fits
 * with CR LF as with LF.  -2: too long; -3: a prompt signal came.
 */
static int
read_line_fd(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	ssize_t r;
	char c = 0;
	int ret = 0, cr = 0;

	for (;;) {
		if (prompt_signal != 0) {
			ret = -3;
			break;
		}
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -1;
			break;
		}
		if (r == 0 || c == '\n')
			break;
		/* A CR waits: it is the line's only if more than LF follows. */
		if (cr && n + 1 >= cap) {
			ret = -2;
			break;
		}
		if (cr)
			buf[n++] = '\r';
		cr = c == '\r';
		if (cr)
			continue;
		if (n + 1 >= cap) {
			ret = -2;
			break;
		}
		buf[n++] = c;
	}
	sodium_memzero(&c, sizeof(c));
	if (ret != 0)
		return ret;
	buf[n] = '\0';
	*len = n;
	return 0;
}

static void
prompt_caught(int signo)
{
	prompt_signal = signo;
}

/* The signals that end or stop a process at its terminal. */
static const int prompt_signals[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU
};
#define PROMPT_NSIGNALS	\
	(sizeof(prompt_signals) / sizeof(prompt_signals[0]))

/* Catch those that are not ignored; their old actions go to old. */
static void
prompt_catch(struct sigaction old[PROMPT_NSIGNALS])
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = prompt_caught;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal ends the read with EINTR. */
	prompt_signal = 0;
	for (i = 0; i < PROMPT_NSIGNALS; i++) {
		(void)sigaction(prompt_signals[i], NULL, &old[i]);
		if (old[i].sa_handler != SIG_IGN)
			(void)sigaction(prompt_signals[i], &sa, NULL);
	}
}

static void
prompt_uncatch(const struct sigaction old[PROMPT_NSIGNALS])
{
	size_t i;

	for (i = 0; i < PROMPT_NSIGNALS; i++)
		(void)sigaction(prompt_signals[i], &old[i], NULL);
}

static int
prompt_tty(const char *prompt, char *buf, size_t cap, size_t *len,
    struct smimp_err *err)
{
	struct sigaction old_sa[PROMPT_NSIGNALS];
	struct termios old, noecho;
	int fd, r, signo, saved, ret = -1;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot open the terminal for the passphrase");
again:
	if (tcgetattr(fd, &old) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the terminal");
		goto out;
	}
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	prompt_catch(old_sa);
	(void)fd_write_all(fd, prompt, strlen(prompt));
	r = tcsetattr(fd, TCSAFLUSH, &noecho) != 0 ? -4 :
	    read_line_fd(fd, buf, cap, len);
	saved = errno;
	(void)tcsetattr(fd, TCSAFLUSH, &old);
	prompt_uncatch(old_sa);
	errno = saved;
	signo = prompt_signal;
	prompt_signal = 0;
	if (signo != 0) {
		sodium_memzero(buf, cap);
		/* No newline was typed: end the prompt's line. */
		(void)fd_write_all(fd, "\n", 1);
		/*
		 * Echo is back: now the signal may end or stop the process,
		 * as the user asked (lib/ exits on nobody else's behalf).
		 * Continued after a stop, ask again.
		 */
		(void)raise(signo);
		if (signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU)
			goto again;
		smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "passphrase prompt interrupted");
		goto out;
	}
	if (r == -4) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot set the terminal");
		goto out;
	}
	if (r == -2) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "passphrase too long");
		goto out;
	}
	if (r != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the passphrase");
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* what names the secret in errors: "passphrase", "invitation token". */
static int
passphrase_from_file(const char *file, const char *what, char *buf,
    size_t cap, size_t *len, struct smimp_err *err)
{
	int fd, r;

	/* A passphrase file is a secret as a key is, and no FIFO. */
	if (strcmp(file, "-") == 0) {
		fd = dup(STDIN_FILENO);
		if (fd < 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read the %s from stdin", what);
	} else {
		fd = open_private(file, err);
		if (fd < 0)
			return -1;
	}
	r = read_line_fd(fd, buf, cap, len);
	close(fd);
	if (r == -2)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "%s in '%s' is too long", what, file);
	if (r != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot read %s file '%s'", what, file);
	return 0;
}

int
secret_get(const char *file, const char *prompt, const char *what,
    char **out, size_t *len, struct smimp_err *err)
{
	char *buf;
	int r;

	buf = sodium_malloc(PASSPHRASE_MAX + 1);
	if (buf == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (file != NULL)
		r = passphrase_from_file(file, what, buf, PASSPHRASE_MAX + 1,
		    len, err);
	else
		r = prompt_tty(prompt, buf, PASSPHRASE_MAX + 1, len, err);
	if (r == 0 && *len == 0)
		r = smimp_err_set(err, SMIMP_EXIT_FAIL, "empty %s", what);
	if (r != 0) {
		sodium_free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

int
passphrase_get(const struct passphrase_source *src, const char *prompt,
    int confirm, char **pass, size_t *len, struct smimp_err *err)
{
	const char *file = src->file;
	char *again = NULL;
	size_t alen = 0;
	int ret = -1;

	if (file == NULL) {
		file = getenv("SMIMP_PASSPHRASE_FILE");
		if (file != NULL && file[0] == '\0')
			file = NULL;
	}
	if (file == NULL && !src->allow_prompt)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "a passphrase is needed: stdin is not a terminal, so use "
		    "--passphrase-file or SMIMP_PASSPHRASE_FILE");
	if (secret_get(file, prompt, "passphrase", pass, len, err) != 0)
		return -1;
	if (file != NULL || !confirm)
		return 0;
	if (secret_get(NULL, "Repeat the passphrase: ", "passphrase", &again,
	    &alen, err) != 0)
		goto out;
	if (alen != *len || sodium_memcmp(*pass, again, alen) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "the passphrases do not match");
		goto out;
	}
	ret = 0;
out:
	if (again != NULL)
		sodium_free(again);
	if (ret != 0) {
		sodium_free(*pass);
		*pass = NULL;
	}
	return ret;
}
