/*
 * Fuzz the PROXY protocol header as smimpd reads it from a load
 * balancer.  What parses is checked: its length lies within the input
 * and the limit, every shorter prefix of it asks for more (a reader
 * that stops where the parser says never reads past the header), and
 * the address given is one of the two families, its length theirs.
 */
#include <netinet/in.h>

#include "fuzz.h"
#include "proxyheader.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_source src, part;
	size_t used, u, i;
	enum proxy_result r;

	fuzz_init();
	if (size > PROXY_HEADER_MAX + 64)
		return 0;
	r = proxy_header_parse(data, size, &used, &src);
	if (r != PROXY_OK)
		return 0;
	if (used == 0 || used > size || used > PROXY_HEADER_MAX)
		abort();
	if (proxy_header_parse(data, used, &u, &part) != PROXY_OK || u != used)
		abort();
	for (i = 0; i < used; i++)
		if (proxy_header_parse(data, i, &u, &part) != PROXY_MORE)
			abort();
	if (!(src.addr.ss_family == AF_UNSPEC ||
	    (src.addr.ss_family == AF_INET &&
	    src.addrlen == sizeof(struct sockaddr_in)) ||
	    (src.addr.ss_family == AF_INET6 &&
	    src.addrlen == sizeof(struct sockaddr_in6))))
		abort();
	return 0;
}
