/*
 * age.c - the age v1 file format (C2SP age spec): header parsing and
 * writing, X25519 and scrypt stanzas, the header MAC and the STREAM
 * payload.  The bytes come and go through armor.c's streams.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "util.h"
#include "banned.h"

#define X25519_INFO		"age-encryption.org/v1/X25519"
#define SCRYPT_SALT_LABEL	"age-encryption.org/v1/scrypt"

/* ---- header ---- */

struct stanza {
	char *line;		/* "-> type args...", NUL-separated args */
	char **args;		/* into line */
	size_t nargs;
	unsigned char *body;
	size_t body_len;
};

struct header {
	struct sbuf raw;	/* header bytes, for the MAC */
	size_t mac_input_len;	/* up to and including "---" */
	struct stanza *st;
	size_t n;
	unsigned char mac[32];
};

static void
header_release(struct header *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		free(h->st[i].line);
		free(h->st[i].args);
		free(h->st[i].body);
	}
	free(h->st);
	sbuf_release(&h->raw);
}

/* Read one header line (LF-terminated, stored in raw) into line. */
static int
header_line(struct age_in *in, struct header *h, char **line, size_t *len,
    struct smimp_err *err)
{
	size_t start = h->raw.len;

	switch (age_in_read_line(in, &h->raw, AGE_MAX_LINE, err)) {
	case AGE_LINE_DONE:
		break;
	case AGE_LINE_EOF:
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: truncated");
	case AGE_LINE_LONG:
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: line too long");
	case AGE_LINE_FULL:
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: too large");
	default:
		return -1;
	}
	/* Without its LF, which stays in raw (the MAC covers it). */
	*len = h->raw.len - start - 1;
	*line = h->raw.buf + start;
	return 0;
}

static int
vchar_arg(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return 0;
	return 1;
}

static int
b64_nopad(const char *s, size_t len, unsigned char *out, size_t cap,
    size_t *out_len)
{
	const char *end = NULL;

	if (b64_has_high_byte(s, len) ||
	    sodium_base642bin(out, cap, s, len, NULL, out_len, &end,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 || end != s + len)
		return -1;
	return 0;
}

/*
 * Split the arguments after "-> ": single spaces, no empty ones.  As
 * many as the line holds: age sets no number, and AGE_MAX_LINE and
 * AGE_MAX_HEADER bound them.  -1: malformed, -2: out of memory.
 */
static int
stanza_args(struct stanza *st, const char *args, size_t len)
{
	size_t i, start = 0, max = 1;

	for (i = 0; i < len; i++)
		max += args[i] == ' ';
	st->line = malloc(len + 1);
	st->args = calloc(max, sizeof(*st->args));
	if (st->line == NULL || st->args == NULL)
		return -2;
	memcpy(st->line, args, len);
	st->line[len] = '\0';
	for (i = 0; i <= len; i++) {
		if (i < len && st->line[i] != ' ')
			continue;
		if (!vchar_arg(st->line + start, i - start))
			return -1;
		st->line[i] = '\0';
		st->args[st->nargs++] = st->line + start;
		start = i + 1;
	}
	return 0;
}

/* Body lines: full 64-column lines, then one shorter (maybe empty). */
static int
stanza_body(struct age_in *in, struct header *h, struct stanza *st,
    struct smimp_err *err)
{
	unsigned char chunk[48];
	char *line;
	size_t len, got;

	for (;;) {
		unsigned char *nb;

		if (header_line(in, h, &line, &len, err) != 0)
			return -1;
		if (len > 64 || b64_nopad(line, len, chunk, sizeof(chunk),
		    &got) != 0)
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: bad stanza body");
		if (st->body_len + got > AGE_MAX_HEADER)
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: too large");
		nb = realloc(st->body, st->body_len + got + 1);
		if (nb == NULL)
			return age_fail(err, AGE_FAIL_IO, "%s",
			    "out of memory");
		st->body = nb;
		memcpy(st->body + st->body_len, chunk, got);
		st->body_len += got;
		if (len < 64)
			return 0;
	}
}

/*
 * Why a first line other than the version line is refused: another age
 * version ("age-encryption.org/" and more), or not age at all.
 */
static const char *
version_refusal(const char *line, size_t len)
{
	static const char prefix[] = "age-encryption.org/";

	return len > strlen(prefix) && memcmp(line, prefix,
	    strlen(prefix)) == 0 ? "unsupported age version" :
	    "not an age file";
}

static int
header_parse(struct age_in *in, struct header *h, struct smimp_err *err)
{
	char *line;
	size_t len, got;
	int r;

	memset(h, 0, sizeof(*h));
	sbuf_init(&h->raw, AGE_MAX_HEADER);
	if (header_line(in, h, &line, &len, err) != 0) {
		if (err != NULL && err->detail == AGE_FAIL_HEADER &&
		    h->raw.len == 0)
			age_fail(err, AGE_FAIL_HEADER, "%s", "not an age file");
		return -1;
	}
	if (len != strlen(AGE_VERSION_LINE) ||
	    memcmp(line, AGE_VERSION_LINE, len) != 0)
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    version_refusal(line, len));
	for (;;) {
		struct stanza *st;

		if (header_line(in, h, &line, &len, err) != 0)
			return -1;
		if (len >= 3 && memcmp(line, "---", 3) == 0)
			break;
		if (len < 3 || memcmp(line, "-> ", 3) != 0)
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: bad stanza line");
		if (h->n == AGE_MAX_STANZAS)
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: too many stanzas");
		st = realloc(h->st, (h->n + 1) * sizeof(*st));
		if (st == NULL)
			return age_fail(err, AGE_FAIL_IO, "%s",
			    "out of memory");
		h->st = st;
		st += h->n++;
		memset(st, 0, sizeof(*st));
		r = stanza_args(st, line + 3, len - 3);
		if (r == -2)
			return age_fail(err, AGE_FAIL_IO, "%s",
			    "out of memory");
		if (r != 0)
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: bad stanza arguments");
		if (stanza_body(in, h, st, err) != 0)
			return -1;
	}
	if (h->n == 0)
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: no recipients");
	h->mac_input_len = (size_t)(line - h->raw.buf) + 3;
	if (len != 3 + 1 + 43 || line[3] != ' ' ||
	    b64_nopad(line + 4, 43, h->mac, sizeof(h->mac), &got) != 0 ||
	    got != 32)
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: bad MAC line");
	return 0;
}

