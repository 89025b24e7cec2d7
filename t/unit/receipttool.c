/*
 * receipttool - delivery receipts (lib/receipt.h) and per-domain
 * stamps (lib/stamp.h) for the tests:
 *
 *	receipttool vectors DIR		check DIR/receipt.txt and
 *					DIR/receipt.signed against what the
 *					library makes and reads (doc/PROTOCOL.md
 *					8.3, 8.14), and the receipts a reader
 *					refuses: "ok NAME" or "FAIL NAME" per
 *					check, then a count
 *	receipttool vectors --generate DIR	write them
 *	receipttool sign SERVERKEY DOMAIN FROM MID FILE RCPTS [DATE]
 *					a receipt of DOMAIN, signed by the key in
 *					the server key file SERVERKEY (as smimpd
 *					keeps it), for the message FILE from FROM
 *					to RCPTS (comma-separated), dated DATE
 *					or now: what a peer, honest or not,
 *					answers
 *	receipttool parse FILE [SERVERKEY]	"ok", verified when a key
 *					is given, or the error (exit 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "receipt.h"
#include "reqsig.h"
#include "stamp.h"

#include "check.h"

/* The vector: a server key from a seed of 0x31, alice's of 0x01. */
#define V_DOMAIN	"example.net"
#define V_FROM		"alice@example.org"
#define V_MID		"vector-receipt@example.org"
#define V_RCPTS		"dave@example.net,bob@example.net"
#define V_DATE		"2026-11-27T12:00:00Z"
#define V_TO		"bob@example.net, carol@example.com, dave@example.net"
#define V_STAMP_DATE	"2026-11-27T11:59:00Z"

