/*
 * remote.c - the HTTP client that talks to smimp servers (see remote.h):
 * libcurl loaded on first use, discovery, address checks, signed
 * requests.  Its settings come from the caller (clientconf.h).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "address.h"
#include "exitcode.h"
#include "fileio.h"
#include "remote.h"
#include "reqsig.h"
#include "banned.h"

/*
 * libcurl is loaded when the first connection is made, not linked: a
 * command that never goes on the network (smimp-seal with .pub files,
 * say) does not pay for loading it and its thirty dependencies.
 */
static struct {
	void *handle;
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	/* libcurl's own URL parser, so that checks see the host it uses */
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
	CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int);
	void (*free)(void *);
} cu;
static pthread_mutex_t cu_mu = PTHREAD_MUTEX_INITIALIZER;

#define LOAD(field, sym) do { \
	*(void **)&cu.field = dlsym(h, sym); \
	if (cu.field == NULL) goto fail; } while (0)

static int
curl_load(struct smimp_err *err)
{
	void *h;

	pthread_mutex_lock(&cu_mu);
	if (cu.handle != NULL) {
		pthread_mutex_unlock(&cu_mu);
		return 0;
	}
	h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		goto fail;
	LOAD(global_init, "curl_global_init");
	LOAD(global_cleanup, "curl_global_cleanup");
	LOAD(easy_init, "curl_easy_init");
	LOAD(easy_cleanup, "curl_easy_cleanup");
	LOAD(easy_reset, "curl_easy_reset");
	LOAD(easy_setopt, "curl_easy_setopt");
	LOAD(easy_perform, "curl_easy_perform");
	LOAD(easy_getinfo, "curl_easy_getinfo");
	LOAD(easy_strerror, "curl_easy_strerror");
	LOAD(slist_append, "curl_slist_append");
	LOAD(slist_free_all, "curl_slist_free_all");
	LOAD(url, "curl_url");
	LOAD(url_cleanup, "curl_url_cleanup");
	LOAD(url_set, "curl_url_set");
	LOAD(url_get, "curl_url_get");
	LOAD(free, "curl_free");
	/* Once, for the whole process: it is not thread-safe. */
	if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto fail;
	cu.handle = h;
	pthread_mutex_unlock(&cu_mu);
	return 0;
fail:
	pthread_mutex_unlock(&cu_mu);
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot load libcurl: %s",
	    dlerror() != NULL ? "symbol missing" : "not installed");
}
#undef LOAD

/* A failed discovery, answered from memory until it expires. */
#define NEGATIVE_SLOTS	8
struct negative {
	char domain[ADDRESS_DOMAIN_MAX + 1];
	int64_t until;
	int code;
	char msg[SMIMP_ERR_MSG];
};

struct remote {
	CURL *curl;
	struct remote_opts o;	/* its strings are the handle's own copies */
	struct curl_slist *resolve;
	/* The last discovery, reused for the rest of the run. */
	char last_domain[ADDRESS_DOMAIN_MAX + 1];
	char last_base[512];
	struct negative neg[NEGATIVE_SLOTS];
	size_t neg_next;		/* the slot to reuse next */
};

/* One exchange, as the callbacks see it. */
struct call {
	const char *domain;
	size_t cap;			/* of the answer */
	int any_address;		/* the resolve map named the host */
	int over;			/* the answer went past cap */
	char refused[INET6_ADDRSTRLEN];	/* an address not connected to */
	struct sbuf *body;
	char *requires;			/* the reply's, see remote.h */
	char *date;
	unsigned int *retry_after;
	/* What the request sends: bytes in memory, or a file read as sent. */
	const void *out;
	int out_fd;			/* or -1 */
	uint64_t out_len;
};

/* The HOST:PORT that domain maps to, into out; 0 if not mapped. */
static int
mapped(const struct remote *r, const char *domain, char *out, size_t cap)
{
	size_t n = strlen(domain);
	const char *p = r->o.resolve, *end;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if (strncmp(p, domain, n) == 0 && p[n] == '=' &&
		    (size_t)(end - p - n - 1) < cap) {
			memcpy(out, p + n + 1, (size_t)(end - p - n - 1));
			out[end - p - n - 1] = '\0';
			return 1;
		}
		p = *end != '\0' ? end + 1 : end;
	}
	return 0;
}

