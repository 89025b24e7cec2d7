/*
 * bounce.c - build and verify bounce notices (see bounce.h).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "bounce.h"
#include "banned.h"

#define BOUNCE_CONTEXT	"smimp/1 bounce"
#define SIGLINE		"signature: "

void
bounce_quote(const char *domain, const char *text, char *out, size_t cap)
{
	size_t o, i;
	int n;

	n = snprintf(out, cap, "%s said: ", domain);
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return;
	}
	o = (size_t)n;
	for (i = 0; text[i] != '\0' && i < BOUNCE_QUOTE_MAX && o + 1 < cap;
	    i++)
		out[o++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	out[o] = '\0';
}

static int
one_line(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

int
bounce_build(struct sbuf *sb, const struct bounce *b,
    const struct signer *signer)
{
	unsigned char sig[64];

	if (!one_line(b->server) || !one_line(b->message_id) ||
	    !one_line(b->recipients) || !one_line(b->date) ||
	    !one_line(b->reason))
		return -1;
	if (sbuf_addf(sb, BOUNCE_MAGIC "server: %s\nmessage-id: %s\n"
	    "recipients: %s\ndate: %s\nreason: %s\n", b->server,
	    b->message_id, b->recipients, b->date, b->reason) != 0)
		return -1;
	if (signer_sign_in_context(signer, BOUNCE_CONTEXT, sb->buf, sb->len,
	    sig) != 0)
		return -1;
	return sbuf_add(sb, SIGLINE, strlen(SIGLINE)) ||
	    sbuf_add_b64(sb, sig, 64) || sbuf_add(sb, "\n", 1) ? -1 : 0;
}

int
bounce_verify(const unsigned char *data, size_t len,
    const unsigned char pub[32])
{
	unsigned char sig[64];
	size_t i, start = 0;

	if (pub == NULL || len < strlen(BOUNCE_MAGIC) + 100 ||
	    memcmp(data, BOUNCE_MAGIC, strlen(BOUNCE_MAGIC)) != 0 ||
	    data[len - 1] != '\n')
		return 0;
	/* The signature is the last line and covers every line before. */
	for (i = len - 1; i > 0; i--) {
		if (data[i - 1] == '\n') {
			start = i;
			break;
		}
	}
	if (start == 0 || len - start < sizeof(SIGLINE) ||
	    memcmp(data + start, SIGLINE, sizeof(SIGLINE) - 1) != 0 ||
	    b64_decode_exact((const char *)data + start + sizeof(SIGLINE) - 1,
	    len - start - sizeof(SIGLINE), sig, 64) != 0)
		return 0;
	return signature_verify_in_context(BOUNCE_CONTEXT, data, start, sig,
	    pub) == 0;
}

/*
 * The value of the line at *pos that starts with name, NUL-terminated
 * in place; *pos past it.  NULL when the line is not that field or
 * holds a NUL.
 */
static const char *
take_line(char *buf, size_t len, size_t *pos, const char *name)
{
	size_t n = strlen(name), start = *pos;
	char *nl = memchr(buf + start, '\n', len - start);

	if (nl == NULL || (size_t)(nl - buf) - start < n ||
	    memcmp(buf + start, name, n) != 0 ||
	    memchr(buf + start, '\0', (size_t)(nl - buf) - start) != NULL)
		return NULL;
	*nl = '\0';
	*pos = (size_t)(nl - buf) + 1;
	return buf + start + n;
}

int
bounce_parse(const unsigned char *data, size_t len, struct bounce *b,
    char *storage, size_t cap)
{
	const char *magic;
	size_t pos = 0;
	int64_t when;

	if (cap <= len)
		return -1;
	memcpy(storage, data, len);
	storage[len] = '\0';
	/* The magic line, then each field in the order bounce_build writes. */
	magic = take_line(storage, len, &pos, "smimp-bounce/1");
	if (magic == NULL || *magic != '\0')
		return -1;
	b->server = take_line(storage, len, &pos, "server: ");
	b->message_id = take_line(storage, len, &pos, "message-id: ");
	b->recipients = take_line(storage, len, &pos, "recipients: ");
	b->date = take_line(storage, len, &pos, "date: ");
	b->reason = take_line(storage, len, &pos, "reason: ");
	if (b->server == NULL || b->message_id == NULL ||
	    b->recipients == NULL || b->date == NULL || b->reason == NULL ||
	    take_line(storage, len, &pos, SIGLINE) == NULL || pos != len ||
	    time_parse(b->date, strlen(b->date), &when) != 0)
		return -1;
	return 0;
}
