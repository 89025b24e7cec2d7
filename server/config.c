#include <arpa/inet.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "exitcode.h"
#include "fileio.h"
#include "server.h"
#include "stamp.h"
#include "store.h"
#include "util.h"
#include "banned.h"

#define DEFAULT_MAX_MESSAGE	(64 * 1024 * 1024)
#define CONFIG_FILE_MAX		(1024 * 1024)
#define GIB			((uint64_t)1 << 30)
#define QUOTA_MAX		((uint64_t)1 << 60)
/*
 * How long a delivered (recipient, sender, message id) is remembered
 * after it was fetched: longer than a sending server retries (give-up,
 * 5 days by default), so that a retry after a lost answer is not
 * delivered twice; and as long as its stamp is taken (seven days
 * after its date, which may lie STAMP_SKEW ahead of its delivery), so
 * that a proof of work brings its message in once.
 */
#define IDEMPOTENCY_S		(STAMP_VALIDITY + STAMP_SKEW)
/* A device away for a month still finds what the others fetched. */
#define RETENTION_S		(30 * 24 * 3600)
/* A month to ask where a message went, and what its receipts say. */
#define RECEIPT_RETENTION_S	(30 * 24 * 3600)

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
	cfg->rate_prekeys = 30;
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
	cfg->receipt_retention = RECEIPT_RETENTION_S;
	/* A poll every second, and a burst for many messages at once. */
	cfg->rate_status = 120;
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

/* One of two words: *out is 1 for the first (yes), 0 for the other. */
static int
choice(int *out, const char *name, const char *value, const char *yes,
    const char *no, struct smimp_err *err)
{
	if (strcmp(value, yes) != 0 && strcmp(value, no) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s is %s or %s",
		    name, yes, no);
	*out = strcmp(value, yes) == 0;
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

/* One "ADDRESS" or "ADDRESS/BITS" of proxy-from into *n. */
static int
proxy_net_parse(const char *s, struct proxy_net *n, struct smimp_err *err)
{
	char a[64];
	const char *slash = strchr(s, '/');
	size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;

	memset(n, 0, sizeof(*n));
	if (len >= sizeof(a))
		goto bad;
	memcpy(a, s, len);
	a[len] = '\0';
	n->family = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(n->family, a, n->addr) != 1)
		goto bad;
	n->bits = n->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		if (parse_u64(slash + 1, strlen(slash + 1), &bits) != 0 ||
		    bits > n->bits)
			goto bad;
		n->bits = (unsigned int)bits;
	}
	return 0;
bad:
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "proxy-from: '%.80s' is "
	    "not an IP address or ADDRESS/BITS", s);
}

/* proxy-from: addresses and networks, by commas or blanks; "" none. */
static int
proxies_parse(struct smimpd_config *cfg, const char *value,
    struct smimp_err *err)
{
	char list[sizeof(cfg->proxy_from)], *tok, *save = NULL;

	if (copy(list, sizeof(list), "proxy-from", value, err) != 0)
		return -1;
	cfg->nproxies = 0;
	for (tok = strtok_r(list, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (cfg->nproxies == PROXIES_MAX)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "proxy-from: "
			    "more than %d addresses", PROXIES_MAX);
		if (proxy_net_parse(tok, &cfg->proxies[cfg->nproxies], err) != 0)
			return -1;
		cfg->nproxies++;
	}
	return copy(cfg->proxy_from, sizeof(cfg->proxy_from), "proxy-from",
	    value, err);
}

