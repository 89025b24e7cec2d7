/*
 * idlog.c - parse, verify and create identity log records.
 *
 * A record is text: a first line "smimp-identity/1", then "name: value"
 * lines in a fixed order that depends on the record type, ending with
 * "signature: <base64>".  The signature is Ed25519 over
 * IDREC_SIG_CONTEXT followed by every byte of the record before the
 * signature line.  See doc/PROTOCOL.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
#include "signer.h"
#include "util.h"
#include "banned.h"

#define IDREC_MAGIC		"smimp-identity/1\n"
#define IDREC_SIG_CONTEXT	"smimp/1 identity-record"	/* plus NUL */
#define IDREC_HASH_CONTEXT	"smimp/1 record-hash"
#define FINGERPRINT_CONTEXT	"smimp/1 fingerprint"
#define IDREC_MAX_LINE		512

static const char *const type_names[] = {
	"genesis", "encryption-key", "rotate", "revoke", "recover",
	"device-add", "device-remove"
};

/* Which fields after signed-by each record type carries, in order. */
enum { F_IDENTITY = 1, F_ENCRYPTION = 2, F_RECOVERY = 4, F_REASON = 8,
	F_DEVICE = 16, F_SCOPE = 32, F_DEVICE_KEYS = 64 };
static const int type_fields[] = {
	F_IDENTITY | F_ENCRYPTION | F_RECOVERY,
	F_ENCRYPTION,
	F_IDENTITY,
	F_REASON,
	F_IDENTITY | F_ENCRYPTION,
	F_DEVICE | F_SCOPE | F_DEVICE_KEYS,
	F_DEVICE
};
#define NTYPES	(sizeof(type_fields) / sizeof(type_fields[0]))

static const char *const scope_names[] = { "full", "send", "receive" };
#define NSCOPES	(sizeof(scope_names) / sizeof(scope_names[0]))

static void
hash_with_context(unsigned char out[32], const char *context,
    const unsigned char *data, size_t len)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const unsigned char *)context,
	    strlen(context) + 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, 32);
}

static int
sig_message_verify(const unsigned char sig[64], const unsigned char *body,
    size_t body_len, const unsigned char pk[32])
{
	return signature_verify_in_context(IDREC_SIG_CONTEXT, body, body_len,
	    sig, pk);
}

static int
sig_message_sign(unsigned char sig[64], const unsigned char *body,
    size_t body_len, const unsigned char sk[64])
{
	struct signer s;

	signer_secret(&s, "", sk);
	return signer_sign_in_context(&s, IDREC_SIG_CONTEXT, body, body_len,
	    sig);
}

/* The fields of one record as parsed, before chain checks. */
struct rec_fields {
	enum idrec_type type;
	char address[ADDRESS_MAX + 1];
	uint64_t seq;
	int has_prev;
	unsigned char prev[32];
	int64_t date;
	int by_recovery;
	unsigned char identity_key[32];
	unsigned char encryption_key[32];
	unsigned char recovery_key[32];
	char reason[IDREC_REASON_MAX + 1];
	char device[IDDEV_NAME_MAX + 1];
	enum iddev_scope scope;
	unsigned char device_signing_key[32];
	unsigned char device_encryption_key[32];
	unsigned char signature[64];
	size_t signed_len;	/* bytes before the signature line */
	size_t len;		/* whole record */
};

static int
bad(struct smimp_err *err, size_t recno, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG,
	    "malformed identity record %zu: %s", recno, what);
}

static int
expect_line(const char *buf, size_t len, size_t *pos, const char *name,
    struct kv_line *kv)
{
	if (kv_next(buf, len, pos, IDREC_MAX_LINE, kv) != 1)
		return -1;
	return kv_is(kv, name) ? 0 : -1;
}

static int
key_line(const char *buf, size_t len, size_t *pos, const char *name,
    unsigned char *out, size_t out_len)
{
	struct kv_line kv;
	size_t got;

	if (expect_line(buf, len, pos, name, &kv) != 0)
		return -1;
	/* Keys and signatures: public. */
	return b64_decode_public(kv.value, kv.value_len, out, out_len,
	    &got) == 0 && got == out_len ? 0 : -1;
}

/* The index of the value of kv among n names, or -1. */
static int
name_index(const struct kv_line *kv, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(names[i]) == kv->value_len &&
		    memcmp(names[i], kv->value, kv->value_len) == 0)
			return (int)i;
	return -1;
}

