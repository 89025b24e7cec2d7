#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exitcode.h"
#include "fileio.h"
#include "store.h"
#include "util.h"
#include "banned.h"

#define DEFAULT_MAX_MESSAGE	(64 * 1024 * 1024)
#define GIB			((uint64_t)1 << 30)
#define QUOTA_MAX		((uint64_t)1 << 60)
/*
 * How long a delivered (recipient, sender, message id) is remembered
 * after it was fetched: longer than a sending server retries (give-up,
 * 5 days by default), so that a retry after a lost answer is not
 * delivered twice.
 */
#define IDEMPOTENCY_S		(7 * 24 * 3600)
/* A device away for a month still finds what the others fetched. */
#define RETENTION_S		(30 * 24 * 3600)

void
config_defaults(struct smimpd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	(void)snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8443");
	(void)snprintf(cfg->datadir, sizeof(cfg->datadir),
	    "/var/lib/smimpd");
	cfg->max_message = DEFAULT_MAX_MESSAGE;
	cfg->retry_base = 60;
	cfg->retry_max = 3600;
	cfg->give_up = 5 * 24 * 3600;
	cfg->relay_lease = 120;
	cfg->rate_sender = 600;
	cfg->rate_domain = 60000;
	/* A burst as large as a message's recipients: one seal's lookups. */
	cfg->rate_lookup = 300;
	cfg->rate_lookup_domain = 6000;
	cfg->relay_workers = 8;
	cfg->relay_domain_workers = 4;
	cfg->mailbox_quota = GIB;
	cfg->queue_quota = GIB;
	cfg->stranger_quota = GIB / 4;
	cfg->mailbox_retention = RETENTION_S;
	cfg->timeout = 30;
	cfg->header_timeout = 10;
	cfg->request_timeout = 600;
	cfg->threads = 4;
	cfg->workers = 16;
	cfg->connections = 4096;
	cfg->per_address = 64;
	cfg->rate_failures = 120;
	cfg->unknown_per_domain = 100;
	cfg->unknown_ignore = 3600;
}

/* A count from 1 to max. */
static int
count(unsigned int *out, const char *name, const char *value,
    unsigned int max, struct smimp_err *err)
{
	uint64_t n;

	if (parse_u64(value, strlen(value), &n) != 0 || n == 0 || n > max)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is a number "
		    "from 1 to %u", name, max);
	*out = (unsigned int)n;
	return 0;
}

/* A rate per minute, 0 for none. */
static int
per_minute(unsigned int *out, const char *name, const char *value,
    struct smimp_err *err)
{
	uint64_t n;

	if (parse_u64(value, strlen(value), &n) != 0 || n > 1000000)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is a number "
		    "per minute, 0 for no limit", name);
	*out = (unsigned int)n;
	return 0;
}

static int
seconds(unsigned int *out, const char *name, const char *value,
    struct smimp_err *err)
{
	uint64_t n;

	if (parse_u64(value, strlen(value), &n) != 0 || n == 0 ||
	    n > 365 * 24 * 3600)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is a number of "
		    "seconds, 1 to a year", name);
	*out = (unsigned int)n;
	return 0;
}

static int
bytes(uint64_t *out, const char *name, const char *value,
    struct smimp_err *err)
{
	uint64_t n;

	if (parse_u64(value, strlen(value), &n) != 0 || n > QUOTA_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is a number of "
		    "bytes, 0 for no limit", name);
	*out = n;
	return 0;
}

static int
copy(char *dst, size_t cap, const char *name, const char *value,
    struct smimp_err *err)
{
	if ((size_t)snprintf(dst, cap, "%s", value) >= cap)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is too long",
		    name);
	return 0;
}

int
config_set(struct smimpd_config *cfg, const char *name, const char *value,
    struct smimp_err *err)
{
	uint64_t n;

