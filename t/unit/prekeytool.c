/*
 * prekeytool - checks of lib/prekey.c and of the smimp-prekey stanza
 * (lib/age.c) that a test can fail, and what a test needs to make
 * batches the commands would not.
 *
 *	prekeytool vector DIR		check DIR/prekeys.batch (alice's,
 *					seed 01*32) and DIR/prekeys-laptop.batch
 *					(her laptop's, seed 21*32), their
 *					signatures, the parser's rules and the
 *					stanza that names a prekey
 *	prekeytool vector --generate DIR
 *					write them (only when the format
 *					changes on purpose)
 *	prekeytool batch KEY N [DATE]	a batch of N prekeys (at most 200)
 *					signed by KEY (an identity's or a
 *					device's key), dated DATE (default
 *					now), on stdout; the secrets are lost
 *	prekeytool age-identity B64	a prekey secret as age writes an
 *					X25519 identity (AGE-SECRET-KEY-1...)
 *	prekeytool claim LOG < ANSWER	a claim answer read as a sealer
 *					reads it for the recipient of the
 *					identity log LOG: "taken N exhausted
 *					M", then the warning line, if any
 *
 * vector prints "ok NAME" or "FAIL NAME" per check, then a count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "fileio.h"
#include "identity.h"
#include "keys.h"
#include "prekey.h"
#include "prekeys.h"
#include "util.h"

#include "check.h"

#define VECTOR_DATE	1795737600	/* 2026-11-27T00:00:00Z */

static const char *const vector_ids[] = {
	"0123456789abcdef", "fedcba9876543210"
};

/* A batch of the vector: 2 prekeys, secrets 31*32 and 32*32, signed by seed. */
static int
vector_batch(unsigned char seed_byte, const char *device, struct sbuf *out)
{
	unsigned char seed[32], pk[32], sk[64], secret[32];
	struct prekey keys[2];
	struct prekey_batch b;
	struct signer who;
	struct smimp_err err;
	size_t i;

	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	signer_secret(&who, "alice@example.org", sk);
	memset(&b, 0, sizeof(b));
	(void)snprintf(b.address, sizeof(b.address), "alice@example.org");
	(void)snprintf(b.device, sizeof(b.device), "%s", device);
	b.date = VECTOR_DATE;
	b.keys = keys;
	b.n = 2;
	memset(keys, 0, sizeof(keys));
	for (i = 0; i < 2; i++) {
		memset(secret, 0x31 + (int)i, sizeof(secret));
		if (crypto_scalarmult_base(keys[i].key, secret) != 0)
			return -1;
		memcpy(keys[i].address, b.address, sizeof(b.address));
		memcpy(keys[i].device, b.device, sizeof(b.device));
		keys[i].date = b.date;
		(void)snprintf(keys[i].id, sizeof(keys[i].id), "%s",
		    vector_ids[i]);
		if (prekey_sign(&keys[i], &who, &err) != 0)
			return -1;
	}
	sodium_memzero(sk, sizeof(sk));
	return prekey_batch_build(&b, out, &err);
}

static int
file_is(const char *dir, const char *name, const struct sbuf *want)
{
	char path[4096];
	unsigned char *got = NULL;
	size_t len = 0;
	struct smimp_err err;
	int same;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, PREKEY_BATCH_BYTES, &got, &len, &err) != 0)
		return 0;
	same = len == want->len && memcmp(got, want->buf, len) == 0;
	free(got);
	return same;
}

/* Does text parse as a batch? */
static int
parses(const char *text)
{
	struct prekey_batch b;
	struct smimp_err err;
	int r = prekey_batch_parse(&b, (const unsigned char *)text,
	    strlen(text), &err);

	prekey_batch_release(&b);
	return r == 0;
}

/* text with the first occurrence of from replaced by to: refused? */
static void
refused_with(const char *text, const char *from, const char *to,
    const char *name)
{
	char buf[PREKEY_BATCH_BYTES + 1024];
	const char *at = strstr(text, from);

	if (at == NULL) {
		check(0, name);
		return;
	}
	(void)snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text,
	    to, at + strlen(from));
	check(!parses(buf), name);
}

