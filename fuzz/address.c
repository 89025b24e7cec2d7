/*
 * Fuzz address and domain normalization, which every address another
 * party sends goes through (recipients, senders, signers, directory
 * lookups): what it takes comes out lowercase ASCII, within the
 * limits, with one '@', and normalizes to itself.
 */
#include <string.h>

#include "address.h"
#include "fuzz.h"

static void
check(const char *out, size_t max)
{
	size_t i, len = strlen(out);

	if (len == 0 || len > max)
		abort();
	for (i = 0; i < len; i++)
		if (!((out[i] >= 'a' && out[i] <= 'z') ||
		    (out[i] >= '0' && out[i] <= '9') ||
		    strchr(".-_@", out[i]) != NULL))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[ADDRESS_MAX + 1], again[ADDRESS_MAX + 1];
	char dom[ADDRESS_DOMAIN_MAX + 1], dagain[ADDRESS_DOMAIN_MAX + 1];
	struct smimp_err err;
	const char *at;
	char *v;

	fuzz_init();
	v = fuzz_str(data, size);
	if (address_normalize(v, out, &err) == 0) {
		check(out, ADDRESS_MAX);
		at = strchr(out, '@');
		if (at == NULL || strchr(at + 1, '@') != NULL ||
		    strcmp(address_domain(out), at + 1) != 0 ||
		    (size_t)(at - out) > ADDRESS_LOCAL_MAX ||
		    address_normalize(out, again, &err) != 0 ||
		    strcmp(out, again) != 0 ||
		    domain_normalize(at + 1, dom, &err) != 0 ||
		    strcmp(dom, at + 1) != 0)
			abort();
	}
	if (domain_normalize(v, dom, &err) == 0) {
		check(dom, ADDRESS_DOMAIN_MAX);
		if (strchr(dom, '@') != NULL || strchr(dom, '_') != NULL ||
		    domain_normalize(dom, dagain, &err) != 0 ||
		    strcmp(dom, dagain) != 0)
			abort();
	}
	free(v);
	return 0;
}