static int
parse_type(const struct kv_line *kv, enum idrec_type *type)
{
	int i = name_index(kv, type_names, NTYPES);

	if (i < 0)
		return -1;
	*type = (enum idrec_type)i;
	return 0;
}

/*
 * A device's name: 1 to IDDEV_NAME_MAX of a-z 0-9 and '-', not starting
 * with '-' (so that it never reads as an option).  Lower case only, so
 * that two names never differ in case alone.
 */
static int
device_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > IDDEV_NAME_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* The device fields of a device-add or device-remove record. */
static int
device_fields(const char *buf, size_t len, size_t *pos, int fields,
    size_t recno, struct rec_fields *f, struct smimp_err *err)
{
	struct kv_line kv;
	int i;

	if ((fields & F_DEVICE) && (expect_line(buf, len, pos, "device",
	    &kv) != 0 || !device_name_ok(kv.value, kv.value_len) ||
	    kv_value_copy(&kv, f->device, sizeof(f->device)) != 0))
		return bad(err, recno, "bad or missing device");
	if (fields & F_SCOPE) {
		i = expect_line(buf, len, pos, "scope", &kv) == 0 ?
		    name_index(&kv, scope_names, NSCOPES) : -1;
		if (i < 0)
			return bad(err, recno, "bad or missing scope");
		f->scope = (enum iddev_scope)i;
	}
	if ((fields & F_DEVICE_KEYS) && key_line(buf, len, pos,
	    "device-signing-key", f->device_signing_key, 32) != 0)
		return bad(err, recno, "bad or missing device-signing-key");
	if ((fields & F_DEVICE_KEYS) && key_line(buf, len, pos,
	    "device-encryption-key", f->device_encryption_key, 32) != 0)
		return bad(err, recno, "bad or missing device-encryption-key");
	return 0;
}

/*
 * A revocation's reason: 1 to IDREC_REASON_MAX bytes of printable
 * ASCII.  Every client shows it, so it carries nothing that could drive
 * a terminal.
 */
static int
reason_ok(const char *s, size_t len)
{
	return printable_ascii(s, len, IDREC_REASON_MAX);
}

/* Parse one record at buf (which may hold more after it). */
static int
record_parse(const char *buf, size_t len, size_t recno, struct rec_fields *f,
    struct smimp_err *err)
{
	struct smimp_err aerr;
	struct kv_line kv;
	size_t pos = strlen(IDREC_MAGIC);
	char tmp[ADDRESS_MAX + 1];
	int fields;

	memset(f, 0, sizeof(*f));
	if (len > IDREC_MAX_BYTES)
		len = IDREC_MAX_BYTES;
	if (len < pos || memcmp(buf, IDREC_MAGIC, pos) != 0)
		return bad(err, recno, "missing 'smimp-identity/1' line");
	if (expect_line(buf, len, &pos, "type", &kv) != 0 ||
	    parse_type(&kv, &f->type) != 0)
		return bad(err, recno, "bad or missing type");
	if (expect_line(buf, len, &pos, "address", &kv) != 0 ||
	    kv_value_copy(&kv, tmp, sizeof(tmp)) != 0 ||
	    address_normalize(tmp, f->address, &aerr) != 0 ||
	    strcmp(tmp, f->address) != 0)
		return bad(err, recno, "bad or missing address");
	if (expect_line(buf, len, &pos, "seq", &kv) != 0 ||
	    parse_u64(kv.value, kv.value_len, &f->seq) != 0)
		return bad(err, recno, "bad or missing seq");
	if (f->seq > 0) {
		if (key_line(buf, len, &pos, "prev", f->prev, 32) != 0)
			return bad(err, recno, "bad or missing prev");
		f->has_prev = 1;
	}
	if (expect_line(buf, len, &pos, "date", &kv) != 0 ||
	    time_parse(kv.value, kv.value_len, &f->date) != 0)
		return bad(err, recno, "bad or missing date");
	if (f->type != IDREC_GENESIS) {
		if (expect_line(buf, len, &pos, "signed-by", &kv) != 0)
			return bad(err, recno, "missing signed-by");
		if (kv.value_len == 8 && memcmp(kv.value, "identity", 8) == 0)
			f->by_recovery = 0;
		else if (kv.value_len == 8 &&
		    memcmp(kv.value, "recovery", 8) == 0)
			f->by_recovery = 1;
		else
			return bad(err, recno, "bad signed-by");
	}
	fields = type_fields[f->type];
	if ((fields & F_IDENTITY) &&
	    key_line(buf, len, &pos, "identity-key", f->identity_key, 32))
		return bad(err, recno, "bad or missing identity-key");
	if ((fields & F_ENCRYPTION) && key_line(buf, len, &pos,
	    "encryption-key", f->encryption_key, 32))
		return bad(err, recno, "bad or missing encryption-key");
	if ((fields & F_RECOVERY) &&
	    key_line(buf, len, &pos, "recovery-key", f->recovery_key, 32))
		return bad(err, recno, "bad or missing recovery-key");
	if ((fields & F_REASON) && (expect_line(buf, len, &pos, "reason",
	    &kv) != 0 || !reason_ok(kv.value, kv.value_len) ||
	    kv_value_copy(&kv, f->reason, sizeof(f->reason)) != 0))
		return bad(err, recno, "bad or missing reason");
	if (device_fields(buf, len, &pos, fields, recno, f, err) != 0)
		return -1;
	f->signed_len = pos;
	if (key_line(buf, len, &pos, "signature", f->signature, 64) != 0)
		return bad(err, recno, "bad or missing signature");
	f->len = pos;
	return 0;
}

