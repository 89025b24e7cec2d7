/*
 * sources.h - where a client comes from, as the per-source limits count
 * it, and how many connections are open from each source.
 *
 * A source is an IPv4 address, or the /64 an IPv6 address lies in: a
 * host is given a whole /64 and can pick a new address in it for every
 * connection, so counting IPv6 addresses one by one would limit nobody.
 * An IPv6 address that carries an IPv4 one is that IPv4 source:
 * IPv4-mapped (::ffff:a.b.c.d), NAT64's 64:ff9b::a.b.c.d, 6to4, Teredo.
 */
#ifndef SMIMPD_SOURCES_H
#define SMIMPD_SOURCES_H

#include <sys/socket.h>

#define SOURCE_STRLEN	48	/* "2001:db8:aaaa:bbbb::/64" and the like */

/*
 * The source of sa as text, into out: "192.0.2.7", "2001:db8:1:2::/64";
 * "?" and -1 for an address of another family.
 */
int source_name(const struct sockaddr *sa, char out[SOURCE_STRLEN]);

/* Open connections per source; safe from any thread. */
struct sources;

struct sources *sources_new(void);
void sources_free(struct sources *s);
/*
 * May one more connection from sa be taken, with limit per source?
 * Asked when it is accepted; sources_opened counts it once it is set
 * up, and sources_closed when it ends (the two always pair), so that a
 * connection the server drops before it starts is never counted.  Two
 * threads accepting at once may let a source past limit by one each.
 */
int sources_admit(struct sources *s, const struct sockaddr *sa,
    unsigned int limit);
void sources_opened(struct sources *s, const struct sockaddr *sa);
void sources_closed(struct sources *s, const struct sockaddr *sa);
/* Connections open from sa's source now. */
unsigned int sources_count(struct sources *s, const struct sockaddr *sa);

#endif