/* The CA bundle: a regular file, opened without blocking. */
static int
check_cacert(const char *path, struct smimp_err *err)
{
	int fd = file_open(path, O_RDONLY, 0, err);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* *out: a copy of s (NULL stays NULL); -1 when out of memory. */
static int
opt_copy(const char *s, const char **out)
{
	*out = s != NULL ? strdup(s) : NULL;
	return s != NULL && *out == NULL ? -1 : 0;
}

static void
opts_release(struct remote_opts *o)
{
	free((char *)o->resolve);
	free((char *)o->cacert);
	free((char *)o->allow_http);
}

/*
 * The options' strings are copied: the caller (a server reloading its
 * settings) may change them while the handle lives.
 */
struct remote *
remote_new(const struct remote_opts *o, struct smimp_err *err)
{
	struct remote *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	r->o = *o;
	r->o.resolve = r->o.cacert = r->o.allow_http = NULL;
	if (opt_copy(o->resolve, &r->o.resolve) != 0 ||
	    opt_copy(o->cacert, &r->o.cacert) != 0 ||
	    opt_copy(o->allow_http, &r->o.allow_http) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto fail;
	}
	/* libcurl would wait for ever on a FIFO. */
	if (o->cacert != NULL && check_cacert(o->cacert, err) != 0)
		goto fail;
	if (curl_load(err) != 0)
		goto fail;
	if ((r->curl = cu.easy_init()) == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start libcurl");
		goto fail;
	}
	return r;
fail:
	opts_release(&r->o);
	free(r);
	return NULL;
}

void
remote_free(struct remote *r)
{
	if (r == NULL)
		return;
	cu.easy_cleanup(r->curl);
	cu.slist_free_all(r->resolve);
	opts_release(&r->o);
	free(r);
}

void
remote_reply_release(struct remote_reply *rep)
{
	sbuf_release(&rep->body);
}

int
remote_reply_fail(const struct remote_reply *rep, const char *what,
    struct smimp_err *err)
{
	int code = rep->status >= 500 || rep->status == 429 ?
	    SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_FAIL;

	err->detail = (int)rep->status;
	return smimp_err_set(err, code, "%s: HTTP %ld%s%s", what,
	    rep->status, rep->error[0] != '\0' ? ": " : "", rep->error);
}

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
	struct call *c = arg;

	if (n > c->cap - c->body->len) {
		c->over = 1;
		return 0;	/* past the cap: curl fails the transfer */
	}
	if (sbuf_add(c->body, data, size * n) != 0)
		return 0;
	return size * n;
}

#define REQUIRES_NAME	"smimp-requires:"
#define DATE_NAME	"date:"
#define RETRY_NAME	"retry-after:"
#define RETRY_MAX	(365u * 24 * 3600)

/* The value of a header line, blanks trimmed: its start and *len. */
static const char *
header_value(const char *v, size_t *len, size_t name)
{
	v += name;
	*len -= name;
	while (*len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		(*len)--;
	}
	while (*len > 0 && strchr("\r\n \t", v[*len - 1]) != NULL)
		(*len)--;
	return v;
}

/* A Date header: kept when it is one, printable, and fits. */
static void
header_date(struct call *c, const char *data, size_t len)
{
	const char *v = header_value(data, &len, sizeof(DATE_NAME) - 1);

	if (c->date[0] != '\0' || len == 0 || len >= 40 ||
	    !printable_ascii(v, len, 39)) {
		c->date[0] = '\0';
		return;
	}
	memcpy(c->date, v, len);
	c->date[len] = '\0';
}

/*
 * A Retry-After header in seconds: kept when it is a number (an
 * HTTP-date, or anything else, counts as none), at most RETRY_MAX.
 */
static void
header_retry(struct call *c, const char *data, size_t len)
{
	const char *v = header_value(data, &len, sizeof(RETRY_NAME) - 1);
	unsigned long n = 0;
	size_t i;

	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		if ((n = n * 10 + (unsigned long)(v[i] - '0')) > RETRY_MAX)
			n = RETRY_MAX;
	*c->retry_after = len > 0 && i == len ? (unsigned int)n : 0;
}

