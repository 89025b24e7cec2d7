/*
 * prekeystore.c - the secrets of one's own one-time prekeys, sealed
 * to one's own encryption key (see prekeystore.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "exitcode.h"
#include "fileio.h"
#include "prekeystore.h"
#include "banned.h"

/* A secret's line: "secret: ID DATE BASE64" and its LF. */
#define LINE_MAX_BYTES	128
#define HEAD_MAX_BYTES	(64 + ADDRESS_MAX + IDDEV_NAME_MAX)
#define TEXT_MAX	(HEAD_MAX_BYTES + PREKEY_STORE_MAX * LINE_MAX_BYTES)

int
prekey_store_path(const char *keypath, char *out, size_t cap,
    struct smimp_err *err)
{
	if (key_path_beside(keypath, "prekeys", out, cap) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return 0;
}

const unsigned char *
prekey_store_find(const struct prekey_store *ps, const char *id)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (strcmp(ps->s[i].id, id) == 0)
			return ps->s[i].secret;
	return NULL;
}

/*
 * The room for PREKEY_STORE_MAX secrets, made once: 128 KiB of locked
 * memory that a command opening a message with no prekeys never needs.
 */
static int
room(struct prekey_store *ps)
{
	if (ps->s == NULL)
		ps->s = sodium_malloc(PREKEY_STORE_MAX * sizeof(*ps->s));
	return ps->s != NULL ? 0 : -1;
}

int
prekey_store_add(struct prekey_store *ps, const char *id, int64_t date,
    const unsigned char secret[32])
{
	size_t i, oldest = 0;

	if (!prekey_id_valid(id, strlen(id)) || prekey_store_find(ps, id) ||
	    room(ps) != 0)
		return -1;
	if (ps->n == PREKEY_STORE_MAX) {
		for (i = 1; i < ps->n; i++)
			if (ps->s[i].date < ps->s[oldest].date)
				oldest = i;
		ps->s[oldest] = ps->s[--ps->n];
	}
	memcpy(ps->s[ps->n].id, id, PREKEY_ID_LEN + 1);
	ps->s[ps->n].date = date;
	memcpy(ps->s[ps->n].secret, secret, 32);
	ps->n++;
	return 0;
}

int
prekey_store_remove(struct prekey_store *ps, const char *id)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		if (strcmp(ps->s[i].id, id) != 0)
			continue;
		ps->s[i] = ps->s[--ps->n];
		sodium_memzero(&ps->s[ps->n], sizeof(ps->s[ps->n]));
		return 1;
	}
	return 0;
}

void
prekey_store_release(struct prekey_store *ps)
{
	if (ps->s != NULL)
		sodium_free(ps->s);
	if (ps->lock_fd >= 0)
		close(ps->lock_fd);	/* releases the lock */
	memset(ps, 0, sizeof(*ps));
	ps->lock_fd = -1;
}

static int
take_lock(struct prekey_store *ps, struct smimp_err *err)
{
	if ((size_t)snprintf(ps->lock_path, sizeof(ps->lock_path), "%s.lock",
	    ps->path) >= sizeof(ps->lock_path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	ps->lock_fd = file_lock_open(ps->lock_path, "the prekey store", err);
	return ps->lock_fd < 0 ? -1 : 0;
}

static int
malformed(const struct prekey_store *ps, struct smimp_err *err,
    const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "'%s': malformed prekey "
	    "secrets: %s", ps->path, what);
}

/* "ID DATE SECRET" of a secret line. */
static int
parse_secret(struct prekey_store *ps, const struct kv_line *kv)
{
	const char *v = kv->value, *end = v + kv->value_len, *sp1, *sp2;
	int64_t date;
	int r;

	if (ps->n == PREKEY_STORE_MAX || !kv_is(kv, "secret"))
		return -1;
	sp1 = memchr(v, ' ', kv->value_len);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) :
	    NULL;
	if (sp2 == NULL || !prekey_id_valid(v, (size_t)(sp1 - v)) ||
	    time_parse(sp1 + 1, (size_t)(sp2 - sp1 - 1), &date) != 0)
		return -1;
	memcpy(ps->s[ps->n].id, v, PREKEY_ID_LEN);
	ps->s[ps->n].id[PREKEY_ID_LEN] = '\0';
	ps->s[ps->n].date = date;
	r = b64_decode_exact(sp2 + 1, (size_t)(end - sp2 - 1),
	    ps->s[ps->n].secret, 32);
	if (r != 0 || prekey_store_find(ps, ps->s[ps->n].id) != NULL) {
		sodium_memzero(&ps->s[ps->n], sizeof(ps->s[ps->n]));
		return -1;
	}
	ps->n++;
	return 0;
}

