/*
 * sites.h - the site a domain belongs to, as per-domain limits count
 * it: its registrable domain under the Public Suffix List
 * (a.evil.example and b.evil.example are evil.example; a.github.io
 * and b.github.io stay two).  Whoever holds a domain can make any
 * number of subdomains, each with a server key of its own, so limits
 * counted per domain would limit nobody.
 */
#ifndef SMIMPD_SITES_H
#define SMIMPD_SITES_H

#include "address.h"

/*
 * Load the list (the system's, else the one built into libpsl); once,
 * before any thread asks.  0, or -1 when there is none (then each
 * domain is its own site).
 */
int sites_init(void);
void sites_free(void);
/* domain's site into out (the domain itself when it has none). */
void site_of(const char *domain, char out[ADDRESS_DOMAIN_MAX + 1]);

#endif
