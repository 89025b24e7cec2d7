/*
 * http.h - smimpd's HTTP layer: one static route table, a dispatcher
 * that authenticates a request from its headers before it reads a byte
 * of the body, bodies streamed to a spool file in constant memory, and
 * one reply layer.
 *
 * A request goes through these steps, each on a thread of its own kind:
 *
 *	headers in	the event threads (libmicrohttpd, epoll) find the
 *			route; a worker authenticates (store reads, key
 *			fetches, signature checks may block) while the
 *			connection is suspended
 *	body in		the event threads write it to memory (small
 *			bodies) or a spool file, hashing as it comes
 *	handler		a worker compares the hash and runs the route's
 *			handler, which sets the reply
 *	reply out	the event threads send it, streaming files
 *
 * A request that fails authentication, has no route, or declares a body
 * too large gets its 4xx before the body is read.
 */
#ifndef SMIMPD_HTTP_H
#define SMIMPD_HTTP_H

#include <limits.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "address.h"
#include "idlog.h"
#include "reqsig.h"
#include "sources.h"
#include "util.h"

struct server;

enum auth_kind {
	AUTH_NONE,	/* anyone */
	AUTH_USER,	/* signed by a user of this domain */
	AUTH_SERVER,	/* signed by another domain's server key */
	AUTH_INVITE,	/* a live invitation token; the handler checks the
			   signature against the identity log in the body */
	AUTH_OWNER,	/* as AUTH_USER, or signed "recovery:ADDRESS" by that
			   user's recovery key, revoked or not */
	AUTH_ANY,	/* anyone who signs: as AUTH_OWNER, a user of another
			   domain (her key from her domain's directory), or
			   another domain's server; rate limited per
			   requester (directory lookups) */
};

enum body_kind {
	BODY_NONE,	/* a request with a body is refused unread */
	BODY_SMALL,	/* in memory, up to SMALL_BODY_MAX */
	BODY_FILE,	/* spooled to disk, up to max-message */
	BODY_LARGE,	/* in memory, up to LARGE_BODY_MAX: a policy */
};

#define SMALL_BODY_MAX	(256 * 1024)
#define LARGE_BODY_MAX	(4 * 1024 * 1024)
/*
 * A message body declared this small stays in memory (x->small) and goes
 * to the store as bytes, which it keeps inside its database: no file, no
 * fsync of its own, one shared commit.
 */
#define BODY_INLINE_MAX	(64 * 1024)
#define TARGET_MAX	2048	/* a longer request target gets 414 */

/* Route flags. */
/*
 * A path with one '*' matches any one segment there (no '/'), which
 * becomes x->rest: "/v1/users/ * /policy" (without the blanks).
 */
#define ROUTE_PREFIX	0x01	/* path is a prefix; the rest is x->rest */
#define ROUTE_ROOT	0x02	/* path is absolute, not under the base */
#define ROUTE_NONCE_LATER 0x04	/* the handler claims the nonce itself */
#define ROUTE_PER_SENDER 0x08	/* counts against the sender's rate */
/*
 * Which of a user's devices may call a user route (a device of scope
 * full may call every route that takes any device): with neither flag,
 * only the identity key (changing the log, publishing a policy).
 */
#define ROUTE_DEVICE_SEND	0x10	/* devices of scope full or send */
#define ROUTE_DEVICE_RECEIVE	0x20	/* devices of scope full or receive */
#define ROUTE_DEVICE_ANY	(ROUTE_DEVICE_SEND | ROUTE_DEVICE_RECEIVE)
/* Counts against the sender's rate-status (asking after a message). */
#define ROUTE_PER_STATUS	0x40
/*
 * An AUTH_ANY route whose handler counts requests against a limit of
 * its own, not against the directory lookups' (one-time prekeys).
 */
#define ROUTE_OWN_RATE		0x80

struct exchange;

struct route {
	const char *name;	/* the metrics' label: [a-z_]+ */
	const char *method;	/* GET also answers HEAD */
	const char *path;
	unsigned int flags;
	enum auth_kind auth;
	enum body_kind body;
	void (*handler)(struct exchange *x);
};

/* The table, in routes.c. */
extern const struct route routes[];
extern const size_t nroutes;

struct http_service;

struct exchange {
	struct server *srv;
	struct http_service *service;	/* whose connection it is */
	struct MHD_Connection *c;
	const struct route *route;
	char method[8];
	char target[TARGET_MAX + 1];	/* as sent and signed: path?query */
	char rest[TARGET_MAX + 1];	/* a prefix route's remainder */
	char source[48];		/* the client's address */
	char source_net[SOURCE_STRLEN];	/* ... as limits count it */
	int64_t started;		/* monotonic seconds */
	int64_t started_us;		/* the same in microseconds */
	int phase;			/* private to http.c */
	int answered;			/* a reply was queued */
	int too_long;			/* the target did not fit */
	int refused;			/* a failure counted against the
					   source (auth.c): no body read */

