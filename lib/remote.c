#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include <curl/curl.h>
#include <jansson.h>

#include "address.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
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

struct remote {
	CURL *curl;
	struct remote_opts o;
	struct curl_slist *resolve;
	/* The last discovery, reused for the rest of the run. */
	char last_domain[ADDRESS_DOMAIN_MAX + 1];
	char last_base[512];
};

/* One exchange, as the callbacks see it. */
struct call {
	const char *domain;
	size_t cap;			/* of the answer */
	int over;			/* the answer went past cap */
	struct sbuf *body;
};

/* An environment variable, unset when empty. */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

void
remote_opts_from_env(struct remote_opts *o)
{
	if (o->resolve == NULL)
		o->resolve = env("SMIMP_RESOLVE");
	if (o->cacert == NULL)
		o->cacert = env("SMIMP_CACERT");
	if (o->allow_http == NULL)
		o->allow_http = env("SMIMP_ALLOW_HTTP");
}

/* One "name value" line of the client config into o's own buffers. */
static int
config_line(struct remote_opts *o, const char *path, size_t lineno,
    char *line, struct smimp_err *err)
{
	char *value, *end;
	char *dst;
	const char **field;
	size_t cap;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	value = line + strcspn(line, " \t");
	if (*value != '\0')
		*value++ = '\0';
	while (*value == ' ' || *value == '\t')
		value++;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	if (strcmp(line, "resolve") == 0) {
		field = &o->resolve;
		dst = o->file_resolve;
		cap = sizeof(o->file_resolve);
	} else if (strcmp(line, "cacert") == 0) {
		field = &o->cacert;
		dst = o->file_cacert;
		cap = sizeof(o->file_cacert);
	} else if (strcmp(line, "allow-http") == 0) {
		field = &o->allow_http;
		dst = o->file_allow_http;
		cap = sizeof(o->file_allow_http);
	} else
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: unknown "
		    "setting '%.40s'", path, lineno, line);
	if (*value == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: %s needs "
		    "a value", path, lineno, line);
	if (strlen(value) >= cap)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: %s is too "
		    "long", path, lineno, line);
	if (*field != NULL && *field != dst)
		return 0;	/* a flag or the environment said otherwise */
	memcpy(dst, value, strlen(value) + 1);
	*field = dst;
	return 0;
}

int
remote_opts_defaults(struct remote_opts *o, struct smimp_err *err)
{
	char home[PATH_MAX], path[PATH_MAX];
	unsigned char *buf;
	char *line, *next;
	size_t len, lineno = 0;
	const char *cfg = env("SMIMP_CONFIG");
	int ret = 0;

	remote_opts_from_env(o);
	if (cfg == NULL) {
		if (smimp_home(home, sizeof(home), err) != 0)
			return -1;
		if ((size_t)snprintf(path, sizeof(path), "%s/config", home) >=
		    sizeof(path))
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "SMIMP_HOME is too long");
		if (access(path, F_OK) != 0)
			return 0;	/* no config file: fine */
		cfg = path;
	}
	if (file_read_all(cfg, 64 * 1024, &buf, &len, err) != 0)
		return -1;
	for (line = (char *)buf; line != NULL && ret == 0; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		ret = config_line(o, cfg, lineno, line, err);
	}
	free(buf);
	return ret;
}

/* Is name in the comma-separated list? */
static int
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0' ||
		    p[n] == '='))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

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

struct remote *
remote_new(const struct remote_opts *o, struct smimp_err *err)
{
	struct remote *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	r->o = *o;
	if (curl_load(err) != 0) {
		free(r);
		return NULL;
	}
	if ((r->curl = cu.easy_init()) == NULL) {
		free(r);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start libcurl");
		return NULL;
	}
	return r;
}

void
remote_free(struct remote *r)
{
	if (r == NULL)
		return;
	cu.easy_cleanup(r->curl);
	cu.slist_free_all(r->resolve);
	free(r);
}

void
remote_reply_release(struct remote_reply *rep)
{
	sbuf_release(&rep->body);
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

/* Plain HTTP only for domains the user named. */
static int
url_allowed(const struct remote *r, const char *domain, const char *url,
    struct smimp_err *err)
{
	if (strncmp(url, "https://", 8) == 0)
		return 0;
	if (strncmp(url, "http://", 7) == 0 && r->o.allow_http != NULL &&
	    in_list(r->o.allow_http, domain))
		return 0;
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "refusing '%.100s' for "
	    "%s: only HTTPS (allow plain HTTP for a domain with "
	    "--allow-http)", url, domain);
}

static const char *url_path(const char *url);

static int
perform(struct remote *r, struct call *c, const char *method,
    const char *url, const void *body, size_t len,
    struct curl_slist *headers, struct remote_reply *rep,
    struct smimp_err *err)
{
	long secs = len > REMOTE_SHORT_BYTES || c->cap > REMOTE_SHORT_BYTES ?
	    REMOTE_LONG_SECS : REMOTE_SHORT_SECS;
	CURLcode rc = CURLE_OK;

