/*
 * check.c - smimpd check: is this server fit to serve, one line per
 * check, before its users find out?  The configuration as serving needs
 * it, the store (it opens, its schema, its integrity), the server key,
 * the TLS certificate and key (they load, they match, the chain is in
 * order, not expired, and renewed in time), and the discovery of its
 * own domain as a client resolves it: does it lead to this very server?
 * Also the report that every check, here and in peercheck.c, writes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "admin.h"
#include "clientconf.h"
#include "exitcode.h"
#include "remote.h"
#include "server.h"
#include "util.h"
#include "vis.h"
#include "banned.h"

static const char *const status_words[] = { "ok", "warn", "FAIL", "skip" };

void
check_init(struct check_report *cr, int json)
{
	memset(cr, 0, sizeof(*cr));
	cr->json = json;
	if (json)
		cr->checks = json_array();
}

int64_t
check_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
check_say(struct check_report *cr, const char *name, enum check_status st,
    int64_t ms, json_t *details, const char *fmt, ...)
{
	char msg[CHECK_MSG_MAX], safe[CHECK_MSG_MAX];
	json_t *o;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Valid UTF-8 without controls, for a terminal and for JSON. */
	vis_line(msg, safe, sizeof(safe));
	cr->n++;
	cr->failed += st == CHECK_FAIL;
	if (!cr->json) {
		json_decref(details);
		printf("%-4s %s: %s", status_words[st], name, safe);
		if (ms >= 0)
			printf(" (%lld ms)", (long long)ms);
		putchar('\n');
		return;
	}
	o = json_is_object(details) ? details : json_object();
	if (o != details)
		json_decref(details);
	(void)json_object_set_new(o, "name", json_string(name));
	(void)json_object_set_new(o, "status", json_string(status_words[st]));
	(void)json_object_set_new(o, "message", json_string(safe));
	(void)json_object_set_new(o, "ms", ms >= 0 ? json_integer(ms) :
	    json_null());
	(void)json_array_append_new(cr->checks, o);
}

int
check_done(struct check_report *cr, const char *about,
    struct smimp_err *err)
{
	json_t *doc;

	if (cr->json) {
		doc = json_pack("{s:o,s:b,s:o}", "domain", about != NULL ?
		    json_string(about) : json_null(), "ok", cr->failed == 0,
		    "checks", cr->checks);
		cr->checks = NULL;
		if (admin_json_line(doc, err) != 0)
			return -1;
	}
	if (cr->failed > 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%u of %u checks "
		    "failed", cr->failed, cr->n);
	return 0;
}

int
check_url_host(const char *url, char *host, size_t hcap, char *port,
    size_t pcap)
{
	const char *p = strstr(url, "://"), *end, *colon;
	size_t n;

	if (p == NULL)
		return -1;
	p += 3;
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		colon = memchr(p, ']', (size_t)(end - p));
		if (colon == NULL)
			return -1;
		n = (size_t)(colon - p - 1);
		p++;
		colon = colon + 1 < end && colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		n = (size_t)((colon != NULL ? colon : end) - p);
	}
	if (n == 0 || n >= hcap)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	if (colon != NULL && (size_t)(end - colon - 1) < pcap &&
	    end > colon + 1) {
		memcpy(port, colon + 1, (size_t)(end - colon - 1));
		port[end - colon - 1] = '\0';
	} else {
		(void)snprintf(port, pcap, "%s", strncmp(url, "http://", 7) ==
		    0 ? "80" : "443");
	}
	return 0;
}

/* Never the URI of a database: it may hold a password. */
static const char *
store_name(const struct smimpd_config *cfg)
{
	return strncmp(cfg->store, "postgresql:", 11) == 0 ? "PostgreSQL" :
	    cfg->store;
}

/* What serving needs of the settings: 0, or -1 said. */
static int
check_config(struct check_report *cr, struct smimpd_config *cfg)
{
	struct smimp_err e;

	if (config_finish(cfg, 1, &e) != 0) {
		check_say(cr, "config", CHECK_FAIL, -1, NULL, "%s", e.msg);
		return -1;
	}
	check_say(cr, "config", CHECK_OK, -1, json_pack("{s:s,s:s,s:s}",
	    "domain", cfg->domain, "listen", cfg->listen, "base_url",
	    cfg->base_url), "domain %s, listening on %s, base URL %s",
	    cfg->domain, cfg->listen, cfg->base_url);
	return 0;
}

