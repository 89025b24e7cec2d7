/*
 * protocol-vectors - known-answer tests for doc/PROTOCOL.md.
 *
 *	protocol-vectors DIR		check the vectors in DIR
 *	protocol-vectors --generate DIR	write them (only when the format
 *					changes on purpose)
 *
 * Identities come from fixed seeds; envelopes from a fixed header and a
 * body of bytes i mod 251; alice's history (a new encryption key, a
 * rotation, a revocation) from more fixed seeds, with a fork, a
 * truncation and a record signed by the wrong key that must be refused;
 * alice's devices (three added, one removed) with the records the log
 * must refuse, and a recovery that cuts two of them back; a message her
 * laptop sealed (from-device); a message with parts (attachments, and
 * one of a kind readers do not know), with the part lines readers must
 * refuse; a padded message, of a short body and of one past a chunk.
 * Checking recomputes everything through the library and compares with
 * the files, so a format change fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "enroll.h"
#include "envelope.h"
#include "exitcode.h"
#include "fileio.h"
#include "identity.h"
#include "idlog.h"
#include "padding.h"
#include "part.h"
#include "util.h"

#include "check.h"

#define DATE_2026	1767225600	/* 2026-01-01T00:00:00Z */
#define DAY		86400
#define HISTORY_REASON	"identity key lost"

static const struct ident {
	const char *name, *address;
	unsigned char id_byte, enc_byte, rec_byte;
} idents[] = {
	{ "alice", "alice@example.org", 0x01, 0x02, 0x03 },
	{ "bob", "bob@example.net", 0x11, 0x12, 0x13 },
};

/* H || B lengths of the envelopes: small, empty body, one exact chunk,
 * signature straddling two age chunks, several chunks. */
static const long env_total[] = { 0, -1, 65536, 131062, 200000 };
#define NENV (sizeof(env_total) / sizeof(env_total[0]))

struct keys {
	unsigned char id_pk[32], id_sk[64], enc_sk[32], enc_pk[32];
	unsigned char rec_pk[32], rec_sk[64];
};

static void
derive(const struct ident *i, struct keys *k)
{
	unsigned char seed[32];

	memset(seed, i->id_byte, 32);
	crypto_sign_seed_keypair(k->id_pk, k->id_sk, seed);
	memset(k->enc_sk, i->enc_byte, 32);
	crypto_scalarmult_base(k->enc_pk, k->enc_sk);
	memset(seed, i->rec_byte, 32);
	crypto_sign_seed_keypair(k->rec_pk, k->rec_sk, seed);
}

static int
read_file(const char *dir, const char *name, unsigned char **buf,
    size_t *len)
{
	struct smimp_err err;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 4 * 1024 * 1024, buf, len, &err) != 0) {
		printf("FAIL %s\n", err.msg);
		failed++;
		return -1;
	}
	return 0;
}

static int
write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	struct smimp_err err;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_write_atomic(path, buf, len, 0644, 1, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	return 0;
}

/*
 * An envelope header from alice to bob: sealed on device (NULL: with
 * the identity key) at date, with id as message and thread id.
 */
static void
header_from(const struct idlog *alice, const struct idlog *bob,
    const char *device, const char *date, const char *id,
    const char *subject, struct sbuf *h)
{
	char afp[FINGERPRINT_STRLEN], bfp[FINGERPRINT_STRLEN];

	fingerprint_format(alice->fingerprint, afp);
	fingerprint_format(bob->fingerprint, bfp);
	(void)sbuf_addf(h, "smimp-envelope/1\ntype: email\nfrom: %s\n"
	    "from-fingerprint: %s\nfrom-log-head: ", alice->address, afp);
	(void)sbuf_add_b64(h, alice->head, 32);
	if (device != NULL)
		(void)sbuf_addf(h, "\nfrom-device: %s", device);
	(void)sbuf_addf(h, "\nto: %s %s\ndate: %s\nmessage-id: %s\n"
	    "thread-id: %s\nsubject: %s\n"
	    "content-type: text/markdown; charset=utf-8\nsender-log: ",
	    bob->address, bfp, date, id, id, subject);
	(void)sbuf_add_b64(h, alice->raw, alice->raw_len);
	(void)sbuf_add(h, "\n\n", 2);
}

/* The envelope header for vector n (fixed id and date). */
static void
header_for(size_t n, const struct idlog *alice, const struct idlog *bob,
    struct sbuf *h)
{
	char id[64], subject[64];

	snprintf(id, sizeof(id), "vector%zu@example.org", n);
	snprintf(subject, sizeof(subject), "test vector %zu", n);
	header_from(alice, bob, NULL, "2026-01-01T00:00:00Z", id, subject, h);
}

/* Leaves, root and signature over H || B, as text lines. */
static void
envelope_answers(const unsigned char *hb, size_t len,
    const unsigned char *sk, struct sbuf *out, unsigned char sig[64],
    unsigned char root[32])
{
	struct env_root r;
	unsigned char leaf[32];
	char hex[65];
	size_t off;

	env_root_init(&r);
	for (off = 0; off < len; off += AGE_CHUNK_SIZE) {
		size_t n = len - off < AGE_CHUNK_SIZE ? len - off :
		    AGE_CHUNK_SIZE;

		env_leaf(leaf, hb + off, n);
		env_root_add(&r, leaf);
		sodium_bin2hex(hex, sizeof(hex), leaf, 32);
		(void)sbuf_addf(out, "leaf: %s\n", hex);
	}
	env_root_final(&r, len, root);
	sodium_bin2hex(hex, sizeof(hex), root, 32);
	(void)sbuf_addf(out, "root: %s\n", hex);
	env_sign(sig, root, sk);
	{
		char shex[129];

		sodium_bin2hex(shex, sizeof(shex), sig, 64);
		(void)sbuf_addf(out, "signature: %s\n", shex);
	}
}

