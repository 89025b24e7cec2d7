/*
 * Fuzz introduction statements and the lists that carry them (the
 * envelope's introduction lines, the Smimp-Introduction header):
 * whatever parses must encode and decode back to the same statement,
 * and every entry a list yields must be one that parses on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "introduction.h"
#include "fuzz.h"

/* in, encoded and decoded again, is in. */
static void
round_trip(const struct introduction *in)
{
	struct introduction back;
	struct smimp_err err;
	struct sbuf sb;

	sbuf_init(&sb, INTRO_LIST_MAX);
	if (introduction_encode(in, &sb) != 0 ||
	    sb.len != introduction_encoded_len(in) ||
	    introduction_decode(&back, sb.buf, sb.len, &err) != 0 ||
	    back.len != in->len || memcmp(back.text, in->text, in->len) != 0 ||
	    back.signed_len != in->signed_len || back.expires != in->expires)
		abort();
	sbuf_release(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct introduction in;
	struct smimp_err err;
	size_t pos = 0, last;
	int r;

	fuzz_init();
	if (introduction_parse(&in, data, size, &err) == 0) {
		if (in.signed_len >= in.len || in.len != size)
			abort();
		round_trip(&in);
	}
	/* The same bytes as a list of encoded statements. */
	do {
		last = pos;
		r = introduction_next((const char *)data, size, &pos, &in,
		    &err);
		if (r == 1) {
			if (pos <= last || pos > size)
				abort();
			round_trip(&in);
		}
	} while (r == 1);
	return 0;
}