/* libcurl hands over each header line of the answer as it comes. */
static size_t
header_line(char *data, size_t size, size_t n, void *arg)
{
	const size_t name = sizeof(REQUIRES_NAME) - 1;
	struct call *c = arg;
	size_t len = size * n, all = size * n;
	const char *v = data;

	/* A new answer (after a 100 Continue, say) starts over. */
	if (len >= 5 && memcmp(v, "HTTP/", 5) == 0) {
		c->requires[0] = '\0';
		c->date[0] = '\0';
		*c->retry_after = 0;
	}
	if (len >= sizeof(DATE_NAME) - 1 && strncasecmp(v, DATE_NAME,
	    sizeof(DATE_NAME) - 1) == 0)
		header_date(c, data, len);
	if (len >= sizeof(RETRY_NAME) - 1 && strncasecmp(v, RETRY_NAME,
	    sizeof(RETRY_NAME) - 1) == 0)
		header_retry(c, data, len);
	if (len < name || strncasecmp(v, REQUIRES_NAME, name) != 0)
		return all;
	v = header_value(v, &len, name);
	if (c->requires[0] != '\0' || len == 0 || len >= 32 ||
	    memchr(v, '\0', len) != NULL) {
		v = "?";
		len = 1;
	}
	memcpy(c->requires, v, len);
	c->requires[len] = '\0';
	return all;
}

/*
 * Could anyone on the Internet reach this address?  Loopback, private,
 * shared, link-local, unspecified, multicast, documentation and
 * reserved ranges are not for a server that an address names.
 */
static int
v4_public(const unsigned char a[4])
{
	static const struct {
		unsigned char net[4];
		int bits;
	} other[] = {
		{ { 0, 0, 0, 0 }, 8 },		/* this network */
		{ { 10, 0, 0, 0 }, 8 },		/* private */
		{ { 100, 64, 0, 0 }, 10 },	/* shared, carrier NAT */
		{ { 127, 0, 0, 0 }, 8 },	/* loopback */
		{ { 169, 254, 0, 0 }, 16 },	/* link-local */
		{ { 172, 16, 0, 0 }, 12 },	/* private */
		{ { 192, 0, 0, 0 }, 24 },	/* protocol assignments */
		{ { 192, 0, 2, 0 }, 24 },	/* documentation */
		{ { 192, 88, 99, 0 }, 24 },	/* 6to4 relays, retired */
		{ { 192, 168, 0, 0 }, 16 },	/* private */
		{ { 198, 18, 0, 0 }, 15 },	/* benchmarking */
		{ { 198, 51, 100, 0 }, 24 },	/* documentation */
		{ { 203, 0, 113, 0 }, 24 },	/* documentation */
		{ { 224, 0, 0, 0 }, 4 },	/* multicast */
		{ { 240, 0, 0, 0 }, 4 },	/* reserved, broadcast */
	};
	uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	    (uint32_t)a[2] << 8 | a[3], net, mask;
	size_t i;

	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		net = (uint32_t)other[i].net[0] << 24 |
		    (uint32_t)other[i].net[1] << 16 |
		    (uint32_t)other[i].net[2] << 8 | other[i].net[3];
		mask = 0xffffffffu << (32 - other[i].bits);
		if ((x & mask) == net)
			return 0;
	}
	return 1;
}

static int
v6_public(const unsigned char a[16])
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };

	/* Ways to write an IPv4 address: judge that address. */
	if (memcmp(a, v4mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return v4_public(a + 12);
	if (a[0] == 0x20 && a[1] == 0x02)		/* 6to4 */
		return v4_public(a + 2);
	/*
	 * Only global unicast, 2000::/3: this leaves out ::, ::1, the
	 * unique local fc00::/7, link-local fe80::/10, multicast ff00::/8.
	 */
	if ((a[0] & 0xe0) != 0x20)
		return 0;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02)
		return 0;	/* 2001::/23, protocol assignments, Teredo */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return 0;	/* 2001:db8::/32, documentation */
	if (a[0] == 0x3f && a[1] == 0xff && a[2] < 0x10)
		return 0;	/* 3fff::/20, documentation */
	return 1;
}

/* May c connect to this address (family, bytes)?  Notes it if not. */
static int
address_allowed(struct call *c, int family, const void *bytes)
{
	int public = family == AF_INET ? v4_public(bytes) :
	    family == AF_INET6 ? v6_public(bytes) : 0;

	if (c->any_address || public)
		return 1;
	if (inet_ntop(family, bytes, c->refused, sizeof(c->refused)) == NULL)
		(void)snprintf(c->refused, sizeof(c->refused), "?");
	return 0;
}

