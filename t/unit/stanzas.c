/*
 * stanzas - the keys a message is sealed to (doc/PROTOCOL.md 4.1 and
 * 8.6): every recipient's encryption key and its receiving devices',
 * the sender's own, each key once, at most MSG_MAX_STANZAS; a sealer
 * refuses more, a reader refuses a header with more, and any one of
 * the keys opens the message.  The header holds them made up to a
 * power of two with keys of no one (doc/PROTOCOL.md 9).  Through the
 * library, in memory and in private spool files.
 *
 *	stanzas		run the checks
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "outfile.h"
#include "util.h"

#include "check.h"

#define NRCPTS		16
#define NOW		1767225600	/* 2026-01-01T00:00:00Z */

static struct secret_key sender;
static struct idlog sender_log;
static struct msg_recipient rcpts[NRCPTS];
/* The secret of each recipient's last device, to open with. */
static unsigned char last_secret[NRCPTS][32];

/* A recipient i with its own key and ndev device keys (shared: the same
 * 64 for every recipient, so that each counts once). */
static void
make_recipient(size_t i, size_t ndev, int shared)
{
	struct msg_recipient *r = &rcpts[i];
	unsigned char sk[32];
	size_t j;

	memset(r, 0, sizeof(*r));
	(void)snprintf(r->address, sizeof(r->address), "r%zu@example.net", i);
	randombytes_buf(r->fingerprint, sizeof(r->fingerprint));
	randombytes_buf(sk, sizeof(sk));
	crypto_scalarmult_base(r->encryption_key, sk);
	for (j = 0; j < ndev; j++) {
		if (shared) {
			memset(sk, (int)(j + 1), sizeof(sk));
		} else
			randombytes_buf(sk, sizeof(sk));
		crypto_scalarmult_base(r->device_keys[j], sk);
		memcpy(last_secret[i], sk, 32);
	}
	r->ndevice_keys = ndev;
}

/* Seal a short body to n recipients into a spool: its fd, or -1. */
static int
seal_to(size_t n, struct smimp_err *err)
{
	struct seal_params p;
	int in = -1, out = -1;

	memset(&p, 0, sizeof(p));
	p.sender = &sender;
	p.sender_log = &sender_log;
	p.rcpts = rcpts;
	p.nrcpts = n;
	p.type = "email";
	in = spool_open(err);
	out = spool_open(err);
	if (in < 0 || out < 0 || fd_write_all(in, "hello\n", 6) != 0 ||
	    lseek(in, 0, SEEK_SET) != 0 ||
	    message_seal(&p, in, out, NULL, 0, err) != 0) {
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		return -1;
	}
	close(in);
	return out;
}

/* How many X25519 stanzas the age file in fd has. */
static size_t
count_stanzas(int fd)
{
	static unsigned char buf[AGE_MAX_HEADER];
	size_t got = 0, n = 0, i;

	if (lseek(fd, 0, SEEK_SET) != 0 ||
	    fd_read_full(fd, buf, sizeof(buf) - 1, &got) != 0)
		return 0;
	for (i = 0; i + 10 <= got; i++)
		if ((i == 0 || buf[i - 1] == '\n') &&
		    memcmp(buf + i, "-> X25519 ", 10) == 0)
			n++;
	return n;
}

/* Does the last device of recipient i open the message in fd? */
static int
opens_with_device(int fd, size_t i)
{
	struct secret_key me;
	struct msg_meta meta;
	struct smimp_err err;
	int ok;

	memset(&me, 0, sizeof(me));
	if (device_key_generate(&me, rcpts[i].address, "tv", &err) != 0)
		return 0;
	memcpy(me.encryption_secret, last_secret[i], 32);
	ok = lseek(fd, 0, SEEK_SET) == 0 && message_open(&me, NULL, fd, -1,
	    NULL, &meta, &err) == 0;
	if (ok)
		msg_meta_release(&meta);
	secret_key_release(&me);
	return ok;
}