/* The plain text: the head names sk's address (and device), then lines. */
static int
parse_text(struct prekey_store *ps, const char *t, size_t len,
    const struct secret_key *sk, struct smimp_err *err)
{
	size_t pos = strlen(PREKEY_STORE_MAGIC);
	char buf[ADDRESS_MAX + 1];
	struct kv_line kv;
	int r;

	if (len < pos || memcmp(t, PREKEY_STORE_MAGIC, pos) != 0)
		return malformed(ps, err, "no smimp-prekey-secrets/1 line");
	if (kv_next(t, len, &pos, HEAD_MAX_BYTES, &kv) != 1 ||
	    !kv_is(&kv, "address") || kv_value_copy(&kv, buf, sizeof(buf)) ||
	    strcmp(buf, sk->address) != 0)
		return malformed(ps, err, "not the secrets of this key's "
		    "address");
	r = kv_next(t, len, &pos, LINE_MAX_BYTES, &kv);
	if (r == 1 && kv_is(&kv, "device")) {
		if (kv_value_copy(&kv, buf, sizeof(buf)) != 0 ||
		    !sk->is_device || strcmp(buf, sk->device) != 0)
			return malformed(ps, err, "not the secrets of this "
			    "device");
		r = kv_next(t, len, &pos, LINE_MAX_BYTES, &kv);
	} else if (sk->is_device) {
		return malformed(ps, err, "not the secrets of this device");
	}
	for (; r == 1; r = kv_next(t, len, &pos, LINE_MAX_BYTES, &kv))
		if (parse_secret(ps, &kv) != 0)
			return malformed(ps, err, "a bad secret line");
	return r == 0 ? 0 : malformed(ps, err, "a bad line");
}

/* The age file at fd, opened with sk's current or a retired key. */
static int
decrypt(struct prekey_store *ps, int fd, const struct secret_key *sk,
    char *text, size_t *len, struct smimp_err *err)
{
	struct age_identity ids[1 + KEY_RETIRED_MAX];
	struct age_decryptor *d = NULL;
	struct age_in *in;
	size_t i, nids, got;
	int ret = -1;

	in = age_in_open_fd(fd, err);
	if (in == NULL)
		return -1;
	memset(ids, 0, sizeof(ids));
	nids = 1 + (sk->nretired < KEY_RETIRED_MAX ? sk->nretired :
	    KEY_RETIRED_MAX);
	for (i = 0; i < nids; i++) {
		ids[i].type = AGE_ID_X25519;
		ids[i].x25519_secret = i == 0 ? sk->encryption_secret :
		    sk->retired + 32 * (i - 1);
	}
	d = age_decrypt_begin(in, ids, nids, err);
	if (d == NULL) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "'%s': cannot decrypt the "
		    "prekey secrets with this key", ps->path);
		goto out;
	}
	for (*len = 0;; *len += got) {
		if (age_decrypt_read(d, (unsigned char *)text + *len,
		    TEXT_MAX + 1 - *len, &got, err) != 0)
			goto out;
		if (got == 0)
			break;
		if (*len + got > TEXT_MAX) {
			malformed(ps, err, "too large");
			goto out;
		}
	}
	ret = 0;
out:
	age_decrypt_free(d);
	age_in_free(in);
	return ret;
}

