/* Fuzz the envelope header parser. */
#include "envelope.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_meta meta;
	struct smimp_err err;
	size_t hlen;

	fuzz_init();
	if (env_header_parse(data, size, &hlen, &meta, NULL, &err) == 0)
		msg_meta_release(&meta);
	return 0;
}
