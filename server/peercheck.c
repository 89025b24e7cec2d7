/*
 * peercheck.c - smimpd check DOMAIN: another domain as this server's
 * relay meets it, step by step, each timed, each saying plainly what is
 * wrong: the TLS of its discovery host (chain, names, expiry, version),
 * discovery, the TLS of its API host when that is another, the
 * protocol versions it speaks, its metadata (domain, server key,
 * limits), and how far its clock is from ours (signed requests and
 * delivery stamps allow 300 seconds).  It goes through the relay's own
 * client (remote.h), with the same refusals; whatever another server
 * says is escaped before it is shown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "admin.h"
#include "exitcode.h"
#include "remote.h"
#include "util.h"
#include "banned.h"

/* What signed requests and stamps allow (doc/PROTOCOL.md, 8.2, 8.3). */
#define SKEW_FAIL_S	300
#define SKEW_WARN_S	30

struct peer {
	struct check_report cr;
	struct remote_opts o;
	struct remote *r;
	const char *domain;
	char base[512];
	char date[40];		/* the Date of the last answer */
	int64_t date_at;	/* our time halfway through that exchange */
};

/* The TLS of the host a URL names, unless it is plain HTTP. */
static void
tls_step(struct peer *p, const char *name, const char *url)
{
	struct tls_report r;
	char host[256], port[16];
	int64_t t0 = check_ms();

	if (strncmp(url, "http://", 7) == 0) {
		check_say(&p->cr, name, CHECK_SKIP, -1, NULL, "plain HTTP, "
		    "allowed for %s here", p->domain);
		return;
	}
	if (check_url_host(url, host, sizeof(host), port, sizeof(port)) !=
	    0) {
		check_say(&p->cr, name, CHECK_FAIL, -1, NULL, "no host in %s",
		    url);
		return;
	}
	tls_check_peer(host, port, p->o.cacert, time_now(), &r);
	check_say(&p->cr, name, r.status, check_ms() - t0, r.details, "%s",
	    r.msg);
}

static int
discovery_step(struct peer *p)
{
	struct smimp_err e;
	int64_t t0 = check_ms();

	if (remote_base(p->r, p->domain, p->base, sizeof(p->base), &e) != 0) {
		check_say(&p->cr, "discovery", CHECK_FAIL, check_ms() - t0,
		    NULL, "%s", e.msg);
		return -1;
	}
	check_say(&p->cr, "discovery", CHECK_OK, check_ms() - t0,
	    json_pack("{s:s}", "base_url", p->base), "base URL %s", p->base);
	return 0;
}

/*
 * GET {base}path, a JSON object: the object, or NULL with why said
 * for the step name.  The answer's Date is kept for the clock.
 */
static json_t *
get_json(struct peer *p, const char *name, const char *path, int64_t *ms)
{
	struct remote_reply rep;
	struct smimp_err e;
	json_t *obj = NULL;
	int64_t t0 = check_ms(), before = time_now();

	if (remote_request(p->r, "GET", p->domain, p->base, path, NULL, 0,
	    NULL, NULL, REMOTE_MAX_META, &rep, &e) != 0) {
		*ms = check_ms() - t0;
		check_say(&p->cr, name, CHECK_FAIL, *ms, NULL, "%s", e.msg);
		return NULL;
	}
	*ms = check_ms() - t0;
	if (rep.date[0] != '\0') {
		memcpy(p->date, rep.date, sizeof(p->date));
		p->date_at = before + (time_now() - before) / 2;
	}
	if (rep.status == 200)
		obj = json_loadb(rep.body.buf, rep.body.len, 0, NULL);
	if (rep.status != 200)
		check_say(&p->cr, name, CHECK_FAIL, *ms, NULL, "GET %s%s "
		    "answered HTTP %ld%s%s", p->base, path, rep.status,
		    rep.error[0] != '\0' ? ": " : "", rep.error);
	else if (!json_is_object(obj))
		check_say(&p->cr, name, CHECK_FAIL, *ms, NULL, "GET %s%s "
		    "answered no JSON object", p->base, path);
	remote_reply_release(&rep);
	if (json_is_object(obj))
		return obj;
	json_decref(obj);
	return NULL;
}

