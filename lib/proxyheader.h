/*
 * proxyheader.h - the PROXY protocol header (versions 1 and 2) that a
 * load balancer such as haproxy puts before a connection's first byte
 * to say where the connection came from: "PROXY TCP4 192.0.2.7
 * 198.51.100.1 51234 443\r\n", or its binary form.
 *
 * Only a proxy that the server trusts may say so: the caller decides
 * whom to ask for a header.  The parser is strict: one header, whole,
 * of the forms the specification gives; anything else is refused.
 */
#ifndef SMIMP_PROXYHEADER_H
#define SMIMP_PROXYHEADER_H

#include <stddef.h>
#include <sys/socket.h>

/* Version 1 at most 107 bytes; version 2 here at most 16 + 1024. */
#define PROXY_HEADER_MAX	(16 + 1024)

enum proxy_result {
	PROXY_OK,	/* a whole header: *used bytes */
	PROXY_MORE,	/* what is there so far may begin one */
	PROXY_BAD	/* not a header, or not a valid one */
};

struct proxy_source {
	/*
	 * Where the client is; family AF_UNSPEC when the proxy speaks for
	 * itself (a version 2 LOCAL command, its health checks, or
	 * version 1 UNKNOWN): the connection's own address stands.
	 */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

/*
 * Read the header at the start of buf[0..len): PROXY_OK with *used
 * its length and src filled, PROXY_MORE, or PROXY_BAD.
 */
enum proxy_result proxy_header_parse(const unsigned char *buf, size_t len,
    size_t *used, struct proxy_source *src);

#endif