/* The seed-made key pair (Ed25519 from a seed of byte b). */
static void
ed_from(unsigned char b, unsigned char pk[32], unsigned char sk[64])
{
	unsigned char seed[32];

	memset(seed, b, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void
x_from(unsigned char b, unsigned char pk[32])
{
	unsigned char sk[32];

	memset(sk, b, 32);
	crypto_scalarmult_base(pk, sk);
}

/*
 * alice's history: the genesis, a new encryption key (secret 04*32) on
 * day 31, a rotation to the identity key of seed 05*32 on day 59, a
 * revocation signed by that key on day 90.  upto: how many records.
 */
static int
history(const struct keys *alice, size_t upto, struct idlog *log,
    struct smimp_err *err)
{
	unsigned char enc[32], id_pk[32], id_sk[64];
	struct idrec_new r;

	if (idlog_genesis(log, "alice@example.org", alice->id_sk,
	    alice->enc_pk, alice->rec_pk, DATE_2026, err) != 0)
		return -1;
	x_from(0x04, enc);
	ed_from(0x05, id_pk, id_sk);
	memset(&r, 0, sizeof(r));
	r.type = IDREC_ENCRYPTION_KEY;
	r.date = DATE_2026 + 31 * DAY;
	r.encryption_key = enc;
	if (upto > 1 && idlog_append(log, &r, alice->id_sk, err) != 0)
		goto fail;
	memset(&r, 0, sizeof(r));
	r.type = IDREC_ROTATE;
	r.date = DATE_2026 + 59 * DAY;
	r.identity_key = id_pk;
	if (upto > 2 && idlog_append(log, &r, alice->id_sk, err) != 0)
		goto fail;
	memset(&r, 0, sizeof(r));
	r.type = IDREC_REVOKE;
	r.date = DATE_2026 + 90 * DAY;
	r.reason = HISTORY_REASON;
	if (upto > 3 && idlog_append(log, &r, id_sk, err) != 0)
		goto fail;
	return 0;
fail:
	idlog_release(log);
	return -1;
}

/*
 * The bad rotation, built here by hand rather than by the library
 * (which refuses to write it): record 2 of the history signed by the new
 * identity key instead of the one in force.
 */
static int
wrong_key(const struct idlog *two, struct sbuf *out)
{
	unsigned char id_pk[32], id_sk[64], sig[64], *m;
	static const char ctx[] = "smimp/1 identity-record";
	size_t start;

	ed_from(0x05, id_pk, id_sk);
	(void)sbuf_add(out, two->raw, two->raw_len);
	start = out->len;
	(void)sbuf_addf(out, "smimp-identity/1\ntype: rotate\n"
	    "address: alice@example.org\nseq: 2\nprev: ");
	(void)sbuf_add_b64(out, two->head, 32);
	(void)sbuf_addf(out, "\ndate: 2026-03-01T00:00:00Z\n"
	    "signed-by: identity\nidentity-key: ");
	(void)sbuf_add_b64(out, id_pk, 32);
	(void)sbuf_add(out, "\n", 1);
	m = malloc(sizeof(ctx) + out->len - start);
	if (m == NULL)
		return -1;
	memcpy(m, ctx, sizeof(ctx));
	memcpy(m + sizeof(ctx), out->buf + start, out->len - start);
	crypto_sign_detached(sig, NULL, m, sizeof(ctx) + out->len - start,
	    id_sk);
	free(m);
	(void)sbuf_add(out, "signature: ", 11);
	(void)sbuf_add_b64(out, sig, 64);
	(void)sbuf_add(out, "\n", 1);
	return 0;
}

/*
 * A recover record by the recovery key to the identity key of seed
 * id_byte and the encryption secret enc_byte*32, keeping keep records
 * (0: all), on day day; the keys into id_pk and enc.
 */
static void
recover_new(struct idrec_new *r, unsigned char id_byte,
    unsigned char enc_byte, size_t keep, int day, unsigned char id_pk[32],
    unsigned char enc[32])
{
	unsigned char id_sk[64];

	x_from(enc_byte, enc);
	ed_from(id_byte, id_pk, id_sk);
	memset(r, 0, sizeof(*r));
	r->type = IDREC_RECOVER;
	r->by_recovery = 1;
	r->keep = keep;
	r->date = DATE_2026 + day * DAY;
	r->identity_key = id_pk;
	r->encryption_key = enc;
}

/*
 * alice's recovery: the genesis, the new encryption key of the history,
 * then a recover record signed by her recovery key (seed 03*32) naming
 * the identity key of seed 07*32 and the encryption secret 08*32, on
 * day 120.  by_recovery 0: the same record signed by her identity key,
 * which the library must refuse to write.
 */
static int
recovery(const struct keys *alice, int by_recovery, struct idlog *log,
    struct smimp_err *err)
{
	unsigned char enc[32], id_pk[32], id_sk[64];
	struct idrec_new r;

	if (history(alice, 2, log, err) != 0)
		return -1;
	x_from(0x08, enc);
	ed_from(0x07, id_pk, id_sk);
	memset(&r, 0, sizeof(r));
	r.type = IDREC_RECOVER;
	r.by_recovery = by_recovery;
	r.date = DATE_2026 + 120 * DAY;
	r.identity_key = id_pk;
	r.encryption_key = enc;
	if (idlog_append(log, &r, by_recovery ? alice->rec_sk : alice->id_sk,
	    err) != 0) {
		idlog_release(log);
		return -1;
	}
	return 0;
}

/* The answers for the history, as text. */
static void
history_answers(const struct idlog *log, struct sbuf *out)
{
	static const char *const names[] = { "genesis", "encryption-key",
	    "rotate", "revoke", "recover", "device-add", "device-remove" };
	char hex[65], when[TIME_STRLEN];
	size_t i;

	(void)sbuf_addf(out, "records: %zu\n", log->n);
	for (i = 0; i < log->n; i++) {
		sodium_bin2hex(hex, sizeof(hex), log->recs[i].hash, 32);
		(void)sbuf_addf(out, "record-%zu: %s %s\n", i,
		    names[log->recs[i].type], hex);
	}
	(void)sbuf_add(out, "identity-key: ", 14);
	(void)sbuf_add_b64(out, log->identity_key, 32);
	(void)sbuf_add(out, "\nencryption-key: ", 17);
	(void)sbuf_add_b64(out, log->encryption_key, 32);
	time_format(log->revoked_at, when);
	if (log->revoked)
		(void)sbuf_addf(out, "\nrevoked: %s %s\n", when, log->reason);
	else
		(void)sbuf_add(out, "\nrevoked: no\n", 13);
}

/* Each history vector file: what it holds, and what a reader must say. */
static const struct hist_file {
	const char *name;
	int kind;		/* 0 the history, 1 fork, 2 truncated, 3 bad */
} hist_files[] = {
	{ "alice-history.pub", 0 },
	{ "alice-fork.pub", 1 },
	{ "alice-truncated.pub", 2 },
	{ "alice-wrong-key.pub", 3 },
};

static int
run_history(const char *dir, const struct keys *alice, int generate)
{
	struct idlog_follow how;
	struct idlog full, part, fork, parsed, rec;
	struct smimp_err err;
	struct sbuf bad, txt;
	struct idrec_new r;
	unsigned char enc[32], *file;
	char what[256];
	size_t i, len;
	int ret = -1, have_rec = 0;

	memset(&fork, 0, sizeof(fork));
	sbuf_init(&bad, 1 << 20);
	sbuf_init(&txt, 1 << 16);
	if (history(alice, 4, &full, &err) != 0) {
		printf("FAIL history: %s\n", err.msg);
		failed++;
		goto out0;
	}
	/* The fork: another record 1, also signed by alice's key. */
	x_from(0x06, enc);
	memset(&r, 0, sizeof(r));
	r.type = IDREC_ENCRYPTION_KEY;
	r.date = DATE_2026 + 31 * DAY;
	r.encryption_key = enc;
	if (history(alice, 3, &part, &err) != 0 ||
	    idlog_genesis(&fork, "alice@example.org", alice->id_sk,
	    alice->enc_pk, alice->rec_pk, DATE_2026, &err) != 0 ||
	    idlog_append(&fork, &r, alice->id_sk, &err) != 0) {
		printf("FAIL history: %s\n", err.msg);
		failed++;
		goto out1;
	}
	{
		struct idlog two;

		if (history(alice, 2, &two, &err) != 0 ||
		    wrong_key(&two, &bad) != 0) {
			printf("FAIL history: %s\n", err.msg);
			failed++;
			goto out2;
		}
		idlog_release(&two);
	}
	history_answers(&full, &txt);
	if (recovery(alice, 1, &rec, &err) != 0) {
		printf("FAIL recovery: %s\n", err.msg);
		failed++;
		goto out2;
	}
	have_rec = 1;
	(void)sbuf_add(&txt, "\n", 1);
	history_answers(&rec, &txt);
	if (generate) {
		ret = write_file(dir, "alice-history.pub", full.raw,
		    full.raw_len) || write_file(dir, "alice-history.txt",
		    txt.buf, txt.len) || write_file(dir, "alice-fork.pub",
		    fork.raw, fork.raw_len) || write_file(dir,
		    "alice-truncated.pub", part.raw, part.raw_len) ||
		    write_file(dir, "alice-wrong-key.pub", bad.buf, bad.len) ||
		    write_file(dir, "alice-recover.pub", rec.raw, rec.raw_len) ?
		    -1 : 0;
		goto out2;
	}
	/* The hand-made rotation differs from the library's in the
	 * signature only: the writer follows the grammar. */
	{
		const struct idrec *rot = &part.recs[2];
		size_t upto = (size_t)(rot->raw - part.raw) + rot->raw_len -
		    (11 + 88 + 1);

		check(bad.len == part.raw_len && memcmp(bad.buf, part.raw,
		    upto) == 0 && memcmp(bad.buf + upto, "signature: ", 11) == 0,
		    "rotate record: the library writes the bytes built by hand "
		    "from the grammar");
	}
	if (read_file(dir, "alice-history.txt", &file, &len) == 0) {
		check(len == txt.len && memcmp(file, txt.buf, len) == 0,
		    "alice-history.txt: record hashes and the final state, "
		    "of the history and of the recovery");
		free(file);
	}
	if (read_file(dir, "alice-recover.pub", &file, &len) == 0) {
		struct idlog two;
		int r1;

		check(len == rec.raw_len && memcmp(file, rec.raw, len) == 0,
		    "alice-recover.pub: the bytes the writer makes");
		r1 = idlog_parse(&parsed, file, len, &err);
		check(r1 == 0 && parsed.recs[2].by_recovery &&
		    memcmp(parsed.identity_key, rec.identity_key, 32) == 0,
		    "alice-recover.pub: verifies under the recovery key, and "
		    "names the new keys");
		if (r1 == 0)
			idlog_release(&parsed);
		free(file);
		r1 = idlog_check_follows(&rec, &full, &how, &err);
		check(r1 == 0 && how.recovery && how.cut == 2 &&
		    how.voided == 2 && how.recovered_at == rec.recs[2].date,
		    "alice-recover.pub: a recovery of alice-history.pub that "
		    "cuts it back to 2 records, voiding the rotation and the "
		    "revocation");
		r1 = idlog_check_follows(&full, &rec, &how, &err);
		check(r1 != 0 && err.code == SMIMP_EXIT_KEYCHANGED &&
		    strstr(err.msg, "forks") != NULL, "alice-history.pub "
		    "against a pinned alice-recover.pub: a fork, refused (only "
		    "a recover record may replace records)");
		{
			int64_t at = 0;

			check(idlog_voided_by(&rec, &part, &at) == 1 &&
			    at == rec.recs[2].date &&
			    idlog_voided_by(&rec, &full, &at) == 1,
			    "a message signed under the rotated key of the "
			    "history is void once alice-recover.pub is pinned");
			check(idlog_voided_by(&part, &rec, &at) == 0 &&
			    idlog_voided_by(&rec, &rec, &at) == 0,
			    "the recovered log itself voids nothing");
		}
		{
			/* A second recovery may not cut back the first. */
			unsigned char id_pk[32], enc2[32];
			struct idrec_new again;
			struct idlog cut;

			recover_new(&again, 0x0a, 0x09, 2, 150, id_pk, enc2);
			r1 = idlog_copy(&cut, &rec, &err);
			if (r1 == 0 && idlog_append(&cut, &again,
			    alice->rec_sk, &err) != 0) {
				idlog_release(&cut);
				r1 = -1;
			}
			check(r1 == 0 && idlog_check_follows(&cut, &rec, &how,
			    &err) != 0 && strstr(err.msg, "cuts back the "
			    "recovery at record 2") != NULL, "a second recovery "
			    "that cuts back the first: refused");
			if (r1 == 0)
				idlog_release(&cut);
		}
		r1 = recovery(alice, 0, &two, &err);
		check(r1 != 0 && strstr(err.msg, "recovery not signed by the "
		    "recovery key") != NULL, "recover record: signed by the "
		    "identity key, the library refuses to write it");
		if (r1 == 0)
			idlog_release(&two);
	}
	for (i = 0; i < sizeof(hist_files) / sizeof(hist_files[0]); i++) {
		const struct hist_file *h = &hist_files[i];
		const struct idlog *want = h->kind == 0 ? &full :
		    h->kind == 1 ? &fork : &part;
		int r1;

		if (read_file(dir, h->name, &file, &len) != 0)
			continue;
		snprintf(what, sizeof(what), "%s: the bytes the writer makes",
		    h->name);
		check(h->kind == 3 ? len == bad.len && memcmp(file, bad.buf,
		    len) == 0 : len == want->raw_len && memcmp(file,
		    want->raw, len) == 0, what);
		r1 = idlog_parse(&parsed, file, len, &err);
		free(file);
		if (h->kind == 3) {
			snprintf(what, sizeof(what), "%s: refused (record 2 "
			    "signed by the key it installs)", h->name);
			check(r1 != 0 && strstr(err.msg, "record 2: bad "
			    "signature") != NULL, what);
			if (r1 == 0)
				idlog_release(&parsed);
			continue;
		}
		snprintf(what, sizeof(what), "%s: parses and verifies",
		    h->name);
		check(r1 == 0, what);
		if (r1 != 0)
			continue;
		if (h->kind == 0) {
			check(parsed.revoked && parsed.n == 4 &&
			    idlog_check_follows(&parsed, &part, &how,
			    &err) == 0 && !how.recovery,
			    "alice-history.pub: extends its first three "
			    "records and is revoked");
		} else {
			int r2 = idlog_check_follows(&parsed, &full, &how,
			    &err);

			snprintf(what, sizeof(what), "%s: refused against "
			    "the pinned history (%s)", h->name, h->kind == 1 ?
			    "forks at record 1" : "truncated");
			check(r2 != 0 && err.code == SMIMP_EXIT_KEYCHANGED &&
			    strstr(err.msg, h->kind == 1 ? "at record 1" :
			    "truncated") != NULL, what);
		}
		idlog_release(&parsed);
	}
	ret = 0;
out2:
	if (have_rec)
		idlog_release(&rec);
	idlog_release(&fork);
	idlog_release(&part);
out1:
	idlog_release(&full);
out0:
	sbuf_release(&bad);
	sbuf_release(&txt);
	return ret;
}

/*
 * alice's devices: the first two records of the history, then these
 * four, each signing key from a seed of one repeated byte and each
 * encryption key from a secret of another.
 */
static const struct dev_vec {
	enum idrec_type type;
	const char *name;
	enum iddev_scope scope;
	unsigned char sign_byte, enc_byte;
	int by_recovery;
	int day;
} dev_vecs[] = {
	{ IDREC_DEVICE_ADD, "laptop", IDDEV_FULL, 0x21, 0x22, 0, 40 },
	{ IDREC_DEVICE_ADD, "ci-runner", IDDEV_SEND, 0x23, 0x24, 0, 45 },
	{ IDREC_DEVICE_ADD, "phone", IDDEV_RECEIVE, 0x25, 0x26, 1, 50 },
	{ IDREC_DEVICE_REMOVE, "ci-runner", IDDEV_FULL, 0, 0, 0, 55 },
};
#define NDEV_VECS	(sizeof(dev_vecs) / sizeof(dev_vecs[0]))

/* One device record of v appended to log, signed by signer. */
static int
device_append(struct idlog *log, const struct dev_vec *v,
    const unsigned char signer[64], struct smimp_err *err)
{
	unsigned char sign_pk[32], sign_sk[64], enc[32];
	struct idrec_new r;

	ed_from(v->sign_byte, sign_pk, sign_sk);
	x_from(v->enc_byte, enc);
	memset(&r, 0, sizeof(r));
	r.type = v->type;
	r.by_recovery = v->by_recovery;
	r.date = DATE_2026 + v->day * DAY;
	r.device = v->name;
	r.scope = v->scope;
	r.device_signing_key = sign_pk;
	r.device_encryption_key = enc;
	return idlog_append(log, &r, signer, err);
}

/* The history's first two records and the first upto device records. */
static int
devices_log(const struct keys *alice, size_t upto, struct idlog *log,
    struct smimp_err *err)
{
	size_t i;

	if (history(alice, 2, log, err) != 0)
		return -1;
	for (i = 0; i < upto && i < NDEV_VECS; i++)
		if (device_append(log, &dev_vecs[i], dev_vecs[i].by_recovery ?
		    alice->rec_sk : alice->id_sk, err) != 0) {
			idlog_release(log);
			return -1;
		}
	return 0;
}

/* Record hashes, then every device the log added, as text. */
static void
devices_answers(const struct idlog *log, struct sbuf *out)
{
	char hex[65], when[TIME_STRLEN];
	size_t i;

	(void)sbuf_addf(out, "records: %zu\n", log->n);
	for (i = 0; i < log->n; i++) {
		sodium_bin2hex(hex, sizeof(hex), log->recs[i].hash, 32);
		(void)sbuf_addf(out, "record-%zu: %s\n", i, hex);
	}
	for (i = 0; i < log->ndevices; i++) {
		const struct iddevice *d = &log->devices[i];

		time_format(d->added, when);
		(void)sbuf_addf(out, "device: %s %s added %s record %zu",
		    d->name, iddev_scope_name(d->scope), when, d->added_rec);
		time_format(d->removed_at, when);
		if (d->removed)
			(void)sbuf_addf(out, ", removed %s record %zu", when,
			    d->removed_rec);
		(void)sbuf_add(out, "\n", 1);
	}
	(void)sbuf_addf(out, "live: %zu\n", log->nlive);
}

/*
 * The laptop's device-add built by hand from the grammar of
 * doc/PROTOCOL.md, "Devices", after the log two: the library must write
 * these very bytes.
 */
static void
device_by_hand(const struct idlog *two, const struct keys *alice,
    struct sbuf *out)
{
	static const char ctx[] = "smimp/1 identity-record";
	unsigned char sign_pk[32], sign_sk[64], enc[32], sig[64];
	unsigned char m[sizeof(ctx) + IDREC_MAX_BYTES];

	ed_from(0x21, sign_pk, sign_sk);
	x_from(0x22, enc);
	(void)sbuf_addf(out, "smimp-identity/1\ntype: device-add\n"
	    "address: alice@example.org\nseq: 2\nprev: ");
	(void)sbuf_add_b64(out, two->head, 32);
	(void)sbuf_addf(out, "\ndate: 2026-02-10T00:00:00Z\n"
	    "signed-by: identity\ndevice: laptop\nscope: full\n"
	    "device-signing-key: ");
	(void)sbuf_add_b64(out, sign_pk, 32);
	(void)sbuf_add(out, "\ndevice-encryption-key: ", 24);
	(void)sbuf_add_b64(out, enc, 32);
	(void)sbuf_add(out, "\n", 1);
	if (out->len > IDREC_MAX_BYTES)
		return;
	memcpy(m, ctx, sizeof(ctx));
	memcpy(m + sizeof(ctx), out->buf, out->len);
	crypto_sign_detached(sig, NULL, m, sizeof(ctx) + out->len,
	    alice->id_sk);
	(void)sbuf_add(out, "signature: ", 11);
	(void)sbuf_add_b64(out, sig, 64);
	(void)sbuf_add(out, "\n", 1);
}

/* A record the log must refuse: appended to a copy of log, and why. */
static void
refused(const struct idlog *log, const struct dev_vec *v,
    const unsigned char signer[64], const char *why, const char *what)
{
	struct smimp_err err;
	struct idlog copy;
	int r = -1;

	if (idlog_copy(&copy, log, &err) != 0) {
		check(0, what);
		return;
	}
	r = device_append(&copy, v, signer, &err);
	check(r != 0 && copy.n == log->n && strstr(err.msg, why) != NULL,
	    what);
	if (r != 0)
		printf("# %s\n", err.msg);
	idlog_release(&copy);
}

/* What the log refuses, and what it takes, after all four records. */
static void
device_rules(const struct idlog *full, const struct keys *alice)
{
	static const struct dev_vec again = { IDREC_DEVICE_ADD, "laptop",
	    IDDEV_SEND, 0x31, 0x32, 0, 60 };
	static const struct dev_vec old_keys = { IDREC_DEVICE_ADD,
	    "ci-runner-2", IDDEV_SEND, 0x23, 0x24, 0, 60 };
	static const struct dev_vec back = { IDREC_DEVICE_ADD, "ci-runner",
	    IDDEV_SEND, 0x33, 0x34, 0, 60 };
	static const struct dev_vec gone = { IDREC_DEVICE_REMOVE,
	    "ci-runner", IDDEV_FULL, 0, 0, 0, 60 };
	unsigned char laptop_pk[32], laptop_sk[64];
	struct smimp_err err;
	struct idlog copy;
	int r;

	ed_from(0x21, laptop_pk, laptop_sk);
	refused(full, &again, alice->id_sk, "device 'laptop' is in the log "
	    "already", "device-add of a live name: refused");
	refused(full, &old_keys, alice->id_sk, "the keys of device "
	    "'ci-runner-2' were those of device 'ci-runner' before",
	    "device-add of a removed device's keys under a new name: refused");
	refused(full, &gone, alice->id_sk, "no device 'ci-runner' to remove",
	    "device-remove of a removed device: refused");
	refused(full, &back, laptop_sk, "bad signature", "device-add signed "
	    "by a device's key: refused (devices do not change the log)");
	r = idlog_copy(&copy, full, &err);
	if (r == 0)
		r = device_append(&copy, &back, alice->id_sk, &err);
	check(r == 0 && copy.nlive == 3 && idlog_device(&copy, "ci-runner") !=
	    NULL && idlog_device(&copy, "ci-runner")->scope == IDDEV_SEND &&
	    idlog_device(&copy, "ci-runner")->signing_key[0] != 0 &&
	    copy.devices[1].removed, "a removed name comes back with new keys");
	if (r == 0)
		idlog_release(&copy);
}

/*
 * The laptop's enrollment request (laptop.request), made by the device
 * key of seed 21*32 and encryption secret 22*32 for alice, expiring on
 * 2026-02-10 at 00:10, and its code (laptop-request.txt); the request
 * built by hand from the grammar must be the same bytes.
 */
static void
run_request(const char *dir, int generate)
{
	static const char ctx[] = "smimp/1 device-request";
	unsigned char sign_pk[32], sign_sk[64], enc[32], sig[64];
	unsigned char m[sizeof(ctx) + ENROLL_MAX_BYTES], *file;
	struct enroll_request req, parsed;
	struct secret_key sk;
	struct smimp_err err;
	struct sbuf hand, txt;
	char code[ENROLL_CODE_STRLEN];
	size_t len;

	/* A device key as secret_key_load would fill it in. */
	memset(&sk, 0, sizeof(sk));
	sk.secrets = sodium_malloc(96);
	if (sk.secrets == NULL)
		return;
	sk.identity_secret = sk.secrets;
	sk.encryption_secret = sk.secrets + 64;
	sk.is_device = 1;
	memcpy(sk.address, "alice@example.org", 18);
	memcpy(sk.device, "laptop", 7);
	memset(sk.encryption_secret, 0x22, 32);
	memset(m, 0x21, 32);
	crypto_sign_seed_keypair(sk.identity_public, sk.identity_secret, m);
	if (enroll_request_make(&req, &sk, DATE_2026 + 40 * DAY + 600,
	    &err) != 0) {
		printf("FAIL laptop.request: %s\n", err.msg);
		failed++;
		secret_key_release(&sk);
		return;
	}
	secret_key_release(&sk);
	enroll_code(&req, code);
	sbuf_init(&txt, 256);
	(void)sbuf_addf(&txt, "code: %s\n", code);
	if (generate) {
		(void)(write_file(dir, "laptop.request", req.raw, req.raw_len) ||
		    write_file(dir, "laptop-request.txt", txt.buf, txt.len));
		sbuf_release(&txt);
		return;
	}
	ed_from(0x21, sign_pk, sign_sk);
	x_from(0x22, enc);
	sbuf_init(&hand, ENROLL_MAX_BYTES);
	(void)sbuf_addf(&hand, "smimp-device-request/1\naddress: "
	    "alice@example.org\ndevice: laptop\ndevice-signing-key: ");
	(void)sbuf_add_b64(&hand, sign_pk, 32);
	(void)sbuf_addf(&hand, "\ndevice-encryption-key: ");
	(void)sbuf_add_b64(&hand, enc, 32);
	(void)sbuf_addf(&hand, "\nexpires: 2026-02-10T00:10:00Z\n");
	memcpy(m, ctx, sizeof(ctx));
	memcpy(m + sizeof(ctx), hand.buf, hand.len);
	crypto_sign_detached(sig, NULL, m, sizeof(ctx) + hand.len, sign_sk);
	(void)sbuf_add(&hand, "signature: ", 11);
	(void)sbuf_add_b64(&hand, sig, 64);
	(void)sbuf_add(&hand, "\n", 1);
	check(hand.len == req.raw_len && memcmp(hand.buf, req.raw,
	    hand.len) == 0, "enrollment request: the library writes the bytes "
	    "built by hand from the grammar");
	if (read_file(dir, "laptop.request", &file, &len) == 0) {
		check(len == req.raw_len && memcmp(file, req.raw, len) == 0 &&
		    enroll_request_parse(&parsed, file, len, &err) == 0 &&
		    strcmp(parsed.device, "laptop") == 0,
		    "laptop.request: the bytes the writer makes; it verifies");
		free(file);
	}
	if (read_file(dir, "laptop-request.txt", &file, &len) == 0) {
		check(len == txt.len && memcmp(file, txt.buf, len) == 0,
		    "laptop-request.txt: the request's code");
		free(file);
	}
	sbuf_release(&hand);
	sbuf_release(&txt);
}

/*
 * alice-devices.pub and .txt, the rules, and a recovery that keeps the
 * records up to the laptop's: the two devices after it are cut back.
 */
static void
run_devices(const char *dir, const struct keys *alice, int generate)
{
	struct idlog full, two, parsed, rec;
	struct idlog_follow how;
	struct smimp_err err;
	struct sbuf txt, hand;
	struct idrec_new r;
	unsigned char *file, id_pk[32], enc[32];
	size_t len;

	if (devices_log(alice, NDEV_VECS, &full, &err) != 0) {
		printf("FAIL devices: %s\n", err.msg);
		failed++;
		return;
	}
	sbuf_init(&txt, 1 << 16);
	sbuf_init(&hand, IDREC_MAX_BYTES * 2);
	devices_answers(&full, &txt);
	/* The recovery keeps genesis, encryption-key and the laptop. */
	recover_new(&r, 0x27, 0x28, 3, 70, id_pk, enc);
	if (idlog_copy(&rec, &full, &err) != 0 ||
	    idlog_append(&rec, &r, alice->rec_sk, &err) != 0) {
		printf("FAIL devices recovery: %s\n", err.msg);
		failed++;
		goto out;
	}
	(void)sbuf_add(&txt, "\n", 1);
	devices_answers(&rec, &txt);
	if (generate) {
		(void)(write_file(dir, "alice-devices.pub", full.raw,
		    full.raw_len) || write_file(dir, "alice-devices.txt",
		    txt.buf, txt.len));
		goto out1;
	}
	if (history(alice, 2, &two, &err) == 0) {
		device_by_hand(&two, alice, &hand);
		check(hand.len == full.recs[2].raw_len && memcmp(hand.buf,
		    full.recs[2].raw, hand.len) == 0, "device-add record: the "
		    "library writes the bytes built by hand from the grammar");
		idlog_release(&two);
	}
	if (read_file(dir, "alice-devices.pub", &file, &len) == 0) {
		int r1;

		check(len == full.raw_len && memcmp(file, full.raw, len) == 0,
		    "alice-devices.pub: the bytes the writer makes");
		r1 = idlog_parse(&parsed, file, len, &err);
		check(r1 == 0 && parsed.nlive == 2 && parsed.ndevices == 3 &&
		    idlog_device(&parsed, "laptop") != NULL &&
		    idlog_device(&parsed, "phone") != NULL &&
		    idlog_device(&parsed, "ci-runner") == NULL &&
		    parsed.recs[4].by_recovery, "alice-devices.pub: verifies; "
		    "laptop and phone live, ci-runner removed");
		if (r1 == 0)
			idlog_release(&parsed);
		free(file);
	}
	if (read_file(dir, "alice-devices.txt", &file, &len) == 0) {
		check(len == txt.len && memcmp(file, txt.buf, len) == 0,
		    "alice-devices.txt: record hashes and every device, of "
		    "the log and of its recovery");
		free(file);
	}
	check(idlog_check_follows(&rec, &full, &how, &err) == 0 &&
	    how.recovery && how.cut == 3 && how.voided == 3 && rec.nlive == 1 &&
	    rec.ndevices == 1 && idlog_device(&rec, "laptop") != NULL,
	    "a recovery that keeps 3 records cuts back the devices added "
	    "after: only the laptop is left");
	device_rules(&full, alice);
out1:
	idlog_release(&rec);
out:
	idlog_release(&full);
	sbuf_release(&txt);
	sbuf_release(&hand);
}

/* Which devices of alice-devices.pub may sign a message, and why not. */
static void
device_signers(const struct idlog *full, const unsigned char laptop[32])
{
	static const struct { const char *name, *why; } no[] = {
		{ "ci-runner", "which was removed on 2026-02-25T00:00:00Z" },
		{ "phone", "whose scope is receive: it may not send" },
		{ "tv", "which is no device of alice@example.org" },
	};
	const struct iddevice *d;
	struct smimp_err err;
	char what[128];
	size_t i;

	d = idlog_sending_device(full, "laptop", NULL, &err);
	check(d != NULL && memcmp(d->signing_key, laptop, 32) == 0,
	    "envelope-device: the laptop, live and full, signs");
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		smimp_err_clear(&err);
		snprintf(what, sizeof(what), "envelope-device: from-device %s "
		    "is refused", no[i].name);
		check(idlog_sending_device(full, no[i].name, NULL, &err) ==
		    NULL && err.code == SMIMP_EXIT_BADMSG &&
		    strstr(err.msg, no[i].why) != NULL, what);
	}
}

/*
 * STEM.header and STEM.txt: written when generating (-1), else checked
 * against h and ans (txt_what names the second check); 1 with meta
 * parsed from the header file when it holds h and nothing else, 0 when
 * it does not parse.
 */
static int
envelope_files(const char *dir, const char *stem, const struct sbuf *h,
    const struct sbuf *ans, const char *txt_what, int generate,
    struct msg_meta *meta)
{
	char hname[64], tname[64], what[160];
	struct smimp_err err;
	unsigned char *file;
	size_t len, hlen;
	int parsed = 0;

	snprintf(hname, sizeof(hname), "%s.header", stem);
	snprintf(tname, sizeof(tname), "%s.txt", stem);
	if (generate) {
		(void)(write_file(dir, hname, h->buf, h->len) ||
		    write_file(dir, tname, ans->buf, ans->len));
		return -1;
	}
	if (read_file(dir, hname, &file, &len) == 0) {
		snprintf(what, sizeof(what), "%s: header bytes", hname);
		check(len == h->len && memcmp(file, h->buf, len) == 0, what);
		parsed = env_header_parse(file, len, &hlen, meta, NULL,
		    &err) == 0;
		if (parsed && hlen != len) {
			msg_meta_release(meta);
			parsed = 0;
		}
		free(file);
	}
	if (read_file(dir, tname, &file, &len) == 0) {
		snprintf(what, sizeof(what), "%s: %s", tname, txt_what);
		check(len == ans->len && memcmp(file, ans->buf, len) == 0, what);
		free(file);
	}
	return parsed;
}

static void
run_device_envelope(const char *dir, const struct keys *alice,
    const struct idlog *bob, int generate)
{
	unsigned char lap_pk[32], lap_sk[64], sig[64], root[32], *hb;
	struct smimp_err err;
	struct sbuf h, ans;
	struct msg_meta meta;
	struct idlog full;
	size_t k, total;
	int parsed;

	if (devices_log(alice, NDEV_VECS, &full, &err) != 0) {
		printf("FAIL envelope-device: %s\n", err.msg);
		failed++;
		return;
	}
	ed_from(0x21, lap_pk, lap_sk);
	sbuf_init(&h, MSG_MAX_HEADER);
	sbuf_init(&ans, 1 << 16);
	/*
	 * A message alice's laptop sealed (doc/PROTOCOL.md 4.2,
	 * from-device), signed by the laptop's key (seed 21*32).
	 */
	header_from(&full, bob, "laptop", "2026-03-01T00:00:00Z",
	    "vector-device@example.org", "sealed on alice's laptop", &h);
	total = h.len + 42;
	hb = malloc(total);
	memcpy(hb, h.buf, h.len);
	for (k = 0; k < 42; k++)
		hb[h.len + k] = (unsigned char)(k % 251);
	(void)sbuf_addf(&ans, "header-length: %zu\nbody-length: 42\n"
	    "body: bytes i mod 251\nsigned-by: laptop (seed 21*32)\n", h.len);
	envelope_answers(hb, total, lap_sk, &ans, sig, root);
	parsed = envelope_files(dir, "envelope-device", &h, &ans, "leaves, "
	    "root and the laptop's signature", generate, &meta);
	if (parsed < 0)
		goto out;
	check(parsed && strcmp(meta.from_device, "laptop") == 0 &&
	    meta.sender.nlive == 2, "envelope-device.header: parses, "
	    "from-device laptop, the sender log verified");
	if (parsed)
		msg_meta_release(&meta);
	check(env_verify(sig, root, lap_pk) == 0 &&
	    env_verify(sig, root, full.identity_key) != 0,
	    "envelope-device: verifies under the laptop's key, not alice's "
	    "identity key");
	device_signers(&full, lap_pk);
out:
	free(hb);
	sbuf_release(&h);
	sbuf_release(&ans);
	idlog_release(&full);
}

/*
 * The parts of envelope-parts (doc/PROTOCOL.md 4.5): each part's bytes
 * and the body's are i mod 251, restarting for each.
 */
static const struct {
	const char *line;
	size_t size;
} vec_parts[] = {
	{ "part: attachment 0 text/plain empty.txt\n", 0 },
	{ "part: attachment 70000 application/pdf report (final).pdf\n",
	    70000 },
	{ "part: x-later 5 fields of a kind to come\n", 5 },
	{ "part: attachment 3 text/plain;charset=utf-8 Gr\xc3\xbc\xc3\x9f"
	    "e.txt\n", 3 },
};
#define NVEC_PARTS	(sizeof(vec_parts) / sizeof(vec_parts[0]))
#define PARTS_BODY	42

/* h with lines put right before its sender-log line. */
static int
before_log(struct sbuf *h, const char *lines)
{
	const char *at = strstr(h->buf, "\nsender-log: ");
	struct sbuf out;

	if (at == NULL)
		return -1;
	at++;
	sbuf_init(&out, MSG_MAX_HEADER);
	if (sbuf_add(&out, h->buf, (size_t)(at - h->buf)) ||
	    sbuf_add(&out, lines, strlen(lines)) ||
	    sbuf_add(&out, at, h->len - (size_t)(at - h->buf))) {
		sbuf_release(&out);
		return -1;
	}
	sbuf_release(h);
	*h = out;
	return 0;
}

/* Part lines a reader must refuse: what they hold, and why. */
static const struct {
	const char *label, *lines, *why;
} bad_parts[] = {
	{ "../x", "part: attachment 1 text/plain ../x\n",
	    "part 1 has a name that holds a '/' or '\\'" },
	{ ".bashrc", "part: attachment 1 text/plain .bashrc\n",
	    "part 1 has a name that starts with a dot" },
	{ "-rf", "part: attachment 1 text/plain -rf\n",
	    "part 1 has a name that starts with '-'" },
	{ "U+202E in a name",
	    "part: attachment 1 text/plain a\xe2\x80\xaetxt.exe\n",
	    "part 1 has a name that holds a control or bidirectional" },
	{ "U+0085 in a name", "part: attachment 1 text/plain a\xc2\x85" "b\n",
	    "part 1 has a name that holds a control or bidirectional" },
	{ "a name with a leading space",
	    "part: attachment 1 text/plain  a\n",
	    "part 1 has a name that starts or ends with a space" },
	{ "one name twice",
	    "part: attachment 1 text/plain a\npart: attachment 2 text/csv a\n",
	    "part 2 has the name of part 1" },
	{ "size 01", "part: attachment 01 text/plain a\n",
	    "part 1 has a bad size" },
	{ "size 2^50 + 1", "part: attachment 1125899906842625 text/plain a\n",
	    "part 1 has a bad size" },
	{ "type Text/Plain", "part: attachment 1 Text/Plain a\n",
	    "part 1 has a bad type" },
	{ "a space in the type",
	    "part: attachment 1 text/plain; charset=utf-8 a\n",
	    "part 1 has a bad type" },
	{ "no name", "part: attachment 1 text/plain\n",
	    "part 1 has a bad type" },
	{ "kind Attachment", "part: Attachment 1 text/plain a\n",
	    "part 1 has a bad kind" },
	{ "a kind not known, a space after its size", "part: x-later 1 \n",
	    "part 1 ends with a space" },
	{ "U+0085 in the fields of a kind not known",
	    "part: x-later 1 a\xc2\x85\n",
	    "part 1 has fields that are not header text" },
};

/* A header of alice's with lines before sender-log: parses, or why not. */
static int
parse_with(const struct idlog *alice, const struct idlog *bob,
    const char *lines, struct msg_meta *meta, struct smimp_err *err)
{
	struct sbuf h;
	size_t hlen;
	int r;

	sbuf_init(&h, MSG_MAX_HEADER);
	header_from(alice, bob, NULL, "2026-01-01T00:00:00Z",
	    "vector-parts@example.org", "test vector with parts", &h);
	r = before_log(&h, lines) != 0 ? -1 :
	    env_header_parse((unsigned char *)h.buf, h.len, &hlen, meta, NULL,
	    err);
	sbuf_release(&h);
	return r;
}

/* What the parser refuses, and the limits it holds to. */
static void
part_rules(const struct idlog *alice, const struct idlog *bob)
{
	char what[256], name[PART_NAME_MAX + 2];
	struct smimp_err err;
	struct msg_meta meta;
	struct sbuf many;
	size_t i;

	for (i = 0; i < sizeof(bad_parts) / sizeof(bad_parts[0]); i++) {
		smimp_err_clear(&err);
		snprintf(what, sizeof(what), "envelope-parts: refuses %s",
		    bad_parts[i].label);
		check(parse_with(alice, bob, bad_parts[i].lines, &meta,
		    &err) != 0 && err.code == SMIMP_EXIT_BADMSG &&
		    strstr(err.msg, bad_parts[i].why) != NULL, what);
		printf("# %s\n", err.msg);
	}
	sbuf_init(&many, MSG_MAX_HEADER);
	for (i = 0; i <= PART_MAX; i++)
		(void)sbuf_addf(&many, "part: attachment 1 text/plain %zu\n", i);
	check(parse_with(alice, bob, many.buf, &meta, &err) != 0 &&
	    strstr(err.msg, "more than 64 parts") != NULL,
	    "envelope-parts: refuses a 65th part");
	many.len -= strlen("part: attachment 1 text/plain 64\n");
	many.buf[many.len] = '\0';
	i = parse_with(alice, bob, many.buf, &meta, &err) == 0;
	check(i && meta.nparts == PART_MAX && meta.parts_len == PART_MAX,
	    "envelope-parts: takes 64 parts");
	if (i)
		msg_meta_release(&meta);
	memset(name, 'n', PART_NAME_MAX + 1);
	name[PART_NAME_MAX + 1] = '\0';
	many.len = 0;
	(void)sbuf_addf(&many, "part: attachment 1 text/plain %s\n", name);
	check(parse_with(alice, bob, many.buf, &meta, &err) != 0 &&
	    strstr(err.msg, "longer than 200 bytes") != NULL,
	    "envelope-parts: refuses a name of 201 bytes");
	many.len = 0;
	(void)sbuf_addf(&many, "part: attachment 1125899906842624 text/plain "
	    "%s\npart: x-later 0\n", name + 1);
	i = parse_with(alice, bob, many.buf, &meta, &err) == 0;
	check(i && meta.nparts == 2 && strlen(meta.parts[0].name) ==
	    PART_NAME_MAX && meta.parts[0].size == PART_SIZE_MAX &&
	    !meta.parts[1].known, "envelope-parts: takes a name of 200 bytes, "
	    "2^50 bytes, a kind not known with no fields");
	if (i)
		msg_meta_release(&meta);
	sbuf_release(&many);
}

/* The library writes the attachments' lines as they are built by hand. */
static void
parts_written(const struct keys *alice_keys, const struct idlog *alice,
    const struct idlog *bob)
{
	struct msg_part parts[2];
	struct msg_recipient r;
	struct seal_params p;
	struct smimp_err err;
	struct secret_key sk;
	struct sbuf h, want;
	const char *from, *to;

	memset(&sk, 0, sizeof(sk));
	memcpy(sk.identity_public, alice_keys->id_pk, 32);
	memset(parts, 0, sizeof(parts));
	snprintf(parts[0].kind, sizeof(parts[0].kind), "attachment");
	snprintf(parts[0].type, sizeof(parts[0].type), "application/pdf");
	snprintf(parts[0].name, sizeof(parts[0].name), "report (final).pdf");
	parts[0].size = 70000;
	snprintf(parts[1].kind, sizeof(parts[1].kind), "attachment");
	snprintf(parts[1].type, sizeof(parts[1].type),
	    "text/plain;charset=utf-8");
	snprintf(parts[1].name, sizeof(parts[1].name), "Gr\xc3\xbc\xc3\x9f"
	    "e.txt");
	parts[1].size = 3;
	recipient_from_log(&r, bob);
	memset(&p, 0, sizeof(p));
	p.sender = &sk;
	p.sender_log = alice;
	p.rcpts = &r;
	p.nrcpts = 1;
	p.type = "email";
	p.parts = parts;
	p.nparts = 2;
	sbuf_init(&h, MSG_MAX_HEADER);
	sbuf_init(&want, MSG_MAX_HEADER);
	(void)sbuf_addf(&want, "%s%s", vec_parts[1].line, vec_parts[3].line);
	from = NULL;
	if (env_header_build(&h, &p, NULL, 0, &err) == 0) {
		from = strstr(h.buf, "\npart: ");
		to = strstr(h.buf, "\npadding: ");
	}
	check(from != NULL && to != NULL && (size_t)(to - from) == want.len &&
	    memcmp(from + 1, want.buf, want.len) == 0,
	    "envelope-parts: the library writes the part lines built by hand "
	    "from the grammar");
	sbuf_release(&h);
	sbuf_release(&want);
}

/*
 * envelope-parts: a message from alice to bob with four parts (an empty
 * one, one across a chunk boundary, one of a kind to come, one with a
 * UTF-8 name and a parameter) and a body, its leaves, root and
 * signature; the parser's offsets; what it refuses.
 */
static void
run_parts_envelope(const char *dir, const struct keys *alice_keys,
    const struct idlog *alice, const struct idlog *bob, int generate)
{
	unsigned char sig[64], root[32], *hb;
	struct sbuf h, ans, lines;
	struct msg_meta meta;
	size_t i, k, total, at;
	int parsed;
	uint64_t off = 0;

	sbuf_init(&h, MSG_MAX_HEADER);
	sbuf_init(&ans, 1 << 16);
	sbuf_init(&lines, MSG_MAX_HEADER);
	header_from(alice, bob, NULL, "2026-01-01T00:00:00Z",
	    "vector-parts@example.org", "test vector with parts", &h);
	total = PARTS_BODY;
	for (i = 0; i < NVEC_PARTS; i++) {
		(void)sbuf_add(&lines, vec_parts[i].line,
		    strlen(vec_parts[i].line));
		total += vec_parts[i].size;
	}
	(void)before_log(&h, lines.buf);
	total += h.len;
	hb = malloc(total);
	memcpy(hb, h.buf, h.len);
	at = h.len;
	(void)sbuf_addf(&ans, "header-length: %zu\n", h.len);
	for (i = 0; i < NVEC_PARTS; i++) {
		for (k = 0; k < vec_parts[i].size; k++)
			hb[at + k] = (unsigned char)(k % 251);
		(void)sbuf_addf(&ans, "part: %zu at %llu, %zu bytes i mod 251\n",
		    i + 1, (unsigned long long)off, vec_parts[i].size);
		at += vec_parts[i].size;
		off += vec_parts[i].size;
	}
	for (k = 0; k < PARTS_BODY; k++)
		hb[at + k] = (unsigned char)(k % 251);
	(void)sbuf_addf(&ans, "body: at %llu, %d bytes i mod 251\n",
	    (unsigned long long)off, PARTS_BODY);
	envelope_answers(hb, total, alice_keys->id_sk, &ans, sig, root);
	parsed = envelope_files(dir, "envelope-parts", &h, &ans, "offsets, "
	    "leaves, root and signature", generate, &meta);
	if (parsed < 0)
		goto out;
	check(parsed && meta.nparts == NVEC_PARTS && meta.parts_len == 70008 &&
	    meta.parts[1].offset == 0 && meta.parts[2].offset == 70000 &&
	    !meta.parts[2].known && meta.parts[3].offset == 70005 &&
	    strcmp(meta.parts[1].name, "report (final).pdf") == 0 &&
	    strcmp(meta.parts[3].type, "text/plain;charset=utf-8") == 0,
	    "envelope-parts.header: parses: four parts, their offsets, one of "
	    "a kind not known");
	if (parsed)
		msg_meta_release(&meta);
	check(env_verify(sig, root, alice->identity_key) == 0,
	    "envelope-parts: the signature covers the parts as any bytes");
	parts_written(alice_keys, alice, bob);
	part_rules(alice, bob);
out:
	free(hb);
	sbuf_release(&h);
	sbuf_release(&ans);
	sbuf_release(&lines);
}

/* The bodies of envelope-padded: at the floor, and past a chunk. */
static const size_t padded_bodies[] = { 42, 70000 };

/*
 * H || B || P || T for the padded header h and a body of blen bytes i
 * mod 251, as doc/PROTOCOL.md 9 lays it out; its answers into ans.
 */
static unsigned char *
padded_plaintext(const struct sbuf *h, size_t blen, struct sbuf *ans,
    size_t *len)
{
	uint64_t want = h->len + blen + PAD_TRAILER + ENV_SIG_SIZE;
	uint64_t t = pad_bucket(want), z = t - want;
	unsigned char *p;
	size_t k;

	*len = (size_t)(t - ENV_SIG_SIZE);
	p = calloc(1, *len);
	if (p == NULL)
		return NULL;
	memcpy(p, h->buf, h->len);
	for (k = 0; k < blen; k++)
		p[h->len + k] = (unsigned char)(k % 251);
	pad_trailer_put(p + *len - PAD_TRAILER, z);
	(void)sbuf_addf(ans, "body-length: %zu\npadding-length: %llu\n"
	    "plaintext-length: %llu\n", blen, (unsigned long long)z,
	    (unsigned long long)t);
	return p;
}

/* What the parser makes of padding lines: the scheme, and no other. */
static void
padding_rules(const struct idlog *alice, const struct idlog *bob)
{
	static const char *const bad[] = {
		"padding: semp\n", "padding: padme \n", "padding: PADME\n",
		"padding: \n", "padding: padme\npadding: padme\n",
	};
	static const char *const label[] = {
		"semp", "'padme '", "PADME", "an empty scheme", "two lines",
	};
	struct smimp_err err;
	struct msg_meta meta;
	char what[128];
	size_t i;
	int ok;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(what, sizeof(what), "envelope-padded: refuses "
		    "padding: %s", label[i]);
		check(parse_with(alice, bob, bad[i], &meta, &err) != 0 &&
		    err.code == SMIMP_EXIT_BADMSG, what);
		printf("# %s\n", err.msg);
	}
	/* After the parts, not before them. */
	ok = parse_with(alice, bob, "padding: padme\npart: attachment 1 "
	    "text/plain a\n", &meta, &err) != 0;
	check(ok, "envelope-padded: refuses a padding line before a part");
	ok = parse_with(alice, bob, "part: attachment 1 text/plain a\n"
	    "padding: padme\n", &meta, &err) == 0;
	check(ok && meta.padded && meta.nparts == 1, "envelope-padded: takes "
	    "a padding line after the parts");
	if (ok)
		msg_meta_release(&meta);
}

