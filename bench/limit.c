/*
 * limit - what this machine can do at best for smimp-seal and
 * smimp-open, measured the way they spend their time:
 *
 *   crypto    ChaCha20-Poly1305 and BLAKE2b-256 over each 64 KiB chunk,
 *             on as many threads as there are cores at once (bytes/s,
 *             all threads together);
 *   read      the input file read once from the page cache (bytes/s);
 *   write     as many bytes written to a new file (bytes/s);
 *   durable   the same, and fdatasync'd (bytes/s).
 *
 * usage: limit INPUT SCRATCH   (SCRATCH is made, then removed)
 * Prints "NAME BYTES_PER_SEC" lines.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define CHUNK	65536
#define BLOCK	(1 << 20)
#define MAX_THREADS	64

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct job {
	pthread_t t;
	long chunks;
};

/* Hash a chunk into its leaf, then encrypt it: what a worker does. */
static void *
crypto_work(void *arg)
{
	struct job *j = arg;
	unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK + 16);
	unsigned char key[32], nonce[12] = { 0 }, h[32];
	long i;

	if (in == NULL || out == NULL)
		exit(1);
	randombytes_buf(in, CHUNK);
	randombytes_buf(key, sizeof(key));
	for (i = 0; i < j->chunks; i++) {
		memcpy(nonce, &i, sizeof(i));
		crypto_generichash(h, sizeof(h), in, CHUNK, NULL, 0);
		crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, CHUNK,
		    NULL, 0, NULL, nonce, key);
	}
	free(in);
	free(out);
	return NULL;
}

static double
crypto_rate(double bytes)
{
	struct job jobs[MAX_THREADS];
	long n = sysconf(_SC_NPROCESSORS_ONLN), i;
	double t;

	if (n < 1)
		n = 1;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	t = now();
	for (i = 0; i < n; i++) {
		jobs[i].chunks = (long)(bytes / CHUNK / n);
		if (pthread_create(&jobs[i].t, NULL, crypto_work, &jobs[i]) != 0)
			exit(1);
	}
	for (i = 0; i < n; i++)
		pthread_join(jobs[i].t, NULL);
	return (double)jobs[0].chunks * n * CHUNK / (now() - t);
}

static double
read_rate(const char *path, unsigned char *buf, double *bytes)
{
	int fd = open(path, O_RDONLY);
	double t = now();
	ssize_t r;

	*bytes = 0;
	if (fd < 0)
		exit(1);
	while ((r = read(fd, buf, BLOCK)) > 0)
		*bytes += r;
	if (r < 0)
		exit(1);
	close(fd);
	return *bytes / (now() - t);
}

static double
write_rate(const char *path, const unsigned char *buf, double bytes, int sync)
{
	double done, t;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		exit(1);
	t = now();
	for (done = 0; done < bytes; done += BLOCK)
		if (write(fd, buf, BLOCK) != BLOCK)
			exit(1);
	if ((sync && fdatasync(fd) != 0) || close(fd) != 0)
		exit(1);
	t = now() - t;
	unlink(path);
	return done / t;
}

int
main(int argc, char **argv)
{
	unsigned char *buf;
	double bytes;

	if (sodium_init() < 0 || argc != 3) {
		fprintf(stderr, "usage: limit INPUT SCRATCH\n");
		return 2;
	}
	buf = malloc(BLOCK);
	if (buf == NULL)
		return 1;
	randombytes_buf(buf, BLOCK);
	printf("read %.0f\n", read_rate(argv[1], buf, &bytes));
	printf("crypto %.0f\n", crypto_rate(bytes < 256.0 * BLOCK ? bytes :
	    256.0 * BLOCK));
	/* Written back first, untimed, as the bench does between runs. */
	sync();
	printf("write %.0f\n", write_rate(argv[2], buf, bytes, 0));
	sync();
	printf("durable %.0f\n", write_rate(argv[2], buf, bytes, 1));
	free(buf);
	return 0;
}
