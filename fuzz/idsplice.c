/*
 * Fuzz what a server and a client do with identity records that come
 * after a log they hold: the input is a stored log (taken as verified
 * before, as the store keeps it), a line "--", then records posted to
 * follow it (POST .../identity) or the rest of a log fetched to extend
 * a pin.  The log a splice makes holds together and extends or
 * recovers from the stored one as idlog_check_follows says; reading
 * the whole after the stored log gives the same log as reading it all.
 */
#define _GNU_SOURCE	/* memmem */
#include <string.h>

#include "fuzz.h"
#include "idlog.h"

#define SEP	"\n--\n"

static void
same_log(const struct idlog *a, const struct idlog *b)
{
	if (a->n != b->n || a->raw_len != b->raw_len ||
	    memcmp(a->raw, b->raw, a->raw_len) != 0 ||
	    memcmp(a->head, b->head, sizeof(a->head)) != 0 ||
	    memcmp(a->fingerprint, b->fingerprint, FINGERPRINT_SIZE) != 0 ||
	    a->ndevices != b->ndevices || a->nlive != b->nlive)
		abort();
}

static void
follows(const struct idlog *next, const struct idlog *stored)
{
	struct idlog_follow how;
	struct smimp_err err;
	int64_t when;

	/* A recovery voids the stored records it cuts; else it extends. */
	if (idlog_check_follows(next, stored, &how, &err) == 0 &&
	    (how.recovery ? how.cut > stored->n || how.cut == 0 ||
	    how.voided != stored->n - how.cut ||
	    next->recs[how.cut].type != IDREC_RECOVER :
	    how.voided != 0 || !idlog_extends(next, stored)))
		abort();
	(void)idlog_voided_by(stored, next, &when);
	(void)idlog_voided_by(next, stored, &when);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memmem(data, size, SEP, strlen(SEP));
	struct idlog stored, next, whole, after;
	struct smimp_err err;
	size_t slen, rlen;
	const uint8_t *rec;

	fuzz_init();
	if (sep == NULL)
		return 0;
	slen = (size_t)(sep - data) + 1;
	rec = sep + strlen(SEP);
	rlen = size - (size_t)(rec - data);
	if (idlog_parse_verified(&stored, data, slen, &err) != 0)
		return 0;
	if (idlog_splice(&stored, rec, rlen, &next, &err) == 0) {
		if (next.n == 0 || next.nlive > IDLOG_MAX_DEVICES)
			abort();
		follows(&next, &stored);
		idlog_release(&next);
	}
	/* The stored log, then the records, as one log fetched after it. */
	{
		unsigned char *buf = malloc(slen + rlen + 1);

		if (buf == NULL)
			abort();
		memcpy(buf, data, slen);
		if (rlen > 0)
			memcpy(buf + slen, rec, rlen);
		if (idlog_parse_after(&after, buf, slen + rlen, &stored,
		    &err) == 0) {
			if (idlog_parse_verified(&whole, buf, slen + rlen,
			    &err) != 0)
				abort();
			same_log(&after, &whole);
			if (!idlog_extends(&after, &stored))
				abort();
			follows(&after, &stored);
			idlog_release(&whole);
			idlog_release(&after);
		}
		free(buf);
	}
	idlog_release(&stored);
	return 0;
}
