/* Fuzz the ASCII armor decoder. */
#include <string.h>

#include "age.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smimp_err err;
	struct age_in *in;
	unsigned char buf[4096];
	size_t got;
	int fd;

	fuzz_init();
	fd = fuzz_fd(data, size);
	if (fd < 0)
		return 0;
	in = age_in_open_fd_armored(fd, &err);
	while (in != NULL && age_in_read(in, buf, sizeof(buf), &got,
	    &err) == 0 && got > 0)
		;
	age_in_free(in);
	close(fd);
	return 0;
}