/*
 * libcurl asks for every socket it connects: this is where the address
 * is judged, on the address itself, so that a name which resolves to a
 * public address once and to an inside one the next time (DNS
 * rebinding) gains nothing.
 */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	const void *bytes = NULL;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (a->family == AF_INET && a->addrlen >= sizeof(s4)) {
		memcpy(&s4, &a->addr, sizeof(s4));
		bytes = &s4.sin_addr;
	} else if (a->family == AF_INET6 && a->addrlen >= sizeof(s6)) {
		memcpy(&s6, &a->addr, sizeof(s6));
		bytes = &s6.sin6_addr;
	}
	if (bytes == NULL || !address_allowed(arg, a->family, bytes))
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * And once more before each request, on whatever connection it goes
 * out on: a connection kept from an earlier request was judged for that
 * request's domain, which may have been one the resolve map names.
 */
static int
before_request(void *arg, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	unsigned char bytes[16] = { 0 };
	char ip[INET6_ADDRSTRLEN];
	int family;

	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	(void)snprintf(ip, sizeof(ip), "%s", primary_ip);
	ip[strcspn(ip, "%")] = '\0';	/* an IPv6 zone */
	family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(family, ip, bytes) != 1)
		family = AF_UNSPEC;
	return address_allowed(arg, family, bytes) ? CURL_PREREQFUNC_OK :
	    CURL_PREREQFUNC_ABORT;
}

/*
 * A name that, as a host in a URL, means an IP address: an IPv6
 * literal, or a last label that is a number (libcurl, like browsers,
 * reads 127.1, 0x7f.1 and 2130706433 as IPv4 addresses).
 */
static int
ip_literal(const char *host)
{
	size_t n = strlen(host), i;
	const char *last;

	if (strchr(host, ':') != NULL || host[0] == '[')
		return 1;
	if (n > 0 && host[n - 1] == '.')
		n--;
	last = host + n;
	while (last > host && last[-1] != '.')
		last--;
	if (last == host + n)
		return 0;
	if (last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
		for (i = 2; last + i < host + n; i++)
			if (strchr("0123456789abcdefABCDEF", last[i]) == NULL)
				return 0;
		return 1;
	}
	for (i = 0; last + i < host + n; i++)
		if (last[i] < '0' || last[i] > '9')
			return 0;
	return 1;
}

/* localhost and *.localhost: names for this machine (RFC 6761). */
static int
local_name(const char *host)
{
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	    (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
}

/* The letters of a domain name, and nothing else. */
static int
name_chars(const char *s)
{
	return s[0] != '\0' && s[strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] == '\0';
}

/* A domain to discover: a name on the Internet, not an address. */
static int
domain_check(const char *domain, struct smimp_err *err)
{
	if (ip_literal(domain))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing the "
		    "domain '%.100s': it is an IP address", domain);
	if (!name_chars(domain))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing the "
		    "domain '%.100s': not a domain name", domain);
	if (local_name(domain))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing the "
		    "domain '%.100s': it names this machine", domain);
	return 0;
}

/* host is domain, or a subdomain of it (any case). */
static int
on_domain(const char *host, const char *domain)
{
	size_t h = strlen(host), d = strlen(domain);

	if (!name_chars(host) || ip_literal(host) || local_name(host))
		return 0;
	return (h == d && strcasecmp(host, domain) == 0) || (h > d + 1 &&
	    host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0);
}

/* An '@' before the path: a user name, however libcurl reads it. */
static int
user_info(const char *url)
{
	const char *p = strstr(url, "://");

	p = p != NULL ? p + 3 : url;
	return memchr(p, '@', strcspn(p, "/?#")) != NULL;
}

/* url's host and port (the scheme's default when it names none). */
static int
url_host_port(CURLU *u, const char *url, char **host, char **port)
{
	*host = NULL;
	*port = NULL;
	if (cu.url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    cu.url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
	    cu.url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK)
		return -1;
	return 0;
}

/* Does url go to the HOST:PORT the resolve map names for domain? */
static int
map_target(const struct remote *r, const char *domain, const char *scheme,
    const char *host, const char *port)
{
	char hostport[300], url[400];
	char *mhost = NULL, *mport = NULL;
	CURLU *u;
	int same = 0;

	if (!mapped(r, domain, hostport, sizeof(hostport)) ||
	    (size_t)snprintf(url, sizeof(url), "%s://%s/", scheme, hostport) >=
	    sizeof(url) || (u = cu.url()) == NULL)
		return 0;
	if (url_host_port(u, url, &mhost, &mport) == 0)
		same = strcasecmp(mhost, host) == 0 && strcmp(mport, port) == 0;
	cu.free(mhost);
	cu.free(mport);
	cu.url_cleanup(u);
	return same;
}