/* The index of the live device of that name, or log->ndevices. */
static size_t
live_index(const struct idlog *log, const char *name)
{
	size_t i;

	for (i = 0; i < log->ndevices; i++)
		if (!log->devices[i].removed &&
		    strcmp(log->devices[i].name, name) == 0)
			break;
	return i;
}

/*
 * A device-add: its name is not live, its keys were never a device's
 * (a removed device's keys may have been stolen with it) nor the
 * identity's own, and there is room.
 */
static int
device_add(struct idlog *log, const struct rec_fields *f, size_t recno,
    struct smimp_err *err)
{
	struct iddevice *d;
	size_t i;

	if (live_index(log, f->device) < log->ndevices)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%zu: device '%s' is in the log already", recno, f->device);
	for (i = 0; i < log->ndevices; i++)
		if (memcmp(log->devices[i].signing_key, f->device_signing_key,
		    32) == 0 || memcmp(log->devices[i].encryption_key,
		    f->device_encryption_key, 32) == 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity "
			    "record %zu: the keys of device '%s' were those "
			    "of device '%s' before", recno, f->device,
			    log->devices[i].name);
	if (memcmp(f->device_signing_key, log->identity_key, 32) == 0 ||
	    memcmp(f->device_signing_key, log->recovery_key, 32) == 0 ||
	    memcmp(f->device_encryption_key, log->encryption_key, 32) == 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%zu: device '%s' has a key of the identity itself", recno,
		    f->device);
	if (log->nlive == IDLOG_MAX_DEVICES)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%zu: more than %d devices", recno, IDLOG_MAX_DEVICES);
	d = realloc(log->devices, (log->ndevices + 1) * sizeof(*d));
	if (d == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	log->devices = d;
	d += log->ndevices++;
	memset(d, 0, sizeof(*d));
	memcpy(d->name, f->device, sizeof(d->name));
	d->scope = f->scope;
	memcpy(d->signing_key, f->device_signing_key, 32);
	memcpy(d->encryption_key, f->device_encryption_key, 32);
	d->added = f->date;
	d->added_rec = recno;
	log->nlive++;
	return 0;
}

static int
device_remove(struct idlog *log, const struct rec_fields *f, size_t recno,
    struct smimp_err *err)
{
	size_t i = live_index(log, f->device);
	struct iddevice *d;

	if (i == log->ndevices)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%zu: no device '%s' to remove", recno, f->device);
	d = &log->devices[i];
	d->removed = 1;
	d->removed_at = f->date;
	d->removed_rec = recno;
	log->nlive--;
	return 0;
}

/* Apply a parsed record to the log's state: chain and signature. */
static int
record_apply(struct idlog *log, const struct rec_fields *f,
    const unsigned char *raw, size_t recno, int verify,
    struct smimp_err *err)
{
	const unsigned char *signer;

