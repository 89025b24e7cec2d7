/*
 * remote.h - talking to smimp servers: discovery of a domain's base
 * URL, signed requests, one reused HTTPS connection per process
 * (libcurl).  Overrides for tests and private deployments: a resolve
 * map (DOMAIN=HOST:PORT, like curl's --resolve), a CA bundle, and plain
 * HTTP allowed for named domains only.
 *
 * The relay in smimpd goes through here too, so a name in an address
 * must not reach inside the network it runs in: a domain that is an IP
 * address or a local name is refused, and so is a connection to any
 * address that is not public (loopback, private, link-local, ...),
 * checked on the address actually connected to, not on a lookup made
 * before.  Only the resolve map, which the operator wrote, lifts this.
 */
#ifndef SMIMP_REMOTE_H
#define SMIMP_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "signer.h"
#include "util.h"

/*
 * What an answer may hold, by kind: a request fails, without buffering
 * more, when the answer grows past the cap its caller gives.
 */
#define REMOTE_MAX_BODY		(64 * 1024 * 1024)	/* a message */
#define REMOTE_MAX_DISCOVERY	512		/* /.well-known/smimp.txt */
#define REMOTE_MAX_META		(8 * 1024)	/* {base}/v1/meta */
/* A mailbox listing has at most this many entries, oldest first. */
#define MAILBOX_PAGE		1000
#define REMOTE_MAX_LISTING	(MAILBOX_PAGE * 1024)
/* A status answer: a submission's, an acknowledgement's, a batch's. */
#define REMOTE_MAX_STATUS	(64 * 1024)
/* An identity log: IDLOG_MAX_BYTES (idlog.h). */

/*
 * A request body larger than this waits for the server's 100 Continue;
 * smaller ones go with the headers (a server keeps bodies up to this
 * size in memory).
 */
#define REMOTE_EXPECT_ABOVE	(64 * 1024)

/*
 * Time limits: 10 s to connect; an exchange that moves at most
 * REMOTE_SHORT_BYTES each way gets 20 s in all, under the servers' own
 * 30 s idle timeout, a larger one 300 s; either fails once it runs
 * slower than 1 KiB/s for 20 s.
 */
#define REMOTE_SHORT_BYTES	(1024 * 1024)
#define REMOTE_CONNECT_SECS	10
#define REMOTE_SHORT_SECS	20
#define REMOTE_LONG_SECS	300
#define REMOTE_SLOW_BYTES	1024
#define REMOTE_SLOW_SECS	20
/* How long a failed discovery is remembered, unless opts say less. */
#define REMOTE_NEGATIVE_SECS	60

/*
 * The client's settings: the overrides above, and how long a failed
 * discovery is remembered.  A command's come from its flags, environment
 * and config file (clientconf.h), smimpd's from its own config.  The
 * strings must outlive the remote made from them.
 */
struct remote_opts {
	const char *resolve;	/* "a.org=127.0.0.1:8443,b.net=..." */
	const char *cacert;	/* PEM bundle, or NULL for the system's */
	const char *allow_http;	/* "a.org,b.net": plain HTTP allowed */
	/* seconds a failed discovery is remembered; 0: REMOTE_NEGATIVE_SECS */
	unsigned int negative_secs;
};

struct remote;
struct remote *remote_new(const struct remote_opts *o, struct smimp_err *err);
void remote_free(struct remote *r);

/*
 * The API base URL of domain (https://.../path), by discovery: https
 * (http only where allowed) on domain itself or a subdomain of it, or on
 * the HOST:PORT the resolve map gives it.  The last success is reused;
 * a failure is remembered for a while per handle, so that a relay does
 * not ask a dead domain again for every queued message.
 */
int remote_base(struct remote *r, const char *domain, char *base,
    size_t cap, struct smimp_err *err);
/*
 * Forget a failed discovery of domain that is still remembered: the
 * next remote_base asks again (an attempt someone asked for now).
 */
void remote_forget(struct remote *r, const char *domain);
/*
 * The URL discovery of domain asks (https://DOMAIN/.well-known/...,
 * or at the HOST:PORT the resolve map gives it), into url.
 */
int remote_discovery_url(const struct remote *r, const char *domain,
    char *url, size_t cap, struct smimp_err *err);

struct remote_reply {
	long status;
	struct sbuf body;
	char error[256];	/* the "error" of a JSON error answer */
	/*
	 * The answer's Smimp-Requires header (what a directory says its
	 * user requires of the requester), blanks trimmed; "" when none,
	 * "?" when it is too long or repeated: malformed either way.
	 */
	char requires[32];
	/*
	 * The answer's Date header as sent (its clock, for a peer's
	 * check), at most 39 bytes; "" when none or too long.
	 */
	char date[40];
	/*
	 * The answer's Retry-After in seconds (delta-seconds, at most a
	 * year); 0 when none, or not a number.
	 */
	unsigned int retry_after;
};
void remote_reply_release(struct remote_reply *rep);
/*
 * An answer that is not the one hoped for, as an error about what:
 * temporary (SMIMP_EXIT_TEMPFAIL) for 5xx and 429, else SMIMP_EXIT_FAIL;
 * err->detail gets the status.  Always -1.
 */
int remote_reply_fail(const struct remote_reply *rep, const char *what,
    struct smimp_err *err);

/*
 * A request to base + path, signed by signer with secret when secret is
 * not NULL.  extra: more "Name: value" headers, NULL-terminated.  The
 * answer may hold at most cap bytes (REMOTE_MAX_*).  Fails (-1) when no
 * usable answer came: no connection, a timeout (SMIMP_EXIT_TEMPFAIL), a
 * refused address, an answer over cap, a redirect (SMIMP_EXIT_FAIL).
 */
int remote_request(struct remote *r, const char *method, const char *domain,
    const char *base, const char *path, const void *body, size_t len,
    const struct signer *signer, const char *const *extra, size_t cap,
    struct remote_reply *rep, struct smimp_err *err);
/*
 * The same with the body read from fd (len bytes from its start): read
 * once for the hash the signature covers, then again as it is sent, in
 * constant memory.
 */
int remote_request_fd(struct remote *r, const char *method,
    const char *domain, const char *base, const char *path, int fd,
    uint64_t len, const struct signer *signer, const char *const *extra,
    size_t cap, struct remote_reply *rep, struct smimp_err *err);

/*
 * The server key domain publishes in {base}/v1/meta (whose "domain" must
 * be domain): its bounce notices and relay requests are signed with it.
 */
int remote_server_key(struct remote *r, const char *domain,
    const char *base, unsigned char key[32], struct smimp_err *err);

#endif
