/*
 * Fuzz the delivery receipt reader (a peer's receipt, as a home server
 * hands it on): whatever parses must be written back, with its own
 * signature, to the very same bytes (one spelling of each), must check
 * as a receipt for what it names, and must verify or not without
 * reading past what its signature covers.
 */
#include <string.h>

#include "fuzz.h"
#include "receipt.h"

/* "Signs" with the signature the receipt came with. */
static int
copy_sign(void *key, const unsigned char *msg, size_t len,
    unsigned char sig[64])
{
	(void)msg;
	(void)len;
	memcpy(sig, key, 64);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char pub[32];
	struct receipt r;
	struct smimp_err err;
	struct signer s = { "server:fuzz", copy_sign, NULL };
	struct sbuf sb;

	fuzz_init();
	if (receipt_parse(&r, (const char *)data, size, &err) != 0)
		return 0;
	if (r.signed_len >= size)
		abort();
	s.key = r.sig;
	sbuf_init(&sb, RECEIPT_MAX + 1);
	if (receipt_build(&sb, r.domain, r.from, r.message_id, r.hash,
	    r.recipients, r.date, &s, &err) != 0 || sb.len != size ||
	    memcmp(sb.buf, data, size) != 0 ||
	    receipt_check(&r, r.domain, r.from, r.message_id, r.hash,
	    r.recipients, &err) != 0 ||
	    receipt_is_unsigned(sb.buf))
		abort();
	(void)receipt_verify(&r, sb.buf, pub, &err);
	sbuf_release(&sb);
	return 0;
}
