/*
 * receipt.c - build, read and check delivery receipts (see receipt.h).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "receipt.h"
#include "stamp.h"
#include "banned.h"

#define RECEIPT_CONTEXT	"smimp/1 receipt"
#define RECEIPT_RCPTS	256	/* as many as a message has */

static int
malformed(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed receipt: %s",
	    what);
}

int
receipt_build_unsigned(struct sbuf *sb, const char *domain, const char *from,
    const char *message_id, const unsigned char hash[32],
    const char *recipients, const char *date, struct smimp_err *err)
{
	char sorted[RECEIPT_LIST_MAX + 1], hex[65];

	if (stamp_recipients(recipients, sorted, sizeof(sorted)) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "receipt: too many "
		    "recipients");
	sodium_bin2hex(hex, sizeof(hex), hash, 32);
	if (sbuf_addf(sb, RECEIPT_MAGIC "domain: %s\nfrom: %s\nmessage-id: "
	    "%s\nhash: %s\nrecipients: %s\ndate: %s\n", domain, from,
	    message_id, hex, sorted, date) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot make the "
		    "receipt");
	return 0;
}

int
receipt_sign(struct sbuf *sb, size_t start, const struct signer *signer,
    struct smimp_err *err)
{
	unsigned char sig[64];

	if (signer_sign_in_context(signer, RECEIPT_CONTEXT, sb->buf + start,
	    sb->len - start, sig) != 0 ||
	    sbuf_add(sb, "signature: ", 11) != 0 ||
	    sbuf_add_b64(sb, sig, 64) != 0 || sbuf_add(sb, "\n", 1) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot make the "
		    "receipt");
	return 0;
}

int
receipt_build(struct sbuf *sb, const char *domain, const char *from,
    const char *message_id, const unsigned char hash[32],
    const char *recipients, const char *date, const struct signer *signer,
    struct smimp_err *err)
{
	size_t start = sb->len;

	if (receipt_build_unsigned(sb, domain, from, message_id, hash,
	    recipients, date, err) != 0)
		return -1;
	return receipt_sign(sb, start, signer, err);
}

int
receipt_is_unsigned(const char *text)
{
	return strncmp(text, RECEIPT_MAGIC, strlen(RECEIPT_MAGIC)) == 0 &&
	    strstr(text, "\nsignature: ") == NULL;
}

/* The value of kv, canonical as normalize makes it, into out. */
static int
value_normal(const struct kv_line *kv, char *out, size_t cap, int domain)
{
	char tmp[ADDRESS_MAX + 1], norm[ADDRESS_MAX + 1];
	struct smimp_err err;

	if (kv_value_copy(kv, tmp, sizeof(tmp)) != 0 || (domain ?
	    domain_normalize(tmp, norm, &err) : address_normalize(tmp, norm,
	    &err)) != 0 || strcmp(tmp, norm) != 0 || strlen(tmp) >= cap)
		return -1;
	memcpy(out, tmp, strlen(tmp) + 1);
	return 0;
}

/* 1 to 256 addresses of r->domain, normalized, sorted, none twice. */
static int
recipients_ok(const struct receipt *r)
{
	char one[ADDRESS_MAX + 1], prev[ADDRESS_MAX + 1] = "";
	char norm[ADDRESS_MAX + 1];
	const char *p = r->recipients, *end;
	struct smimp_err err;
	size_t n = 0, len;

	do {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len > ADDRESS_MAX || ++n > RECEIPT_RCPTS)
			return 0;
		memcpy(one, p, len);
		one[len] = '\0';
		if (address_normalize(one, norm, &err) != 0 ||
		    strcmp(one, norm) != 0 ||
		    strcmp(address_domain(one), r->domain) != 0 ||
		    (prev[0] != '\0' && strcmp(prev, one) >= 0))
			return 0;
		memcpy(prev, one, len + 1);
		p = end != NULL ? end + 1 : NULL;
	} while (p != NULL);
	return 1;
}