int
prekey_store_load(struct prekey_store *ps, const char *path,
    const struct secret_key *sk, int lock, struct smimp_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int fd = -1, ret = -1;

	memset(ps, 0, sizeof(*ps));
	ps->lock_fd = -1;
	if ((size_t)snprintf(ps->path, sizeof(ps->path), "%s", path) >=
	    sizeof(ps->path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (lock && take_lock(ps, err) != 0)
		return -1;
	/* No file, no secrets: their room is made by the first add. */
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	ps->exists = 1;
	if (room(ps) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	fd = open_private(path, err);
	text = sodium_malloc(TEXT_MAX + 1);
	if (fd < 0 || text == NULL) {
		if (fd >= 0)
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (decrypt(ps, fd, sk, text, &len, err) == 0 &&
	    parse_text(ps, text, len, sk, err) == 0)
		ret = 0;
out:
	if (text != NULL)
		sodium_free(text);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The plain text of the secrets, into sodium_malloc'd *text. */
static int
serialize(const struct prekey_store *ps, const struct secret_key *sk,
    char **text, size_t *len)
{
	char when[TIME_STRLEN], b64[sodium_base64_ENCODED_LEN(32,
	    sodium_base64_VARIANT_ORIGINAL)];
	size_t i, off;

	*text = sodium_malloc(TEXT_MAX + 1);
	if (*text == NULL)
		return -1;
	off = (size_t)snprintf(*text, HEAD_MAX_BYTES, PREKEY_STORE_MAGIC
	    "address: %s\n", sk->address);
	if (sk->is_device)
		off += (size_t)snprintf(*text + off, TEXT_MAX + 1 - off,
		    "device: %s\n", sk->device);
	for (i = 0; i < ps->n; i++) {
		time_format(ps->s[i].date, when);
		sodium_bin2base64(b64, sizeof(b64), ps->s[i].secret, 32,
		    sodium_base64_VARIANT_ORIGINAL);
		off += (size_t)snprintf(*text + off, TEXT_MAX + 1 - off,
		    "secret: %s %s %s\n", ps->s[i].id, when, b64);
	}
	sodium_memzero(b64, sizeof(b64));
	*len = off;
	return 0;
}

/* Seal text to pub into fd. */
static int
seal_to(int fd, const unsigned char pub[32], const char *text, size_t len,
    struct smimp_err *err)
{
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	struct age_recipient r;
	struct age_out *out;
	int ret;

	memset(&r, 0, sizeof(r));
	memcpy(r.x25519_public, pub, 32);
	out = age_out_open_fd(fd, 0, err);
	if (out == NULL)
		return -1;
	ret = age_encrypt_begin(out, &r, 1, key, err) != 0 ||
	    age_encrypt_all(out, key, text, len, err) != 0 ||
	    age_out_close(out, err) != 0 ? -1 : 0;
	sodium_memzero(key, sizeof(key));
	age_out_free(out);
	return ret;
}

int
prekey_store_save(struct prekey_store *ps, const struct secret_key *sk,
    struct smimp_err *err)
{
	unsigned char pub[32];
	char tmp[PATH_MAX + 32], *text = NULL;
	size_t len;
	int fd, r;

	if (crypto_scalarmult_base(pub, sk->encryption_secret) != 0 ||
	    serialize(ps, sk, &text, &len) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot write the "
		    "prekey secrets");
	fd = tmpfile_beside(ps->path, tmp, sizeof(tmp), err);
	r = fd < 0 ? -1 : seal_to(fd, pub, text, len, err);
	sodium_free(text);
	if (fd < 0)
		return -1;
	/* Synced before it replaces the old: a crash leaves one or other. */
	if (r == 0 && fsync(fd) != 0)
		r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot sync '%s'", tmp);
	if (close(fd) != 0 && r == 0)
		r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
	if (r == 0)
		r = file_commit(tmp, ps->path, 1, err);
	if (r != 0)
		(void)unlink(tmp);
	else
		ps->exists = 1;
	return r;
}
