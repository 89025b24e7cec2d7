/*
 * Fuzz a sealer's reading of the prekeys a recipient's server hands
 * out (POST .../prekeys/claim): the input is the recipient's pinned
 * identity log (taken as verified), a line "--", then the answer.  A
 * prekey is taken only when it verifies under the key the log gives
 * it, into that key's slot, once; the counts stay within the keys.
 */
#define _GNU_SOURCE	/* memmem */
#include <string.h>

#include "fuzz.h"
#include "identity.h"
#include "prekeys.h"

#define SEP	"\n--\n"

static void
claim(const struct idlog *log, const char *body, size_t len)
{
	static struct msg_recipient rcpt;
	struct prekeys_claim c;
	size_t i, n = 0;

	recipient_from_log(&rcpt, log);
	memset(&c, 0, sizeof(c));
	c.keys = calloc(1 + rcpt.ndevice_keys, sizeof(*c.keys));
	if (c.keys == NULL)
		abort();
	prekeys_claim_read(body, len, log, &rcpt, &c);
	for (i = 0; i < 1 + rcpt.ndevice_keys; i++)
		if (c.keys[i].id[0] != '\0') {
			n++;
			if (!prekey_id_valid(c.keys[i].id,
			    strlen(c.keys[i].id)))
				abort();
		}
	/* A key is out of prekeys or got one, and counted once. */
	if (n != c.taken || c.taken + c.exhausted > 1 + rcpt.ndevice_keys ||
	    memchr(c.warning, '\0', sizeof(c.warning)) == NULL)
		abort();
	prekeys_claim_release(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memmem(data, size, SEP, strlen(SEP));
	struct smimp_err err;
	struct idlog log;
	size_t llen;

	fuzz_init();
	if (sep == NULL)
		return 0;
	llen = (size_t)(sep - data) + 1;
	if (idlog_parse_verified(&log, data, llen, &err) != 0)
		return 0;
	claim(&log, (const char *)sep + strlen(SEP),
	    size - llen - strlen(SEP) + 1);
	idlog_release(&log);
	return 0;
}
