/*
 * Fuzz the enrollment request parser: whatever parses is the input,
 * whole, and its own code is the one it matches.
 */
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct enroll_request req;
	struct smimp_err err;
	char code[ENROLL_CODE_STRLEN];

	fuzz_init();
	if (enroll_request_parse(&req, data, size, &err) != 0)
		return 0;
	if (req.raw_len != size || memcmp(req.raw, data, size) != 0 ||
	    !iddev_name_valid(req.device))
		abort();
	enroll_code(&req, code);
	if (enroll_code_check(&req, code, &err) != 0)
		abort();
	return 0;
}
