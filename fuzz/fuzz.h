/* fuzz.h - shared by the libFuzzer targets: input as a file descriptor. */
#ifndef SMIMP_FUZZ_H
#define SMIMP_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

/* An fd holding data, positioned at its start; -1 on failure. */
static int
fuzz_fd(const uint8_t *data, size_t size)
{
	FILE *f = tmpfile();
	int fd;

	if (f == NULL)
		return -1;
	if (size > 0 && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return -1;
	}
	if (fflush(f) != 0) {
		fclose(f);
		return -1;
	}
	fd = dup(fileno(f));
	fclose(f);
	if (fd >= 0 && lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* data as a NUL-terminated string (cut at a NUL inside), malloc'd. */
static char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void
fuzz_init(void)
{
	static int done;

	if (!done && sodium_init() < 0)
		abort();
	done = 1;
}

#endif