/* The store, checked: open for the checks after it, or NULL. */
static struct store *
check_store(struct check_report *cr, const struct smimpd_config *cfg)
{
	struct store_health h;
	struct smimp_err e;
	struct store *st;
	int64_t t0 = check_ms();
	int r;

	/* A mistyped --data gets no new store: check changes nothing. */
	r = store_exists(cfg->store, &e);
	if (r == 0) {
		check_say(cr, "store", CHECK_WARN, -1, NULL,
		    "none in %s yet: smimpd makes it when it first starts",
		    cfg->datadir);
		return NULL;
	}
	st = r < 0 ? NULL : server_store_open(cfg, 0, &e);
	if (st == NULL) {
		check_say(cr, "store", CHECK_FAIL, check_ms() - t0, NULL, "%s",
		    e.msg);
		return NULL;
	}
	r = store_check(st, &h, &e);
	if (r != STORE_OK)
		check_say(cr, "store", CHECK_FAIL, check_ms() - t0, NULL,
		    "%s: %s", store_name(cfg), e.msg);
	else if (h.problem[0] != '\0')
		check_say(cr, "store", CHECK_FAIL, check_ms() - t0,
		    json_pack("{s:I}", "schema", (json_int_t)h.version),
		    "%s, schema version %lld: %s", store_name(cfg),
		    (long long)h.version, h.problem);
	else
		check_say(cr, "store", CHECK_OK, check_ms() - t0,
		    json_pack("{s:I}", "schema", (json_int_t)h.version),
		    "%s, schema version %lld, %s", store_name(cfg),
		    (long long)h.version, h.integrity ? "integrity checked" :
		    "opens");
	return st;
}

/*
 * The key the domain's nodes sign with, as a shared store st records
 * it, in base64: 1, 0 none recorded (or no store: its own check says
 * why), -1 a store that cannot say.
 */
static int
recorded_key(struct store *st, char *b64, size_t cap, struct smimp_err *e)
{
	unsigned char pk[32];
	int r;

	if (st == NULL)
		return 0;
	r = store_server_key(st, NULL, pk, e);
	if (r == STORE_NOT_FOUND)
		return 0;
	if (r != STORE_OK)
		return -1;
	sodium_bin2base64(b64, cap, pk, 32, sodium_base64_VARIANT_ORIGINAL);
	return 1;
}