static int
parse_log_n(const char *s, int *log_n)
{
	uint64_t v;

	if (parse_u64(s, strlen(s), &v) != 0 || v == 0 ||
	    v > AGE_SCRYPT_MAX_LOGN)
		return -1;
	*log_n = (int)v;
	return 0;
}

static int
is_prekey_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == AGE_PREKEY_ID_LEN;
}

/* A smimp-prekey stanza names an id, and an X25519 stanza follows it. */
static int
prekey_stanza_ok(const struct header *h, size_t i)
{
	const struct stanza *st = &h->st[i];

	return st->nargs == 2 && is_prekey_id(st->args[1]) &&
	    st->body_len == 0 && i + 1 < h->n &&
	    strcmp(h->st[i + 1].args[0], "X25519") == 0;
}

/* Check every stanza we know the shape of, before trying any key. */
static int
stanzas_check(const struct header *h, struct smimp_err *err)
{
	unsigned char tmp[32];
	size_t i, got;
	int log_n;

	for (i = 0; i < h->n; i++) {
		const struct stanza *st = &h->st[i];

		if (strcmp(st->args[0], AGE_PREKEY_STANZA) == 0 &&
		    !prekey_stanza_ok(h, i))
			return age_fail(err, AGE_FAIL_HEADER, "%s",
			    "malformed header: bad smimp-prekey stanza");
		if (strcmp(st->args[0], "X25519") == 0) {
			if (st->nargs != 2 || b64_nopad(st->args[1],
			    strlen(st->args[1]), tmp, sizeof(tmp), &got) != 0 ||
			    got != 32 || st->body_len != 32)
				return age_fail(err, AGE_FAIL_HEADER, "%s",
				    "malformed header: bad X25519 stanza");
		} else if (strcmp(st->args[0], "scrypt") == 0) {
			if (h->n != 1)
				return age_fail(err, AGE_FAIL_HEADER, "%s",
				    "malformed header: scrypt stanza is "
				    "not alone");
			if (st->nargs != 3 || b64_nopad(st->args[1],
			    strlen(st->args[1]), tmp, sizeof(tmp), &got) != 0 ||
			    got != 16 || parse_log_n(st->args[2], &log_n) != 0
			    || st->body_len != 32)
				return age_fail(err, AGE_FAIL_HEADER, "%s",
				    "malformed header: bad scrypt stanza");
		}
	}
	return 0;
}

