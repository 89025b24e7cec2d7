/*
 * hostile - what a hostile sender can make and smimp's own tools refuse
 * to: a message it signs whatever its header says, and an identity log
 * whose encryption key is of low order.  The tests check that readers
 * and sealers refuse them (t/1020-protocol-gaps.bats).
 *
 *	hostile pub ADDRESS HEX OUT
 *		write to OUT a genesis record for ADDRESS, signed by a new
 *		identity key, whose encryption key is the 32 bytes HEX
 *	hostile seal KEY PUB RCPT [EDIT...] < BODY > MESSAGE
 *		seal BODY from the identity KEY (log PUB) to the .pub RCPT
 *		as smimp-seal does, with the envelope header edited before
 *		it is signed.  Each EDIT is
 *		  NAME=HEX	the value of the first NAME line becomes the
 *				bytes HEX (NAME=: empty)
 *		  cc*N		N more cc lines after the to line, for
 *				cN@RCPT-DOMAIN with RCPT's fingerprint
 *		  +NAME=HEX	one more line, "NAME: " and the bytes HEX,
 *				at the end of the header
 *		  ^NAME=HEX	one more line, before padding and sender-log
 *				(a part's)
 *		  !N		after signing, flip a bit of byte N of the
 *				plaintext after the header (of the parts'
 *				bytes, the body's or the padding's)
 *		  %none		no padding and no padding line, as before
 *				padding existed
 *		  %extra=N	N more zero bytes of padding than the bucket
 *				needs (T counts them)
 *		  %byte=N	byte N of the padding is 0x01
 *		  %len=N	T says the padding is N bytes long
 *		The header has every field, subject and in-reply-to
 *		included, so that each can be edited.
 *
 * Its messages are padded as smimp-seal pads them (doc/PROTOCOL.md 9),
 * properly signed and encrypted: only the header's content, or the
 * padding's, is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "envelope.h"
#include "exitcode.h"
#include "fileio.h"
#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "padding.h"
#include "util.h"

#include "sealpair.h"

#define BODY_MAX	(1 << 20)
#define HB_MAX		(2 * MSG_MAX_HEADER + 2 * BODY_MAX)	/* H||B||P||T */

static int
fail(const char *what, const struct smimp_err *err)
{
	fprintf(stderr, "hostile: %s%s%s\n", what, err != NULL ? ": " : "",
	    err != NULL ? err->msg : "");
	return 1;
}

static int
make_pub(const char *address, const char *hex, const char *out)
{
	unsigned char id_pk[32], id_sk[64], rec_pk[32], rec_sk[64], enc[32];
	struct smimp_err err;
	struct idlog log;
	size_t len;

	memset(&err, 0, sizeof(err));
	if (sodium_hex2bin(enc, sizeof(enc), hex, strlen(hex), NULL, &len,
	    NULL) != 0 || len != sizeof(enc))
		return fail("the key is not 32 bytes of hex", NULL);
	crypto_sign_keypair(id_pk, id_sk);
	crypto_sign_keypair(rec_pk, rec_sk);
	if (idlog_genesis(&log, address, id_sk, enc, rec_pk, time_now(),
	    &err) != 0)
		return fail("cannot make the genesis", &err);
	if (file_write_atomic(out, log.raw, log.raw_len, 0644, 0, &err) != 0)
		return fail("cannot write", &err);
	idlog_release(&log);
	return 0;
}

/* Replace the value of the first "name: " line of h with the bytes hex. */
static int
edit_value(struct sbuf *h, const char *name, size_t name_len,
    const char *hex)
{
	unsigned char val[MSG_MAX_HEADER];
	struct sbuf out;
	char *line = h->buf, *nl;
	size_t len;

	if (sodium_hex2bin(val, sizeof(val), hex, strlen(hex), NULL, &len,
	    NULL) != 0)
		return -1;
	for (;;) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			return -1;
		if (strncmp(line, name, name_len) == 0 &&
		    strncmp(line + name_len, ": ", 2) == 0)
			break;
		line = nl + 1;
	}
	sbuf_init(&out, HB_MAX);
	if (sbuf_add(&out, h->buf, (size_t)(line - h->buf) + name_len + 2) ||
	    sbuf_add(&out, val, len) ||
	    sbuf_add(&out, nl, h->len - (size_t)(nl - h->buf))) {
		sbuf_release(&out);
		return -1;
	}
	sbuf_release(h);
	*h = out;
	return 0;
}