/* Each prekey of text verifies under seed's key, none under other's. */
static void
signatures(const char *text, unsigned char seed_byte, const char *name)
{
	unsigned char seed[32], pk[32], sk[64], other[32];
	struct prekey_batch b;
	struct smimp_err err;
	size_t i;
	int ok;

	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memset(seed, 0x02, sizeof(seed));
	crypto_sign_seed_keypair(other, sk, seed);
	ok = prekey_batch_parse(&b, (const unsigned char *)text, strlen(text),
	    &err) == 0 && b.n == 2;
	for (i = 0; ok && i < b.n; i++)
		ok = prekey_verify(&b.keys[i], pk, &err) == 0 &&
		    prekey_verify(&b.keys[i], other, &err) != 0;
	/* The date is signed: another date does not verify. */
	if (ok) {
		b.keys[0].date++;
		ok = prekey_verify(&b.keys[0], pk, &err) != 0;
	}
	prekey_batch_release(&b);
	check(ok, name);
}

static void
parser_rules(const char *text)
{
	char big[PREKEY_BATCH_BYTES + 1024], line[256], zero[45];
	const char *first = strstr(text, "prekey: ");
	size_t i;
	int n;

	static const char *const edits[][3] = {
		{ "smimp-prekeys/1", "smimp-prekeys/2", "another version" },
		{ "alice@", "Alice@", "an address not normalized" },
		{ "00:00:00Z", "00:00", "a bad date" },
		{ "0123456789abcdef", "0123456789ABCDEF", "an id in upper case" },
		{ "fedcba9876543210", "0123456789abcdef", "an id twice" },
		{ "0123456789abcdef ", "0123456789abcdef  ", "two spaces" },
		{ "date: ", "device: -x\ndate: ", "a bad device name" },
	};
	char name[128];

	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		(void)snprintf(name, sizeof(name), "batch: %s refused",
		    edits[i][2]);
		refused_with(text, edits[i][0], edits[i][1], name);
	}
	/* A key of low order: the all-zero encoding. */
	(void)snprintf(line, sizeof(line), "%.44s", first + 25);
	memset(zero, 'A', 43);
	zero[43] = '=';
	zero[44] = '\0';
	refused_with(text, line, zero, "batch: a key of low order refused");
	(void)snprintf(big, sizeof(big), "%sjunk\n", text);
	check(!parses(big), "batch: a line that is no prekey refused");
	n = snprintf(big, sizeof(big), "%.*s", (int)(first - text), text);
	for (i = 0; i < PREKEY_BATCH_MAX + 1; i++) {
		(void)snprintf(line, sizeof(line), "%.*s", (int)(strchr(first,
		    '\n') - first + 1), first);
		(void)snprintf(line + 8, 17, "%016zx", i);
		line[24] = ' ';
		n += snprintf(big + n, sizeof(big) - (size_t)n, "%s", line);
		if (i + 1 == PREKEY_BATCH_MAX)
			check(parses(big), "batch: 200 prekeys taken");
	}
	check(!parses(big), "batch: 201 prekeys refused");
	check(!parses(PREKEY_BATCH_MAGIC "address: alice@example.org\n"
	    "date: 2026-11-27T00:00:00Z\n"), "batch: no prekey refused");
}

/*
 * The stanza that names a prekey: written before its X25519 stanza, the
 * one secret tried on that stanza, the id of the prekey that opened it
 * said; a malformed one refused.
 */
static const unsigned char *
find_one(const void *arg, const char *id)
{
	return strcmp(id, vector_ids[0]) == 0 ? arg : NULL;
}

static int
sealed_to(const struct age_recipient *r, size_t n, struct sbuf *out)
{
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	struct smimp_err err;
	struct age_out *o;
	int fd[2], ret;
	char buf[4096];
	ssize_t got;

	if (pipe(fd) != 0)
		return -1;
	o = age_out_open_fd(fd[1], 0, &err);
	ret = o == NULL || age_encrypt_begin(o, r, n, key, &err) != 0 ||
	    age_encrypt_all(o, key, "hello", 5, &err) != 0 ||
	    age_out_close(o, &err) != 0 ? -1 : 0;
	age_out_free(o);
	close(fd[1]);
	while ((got = read(fd[0], buf, sizeof(buf))) > 0)
		(void)sbuf_add(out, buf, (size_t)got);
	close(fd[0]);
	return ret;
}

