/*
 * Fuzz what a server reads of delivery stamps: the Smimp-Stamps value
 * of a submission (every stamp found again under its domain, and the
 * value written back as it came) and the recipient lists stamps are
 * made for (sorted lists sort to themselves; each domain's share of a
 * list is found).
 */
#include <string.h>

#include "fuzz.h"
#include "stamp.h"

static void
stamps_roundtrip(const char *v)
{
	char dom[ADDRESS_DOMAIN_MAX + 1], st[STAMP_STRLEN];
	const char *p = v, *eq, *end;
	struct sbuf sb;
	int n, k = 0;

	n = stamps_count(v);
	if (n < 0)
		return;
	sbuf_init(&sb, STAMPS_MAX + 1);
	for (; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || (size_t)(eq - p) > ADDRESS_DOMAIN_MAX)
			abort();
		memcpy(dom, p, (size_t)(eq - p));
		dom[eq - p] = '\0';
		if (stamps_find(v, dom, st) != 1 ||
		    strlen(st) != (size_t)(end - eq - 1) ||
		    memcmp(st, eq + 1, strlen(st)) != 0 ||
		    stamps_add(&sb, dom, st) != 0)
			abort();
		k++;
	}
	if (k != n || sb.len != strlen(v) || memcmp(sb.buf, v, sb.len) != 0)
		abort();
	sbuf_release(&sb);
}

static void
lists(const char *list)
{
	static char doms[256][ADDRESS_DOMAIN_MAX + 1];
	static char out[16384], again[16384];
	size_t n, i;

	if (stamp_recipients(list, out, sizeof(out)) == 0 &&
	    (stamp_recipients(out, again, sizeof(again)) != 0 ||
	    strcmp(out, again) != 0))
		abort();
	n = stamp_domains(list, doms, 256);
	if (n > 256)
		abort();
	for (i = 0; i < n; i++)
		if (stamp_recipients_at(list, doms[i], out, sizeof(out)) == 0 &&
		    (stamp_recipients(out, again, sizeof(again)) != 0 ||
		    strcmp(out, again) != 0))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char pub[32], hash[32];
	struct smimp_err err;
	char *v;

	fuzz_init();
	v = fuzz_str(data, size);
	stamps_roundtrip(v);
	lists(v);
	(void)stamp_date_check(v, 1795780800, STAMP_VALIDITY, &err);
	(void)stamp_verify(v, "a@example.org", "b@example.net", "id",
	    hash, "2026-11-27T12:00:00Z", pub, &err);
	free(v);
	return 0;
}