	if (strcmp(name, "domain") == 0)
		return domain_normalize(value, cfg->domain, err);
	if (strcmp(name, "listen") == 0)
		return copy(cfg->listen, sizeof(cfg->listen), name, value, err);
	if (strcmp(name, "data") == 0)
		return copy(cfg->datadir, sizeof(cfg->datadir), name, value,
		    err);
	if (strcmp(name, "store") == 0)
		return copy(cfg->store, sizeof(cfg->store), name, value, err);
	if (strcmp(name, "mailbox-quota") == 0)
		return bytes(&cfg->mailbox_quota, name, value, err);
	if (strcmp(name, "queue-quota") == 0)
		return bytes(&cfg->queue_quota, name, value, err);
	if (strcmp(name, "stranger-quota") == 0)
		return bytes(&cfg->stranger_quota, name, value, err);
	if (strcmp(name, "mailbox-retention") == 0)
		return seconds(&cfg->mailbox_retention, name, value, err);
	if (strcmp(name, "cert") == 0)
		return copy(cfg->cert, sizeof(cfg->cert), name, value, err);
	if (strcmp(name, "key") == 0)
		return copy(cfg->key, sizeof(cfg->key), name, value, err);
	if (strcmp(name, "base-url") == 0)
		return copy(cfg->base_url, sizeof(cfg->base_url), name, value,
		    err);
	if (strcmp(name, "resolve") == 0)
		return copy(cfg->resolve, sizeof(cfg->resolve), name, value,
		    err);
	if (strcmp(name, "cacert") == 0)
		return copy(cfg->cacert, sizeof(cfg->cacert), name, value, err);
	if (strcmp(name, "allow-http") == 0)
		return copy(cfg->allow_http, sizeof(cfg->allow_http), name,
		    value, err);
	if (strcmp(name, "retry-base") == 0)
		return seconds(&cfg->retry_base, name, value, err);
	if (strcmp(name, "retry-max") == 0)
		return seconds(&cfg->retry_max, name, value, err);
	if (strcmp(name, "relay-lease") == 0)
		return seconds(&cfg->relay_lease, name, value, err);
	if (strcmp(name, "timeout") == 0)
		return seconds(&cfg->timeout, name, value, err);
	if (strcmp(name, "header-timeout") == 0)
		return seconds(&cfg->header_timeout, name, value, err);
	if (strcmp(name, "request-timeout") == 0)
		return seconds(&cfg->request_timeout, name, value, err);
	if (strcmp(name, "threads") == 0)
		return count(&cfg->threads, name, value, 64, err);
	if (strcmp(name, "workers") == 0)
		return count(&cfg->workers, name, value, WORKERS_MAX, err);
	if (strcmp(name, "connections") == 0)
		return count(&cfg->connections, name, value, 1000000, err);
	if (strcmp(name, "connections-per-address") == 0)
		return count(&cfg->per_address, name, value, 1000000, err);
	if (strcmp(name, "rate-failures") == 0)
		return count(&cfg->rate_failures, name, value, 1000000, err);
	if (strcmp(name, "unknown-per-domain") == 0)
		return count(&cfg->unknown_per_domain, name, value, 1000000,
		    err);
	if (strcmp(name, "unknown-ignore") == 0)
		return seconds(&cfg->unknown_ignore, name, value, err);
	if (strcmp(name, "user") == 0)
		return copy(cfg->user, sizeof(cfg->user), name, value, err);
	if (strcmp(name, "give-up") == 0)
		return seconds(&cfg->give_up, name, value, err);
	if (strcmp(name, "rate-sender") == 0)
		return per_minute(&cfg->rate_sender, name, value, err);
	if (strcmp(name, "rate-domain") == 0)
		return per_minute(&cfg->rate_domain, name, value, err);
	if (strcmp(name, "rate-lookup") == 0)
		return per_minute(&cfg->rate_lookup, name, value, err);
	if (strcmp(name, "rate-lookup-domain") == 0)
		return per_minute(&cfg->rate_lookup_domain, name, value, err);
	if (strcmp(name, "relay-workers") == 0 ||
	    strcmp(name, "relay-domain-workers") == 0) {
		if (parse_u64(value, strlen(value), &n) != 0 || n == 0 ||
		    n > RELAY_WORKERS_MAX)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is a "
			    "number from 1 to %d", name, RELAY_WORKERS_MAX);
		*(name[6] == 'w' ? &cfg->relay_workers :
		    &cfg->relay_domain_workers) = (unsigned int)n;
		return 0;
	}
	if (strcmp(name, "plain-http") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return smimp_err_set(err, SMIMP_EXIT_USAGE,
			    "plain-http is yes or no");
		cfg->plain_http = strcmp(value, "yes") == 0;
		return 0;
	}
	if (strcmp(name, "max-message") == 0) {
		if (parse_u64(value, strlen(value), &n) != 0 || n == 0 ||
		    n > (uint64_t)1 << 32)
			return smimp_err_set(err, SMIMP_EXIT_USAGE,
			    "max-message is a size in bytes, at most 4 GiB");
		cfg->max_message = (size_t)n;
		return 0;
	}
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "unknown setting '%.60s'",
	    name);
}

