/*
 * protocol-vectors - known-answer tests for doc/PROTOCOL.md.
 *
 *	protocol-vectors DIR		check the vectors in DIR
 *	protocol-vectors --generate DIR	write them (only when the format
 *					changes on purpose)
 *
 * Identities come from fixed seeds; envelopes from a fixed header and a
 * body of bytes i mod 251.  Checking recomputes everything through the
 * library and compares with the files, so a format change fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "age.h"
#include "envelope.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"

#define DATE_2026	1767225600	/* 2026-01-01T00:00:00Z */

static const struct ident {
	const char *name, *address;
	unsigned char id_byte, enc_byte, rec_byte;
} idents[] = {
	{ "alice", "alice@example.org", 0x01, 0x02, 0x03 },
	{ "bob", "bob@example.net", 0x11, 0x12, 0x13 },
};

/* H || B lengths of the envelopes: small, empty body, one exact chunk,
 * signature straddling two age chunks, several chunks. */
static const long env_total[] = { 0, -1, 65536, 131062, 200000 };
#define NENV (sizeof(env_total) / sizeof(env_total[0]))

static size_t passed, failed;

static void
check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

struct keys {
	unsigned char id_pk[32], id_sk[64], enc_sk[32], enc_pk[32];
	unsigned char rec_pk[32], rec_sk[64];
};

static void
derive(const struct ident *i, struct keys *k)
{
	unsigned char seed[32];

	memset(seed, i->id_byte, 32);
	crypto_sign_seed_keypair(k->id_pk, k->id_sk, seed);
	memset(k->enc_sk, i->enc_byte, 32);
	crypto_scalarmult_base(k->enc_pk, k->enc_sk);
	memset(seed, i->rec_byte, 32);
	crypto_sign_seed_keypair(k->rec_pk, k->rec_sk, seed);
}

static int
read_file(const char *dir, const char *name, unsigned char **buf,
    size_t *len)
{
	struct smimp_err err;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 4 * 1024 * 1024, buf, len, &err) != 0) {
		printf("FAIL %s\n", err.msg);
		failed++;
		return -1;
	}
	return 0;
}