/* The server key: 1 with its public half in pk, 0 none yet, -1 bad. */
static int
check_server_key(struct check_report *cr, const struct smimpd_config *cfg,
    struct store *st, unsigned char pk[32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char theirs[sizeof(b64)];
	struct smimp_err e;
	int r, rec;

	r = serverkey_public(cfg->datadir, pk, &e);
	if (r < 0) {
		check_say(cr, "server-key", CHECK_FAIL, -1, NULL, "%s", e.msg);
		return -1;
	}
	/* Several nodes of one store sign with the key it records. */
	rec = recorded_key(st, theirs, sizeof(theirs), &e);
	if (rec < 0) {
		check_say(cr, "server-key", CHECK_FAIL, -1, NULL, "%s", e.msg);
		return -1;
	}
	if (r == 1 && rec == 1) {
		check_say(cr, "server-key", CHECK_FAIL, -1, NULL, "none in %s: "
		    "the nodes of %s sign with the server key %s, which the "
		    "store records; copy server.key from one of them",
		    cfg->datadir, cfg->domain, theirs);
		return -1;
	}
	if (r == 1) {
		check_say(cr, "server-key", CHECK_WARN, -1, NULL, "none in %s "
		    "yet: smimpd makes it when it first starts", cfg->datadir);
		return 0;
	}
	sodium_bin2base64(b64, sizeof(b64), pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	if (rec == 1 && strcmp(b64, theirs) != 0) {
		check_say(cr, "server-key", CHECK_FAIL, -1, NULL, "%s/server.key "
		    "(%s) is not the key the nodes of %s sign with, %s, which "
		    "the store records; copy server.key from one of them",
		    cfg->datadir, b64, cfg->domain, theirs);
		return -1;
	}
	check_say(cr, "server-key", CHECK_OK, -1, json_pack("{s:s}",
	    "server_key", b64), "%s/server.key, public key %s%s", cfg->datadir,
	    b64, rec == 1 ? ", the one the store records" : "");
	return 1;
}

static void
check_certificate(struct check_report *cr, const struct smimpd_config *cfg)
{
	struct tls_report r;
	char host[256], port[16];

	if (cfg->plain_http) {
		check_say(cr, "certificate", CHECK_SKIP, -1, NULL, "plain "
		    "HTTP: TLS is the proxy's in front");
		return;
	}
	if (check_url_host(cfg->base_url, host, sizeof(host), port,
	    sizeof(port)) != 0)
		host[0] = '\0';
	tls_check_files(cfg->cert, cfg->key, host, time_now(), &r);
	check_say(cr, "certificate", r.status, -1, r.details, "%s", r.msg);
}

/*
 * How clients reach other servers: their environment (SMIMP_RESOLVE,
 * SMIMP_CACERT, SMIMP_ALLOW_HTTP), else what the server itself uses.
 */
void
check_remote_opts(const struct smimpd_config *cfg, struct remote_opts *o)
{
	memset(o, 0, sizeof(*o));
	clientconf_from_env(o);
	if (o->resolve == NULL && cfg->resolve[0] != '\0')
		o->resolve = cfg->resolve;
	if (o->cacert == NULL && cfg->cacert[0] != '\0')
		o->cacert = cfg->cacert;
	if (o->allow_http == NULL && cfg->allow_http[0] != '\0')
		o->allow_http = cfg->allow_http;
}

/* A URL without its trailing slashes, for comparing. */
static size_t
url_len(const char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}

/* Does the domain's discovery lead to this server (its key)? */
static void
check_discovery(struct check_report *cr, const struct smimpd_config *cfg,
    const unsigned char *pk)
{
	struct remote_opts o;
	struct smimp_err e;
	struct remote *r;
	unsigned char key[32];
	char base[512];
	int64_t t0 = check_ms();

	check_remote_opts(cfg, &o);
	r = remote_new(&o, &e);
	if (r == NULL) {
		check_say(cr, "discovery", CHECK_FAIL, -1, NULL, "%s", e.msg);
		return;
	}
	if (remote_base(r, cfg->domain, base, sizeof(base), &e) != 0)
		check_say(cr, "discovery", CHECK_FAIL, check_ms() - t0, NULL,
		    "cannot discover %s: %s", cfg->domain, e.msg);
	else if (url_len(base) != url_len(cfg->base_url) || strncmp(base,
	    cfg->base_url, url_len(base)) != 0)
		check_say(cr, "discovery", CHECK_FAIL, check_ms() - t0,
		    json_pack("{s:s}", "base_url", base), "%s names %s, not "
		    "this server's base URL %s", cfg->domain, base,
		    cfg->base_url);
	else if (remote_server_key(r, cfg->domain, base, key, &e) != 0)
		check_say(cr, "discovery", CHECK_FAIL, check_ms() - t0,
		    json_pack("{s:s}", "base_url", base), "%s", e.msg);
	else if (pk != NULL && sodium_memcmp(key, pk, 32) != 0)
		check_say(cr, "discovery", CHECK_FAIL, check_ms() - t0,
		    json_pack("{s:s}", "base_url", base), "%s leads to %s, "
		    "whose server key is not the one in %s: another server "
		    "answers there", cfg->domain, base, cfg->datadir);
	else
		check_say(cr, "discovery", pk != NULL ? CHECK_OK : CHECK_WARN,
		    check_ms() - t0, json_pack("{s:s}", "base_url", base),
		    "%s leads to %s%s", cfg->domain, base, pk != NULL ?
		    ", which publishes this server's key" : "; no server key "
		    "here to compare with its own");
	remote_free(r);
}

/* smimpd check: this server, every check, whatever failed before. */
static int
check_self(int json, struct smimpd_config *cfg, struct smimp_err *err)
{
	struct check_report cr;
	struct store *st;
	unsigned char pk[32];
	int config_ok, have_key;

	check_init(&cr, json);
	config_ok = check_config(&cr, cfg) == 0;
	st = check_store(&cr, cfg);
	have_key = check_server_key(&cr, cfg, st, pk) == 1;
	if (st != NULL)
		store_close(st);
	if (config_ok) {
		check_certificate(&cr, cfg);
		check_discovery(&cr, cfg, have_key ? pk : NULL);
	} else {
		check_say(&cr, "certificate", CHECK_SKIP, -1, NULL, "the "
		    "configuration is not complete");
		check_say(&cr, "discovery", CHECK_SKIP, -1, NULL, "the "
		    "configuration is not complete");
	}
	return check_done(&cr, cfg->domain[0] != '\0' ? cfg->domain : NULL,
	    err);
}

int
check_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	struct admin_args a;
	char domain[ADDRESS_DOMAIN_MAX + 1];
	struct smimp_err e;

	if (admin_args_parse("check", args, nargs, ADMIN_JSON, 1, &a,
	    err) != 0)
		return -1;
	if (a.nwords == 0)
		return check_self((a.flags & ADMIN_JSON) != 0, cfg, err);
	if (domain_normalize(a.word[0], domain, &e) != 0)
		return admin_usage(err, "check: %s", e.msg);
	return peercheck_run(domain, (a.flags & ADMIN_JSON) != 0, cfg, err);
}