	cu.easy_reset(r->curl);
	sbuf_init(&rep->body, c->cap);
	rep->status = 0;
	rep->error[0] = '\0';
	c->body = &rep->body;
	c->over = 0;
#define SET(opt, v) do { \
	if (rc == CURLE_OK) \
		rc = cu.easy_setopt(r->curl, opt, v); } while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT, (long)REMOTE_CONNECT_SECS);
	SET(CURLOPT_TIMEOUT, secs);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)REMOTE_SLOW_BYTES);
	SET(CURLOPT_LOW_SPEED_TIME, (long)REMOTE_SLOW_SECS);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cap);
	SET(CURLOPT_WRITEFUNCTION, collect);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_CUSTOMREQUEST, method);
	if (r->o.cacert != NULL)
		SET(CURLOPT_CAINFO, r->o.cacert);
	if (strcmp(method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDS, len > 0 ? body : "");
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
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

int
remote_base(struct remote *r, const char *domain, char *base, size_t cap,
    struct smimp_err *err)
{
	struct remote_reply rep;
	struct call c;
	char hostport[300], url[512];
	size_t len;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.cap = REMOTE_MAX_DISCOVERY;
	if (strcmp(r->last_domain, domain) == 0 &&
	    strlen(r->last_base) < cap) {
		memcpy(base, r->last_base, strlen(r->last_base) + 1);
		return 0;
	}
	if (mapped(r, domain, hostport, sizeof(hostport)))
		(void)snprintf(url, sizeof(url), "%s://%s/.well-known/smimp.txt",
		    r->o.allow_http != NULL && in_list(r->o.allow_http, domain)
		    ? "http" : "https", hostport);
	else
		(void)snprintf(url, sizeof(url),
		    "https://%s/.well-known/smimp.txt", domain);
	if (url_allowed(r, domain, url, err) != 0 ||
	    perform(r, &c, "GET", url, NULL, 0, NULL, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		smimp_err_set(err, rep.status >= 500 ? SMIMP_EXIT_TEMPFAIL :
		    SMIMP_EXIT_FAIL, "%s: no smimp service (HTTP %ld)", domain,
		    rep.status);
		remote_reply_release(&rep);
		return -1;
	}
	len = rep.body.len;
	while (len > 0 && (rep.body.buf[len - 1] == '\n' ||
	    rep.body.buf[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= cap || memchr(rep.body.buf, '\n', len) ||
	    url_allowed(r, domain, rep.body.buf, err) != 0) {
		if (err->msg[0] == '\0' || len == 0 || len >= cap)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: bad discovery "
			    "answer", domain);
		remote_reply_release(&rep);
		return -1;
	}
	memcpy(base, rep.body.buf, len);
	base[len] = '\0';
	remote_reply_release(&rep);
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

int
remote_request(struct remote *r, const char *method, const char *domain,
    const char *base, const char *path, const void *body, size_t len,
    const char *signer, const unsigned char *secret,
    const char *const *extra, size_t cap, struct remote_reply *rep,
    struct smimp_err *err)
{
	struct curl_slist *headers = NULL, *h;
	unsigned char hash[32];
	struct reqsig rs;
	struct call c;
	char url[1024], line[512];
	int ret = -1;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.cap = cap;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >=
	    sizeof(url))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "URL too long");
	if (url_allowed(r, domain, url, err) != 0)
		return -1;
	if (secret != NULL) {
		reqsig_body_hash(hash, len > 0 ? body : "", len);
		if (reqsig_sign(&rs, signer, method, domain, url_path(url),
		    hash, secret, time_now(), err) != 0)
			return -1;
#define ADD(fmt, v) do { \
	(void)snprintf(line, sizeof(line), fmt, v); \
	h = cu.slist_append(headers, line); \
	if (h == NULL) goto nomem; \
	headers = h; } while (0)
		ADD(REQSIG_H_SIGNER ": %s", rs.signer);
		ADD(REQSIG_H_DATE ": %s", rs.date);
		ADD(REQSIG_H_NONCE ": %s", rs.nonce);
		ADD(REQSIG_H_SIGNATURE ": %s", rs.signature);
	}
	for (; extra != NULL && *extra != NULL; extra++)
		ADD("%s", *extra);
	ADD("%s", "Content-Type: application/octet-stream");
	ADD("%s", "Expect:");
#undef ADD
	ret = perform(r, &c, method, url, body, len, headers, rep, err);
	goto out;
nomem:
	smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
out:
	cu.slist_free_all(headers);
	return ret;
}

int
remote_lookup(struct remote *r, const char *address, struct idlog *log,
    struct smimp_err *err)
{
	const char *domain = address_domain(address);
	struct remote_reply rep;
	char base[512], path[400];
	int ret;

	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", address);
	if (remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, "GET", domain, base, path, NULL, 0, NULL, NULL,
	    NULL, IDLOG_MAX_BYTES, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		ret = smimp_err_set(err, rep.status >= 500 ?
		    SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_FAIL, "%s: not found in "
		    "the directory of %s (HTTP %ld)", address, domain,
		    rep.status);
		remote_reply_release(&rep);
		return ret;
	}
	ret = idlog_parse(log, (unsigned char *)rep.body.buf, rep.body.len,
	    err);
	remote_reply_release(&rep);
	if (ret == 0 && strcmp(log->address, address) != 0) {
		idlog_release(log);
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the directory of "
		    "%s answered for %s with the identity of %s", domain,
		    address, log->address);
	}
	return ret;
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
	    NULL, NULL, REMOTE_MAX_META, &rep, err) != 0)
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