	/*
	 * Who signed: an address (of this domain, or with AUTH_ANY of
	 * another), or with signer_is_server the domain whose server key
	 * signed (AUTH_SERVER always, AUTH_ANY for "server:DOMAIN").
	 */
	char signer[ADDRESS_MAX + 1];
	int signer_is_server;
	char peer_base[512];		/* the signer's domain's base URL,
					   when it is another domain */
	unsigned char key[32];		/* the key the request verified with */
	int by_recovery;		/* AUTH_OWNER: the recovery key */
	/*
	 * A user of this domain signing with a device's key: its name and
	 * scope; "" (and IDDEV_FULL) when the identity key signed.
	 */
	char device[IDDEV_NAME_MAX + 1];
	enum iddev_scope scope;
	struct reqsig sig;
	int64_t nonce_expires;

	/* The body. */
	uint64_t declared;		/* Content-Length, or UINT64_MAX */
	uint64_t received;
	crypto_generichash_state hash;
	struct sbuf small;		/* BODY_SMALL, or a small BODY_FILE */
	int in_memory;			/* the body is in small */
	int spool_fd;			/* BODY_FILE, or -1 */
	char spool[PATH_MAX];
	int spool_failed;		/* a write to it failed: 503 */
	unsigned char body_hash[32];	/* of what arrived */

	/* The reply. */
	struct MHD_Response *resp;
	unsigned int status;

	struct header_copy *copies;	/* header values, trimmed */
	struct exchange *next;		/* the work queue */
};

/*
 * A spooled body is complete: fsync it, and have *fd read it from the
 * start instead.  0, or -1 with errno.
 */
int spool_reopen(const char *path, int *fd);

struct store_body;
/* The body that arrived, as the store takes it: bytes or the spool file. */
void exchange_body(struct exchange *x, struct store_body *body);

/*
 * A request header's value without its trailing blanks, or NULL.  The
 * value is x's until it ends.
 */
const char *exchange_header(struct exchange *x, const char *name);
/* A value of one of x's headers, without trailing blanks, the same way. */
const char *exchange_value(struct exchange *x, const char *value);

/*
 * Replies: a handler sets exactly one.  Errors are {"error":MSG}; every
 * JSON body is built with jansson.
 */
void reply_error(struct exchange *x, unsigned int status, const char *msg);
/* Takes the reference to body. */
void reply_json(struct exchange *x, unsigned int status, json_t *body);
void reply_bytes(struct exchange *x, unsigned int status, const char *type,
    const void *data, size_t len);
/* Streams len bytes of fd, which the reply closes. */
void reply_fd(struct exchange *x, unsigned int status, const char *type,
    int fd, uint64_t len);
/* One more header on the reply a handler set. */
void reply_header(struct exchange *x, const char *name, const char *value);
/* 429 (or status) with Retry-After. */
void reply_retry(struct exchange *x, unsigned int status, unsigned int secs,
    const char *msg);
/*
 * 503 for a store that did not answer; why goes to the log (log_store).
 * Every 503 tells the client to come back after UNAVAILABLE_RETRY_S
 * seconds (Retry-After), unless its handler said when.
 */
#define UNAVAILABLE_RETRY_S	5
void reply_unavailable(struct exchange *x, const struct smimp_err *err);

/*
 * Bind the listening socket and read the TLS certificate and key (as
 * root, if started so), then start and stop the HTTP service of srv.
 */
int http_listen(struct server *srv, struct smimp_err *err);
/* A TCP socket bound to sa and listening, into *fd (named so in errors). */
int listen_socket(const struct sockaddr_storage *sa, socklen_t len,
    const char *name, int backlog, int *fd, struct smimp_err *err);
int http_start(struct server *srv, struct smimp_err *err);
void http_stop(struct server *srv);
/*
 * SIGHUP: read the certificate and key again and start a new HTTP
 * service on the same socket with the settings as they are now; the
 * old one takes no new connection and stops once its own are done.
 * On failure the old one goes on as it was.
 */
int http_restart(struct server *srv, struct smimp_err *err);
/* Stop the replaced daemons that have no connection left (main thread). */
void http_reap(struct server *srv);
/*
 * A connection that proxy.c accepted, from sa (the client's address, as
 * a load balancer gave it): to the daemon serving now.  fd is closed on
 * failure (-1).
 */
int http_adopt(struct server *srv, int fd, const struct sockaddr *sa,
    socklen_t len);

#endif
