/*
 * address.h - smimp addresses: local@domain, ASCII only, lowercase.
 * The local part is [a-z0-9._-]; the domain is ASCII (IDNs as A-labels).
 * SMIMP's local#domain spelling is accepted on input.
 */
#ifndef SMIMP_ADDRESS_H
#define SMIMP_ADDRESS_H

#include "err.h"

#define ADDRESS_LOCAL_MAX	64
#define ADDRESS_DOMAIN_MAX	253
#define ADDRESS_MAX		(ADDRESS_LOCAL_MAX + 1 + ADDRESS_DOMAIN_MAX)

/* Check and normalize an address into out (lowercase, '@'). */
int address_normalize(const char *in, char out[ADDRESS_MAX + 1],
    struct smimp_err *err);
/* Check and normalize a bare domain (no '@'). */
int domain_normalize(const char *in, char out[ADDRESS_DOMAIN_MAX + 1],
    struct smimp_err *err);
/* The domain part of a normalized address. */
const char *address_domain(const char *address);
/* Is address among the first n of list (normalized addresses)? */
int address_listed(const char (*list)[ADDRESS_MAX + 1], size_t n,
    const char *address);

#endif