/* The line "name: " and the bytes hex, last in the header h. */
static int
append_line(struct sbuf *h, const char *name, size_t name_len,
    const char *hex)
{
	unsigned char val[MSG_MAX_HEADER];
	size_t len;

	/* h is the header alone: it ends with its empty line. */
	if (sodium_hex2bin(val, sizeof(val), hex, strlen(hex), NULL, &len,
	    NULL) != 0 || h->len < 2)
		return -1;
	h->len--;
	return sbuf_add(h, name, name_len) || sbuf_add(h, ": ", 2) ||
	    sbuf_add(h, val, len) || sbuf_add(h, "\n\n", 2) ? -1 : 0;
}

/*
 * The line "name: " and the bytes hex, right before sender-log (and
 * the padding line before it): where part lines go.
 */
static int
insert_line(struct sbuf *h, const char *name, size_t name_len,
    const char *hex)
{
	unsigned char val[MSG_MAX_HEADER];
	struct sbuf out;
	char *at;
	size_t len;

	at = strstr(h->buf, "\npadding: ");
	if (at == NULL)
		at = strstr(h->buf, "\nsender-log: ");
	if (at == NULL || sodium_hex2bin(val, sizeof(val), hex, strlen(hex),
	    NULL, &len, NULL) != 0)
		return -1;
	at++;
	sbuf_init(&out, HB_MAX);
	if (sbuf_add(&out, h->buf, (size_t)(at - h->buf)) ||
	    sbuf_add(&out, name, name_len) || sbuf_add(&out, ": ", 2) ||
	    sbuf_add(&out, val, len) || sbuf_add(&out, "\n", 1) ||
	    sbuf_add(&out, at, h->len - (size_t)(at - h->buf))) {
		sbuf_release(&out);
		return -1;
	}
	sbuf_release(h);
	*h = out;
	return 0;
}

/* n more cc lines after the first to line. */
static int
add_cc(struct sbuf *h, const struct idlog *rcpt, unsigned long n)
{
	char fp[FINGERPRINT_STRLEN], *at;
	struct sbuf out;
	unsigned long i;

	at = strstr(h->buf, "\nto: ");
	if (at == NULL || (at = strchr(at + 1, '\n')) == NULL)
		return -1;
	at++;
	fingerprint_format(rcpt->fingerprint, fp);
	sbuf_init(&out, HB_MAX);
	if (sbuf_add(&out, h->buf, (size_t)(at - h->buf)))
		goto fail;
	for (i = 1; i <= n; i++)
		if (sbuf_addf(&out, "cc: c%lu@%s %s\n", i,
		    address_domain(rcpt->address), fp))
			goto fail;
	if (sbuf_add(&out, at, h->len - (size_t)(at - h->buf)))
		goto fail;
	sbuf_release(h);
	*h = out;
	return 0;
fail:
	sbuf_release(&out);
	return -1;
}

/* The signature over H || B, as doc/PROTOCOL.md 4.2 defines it. */
static void
sign(const unsigned char *hb, size_t len, const struct secret_key *sk,
    unsigned char sig[ENV_SIG_SIZE])
{
	unsigned char leaf[ENV_LEAF_SIZE], root[32];
	struct env_root r;
	size_t off = 0, n;

	env_root_init(&r);
	do {
		n = len - off < AGE_CHUNK_SIZE ? len - off : AGE_CHUNK_SIZE;
		env_leaf(leaf, hb + off, n);
		env_root_add(&r, leaf);
		off += n;
	} while (off < len);
	env_root_final(&r, len, root);
	env_sign(sig, root, sk->identity_secret);
}

/* What the % edits ask of the padding. */
struct pad_edits {
	int none;
	unsigned long extra;
	long byte;		/* -1: none */
	long long len;		/* -1: the length written */
};

static int
pad_edit(const char *arg, struct pad_edits *pe)
{
	if (strcmp(arg, "%none") == 0)
		pe->none = 1;
	else if (strncmp(arg, "%extra=", 7) == 0)
		pe->extra = strtoul(arg + 7, NULL, 10);
	else if (strncmp(arg, "%byte=", 6) == 0)
		pe->byte = strtol(arg + 6, NULL, 10);
	else if (strncmp(arg, "%len=", 5) == 0)
		pe->len = strtoll(arg + 5, NULL, 10);
	else
		return -1;
	return 0;
}

/* P || T after H || B in h, as a sealer writes them, then the edits. */
static int
pad(struct sbuf *h, const struct pad_edits *pe)
{
	static const unsigned char zero[4096];
	unsigned char trailer[PAD_TRAILER];
	struct smimp_err err;
	struct pad_tail t;
	size_t start = h->len, n;
	uint64_t z;

	if (pe->none)
		return 0;
	if (pad_tail_begin(&t, h->len + ENV_SIG_SIZE, &err) != 0)
		return -1;
	z = t.zeros + pe->extra;
	for (; z > 0; z -= n) {
		n = z < sizeof(zero) ? (size_t)z : sizeof(zero);
		if (sbuf_add(h, zero, n) != 0)
			return -1;
	}
	if (pe->byte >= 0) {
		if ((size_t)pe->byte >= h->len - start)
			return -1;
		h->buf[start + (size_t)pe->byte] = 0x01;
	}
	pad_trailer_put(trailer, pe->len >= 0 ? (uint64_t)pe->len :
	    (uint64_t)(h->len - start));
	return sbuf_add(h, trailer, sizeof(trailer));
}