/* Does data open with the prekey (vector id 0, secret) alone? */
static int
opens(const struct sbuf *data, const unsigned char *secret, char *used)
{
	struct age_identity id;
	struct age_decryptor *d;
	struct smimp_err err;
	struct age_in *in;
	int ok;

	memset(&id, 0, sizeof(id));
	id.type = AGE_ID_PREKEYS;
	id.prekey_find = find_one;
	id.prekey_arg = secret;
	in = age_in_open_mem(data->buf, data->len, &err);
	d = in != NULL ? age_decrypt_begin(in, &id, 1, &err) : NULL;
	ok = d != NULL;
	if (ok)
		(void)snprintf(used, AGE_PREKEY_ID_LEN + 1, "%s",
		    age_decryptor_prekey(d));
	age_decrypt_free(d);
	age_in_free(in);
	return ok;
}

static void
stanza_rules(void)
{
	unsigned char secret[32];
	struct age_recipient r[2];
	struct sbuf sb, bad;
	char used[AGE_PREKEY_ID_LEN + 1] = "", *at;

	memset(r, 0, sizeof(r));
	memset(secret, 0x31, sizeof(secret));
	(void)crypto_scalarmult_base(r[0].x25519_public, secret);
	memcpy(r[0].prekey_id, vector_ids[0], AGE_PREKEY_ID_LEN + 1);
	memset(r[1].x25519_public, 0x09, 1);	/* the base point */
	sbuf_init(&sb, 1 << 16);
	check(sealed_to(r, 2, &sb) == 0 && strstr(sb.buf,
	    "\n-> smimp-prekey 0123456789abcdef\n\n-> X25519 ") != NULL,
	    "stanza: written before its X25519 stanza, with an empty body");
	check(opens(&sb, secret, used) && strcmp(used, vector_ids[0]) == 0,
	    "stanza: its prekey alone opens it, and is named");
	sbuf_init(&bad, 1 << 16);
	at = strstr(sb.buf, "0123456789abcdef");
	(void)sbuf_add(&bad, sb.buf, sb.len);
	if (at != NULL)
		bad.buf[at - sb.buf] = 'X';
	check(at != NULL && !opens(&bad, secret, used),
	    "stanza: a malformed id refused");
	sbuf_release(&bad);
	sbuf_release(&sb);
	/* A prekey stanza at the end of the header names no stanza. */
	memset(r[1].prekey_id, 0, sizeof(r[1].prekey_id));
	memcpy(r[1].prekey_id, "zz", 3);
	sbuf_init(&sb, 1 << 16);
	check(sealed_to(r, 2, &sb) != 0, "stanza: a sealer refuses a bad id");
	sbuf_release(&sb);
}

static int
vector(const char *dir, int generate)
{
	struct sbuf id, dev;
	char path[4096];
	struct smimp_err err;

	if (vector_batch(0x01, "", &id) != 0 ||
	    vector_batch(0x21, "laptop", &dev) != 0) {
		fprintf(stderr, "prekeytool: cannot build the vectors\n");
		return 1;
	}
	if (generate) {
		(void)snprintf(path, sizeof(path), "%s/prekeys.batch", dir);
		if (file_write_atomic(path, id.buf, id.len, 0644, 1, &err))
			return 1;
		(void)snprintf(path, sizeof(path), "%s/prekeys-laptop.batch",
		    dir);
		return file_write_atomic(path, dev.buf, dev.len, 0644, 1,
		    &err) != 0;
	}
	(void)sbuf_add(&id, "", 1);
	(void)sbuf_add(&dev, "", 1);
	id.len--;
	dev.len--;
	check(file_is(dir, "prekeys.batch", &id), "prekeys.batch: the batch");
	check(file_is(dir, "prekeys-laptop.batch", &dev),
	    "prekeys-laptop.batch: the batch");
	signatures(id.buf, 0x01, "prekeys.batch: each signed by alice's key");
	signatures(dev.buf, 0x21, "prekeys-laptop.batch: each signed by the "
	    "laptop's key");
	check(parses(id.buf) && parses(dev.buf), "batches parse");
	parser_rules(id.buf);
	stanza_rules();
	sbuf_release(&id);
	sbuf_release(&dev);
	return check_summary();
}

