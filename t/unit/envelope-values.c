/*
 * envelope-values - which header values the envelope parser accepts
 * (doc/PROTOCOL.md, 4.2: no control characters, no bidirectional
 * overrides or isolates, valid UTF-8).  A sender can sign anything, so
 * the parser, not smimp-seal, is what keeps them off a reader's screen.
 *
 *	envelope-values DIR HEX...
 *
 * DIR holds alice.pub and bob.pub (t/vectors); each HEX is a subject in
 * hexadecimal, put in an otherwise valid header from alice to bob.
 * Prints "accepted" or "refused: <why>" for each, one per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "exitcode.h"
#include "idlog.h"

static int
load(const char *dir, const char *name, struct idlog *log)
{
	struct smimp_err err;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (idlog_read_file(log, path, &err) != 0) {
		fprintf(stderr, "envelope-values: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/*
 * A header from alice to bob, as smimp-seal builds it, with the subject
 * put in after: the builder refuses what the parser must refuse too.
 */
static int
header(const struct idlog *from, const struct idlog *to, const char *subject,
    size_t subject_len, struct sbuf *h)
{
	static const char mark[] = "subject: @@@\n";
	struct seal_params p;
	struct msg_recipient r;
	struct smimp_err err;
	struct sbuf built;
	const char *at;

	memset(&p, 0, sizeof(p));
	memset(&r, 0, sizeof(r));
	snprintf(r.address, sizeof(r.address), "%s", to->address);
	memcpy(r.fingerprint, to->fingerprint, FINGERPRINT_SIZE);
	p.sender_log = from;
	p.rcpts = &r;
	p.nrcpts = 1;
	p.type = "email";
	p.subject = "@@@";
	p.date = 1767225600;
	sbuf_init(&built, 1 << 20);
	if (env_header_build(&built, &p, NULL, 0, &err) != 0 ||
	    (at = strstr(built.buf, mark)) == NULL) {
		fprintf(stderr, "envelope-values: cannot build a header\n");
		sbuf_release(&built);
		return -1;
	}
	(void)sbuf_add(h, built.buf, (size_t)(at - built.buf));
	(void)sbuf_addf(h, "subject: ");
	(void)sbuf_add(h, subject, subject_len);
	(void)sbuf_add(h, "\n", 1);
	(void)sbuf_add(h, at + strlen(mark), strlen(at + strlen(mark)));
	sbuf_release(&built);
	return 0;
}

int
main(int argc, char **argv)
{
	struct idlog alice, bob;
	struct smimp_err err;
	struct msg_meta meta;
	struct sbuf h;
	char subject[1024];
	size_t len, hlen;
	int i;

	if (argc < 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: envelope-values DIR HEX...\n");
		return 2;
	}
	if (load(argv[1], "alice.pub", &alice) != 0 ||
	    load(argv[1], "bob.pub", &bob) != 0)
		return 1;
	for (i = 2; i < argc; i++) {
		if (sodium_hex2bin((unsigned char *)subject, sizeof(subject),
		    argv[i], strlen(argv[i]), NULL, &len, NULL) != 0) {
			fprintf(stderr, "envelope-values: bad hex '%s'\n",
			    argv[i]);
			return 2;
		}
		sbuf_init(&h, 1 << 20);
		if (header(&alice, &bob, subject, len, &h) != 0)
			return 1;
		memset(&err, 0, sizeof(err));
		if (env_header_parse((const unsigned char *)h.buf, h.len, &hlen,
		    &meta, NULL, &err) == 0) {
			printf("accepted\n");
			msg_meta_release(&meta);
		} else {
			printf("refused: %s\n", err.msg);
		}
		sbuf_release(&h);
	}
	idlog_release(&alice);
	idlog_release(&bob);
	return 0;
}