	if (f->seq != recno)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%zu does not extend the log (sequence number %llu)", recno,
		    (unsigned long long)f->seq);
	if (recno == 0 && f->type != IDREC_GENESIS)
		return bad(err, recno, "the first record is not a genesis");
	if (recno > 0 && f->type == IDREC_GENESIS)
		return bad(err, recno, "a second genesis");
	if (recno > 0 && (strcmp(f->address, log->address) != 0 ||
	    memcmp(f->prev, log->head, 32) != 0))
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "identity record %zu does not extend the log (forked "
		    "or rewritten)", recno);
	if (log->revoked)
		return bad(err, recno, "a record after a revocation");
	if (recno == 0)
		signer = f->identity_key;
	else if (f->by_recovery)
		signer = log->recovery_key;
	else if (f->type == IDREC_RECOVER)
		return bad(err, recno, "recovery not signed by the recovery "
		    "key");
	else
		signer = log->identity_key;
	if (verify &&
	    sig_message_verify(f->signature, raw, f->signed_len, signer) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "identity record %zu: bad signature", recno);
	switch (f->type) {
	case IDREC_GENESIS:
		memcpy(log->address, f->address, sizeof(log->address));
		memcpy(log->identity_key, f->identity_key, 32);
		memcpy(log->encryption_key, f->encryption_key, 32);
		memcpy(log->recovery_key, f->recovery_key, 32);
		break;
	case IDREC_ENCRYPTION_KEY:
		memcpy(log->encryption_key, f->encryption_key, 32);
		break;
	case IDREC_ROTATE:
		memcpy(log->identity_key, f->identity_key, 32);
		break;
	case IDREC_RECOVER:
		memcpy(log->identity_key, f->identity_key, 32);
		memcpy(log->encryption_key, f->encryption_key, 32);
		break;
	case IDREC_REVOKE:
		log->revoked = 1;
		log->revoked_at = f->date;
		memcpy(log->reason, f->reason, sizeof(log->reason));
		break;
	case IDREC_DEVICE_ADD:
		if (device_add(log, f, recno, err) != 0)
			return -1;
		break;
	case IDREC_DEVICE_REMOVE:
		if (device_remove(log, f, recno, err) != 0)
			return -1;
		break;
	}
	hash_with_context(log->head, IDREC_HASH_CONTEXT, raw, f->len);
	return 0;
}

void
idlog_release(struct idlog *log)
{
	free(log->raw);
	free(log->recs);
	free(log->devices);
	memset(log, 0, sizeof(*log));
}

/*
 * Parse buf as a log; the records within its first trusted bytes were
 * verified before (0: none, SIZE_MAX: all) and have their signatures
 * taken as they are; every other record's is checked.
 */
static int
parse_log(struct idlog *log, const unsigned char *buf, size_t len,
    size_t trusted, struct smimp_err *err)
{
	struct rec_fields f;
	size_t pos = 0;
	unsigned char fp[32];

	memset(log, 0, sizeof(*log));
	if (len == 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "empty identity log");
	if (len > IDLOG_MAX_BYTES)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "identity log too large");
	log->raw = malloc(len);
	if (log->raw == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	memcpy(log->raw, buf, len);
	log->raw_len = len;
	while (pos < len) {
		struct idrec *r;

		if (log->n == IDLOG_MAX_RECORDS) {
			smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "identity log has too many records");
			goto fail;
		}
		if (record_parse((const char *)log->raw + pos, len - pos,
		    log->n, &f, err) != 0 ||
		    record_apply(log, &f, log->raw + pos, log->n,
		    f.len > trusted || pos > trusted - f.len, err) != 0)
			goto fail;
		r = realloc(log->recs, (log->n + 1) * sizeof(*r));
		if (r == NULL) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
			goto fail;
		}
		log->recs = r;
		r += log->n++;
		r->type = f.type;
		r->seq = f.seq;
		r->date = f.date;
		r->by_recovery = f.by_recovery;
		memcpy(r->prev, f.prev, 32);
		memcpy(r->hash, log->head, 32);
		r->raw = log->raw + pos;
		r->raw_len = f.len;
		pos += f.len;
	}
	hash_with_context(fp, FINGERPRINT_CONTEXT, log->recs[0].raw,
	    log->recs[0].raw_len);
	memcpy(log->fingerprint, fp, FINGERPRINT_SIZE);
	return 0;
fail:
	idlog_release(log);
	return -1;
}

int
idlog_parse(struct idlog *log, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	return parse_log(log, buf, len, 0, err);
}