/*
 * envelope-padded: a message from alice to bob whose header says
 * padding: padme, with a body of 42 bytes (padded to the floor) and of
 * 70000 (to Padme's bucket), each with its P, T, leaves, root and
 * signature.
 */
static void
run_padded_envelope(const char *dir, const struct keys *alice_keys,
    const struct idlog *alice, const struct idlog *bob, int generate)
{
	unsigned char sig[64], root[32], *pt;
	struct sbuf h, ans;
	struct msg_meta meta;
	size_t i, len;
	int parsed, ok = 1;

	sbuf_init(&h, MSG_MAX_HEADER);
	sbuf_init(&ans, 1 << 16);
	header_from(alice, bob, NULL, "2026-01-01T00:00:00Z",
	    "vector-padded@example.org", "test vector, padded", &h);
	(void)before_log(&h, "padding: padme\n");
	(void)sbuf_addf(&ans, "header-length: %zu\n", h.len);
	for (i = 0; i < sizeof(padded_bodies) / sizeof(padded_bodies[0]);
	    i++) {
		pt = padded_plaintext(&h, padded_bodies[i], &ans, &len);
		if (pt == NULL)
			break;
		envelope_answers(pt, len, alice_keys->id_sk, &ans, sig, root);
		ok = ok && env_verify(sig, root, alice->identity_key) == 0;
		free(pt);
	}
	parsed = envelope_files(dir, "envelope-padded", &h, &ans, "padding, "
	    "leaves, root and signature of each body", generate, &meta);
	if (parsed < 0)
		goto out;
	check(parsed && meta.padded && meta.nparts == 0,
	    "envelope-padded.header: parses, padded");
	if (parsed)
		msg_meta_release(&meta);
	check(ok, "envelope-padded: the signatures cover P and T");
	check(pad_bucket(4095) == 4096 && pad_bucket(4096) == 4096 &&
	    pad_bucket(4097) == 4352 && pad_bucket(65537) == 67584 &&
	    pad_bucket(((uint64_t)1 << 40) + 1) == ((uint64_t)1 << 40) +
	    ((uint64_t)1 << 34) && pad_bucket(PAD_MAX + 1) == 0,
	    "padding: the buckets at the floor, past it, past a chunk, "
	    "past a TiB");
	padding_rules(alice, bob);
out:
	sbuf_release(&h);
	sbuf_release(&ans);
}

