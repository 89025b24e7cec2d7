/*
 * options.c - what getopt_long refused, said in one line (options.h).
 *
 * After a '?', glibc's getopt_long leaves optopt at 0 for a long option
 * it does not know or cannot tell from another, and at the option's
 * value for a known one used wrongly; a long option's word is then
 * argv[optind - 1] (optind is past it).  A short option's word may
 * still be the current one ("-zq"), so it is named by optopt alone.
 */
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "banned.h"

/* How many long options NAME (LEN bytes) abbreviates, differing in value. */
static int
long_matches(const struct option *longopts, const char *name, size_t len,
    const struct option **match)
{
	int n = 0;

	*match = NULL;
	for (; longopts->name != NULL; longopts++) {
		if (strncmp(longopts->name, name, len) != 0)
			continue;
		if (strlen(longopts->name) == len) {
			*match = longopts;
			return 1;
		}
		if (*match == NULL || (*match)->val != longopts->val ||
		    (*match)->has_arg != longopts->has_arg)
			n++;
		if (*match == NULL)
			*match = longopts;
	}
	return n;
}

void
option_refused(char *buf, size_t size, char *const argv[],
    const char *optstring, const struct option *longopts)
{
	const char *word = optind > 0 ? argv[optind - 1] : NULL;
	const struct option *o = NULL;
	size_t len;
	int n;

	if (word != NULL && strncmp(word, "--", 2) == 0 && word[2] != '\0') {
		len = strcspn(word + 2, "=");
		n = long_matches(longopts, word + 2, len, &o);
		if (optopt == 0 || (n == 1 && o->val == optopt)) {
			if (n > 1)
				(void)snprintf(buf, size, "option '--%.*s' is "
				    "ambiguous", (int)len, word + 2);
			else if (n == 0 || optopt == 0)
				(void)snprintf(buf, size, "unknown option "
				    "'--%.*s'", (int)len, word + 2);
			else if (word[2 + len] == '=')
				(void)snprintf(buf, size, "option '--%s' takes "
				    "no argument", o->name);
			else
				(void)snprintf(buf, size, "option '--%s' needs "
				    "an argument", o->name);
			return;
		}
	}
	if (optopt != 0 && optopt != ':' && strchr(optstring, optopt) != NULL)
		(void)snprintf(buf, size, "option '-%c' needs an argument",
		    optopt);
	else if (optopt > 0x20 && optopt < 0x7f)
		(void)snprintf(buf, size, "unknown option '-%c'", optopt);
	else
		(void)snprintf(buf, size, "unknown option");
}