int
idlog_parse_verified(struct idlog *log, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	return parse_log(log, buf, len, SIZE_MAX, err);
}

int
idlog_parse_after(struct idlog *log, const unsigned char *buf, size_t len,
    const struct idlog *verified, struct smimp_err *err)
{
	size_t trusted = 0;

	if (verified != NULL && len >= verified->raw_len &&
	    memcmp(buf, verified->raw, verified->raw_len) == 0)
		trusted = verified->raw_len;
	return parse_log(log, buf, len, trusted, err);
}

static int
read_file(struct idlog *log, const char *path, int verify,
    struct smimp_err *err)
{
	unsigned char *buf = NULL;
	size_t len;
	int ret;

	memset(log, 0, sizeof(*log));
	if (file_read_all(path, IDLOG_MAX_BYTES, &buf, &len, err) != 0)
		return -1;
	ret = parse_log(log, buf, len, verify ? 0 : SIZE_MAX, err);
	if (ret != 0 && err->code == SMIMP_EXIT_BADMSG) {
		char msg[SMIMP_ERR_MSG];

		memcpy(msg, err->msg, sizeof(msg));
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "'%s': %s", path, msg);
	}
	free(buf);
	return ret;
}

int
idlog_read_file(struct idlog *log, const char *path, struct smimp_err *err)
{
	return read_file(log, path, 1, err);
}

int
idlog_read_file_verified(struct idlog *log, const char *path,
    struct smimp_err *err)
{
	return read_file(log, path, 0, err);
}

int
idlog_copy(struct idlog *dst, const struct idlog *src, struct smimp_err *err)
{
	return parse_log(dst, src->raw, src->raw_len, SIZE_MAX, err);
}

int
idlog_extends(const struct idlog *newer, const struct idlog *older)
{
	return newer->raw_len >= older->raw_len &&
	    memcmp(newer->raw, older->raw, older->raw_len) == 0;
}

/* "name: <base64 of 32 bytes>\n" onto sb. */
static int
key_add(struct sbuf *sb, const char *name, const unsigned char key[32])
{
	return sbuf_addf(sb, "%s: ", name) != 0 ||
	    sbuf_add_b64(sb, key, 32) != 0 || sbuf_add(sb, "\n", 1) != 0 ?
	    -1 : 0;
}

/*
 * The bytes of one record, signed by signer (a 64-byte Ed25519 secret
 * key), appended to sb: the fields in their order for the record's
 * type, from rec (and recovery_key, for a genesis).
 */
static int
record_build(struct sbuf *sb, const char *address, uint64_t seq,
    const unsigned char prev[32], const struct idrec_new *rec,
    const unsigned char *recovery_key, const unsigned char signer[64])
{
	int fields = type_fields[rec->type];
	size_t start = sb->len;		/* sb may hold the log before */
	unsigned char sig[64];
	char when[TIME_STRLEN];

	time_format(rec->date, when);
	if (sbuf_addf(sb, "%stype: %s\naddress: %s\nseq: %llu\n", IDREC_MAGIC,
	    type_names[rec->type], address, (unsigned long long)seq) != 0)
		return -1;
	if (seq > 0 && key_add(sb, "prev", prev) != 0)
		return -1;
	if (sbuf_addf(sb, "date: %s\n", when) != 0)
		return -1;
	if (rec->type != IDREC_GENESIS && sbuf_addf(sb, "signed-by: %s\n",
	    rec->by_recovery ? "recovery" : "identity") != 0)
		return -1;
	if (((fields & F_IDENTITY) &&
	    key_add(sb, "identity-key", rec->identity_key) != 0) ||
	    ((fields & F_ENCRYPTION) &&
	    key_add(sb, "encryption-key", rec->encryption_key) != 0) ||
	    ((fields & F_RECOVERY) &&
	    key_add(sb, "recovery-key", recovery_key) != 0))
		return -1;
	if ((fields & F_REASON) &&
	    sbuf_addf(sb, "reason: %s\n", rec->reason) != 0)
		return -1;
	if ((fields & F_DEVICE) &&
	    sbuf_addf(sb, "device: %s\n", rec->device) != 0)
		return -1;
	if ((fields & F_SCOPE) &&
	    sbuf_addf(sb, "scope: %s\n", scope_names[rec->scope]) != 0)
		return -1;
	if ((fields & F_DEVICE_KEYS) && (key_add(sb, "device-signing-key",
	    rec->device_signing_key) != 0 || key_add(sb,
	    "device-encryption-key", rec->device_encryption_key) != 0))
		return -1;
	if (sig_message_sign(sig, (unsigned char *)sb->buf + start,
	    sb->len - start, signer) != 0 || sbuf_add(sb, "signature: ", 11) != 0 ||
	    sbuf_add_b64(sb, sig, 64) != 0 || sbuf_add(sb, "\n", 1) != 0)
		return -1;
	return 0;
}