static void
keypair(unsigned char byte, unsigned char pk[32], unsigned char sk[64])
{
	unsigned char seed[32];

	memset(seed, byte, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void
v_hash(unsigned char h[32])
{
	int i;

	for (i = 0; i < 32; i++)
		h[i] = (unsigned char)i;
}

/* The vector's receipt into sb. */
static int
make_receipt(struct sbuf *sb)
{
	unsigned char pk[32], sk[64], h[32];
	struct smimp_err err;
	struct signer srv;

	keypair(0x31, pk, sk);
	v_hash(h);
	signer_secret(&srv, "server:" V_DOMAIN, sk);
	return receipt_build(sb, V_DOMAIN, V_FROM, V_MID, h, V_RCPTS, V_DATE,
	    &srv, &err);
}

/* The vector's stamps, one a domain, into txt and Smimp-Stamps. */
static int
make_stamps(struct sbuf *txt)
{
	char doms[4][ADDRESS_DOMAIN_MAX + 1], sorted[8192];
	char stamp[STAMP_STRLEN];
	unsigned char pk[32], sk[64], h[32], sh[32];
	struct smimp_err err;
	struct sbuf stamps;
	char hex[65];
	size_t n, i;
	int r = 0;

	keypair(0x01, pk, sk);
	v_hash(h);
	sbuf_init(&stamps, STAMPS_MAX + 1);
	n = stamp_domains(V_TO, doms, 4);
	for (i = 0; i < n && r == 0; i++) {
		r = stamp_recipients_at(V_TO, doms[i], sorted,
		    sizeof(sorted)) != 0 || stamp_sign(stamp, V_FROM, sorted,
		    V_MID, h, V_STAMP_DATE, sk, &err) != 0 ||
		    stamp_hash(sh, V_FROM, sorted, V_MID, h,
		    V_STAMP_DATE) != 0 || stamps_add(&stamps, doms[i],
		    stamp) != 0;
		sodium_bin2hex(hex, sizeof(hex), sh, 32);
		r = r || sbuf_addf(txt, "stamp %s: to %s, SH %s, stamp %s\n",
		    doms[i], sorted, hex, stamp) != 0;
	}
	r = r || sbuf_addf(txt, "smimp-stamps: %.*s\n", (int)stamps.len,
	    stamps.buf) != 0;
	sbuf_release(&stamps);
	return r ? -1 : 0;
}

static int
make_text(struct sbuf *txt)
{
	unsigned char pk[32], sk[64];
	char b64[64];

	keypair(0x31, pk, sk);
	sodium_bin2base64(b64, sizeof(b64), pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	if (sbuf_addf(txt, "server-seed: 31*32\nserver-key: %s\n"
	    "identity-seed: 01*32\nfrom: %s\nmessage-id: %s\nhash: "
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	    "\nrecipients: %s\ndate: %s\nto: %s\nstamp-date: %s\n", b64,
	    V_FROM, V_MID, V_RCPTS, V_DATE, V_TO, V_STAMP_DATE) != 0)
		return -1;
	return make_stamps(txt);
}

/* Does the file at path hold exactly want's bytes? */
static int
same_bytes(const char *path, const struct sbuf *want)
{
	unsigned char *got;
	struct smimp_err err;
	size_t len;
	int same = 0;

	if (file_read_all(path, 1 << 20, &got, &len, &err) == 0) {
		same = len == want->len && memcmp(got, want->buf, len) == 0;
		free(got);
	}
	return same;
}

/*
 * The vector's receipt with one line's value replaced (line 0 the
 * first field), signed anew by the vector's key, or with text added
 * after it: refused by the reader for that alone.
 */
static int
refused(const char *field, const char *value, const char *tail)
{
	unsigned char pk[32], sk[64], sig[64];
	struct smimp_err err;
	struct receipt *r = malloc(sizeof(*r));
	struct sbuf sb;
	struct signer srv;
	const char *names[] = { "domain: ", "from: ", "message-id: ", "hash: ",
	    "recipients: ", "date: " };
	const char *vals[] = { V_DOMAIN, V_FROM, V_MID,
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	    "bob@example.net,dave@example.net", V_DATE };
	size_t i;
	int bad;

	keypair(0x31, pk, sk);
	signer_secret(&srv, "server:" V_DOMAIN, sk);
	sbuf_init(&sb, 1 << 16);
	(void)sbuf_add(&sb, RECEIPT_MAGIC, strlen(RECEIPT_MAGIC));
	for (i = 0; i < 6; i++)
		(void)sbuf_addf(&sb, "%s%s\n", names[i],
		    field != NULL && strcmp(field, names[i]) == 0 ? value :
		    vals[i]);
	(void)signer_sign_in_context(&srv, "smimp/1 receipt", sb.buf, sb.len,
	    sig);
	(void)sbuf_add(&sb, "signature: ", 11);
	(void)sbuf_add_b64(&sb, sig, 64);
	(void)sbuf_addf(&sb, "\n%s", tail);
	bad = r == NULL || receipt_parse(r, sb.buf, sb.len, &err) != 0 ||
	    receipt_verify(r, sb.buf, pk, &err) != 0;
	sbuf_release(&sb);
	free(r);
	return bad;
}

/* What a reader makes of the committed receipt, and what it refuses. */
static void
read_back(const char *dir)
{
	static const struct {
		const char *field, *value, *tail, *name;
	} bad[] = {
		{ "domain: ", "Example.net", "", "a domain not normalized" },
		{ "from: ", "alice@example.org ", "", "a blank after an "
		    "address" },
		{ "message-id: ", "a b", "", "a message id out of alphabet" },
		{ "hash: ", "000102030405060708090A0B0C0D0E0F101112131415161718"
		    "191A1B1C1D1E1F", "", "a hash in capitals" },
		{ "hash: ", "0001", "", "a short hash" },
		{ "recipients: ", "dave@example.net,bob@example.net", "",
		    "recipients out of order" },
		{ "recipients: ", "bob@example.net,bob@example.net", "",
		    "a recipient twice" },
		{ "recipients: ", "bob@example.net,carol@example.com", "",
		    "a recipient of another domain" },
		{ "recipients: ", "", "", "no recipient" },
		{ "date: ", "2026-11-27T12:00:00+00:00", "", "a date not in "
		    "its one spelling" },
		{ NULL, NULL, "x", "anything after the signature" },
	};
	unsigned char pk[32], sk[64], h[32], *data;
	char path[4096], name[128];
	struct smimp_err err;
	struct receipt *r = malloc(sizeof(*r));
	size_t len, i;
	int ok;

	keypair(0x31, pk, sk);
	v_hash(h);
	(void)snprintf(path, sizeof(path), "%s/receipt.signed", dir);
	if (r == NULL || file_read_all(path, RECEIPT_MAX, &data, &len,
	    &err) != 0) {
		check(0, "receipt.signed: readable");
		free(r);
		return;
	}
	ok = receipt_parse(r, (char *)data, len, &err) == 0;
	check(ok, "receipt.signed: parses");
	check(ok && receipt_verify(r, (char *)data, pk, &err) == 0,
	    "receipt.signed: verifies under example.net's server key");
	check(ok && receipt_check(r, V_DOMAIN, V_FROM, V_MID, h,
	    "bob@example.net, dave@example.net", &err) == 0,
	    "receipt.signed: for this delivery");
	check(ok && receipt_check(r, V_DOMAIN, V_FROM, V_MID, h,
	    "bob@example.net", &err) != 0, "receipt.signed: refused for a "
	    "delivery that asked for bob alone");
	h[0] ^= 1;
	check(ok && receipt_check(r, V_DOMAIN, V_FROM, V_MID, h, NULL,
	    &err) != 0, "receipt.signed: refused for another message");
	check(ok && receipt_check(r, "example.com", V_FROM, V_MID, NULL, NULL,
	    &err) != 0, "receipt.signed: refused as another domain's");
	data[len / 2] ^= 1;
	check(receipt_parse(r, (char *)data, len, &err) != 0 ||
	    receipt_verify(r, (char *)data, pk, &err) != 0,
	    "receipt.signed: a flipped bit is refused");
	check(refused(NULL, NULL, "") == 0, "the re-signed vector is taken");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(name, sizeof(name), "refused: %s", bad[i].name);
		check(refused(bad[i].field, bad[i].value, bad[i].tail), name);
	}
	free(data);
	free(r);
}

static int
vectors(int argc, char **argv)
{
	struct sbuf rc, txt;
	const struct {
		const char *name, *what;
		const struct sbuf *sb;
	} files[] = {
		{ "receipt.txt", "the key, stamps and hashes the library "
		    "computes", &txt },
		{ "receipt.signed", "the bytes the writer makes", &rc },
	};
	struct smimp_err err;
	char path[4096], name[128];
	int gen = argc > 3 && strcmp(argv[2], "--generate") == 0;
	size_t i;

	sbuf_init(&rc, RECEIPT_MAX);
	sbuf_init(&txt, 1 << 16);
	if (make_receipt(&rc) != 0 || make_text(&txt) != 0) {
		fprintf(stderr, "receipttool: cannot make the vector\n");
		return 1;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", argv[gen ? 3 : 2],
		    files[i].name);
		(void)snprintf(name, sizeof(name), "%s: %s", files[i].name,
		    files[i].what);
		if (!gen)
			check(same_bytes(path, files[i].sb), name);
		else if (file_write_atomic(path, files[i].sb->buf,
		    files[i].sb->len, 0644, 1, &err) != 0)
			return 1;
	}
	if (!gen)
		read_back(argv[2]);
	sbuf_release(&rc);
	sbuf_release(&txt);
	return gen ? 0 : check_summary();
}

/* A server key file (smimp-server-key/1, then the seed): its keys. */
static int
server_key(const char *path, unsigned char pk[32], unsigned char sk[64])
{
	unsigned char *text, seed[32];
	struct smimp_err err;
	size_t len;
	int r;

	if (file_read_all(path, 4096, &text, &len, &err) != 0)
		return -1;
	r = len < 19 + 8 + 44 ||
	    b64_decode_exact((char *)text + 19 + 8, 44, seed, 32) != 0;
	free(text);
	if (r)
		return -1;
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return 0;
}

static int
sign(int argc, char **argv)
{
	unsigned char pk[32], sk[64], h[32], *body;
	char when[TIME_STRLEN], name[300];
	struct smimp_err err;
	struct signer srv;
	struct sbuf sb;
	size_t len;

	if (server_key(argv[2], pk, sk) != 0 ||
	    file_read_all(argv[6], 1 << 26, &body, &len, &err) != 0) {
		fprintf(stderr, "receipttool: cannot read the key or the "
		    "message\n");
		return 1;
	}
	reqsig_body_hash(h, body, len);
	free(body);
	time_format(time_now(), when);
	(void)snprintf(name, sizeof(name), "server:%s", argv[3]);
	signer_secret(&srv, name, sk);
	sbuf_init(&sb, 1 << 20);
	if (receipt_build(&sb, argv[3], argv[4], argv[5], h, argv[7],
	    argc > 8 ? argv[8] : when, &srv, &err) != 0) {
		fprintf(stderr, "receipttool: %s\n", err.msg);
		return 1;
	}
	fwrite(sb.buf, 1, sb.len, stdout);
	sbuf_release(&sb);
	return 0;
}

static int
parse(int argc, char **argv)
{
	unsigned char pk[32], sk[64], *data;
	struct smimp_err err;
	struct receipt *r = malloc(sizeof(*r));
	size_t len;
	int ret = 1;

	if (r == NULL || file_read_all(argv[2], 1 << 24, &data, &len,
	    &err) != 0) {
		fprintf(stderr, "receipttool: cannot read '%s'\n", argv[2]);
		free(r);
		return 1;
	}
	smimp_err_set(&err, 1, "cannot read the server key");
	if (receipt_parse(r, (char *)data, len, &err) == 0 &&
	    (argc < 4 || (server_key(argv[3], pk, sk) == 0 &&
	    receipt_verify(r, (char *)data, pk, &err) == 0))) {
		printf("ok\n");
		ret = 0;
	} else {
		printf("%s\n", err.msg);
	}
	free(data);
	free(r);
	return ret;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc >= 3 && strcmp(argv[1], "vectors") == 0)
		return vectors(argc, argv);
	if (argc >= 8 && strcmp(argv[1], "sign") == 0)
		return sign(argc, argv);
	if (argc >= 3 && strcmp(argv[1], "parse") == 0)
		return parse(argc, argv);
	fprintf(stderr, "usage: receipttool vectors [--generate] DIR | sign "
	    "SERVERKEY DOMAIN FROM MID FILE RCPTS [DATE] | parse FILE "
	    "[SERVERKEY]\n");
	return 2;
}
