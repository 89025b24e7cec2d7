/*
 * serverkey.c - the server's own Ed25519 key: made on first start, kept
 * 0600 in the data directory.  Its secret half lives here alone, in
 * guarded memory that no thread can read except while this module signs
 * with it (relay requests, bounce notices): everything else holds a
 * struct signer.  Its public half is published in {base}/v1/meta.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "server.h"
#include "util.h"
#include "banned.h"

#define SERVER_KEY_MAGIC	"smimp-server-key/1\n"

/*
 * The secret key, in sodium_malloc memory (guard pages, locked in
 * memory, zeroed when freed), read-only once made.  It is not made
 * inaccessible between signatures: each change of protection is a
 * system call and, in a threaded process, a TLB shootdown on every
 * core, twice for each receipt signed (5% of the CPU a delivery costs),
 * and the signers would have to take turns.  Signers share the lock;
 * only the release takes it alone.
 */
static unsigned char *secret;
static pthread_rwlock_t secret_lock = PTHREAD_RWLOCK_INITIALIZER;

static int
serverkey_sign(void *key, const unsigned char *msg, size_t len,
    unsigned char sig[64])
{
	int ret = -1;

	(void)key;
	if (pthread_rwlock_rdlock(&secret_lock) != 0)
		return -1;
	if (secret != NULL)
		ret = crypto_sign_detached(sig, NULL, msg, len, secret);
	(void)pthread_rwlock_unlock(&secret_lock);
	return ret;
}

void
serverkey_release(void)
{
	if (pthread_rwlock_wrlock(&secret_lock) != 0)
		return;
	if (secret != NULL)
		sodium_free(secret);
	secret = NULL;
	(void)pthread_rwlock_unlock(&secret_lock);
}

/* DATADIR/server.key, into path (PATH_MAX bytes). */
static int
key_path(const char *datadir, char *path, struct smimp_err *err)
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/server.key", datadir) >=
	    PATH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return 0;
}

/* The seed the key file at path holds, checked: private, well formed. */
static int
key_read(const char *path, unsigned char seed[32], struct smimp_err *err)
{
	unsigned char *buf;
	size_t len;
	int fd, ret = -1;

	fd = open_private(path, err);
	if (fd < 0)
		return -1;
	buf = sodium_malloc(1025);
	if (buf == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (fd_read_into(fd, path, 1024, buf, &len, err) != 0)
		goto out;
	if (len != strlen(SERVER_KEY_MAGIC) + 8 + 44 + 1 ||
	    memcmp(buf, SERVER_KEY_MAGIC, strlen(SERVER_KEY_MAGIC)) != 0 ||
	    b64_decode_exact((char *)buf + strlen(SERVER_KEY_MAGIC) + 8, 44,
	    seed, 32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s': malformed server "
		    "key", path);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	if (buf != NULL)
		sodium_free(buf);
	return ret;
}

/*
 * Is pk the key the domain's nodes sign with (store_server_key)?  0 if
 * so; else -1, err saying which key the store records and what to do:
 * a node of another key would publish it to some peers and sign with
 * it for others, whose checks then fail.  made: the node made pk up
 * just now, for want of a key file.
 */
static int
key_check(struct server *srv, const char *path, const unsigned char *pk,
    int made, struct smimp_err *err)
{
	unsigned char recorded[32];
	char ours[sodium_base64_ENCODED_LEN(32,
	    sodium_base64_VARIANT_ORIGINAL)];
	char theirs[sizeof(ours)];
	int r;

	r = store_server_key(srv->store, pk, recorded, err);
	if (r == STORE_NOT_FOUND)
		return 0;
	if (r != STORE_OK)
		return -1;
	if (pk != NULL && sodium_memcmp(recorded, pk, 32) == 0)
		return 0;
	sodium_bin2base64(theirs, sizeof(theirs), recorded, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	if (pk == NULL || made)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no server key "
		    "'%s': the nodes of %s sign with the server key %s, which "
		    "the store records; copy server.key from one of them",
		    path, srv->cfg.domain, theirs);
	sodium_bin2base64(ours, sizeof(ours), pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "the server key '%s' (%s) "
	    "is not the one the nodes of %s sign with, %s, which the store "
	    "records; copy server.key from one of them", path, ours,
	    srv->cfg.domain, theirs);
}

/*
 * The server's own Ed25519 key: made on first start, kept 0600, unless
 * the store records the key of the domain's other nodes; then only
 * that key is taken.
 */
int
serverkey_load(struct server *srv, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned char seed[32], *sk, *old;
	struct sbuf text;
	int ret = -1, made = 0;

	if (key_path(srv->cfg.datadir, path, err) != 0)
		return -1;
	sk = sodium_malloc(64);
	if (sk == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (access(path, F_OK) != 0) {
		/* A new node of a domain that has a key: none made up. */
		if (key_check(srv, path, NULL, 0, err) != 0)
			goto out;
		sbuf_init(&text, 256);
		randombytes_buf(seed, sizeof(seed));
		if (sbuf_add(&text, SERVER_KEY_MAGIC,
		    strlen(SERVER_KEY_MAGIC)) || sbuf_add(&text, "secret: ", 8)
		    || sbuf_add_b64(&text, seed, 32) ||
		    sbuf_add(&text, "\n", 1) ||
		    file_write_atomic(path, text.buf, text.len, 0600, 0,
		    err) != 0) {
			sodium_memzero(text.buf, text.len);
			sbuf_release(&text);
			goto out;
		}
		sodium_memzero(text.buf, text.len);
		sbuf_release(&text);
		made = 1;
	}
	if (key_read(path, seed, err) != 0)
		goto out;
	crypto_sign_seed_keypair(srv->server_pk, sk, seed);
	if (key_check(srv, path, srv->server_pk, made, err) != 0) {
		/* Another node's, made at the same moment, was recorded. */
		if (made)
			(void)unlink(path);
		goto out;
	}
	if (made)
		log_info("created server key %s", path);
	if (sodium_mprotect_readonly(sk) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot guard the server "
		    "key");
		goto out;
	}
	/* Made whole before any signer can see it. */
	if (pthread_rwlock_wrlock(&secret_lock) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot take the server "
		    "key's lock");
		goto out;
	}
	old = secret;
	secret = sk;
	sk = NULL;
	(void)pthread_rwlock_unlock(&secret_lock);
	if (old != NULL)
		sodium_free(old);
	(void)snprintf(srv->signer_name, sizeof(srv->signer_name),
	    "server:%s", srv->cfg.domain);
	srv->signer.name = srv->signer_name;
	srv->signer.sign = serverkey_sign;
	srv->signer.key = NULL;
	ret = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	if (sk != NULL)
		sodium_free(sk);
	return ret;
}

int
serverkey_public(const char *datadir, unsigned char pk[32],
    struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned char seed[32], *sk;
	int ret = -1;

	if (key_path(datadir, path, err) != 0)
		return -1;
	if (access(path, F_OK) != 0)
		return 1;
	sk = sodium_malloc(64);
	if (sk == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (key_read(path, seed, err) == 0) {
		crypto_sign_seed_keypair(pk, sk, seed);
		ret = 0;
	}
	sodium_memzero(seed, sizeof(seed));
	sodium_free(sk);
	return ret;
}