int
idlog_genesis(struct idlog *log, const char *address,
    const unsigned char identity_secret[64],
    const unsigned char encryption_public[32],
    const unsigned char recovery_public[32], int64_t date,
    struct smimp_err *err)
{
	struct idrec_new rec;
	struct sbuf sb;
	int ret = -1;

	memset(&rec, 0, sizeof(rec));
	rec.type = IDREC_GENESIS;
	rec.date = date;
	rec.identity_key = identity_secret + 32;
	rec.encryption_key = encryption_public;
	sbuf_init(&sb, IDREC_MAX_BYTES);
	if (record_build(&sb, address, 0, NULL, &rec, recovery_public,
	    identity_secret) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot build the genesis record");
		goto out;
	}
	ret = idlog_parse(log, (unsigned char *)sb.buf, sb.len, err);
out:
	sbuf_release(&sb);
	return ret;
}

int
idlog_reason_valid(const char *s)
{
	return reason_ok(s, strlen(s));
}

int
iddev_name_valid(const char *s)
{
	return device_name_ok(s, strlen(s));
}

const char *
iddev_scope_name(enum iddev_scope scope)
{
	return (size_t)scope < NSCOPES ? scope_names[scope] : "?";
}

int
iddev_scope_parse(const char *s, enum iddev_scope *scope)
{
	size_t i;

	for (i = 0; i < NSCOPES; i++)
		if (strcmp(s, scope_names[i]) == 0) {
			*scope = (enum iddev_scope)i;
			return 0;
		}
	return -1;
}

int
iddev_scope_sends(enum iddev_scope scope)
{
	return scope == IDDEV_FULL || scope == IDDEV_SEND;
}

int
iddev_scope_receives(enum iddev_scope scope)
{
	return scope == IDDEV_FULL || scope == IDDEV_RECEIVE;
}

const struct iddevice *
idlog_device(const struct idlog *log, const char *name)
{
	size_t i = live_index(log, name);

	return i < log->ndevices ? &log->devices[i] : NULL;
}

const struct iddevice *
idlog_device_by_key(const struct idlog *log, const unsigned char key[32])
{
	size_t i;

	for (i = 0; i < log->ndevices; i++)
		if (memcmp(log->devices[i].signing_key, key, 32) == 0)
			return &log->devices[i];
	return NULL;
}

const struct iddevice *
idlog_removed_device(const struct idlog *log, const char *name)
{
	size_t i;

	for (i = log->ndevices; i-- > 0;)
		if (log->devices[i].removed &&
		    strcmp(log->devices[i].name, name) == 0)
			return &log->devices[i];
	return NULL;
}

const struct idrec *
idlog_key_replaced_after(const struct idlog *log, size_t from)
{
	size_t i;

	for (i = from; i < log->n; i++)
		if (log->recs[i].type == IDREC_ROTATE ||
		    log->recs[i].type == IDREC_RECOVER)
			return &log->recs[i];
	return NULL;
}

const struct iddevice *
idlog_sending_device(const struct idlog *log, const char *name,
    const unsigned char *key, struct smimp_err *err)
{
	const struct iddevice *d = idlog_device(log, name), *gone;
	char when[TIME_STRLEN];

	/* The name may have come back with new keys: then not this one. */
	if (d != NULL && key != NULL &&
	    sodium_memcmp(d->signing_key, key, 32) != 0)
		d = NULL;
	if (d == NULL) {
		gone = key != NULL ? idlog_device_by_key(log, key) :
		    idlog_removed_device(log, name);
		if (gone == NULL || !gone->removed) {
			smimp_err_set(err, SMIMP_EXIT_BADMSG, "the message is "
			    "signed by %s, which is no device of %s", name,
			    log->address);
			return NULL;
		}
		time_format(gone->removed_at, when);
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "the message is signed "
		    "by the device %s of %s, which was removed on %s", name,
		    log->address, when);
		return NULL;
	}
	if (!iddev_scope_sends(d->scope)) {
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "the message is signed "
		    "by the device %s of %s, whose scope is receive: it may not "
		    "send", name, log->address);
		return NULL;
	}
	return d;
}

