/*
 * limit - this machine's limits for seal and open, measured the way
 * smimp spends its time: ChaCha20-Poly1305 over 64 KiB chunks and
 * BLAKE2b-256 over 64 KiB leaves, per core; and the file write rate.
 * Prints "chacha BYTES_PER_SEC", "blake2b BYTES_PER_SEC",
 * "write BYTES_PER_SEC" (sustained, to the file named in argv[1]).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define CHUNK	65536
#define TOTAL	(512.0 * 1024 * 1024)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static unsigned char in[CHUNK], out[CHUNK + 16], key[32], h[32];
	static unsigned char big[1 << 20];
	unsigned char nonce[12] = { 0 };
	double t, n = TOTAL / CHUNK;
	long i, j;
	int fd;

	if (sodium_init() < 0 || argc < 2)
		return 1;
	randombytes_buf(in, sizeof(in));
	randombytes_buf(key, sizeof(key));
	t = now();
	for (i = 0; i < n; i++) {
		nonce[0] = (unsigned char)i;
		crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, CHUNK,
		    NULL, 0, NULL, nonce, key);
	}
	printf("chacha %.0f\n", TOTAL / (now() - t));
	t = now();
	for (i = 0; i < n; i++) {
		in[0] = (unsigned char)i;
		crypto_generichash(h, 32, in, CHUNK, NULL, 0);
	}
	printf("blake2b %.0f\n", TOTAL / (now() - t));
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 1;
	randombytes_buf(big, sizeof(big));
	t = now();
	for (j = 0; j < 1024; j++)
		if (write(fd, big, sizeof(big)) != (ssize_t)sizeof(big))
			return 1;
	/*
	 * Sustained rate: a gigabyte outgrows the page cache's dirty limit,
	 * so the writer is throttled to the disk; count the flush too.
	 */
	if (fdatasync(fd) != 0 || close(fd) != 0)
		return 1;
	printf("write %.0f\n", 1024.0 * sizeof(big) / (now() - t));
	unlink(argv[1]);
	return 0;
}