/*
 * May a request for domain go to url?  https (http only for domains
 * allowed it), no user name, and a host that is domain itself or a
 * subdomain of it, or the HOST:PORT the resolve map names for domain:
 * then *any_address is set, since the operator chose that host.
 */
static int
target_check(const struct remote *r, const char *domain, const char *url,
    int *any_address, struct smimp_err *err)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	CURLU *u = cu.url();
	int http, ret = -1;

	*any_address = 0;
	if (u == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	if (url_host_port(u, url, &host, &port) != 0 ||
	    cu.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing '%.100s' for "
		    "%s: not a URL", url, domain);
		goto out;
	}
	http = strcmp(scheme, "http") == 0;
	if (strcmp(scheme, "https") != 0 && !(http && r->o.allow_http !=
	    NULL && list_has(r->o.allow_http, domain))) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing '%.100s' for "
		    "%s: only HTTPS (allow plain HTTP for a domain with "
		    "--allow-http)", url, domain);
		goto out;
	}
	if (cu.url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    user_info(url)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing '%.100s' for "
		    "%s: a user name in the URL", url, domain);
		goto out;
	}
	if (map_target(r, domain, scheme, host, port))
		*any_address = 1;
	else if (!on_domain(host, domain)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing '%.100s' for "
		    "%s: not on %s or a subdomain of it", url, domain, domain);
		goto out;
	}
	ret = 0;
out:
	cu.free(scheme);
	cu.free(host);
	cu.free(port);
	cu.free(user);
	cu.url_cleanup(u);
	return ret;
}

static const char *url_path(const char *url);

/* libcurl asks for the next piece of a file body. */
static size_t
feed(char *buf, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t want = size * n;
	ssize_t got;

	if (want > c->out_len)
		want = (size_t)c->out_len;
	if (want == 0)
		return 0;
	do
		got = read(c->out_fd, buf, want);
	while (got < 0 && errno == EINTR);
	if (got <= 0)
		return CURL_READFUNC_ABORT;	/* the file is shorter */
	c->out_len -= (uint64_t)got;
	return (size_t)got;
}

static int
perform(struct remote *r, struct call *c, const char *method,
    const char *url, struct curl_slist *headers, struct remote_reply *rep,
    struct smimp_err *err)
{
	long secs = c->out_len > REMOTE_SHORT_BYTES ||
	    c->cap > REMOTE_SHORT_BYTES ?
	    REMOTE_LONG_SECS : REMOTE_SHORT_SECS;
	CURLcode rc = CURLE_OK;

	cu.easy_reset(r->curl);
	sbuf_init(&rep->body, c->cap);
	rep->status = 0;
	rep->error[0] = '\0';
	rep->requires[0] = '\0';
	rep->date[0] = '\0';
	rep->retry_after = 0;
	c->body = &rep->body;
	c->requires = rep->requires;
	c->date = rep->date;
	c->retry_after = &rep->retry_after;
	c->over = 0;
	c->refused[0] = '\0';
#define SET(opt, v) do { \
	if (rc == CURLE_OK) \
		rc = cu.easy_setopt(r->curl, opt, v); } while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_NOSIGNAL, 1L);
	/* Straight to the server: the address check must see its address. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT, (long)REMOTE_CONNECT_SECS);
	SET(CURLOPT_TIMEOUT, secs);
	SET(CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)REMOTE_SLOW_BYTES);
	SET(CURLOPT_LOW_SPEED_TIME, (long)REMOTE_SLOW_SECS);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cap);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, c);
	SET(CURLOPT_PREREQFUNCTION, before_request);
	SET(CURLOPT_PREREQDATA, c);
	SET(CURLOPT_WRITEFUNCTION, collect);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HEADERFUNCTION, header_line);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_CUSTOMREQUEST, method);
	if (r->o.cacert != NULL)
		SET(CURLOPT_CAINFO, r->o.cacert);
	if (strcmp(method, "POST") == 0 && c->out_fd >= 0) {
		/* Read as it goes out: constant memory whatever the size. */
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_READFUNCTION, feed);
		SET(CURLOPT_READDATA, c);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->out_len);
	} else if (strcmp(method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDS, c->out_len > 0 ? c->out : "");
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->out_len);
	}