static int
write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	struct smimp_err err;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_write_atomic(path, buf, len, 0644, 1, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The envelope header for vector n (fixed id and date). */
static void
header_for(size_t n, const struct idlog *alice, const struct idlog *bob,
    struct sbuf *h)
{
	char afp[FINGERPRINT_STRLEN], bfp[FINGERPRINT_STRLEN];

	fingerprint_format(alice->fingerprint, afp);
	fingerprint_format(bob->fingerprint, bfp);
	(void)sbuf_addf(h, "smimp-envelope/1\ntype: email\nfrom: %s\n"
	    "from-fingerprint: %s\nfrom-log-head: ", alice->address, afp);
	(void)sbuf_add_b64(h, alice->head, 32);
	(void)sbuf_addf(h, "\nto: %s %s\ndate: 2026-01-01T00:00:00Z\n"
	    "message-id: vector%zu@example.org\n"
	    "thread-id: vector%zu@example.org\n"
	    "subject: test vector %zu\n"
	    "content-type: text/markdown; charset=utf-8\nsender-log: ",
	    bob->address, bfp, n, n, n);
	(void)sbuf_add_b64(h, alice->raw, alice->raw_len);
	(void)sbuf_add(h, "\n\n", 2);
}

/* Leaves, root and signature over H || B, as text lines. */
static void
envelope_answers(const unsigned char *hb, size_t len,
    const unsigned char *sk, struct sbuf *out, unsigned char sig[64],
    unsigned char root[32])
{
	struct env_root r;
	unsigned char leaf[32];
	char hex[65];
	size_t off;

	env_root_init(&r);
	for (off = 0; off < len; off += AGE_CHUNK_SIZE) {
		size_t n = len - off < AGE_CHUNK_SIZE ? len - off :
		    AGE_CHUNK_SIZE;

		env_leaf(leaf, hb + off, n);
		env_root_add(&r, leaf);
		sodium_bin2hex(hex, sizeof(hex), leaf, 32);
		(void)sbuf_addf(out, "leaf: %s\n", hex);
	}
	env_root_final(&r, len, root);
	sodium_bin2hex(hex, sizeof(hex), root, 32);
	(void)sbuf_addf(out, "root: %s\n", hex);
	env_sign(sig, root, sk);
	{
		char shex[129];

		sodium_bin2hex(shex, sizeof(shex), sig, 64);
		(void)sbuf_addf(out, "signature: %s\n", shex);
	}
}

static int
run(const char *dir, int generate)
{
	struct idlog logs[2];
	struct keys keys[2];
	struct smimp_err err;
	char name[64], what[256], fp[FINGERPRINT_STRLEN], hex[65];
	size_t i, n;

	for (i = 0; i < 2; i++) {
		unsigned char *file;
		size_t len;
		struct sbuf txt;

		derive(&idents[i], &keys[i]);
		if (idlog_genesis(&logs[i], idents[i].address, keys[i].id_sk,
		    keys[i].enc_pk, keys[i].rec_pk, DATE_2026, &err) != 0) {
			printf("FAIL genesis: %s\n", err.msg);
			return 1;
		}
		fingerprint_format(logs[i].fingerprint, fp);
		sodium_bin2hex(hex, sizeof(hex), logs[i].head, 32);
		sbuf_init(&txt, 4096);
		(void)sbuf_addf(&txt, "address: %s\nidentity-seed: %02x*32\n"
		    "encryption-secret: %02x*32\nrecovery-seed: %02x*32\n"
		    "date: 2026-01-01T00:00:00Z\nfingerprint: %s\n"
		    "log-head: %s\n", idents[i].address, idents[i].id_byte,
		    idents[i].enc_byte, idents[i].rec_byte, fp, hex);
		snprintf(name, sizeof(name), "%s.pub", idents[i].name);
		if (generate) {
			if (write_file(dir, name, logs[i].raw,
			    logs[i].raw_len) != 0)
				return 1;
			snprintf(name, sizeof(name), "%s.txt", idents[i].name);
			if (write_file(dir, name, txt.buf, txt.len) != 0)
				return 1;
			sbuf_release(&txt);
			continue;
		}
		if (read_file(dir, name, &file, &len) == 0) {
			struct idlog parsed;

			snprintf(what, sizeof(what), "%s: genesis record bytes",
			    name);
			check(len == logs[i].raw_len && memcmp(file,
			    logs[i].raw, len) == 0, what);
			snprintf(what, sizeof(what), "%s: parses and verifies",
			    name);
			check(idlog_parse(&parsed, file, len, &err) == 0, what);
			idlog_release(&parsed);
			file[len / 2] ^= 1;
			snprintf(what, sizeof(what), "%s: a flipped bit is "
			    "refused", name);
			check(idlog_parse(&parsed, file, len, &err) != 0, what);
			free(file);
		}
		snprintf(name, sizeof(name), "%s.txt", idents[i].name);
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: fingerprint %s and "
			    "log head", name, fp);
			check(len == txt.len && memcmp(file, txt.buf, len) == 0,
			    what);
			free(file);
		}
		sbuf_release(&txt);
	}
	for (n = 0; n < NENV; n++) {
		struct sbuf h, ans;
		unsigned char *hb, sig[64], root[32], *file;
		size_t hlen, body, total, len, k;
		struct msg_meta meta;

		sbuf_init(&h, MSG_MAX_HEADER);
		sbuf_init(&ans, 1 << 20);
		header_for(n, &logs[0], &logs[1], &h);
		total = env_total[n] == 0 ? h.len + 42 : env_total[n] < 0 ?
		    h.len : (size_t)env_total[n];
		body = total - h.len;
		hb = malloc(total);
		memcpy(hb, h.buf, h.len);
		for (k = 0; k < body; k++)
			hb[h.len + k] = (unsigned char)(k % 251);
		(void)sbuf_addf(&ans, "header-length: %zu\nbody-length: %zu\n"
		    "body: bytes i mod 251\n", h.len, body);
		envelope_answers(hb, total, keys[0].id_sk, &ans, sig, root);
		snprintf(name, sizeof(name), "envelope%zu.header", n);
		if (generate) {
			if (write_file(dir, name, h.buf, h.len) != 0)
				return 1;
			snprintf(name, sizeof(name), "envelope%zu.txt", n);
			if (write_file(dir, name, ans.buf, ans.len) != 0)
				return 1;
			goto next;
		}
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: header bytes", name);
			check(len == h.len && memcmp(file, h.buf, len) == 0,
			    what);
			snprintf(what, sizeof(what), "%s: parses, sender "
			    "verified", name);
			check(env_header_parse(file, len, &hlen, &meta,
			    NULL, &err) == 0 && hlen == len &&
			    strcmp(meta.from, "alice@example.org") == 0 &&
			    meta.nrcpts == 1, what);
			if (hlen == len)
				msg_meta_release(&meta);
			free(file);
		}
		snprintf(name, sizeof(name), "envelope%zu.txt", n);
		if (read_file(dir, name, &file, &len) == 0) {
			snprintf(what, sizeof(what), "%s: leaves, root and "
			    "signature (H||B %zu bytes)", name, total);
			check(len == ans.len && memcmp(file, ans.buf, len) == 0,
			    what);
			free(file);
		}
		snprintf(what, sizeof(what), "envelope%zu: signature verifies",
		    n);
		check(env_verify(sig, root, logs[0].identity_key) == 0, what);
		sig[10] ^= 0x20;
		snprintf(what, sizeof(what), "envelope%zu: a flipped signature "
		    "bit is refused", n);
		check(env_verify(sig, root, logs[0].identity_key) != 0, what);
		root[0] ^= 1;
		sig[10] ^= 0x20;
		snprintf(what, sizeof(what), "envelope%zu: a changed root is "
		    "refused", n);
		check(env_verify(sig, root, logs[0].identity_key) != 0, what);
next:
		free(hb);
		sbuf_release(&h);
		sbuf_release(&ans);
	}
	for (i = 0; i < 2; i++)
		idlog_release(&logs[i]);
	if (generate)
		return 0;
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "--generate") == 0)
		return run(argv[2], 1);
	if (argc != 2) {
		fprintf(stderr, "usage: protocol-vectors [--generate] DIR\n");
		return 2;
	}
	return run(argv[1], 0);
}
