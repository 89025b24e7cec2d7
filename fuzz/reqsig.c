/*
 * Fuzz the signed-request headers as smimpd reads them.  The input is
 * lines: Smimp-Signer, Smimp-Date, Smimp-Nonce, Smimp-Signature and
 * Smimp-Body-Hash values, the method, authority and target, then
 * "Name: value" headers.  What parses is checked (without reading past
 * any value); a request signed over the same parts verifies, and its
 * signature headers parse back to what was signed.
 */
#include <string.h>

#include "fuzz.h"
#include "reqsig.h"

#define LINES	8
#define HEADERS	40

static unsigned char pub[32], sec[64];

/* The input cut into NUL-terminated lines, in place. */
static size_t
split(char *s, char **line, size_t max)
{
	size_t n = 0;
	char *nl;

	while (n < max && s != NULL) {
		line[n++] = s;
		nl = strchr(s, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		s = nl;
	}
	return n;
}

static size_t
headers(char **line, size_t n, struct reqsig_header *h)
{
	size_t i, k = 0;
	char *colon;

	for (i = LINES; i < n; i++) {
		colon = strchr(line[i], ':');
		if (colon == NULL)
			continue;
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		h[k].name = line[i];
		h[k++].value = colon;
	}
	return k;
}

/* Sign the parts as a client does, then read and check it as a server. */
static void
roundtrip(const struct reqsig *rs, char **line,
    const struct reqsig_header *h, size_t nh, int64_t now)
{
	char hex[REQSIG_HASH_STRLEN];
	struct reqsig out, back;
	struct smimp_err err;
	struct signer s;

	signer_secret(&s, rs->signer, sec);
	if (reqsig_sign(&out, &s, line[5], line[6], line[7], rs->body_hash,
	    h, nh, now, &err) != 0)
		return;
	sodium_bin2hex(hex, sizeof(hex), out.body_hash, 32);
	if (reqsig_parse(&back, out.signer, out.date, out.nonce,
	    out.signature, hex, &err) != 0 ||
	    memcmp(&back, &out, sizeof(out)) != 0 ||
	    reqsig_verify(&back, line[5], line[6], line[7], h, nh, pub, now,
	    &err) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reqsig_header h[HEADERS];
	char *v, *line[LINES + HEADERS], name[IDDEV_NAME_MAX + 1];
	const char *addr;
	struct smimp_err err;
	struct reqsig rs;
	int64_t now = 0;
	size_t n, nh;

	fuzz_init();
	if (pub[0] == 0) {
		unsigned char seed[32];

		memset(seed, 0x01, sizeof(seed));
		crypto_sign_seed_keypair(pub, sec, seed);
	}
	v = fuzz_str(data, size);
	n = split(v, line, LINES + HEADERS);
	if (n < LINES ||
	    reqsig_parse(&rs, line[0], line[1], line[2], line[3], line[4],
	    &err) != 0) {
		free(v);
		return 0;
	}
	nh = headers(line, n, h);
	if (reqsig_is_device_signer(rs.signer, name, &addr) &&
	    (addr < rs.signer || !iddev_name_valid(name)))
		abort();
	(void)time_parse(rs.date, strlen(rs.date), &now);
	(void)reqsig_verify(&rs, line[5], line[6], line[7], h, nh, pub, now,
	    &err);
	roundtrip(&rs, line, h, nh, now);
	free(v);
	return 0;
}
