/*
 * peers.h - what other domains publish, as this server needs it: their
 * server keys (from {base}/v1/meta) and their users' identity logs,
 * fetched over HTTPS on a miss and cached for PEER_CACHE_TTL seconds.
 */
#ifndef SMIMPD_PEERS_H
#define SMIMPD_PEERS_H

#include <stddef.h>

#include "err.h"

#define PEER_CACHE_TTL	300
#define PEER_REFRESH_MIN 30	/* seconds between fetches of one key */

struct server;
struct idlog;

/*
 * Forget everything kept of other servers (a reload: the resolve map,
 * the CA bundle or the network may have changed), failures included.
 */
void peers_forget(void);

/* domain's server key and base URL (cap bytes), cached. */
int peer_key(struct server *srv, const char *domain, char *base, size_t cap,
    unsigned char key[32], struct smimp_err *err);
/*
 * The same, fetched anew whatever the cache holds, unless it was
 * fetched less than PEER_REFRESH_MIN seconds ago.
 */
int peer_key_refresh(struct server *srv, const char *domain, char *base,
    size_t cap, unsigned char key[32], struct smimp_err *err);
/*
 * sender's identity log as its own domain (at base) serves it,
 * verified, and the log of that very address; cached.  A fetch names
 * on_behalf (a user of this domain, or NULL), the one it is made for,
 * in Smimp-For: a sender who blocks this domain but allows that user
 * is answered (doc/PROTOCOL.md 8.11).
 */
int peer_log(struct server *srv, const char *domain, const char *base,
    const char *sender, const char *on_behalf, struct idlog *log,
    struct smimp_err *err);
/* Is sender's log in the cache (peer_log would not fetch it)? */
int peer_log_kept(const char *sender);

/*
 * The same, fetched anew whatever the cache holds (a stamp did not
 * verify under the cached log: the sender may have rotated its key),
 * unless it was fetched anew for the same purpose ("stamp", "lookup",
 * "introduction") less than PEER_REFRESH_MIN seconds ago: the log is
 * as fresh as that.
 */
int peer_log_refresh(struct server *srv, const char *domain,
    const char *base, const char *sender, const char *on_behalf,
    const char *purpose, struct idlog *log, struct smimp_err *err);

#endif
