/* Fuzz the identity record and log parser. */
#include "idlog.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smimp_err err;
	struct idlog log;

	fuzz_init();
	if (idlog_parse(&log, data, size, &err) == 0)
		idlog_release(&log);
	return 0;
}
