/*
 * agetool - the project's age layer as a plain age tool, for interop
 * tests with other age implementations:
 *	agetool -e -r age1...  [-a] < in > out
 *	agetool -e -p [-a] < in > out		(passphrase in AGETOOL_PASSPHRASE)
 *	agetool -d -i FILE < in > out		(FILE holds AGE-SECRET-KEY-1...)
 *	agetool -d -p < in > out
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "exitcode.h"
#include "fileio.h"

static int
die(const struct smimp_err *err)
{
	fprintf(stderr, "agetool: %s\n", err->msg);
	return err->code ? err->code : 1;
}

static int
encrypt(const char *rcpt, const char *pass, int armor)
{
	static unsigned char buf[1 << 16];
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	struct age_recipient r;
	struct age_encryptor *e;
	struct smimp_err err;
	struct age_out *out;
	ssize_t n;

	memset(&err, 0, sizeof(err));
	memset(&r, 0, sizeof(r));
	out = age_out_open_fd(STDOUT_FILENO, armor, &err);
	if (out == NULL)
		return die(&err);
	if (rcpt != NULL) {
		if (age_recipient_decode(rcpt, r.x25519_public) != 0) {
			fprintf(stderr, "agetool: bad recipient\n");
			return 2;
		}
		if (age_encrypt_begin(out, &r, 1, key, &err) != 0)
			return die(&err);
	} else if (age_encrypt_begin_passphrase(out, pass, strlen(pass), 10,
	    key, &err) != 0) {
		return die(&err);
	}
	e = age_encryptor_new(out, key, &err);
	if (e == NULL)
		return die(&err);
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
		if (age_encryptor_write(e, buf, (size_t)n, &err) != 0)
			return die(&err);
	if (n < 0 || age_encryptor_finish(e, &err) != 0 ||
	    age_out_close(out, &err) != 0)
		return die(&err);
	age_encryptor_free(e);
	age_out_free(out);
	return 0;
}

static int
decrypt(const char *idfile, const char *pass)
{
	static unsigned char buf[1 << 16];
	unsigned char sk[32];
	struct age_identity id;
	struct age_decryptor *d;
	struct smimp_err err;
	struct age_in *in;
	unsigned char *text;
	size_t len, got;
	int ret = -1;

	memset(&err, 0, sizeof(err));
	memset(&id, 0, sizeof(id));
	if (idfile != NULL) {
		if (file_read_all(idfile, 4096, &text, &len, &err) != 0)
			return die(&err);
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
			text[--len] = '\0';
		/* The last line holds the key (age-keygen writes comments). */
		ret = age_identity_decode(strrchr((char *)text, '\n') != NULL ?
		    strrchr((char *)text, '\n') + 1 : (char *)text, sk);
		free(text);
		if (ret != 0) {
			fprintf(stderr, "agetool: bad identity\n");
			return 2;
		}
		ret = -1;
		id.type = AGE_ID_X25519;
		id.x25519_secret = sk;
	} else {
		id.type = AGE_ID_SCRYPT;
		id.passphrase = pass;
		id.passphrase_len = strlen(pass);
	}
	in = age_in_open_fd(STDIN_FILENO, &err);
	if (in == NULL)
		return die(&err);
	d = age_decrypt_begin(in, &id, 1, &err);
	while (d != NULL) {
		if (age_decrypt_read(d, buf, sizeof(buf), &got, &err) != 0)
			break;
		if (got == 0) {
			ret = 0;
			break;
		}
		if (fd_write_all(STDOUT_FILENO, buf, got) != 0)
			break;
	}
	age_decrypt_free(d);
	age_in_free(in);
	return ret == 0 ? 0 : die(&err);
}

int
main(int argc, char **argv)
{
	const char *rcpt = NULL, *idfile = NULL, *pass = NULL;
	int c, enc = 0, dec = 0, armor = 0;

	if (sodium_init() < 0)
		return 1;
	while ((c = getopt(argc, argv, "edr:i:pa")) != -1) {
		switch (c) {
		case 'e': enc = 1; break;
		case 'd': dec = 1; break;
		case 'r': rcpt = optarg; break;
		case 'i': idfile = optarg; break;
		case 'p': pass = getenv("AGETOOL_PASSPHRASE"); break;
		case 'a': armor = 1; break;
		default: return 2;
		}
	}
	if (enc == dec || (enc && !rcpt == !pass) || (dec && !idfile == !pass)) {
		fprintf(stderr, "usage: agetool -e (-r RCPT | -p) [-a] | "
		    "-d (-i FILE | -p)\n");
		return 2;
	}
	return enc ? encrypt(rcpt, pass, armor) : decrypt(idfile, pass);
}
