/*
 * peers.c - the cache of other servers' keys and their users' logs (see
 * peers.h).  A small table with expiry; a miss costs one HTTPS request
 * on a connection made for it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "idlog.h"
#include "peers.h"
#include "remote.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

#define CACHE_SLOTS	256
/*
 * What the cache holds in all: a peer may serve logs of up to 1 MiB
 * (IDLOG_MAX_BYTES) for as many made-up users as it likes, and each
 * would otherwise stay 300 seconds.  The entries that expire first
 * make room.
 */
#define CACHE_BYTES	(16 * 1024 * 1024)

struct cache_entry {
	char key[ADDRESS_MAX + 16];
	unsigned char *value;
	size_t len;
	int64_t expires;
};
static struct cache_entry cache[CACHE_SLOTS];
static size_t cache_bytes;	/* the values' lengths, under cache_mu */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* Empty e (under cache_mu). */
static void
cache_drop(struct cache_entry *e)
{
	cache_bytes -= e->value != NULL ? e->len : 0;
	free(e->value);
	e->value = NULL;
	e->len = 0;
}

/* Drop entries, those that expire first, until len more bytes fit. */
static void
cache_room(size_t len, const struct cache_entry *keep)
{
	struct cache_entry *first;
	size_t i;

	while (cache_bytes + len > CACHE_BYTES) {
		first = NULL;
		for (i = 0; i < CACHE_SLOTS; i++)
			if (cache[i].value != NULL && &cache[i] != keep &&
			    (first == NULL || cache[i].expires < first->expires))
				first = &cache[i];
		if (first == NULL)
			return;
		cache_drop(first);
	}
}

void
peers_forget(void)
{
	size_t i;

	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < CACHE_SLOTS; i++)
		cache_drop(&cache[i]);
	pthread_mutex_unlock(&cache_mu);
}

/* The entry that holds key, or NULL (under cache_mu). */
static struct cache_entry *
cache_find(const char *key)
{
	size_t i;

	for (i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].value != NULL && strcmp(cache[i].key, key) == 0)
			return &cache[i];
	return NULL;
}

/* A copy of the cached value (malloc'd) or NULL. */
static unsigned char *
cache_get(const char *key, size_t *len)
{
	struct cache_entry *e;
	unsigned char *out = NULL;

	pthread_mutex_lock(&cache_mu);
	e = cache_find(key);
	if (e != NULL && e->expires > time_now() &&
	    (out = malloc(e->len + 1)) != NULL) {
		memcpy(out, e->value, e->len);
		*len = e->len;
	}
	pthread_mutex_unlock(&cache_mu);
	return out;
}

/* Is key cached and not expired?  As cache_get, without the copy. */
static int
cache_has(const char *key)
{
	struct cache_entry *e;
	int has;

	pthread_mutex_lock(&cache_mu);
	e = cache_find(key);
	has = e != NULL && e->expires > time_now();
	pthread_mutex_unlock(&cache_mu);
	return has;
}

/* How many seconds ago key was cached; -1 if it is not. */
static int64_t
cache_age(const char *key)
{
	struct cache_entry *e;
	int64_t age = -1;

	pthread_mutex_lock(&cache_mu);
	e = cache_find(key);
	if (e != NULL)
		age = time_now() - (e->expires - PEER_CACHE_TTL);
	pthread_mutex_unlock(&cache_mu);
	return age;
}

static void
cache_put(const char *key, const unsigned char *value, size_t len)
{
	struct cache_entry *slot = NULL;
	size_t i;

	if (strlen(key) >= sizeof(cache[0].key) || len > CACHE_BYTES / 4)
		return;
	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].value != NULL && strcmp(cache[i].key, key) == 0) {
			slot = &cache[i];
			break;
		}
		if (slot == NULL || cache[i].value == NULL ||
		    (slot->value != NULL && cache[i].expires < slot->expires))
			slot = &cache[i];
	}
	cache_drop(slot);
	cache_room(len, slot);
	slot->value = malloc(len + 1);
	if (slot->value != NULL) {
		memcpy(slot->value, value, len);
		slot->len = len;
		cache_bytes += len;
		memcpy(slot->key, key, strlen(key) + 1);
		slot->expires = time_now() + PEER_CACHE_TTL;
	}
	pthread_mutex_unlock(&cache_mu);
}

/*
 * Fetches under way, from the workers that authenticate and deliver.
 * Two servers that fetch from each other (a lookup by a user of one
 * makes it fetch her log from the other, whose own users do the same)
 * must not each hold every worker waiting on the other: at most half
 * the workers wait on other servers, and a fetch past that fails at
 * once (a temporary failure), so the other half always serves what the
 * peers ask.  What they ask in return (a log, /v1/meta) fetches nothing
 * that waits on a worker here, so every wait ends.  One domain may hold
 * half of those (at least one): requests that name a domain that never
 * answers cannot take every fetch from the domains that do, and a peer
 * relaying with its usual four workers finds room for each.
 */
static pthread_mutex_t fetch_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned int fetching;
static char fetch_domains[WORKERS_MAX / 2][ADDRESS_DOMAIN_MAX + 1];

