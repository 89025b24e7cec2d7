/* Fuzz the trust store parser: the input is $SMIMP_HOME/trust. */
#include <limits.h>
#include <stdlib.h>

#include "fileio.h"
#include "trust.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char home[] = "/tmp/smimp-fuzz-trust.XXXXXX";
	static int made;
	struct trust_store ts;
	struct smimp_err err;
	char path[PATH_MAX];

	fuzz_init();
	if (!made && mkdtemp(home) == NULL)
		abort();
	made = 1;
	snprintf(path, sizeof(path), "%s/trust", home);
	if (file_write_atomic(path, data, size, 0600, 1, &err) != 0)
		abort();
	if (trust_load(&ts, home, &err) == 0)
		trust_release(&ts);
	return 0;
}