static int
run(const char *dir, int generate)
{
	struct idlog logs[2];
	struct keys keys[2];
	struct smimp_err err;
	char name[64], what[256], fp[FINGERPRINT_STRLEN], hex[65];
	size_t i, n;

	for (i = 0; i < 2; i++) {
		unsigned char *file;
		size_t len;
		struct sbuf txt;

		derive(&idents[i], &keys[i]);
		if (idlog_genesis(&logs[i], idents[i].address, keys[i].id_sk,
		    keys[i].enc_pk, keys[i].rec_pk, DATE_2026, &err) != 0) {
			printf("FAIL genesis: %s\n", err.msg);
			return 1;
		}
		fingerprint_format(logs[i].fingerprint, fp);
		sodium_bin2hex(hex, sizeof(hex), logs[i].head, 32);
		sbuf_init(&txt, 4096);
		(void)sbuf_addf(&txt, "address: %s\nidentity-seed: %02x*32\n"
		    "encryption-secret: %02x*32\nrecovery-seed: %02x*32\n"
		    "date: 2026-01-01T00:00:00Z\nfingerprint: %s\n"
		    "log-head: %s\n", idents[i].address, idents[i].id_byte,
		    idents[i].enc_byte, idents[i].rec_byte, fp, hex);
		snprintf(name, sizeof(name), "%s.pub", idents[i].name);
		if (generate) {
			if (write_file(dir, name, logs[i].raw,
			    logs[i].raw_len) != 0)
				return 1;
			snprintf(name, sizeof(name), "%s.txt", idents[i].name);
			if (write_file(dir, name, txt.buf, txt.len) != 0)
				return 1;
			sbuf_release(&txt);
			continue;
		}
		if (read_file(dir, name, &file, &len) == 0) {
			struct idlog parsed;

			snprintf(what, sizeof(what), "%s: genesis record bytes",
			    name);
			check(len == logs[i].raw_len && memcmp(file,
			    logs[i].raw, len) == 0, what);
			snprintf(what, sizeof(what), "%s: parses and verifies",
			    name);
			check(idlog_parse(&parsed, file, len, &err) == 0, what);
			idlog_release(&parsed);
			file[len / 2] ^= 1;
			snprintf(what, sizeof(what), "%s: a flipped bit is "
			    "refused", name);
			check(idlog_parse(&parsed, file, len, &err) != 0, what);
			free(file);
		}
		snprintf(name, sizeof(name), "%s.txt", idents[i].name);
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: fingerprint %s and "
			    "log head", name, fp);
			check(len == txt.len && memcmp(file, txt.buf, len) == 0,
			    what);
			free(file);
		}
		sbuf_release(&txt);
	}
	for (n = 0; n < NENV; n++) {
		struct sbuf h, ans;
		unsigned char *hb, sig[64], root[32], *file;
		size_t hlen, body, total, len, k;
		struct msg_meta meta;

		sbuf_init(&h, MSG_MAX_HEADER);
		sbuf_init(&ans, 1 << 20);
		header_for(n, &logs[0], &logs[1], &h);
		total = env_total[n] == 0 ? h.len + 42 : env_total[n] < 0 ?
		    h.len : (size_t)env_total[n];
		body = total - h.len;
		hb = malloc(total);
		memcpy(hb, h.buf, h.len);
		for (k = 0; k < body; k++)
			hb[h.len + k] = (unsigned char)(k % 251);
		(void)sbuf_addf(&ans, "header-length: %zu\nbody-length: %zu\n"
		    "body: bytes i mod 251\n", h.len, body);
		envelope_answers(hb, total, keys[0].id_sk, &ans, sig, root);
		snprintf(name, sizeof(name), "envelope%zu.header", n);
		if (generate) {
			if (write_file(dir, name, h.buf, h.len) != 0)
				return 1;
			snprintf(name, sizeof(name), "envelope%zu.txt", n);
			if (write_file(dir, name, ans.buf, ans.len) != 0)
				return 1;
			goto next;
		}
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: header bytes", name);
			check(len == h.len && memcmp(file, h.buf, len) == 0,
			    what);
			snprintf(what, sizeof(what), "%s: parses, sender "
			    "verified", name);
			check(env_header_parse(file, len, &hlen, &meta,
			    NULL, &err) == 0 && hlen == len &&
			    strcmp(meta.from, "alice@example.org") == 0 &&
			    meta.nrcpts == 1, what);
			if (hlen == len)
				msg_meta_release(&meta);
			free(file);
		}
		snprintf(name, sizeof(name), "envelope%zu.txt", n);
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: leaves, root and "
			    "signature (H||B %zu bytes)", name, total);
			check(len == ans.len && memcmp(file, ans.buf, len) == 0,
			    what);
			free(file);
		}
		snprintf(what, sizeof(what), "envelope%zu: signature verifies",
		    n);
		check(env_verify(sig, root, logs[0].identity_key) == 0, what);
		sig[10] ^= 0x20;
		snprintf(what, sizeof(what), "envelope%zu: a flipped signature "
		    "bit is refused", n);
		check(env_verify(sig, root, logs[0].identity_key) != 0, what);
		root[0] ^= 1;
		sig[10] ^= 0x20;
		snprintf(what, sizeof(what), "envelope%zu: a changed root is "
		    "refused", n);
		check(env_verify(sig, root, logs[0].identity_key) != 0, what);
next:
		free(hb);
		sbuf_release(&h);
		sbuf_release(&ans);
	}
	run_device_envelope(dir, &keys[0], &logs[1], generate);
	run_parts_envelope(dir, &keys[0], &logs[0], &logs[1], generate);
	run_padded_envelope(dir, &keys[0], &logs[0], &logs[1], generate);
	for (i = 0; i < 2; i++)
		idlog_release(&logs[i]);
	if (run_history(dir, &keys[0], generate) != 0 && generate)
		return 1;
	run_devices(dir, &keys[0], generate);
	run_request(dir, generate);
	if (generate)
		return 0;
	return check_summary();
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "--generate") == 0)
		return run(argv[2], 1);
	if (argc != 2) {
		fprintf(stderr, "usage: protocol-vectors [--generate] DIR\n");
		return 2;
	}
	return run(argv[1], 0);
}
