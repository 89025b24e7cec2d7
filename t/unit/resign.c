/*
 * resign - sign an envelope's plaintext (H || B || S, doc/PROTOCOL.md
 * 4.2) again, for tests that need a message no smimp-seal would make
 * (one carrying a revoked log, say) with a signature that verifies:
 *
 *	resign KEY < envelope > envelope
 *
 * KEY is a secret key file without a passphrase; the last 64 bytes of
 * the input are replaced by its signature over the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "envelope.h"
#include "exitcode.h"
#include "fileio.h"
#include "keys.h"

#define INPUT_MAX	(16 * 1024 * 1024)

int
main(int argc, char **argv)
{
	struct passphrase_source src = { NULL, 0 };
	unsigned char leaf[ENV_LEAF_SIZE], root[32], sig[ENV_SIG_SIZE];
	struct secret_key sk;
	struct env_root r;
	struct smimp_err err;
	unsigned char *buf = NULL;
	size_t len, off, n;

	if (argc != 2) {
		fprintf(stderr, "usage: resign KEY < envelope > envelope\n");
		return SMIMP_EXIT_USAGE;
	}
	if (sodium_init() < 0)
		return SMIMP_EXIT_FAIL;
	if (secret_key_load(&sk, argv[1], &src, &err) != 0 ||
	    fd_read_all(STDIN_FILENO, "stdin", INPUT_MAX, &buf, &len,
	    &err) != 0) {
		fprintf(stderr, "resign: %s\n", err.msg);
		return SMIMP_EXIT_FAIL;
	}
	if (len <= ENV_SIG_SIZE) {
		fprintf(stderr, "resign: the input is too short\n");
		return SMIMP_EXIT_BADMSG;
	}
	len -= ENV_SIG_SIZE;
	env_root_init(&r);
	for (off = 0; off < len; off += n) {
		n = len - off < 65536 ? len - off : 65536;
		env_leaf(leaf, buf + off, n);
		env_root_add(&r, leaf);
	}
	env_root_final(&r, len, root);
	env_sign(sig, root, sk.identity_secret);
	if (fd_write_all(STDOUT_FILENO, buf, len) != 0 ||
	    fd_write_all(STDOUT_FILENO, sig, sizeof(sig)) != 0) {
		perror("resign");
		return SMIMP_EXIT_FAIL;
	}
	secret_key_release(&sk);
	free(buf);
	return 0;
}
