/*
 * policy.c - build, write, parse and verify consent policies, and
 * classify a sender by one (see policy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "policy.h"
#include "util.h"
#include "banned.h"

#define POLICY_CONTEXT	"smimp/1 policy"
#define ENTRY_CONTEXT	"smimp/1 policy-entry"
#define SALT_STRLEN	22	/* unpadded base64url of 16 bytes */
#define SIG_STRLEN	88	/* padded base64 of 64 bytes */
#define LINE_MAX_LEN	400	/* the longest field: an address */

void
policy_entry(const unsigned char salt[POLICY_SALT_SIZE], const char *name,
    unsigned char out[POLICY_ENTRY_SIZE])
{
	crypto_generichash_state h;
	unsigned char full[32];

	(void)crypto_generichash_init(&h, salt, POLICY_SALT_SIZE, 32);
	(void)crypto_generichash_update(&h, (const unsigned char *)
	    ENTRY_CONTEXT, sizeof(ENTRY_CONTEXT));
	(void)crypto_generichash_update(&h, (const unsigned char *)name,
	    strlen(name));
	(void)crypto_generichash_final(&h, full, 32);
	memcpy(out, full, POLICY_ENTRY_SIZE);
}

int
policy_unknown_parse(const char *s, enum policy_unknown *u,
    unsigned int *bits)
{
	uint64_t n;

	*bits = 0;
	if (strcmp(s, "open") == 0)
		*u = POLICY_OPEN;
	else if (strcmp(s, "introduction") == 0)
		*u = POLICY_INTRODUCTION;
	else if (strcmp(s, "closed") == 0)
		*u = POLICY_CLOSED;
	else if (strcmp(s, "pow") == 0) {
		*u = POLICY_POW;
		*bits = WORK_DEFAULT_BITS;
	} else if (strncmp(s, "pow:", 4) == 0 &&
	    parse_u64(s + 4, strlen(s + 4), &n) == 0 && n >= 1 &&
	    n <= WORK_MAX_BITS) {
		*u = POLICY_POW;
		*bits = (unsigned int)n;
	} else
		return -1;
	return 0;
}

void
policy_unknown_format(enum policy_unknown u, unsigned int bits,
    char out[16])
{
	switch (u) {
	case POLICY_OPEN:
		(void)snprintf(out, 16, "open");
		break;
	case POLICY_POW:
		(void)snprintf(out, 16, "pow:%u", bits);
		break;
	case POLICY_INTRODUCTION:
		(void)snprintf(out, 16, "introduction");
		break;
	default:
		(void)snprintf(out, 16, "closed");
		break;
	}
}

void
policy_release(struct policy *p)
{
	free(p->block);
	free(p->allow);
	p->block = p->allow = NULL;
	p->nblock = p->nallow = 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, POLICY_ENTRY_SIZE);
}

int
policy_listed(const unsigned char (*list)[POLICY_ENTRY_SIZE], size_t n,
    const unsigned char entry[POLICY_ENTRY_SIZE])
{
	return n > 0 && bsearch(entry, list, n, POLICY_ENTRY_SIZE,
	    entry_cmp) != NULL;
}

/* Is any entry in both sorted lists? */
static int
lists_meet(const struct policy *p)
{
	size_t i = 0, j = 0;
	int c;

	while (i < p->nblock && j < p->nallow) {
		c = memcmp(p->block[i], p->allow[j], POLICY_ENTRY_SIZE);
		if (c == 0)
			return 1;
		if (c < 0)
			i++;
		else
			j++;
	}
	return 0;
}

/* The entries of n names, sorted, each once, into *list. */
static int
hash_names(const unsigned char salt[POLICY_SALT_SIZE],
    const char *const *names, size_t n,
    unsigned char (**list)[POLICY_ENTRY_SIZE], size_t *out,
    struct smimp_err *err)
{
	size_t i, k = 0;

	*list = calloc(n + 1, POLICY_ENTRY_SIZE);
	if (*list == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < n; i++)
		policy_entry(salt, names[i], (*list)[i]);
	qsort(*list, n, POLICY_ENTRY_SIZE, entry_cmp);
	for (i = 0; i < n; i++)
		if (k == 0 || memcmp((*list)[k - 1], (*list)[i],
		    POLICY_ENTRY_SIZE) != 0)
			memmove((*list)[k++], (*list)[i], POLICY_ENTRY_SIZE);
	*out = k;
	return 0;
}

