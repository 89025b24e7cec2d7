/*
 * config.h - smimpd's settings: a config file of "name value" lines,
 * overridden by command-line flags.
 */
#ifndef SMIMPD_CONFIG_H
#define SMIMPD_CONFIG_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"

/*
 * A setting that SIGHUP may change while other threads read it is read
 * and written whole, never torn: LIVE(cfg.x) where a thread other than
 * the main one reads it.
 */
#define LIVE(v)		__atomic_load_n(&(v), __ATOMIC_RELAXED)
#define LIVE_SET(v, x)	__atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

#define RELAY_WORKERS_MAX	64
#define WORKERS_MAX		256
#define PROXIES_MAX		16

/* An address, or a network of them (bits long), of load balancers. */
struct proxy_net {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned int bits;
};

struct smimpd_config {
	char domain[ADDRESS_DOMAIN_MAX + 1];
	char listen[64];		/* "127.0.0.1:8443", "[::]:443" */
	struct sockaddr_storage listen_addr;
	socklen_t listen_addrlen;
	unsigned short port;
	char datadir[4096];
	char store[4096 + 16];		/* the store URI; default sqlite:DATADIR */
	/* Store quotas, in bytes (0: none). */
	uint64_t mailbox_quota;		/* per recipient */
	uint64_t queue_quota;		/* queued for relay, per sender */
	uint64_t stranger_quota;	/* per remote domain per day */
	/*
	 * Seconds a message stays after one device acknowledged it, for
	 * the owner's other devices.
	 */
	unsigned int mailbox_retention;
	char cert[4096];
	char key[4096];
	int plain_http;
	char base_url[512];		/* https://host:port/smimp */
	char base_path[256];		/* /smimp, or "" */
	size_t max_message;
	/* Reaching other servers (tests and private deployments). */
	char resolve[1024];		/* DOMAIN=HOST:PORT,... */
	char cacert[4096];
	char allow_http[1024];
	/* Relay: retry after base, doubling up to max; give up after. */
	unsigned int retry_base;	/* seconds */
	unsigned int retry_max;
	unsigned int give_up;
	/*
	 * How long a worker's claim on queued entries holds: once it
	 * expires (the node died), another node's workers take them.
	 * Delivery is idempotent, so an attempt that outlives its lease
	 * costs a second attempt, never a second copy.
	 */
	unsigned int relay_lease;	/* seconds */
	unsigned int relay_workers;	/* deliveries in parallel */
	unsigned int relay_domain_workers;	/* of them, to one domain */
	unsigned int timeout;		/* idle connections close after */
	unsigned int header_timeout;	/* a request's headers, in all */
	unsigned int request_timeout;	/* a whole request, in all */
	unsigned int threads;		/* event threads */
	unsigned int workers;		/* threads for handlers */
	unsigned int connections;	/* at most, in all */
	unsigned int per_address;	/* at most, from one address */
	/*
	 * Load balancers whose connections begin with a PROXY protocol
	 * header (haproxy's send-proxy, send-proxy-v2): the address it
	 * gives is the client's, for the per-address limits and the log.
	 */
	char proxy_from[1024];
	struct proxy_net proxies[PROXIES_MAX];
	size_t nproxies;
	unsigned int rate_failures;	/* failed requests per address */
	char user[64];			/* run as, when started as root */
	/* The Prometheus endpoint: plain HTTP, its own port; "": none. */
	char metrics_listen[64];
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addrlen;
	char log[4096];			/* the log file; "": standard error */
	int log_debug;			/* log-level debug (or -v) */
	/* Rate limits, per minute (0: none). */
	unsigned int rate_sender;
	unsigned int rate_domain;
	/*
	 * Consent: unknown senders of one other domain, to every local
	 * user together, an hour; a domain that sends as many again past
	 * that is ignored for unknown_ignore seconds.
	 */
	unsigned int unknown_per_domain;
	unsigned int unknown_ignore;
	/* Directory lookups: per requester, and from one other domain. */
	unsigned int rate_lookup;
	unsigned int rate_lookup_domain;
	/*
	 * Delivery receipts: how long what became of a sent message is
	 * kept for its sender to ask, and how often a sender may ask.
	 */
	unsigned int receipt_retention;	/* seconds */
	unsigned int rate_status;	/* per minute (0: none) */
	/* One-time prekeys taken, per requester and address. */
	unsigned int rate_prekeys;
};

void config_defaults(struct smimpd_config *cfg);
/* Read FILE; every error is reported as "file:line: message". */
int config_read(struct smimpd_config *cfg, const char *path,
    struct smimp_err *err);
/* Set one setting by name (from the file or a flag). */
int config_set(struct smimpd_config *cfg, const char *name,
    const char *value, struct smimp_err *err);
/* What the store refuses to grow past, from the settings. */
struct store_limits;
void config_store_limits(const struct smimpd_config *cfg,
    struct store_limits *lim);
/* Check the whole: what serving needs, derived fields. */
int config_finish(struct smimpd_config *cfg, int serving,
    struct smimp_err *err);
/*
 * SIGHUP: take what may change at run time from next into the running
 * cfg, and log a line for each setting that changes only at a restart
 * (kept as it is).  Other threads may read cfg meanwhile: each changed
 * number is stored whole (see LIVE in server.h); the peers' settings
 * (resolve, cacert, allow-http) are copied under peers_mu.
 */
void config_apply(struct smimpd_config *cfg, const struct smimpd_config *next,
    pthread_mutex_t *peers_mu);
/* Is sa one of the proxy-from load balancers? */
int config_is_proxy(const struct smimpd_config *cfg,
    const struct sockaddr *sa);

#endif