static int
unwrap_body(const unsigned char key[32], const struct stanza *st,
    unsigned char file_key[AGE_FILE_KEY_SIZE])
{
	static const unsigned char zero_nonce[12];
	unsigned long long len;

	return crypto_aead_chacha20poly1305_ietf_decrypt(file_key, &len, NULL,
	    st->body, st->body_len, NULL, 0, zero_nonce, key);
}

/*
 * 1: unwrapped, 0: not ours, -1: error (err set).  pk is sk's public
 * key, or NULL to derive it here; *pk_made (when pk is not NULL) says
 * whether it was derived already: a scalar multiplication made once per
 * identity, not once per stanza tried.
 */
static int
unwrap_x25519(const struct stanza *st, const unsigned char sk[32],
    unsigned char *pk, int *pk_made,
    unsigned char file_key[AGE_FILE_KEY_SIZE], struct smimp_err *err)
{
	unsigned char share[32], own[32], shared[32], salt[64], key[32];
	size_t got;
	int r = 0, made = 0;

	if (pk == NULL) {
		pk = own;
		pk_made = &made;
	}
	(void)b64_nopad(st->args[1], strlen(st->args[1]), share,
	    sizeof(share), &got);
	if ((!*pk_made && crypto_scalarmult_base(pk, sk) != 0) ||
	    crypto_scalarmult(shared, sk, share) != 0)
		return age_fail(err, AGE_FAIL_HEADER, "%s",
		    "malformed header: low-order X25519 share");
	*pk_made = 1;
	memcpy(salt, share, 32);
	memcpy(salt + 32, pk, 32);
	if (hkdf_sha256(key, 32, shared, 32, salt, 64,
	    (const unsigned char *)X25519_INFO, strlen(X25519_INFO)) == 0 &&
	    unwrap_body(key, st, file_key) == 0)
		r = 1;
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(key, sizeof(key));
	return r;
}

static int
scrypt_key(const char *pass, size_t pass_len, const unsigned char salt[16],
    int log_n, unsigned char key[32])
{
	unsigned char full[sizeof(SCRYPT_SALT_LABEL) - 1 + 16];

	memcpy(full, SCRYPT_SALT_LABEL, sizeof(SCRYPT_SALT_LABEL) - 1);
	memcpy(full + sizeof(SCRYPT_SALT_LABEL) - 1, salt, 16);
	return crypto_pwhash_scryptsalsa208sha256_ll(
	    (const uint8_t *)pass, pass_len, full, sizeof(full),
	    (uint64_t)1 << log_n, 8, 1, key, 32);
}

static int
unwrap_scrypt(const struct stanza *st, const struct age_identity *id,
    unsigned char file_key[AGE_FILE_KEY_SIZE], struct smimp_err *err)
{
	unsigned char salt[16], key[32];
	size_t got;
	int log_n = 1, r = 0;

	(void)b64_nopad(st->args[1], strlen(st->args[1]), salt, sizeof(salt),
	    &got);
	(void)parse_log_n(st->args[2], &log_n);
	if (scrypt_key(id->passphrase, id->passphrase_len, salt, log_n,
	    key) != 0)
		return age_fail(err, AGE_FAIL_IO, "%s", "scrypt failed");
	if (unwrap_body(key, st, file_key) == 0)
		r = 1;
	sodium_memzero(key, sizeof(key));
	return r;
}

/*
 * The prekeys of id (AGE_ID_PREKEYS): for each smimp-prekey stanza
 * whose id prekey_find knows, that secret on the X25519 stanza after
 * it, and no other: one try for each such stanza.  The id that opened
 * it into used.
 */
