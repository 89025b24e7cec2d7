/*
 * sites.c - a domain's site, through libpsl.  The list is read once;
 * asking it is read-only, so any thread may.
 */
#include <stdio.h>
#include <string.h>

#include <libpsl.h>

#include "sites.h"
#include "banned.h"

static psl_ctx_t *psl;		/* the system's list, loaded */
static const psl_ctx_t *list;	/* what site_of asks: psl or the built-in */

int
sites_init(void)
{
	if (list != NULL)
		return 0;
	/* The newest list on this system (the publicsuffix package). */
	psl = psl_latest(NULL);
	list = psl != NULL ? psl : psl_builtin();
	return list != NULL ? 0 : -1;
}

void
sites_free(void)
{
	psl_free(psl);
	psl = NULL;
	list = NULL;
}

void
site_of(const char *domain, char out[ADDRESS_DOMAIN_MAX + 1])
{
	const char *site = list != NULL ? psl_registrable_domain(list,
	    domain) : NULL;

	/* A public suffix itself, or no list: the domain stands alone. */
	(void)snprintf(out, ADDRESS_DOMAIN_MAX + 1, "%s", site != NULL ?
	    site : domain);
}