size_t
idlog_receiving_keys(const struct idlog *log,
    unsigned char keys[IDLOG_MAX_DEVICES][32])
{
	size_t i, n = 0;

	for (i = 0; i < log->ndevices && n < IDLOG_MAX_DEVICES; i++)
		if (!log->devices[i].removed &&
		    iddev_scope_receives(log->devices[i].scope))
			memcpy(keys[n++], log->devices[i].encryption_key, 32);
	return n;
}

int
idlog_append(struct idlog *log, const struct idrec_new *rec,
    const unsigned char signer[64], struct smimp_err *err)
{
	int fields;
	struct idlog next;
	struct sbuf sb;
	size_t keep;
	int ret = -1;

	if (rec->type == IDREC_GENESIS || (size_t)rec->type >= NTYPES)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a log has one "
		    "genesis record, its first");
	fields = type_fields[rec->type];
	if (((fields & F_IDENTITY) && rec->identity_key == NULL) ||
	    ((fields & F_ENCRYPTION) && rec->encryption_key == NULL) ||
	    ((fields & F_DEVICE_KEYS) && (rec->device_signing_key == NULL ||
	    rec->device_encryption_key == NULL)) ||
	    ((fields & F_SCOPE) && (size_t)rec->scope >= NSCOPES))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "a %s record needs "
		    "its keys", type_names[rec->type]);
	if ((fields & F_DEVICE) && (rec->device == NULL ||
	    !device_name_ok(rec->device, strlen(rec->device))))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a device's name "
		    "is 1 to %d characters of a-z, 0-9 and '-', not starting "
		    "with '-'", IDDEV_NAME_MAX);
	if ((fields & F_REASON) && (rec->reason == NULL ||
	    !reason_ok(rec->reason, strlen(rec->reason))))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the reason must "
		    "be 1 to %d characters of printable ASCII",
		    IDREC_REASON_MAX);
	keep = rec->keep != 0 ? rec->keep : log->n;
	if (keep > log->n || (keep < log->n && rec->type != IDREC_RECOVER))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "only a recovery "
		    "cuts a log back, and only to one of its %zu records",
		    log->n);
	if (keep == log->n && log->revoked)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s is revoked: nothing may follow", log->address);
	/* The records kept, then the new one, then verified whole. */
	sbuf_init(&sb, IDLOG_MAX_BYTES);
	if (sbuf_add(&sb, log->raw, (size_t)(log->recs[keep - 1].raw +
	    log->recs[keep - 1].raw_len - log->raw)) != 0 ||
	    record_build(&sb, log->address, keep, log->recs[keep - 1].hash,
	    rec, NULL, signer) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build the %s "
		    "record: the log is full", type_names[rec->type]);
		goto out;
	}
	if (idlog_parse(&next, (unsigned char *)sb.buf, sb.len, err) != 0)
		goto out;
	idlog_release(log);
	*log = next;
	ret = 0;
out:
	sbuf_release(&sb);
	return ret;
}

/* The index of the first record where a and b differ. */
static size_t
first_difference(const struct idlog *a, const struct idlog *b)
{
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++)
		if (memcmp(a->recs[i].hash, b->recs[i].hash, 32) != 0)
			break;
	return i;
}

int
idlog_check_follows(const struct idlog *newer, const struct idlog *older,
    struct idlog_follow *how, struct smimp_err *err)
{
	char a[FINGERPRINT_STRLEN], b[FINGERPRINT_STRLEN];
	size_t i, j;

	memset(how, 0, sizeof(*how));
	if (idlog_extends(newer, older))
		return 0;
	if (memcmp(newer->fingerprint, older->fingerprint,
	    FINGERPRINT_SIZE) != 0) {
		fingerprint_format(older->fingerprint, a);
		fingerprint_format(newer->fingerprint, b);
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "another "
		    "identity for %s: fingerprint %s, pinned %s",
		    older->address, b, a);
	}
	i = first_difference(newer, older);
	how->cut = i;		/* said on failure too: where they differ */
	if (i >= newer->n)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "log of %s is truncated: %zu records, %zu pinned",
		    older->address, newer->n, older->n);
	if (newer->recs[i].type != IDREC_RECOVER)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "log of %s forks from the pinned one at record %zu "
		    "(rewritten history)", older->address, i);
	/* What one recovery settled, another may not undo. */
	for (j = i; j < older->n; j++)
		if (older->recs[j].type == IDREC_RECOVER) {
			how->recovery = 1;	/* one, refused */
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the "
			    "identity log of %s cuts back the recovery at "
			    "record %zu", older->address, j);
		}
	how->recovery = 1;
	how->cut = i;
	how->voided = older->n - i;
	how->recovered_at = newer->recs[i].date;
	return 0;
}