static int
unwrap_prekeys(const struct header *h, const struct age_identity *id,
    unsigned char file_key[AGE_FILE_KEY_SIZE],
    char used[AGE_PREKEY_ID_LEN + 1], struct smimp_err *err)
{
	const unsigned char *secret;
	size_t i;
	int r;

	for (i = 0; i + 1 < h->n; i++) {
		if (strcmp(h->st[i].args[0], AGE_PREKEY_STANZA) != 0)
			continue;
		secret = id->prekey_find(id->prekey_arg, h->st[i].args[1]);
		if (secret == NULL)
			continue;
		r = unwrap_x25519(&h->st[i + 1], secret, NULL, NULL, file_key,
		    err);
		if (r == 1)
			memcpy(used, h->st[i].args[1], AGE_PREKEY_ID_LEN + 1);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
find_file_key(const struct header *h, const struct age_identity *ids,
    size_t nids, unsigned char file_key[AGE_FILE_KEY_SIZE],
    char used[AGE_PREKEY_ID_LEN + 1], struct smimp_err *err)
{
	unsigned char pk[32];
	size_t i, j;
	int r, pk_made;

	for (j = 0; j < nids; j++) {
		if (ids[j].type == AGE_ID_PREKEYS) {
			r = unwrap_prekeys(h, &ids[j], file_key, used, err);
			if (r != 0)
				return r;
			continue;
		}
		pk_made = 0;
		for (i = 0; i < h->n; i++) {
			const struct stanza *st = &h->st[i];

			if (ids[j].type == AGE_ID_X25519 &&
			    strcmp(st->args[0], "X25519") == 0)
				r = unwrap_x25519(st, ids[j].x25519_secret,
				    pk, &pk_made, file_key, err);
			else if (ids[j].type == AGE_ID_SCRYPT &&
			    strcmp(st->args[0], "scrypt") == 0)
				r = unwrap_scrypt(st, &ids[j], file_key, err);
			else
				continue;
			if (r != 0)
				return r;
		}
	}
	for (i = 0; i < h->n; i++)
		if (strcmp(h->st[i].args[0], AGE_PREKEY_STANZA) == 0)
			return age_fail(err, AGE_FAIL_NO_PREKEY, "%s", "no "
			    "identity matches any recipient, and no one-time "
			    "prekey named is held");
	return age_fail(err, AGE_FAIL_NO_MATCH, "%s",
	    "no identity matches any recipient");
}

static void
header_mac(unsigned char mac[32], const unsigned char file_key[16],
    const void *data, size_t len)
{
	crypto_auth_hmacsha256_state st;
	unsigned char key[32];

	(void)hkdf_sha256(key, 32, file_key, AGE_FILE_KEY_SIZE, NULL, 0,
	    (const unsigned char *)"header", 6);
	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, data, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(key, sizeof(key));
}

static void
payload_key(unsigned char key[AGE_PAYLOAD_KEY_SIZE],
    const unsigned char file_key[16], const unsigned char nonce[16])
{
	(void)hkdf_sha256(key, AGE_PAYLOAD_KEY_SIZE, file_key,
	    AGE_FILE_KEY_SIZE, nonce, AGE_NONCE_SIZE,
	    (const unsigned char *)"payload", 7);
}

/* ---- STREAM ---- */

static void
stream_nonce(unsigned char nonce[12], uint64_t counter, int last)
{
	int i;

	memset(nonce, 0, 12);
	for (i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

void
age_chunk_seal(const unsigned char key[AGE_PAYLOAD_KEY_SIZE],
    uint64_t counter, int last, const unsigned char *pt, size_t len,
    unsigned char *ct)
{
	unsigned char nonce[12];

	stream_nonce(nonce, counter, last);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, ct + len, NULL,
	    pt, len, NULL, 0, NULL, nonce, key);
}

int
age_chunk_open(const unsigned char key[AGE_PAYLOAD_KEY_SIZE],
    uint64_t counter, int last, const unsigned char *ct, size_t ct_len,
    unsigned char *pt)
{
	unsigned char nonce[12];
	size_t len;

	if (ct_len < AGE_TAG_SIZE || ct_len > AGE_CT_CHUNK_SIZE)
		return -1;
	len = ct_len - AGE_TAG_SIZE;
	/* Only a stream's sole chunk may be empty; only the last short. */
	if ((len == 0 && (counter != 0 || !last)) ||
	    (len < AGE_CHUNK_SIZE && !last))
		return -1;
	stream_nonce(nonce, counter, last);
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(pt, NULL,
	    ct, len, ct + len, NULL, 0, nonce, key);
}

struct age_decryptor {
	struct age_in *in;
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	uint64_t counter;
	int done;		/* the last chunk was read */
	int has_peek;
	unsigned char peek;
	int trailing;		/* bytes after the last chunk */
	char prekey[AGE_PREKEY_ID_LEN + 1];	/* that opened it, or "" */
	/* streaming reads */
	unsigned char *ct;
	unsigned char *pt;
	size_t pt_len, pt_pos;
};

struct age_decryptor *
age_decrypt_begin(struct age_in *in, const struct age_identity *ids,
    size_t nids, struct smimp_err *err)
{
	unsigned char file_key[AGE_FILE_KEY_SIZE], mac[32];
	unsigned char nonce[AGE_NONCE_SIZE];
	char used[AGE_PREKEY_ID_LEN + 1] = "";
	struct age_decryptor *d = NULL;
	struct header h;
	size_t got;
	int r;

	if (header_parse(in, &h, err) != 0 || stanzas_check(&h, err) != 0)
		goto out;
	r = find_file_key(&h, ids, nids, file_key, used, err);
	if (r != 1)
		goto out;
	header_mac(mac, file_key, h.raw.buf, h.mac_input_len);
	if (sodium_memcmp(mac, h.mac, 32) != 0) {
		age_fail(err, AGE_FAIL_HMAC, "%s", "header MAC mismatch");
		goto out;
	}
	if (age_in_read(in, nonce, sizeof(nonce), &got, err) != 0)
		goto out;
	if (got != sizeof(nonce)) {
		age_fail(err, AGE_FAIL_HEADER, "%s", "missing payload nonce");
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		age_fail(err, AGE_FAIL_IO, "%s", "out of memory");
		goto out;
	}
	d->in = in;
	memcpy(d->prekey, used, sizeof(d->prekey));
	payload_key(d->key, file_key, nonce);
out:
	sodium_memzero(file_key, sizeof(file_key));
	header_release(&h);
	return d;
}

/* Read one ciphertext chunk; *last when nothing follows it. */
static int
read_chunk(struct age_decryptor *d, unsigned char *ct, size_t *len,
    int *last, struct smimp_err *err)
{
	size_t off = 0, got;

	if (d->has_peek) {
		ct[0] = d->peek;
		off = 1;
		d->has_peek = 0;
	}
	if (age_in_read(d->in, ct + off, AGE_CT_CHUNK_SIZE - off, &got,
	    err) != 0)
		return -1;
	*len = off + got;
	*last = 1;
	if (*len == AGE_CT_CHUNK_SIZE) {
		if (age_in_read(d->in, &d->peek, 1, &got, err) != 0)
			return -1;
		if (got == 1) {
			d->has_peek = 1;
			*last = 0;
		}
	}
	if (*len < AGE_TAG_SIZE)
		return age_fail(err, AGE_FAIL_PAYLOAD, "%s",
		    d->counter == 0 && *len == 0 ? "no payload" :
		    "truncated payload");
	return 0;
}

int
age_decryptor_read_chunks(struct age_decryptor *d, unsigned char *buf,
    size_t n, size_t *lens, size_t *count, int *last, struct smimp_err *err)
{
	*count = 0;
	*last = d->done;
	while (*count < n && !d->done) {
		if (read_chunk(d, buf + *count * AGE_CT_CHUNK_SIZE,
		    &lens[*count], last, err) != 0)
			return -1;
		(*count)++;
		d->counter++;
		d->done = *last;
	}
	return 0;
}

const char *
age_decryptor_prekey(const struct age_decryptor *d)
{
	return d->prekey;
}

uint64_t
age_decryptor_counter(const struct age_decryptor *d)
{
	return d->counter;
}

const unsigned char *
age_decryptor_payload_key(const struct age_decryptor *d)
{
	return d->key;
}

/*
 * The streaming reader follows the reference implementation, so that
 * what it releases before a failure is exactly the authenticated
 * chunks: a full chunk is tried as a middle chunk, then as the last;
 * after the last chunk any further byte is an error.
 */
static int
stream_next(struct age_decryptor *d, struct smimp_err *err)
{
	size_t len, got;
	int last = 0;

	if (d->has_peek) {
		d->ct[0] = d->peek;
		d->has_peek = 0;
		if (age_in_read(d->in, d->ct + 1, AGE_CT_CHUNK_SIZE - 1, &got,
		    err) != 0)
			return -1;
		len = got + 1;
	} else if (age_in_read(d->in, d->ct, AGE_CT_CHUNK_SIZE, &len,
	    err) != 0) {
		return -1;
	}
	if (len < AGE_CT_CHUNK_SIZE)
		last = 1;
	if (len < AGE_TAG_SIZE)
		return age_fail(err, AGE_FAIL_PAYLOAD, "%s",
		    "truncated payload");
	if (age_chunk_open(d->key, d->counter, last, d->ct, len, d->pt) != 0) {
		if (last || age_chunk_open(d->key, d->counter, 1, d->ct, len,
		    d->pt) != 0)
			return age_fail(err, AGE_FAIL_PAYLOAD, "%s",
			    "payload is corrupted or truncated");
		last = 1;
	}
	d->counter++;
	d->pt_len = len - AGE_TAG_SIZE;
	d->pt_pos = 0;
	d->done = last;
	if (last) {
		unsigned char extra;

		if (age_in_read(d->in, &extra, 1, &got, err) != 0)
			return -1;
		d->trailing = got != 0;
	}
	return 0;
}

int
age_decrypt_read(struct age_decryptor *d, unsigned char *buf, size_t len,
    size_t *got, struct smimp_err *err)
{
	*got = 0;
	if (d->pt == NULL) {
		d->pt = sodium_malloc(AGE_CHUNK_SIZE);
		d->ct = malloc(AGE_CT_CHUNK_SIZE);
		if (d->pt == NULL || d->ct == NULL)
			return age_fail(err, AGE_FAIL_IO, "%s",
			    "out of memory");
	}
	while (*got < len) {
		size_t n;

		if (d->pt_pos == d->pt_len) {
			if (d->done && d->trailing)
				return age_fail(err, AGE_FAIL_PAYLOAD, "%s",
				    "trailing data after the payload");
			if (d->done)
				break;
			if (stream_next(d, err) != 0)
				return -1;
			continue;
		}
		n = d->pt_len - d->pt_pos;
		if (n > len - *got)
			n = len - *got;
		memcpy(buf + *got, d->pt + d->pt_pos, n);
		d->pt_pos += n;
		*got += n;
	}
	return 0;
}

void
age_decrypt_free(struct age_decryptor *d)
{
	if (d == NULL)
		return;
	if (d->pt != NULL)
		sodium_free(d->pt);
	free(d->ct);
	sodium_memzero(d, sizeof(*d));
	free(d);
}

/* ---- encryption ---- */

static int
sbuf_add_b64_nopad(struct sbuf *sb, const unsigned char *data, size_t len)
{
	char tmp[128];

	if (sodium_base64_encoded_len(len,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING) > sizeof(tmp))
		return -1;
	sodium_bin2base64(tmp, sizeof(tmp), data, len,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	return sbuf_add(sb, tmp, strlen(tmp));
}

static int
wrap_body(struct sbuf *sb, const unsigned char key[32],
    const unsigned char file_key[AGE_FILE_KEY_SIZE])
{
	static const unsigned char zero_nonce[12];
	unsigned char body[AGE_FILE_KEY_SIZE + 16];

	crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, file_key,
	    AGE_FILE_KEY_SIZE, NULL, 0, NULL, zero_nonce, key);
	/* 32 bytes is 43 characters: one short final line. */
	return sbuf_add_b64_nopad(sb, body, sizeof(body)) ||
	    sbuf_add(sb, "\n", 1) ? -1 : 0;
}

/*
 * The encodings of the X25519 points of low order, on the curve and on
 * its twist: 0 and 1, the two of order 8, and p - 1, p (0 again) and
 * p + 1 (1 again), p = 2^255 - 19; the top bit is ignored, as X25519
 * ignores it.  The same list crypto_scalarmult refuses before it
 * computes anything.
 */
static const unsigned char low_order[4][32] = {
	{ 0 },
	{ 1 },
	{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
	  0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
	  0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
	{ 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
	  0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
	  0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
};

/* Is pk, top bit aside, p - 1, p or p + 1 (0xec to 0xee, 0xff..., 0x7f)? */
static int
near_p(const unsigned char pk[32])
{
	unsigned char ff = (unsigned char)(pk[31] | 0x80);
	size_t i;

	for (i = 1; i < 31; i++)
		ff &= pk[i];
	return (ff == 0xff) & (pk[0] >= 0xec) & (pk[0] <= 0xee);
}

/*
 * A point of order 1, 2, 4 or 8 is one of these: X25519 clears the
 * scalar's three low bits, so every shared secret with it is all zero.
 * Compared, not multiplied: a scalar multiplication to tell it costs
 * as much as the stanza it guards, and the stanza's own still refuses
 * an all-zero secret.  Every byte is looked at, whatever matches.
 */
int
age_x25519_public_usable(const unsigned char pk[32])
{
	unsigned char diff[4] = { 0 };
	size_t i, j;
	int low = near_p(pk);

	for (j = 0; j < 4; j++) {
		for (i = 0; i < 31; i++)
			diff[j] |= pk[i] ^ low_order[j][i];
		diff[j] |= (pk[31] & 0x7f) ^ low_order[j][31];
		low |= diff[j] == 0;
	}
	return !low;
}

static int
x25519_stanza(struct sbuf *sb, const unsigned char pk[32],
    const unsigned char file_key[AGE_FILE_KEY_SIZE])
{
	unsigned char esk[32], epk[32], shared[32], salt[64], key[32];
	int ret = -1;

	randombytes_buf(esk, sizeof(esk));
	if (crypto_scalarmult_base(epk, esk) != 0 ||
	    crypto_scalarmult(shared, esk, pk) != 0)
		goto out;
	memcpy(salt, epk, 32);
	memcpy(salt + 32, pk, 32);
	if (hkdf_sha256(key, 32, shared, 32, salt, 64,
	    (const unsigned char *)X25519_INFO, strlen(X25519_INFO)) != 0)
		goto out;
	if (sbuf_add(sb, "-> X25519 ", 10) || sbuf_add_b64_nopad(sb, epk, 32)
	    || sbuf_add(sb, "\n", 1) || wrap_body(sb, key, file_key))
		goto out;
	ret = 0;
out:
	sodium_memzero(esk, sizeof(esk));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(key, sizeof(key));
	return ret;
}

static int
finish_header(struct age_out *out, struct sbuf *sb,
    const unsigned char file_key[AGE_FILE_KEY_SIZE],
    unsigned char pkey[AGE_PAYLOAD_KEY_SIZE], struct smimp_err *err)
{
	unsigned char mac[32], nonce[AGE_NONCE_SIZE];

	if (sbuf_add(sb, "---", 3) != 0)
		return age_fail(err, AGE_FAIL_IO, "%s", "header too large");
	header_mac(mac, file_key, sb->buf, sb->len);
	if (sbuf_add(sb, " ", 1) || sbuf_add_b64_nopad(sb, mac, 32) ||
	    sbuf_add(sb, "\n", 1))
		return age_fail(err, AGE_FAIL_IO, "%s", "header too large");
	randombytes_buf(nonce, sizeof(nonce));
	payload_key(pkey, file_key, nonce);
	if (age_out_write(out, sb->buf, sb->len, err) != 0 ||
	    age_out_write(out, nonce, sizeof(nonce), err) != 0)
		return -1;
	return 0;
}

int
age_encrypt_begin(struct age_out *out, const struct age_recipient *rcpts,
    size_t n, unsigned char payload_key_out[AGE_PAYLOAD_KEY_SIZE],
    struct smimp_err *err)
{
	unsigned char file_key[AGE_FILE_KEY_SIZE];
	struct sbuf sb;
	size_t i, stanzas;
	int ret = -1;

	for (i = 0, stanzas = n; i < n; i++)
		stanzas += rcpts[i].prekey_id[0] != '\0';
	if (n == 0 || stanzas > AGE_MAX_STANZAS)
		return age_fail(err, AGE_FAIL_IO, "%s",
		    "bad number of recipients");
	sbuf_init(&sb, AGE_MAX_HEADER);
	randombytes_buf(file_key, sizeof(file_key));
	if (sbuf_add(&sb, AGE_VERSION_LINE "\n", strlen(AGE_VERSION_LINE) + 1))
		goto out;
	for (i = 0; i < n; i++) {
		if ((rcpts[i].prekey_id[0] != '\0' && (!is_prekey_id(
		    rcpts[i].prekey_id) || sbuf_addf(&sb, "-> %s %s\n\n",
		    AGE_PREKEY_STANZA, rcpts[i].prekey_id) != 0)) ||
		    x25519_stanza(&sb, rcpts[i].x25519_public, file_key) != 0) {
			age_fail(err, AGE_FAIL_IO, "%s", "bad recipient key");
			goto out;
		}
	}
	ret = finish_header(out, &sb, file_key, payload_key_out, err);
out:
	sodium_memzero(file_key, sizeof(file_key));
	sbuf_release(&sb);
	return ret;
}

int
age_encrypt_begin_passphrase(struct age_out *out, const char *pass,
    size_t pass_len, int log_n, unsigned char payload_key_out[32],
    struct smimp_err *err)
{
	unsigned char file_key[AGE_FILE_KEY_SIZE], salt[16], key[32];
	struct sbuf sb;
	int ret = -1;

	sbuf_init(&sb, AGE_MAX_HEADER);
	randombytes_buf(file_key, sizeof(file_key));
	randombytes_buf(salt, sizeof(salt));
	if (scrypt_key(pass, pass_len, salt, log_n, key) != 0) {
		age_fail(err, AGE_FAIL_IO, "%s", "scrypt failed");
		goto out;
	}
	if (sbuf_add(&sb, AGE_VERSION_LINE "\n-> scrypt ",
	    strlen(AGE_VERSION_LINE) + 11) || sbuf_add_b64_nopad(&sb, salt, 16)
	    || sbuf_addf(&sb, " %d\n", log_n) || wrap_body(&sb, key, file_key))
		goto out;
	ret = finish_header(out, &sb, file_key, payload_key_out, err);
out:
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(key, sizeof(key));
	sbuf_release(&sb);
	return ret;
}

struct age_encryptor {
	struct age_out *out;
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	uint64_t counter;
	unsigned char *pt;	/* one chunk, held until we know if last */
	size_t len;
	unsigned char *ct;
};

struct age_encryptor *
age_encryptor_new(struct age_out *out,
    const unsigned char key[AGE_PAYLOAD_KEY_SIZE], struct smimp_err *err)
{
	struct age_encryptor *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->pt = sodium_malloc(AGE_CHUNK_SIZE)) == NULL ||
	    (e->ct = malloc(AGE_CT_CHUNK_SIZE)) == NULL) {
		age_encryptor_free(e);
		age_fail(err, AGE_FAIL_IO, "%s", "out of memory");
		return NULL;
	}
	e->out = out;
	memcpy(e->key, key, sizeof(e->key));
	return e;
}

static int
emit_chunk(struct age_encryptor *e, int last, struct smimp_err *err)
{
	age_chunk_seal(e->key, e->counter++, last, e->pt, e->len, e->ct);
	if (age_out_write(e->out, e->ct, e->len + AGE_TAG_SIZE, err) != 0)
		return -1;
	e->len = 0;
	return 0;
}

int
age_encryptor_write(struct age_encryptor *e, const void *buf, size_t len,
    struct smimp_err *err)
{
	const unsigned char *p = buf;

	while (len > 0) {
		size_t n;

		/* A full chunk is sealed only once more data follows. */
		if (e->len == AGE_CHUNK_SIZE && emit_chunk(e, 0, err) != 0)
			return -1;
		n = AGE_CHUNK_SIZE - e->len;
		if (n > len)
			n = len;
		memcpy(e->pt + e->len, p, n);
		e->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
age_encryptor_finish(struct age_encryptor *e, struct smimp_err *err)
{
	return emit_chunk(e, 1, err);
}

int
age_encrypt_all(struct age_out *out,
    const unsigned char payload_key[AGE_PAYLOAD_KEY_SIZE], const void *data,
    size_t len, struct smimp_err *err)
{
	struct age_encryptor *enc = age_encryptor_new(out, payload_key, err);
	int ret;

	ret = enc == NULL || age_encryptor_write(enc, data, len, err) != 0 ||
	    age_encryptor_finish(enc, err) != 0 ? -1 : 0;
	age_encryptor_free(enc);
	return ret;
}

void
age_encryptor_free(struct age_encryptor *e)
{
	if (e == NULL)
		return;
	if (e->pt != NULL)
		sodium_free(e->pt);
	free(e->ct);
	sodium_memzero(e->key, sizeof(e->key));
	free(e);
}

/* Does the header from in parse?  0 if so. */
static int
header_check(struct age_in *in, struct smimp_err *err)
{
	struct header h;
	int ret;

	memset(&h, 0, sizeof(h));
	ret = header_parse(in, &h, err) == 0 && stanzas_check(&h, err) == 0 ?
	    0 : -1;
	header_release(&h);
	return ret;
}

int
age_header_check_fd(int fd, struct smimp_err *err)
{
	struct age_in *in;
	int ret;

	in = age_in_open_fd(fd, err);
	if (in == NULL)
		return -1;
	ret = header_check(in, err);
	age_in_free(in);
	return ret;
}

int
age_header_check_mem(const void *data, size_t len, struct smimp_err *err)
{
	struct age_in *in;
	int ret;

	in = age_in_open_mem(data, len, err);
	if (in == NULL)
		return -1;
	ret = header_check(in, err);
	age_in_free(in);
	return ret;
}