static void
bounds(void)
{
	struct smimp_err err;
	size_t i;
	int fd;

	for (i = 0; i < NRCPTS; i++)
		make_recipient(i, IDLOG_MAX_DEVICES, 0);
	/* 15 recipients of 1 + 64 keys, and the sender's: 976, padded. */
	fd = seal_to(NRCPTS - 1, &err);
	check(fd >= 0 && count_stanzas(fd) == MSG_MAX_STANZAS,
	    "15 recipients with 64 receiving devices each: 976 keys, 1024 "
	    "stanzas");
	check(fd >= 0 && opens_with_device(fd, NRCPTS - 2), "the last "
	    "device of the last recipient opens it");
	if (fd >= 0)
		close(fd);
	/* One more: 1041, past the bound. */
	smimp_err_clear(&err);
	fd = seal_to(NRCPTS, &err);
	check(fd < 0 && err.code == SMIMP_EXIT_USAGE && strcmp(err.msg,
	    "too many keys to seal to: the recipients' and their devices', "
	    "and the sender's, come to more than 1024") == 0,
	    "16 recipients with 64 devices each (1041 keys): refused");
	/*
	 * The same keys count once: 81 keys, not the 1041 refused above;
	 * 128 stanzas.
	 */
	for (i = 0; i < NRCPTS; i++)
		make_recipient(i, IDLOG_MAX_DEVICES, 1);
	fd = seal_to(NRCPTS, &err);
	check(fd >= 0 && count_stanzas(fd) == 128, "16 recipients sharing 64 "
	    "device keys: each key once, 81 keys, 128 stanzas");
	if (fd >= 0)
		close(fd);
}

static void
low_order(void)
{
	struct smimp_err err;
	int fd;

	make_recipient(0, 2, 0);
	memset(rcpts[0].device_keys[1], 0, 32);
	fd = seal_to(1, &err);
	check(fd < 0 && err.code == SMIMP_EXIT_BADMSG && strcmp(err.msg,
	    "the encryption key of a device of r0@example.net is of low "
	    "order (anyone could open what is sealed to it): refusing it") ==
	    0, "a recipient's device key of low order: refused, named");
}

/* 32 bytes in unpadded base64, as age writes them. */
static void
add_b64_32(struct sbuf *sb, const unsigned char r[32])
{
	(void)sbuf_add_b64(sb, r, 32);
	sb->len--;	/* the one '=' of 32 bytes */
}

/* An age header of n X25519 stanzas (not openable), then a MAC line. */
static int
header_of(size_t n)
{
	struct smimp_err err;
	struct sbuf sb;
	unsigned char r[32];
	size_t i;
	int fd;

	sbuf_init(&sb, 2 * AGE_MAX_HEADER);
	(void)sbuf_add(&sb, "age-encryption.org/v1\n", 22);
	for (i = 0; i < n; i++) {
		randombytes_buf(r, sizeof(r));
		(void)sbuf_add(&sb, "-> X25519 ", 10);
		(void)add_b64_32(&sb, r);
		(void)sbuf_add(&sb, "\n", 1);
		(void)add_b64_32(&sb, r);
		(void)sbuf_add(&sb, "\n", 1);
	}
	(void)sbuf_add(&sb, "--- ", 4);
	(void)add_b64_32(&sb, r);
	(void)sbuf_add(&sb, "\n", 1);
	fd = spool_open(&err);
	if (fd >= 0 && (fd_write_all(fd, sb.buf, sb.len) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
	}
	sbuf_release(&sb);
	return fd;
}

static void
reader_bound(void)
{
	struct msg_meta meta;
	struct smimp_err err;
	int fd = header_of(MSG_MAX_STANZAS + 1);

	check(fd >= 0 && message_open(&sender, NULL, fd, -1, NULL, &meta,
	    &err) != 0 && err.code == SMIMP_EXIT_BADMSG &&
	    strcmp(err.msg, "cannot decrypt: malformed header: too many "
	    "stanzas") == 0, "a reader refuses a header of 1025 stanzas");
	if (fd >= 0)
		close(fd);
	fd = header_of(MSG_MAX_STANZAS);
	check(fd >= 0 && message_open(&sender, NULL, fd, -1, NULL, &meta,
	    &err) != 0 && strcmp(err.msg, "cannot decrypt: the message is "
	    "not encrypted to s@example.org") == 0, "1024 stanzas are read "
	    "(none of them ours)");
	if (fd >= 0)
		close(fd);
}

int
main(void)
{
	struct smimp_err err;
	unsigned char rec_pk[32], rec_sk[64];

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(rec_pk, rec_sk);
	if (secret_key_generate(&sender, "s@example.org", &err) != 0 ||
	    idlog_genesis(&sender_log, "s@example.org",
	    sender.identity_secret, secret_key_encryption_public(&sender),
	    rec_pk, NOW, &err) != 0) {
		fprintf(stderr, "stanzas: %s\n", err.msg);
		return 1;
	}
	bounds();
	low_order();
	reader_bound();
	idlog_release(&sender_log);
	secret_key_release(&sender);
	return check_summary();
}
