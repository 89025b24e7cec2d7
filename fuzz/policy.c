/*
 * Fuzz the consent policy parser (POST {base}/v1/users/ADDRESS/policy
 * bodies): whatever parses must be written back, with another
 * signature, to a statement that parses to the same fields and entries,
 * and classify without reading past its lists.
 */
#include <string.h>

#include "fuzz.h"
#include "policy.h"

static int
zero_sign(void *key, const unsigned char *msg, size_t len,
    unsigned char sig[64])
{
	(void)key;
	(void)msg;
	(void)len;
	memset(sig, 0, 64);
	return 0;
}

static int
same(const struct policy *a, const struct policy *b)
{
	return strcmp(a->address, b->address) == 0 && a->date == b->date &&
	    a->unknown == b->unknown && a->bits == b->bits &&
	    a->allowance == b->allowance &&
	    memcmp(a->salt, b->salt, POLICY_SALT_SIZE) == 0 &&
	    a->nblock == b->nblock && a->nallow == b->nallow &&
	    (a->nblock == 0 || memcmp(a->block, b->block,
	    a->nblock * POLICY_ENTRY_SIZE) == 0) &&
	    (a->nallow == 0 || memcmp(a->allow, b->allow,
	    a->nallow * POLICY_ENTRY_SIZE) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct signer s = { "fuzz@example.org", zero_sign, NULL };
	struct policy p, q;
	struct smimp_err err;
	struct sbuf sb;

	fuzz_init();
	if (policy_parse(&p, data, size, &err) != 0) {
		policy_release(&p);
		return 0;
	}
	if (p.signed_len >= size)
		abort();
	(void)policy_classify(&p, "someone@example.org");
	sbuf_init(&sb, POLICY_MAX_BYTES);
	if (policy_write(&p, &s, &sb, &err) != 0 ||
	    policy_parse(&q, (const unsigned char *)sb.buf, sb.len,
	    &err) != 0 || !same(&p, &q))
		abort();
	policy_release(&q);
	policy_release(&p);
	sbuf_release(&sb);
	return 0;
}