/* The slot that the fetch holds, for fetch_end; -1 when over a cap. */
static int
fetch_begin(const struct server *srv, const char *domain,
    struct smimp_err *err)
{
	unsigned int cap = srv->cfg.workers / 2 > 0 ? srv->cfg.workers / 2 :
	    1, per_domain = cap / 2 > 0 ? cap / 2 : 1, same = 0, i;
	char site[ADDRESS_DOMAIN_MAX + 1];
	int slot = -1;

	if (cap > WORKERS_MAX / 2)
		cap = WORKERS_MAX / 2;
	/* Per site: subdomains of one that never answers hold no more. */
	site_of(domain, site);
	pthread_mutex_lock(&fetch_mu);
	for (i = 0; i < WORKERS_MAX / 2; i++)
		same += strcmp(fetch_domains[i], site) == 0;
	if (fetching >= cap)
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "%u requests to "
		    "other servers under way already", fetching);
	else if (same >= per_domain)
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "%u requests to "
		    "%s under way already", same, site);
	else {
		for (i = 0; fetch_domains[i][0] != '\0'; i++)
			;
		(void)snprintf(fetch_domains[i], sizeof(fetch_domains[i]),
		    "%s", site);
		fetching++;
		slot = (int)i;
	}
	pthread_mutex_unlock(&fetch_mu);
	return slot;
}

static void
fetch_end(int slot)
{
	pthread_mutex_lock(&fetch_mu);
	fetch_domains[slot][0] = '\0';
	fetching--;
	pthread_mutex_unlock(&fetch_mu);
}

/* A connection for one fetch from domain, within the caps, with the
   slot it holds in *slot; fetch_done after. */
static struct remote *
fetch_remote(const struct server *srv, const char *domain, int *slot,
    struct smimp_err *err)
{
	struct remote *r;

	if ((*slot = fetch_begin(srv, domain, err)) < 0)
		return NULL;
	r = server_remote(srv, err);
	if (r == NULL)
		fetch_end(*slot);
	return r;
}

static void
fetch_done(struct remote *r, int slot)
{
	remote_free(r);
	fetch_end(slot);
}

/* domain's base URL and server key over r, into the cache. */
static int
fetch_key_on(struct remote *r, const char *domain, char *base, size_t cap,
    unsigned char key[32], struct smimp_err *err)
{
	char ckey[ADDRESS_MAX + 16];
	unsigned char both[32 + 512];
	size_t blen;

	if (remote_base(r, domain, base, cap, err) != 0 ||
	    remote_server_key(r, domain, base, key, err) != 0)
		return -1;
	/* Cached: the key, then the base URL. */
	blen = strlen(base);
	if (blen < sizeof(both) - 32) {
		memcpy(both, key, 32);
		memcpy(both + 32, base, blen);
		(void)snprintf(ckey, sizeof(ckey), "key:%s", domain);
		cache_put(ckey, both, 32 + blen);
	}
	return 0;
}

static int
fetch_key(struct server *srv, const char *domain, char *base, size_t cap,
    unsigned char key[32], struct smimp_err *err)
{
	struct remote *r;
	int ret, slot;

	r = fetch_remote(srv, domain, &slot, err);
	if (r == NULL)
		return -1;
	ret = fetch_key_on(r, domain, base, cap, key, err);
	fetch_done(r, slot);
	return ret;
}

/* domain's key and base URL (cap bytes) from the cache: 1, or 0. */
static int
key_cached(const char *domain, char *base, size_t cap,
    unsigned char key[32])
{
	char ckey[ADDRESS_MAX + 16];
	unsigned char *cached;
	size_t clen;
	int hit;

	(void)snprintf(ckey, sizeof(ckey), "key:%s", domain);
	cached = cache_get(ckey, &clen);
	hit = cached != NULL && clen > 32 && clen - 32 < cap;
	if (hit) {
		memcpy(key, cached, 32);
		memcpy(base, cached + 32, clen - 32);
		base[clen - 32] = '\0';
	}
	free(cached);
	return hit;
}

int
peer_key(struct server *srv, const char *domain, char *base, size_t cap,
    unsigned char key[32], struct smimp_err *err)
{
	if (key_cached(domain, base, cap, key))
		return 0;
	return fetch_key(srv, domain, base, cap, key, err);
}

/*
 * Junk signed in a peer's name must not make this server hammer that
 * peer: what ckey names (a key, a log) is fetched anew at most once in
 * PEER_REFRESH_MIN seconds.  0 when it may be now (and is noted so).
 */
static int
refresh_allowed(const char *ckey, const char *what, struct smimp_err *err)
{
	int64_t age = cache_age(ckey);

	if (age >= 0 && age < PEER_REFRESH_MIN)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "%s was fetched "
		    "anew %lld s ago", what, (long long)age);
	cache_put(ckey, (const unsigned char *)"", 0);
	return 0;
}