int
policy_build(struct policy *p, const char *address, int64_t date,
    enum policy_unknown unknown, unsigned int bits, uint32_t allowance,
    const struct policy_names *names,
    const unsigned char salt[POLICY_SALT_SIZE], struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 1];

	memset(p, 0, sizeof(*p));
	if (address_normalize(address, norm, err) != 0)
		return -1;
	if (names->nblock > POLICY_MAX_ENTRIES ||
	    names->nallow > POLICY_MAX_ENTRIES - names->nblock)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a policy lists "
		    "at most %d names, not %zu", POLICY_MAX_ENTRIES,
		    names->nblock + names->nallow);
	if (allowance > POLICY_ALLOWANCE_MAX || (unknown == POLICY_POW &&
	    (bits < 1 || bits > WORK_MAX_BITS)))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "invalid policy "
		    "setting");
	memcpy(p->address, norm, sizeof(norm));
	p->date = date;
	p->unknown = unknown;
	p->bits = unknown == POLICY_POW ? bits : 0;
	p->allowance = allowance;
	if (salt != NULL)
		memcpy(p->salt, salt, POLICY_SALT_SIZE);
	else
		randombytes_buf(p->salt, POLICY_SALT_SIZE);
	if (hash_names(p->salt, names->block, names->nblock, &p->block,
	    &p->nblock, err) != 0 || hash_names(p->salt, names->allow,
	    names->nallow, &p->allow, &p->nallow, err) != 0)
		return -1;
	if (lists_meet(p))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a name is both "
		    "blocked and allowed");
	return 0;
}

static int
add_entries(struct sbuf *sb, const char *kind,
    const unsigned char (*list)[POLICY_ENTRY_SIZE], size_t n)
{
	char hex[POLICY_ENTRY_SIZE * 2 + 1];
	size_t i;

	for (i = 0; i < n; i++) {
		sodium_bin2hex(hex, sizeof(hex), list[i], POLICY_ENTRY_SIZE);
		if (sbuf_addf(sb, "%s: %s\n", kind, hex) != 0)
			return -1;
	}
	return 0;
}

int
policy_write(const struct policy *p, const struct signer *signer,
    struct sbuf *out, struct smimp_err *err)
{
	char date[TIME_STRLEN], unknown[16], salt[SALT_STRLEN + 1];
	unsigned char sig[64];

	time_format(p->date, date);
	policy_unknown_format(p->unknown, p->bits, unknown);
	sodium_bin2base64(salt, sizeof(salt), p->salt, POLICY_SALT_SIZE,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (sbuf_addf(out, POLICY_MAGIC "address: %s\ndate: %s\nunknown: %s\n"
	    "allowance: %u\nsalt: %s\n", p->address, date, unknown,
	    (unsigned int)p->allowance, salt) != 0 ||
	    add_entries(out, "block", p->block, p->nblock) != 0 ||
	    add_entries(out, "allow", p->allow, p->nallow) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the policy is too "
		    "large");
	if (signer_sign_in_context(signer, POLICY_CONTEXT, out->buf,
	    out->len, sig) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot sign the "
		    "policy");
	if (sbuf_add(out, "signature: ", 11) != 0 ||
	    sbuf_add_b64(out, sig, 64) != 0 || sbuf_add(out, "\n", 1) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the policy is too "
		    "large");
	return 0;
}

/* ---- parsing ---- */

struct reader {
	const char *buf;
	size_t len, pos;
	struct kv_line kv;
	int have;		/* kv holds the next line, not yet taken */
};

/* The next line, if it is called name: 1, else 0 (it stays), -1. */
static int
next_is(struct reader *r, const char *name)
{
	if (!r->have) {
		int n = kv_next(r->buf, r->len, &r->pos, LINE_MAX_LEN, &r->kv);

		if (n <= 0)
			return n;
		r->have = 1;
	}
	if (!kv_is(&r->kv, name))
		return 0;
	r->have = 0;
	return 1;
}

static int
bad(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed policy: %s",
	    what);
}

/* The value of the next line, which must be called name, into out. */
static int
field(struct reader *r, const char *name, char *out, size_t cap,
    struct smimp_err *err)
{
	char what[64];

	(void)snprintf(what, sizeof(what), "expected the %s line", name);
	if (next_is(r, name) != 1 || kv_value_copy(&r->kv, out, cap) != 0 ||
	    strlen(out) != r->kv.value_len)
		return bad(err, what);
	return 0;
}