/* Do the first bits of a and b agree? */
static int
prefix_equal(const unsigned char *a, const unsigned char *b,
    unsigned int bits)
{
	unsigned int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	return rest == 0 ||
	    ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int
config_is_proxy(const struct smimpd_config *cfg, const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const unsigned char *a;
	int family;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		family = AF_INET6;
		a = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		/* An IPv4 client of a socket on [::]. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			a += sizeof(mapped);
		}
	} else {
		return 0;
	}
	for (i = 0; i < cfg->nproxies; i++)
		if (cfg->proxies[i].family == family &&
		    prefix_equal(cfg->proxies[i].addr, a, cfg->proxies[i].bits))
			return 1;
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
	if (strcmp(name, "proxy-from") == 0)
		return proxies_parse(cfg, value, err);
	if (strcmp(name, "rate-failures") == 0)
		return count(&cfg->rate_failures, name, value, 1000000, err);
	if (strcmp(name, "unknown-per-domain") == 0)
		return count(&cfg->unknown_per_domain, name, value, 1000000,
		    err);
	if (strcmp(name, "unknown-ignore") == 0)
		return seconds(&cfg->unknown_ignore, name, value, err);
	if (strcmp(name, "user") == 0)
		return copy(cfg->user, sizeof(cfg->user), name, value, err);
	if (strcmp(name, "metrics-listen") == 0)
		return copy(cfg->metrics_listen, sizeof(cfg->metrics_listen),
		    name, value, err);
	if (strcmp(name, "log") == 0)
		return copy(cfg->log, sizeof(cfg->log), name, value, err);
	if (strcmp(name, "log-level") == 0)
		return choice(&cfg->log_debug, name, value, "debug", "info",
		    err);
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
	if (strcmp(name, "rate-status") == 0)
		return per_minute(&cfg->rate_status, name, value, err);
	if (strcmp(name, "receipt-retention") == 0)
		return seconds(&cfg->receipt_retention, name, value, err);
	if (strcmp(name, "rate-prekeys") == 0)
		return per_minute(&cfg->rate_prekeys, name, value, err);
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
	if (strcmp(name, "plain-http") == 0)
		return choice(&cfg->plain_http, name, value, "yes", "no", err);
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
	struct stat st;
	int fd, r;

	/*
	 * Whoever may write the file runs the server: it must be ours or
	 * root's, writable by no one else.  A NUL byte would end it early,
	 * the lines after it unread.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	r = fd_check_owned(fd, path, err) != 0 ? -1 :
	    fstat(fd, &st) != 0 ? smimp_err_sys(err, SMIMP_EXIT_FAIL,
	    "cannot stat '%s'", path) :
	    fd_read_all(fd, path, CONFIG_FILE_MAX, &buf, &len, err);
	(void)close(fd);
	if (r != 0)
		return -1;
	if (text_nul_check(path, buf, len, err) != 0) {
		free(buf);
		return -1;
	}
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
	if ((st.st_mode & S_IROTH) && store_uri_has_password(cfg->store))
		fprintf(stderr, "smimpd: warning: %s holds the store's "
		    "password, and every user may read it (mode %03o): run "
		    "chmod o-r '%s'\n", path, (unsigned)(st.st_mode & 0777),
		    path);
	return 0;
}

/*
 * The setting name, "ADDRESS:PORT" in text, into sa (*len its length,
 * *port the port): an IPv4 address, or an IPv6 one in brackets
 * ("[::]:443", which takes IPv4 clients too).
 */
static int
parse_addr(const char *name, const char *text, struct sockaddr_storage *sa,
    socklen_t *len, unsigned short *port, struct smimp_err *err)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)sa;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)sa;
	char host[64], *colon, *h = host;
	uint64_t n;

	(void)snprintf(host, sizeof(host), "%s", text);
	colon = strrchr(host, ':');
	if (colon == NULL || parse_u64(colon + 1, strlen(colon + 1),
	    &n) != 0 || n == 0 || n > 65535)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s '%s': "
		    "expected ADDRESS:PORT", name, text);
	*colon = '\0';
	memset(sa, 0, sizeof(*sa));
	*port = (unsigned short)n;
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		h++;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(*port);
		*len = sizeof(*sin6);
		if (inet_pton(AF_INET6, h, &sin6->sin6_addr) != 1)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s '%s': "
			    "not an IPv6 address", name, text);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(*port);
	*len = sizeof(*sin);
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s '%s': %s",
		    name, text, strchr(host, ':') != NULL ? "an IPv6 address "
		    "goes in brackets: [ADDRESS]:PORT" : "not an IPv4 address");
	return 0;
}

static int
parse_listen(struct smimpd_config *cfg, struct smimp_err *err)
{
	unsigned short mport;

	if (parse_addr("listen", cfg->listen, &cfg->listen_addr,
	    &cfg->listen_addrlen, &cfg->port, err) != 0)
		return -1;
	if (cfg->metrics_listen[0] == '\0')
		return 0;
	if (parse_addr("metrics-listen", cfg->metrics_listen,
	    &cfg->metrics_addr, &cfg->metrics_addrlen, &mport, err) != 0)
		return -1;
	if (mport == cfg->port)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "metrics-listen "
		    "'%s': the port of listen; it needs a port of its own",
		    cfg->metrics_listen);
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

/* ---- SIGHUP ---- */

#define FIELD(name, f)	{ name, offsetof(struct smimpd_config, f), \
	sizeof(((struct smimpd_config *)0)->f) }

struct field {
	const char *name;
	size_t off, size;
};