/* A batch of n fresh prekeys signed by the key at path. */
static int
batch(const char *path, const char *count, const char *date)
{
	struct passphrase_source src = { NULL, 0 };
	unsigned char secret[32];
	struct prekey_batch b;
	struct secret_key sk;
	struct smimp_err err;
	struct signer who;
	struct sbuf out;
	uint64_t n;
	size_t i;

	memset(&b, 0, sizeof(b));
	if (parse_u64(count, strlen(count), &n) != 0 || n == 0 ||
	    n > PREKEY_BATCH_MAX || secret_key_load(&sk, path, &src, &err) ||
	    (date != NULL && time_parse(date, strlen(date), &b.date) != 0)) {
		fprintf(stderr, "prekeytool: bad arguments\n");
		return 2;
	}
	if (date == NULL)
		b.date = time_now();
	(void)snprintf(b.address, sizeof(b.address), "%s", sk.address);
	if (sk.is_device)
		(void)snprintf(b.device, sizeof(b.device), "%s", sk.device);
	signer_secret(&who, sk.address, sk.identity_secret);
	b.keys = calloc((size_t)n, sizeof(*b.keys));
	for (i = 0; b.keys != NULL && i < n; i++) {
		randombytes_buf(secret, sizeof(secret));
		(void)crypto_scalarmult_base(b.keys[i].key, secret);
		memcpy(b.keys[i].address, b.address, sizeof(b.address));
		memcpy(b.keys[i].device, b.device, sizeof(b.device));
		b.keys[i].date = b.date;
		prekey_id_new(b.keys[i].id);
		if (prekey_sign(&b.keys[i], &who, &err) != 0)
			return 1;
	}
	b.n = (size_t)n;
	if (b.keys == NULL || prekey_batch_build(&b, &out, &err) != 0)
		return 1;
	fwrite(out.buf, 1, out.len, stdout);
	sbuf_release(&out);
	free(b.keys);
	secret_key_release(&sk);
	return 0;
}

static int
age_identity(const char *b64)
{
	unsigned char secret[32];
	char out[AGE_IDENTITY_STRLEN];

	if (b64_decode_exact(b64, strlen(b64), secret, 32) != 0 ||
	    age_identity_encode(secret, out) != 0) {
		fprintf(stderr, "prekeytool: bad secret\n");
		return 2;
	}
	printf("%s\n", out);
	return 0;
}

static int
claim(const char *path)
{
	static struct msg_recipient rcpt;
	struct prekeys_claim c;
	struct smimp_err err;
	struct idlog log;
	unsigned char *body;
	size_t len;

	if (idlog_read_file(&log, path, &err) != 0 ||
	    fd_read_all(0, "stdin", 1 << 20, &body, &len, &err) != 0) {
		fprintf(stderr, "prekeytool: %s\n", err.msg);
		return 1;
	}
	recipient_from_log(&rcpt, &log);
	memset(&c, 0, sizeof(c));
	c.keys = calloc(1 + rcpt.ndevice_keys, sizeof(*c.keys));
	if (c.keys == NULL)
		return 1;
	prekeys_claim_read((const char *)body, len, &log, &rcpt, &c);
	printf("taken %zu exhausted %zu\n", c.taken, c.exhausted);
	if (c.warning[0] != '\0')
		printf("%s\n", c.warning);
	prekeys_claim_release(&c);
	free(body);
	idlog_release(&log);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	int generate = argc == 4 && strcmp(argv[2], "--generate") == 0;

	if (sodium_init() < 0)
		return 1;
	if (strcmp(sub, "vector") == 0 && argc == 3 + generate)
		return vector(argv[2 + generate], generate);
	if (strcmp(sub, "batch") == 0 && (argc == 4 || argc == 5))
		return batch(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if (strcmp(sub, "age-identity") == 0 && argc == 3)
		return age_identity(argv[2]);
	if (strcmp(sub, "claim") == 0 && argc == 3)
		return claim(argv[2]);
	fprintf(stderr, "usage: prekeytool vector [--generate] DIR\n"
	    "       prekeytool batch KEY N [DATE]\n"
	    "       prekeytool age-identity BASE64\n"
	    "       prekeytool claim LOG < ANSWER\n");
	return 2;
}