static int
parse_fields(struct reader *r, struct policy *p, struct smimp_err *err)
{
	char v[LINE_MAX_LEN + 1], norm[ADDRESS_MAX + 1], back[SALT_STRLEN + 1];
	struct smimp_err ignore;
	size_t got;
	uint64_t n;

	if (field(r, "address", v, sizeof(v), err) != 0)
		return -1;
	if (address_normalize(v, norm, &ignore) != 0 || strcmp(v, norm) != 0)
		return bad(err, "the address is not normalized");
	memcpy(p->address, norm, sizeof(norm));
	if (field(r, "date", v, sizeof(v), err) != 0)
		return -1;
	if (time_parse(v, strlen(v), &p->date) != 0)
		return bad(err, "invalid date");
	if (field(r, "unknown", v, sizeof(v), err) != 0)
		return -1;
	/* "pow" alone is a command's shorthand, never written. */
	if (strcmp(v, "pow") == 0 || policy_unknown_parse(v, &p->unknown,
	    &p->bits) != 0)
		return bad(err, "invalid unknown");
	if (field(r, "allowance", v, sizeof(v), err) != 0)
		return -1;
	if (parse_u64(v, strlen(v), &n) != 0 || n > POLICY_ALLOWANCE_MAX)
		return bad(err, "invalid allowance");
	p->allowance = (uint32_t)n;
	if (field(r, "salt", v, sizeof(v), err) != 0)
		return -1;
	if (strlen(v) != SALT_STRLEN || b64_has_high_byte(v, SALT_STRLEN) ||
	    sodium_base642bin(p->salt,
	    POLICY_SALT_SIZE, v, SALT_STRLEN, NULL, &got, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    got != POLICY_SALT_SIZE)
		return bad(err, "invalid salt");
	/* Only one spelling: the unused bits of the last character are 0. */
	sodium_bin2base64(back, sizeof(back), p->salt, POLICY_SALT_SIZE,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (strcmp(back, v) != 0)
		return bad(err, "invalid salt");
	return 0;
}

/* 32 lowercase hex digits into out. */
static int
entry_parse(const struct kv_line *kv, unsigned char out[POLICY_ENTRY_SIZE])
{
	size_t i, got;

	if (kv->value_len != POLICY_ENTRY_SIZE * 2)
		return -1;
	for (i = 0; i < kv->value_len; i++)
		if (!((kv->value[i] >= '0' && kv->value[i] <= '9') ||
		    (kv->value[i] >= 'a' && kv->value[i] <= 'f')))
			return -1;
	return sodium_hex2bin(out, POLICY_ENTRY_SIZE, kv->value,
	    kv->value_len, NULL, &got, NULL) == 0 &&
	    got == POLICY_ENTRY_SIZE ? 0 : -1;
}

/*
 * The lines called kind, into a list that grows as they come (never
 * past what is left of POLICY_MAX_ENTRIES), each above the one before.
 */
static int
parse_list(struct reader *r, const char *kind,
    unsigned char (**list)[POLICY_ENTRY_SIZE], size_t *n, size_t *total,
    struct smimp_err *err)
{
	unsigned char (*grown)[POLICY_ENTRY_SIZE];
	size_t cap = 0;
	int got;

	while ((got = next_is(r, kind)) == 1) {
		if (*total == POLICY_MAX_ENTRIES)
			return bad(err, "too many entries");
		if (*n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			grown = realloc(*list, cap * POLICY_ENTRY_SIZE);
			if (grown == NULL)
				return smimp_err_sys(err, SMIMP_EXIT_FAIL,
				    "out of memory");
			*list = grown;
		}
		if (entry_parse(&r->kv, (*list)[*n]) != 0)
			return bad(err, "invalid entry");
		if (*n > 0 && memcmp((*list)[*n - 1], (*list)[*n],
		    POLICY_ENTRY_SIZE) >= 0)
			return bad(err, "entries not sorted or repeated");
		(*n)++;
		(*total)++;
	}
	return got < 0 ? bad(err, "a line is malformed") : 0;
}

int
policy_parse(struct policy *p, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	struct reader r;
	size_t total = 0;

	memset(p, 0, sizeof(*p));
	memset(&r, 0, sizeof(r));
	if (len > POLICY_MAX_BYTES)
		return bad(err, "too large");
	if (len < sizeof(POLICY_MAGIC) - 1 ||
	    memcmp(data, POLICY_MAGIC, sizeof(POLICY_MAGIC) - 1) != 0)
		return bad(err, "not a smimp-policy/1 statement");
	r.buf = (const char *)data;
	r.len = len;
	r.pos = sizeof(POLICY_MAGIC) - 1;
	if (parse_fields(&r, p, err) != 0 ||
	    parse_list(&r, "block", &p->block, &p->nblock, &total, err) != 0 ||
	    parse_list(&r, "allow", &p->allow, &p->nallow, &total, err) != 0)
		return -1;
	if (lists_meet(p))
		return bad(err, "an entry is both blocked and allowed");
	if (next_is(&r, "signature") != 1)
		return bad(err, "expected the signature line");
	p->signed_len = r.kv.start;
	if (r.kv.value_len != SIG_STRLEN || b64_decode_exact(r.kv.value,
	    r.kv.value_len, p->sig, sizeof(p->sig)) != 0)
		return bad(err, "invalid signature");
	if (r.pos != len)
		return bad(err, "text after the signature");
	return 0;
}

int
policy_verify(const struct policy *p, const unsigned char *data,
    const unsigned char pub[32], struct smimp_err *err)
{
	if (signature_verify_in_context(POLICY_CONTEXT, data, p->signed_len,
	    p->sig, pub) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the policy's "
		    "signature does not verify under the identity key of %s",
		    p->address);
	return 0;
}

enum policy_class
policy_classify(const struct policy *p, const char *sender)
{
	char name[ADDRESS_DOMAIN_MAX + 2];
	unsigned char e[POLICY_ENTRY_SIZE];

	policy_entry(p->salt, sender, e);
	if (policy_listed(p->block, p->nblock, e))
		return POLICY_BLOCKED;
	if (policy_listed(p->allow, p->nallow, e))
		return POLICY_ALLOWED;
	(void)snprintf(name, sizeof(name), "@%s", address_domain(sender));
	policy_entry(p->salt, name, e);
	if (policy_listed(p->block, p->nblock, e))
		return POLICY_BLOCKED;
	if (policy_listed(p->allow, p->nallow, e))
		return POLICY_ALLOWED;
	return POLICY_UNKNOWN;
}