int
idlog_splice(const struct idlog *stored, const unsigned char *records,
    size_t len, struct idlog *next, struct smimp_err *err)
{
	const struct idrec *last;
	struct rec_fields f;
	struct sbuf sb;
	int ret = -1;

	memset(next, 0, sizeof(*next));
	if (len == 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "no identity "
		    "records");
	if (record_parse((const char *)records, len, stored->n, &f, err) != 0)
		return -1;
	if (f.seq == 0 || f.seq > stored->n)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity record "
		    "%llu does not extend the log of %zu records",
		    (unsigned long long)f.seq, stored->n);
	last = &stored->recs[f.seq - 1];
	sbuf_init(&sb, IDLOG_MAX_BYTES);
	if (sbuf_add(&sb, stored->raw, (size_t)(last->raw + last->raw_len -
	    stored->raw)) != 0 || sbuf_add(&sb, records, len) != 0)
		smimp_err_set(err, SMIMP_EXIT_BADMSG, "identity log too large");
	else
		ret = idlog_parse(next, (unsigned char *)sb.buf, sb.len, err);
	sbuf_release(&sb);
	return ret;
}

int
idlog_voided_by(const struct idlog *pinned, const struct idlog *msglog,
    int64_t *recovered_at)
{
	size_t i;

	if (memcmp(pinned->fingerprint, msglog->fingerprint,
	    FINGERPRINT_SIZE) != 0)
		return 0;
	i = first_difference(pinned, msglog);
	if (i >= pinned->n || i >= msglog->n ||
	    pinned->recs[i].type != IDREC_RECOVER)
		return 0;
	*recovered_at = pinned->recs[i].date;
	return 1;
}

void
idlog_changes_since(const struct idlog *log, size_t from,
    struct idlog_changes *c)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = from; i < log->n; i++) {
		c->added++;
		switch (log->recs[i].type) {
		case IDREC_ROTATE: c->rotated = 1; break;
		case IDREC_ENCRYPTION_KEY: c->encryption = 1; break;
		case IDREC_RECOVER:
			c->recovered = 1;
			c->recovered_at = log->recs[i].date;
			break;
		case IDREC_REVOKE: c->revoked = 1; break;
		case IDREC_DEVICE_ADD: c->devices_added++; break;
		case IDREC_DEVICE_REMOVE: c->devices_removed++; break;
		case IDREC_GENESIS: break;
		}
	}
}

void
idlog_changes_followed(const struct idlog *log, size_t was,
    const struct idlog_follow *how, struct idlog_changes *c)
{
	idlog_changes_since(log, how->recovery ? how->cut : was, c);
	c->voided = how->voided;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void
fingerprint_format(const unsigned char fp[FINGERPRINT_SIZE],
    char out[FINGERPRINT_STRLEN])
{
	size_t i, o = 0, bits = 0, n = 0;
	unsigned int acc = 0;

	for (i = 0; i < FINGERPRINT_SIZE; i++) {
		acc = (acc << 8) | fp[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (n > 0 && n % 4 == 0)
				out[o++] = '-';
			out[o++] = b32[(acc >> bits) & 31];
			n++;
		}
	}
	out[o] = '\0';
}

int
fingerprint_parse(const char *s, unsigned char fp[FINGERPRINT_SIZE])
{
	unsigned int acc = 0;
	size_t bits = 0, o = 0;

	for (; *s != '\0'; s++) {
		const char *p;
		int c = *s;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		p = c != '\0' ? strchr(b32, c) : NULL;
		if (p == NULL || o >= FINGERPRINT_SIZE)
			return -1;
		acc = (acc << 5) | (unsigned int)(p - b32);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			fp[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o == FINGERPRINT_SIZE && bits == 0 ? 0 : -1;
}