#undef SET
	if (rc != CURLE_OK)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up "
		    "libcurl: %s", cu.easy_strerror(rc));
	rc = cu.easy_perform(r->curl);
	if (rc != CURLE_OK) {
		/* A certificate that does not verify will not get better. */
		int tls = rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CACERT_BADFILE;

		sbuf_release(&rep->body);
		if (c->refused[0] != '\0')
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: refusing "
			    "to connect to %s: not a public address",
			    c->domain, c->refused);
		if (c->over || rc == CURLE_FILESIZE_EXCEEDED)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: refusing "
			    "an answer over %zu bytes to %s %.100s", c->domain,
			    c->cap, method, url_path(url));
		return smimp_err_set(err, tls ? SMIMP_EXIT_FAIL :
		    SMIMP_EXIT_TEMPFAIL, "%s: %s", url,
		    cu.easy_strerror(rc));
	}
	if (cu.easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &rep->status) !=
	    CURLE_OK)
		rep->status = 0;
	/* Another place to look is not an answer: only this host's own. */
	if (rep->status >= 300 && rep->status < 400) {
		sbuf_release(&rep->body);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: %s %.100s "
		    "answered HTTP %ld: redirects are refused", c->domain,
		    method, url_path(url), rep->status);
	}
	/* A JSON error answer: {"error":"..."}; keep the text. */
	if (rep->status >= 400 && rep->body.len > 10 &&
	    strncmp(rep->body.buf, "{\"error\":\"", 10) == 0) {
		const char *end = strchr(rep->body.buf + 10, '"');
		size_t n = end != NULL ? (size_t)(end - rep->body.buf - 10) : 0;

		if (n >= sizeof(rep->error))
			n = sizeof(rep->error) - 1;
		memcpy(rep->error, rep->body.buf + 10, n);
		rep->error[n] = '\0';
	}
	return 0;
}

static const struct negative *
negative_find(const struct remote *r, const char *domain, int64_t now)
{
	size_t i;

	for (i = 0; i < NEGATIVE_SLOTS; i++)
		if (r->neg[i].until > now &&
		    strcmp(r->neg[i].domain, domain) == 0)
			return &r->neg[i];
	return NULL;
}

static void
negative_add(struct remote *r, const char *domain,
    const struct smimp_err *err, int64_t now)
{
	struct negative *n = &r->neg[r->neg_next];
	unsigned int secs = r->o.negative_secs != 0 ? r->o.negative_secs :
	    REMOTE_NEGATIVE_SECS;

	if (strlen(domain) >= sizeof(n->domain))
		return;
	r->neg_next = (r->neg_next + 1) % NEGATIVE_SLOTS;
	memcpy(n->domain, domain, strlen(domain) + 1);
	n->until = now + (int64_t)secs;
	n->code = err->code;
	memcpy(n->msg, err->msg, sizeof(n->msg));
}

int
remote_discovery_url(const struct remote *r, const char *domain, char *url,
    size_t cap, struct smimp_err *err)
{
	char hostport[300];
	size_t n;

	if (mapped(r, domain, hostport, sizeof(hostport)))
		n = (size_t)snprintf(url, cap, "%s://%s/.well-known/smimp.txt",
		    r->o.allow_http != NULL && list_has(r->o.allow_http, domain)
		    ? "http" : "https", hostport);
	else
		n = (size_t)snprintf(url, cap,
		    "https://%s/.well-known/smimp.txt", domain);
	return n < cap ? 0 : smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: "
	    "discovery URL too long", domain);
}

