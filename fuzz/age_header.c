/*
 * Fuzz the age header parser and STREAM reader (binary input), from a
 * descriptor and from memory.
 */
#define _GNU_SOURCE	/* memmem */
#include <string.h>

#include "age.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char sk[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct age_identity ids[2];
	struct age_decryptor *d;
	struct smimp_err err;
	struct age_in *in;
	unsigned char buf[4096];
	size_t got;
	int fd;

	fuzz_init();
	/* scrypt work is capped by the parser at 2^22: too slow here. */
	if (memmem(data, size, "scrypt", 6) != NULL)
		return 0;
	memset(ids, 0, sizeof(ids));
	ids[0].type = AGE_ID_X25519;
	ids[0].x25519_secret = sk;
	/* The server's check of a body held in memory. */
	(void)age_header_check_mem(data, size, &err);
	fd = fuzz_fd(data, size);
	if (fd < 0)
		return 0;
	in = age_in_open_fd(fd, &err);
	if (in != NULL) {
		d = age_decrypt_begin(in, ids, 1, &err);
		while (d != NULL && age_decrypt_read(d, buf, sizeof(buf), &got,
		    &err) == 0 && got > 0)
			;
		age_decrypt_free(d);
		age_in_free(in);
	}
	close(fd);
	return 0;
}