static int
seal(char **argv, int argc)
{
	static unsigned char body[BODY_MAX];
	static struct sealpair sp;
	unsigned char key[AGE_PAYLOAD_KEY_SIZE], sig[ENV_SIG_SIZE];
	struct age_recipient ar[2];
	struct age_encryptor *enc;
	struct smimp_err err;
	struct age_out *out;
	struct sbuf h;
	struct pad_edits pe = { 0, 0, -1, -1 };
	size_t blen = 0, hlen, flip = (size_t)-1;
	ssize_t got;
	int i;

	memset(&err, 0, sizeof(err));
	if (sealpair_load(&sp, argv[0], argv[1], argv[2], &err) != 0)
		return fail("cannot load the identities", &err);
	while ((got = read(STDIN_FILENO, body + blen, BODY_MAX - blen)) > 0)
		blen += (size_t)got;
	sp.p.subject = "hostile";
	sp.p.in_reply_to = "answered@example.org";
	for (i = 3; i < argc; i++)
		if (argv[i][0] == '%' && pad_edit(argv[i], &pe) != 0)
			return fail("cannot apply the edit", NULL);
	sp.p.no_padding = pe.none;
	sbuf_init(&h, HB_MAX);
	if (env_header_build(&h, &sp.p, NULL, 0, &err) != 0)
		return fail("cannot build a header", &err);
	for (i = 3; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		int bad;

		if (argv[i][0] == '%')
			continue;
		if (strncmp(argv[i], "cc*", 3) == 0)
			bad = add_cc(&h, &sp.to, strtoul(argv[i] + 3, NULL,
			    10));
		else if (argv[i][0] == '!')
			bad = (flip = strtoul(argv[i] + 1, NULL, 10)) ==
			    (size_t)-1;
		else if (argv[i][0] == '^')
			bad = eq == NULL || insert_line(&h, argv[i] + 1,
			    (size_t)(eq - argv[i] - 1), eq + 1);
		else if (argv[i][0] == '+')
			bad = eq == NULL || append_line(&h, argv[i] + 1,
			    (size_t)(eq - argv[i] - 1), eq + 1);
		else
			bad = eq == NULL || edit_value(&h, argv[i],
			    (size_t)(eq - argv[i]), eq + 1);
		if (bad)
			return fail("cannot apply the edit", NULL);
	}
	hlen = h.len;
	if (sbuf_add(&h, body, blen) != 0 || pad(&h, &pe) != 0 ||
	    (flip != (size_t)-1 && flip >= h.len - hlen))
		return fail("message too large, or an edit past its end",
		    NULL);
	sign((unsigned char *)h.buf, h.len, &sp.sk, sig);
	/* Changed after it was signed: what a recipient could do. */
	if (flip != (size_t)-1)
		h.buf[hlen + flip] ^= 0x01;
	memset(ar, 0, sizeof(ar));
	memcpy(ar[0].x25519_public, sp.to.encryption_key, 32);
	memcpy(ar[1].x25519_public, sp.from.encryption_key, 32);
	out = age_out_open_fd(STDOUT_FILENO, 0, &err);
	if (out == NULL || age_encrypt_begin(out, ar, 2, key, &err) != 0 ||
	    (enc = age_encryptor_new(out, key, &err)) == NULL ||
	    age_encryptor_write(enc, h.buf, h.len, &err) != 0 ||
	    age_encryptor_write(enc, sig, sizeof(sig), &err) != 0 ||
	    age_encryptor_finish(enc, &err) != 0 ||
	    age_out_close(out, &err) != 0)
		return fail("cannot encrypt", &err);
	age_encryptor_free(enc);
	age_out_free(out);
	sbuf_release(&h);
	sealpair_release(&sp);
	return 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 5 && strcmp(argv[1], "pub") == 0)
		return make_pub(argv[2], argv[3], argv[4]);
	if (argc >= 5 && strcmp(argv[1], "seal") == 0)
		return seal(argv + 2, argc - 2);
	fprintf(stderr, "usage: hostile pub ADDRESS HEX OUT\n"
	    "       hostile seal KEY PUB RCPT [NAME=HEX | cc*N | +NAME=HEX | "
	    "^NAME=HEX | !N | %%none | %%extra=N | %%byte=N | %%len=N]...\n");
	return 2;
}
