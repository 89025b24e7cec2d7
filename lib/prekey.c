/*
 * prekey.c - one-time prekeys' statements and batches (see prekey.h;
 * the bytes are in doc/PROTOCOL.md, section 10).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "exitcode.h"
#include "prekey.h"
#include "banned.h"

#define PREKEY_CONTEXT	"smimp/1 prekey"
#define PREKEY_TEXT_MAX	512

int
prekey_id_valid(const char *s, size_t len)
{
	size_t i;

	if (len != PREKEY_ID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

void
prekey_id_new(char id[PREKEY_ID_LEN + 1])
{
	unsigned char rnd[PREKEY_ID_LEN / 2];

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, PREKEY_ID_LEN + 1, rnd, sizeof(rnd));
}

/*
 * What a prekey's signature covers, after the context: its owner, its
 * batch's date, its id and key, one line each (the device line only for
 * a device's prekey).
 */
static int
signed_text(const struct prekey *p, struct sbuf *sb)
{
	char when[TIME_STRLEN];

	time_format(p->date, when);
	sbuf_init(sb, PREKEY_TEXT_MAX);
	if (sbuf_addf(sb, "address: %s\n", p->address) != 0 ||
	    (p->device[0] != '\0' &&
	    sbuf_addf(sb, "device: %s\n", p->device) != 0) ||
	    sbuf_addf(sb, "date: %s\nid: %s\nkey: ", when, p->id) != 0 ||
	    sbuf_add_b64(sb, p->key, 32) != 0 || sbuf_add(sb, "\n", 1) != 0) {
		sbuf_release(sb);
		return -1;
	}
	return 0;
}

int
prekey_sign(struct prekey *p, const struct signer *signer,
    struct smimp_err *err)
{
	struct sbuf sb;
	int r;

	if (signed_text(p, &sb) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "prekey too large");
	r = signer_sign_in_context(signer, PREKEY_CONTEXT, sb.buf, sb.len,
	    p->sig);
	sbuf_release(&sb);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot sign a "
		    "prekey");
	return 0;
}

int
prekey_verify(const struct prekey *p, const unsigned char pub[32],
    struct smimp_err *err)
{
	struct sbuf sb;
	int r;

	if (signed_text(p, &sb) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "prekey too "
		    "large");
	r = signature_verify_in_context(PREKEY_CONTEXT, sb.buf, sb.len,
	    p->sig, pub);
	sbuf_release(&sb);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the prekey %s of "
		    "%s%s%s does not verify", p->id, p->address,
		    p->device[0] != '\0' ? ", device " : "", p->device);
	return 0;
}

const unsigned char *
prekey_signing_key(const struct prekey *p, const struct idlog *log)
{
	const struct iddevice *d;

	if (strcmp(p->address, log->address) != 0 || log->revoked)
		return NULL;
	if (p->device[0] == '\0')
		return log->identity_key;
	d = idlog_device(log, p->device);
	return d != NULL && iddev_scope_receives(d->scope) ? d->signing_key :
	    NULL;
}

int
prekey_batch_build(const struct prekey_batch *b, struct sbuf *sb,
    struct smimp_err *err)
{
	char when[TIME_STRLEN];
	size_t i;

	if (b->n == 0 || b->n > PREKEY_BATCH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a batch holds 1 "
		    "to %d prekeys", PREKEY_BATCH_MAX);
	time_format(b->date, when);
	sbuf_init(sb, PREKEY_BATCH_BYTES);
	if (sbuf_addf(sb, PREKEY_BATCH_MAGIC "address: %s\n", b->address) != 0
	    || (b->device[0] != '\0' &&
	    sbuf_addf(sb, "device: %s\n", b->device) != 0) ||
	    sbuf_addf(sb, "date: %s\n", when) != 0)
		goto fail;
	for (i = 0; i < b->n; i++)
		if (sbuf_addf(sb, "prekey: %s ", b->keys[i].id) != 0 ||
		    sbuf_add_b64(sb, b->keys[i].key, 32) != 0 ||
		    sbuf_add(sb, " ", 1) != 0 ||
		    sbuf_add_b64(sb, b->keys[i].sig, 64) != 0 ||
		    sbuf_add(sb, "\n", 1) != 0)
			goto fail;
	return 0;
fail:
	sbuf_release(sb);
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "prekey batch too large");
}

static int
malformed(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed prekey "
	    "batch: %s", what);
}

