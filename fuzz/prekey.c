/*
 * Fuzz the prekey batch reader (a device's upload, as smimpd takes it,
 * and the prekeys a directory hands out): a batch that parses must be
 * written back to the very same bytes (one spelling of each line), and
 * each of its prekeys checks against a key without reading past it.
 */
#include <string.h>

#include "fuzz.h"
#include "prekey.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char pub[32] = { 1 };
	struct prekey_batch b;
	struct smimp_err err;
	struct sbuf sb;
	size_t i;

	fuzz_init();
	if (prekey_batch_parse(&b, data, size, &err) != 0) {
		prekey_batch_release(&b);
		return 0;
	}
	if (b.n == 0 || b.n > PREKEY_BATCH_MAX)
		abort();
	for (i = 0; i < b.n; i++)
		if (!prekey_id_valid(b.keys[i].id, strlen(b.keys[i].id)) ||
		    strcmp(b.keys[i].address, b.address) != 0 ||
		    strcmp(b.keys[i].device, b.device) != 0 ||
		    b.keys[i].date != b.date ||
		    prekey_verify(&b.keys[i], pub, &err) == 0)
			abort();
	if (prekey_batch_build(&b, &sb, &err) != 0 || sb.len != size ||
	    memcmp(sb.buf, data, size) != 0)
		abort();
	sbuf_release(&sb);
	prekey_batch_release(&b);
	return 0;
}
