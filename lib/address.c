#include <ctype.h>
#include <string.h>

#include "address.h"
#include "exitcode.h"
#include "banned.h"

static int
local_char_ok(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '_' || c == '-';
}

static int
label_char_ok(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static int
has_non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
domain_normalize(const char *in, char out[ADDRESS_DOMAIN_MAX + 1],
    struct smimp_err *err)
{
	size_t len = strlen(in), i, label = 0;

	if (has_non_ascii(in))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid domain '%.80s': non-ASCII characters are not "
		    "allowed (write IDNs as A-labels, xn--...)", in);
	if (len == 0 || len > ADDRESS_DOMAIN_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid domain '%.80s': must be 1 to %d characters", in,
		    ADDRESS_DOMAIN_MAX);
	for (i = 0; i <= len; i++) {
		int c = tolower((unsigned char)in[i]);

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || out[i - 1] == '-' ||
			    out[i - label] == '-')
				return smimp_err_set(err, SMIMP_EXIT_USAGE,
				    "invalid domain '%.80s': bad label", in);
			label = 0;
		} else if (!label_char_ok(c)) {
			return smimp_err_set(err, SMIMP_EXIT_USAGE,
			    "invalid domain '%.80s': character '%c' not "
			    "allowed", in, isprint(c) ? c : '?');
		} else {
			label++;
		}
		out[i] = (char)c;
	}
	return 0;
}

int
address_normalize(const char *in, char out[ADDRESS_MAX + 1],
    struct smimp_err *err)
{
	const char *at = strchr(in, '@');
	size_t llen, i;

	if (has_non_ascii(in))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid address '%.80s': non-ASCII characters are not "
		    "allowed", in);
	if (at == NULL)
		at = strchr(in, '#');
	if (at == NULL || strchr(at + 1, '@') != NULL ||
	    strchr(at + 1, '#') != NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid address '%.80s': expected local@domain", in);
	llen = (size_t)(at - in);
	if (llen == 0 || llen > ADDRESS_LOCAL_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid address '%.80s': local part must be 1 to %d "
		    "characters", in, ADDRESS_LOCAL_MAX);
	for (i = 0; i < llen; i++) {
		int c = tolower((unsigned char)in[i]);

		if (!local_char_ok(c))
			return smimp_err_set(err, SMIMP_EXIT_USAGE,
			    "invalid address '%.80s': character '%c' not "
			    "allowed in the local part", in,
			    isprint(c) ? c : '?');
		out[i] = (char)c;
	}
	out[llen] = '@';
	return domain_normalize(at + 1, out + llen + 1, err);
}

const char *
address_domain(const char *address)
{
	const char *at = strchr(address, '@');

	return at != NULL ? at + 1 : address;
}

int
address_listed(const char (*list)[ADDRESS_MAX + 1], size_t n,
    const char *address)
{
	size_t i;

	for (i = 0; i < n && strcmp(list[i], address) != 0; i++)
		;
	return i < n;
}
