/*
 * Fuzz the bounce notice reader (what a server leaves in a sender's
 * mailbox, as smimp-fetch reads it): a notice that parses must be
 * written back, signed, to the same lines, which parse to the same
 * fields and verify under the signing key; quoting its reason stays
 * one printable, capped line.
 */
#include <string.h>

#include "bounce.h"
#include "fuzz.h"

static unsigned char pub[32], sec[64];

static void
same(const struct bounce *a, const struct bounce *b)
{
	if (strcmp(a->server, b->server) != 0 ||
	    strcmp(a->message_id, b->message_id) != 0 ||
	    strcmp(a->recipients, b->recipients) != 0 ||
	    strcmp(a->date, b->date) != 0 || strcmp(a->reason, b->reason) != 0)
		abort();
}

static void
quote(const char *reason)
{
	char q[80 + BOUNCE_QUOTE_MAX];
	size_t i;

	bounce_quote("example.net", reason, q, sizeof(q));
	for (i = 0; q[i] != '\0'; i++)
		if (q[i] < 0x20 || q[i] >= 0x7f)
			abort();
	if (i > strlen("example.net said: ") + BOUNCE_QUOTE_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounce b, again;
	struct signer s;
	struct sbuf sb;
	char *st, *st2;
	size_t body;

	fuzz_init();
	if (pub[0] == 0) {
		unsigned char seed[32];

		memset(seed, 0x31, sizeof(seed));
		crypto_sign_seed_keypair(pub, sec, seed);
	}
	(void)bounce_verify(data, size, pub);
	st = malloc(size + 1);
	if (st == NULL)
		return 0;
	if (bounce_parse(data, size, &b, st, size + 1) != 0) {
		free(st);
		return 0;
	}
	quote(b.reason);
	/* A reason may hold a CR, which bounce_build writes no more. */
	if (strchr(b.server, '\r') != NULL ||
	    strchr(b.message_id, '\r') != NULL ||
	    strchr(b.recipients, '\r') != NULL ||
	    strchr(b.date, '\r') != NULL || strchr(b.reason, '\r') != NULL) {
		free(st);
		return 0;
	}
	signer_secret(&s, "server:example.net", sec);
	sbuf_init(&sb, size + 200);
	if (bounce_build(&sb, &b, &s) != 0 || bounce_verify(
	    (unsigned char *)sb.buf, sb.len, pub) != 1)
		abort();
	/* Every line up to the signature line's is as it came. */
	body = (size_t)(strstr(sb.buf, "\nsignature: ") - sb.buf) + 1;
	if (body > size || memcmp(sb.buf, data, body) != 0 ||
	    memcmp(data + body, "signature: ", 11) != 0)
		abort();
	st2 = malloc(sb.len + 1);
	if (st2 == NULL || bounce_parse((unsigned char *)sb.buf, sb.len,
	    &again, st2, sb.len + 1) != 0)
		abort();
	same(&b, &again);
	free(st2);
	free(st);
	sbuf_release(&sb);
	return 0;
}