/* Does a "versions" array name v1?  1 yes, 0 no, -1 no such array. */
static int
speaks_v1(const json_t *obj, char *list, size_t cap)
{
	const json_t *a = json_object_get(obj, "versions"), *v;
	size_t i, used = 0;
	int found = 0;

	list[0] = '\0';
	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), "v1") ==
		    0)
			found = 1;
		if (json_is_string(v) && used < cap)
			used += (size_t)snprintf(list + used, cap - used,
			    "%s%.20s", used > 0 ? ", " : "",
			    json_string_value(v));
	}
	return found;
}

static void
version_step(struct peer *p)
{
	const char *software;
	char list[200];
	json_t *obj;
	int64_t ms;
	int v1;

	obj = get_json(p, "versions", "/version", &ms);
	if (obj == NULL)
		return;
	software = json_string_value(json_object_get(obj, "software"));
	v1 = speaks_v1(obj, list, sizeof(list));
	if (v1 < 0)
		check_say(&p->cr, "versions", CHECK_FAIL, ms, NULL,
		    "%s/version names no versions", p->base);
	else if (v1 == 0)
		check_say(&p->cr, "versions", CHECK_FAIL, ms, json_pack("{s:s}",
		    "versions", list), "it speaks %s, not v1, the only version "
		    "this server speaks", list[0] != '\0' ? list : "nothing");
	else
		check_say(&p->cr, "versions", CHECK_OK, ms, json_pack("{s:O,"
		    "s:s?}", "versions", json_object_get(obj, "versions"),
		    "software", software), "%s%s%.60s", list, software != NULL ?
		    ", software " : "", software != NULL ? software : "");
	json_decref(obj);
}

/* What is wrong with a server_key value, or NULL: its key in key. */
static const char *
key_problem(const json_t *v, unsigned char key[32])
{
	const char *s = json_string_value(v);

	if (s == NULL)
		return "publishes no server key: its deliveries and bounce "
		    "notices cannot be verified";
	if (b64_decode_exact(s, strlen(s), key, 32) != 0)
		return "publishes a server key that is not 32 bytes of "
		    "base64";
	if (crypto_core_ed25519_is_valid_point(key) == 0)
		return "publishes a server key that is no Ed25519 public key";
	return NULL;
}

static void
meta_step(struct peer *p)
{
	const char *domain, *why;
	unsigned char key[32];
	char list[200];
	json_int_t max;
	json_t *obj;
	int64_t ms;

	obj = get_json(p, "meta", "/v1/meta", &ms);
	if (obj == NULL)
		return;
	domain = json_string_value(json_object_get(obj, "domain"));
	why = key_problem(json_object_get(obj, "server_key"), key);
	max = json_integer_value(json_object_get(json_object_get(obj,
	    "limits"), "max_message_bytes"));
	if (domain == NULL || strcmp(domain, p->domain) != 0)
		check_say(&p->cr, "meta", CHECK_FAIL, ms, NULL, "%s/v1/meta is "
		    "for the domain '%.100s', not %s: the base URL serves "
		    "another domain", p->base, domain != NULL ? domain : "",
		    p->domain);
	else if (why != NULL)
		check_say(&p->cr, "meta", CHECK_FAIL, ms, NULL, "%s %s",
		    p->domain, why);
	else if (speaks_v1(obj, list, sizeof(list)) != 1)
		check_say(&p->cr, "meta", CHECK_FAIL, ms, NULL, "%s/v1/meta "
		    "names versions '%s', without v1", p->base, list);
	else if (max <= 0)
		check_say(&p->cr, "meta", CHECK_WARN, ms, NULL, "server key "
		    "%s, but no message size limit (limits.max_message_bytes)",
		    json_string_value(json_object_get(obj, "server_key")));
	else
		check_say(&p->cr, "meta", CHECK_OK, ms, json_pack("{s:O,s:I}",
		    "server_key", json_object_get(obj, "server_key"),
		    "max_message_bytes", max), "server key %s, messages up to "
		    "%lld bytes", json_string_value(json_object_get(obj,
		    "server_key")), (long long)max);
	json_decref(obj);
}