/* The value of field i of a receipt (kv) into r; 0 or -1. */
static int
field(struct receipt *r, int i, const struct kv_line *kv)
{
	char hex[65], back[TIME_STRLEN], b64[89];

	switch (i) {
	case 0:
		return value_normal(kv, r->domain, sizeof(r->domain), 1);
	case 1:
		return value_normal(kv, r->from, sizeof(r->from), 0);
	case 2:
		return kv_value_copy(kv, r->message_id,
		    sizeof(r->message_id)) != 0 ||
		    !message_id_valid(r->message_id) ? -1 : 0;
	case 3:
		/* 64 lowercase hex digits: the one spelling. */
		if (kv_value_copy(kv, hex, sizeof(hex)) != 0 ||
		    strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
			return -1;
		return sodium_hex2bin(r->hash, 32, hex, 64, NULL, NULL,
		    NULL) != 0 ? -1 : 0;
	case 4:
		return kv_value_copy(kv, r->recipients,
		    sizeof(r->recipients)) != 0 || !recipients_ok(r) ? -1 : 0;
	case 5:
		if (kv_value_copy(kv, r->date, sizeof(r->date)) != 0 ||
		    time_parse(r->date, strlen(r->date), &r->when) != 0)
			return -1;
		time_format(r->when, back);
		return strcmp(back, r->date) != 0 ? -1 : 0;
	default:
		r->signed_len = kv->start;
		return kv_value_copy(kv, b64, sizeof(b64)) != 0 ||
		    strlen(b64) != 88 ||
		    b64_decode_exact(b64, 88, r->sig, 64) != 0 ? -1 : 0;
	}
}

int
receipt_parse(struct receipt *r, const char *text, size_t len,
    struct smimp_err *err)
{
	static const char *const names[] = { "domain", "from", "message-id",
	    "hash", "recipients", "date", "signature" };
	size_t pos = strlen(RECEIPT_MAGIC), i;
	struct kv_line kv;

	memset(r, 0, sizeof(*r));
	if (len > RECEIPT_MAX)
		return malformed(err, "too large");
	if (len < pos || memcmp(text, RECEIPT_MAGIC, pos) != 0)
		return malformed(err, "not a receipt");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (kv_next(text, len, &pos, RECEIPT_LIST_MAX + 16, &kv) != 1 ||
		    !kv_is(&kv, names[i]))
			return malformed(err, "its lines are not those of a "
			    "receipt");
		if (field(r, (int)i, &kv) != 0)
			return malformed(err, names[i]);
	}
	if (pos != len)
		return malformed(err, "something after its signature");
	return 0;
}

int
receipt_verify(const struct receipt *r, const char *text,
    const unsigned char pub[32], struct smimp_err *err)
{
	if (signature_verify_in_context(RECEIPT_CONTEXT, text, r->signed_len,
	    r->sig, pub) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the receipt's "
		    "signature does not verify under the server key of %s",
		    r->domain);
	return 0;
}

int
receipt_check(const struct receipt *r, const char *domain,
    const char *from, const char *message_id, const unsigned char *hash,
    const char *asked, struct smimp_err *err)
{
	char one[ADDRESS_MAX + 1];
	const char *p, *end;
	size_t len;

	if (strcmp(r->domain, domain) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt of "
		    "%s, not %s", r->domain, domain);
	if (strcmp(r->from, from) != 0 ||
	    strcmp(r->message_id, message_id) != 0 ||
	    (hash != NULL && sodium_memcmp(r->hash, hash, 32) != 0))
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt for "
		    "another message");
	for (p = r->recipients; asked != NULL && p != NULL;
	    p = end != NULL ? end + 1 : NULL) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		memcpy(one, p, len);
		one[len] = '\0';
		if (!list_has(asked, one))
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt "
			    "naming %s, who was not asked for", one);
	}
	/* And every one asked for at its domain (a list as list_has
	   reads it): it names them all. */
	for (p = asked; p != NULL && *p != '\0'; p += len) {
		p += strspn(p, " ,");
		len = strcspn(p, " ,=");
		if (len == 0 || len > ADDRESS_MAX) {
			len += strcspn(p + len, ",");
			continue;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (strcmp(address_domain(one), r->domain) == 0 &&
		    !list_has(r->recipients, one))
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "a receipt "
			    "that leaves out %s", one);
		len += strcspn(p + len, ",");
	}
	return 0;
}