int
config_read(struct smimpd_config *cfg, const char *path,
    struct smimp_err *err)
{
	unsigned char *buf;
	char *line, *next, *sp;
	size_t len, lineno = 0, errors = 0;
	struct smimp_err one;

	if (file_read_all(path, 1024 * 1024, &buf, &len, err) != 0)
		return -1;
	for (line = (char *)buf; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		sp = strpbrk(line, " \t");
		if (sp == NULL) {
			fprintf(stderr, "smimpd: %s:%zu: '%s' needs a value\n",
			    path, lineno, line);
			errors++;
			continue;
		}
		*sp++ = '\0';
		while (*sp == ' ' || *sp == '\t')
			sp++;
		if (config_set(cfg, line, sp, &one) != 0) {
			/* Every error is reported, then the read fails. */
			fprintf(stderr, "smimpd: %s:%zu: %s\n", path, lineno,
			    one.msg);
			errors++;
		}
	}
	free(buf);
	if (errors > 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s: %zu error%s",
		    path, errors, errors == 1 ? "" : "s");
	return 0;
}

static int
parse_listen(struct smimpd_config *cfg, struct smimp_err *err)
{
	char host[64], *colon;
	uint64_t port;

	memcpy(host, cfg->listen, sizeof(host));
	colon = strrchr(host, ':');
	if (colon == NULL || parse_u64(colon + 1, strlen(colon + 1),
	    &port) != 0 || port == 0 || port > 65535)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "listen '%s': "
		    "expected ADDRESS:PORT", cfg->listen);
	*colon = '\0';
	memset(&cfg->listen_addr, 0, sizeof(cfg->listen_addr));
	cfg->listen_addr.sin_family = AF_INET;
	cfg->listen_addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &cfg->listen_addr.sin_addr) != 1)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "listen '%s': "
		    "not an IPv4 address", cfg->listen);
	cfg->port = (unsigned short)port;
	return 0;
}

void
config_store_limits(const struct smimpd_config *cfg,
    struct store_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->mailbox_bytes = cfg->mailbox_quota;
	lim->sender_queue_bytes = cfg->queue_quota;
	lim->stranger_domain_bytes = cfg->stranger_quota;
	lim->idempotency = IDEMPOTENCY_S;
	lim->retention = cfg->mailbox_retention;
	/* A connection for each thread that may ask the store at once. */
	lim->connections = cfg->workers + cfg->relay_workers + 1;
}

int
config_finish(struct smimpd_config *cfg, int serving, struct smimp_err *err)
{
	const char *path;

	if (parse_listen(cfg, err) != 0)
		return -1;
	if (cfg->store[0] == '\0' && (size_t)snprintf(cfg->store,
	    sizeof(cfg->store), "sqlite:%s", cfg->datadir) >= sizeof(cfg->store))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "data is too long");
	if (!serving)
		return 0;
	if (cfg->domain[0] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "no domain: set 'domain' or --domain");
	if (!cfg->plain_http && (cfg->cert[0] == '\0' || cfg->key[0] == '\0'))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "HTTPS needs a "
		    "certificate and a key (--cert, --key), or --plain-http "
		    "behind a TLS proxy");
	if (cfg->base_url[0] == '\0')
		(void)snprintf(cfg->base_url, sizeof(cfg->base_url),
		    "%s://%s/smimp", cfg->plain_http ? "http" : "https",
		    cfg->listen);
	path = strstr(cfg->base_url, "://");
	path = path != NULL ? strchr(path + 3, '/') : NULL;
	if (strncmp(cfg->base_url, "https://", 8) != 0 &&
	    !(cfg->plain_http && strncmp(cfg->base_url, "http://", 7) == 0))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "base-url must "
		    "be https://");
	return copy(cfg->base_path, sizeof(cfg->base_path), "base-url path",
	    path != NULL ? path : "", err);
}