/* An HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"). */
static int
http_date(const char *s, int64_t *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char wday[4], mon[4], zone[4];
	const char *m;
	struct tm tm;
	int n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wday, &tm.tm_mday,
	    mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, zone,
	    &n) != 8 || s[n] != '\0')
		return -1;
	m = strlen(mon) == 3 ? strstr(months, mon) : NULL;
	if (m == NULL || strcmp(zone, "GMT") != 0 ||
	    (m - months) % 3 != 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_year < 1970 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year -= 1900;
	*t = (int64_t)timegm(&tm);
	return 0;
}

static void
clock_step(struct peer *p)
{
	int64_t theirs, skew, abs;
	enum check_status st;

	if (p->date[0] == '\0') {
		check_say(&p->cr, "clock", CHECK_WARN, -1, NULL, "its answers "
		    "carry no Date: its clock cannot be compared");
		return;
	}
	if (http_date(p->date, &theirs) != 0) {
		check_say(&p->cr, "clock", CHECK_WARN, -1, NULL, "its Date "
		    "'%s' is no HTTP date", p->date);
		return;
	}
	skew = theirs - p->date_at;
	abs = skew < 0 ? -skew : skew;
	st = abs > SKEW_FAIL_S ? CHECK_FAIL : abs > SKEW_WARN_S ? CHECK_WARN :
	    CHECK_OK;
	check_say(&p->cr, "clock", st, -1, json_pack("{s:s,s:I}", "date",
	    p->date, "skew", (json_int_t)skew), "its clock is %lld s %s ours"
	    "%s", (long long)abs, skew < 0 ? "behind" : "ahead of",
	    st == CHECK_FAIL ? ": past the 300 s that signed requests and "
	    "delivery stamps allow, what either server signs the other "
	    "refuses" : st == CHECK_WARN ? ": close to the 300 s that signed "
	    "requests allow" : "");
}

/* The base URL's host and port, if they are not the discovery's. */
static int
other_host(const char *url1, const char *url2)
{
	char h1[256], p1[16], h2[256], p2[16];

	return check_url_host(url1, h1, sizeof(h1), p1, sizeof(p1)) != 0 ||
	    check_url_host(url2, h2, sizeof(h2), p2, sizeof(p2)) != 0 ||
	    strcmp(h1, h2) != 0 || strcmp(p1, p2) != 0 ||
	    strncmp(url1, url2, 5) != 0;
}

int
peercheck_run(const char *domain, int json, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	struct peer p;
	char url[600];
	int ret;

	memset(&p, 0, sizeof(p));
	p.domain = domain;
	check_remote_opts(cfg, &p.o);
	p.r = remote_new(&p.o, err);
	if (p.r == NULL)
		return -1;
	check_init(&p.cr, json);
	if (remote_discovery_url(p.r, domain, url, sizeof(url), err) != 0) {
		remote_free(p.r);
		return -1;
	}
	tls_step(&p, "tls", url);
	if (discovery_step(&p) == 0) {
		if (other_host(url, p.base))
			tls_step(&p, "tls-api", p.base);
		version_step(&p);
		meta_step(&p);
		clock_step(&p);
	} else {
		check_say(&p.cr, "versions", CHECK_SKIP, -1, NULL, "no base "
		    "URL");
		check_say(&p.cr, "meta", CHECK_SKIP, -1, NULL, "no base URL");
		check_say(&p.cr, "clock", CHECK_SKIP, -1, NULL, "no base URL");
	}
	ret = check_done(&p.cr, domain, err);
	remote_free(p.r);
	return ret;
}
