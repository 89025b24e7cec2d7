/*
 * Fuzz the Smimp-Work and Smimp-Requires values: whatever a check takes
 * must write back, proof by proof, to the very same bytes, and each of
 * its proofs must be found again under its address; a requirement that
 * parses must be written back as it came.
 */
#include <stdlib.h>
#include <string.h>

#include "work.h"
#include "fuzz.h"

static void
work_value_roundtrip(const char *v)
{
	char addr[ADDRESS_MAX + 1];
	unsigned char nonce[WORK_NONCE_LEN], again[WORK_NONCE_LEN];
	const char *pos = v;
	struct sbuf sb;

	if (work_header_check(v, NULL, NULL) != 0)
		return;
	sbuf_init(&sb, WORK_HEADER_MAX + 1);
	while (work_header_next(&pos, addr, nonce) == 1) {
		if (work_header_add(&sb, addr, nonce) != 0 ||
		    work_header_find(v, addr, again) != 1 ||
		    memcmp(nonce, again, sizeof(nonce)) != 0)
			abort();
	}
	if (sb.len != strlen(v) || memcmp(sb.buf, v, sb.len) != 0)
		abort();
	sbuf_release(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct work_requirement req;
	char *v, back[16];

	fuzz_init();
	v = fuzz_str(data, size);
	work_value_roundtrip(v);
	if (work_requires_parse(v, &req) == 0) {
		work_requires_format(&req, back);
		if (strcmp(back, v) != 0)
			abort();
	}
	free(v);
	return 0;
}
