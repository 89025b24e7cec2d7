/*
 * work.c - proof of work (see work.h): the challenge, its value, the
 * search, and the Smimp-Work and Smimp-Requires header values.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "work.h"
#include "banned.h"

#define WORK_CONTEXT	"smimp/1 work"

void
work_prefix_init(struct work_prefix *p, const unsigned char sh[32],
    const char *recipient)
{
	/* The context with its NUL: no other hash starts this way. */
	(void)crypto_generichash_init(&p->st, NULL, 0, 32);
	(void)crypto_generichash_update(&p->st,
	    (const unsigned char *)WORK_CONTEXT, sizeof(WORK_CONTEXT));
	(void)crypto_generichash_update(&p->st, sh, 32);
	(void)crypto_generichash_update(&p->st,
	    (const unsigned char *)recipient, strlen(recipient));
	(void)crypto_generichash_update(&p->st, (const unsigned char *)"\n",
	    1);
}

static unsigned int
leading_zero_bits(const unsigned char h[32])
{
	unsigned int n = 0;
	unsigned char b;
	size_t i;

	for (i = 0; i < 32 && h[i] == 0; i++)
		n += 8;
	if (i == 32)
		return n;
	for (b = h[i]; (b & 0x80) == 0; b = (unsigned char)(b << 1))
		n++;
	return n;
}

unsigned int
work_value(const struct work_prefix *p, const unsigned char nonce[8])
{
	/* The prefix's state is copied, not hashed again: one block a try. */
	crypto_generichash_state st = p->st;
	unsigned char h[32];

	(void)crypto_generichash_update(&st, nonce, WORK_NONCE_LEN);
	(void)crypto_generichash_final(&st, h, sizeof(h));
	return leading_zero_bits(h);
}

static void
nonce_set(unsigned char nonce[8], uint64_t n)
{
	int i;

	for (i = 7; i >= 0; i--) {
		nonce[i] = (unsigned char)(n & 0xff);
		n >>= 8;
	}
}

int
work_solve(const struct work_prefix *p, unsigned int bits,
    int (*progress)(uint64_t tries, void *arg), void *arg,
    unsigned char nonce[8])
{
	uint64_t n;

	for (n = 0;; n++) {
		nonce_set(nonce, n);
		if (work_value(p, nonce) >= bits)
			return 0;
		if ((n + 1) % WORK_STEP == 0 && progress != NULL &&
		    progress(n + 1, arg) != 0)
			return 1;
	}
}

/* ---- the Smimp-Work value ---- */

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;	/* upper case too: one spelling only */
}

/* 16 lowercase hex digits at s into nonce; -1 if not exactly that. */
static int
nonce_parse(const char *s, unsigned char nonce[8])
{
	int i, hi, lo;

	for (i = 0; i < WORK_NONCE_LEN; i++) {
		hi = hex_digit(s[2 * i]);
		lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
		if (lo < 0)
			return -1;
		nonce[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
work_header_next(const char **pos, char address[ADDRESS_MAX + 1],
    unsigned char nonce[8])
{
	char raw[ADDRESS_MAX + 1];
	const char *s = *pos, *eq;
	struct smimp_err err;
	size_t n;

	if (*s == '\0')
		return 0;
	eq = strchr(s, '=');
	if (eq == NULL || eq == s || (size_t)(eq - s) > ADDRESS_MAX)
		return -1;
	n = (size_t)(eq - s);
	memcpy(raw, s, n);
	raw[n] = '\0';
	/* Written normalized, so that one address has one spelling. */
	if (address_normalize(raw, address, &err) != 0 ||
	    strcmp(raw, address) != 0 || nonce_parse(eq + 1, nonce) != 0)
		return -1;
	s = eq + 1 + WORK_PROOF_LEN;
	if (*s == ',' && s[1] != '\0')
		s++;
	else if (*s != '\0')
		return -1;
	*pos = s;
	return 1;
}

int
work_header_check(const char *value,
    int (*known)(const char *address, void *arg), void *arg)
{
	char addr[ADDRESS_MAX + 1];
	unsigned char nonce[8];
	const char *pos = value, *start[WORK_MAX_PROOFS];
	size_t len[WORK_MAX_PROOFS], n = 0, i;
	int r;

	if (strlen(value) > WORK_HEADER_MAX)
		return -1;
	for (;;) {
		const char *here = pos;

		r = work_header_next(&pos, addr, nonce);
		if (r <= 0)
			break;
		if (n == WORK_MAX_PROOFS ||
		    (known != NULL && known(addr, arg) == 0))
			return -1;
		start[n] = here;
		len[n] = strlen(addr);
		/* At most one proof per recipient. */
		for (i = 0; i < n; i++)
			if (len[i] == len[n] &&
			    memcmp(start[i], start[n], len[n]) == 0)
				return -1;
		n++;
	}
	return r < 0 || n == 0 ? -1 : 0;
}

int
work_header_find(const char *value, const char *address,
    unsigned char nonce[8])
{
	size_t n = strlen(address);
	const char *p;

	/* Checked already: compared as bytes, nothing normalized again. */
	for (p = value; p != NULL && *p != '\0'; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, address, n) == 0 && p[n] == '=')
			return nonce_parse(p + n + 1, nonce) == 0;
	}
	return 0;
}

int
work_header_add(struct sbuf *sb, const char *address,
    const unsigned char nonce[8])
{
	char hex[WORK_PROOF_LEN + 1];

	sodium_bin2hex(hex, sizeof(hex), nonce, WORK_NONCE_LEN);
	return sbuf_addf(sb, "%s%s=%s", sb->len > 0 ? "," : "", address,
	    hex);
}

/* ---- Smimp-Requires ---- */

int
work_requires_parse(const char *s, struct work_requirement *req)
{
	uint64_t bits;

	memset(req, 0, sizeof(*req));
	if (strcmp(s, "none") == 0)
		req->need = WORK_NEED_NONE;
	else if (strcmp(s, "introduction") == 0)
		req->need = WORK_NEED_INTRODUCTION;
	else if (strcmp(s, "closed") == 0)
		req->need = WORK_NEED_CLOSED;
	else if (strncmp(s, "pow:", 4) == 0 &&
	    parse_u64(s + 4, strlen(s + 4), &bits) == 0 && bits >= 1 &&
	    bits <= WORK_MAX_BITS) {
		req->need = WORK_NEED_POW;
		req->bits = (unsigned int)bits;
	} else
		return -1;
	return 0;
}

void
work_requires_format(const struct work_requirement *req, char out[16])
{
	static const char *const names[] = { "none", "pow", "introduction",
	    "closed" };

	if (req->need == WORK_NEED_POW)
		(void)snprintf(out, 16, "pow:%u", req->bits);
	else
		(void)snprintf(out, 16, "%s", names[req->need]);
}