/* Ask domain for its base URL; the answer is checked like the URL. */
static int
discover(struct remote *r, const char *domain, char *base, size_t cap,
    struct smimp_err *err)
{
	struct remote_reply rep;
	struct call c;
	char url[512];
	size_t len, i;
	int any, ret = -1;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.cap = REMOTE_MAX_DISCOVERY;
	c.out_fd = -1;
	if (remote_discovery_url(r, domain, url, sizeof(url), err) != 0 ||
	    target_check(r, domain, url, &c.any_address, err) != 0 ||
	    perform(r, &c, "GET", url, NULL, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		smimp_err_set(err, rep.status >= 500 ? SMIMP_EXIT_TEMPFAIL :
		    SMIMP_EXIT_FAIL, "%s: no smimp service (HTTP %ld)", domain,
		    rep.status);
		goto out;
	}
	len = rep.body.len;
	while (len > 0 && (rep.body.buf[len - 1] == '\n' ||
	    rep.body.buf[len - 1] == '\r'))
		len--;
	for (i = 0; i < len; i++)
		if (rep.body.buf[i] <= ' ' || rep.body.buf[i] > '~')
			break;
	if (len == 0 || len >= cap || i < len) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: bad discovery answer",
		    domain);
		goto out;
	}
	rep.body.buf[len] = '\0';
	if (target_check(r, domain, rep.body.buf, &any, err) != 0)
		goto out;
	memcpy(base, rep.body.buf, len + 1);
	ret = 0;
out:
	remote_reply_release(&rep);
	return ret;
}

void
remote_forget(struct remote *r, const char *domain)
{
	size_t i;

	for (i = 0; i < NEGATIVE_SLOTS; i++)
		if (strcmp(r->neg[i].domain, domain) == 0)
			r->neg[i].until = 0;
}

int
remote_base(struct remote *r, const char *domain, char *base, size_t cap,
    struct smimp_err *err)
{
	const struct negative *neg;
	char hostport[300];
	int64_t now = time_now();
	size_t len;

	if (strcmp(r->last_domain, domain) == 0 &&
	    strlen(r->last_base) < cap) {
		memcpy(base, r->last_base, strlen(r->last_base) + 1);
		return 0;
	}
	neg = negative_find(r, domain, now);
	if (neg != NULL)
		return smimp_err_set(err, neg->code, "%s", neg->msg);
	/* The resolve map is the operator's word: it may name anything. */
	if (!mapped(r, domain, hostport, sizeof(hostport)) &&
	    domain_check(domain, err) != 0)
		return -1;
	if (discover(r, domain, base, cap, err) != 0) {
		negative_add(r, domain, err, now);
		return -1;
	}
	len = strlen(base);
	if (len < sizeof(r->last_base) && strlen(domain) <
	    sizeof(r->last_domain)) {
		memcpy(r->last_base, base, len + 1);
		memcpy(r->last_domain, domain, strlen(domain) + 1);
	}
	return 0;
}

/* The path part of base + path, as the signature covers it. */
static const char *
url_path(const char *url)
{
	const char *p = strstr(url, "://");

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	return p != NULL ? p : "/";
}

/*
 * The name and value of each "Name: value" line of extra, for the
 * signature; -1 if a line is malformed or there are too many.
 */
static int
split_headers(const char *const *extra, char (*names)[64],
    struct reqsig_header *h, size_t *n, struct smimp_err *err)
{
	const char *colon, *v;

	for (*n = 0; extra != NULL && extra[*n] != NULL; (*n)++) {
		colon = strchr(extra[*n], ':');
		if (*n == REQSIG_HEADERS_MAX || colon == NULL ||
		    (size_t)(colon - extra[*n]) >= sizeof(names[0]) ||
		    strpbrk(extra[*n], "\r\n") != NULL)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "bad request "
			    "header");
		memcpy(names[*n], extra[*n], (size_t)(colon - extra[*n]));
		names[*n][colon - extra[*n]] = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		h[*n].name = names[*n];
		h[*n].value = v;
	}
	return 0;
}

/*
 * A request whose body (c->out or c->out_fd, c->out_len) hashes to hash;
 * see remote_request.
 */