/* Numbers that take effect at once (each an unsigned int). */
static const struct field live_counts[] = {
	FIELD("timeout", timeout),
	FIELD("header-timeout", header_timeout),
	FIELD("request-timeout", request_timeout),
	FIELD("threads", threads),
	FIELD("connections", connections),
	FIELD("connections-per-address", per_address),
	FIELD("rate-failures", rate_failures),
	FIELD("rate-sender", rate_sender),
	FIELD("rate-domain", rate_domain),
	FIELD("rate-lookup", rate_lookup),
	FIELD("rate-lookup-domain", rate_lookup_domain),
	FIELD("rate-status", rate_status),
	FIELD("receipt-retention", receipt_retention),
	FIELD("rate-prekeys", rate_prekeys),
	FIELD("unknown-per-domain", unknown_per_domain),
	FIELD("unknown-ignore", unknown_ignore),
	FIELD("retry-base", retry_base),
	FIELD("retry-max", retry_max),
	FIELD("give-up", give_up),
	FIELD("relay-lease", relay_lease),
};

/*
 * What the process was built around (its sockets, its store, its
 * threads, its identity) or the store holds to: only a restart changes
 * it.  Strings are compared as strings, the rest byte for byte.
 */
static const struct field fixed_strings[] = {
	FIELD("domain", domain),
	FIELD("listen", listen),
	FIELD("base-url", base_url),
	FIELD("data", datadir),
	FIELD("store", store),
	FIELD("user", user),
	FIELD("metrics-listen", metrics_listen),
	FIELD("proxy-from", proxy_from),
};

static const struct field fixed_numbers[] = {
	FIELD("plain-http", plain_http),
	FIELD("workers", workers),
	FIELD("relay-workers", relay_workers),
	FIELD("relay-domain-workers", relay_domain_workers),
	FIELD("mailbox-quota", mailbox_quota),
	FIELD("queue-quota", queue_quota),
	FIELD("stranger-quota", stranger_quota),
	FIELD("mailbox-retention", mailbox_retention),
};

#define NFIELDS(t)	(sizeof(t) / sizeof((t)[0]))

static const void *
at(const struct smimpd_config *cfg, const struct field *f)
{
	return (const char *)cfg + f->off;
}

static void
keep_fixed(const struct smimpd_config *cfg, const struct smimpd_config *next)
{
	size_t i;

	/* Values unsaid: the store's URI may hold a password. */
	for (i = 0; i < NFIELDS(fixed_strings); i++)
		if (strcmp(at(cfg, &fixed_strings[i]),
		    at(next, &fixed_strings[i])) != 0)
			log_warnx("reload: %s changes only at a restart; kept "
			    "as it was", fixed_strings[i].name);
	for (i = 0; i < NFIELDS(fixed_numbers); i++)
		if (memcmp(at(cfg, &fixed_numbers[i]),
		    at(next, &fixed_numbers[i]), fixed_numbers[i].size) != 0)
			log_warnx("reload: %s changes only at a restart; kept "
			    "as it was", fixed_numbers[i].name);
}

static void
set_string(char *dst, size_t cap, const char *src, const char *name)
{
	if (strcmp(dst, src) == 0)
		return;
	(void)snprintf(dst, cap, "%s", src);
	log_info("reload: %s is now '%s'", name, src);
}

void
config_apply(struct smimpd_config *cfg, const struct smimpd_config *next,
    pthread_mutex_t *peers_mu)
{
	unsigned int *dst, v;
	size_t i;

	keep_fixed(cfg, next);
	for (i = 0; i < NFIELDS(live_counts); i++) {
		dst = (unsigned int *)(void *)((char *)cfg +
		    live_counts[i].off);
		v = *(const unsigned int *)at(next, &live_counts[i]);
		if (*dst == v)
			continue;
		log_info("reload: %s is now %u (was %u)", live_counts[i].name,
		    v, *dst);
		LIVE_SET(*dst, v);
	}
	if (cfg->max_message != next->max_message) {
		log_info("reload: max-message is now %zu", next->max_message);
		LIVE_SET(cfg->max_message, next->max_message);
	}
	if (cfg->log_debug != next->log_debug) {
		cfg->log_debug = next->log_debug;
		LIVE_SET(log_verbose, next->log_debug);
		log_info("reload: log-level is now %s", next->log_debug ?
		    "debug" : "info");
	}
	/* Read by the main thread alone. */
	set_string(cfg->cert, sizeof(cfg->cert), next->cert, "cert");
	set_string(cfg->key, sizeof(cfg->key), next->key, "key");
	/*
	 * No log named: the file stays in use until a restart (reload.c
	 * says so), and so its name, for the next SIGHUP to reopen it.
	 */
	if (next->log[0] != '\0')
		set_string(cfg->log, sizeof(cfg->log), next->log, "log");
	pthread_mutex_lock(peers_mu);
	set_string(cfg->resolve, sizeof(cfg->resolve), next->resolve,
	    "resolve");
	set_string(cfg->cacert, sizeof(cfg->cacert), next->cacert, "cacert");
	set_string(cfg->allow_http, sizeof(cfg->allow_http), next->allow_http,
	    "allow-http");
	pthread_mutex_unlock(peers_mu);
}