/* "ID KEY SIG" of a prekey line, into p. */
static int
parse_prekey(const struct kv_line *kv, struct prekey *p)
{
	const char *v = kv->value, *sp1, *sp2, *end = kv->value +
	    kv->value_len;

	sp1 = memchr(v, ' ', kv->value_len);
	if (sp1 == NULL)
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (sp2 == NULL || !prekey_id_valid(v, (size_t)(sp1 - v)) ||
	    b64_decode_exact(sp1 + 1, (size_t)(sp2 - sp1 - 1), p->key,
	    32) != 0 || b64_decode_exact(sp2 + 1, (size_t)(end - sp2 - 1),
	    p->sig, 64) != 0)
		return -1;
	memcpy(p->id, v, PREKEY_ID_LEN);
	p->id[PREKEY_ID_LEN] = '\0';
	return age_x25519_public_usable(p->key) ? 0 : -2;
}

/* The address, device and date lines. */
static int
parse_head(struct prekey_batch *b, const char *t, size_t len, size_t *pos,
    struct kv_line *kv, struct smimp_err *err)
{
	struct smimp_err ignore;
	char norm[ADDRESS_MAX + 1];
	int r;

	if (kv_next(t, len, pos, PREKEY_TEXT_MAX, kv) != 1 ||
	    !kv_is(kv, "address") ||
	    kv_value_copy(kv, b->address, sizeof(b->address)) != 0 ||
	    address_normalize(b->address, norm, &ignore) != 0 ||
	    strcmp(norm, b->address) != 0)
		return malformed(err, "bad address");
	r = kv_next(t, len, pos, PREKEY_TEXT_MAX, kv);
	if (r == 1 && kv_is(kv, "device")) {
		if (kv_value_copy(kv, b->device, sizeof(b->device)) != 0 ||
		    !iddev_name_valid(b->device))
			return malformed(err, "bad device");
		r = kv_next(t, len, pos, PREKEY_TEXT_MAX, kv);
	}
	if (r != 1 || !kv_is(kv, "date") ||
	    time_parse(kv->value, kv->value_len, &b->date) != 0)
		return malformed(err, "bad date");
	return 0;
}

/* Prekey line number n (from 0) into b->keys[n], its id new to b. */
static int
add_line(struct prekey_batch *b, const struct kv_line *kv,
    struct smimp_err *err)
{
	struct prekey *p;
	size_t i;
	int r;

	if (!kv_is(kv, "prekey"))
		return malformed(err, "a line that is no prekey");
	if (b->n == PREKEY_BATCH_MAX)
		return malformed(err, "more than 200 prekeys");
	p = &b->keys[b->n];
	memset(p, 0, sizeof(*p));
	r = parse_prekey(kv, p);
	if (r == -2)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed prekey "
		    "batch: prekey %s is of low order", p->id);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed prekey "
		    "batch: prekey %zu is not \"ID KEY SIGNATURE\"", b->n + 1);
	for (i = 0; i < b->n; i++)
		if (strcmp(b->keys[i].id, p->id) == 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
			    "prekey batch: the id %s twice", p->id);
	memcpy(p->address, b->address, sizeof(p->address));
	memcpy(p->device, b->device, sizeof(p->device));
	p->date = b->date;
	b->n++;
	return 0;
}

int
prekey_batch_parse(struct prekey_batch *b, const unsigned char *buf,
    size_t len, struct smimp_err *err)
{
	const char *t = (const char *)buf;
	size_t pos = strlen(PREKEY_BATCH_MAGIC);
	struct kv_line kv;
	int r;

	memset(b, 0, sizeof(*b));
	if (len > PREKEY_BATCH_BYTES)
		return malformed(err, "over 64 KiB");
	if (len < pos || memcmp(t, PREKEY_BATCH_MAGIC, pos) != 0)
		return malformed(err, "not a smimp-prekeys/1 batch");
	if (parse_head(b, t, len, &pos, &kv, err) != 0)
		return -1;
	b->keys = calloc(PREKEY_BATCH_MAX, sizeof(*b->keys));
	if (b->keys == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	while ((r = kv_next(t, len, &pos, PREKEY_TEXT_MAX, &kv)) == 1)
		if (add_line(b, &kv, err) != 0)
			return -1;
	if (r != 0)
		return malformed(err, "a line that is not \"name: value\"");
	if (b->n == 0)
		return malformed(err, "no prekey");
	return 0;
}

void
prekey_batch_release(struct prekey_batch *b)
{
	free(b->keys);
	memset(b, 0, sizeof(*b));
}