static int
request(struct remote *r, struct call *c, const char *method,
    const char *domain, const char *base, const char *path,
    const unsigned char hash[32], const struct signer *signer,
    const char *const *extra, struct remote_reply *rep,
    struct smimp_err *err)
{
	struct curl_slist *headers = NULL, *h;
	struct reqsig_header sh[REQSIG_HEADERS_MAX];
	char names[REQSIG_HEADERS_MAX][64];
	char url[1024], line[512], hex[REQSIG_HASH_STRLEN];
	struct reqsig rs;
	size_t nh;
	int ret = -1;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >=
	    sizeof(url))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "URL too long");
	if (target_check(r, domain, url, &c->any_address, err) != 0)
		return -1;
	if (signer != NULL) {
		if (split_headers(extra, names, sh, &nh, err) != 0 ||
		    reqsig_sign(&rs, signer, method, domain, url_path(url),
		    hash, sh, nh, time_now(), err) != 0)
			return -1;
		sodium_bin2hex(hex, sizeof(hex), hash, 32);
#define ADD(fmt, v) do { \
	(void)snprintf(line, sizeof(line), fmt, v); \
	h = cu.slist_append(headers, line); \
	if (h == NULL) goto nomem; \
	headers = h; } while (0)
		ADD(REQSIG_H_SIGNER ": %s", rs.signer);
		ADD(REQSIG_H_DATE ": %s", rs.date);
		ADD(REQSIG_H_NONCE ": %s", rs.nonce);
		ADD(REQSIG_H_SIGNATURE ": %s", rs.signature);
		ADD(REQSIG_H_BODY_HASH ": %s", hex);
	}
	/* Appended as they are: a recipient list can be long. */
	for (; extra != NULL && *extra != NULL; extra++) {
		h = cu.slist_append(headers, *extra);
		if (h == NULL)
			goto nomem;
		headers = h;
	}
	ADD("%s", "Content-Type: application/octet-stream");
	/*
	 * A server answers from the headers whether it will take the body
	 * (authentication, size): wait for its word before sending a large
	 * one.  A small one goes with the headers: sending it costs less
	 * than the round trip, on both sides, and a refusal wastes little.
	 */
	ADD("%s", c->out_len > REMOTE_EXPECT_ABOVE ? "Expect: 100-continue" :
	    "Expect:");
#undef ADD
	ret = perform(r, c, method, url, headers, rep, err);
	goto out;
nomem:
	smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
out:
	cu.slist_free_all(headers);
	return ret;
}

int
remote_request(struct remote *r, const char *method, const char *domain,
    const char *base, const char *path, const void *body, size_t len,
    const struct signer *signer, const char *const *extra, size_t cap,
    struct remote_reply *rep, struct smimp_err *err)
{
	unsigned char hash[32];
	struct call c;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.cap = cap;
	c.out = body;
	c.out_fd = -1;
	c.out_len = len;
	reqsig_body_hash(hash, body, len);
	return request(r, &c, method, domain, base, path, hash, signer, extra,
	    rep, err);
}

int
remote_request_fd(struct remote *r, const char *method, const char *domain,
    const char *base, const char *path, int fd, uint64_t len,
    const struct signer *signer, const char *const *extra, size_t cap,
    struct remote_reply *rep, struct smimp_err *err)
{
	crypto_generichash_state hs;
	unsigned char hash[32], buf[64 * 1024];
	uint64_t left = len;
	struct call c;
	ssize_t got;

	/* The hash first, for the signature; then the file goes out. */
	(void)crypto_generichash_init(&hs, NULL, 0, 32);
	if (lseek(fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "body");
	while (left > 0) {
		got = read(fd, buf, left < sizeof(buf) ? (size_t)left :
		    sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read "
			    "the body");
		(void)crypto_generichash_update(&hs, buf, (size_t)got);
		left -= (uint64_t)got;
	}
	(void)crypto_generichash_final(&hs, hash, 32);
	if (lseek(fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "body");
	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.cap = cap;
	c.out_fd = fd;
	c.out_len = len;
	return request(r, &c, method, domain, base, path, hash, signer, extra,
	    rep, err);
}

int
remote_server_key(struct remote *r, const char *domain, const char *base,
    unsigned char key[32], struct smimp_err *err)
{
	struct remote_reply rep;
	json_t *meta;
	const char *k, *d;
	int ret = 0;

	if (remote_request(r, "GET", domain, base, "/v1/meta", NULL, 0, NULL,
	    NULL, REMOTE_MAX_META, &rep, err) != 0)
		return -1;
	meta = rep.status == 200 ? json_loadb(rep.body.buf, rep.body.len, 0,
	    NULL) : NULL;
	remote_reply_release(&rep);
	k = json_string_value(json_object_get(meta, "server_key"));
	d = json_string_value(json_object_get(meta, "domain"));
	if (k == NULL || d == NULL || strcmp(d, domain) != 0 ||
	    b64_decode_exact(k, strlen(k), key, 32) != 0)
		ret = smimp_err_set(err, SMIMP_EXIT_FAIL, "%s publishes no "
		    "server key", domain);
	json_decref(meta);
	return ret;
}
