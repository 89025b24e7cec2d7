/*
 * sourcetool - whom the server's limits count: the source of a
 * client's address and the table of connections open per source
 * (server/sources.c), the site of a peer's domain (server/sites.c).
 *
 *	sourcetool name ADDRESS...	print each address's source
 *	sourcetool site DOMAIN...	print each domain's site
 *	sourcetool table N SEED		N random opens and closes from many
 *					sources, checked against a plain count
 *
 * Exits 0, or 1 with the first difference on stderr.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sites.h"
#include "sources.h"
#include "xorshift.h"
#include "banned.h"

#define NSRC	3000	/* sources: the table grows past its first size */

static int
parse(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static int
names(int argc, char **argv)
{
	struct sockaddr_storage ss;
	char out[SOURCE_STRLEN];
	int i;

	for (i = 0; i < argc; i++) {
		if (parse(argv[i], &ss) != 0) {
			fprintf(stderr, "sourcetool: %s: not an address\n",
			    argv[i]);
			return 1;
		}
		(void)source_name((struct sockaddr *)&ss, out);
		printf("%s\n", out);
	}
	return 0;
}

static int
sites(int argc, char **argv)
{
	char out[ADDRESS_DOMAIN_MAX + 1];
	int i;

	if (sites_init() != 0)
		return 1;
	for (i = 0; i < argc; i++) {
		site_of(argv[i], out);
		printf("%s\n", out);
	}
	sites_free();
	return 0;
}

/*
 * Source i's address: even ones IPv4, odd ones IPv6; with host bits
 * that change from call to call, which the /64 must not see.
 */
static void
address_of(unsigned int i, uint64_t *rnd, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
	uint64_t host = xorshift_next(rnd);

	memset(ss, 0, sizeof(*ss));
	if (i % 2 == 0) {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u + i);
		return;
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_addr.s6_addr[0] = 0x20;
	s6->sin6_addr.s6_addr[1] = 0x01;
	/* 2001:db8::/32: 2001::/32 is Teredo's, a source of IPv4 ones. */
	s6->sin6_addr.s6_addr[2] = 0x0d;
	s6->sin6_addr.s6_addr[3] = 0xb8;
	s6->sin6_addr.s6_addr[6] = (unsigned char)(i >> 8);
	s6->sin6_addr.s6_addr[7] = (unsigned char)i;
	memcpy(s6->sin6_addr.s6_addr + 8, &host, 8);
}

static int
table(unsigned long n, uint64_t seed)
{
	static unsigned int want[NSRC];
	struct sockaddr_storage ss;
	struct sources *s = sources_new();
	uint64_t rnd = seed | 1;
	unsigned long k;
	unsigned int i, got;

	if (s == NULL)
		return 1;
	for (k = 0; k < n; k++) {
		/* Opens win at first, closes later: the table fills, then empties. */
		i = (unsigned int)(xorshift_next(&rnd) % NSRC);
		address_of(i, &rnd, &ss);
		if (xorshift_next(&rnd) % n > k || want[i] == 0) {
			sources_opened(s, (struct sockaddr *)&ss);
			want[i]++;
		} else {
			sources_closed(s, (struct sockaddr *)&ss);
			want[i]--;
		}
		for (i = 0; i < NSRC; i += k % 97 == 0 ? 1 : NSRC / 7) {
			address_of(i, &rnd, &ss);
			got = sources_count(s, (struct sockaddr *)&ss);
			if (got != want[i] || sources_admit(s,
			    (struct sockaddr *)&ss, want[i] + 1) != 1 ||
			    sources_admit(s, (struct sockaddr *)&ss,
			    want[i]) != 0) {
				fprintf(stderr, "sourcetool: after %lu: source "
				    "%u has %u, not %u\n", k + 1, i, got,
				    want[i]);
				sources_free(s);
				return 1;
			}
		}
	}
	sources_free(s);
	printf("ok %lu\n", n);
	return 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc >= 2 && strcmp(argv[1], "name") == 0)
		return names(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "site") == 0)
		return sites(argc - 2, argv + 2);
	if (argc == 4 && strcmp(argv[1], "table") == 0)
		return table(strtoul(argv[2], NULL, 10),
		    strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: sourcetool name ADDRESS...\n"
	    "       sourcetool site DOMAIN...\n"
	    "       sourcetool table N SEED\n");
	return 2;
}