/* May domain's key be fetched anew now?  0 if so (noted), else -1. */
static int
key_refresh_allowed(const char *domain, struct smimp_err *err)
{
	char ckey[ADDRESS_MAX + 16], what[ADDRESS_MAX + 16];

	(void)snprintf(ckey, sizeof(ckey), "refresh:%s", domain);
	(void)snprintf(what, sizeof(what), "%s's key", domain);
	return refresh_allowed(ckey, what, err);
}

int
peer_key_refresh(struct server *srv, const char *domain, char *base,
    size_t cap, unsigned char key[32], struct smimp_err *err)
{
	if (key_refresh_allowed(domain, err) != 0)
		return -1;
	return fetch_key(srv, domain, base, cap, key, err);
}

/* GET path from domain (at base), signed by this server: 0 with *rep. */
static int
get_signed(struct server *srv, const char *domain, const char *base,
    const char *path, const char *const *extra, struct remote_reply *rep,
    struct smimp_err *err)
{
	struct remote *r;
	int ret, slot;

	if ((r = fetch_remote(srv, domain, &slot, err)) == NULL)
		return -1;
	ret = remote_request(r, "GET", domain, base, path, NULL, 0,
	    &srv->signer, extra, IDLOG_MAX_BYTES, rep, err);
	fetch_done(r, slot);
	return ret;
}

/*
 * Fetch sender's log from domain (at base), verify it, cache it.  The
 * lookup is signed by this server (server:DOMAIN), as lookups must be;
 * an answer that says to ask again later (429, 5xx) is a temporary
 * failure, not a sender that domain does not publish.  Only when it
 * finds nobody is it asked again for on_behalf (Smimp-For): the
 * sender's own server learns whom a lookup was for only when her
 * policy asks (she blocks this domain).
 */
static int
fetch_log(struct server *srv, const char *domain, const char *base,
    const char *sender, const char *on_behalf, struct idlog *log,
    struct smimp_err *err)
{
	struct remote_reply rep;
	char path[400], ckey[ADDRESS_MAX + 16], on[ADDRESS_MAX + 16];
	const char *extra[2] = { on, NULL };
	int ret;

	(void)snprintf(ckey, sizeof(ckey), "log:%s", sender);
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", sender);
	if (get_signed(srv, domain, base, path, NULL, &rep, err) != 0)
		return -1;
	if (rep.status == 404 && on_behalf != NULL) {
		remote_reply_release(&rep);
		(void)snprintf(on, sizeof(on), "Smimp-For: %s", on_behalf);
		if (get_signed(srv, domain, base, path, extra, &rep, err) != 0)
			return -1;
	}
	if (rep.status == 429 || rep.status >= 500) {
		ret = remote_reply_fail(&rep, path, err);
		remote_reply_release(&rep);
		return ret;
	}
	if (rep.status != 200) {
		remote_reply_release(&rep);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s does not "
		    "publish %s (HTTP %ld)", domain, sender, rep.status);
	}
	ret = idlog_parse(log, (unsigned char *)rep.body.buf, rep.body.len,
	    err);
	if (ret == 0 && strcmp(log->address, sender) != 0) {
		idlog_release(log);
		ret = smimp_err_set(err, SMIMP_EXIT_BADMSG, "%s serves the "
		    "log of another address for %s", domain, sender);
	}
	if (ret == 0)
		cache_put(ckey, (unsigned char *)rep.body.buf, rep.body.len);
	remote_reply_release(&rep);
	return ret;
}

int
peer_log(struct server *srv, const char *domain, const char *base,
    const char *sender, const char *on_behalf, struct idlog *log,
    struct smimp_err *err)
{
	char ckey[ADDRESS_MAX + 16];
	unsigned char *cached;
	size_t clen;
	int ret;

	(void)snprintf(ckey, sizeof(ckey), "log:%s", sender);
	cached = cache_get(ckey, &clen);
	if (cached != NULL) {
		/* Verified, and the sender's, when it was cached. */
		ret = idlog_parse_verified(log, cached, clen, err);
		free(cached);
		return ret;
	}
	return fetch_log(srv, domain, base, sender, on_behalf, log, err);
}

int
peer_log_kept(const char *sender)
{
	char ckey[ADDRESS_MAX + 16];

	(void)snprintf(ckey, sizeof(ckey), "log:%s", sender);
	return cache_has(ckey);
}

int
peer_log_refresh(struct server *srv, const char *domain, const char *base,
    const char *sender, const char *on_behalf, const char *purpose,
    struct idlog *log, struct smimp_err *err)
{
	char ckey[ADDRESS_MAX + 48], what[ADDRESS_MAX + 16];

	/*
	 * As for keys: stamps in a sender's name fetch its log seldom.
	 * Each purpose has its own turn, so that requests anyone can sign
	 * in a user's name (lookups) never use up the turn of a delivery,
	 * which the user's own domain vouches for.
	 */
	(void)snprintf(ckey, sizeof(ckey), "logrefresh:%.16s:%s", purpose,
	    sender);
	(void)snprintf(what, sizeof(what), "the log of %s", sender);
	if (refresh_allowed(ckey, what, err) != 0)
		return -1;
	return fetch_log(srv, domain, base, sender, on_behalf, log, err);
}

