/*
 * smimpd - the smimp server: identity directory and accounts over HTTPS
 * (libmicrohttpd with its built-in TLS), on an embedded SQLite store.
 *
 *	smimpd [-d] [-n] [-v] [-f FILE] [options]	serve
 *	smimpd adduser ADDRESS FILE.pub			register an account
 *	smimpd deluser ADDRESS				remove one
 *	smimpd users					list them
 *	smimpd invite ADDRESS [HOURS]			a single-use token
 *	smimpd invites					pending invitations
 *
 * Discovery follows SMIMP: /.well-known/smimp.txt names the base URL,
 * {base}/version the protocol versions, and the API is under {base}/v1/.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "address.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
#include "remote.h"
#include "reqsig.h"
#include "stamp.h"
#include "util.h"
#include "message.h"
#include "config.h"
#include "store.h"
#include "server.h"
#include "banned.h"

#define SERVER_KEY_MAGIC	"smimp-server-key/1\n"
#define MAX_CONNECTIONS		1024
#define MAX_PER_IP		128

static const char *progname = "smimpd";
static int verbose;

/* One write(2) per line, so that lines from many threads never mix. */
void
log_line(const char *fmt, ...)
{
	char line[2048], when[TIME_STRLEN];
	va_list ap;
	int n, m;

	time_format(time_now(), when);
	n = snprintf(line, sizeof(line), "%s %s: ", when, progname);
	if (n < 0)
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;	/* cut, still one line */
	line[n++] = '\n';
	(void)fd_write_all(STDERR_FILENO, line, (size_t)n);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimpd [-d] [-n] [-v] [-f FILE] [--domain DOMAIN] "
	    "[--listen ADDR:PORT]\n"
	    "              [--data DIR] [--cert FILE --key FILE | "
	    "--plain-http] [--base-url URL]\n"
	    "       smimpd [-f FILE] [--data DIR] [--domain DOMAIN] "
	    "adduser ADDRESS FILE.pub\n"
	    "       smimpd [-f FILE] [--data DIR] deluser ADDRESS\n"
	    "       smimpd [-f FILE] [--data DIR] users\n"
	    "       smimpd [-f FILE] [--data DIR] --domain DOMAIN "
	    "invite ADDRESS [HOURS]\n"
	    "       smimpd [-f FILE] [--data DIR] invites\n");
}

/* The server's own Ed25519 key: made on first start, kept 0600. */
static int
server_key_load(struct server *srv, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned char *buf = NULL, seed[32];
	struct sbuf text;
	size_t len;
	int fd, ret = -1;

	srv->server_sk = sodium_malloc(64);
	if (srv->server_sk == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if ((size_t)snprintf(path, sizeof(path), "%s/server.key",
	    srv->cfg.datadir) >= sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (access(path, F_OK) != 0) {
		sbuf_init(&text, 256);
		randombytes_buf(seed, sizeof(seed));
		if (sbuf_add(&text, SERVER_KEY_MAGIC,
		    strlen(SERVER_KEY_MAGIC)) || sbuf_add(&text, "secret: ", 8)
		    || sbuf_add_b64(&text, seed, 32) ||
		    sbuf_add(&text, "\n", 1) ||
		    file_write_atomic(path, text.buf, text.len, 0600, 0,
		    err) != 0) {
			sodium_memzero(text.buf, text.len);
			sbuf_release(&text);
			goto out;
		}
		sodium_memzero(text.buf, text.len);
		sbuf_release(&text);
		log_line("created server key %s", path);
	}
	fd = open_private(path, err);
	if (fd < 0)
		goto out;
	buf = sodium_malloc(1025);
	if (buf == NULL || fd_read_into(fd, path, 1024, buf, &len, err) != 0) {
		close(fd);
		goto out;
	}
	close(fd);
	if (len != strlen(SERVER_KEY_MAGIC) + 8 + 44 + 1 ||
	    memcmp(buf, SERVER_KEY_MAGIC, strlen(SERVER_KEY_MAGIC)) != 0 ||
	    b64_decode_exact((char *)buf + strlen(SERVER_KEY_MAGIC) + 8, 44,
	    seed, 32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s': malformed server "
		    "key", path);
		goto out;
	}
	crypto_sign_seed_keypair(srv->server_pk, srv->server_sk, seed);
	ret = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	if (buf != NULL)
		sodium_free(buf);
	return ret;
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned int status, const char *type,
    const void *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "Content-Type", type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
error_json(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);

	return respond(c, status, "application/json", body, (size_t)n);
}

/* GET {base}/v1/users/ADDRESS/log: the identity log, to anyone. */
static enum MHD_Result
get_user_log(struct server *srv, struct MHD_Connection *c, const char *rest,
    unsigned int *status)
{
	char addr[ADDRESS_MAX + 1], raw[ADDRESS_MAX + 8];
	unsigned char *log = NULL;
	struct smimp_err err;
	const char *slash = strchr(rest, '/');
	size_t len;
	enum MHD_Result ret;
	int r;

	if (slash == NULL || strcmp(slash, "/log") != 0 ||
	    (size_t)(slash - rest) >= sizeof(raw)) {
		*status = MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, "no such resource");
	}
	memcpy(raw, rest, (size_t)(slash - rest));
	raw[slash - rest] = '\0';
	if (address_normalize(raw, addr, &err) != 0) {
		*status = MHD_HTTP_BAD_REQUEST;
		return error_json(c, *status, "invalid address");
	}
	if (strcmp(address_domain(addr), srv->cfg.domain) != 0) {
		*status = MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, "not a user of this domain");
	}
	r = store_user_get(srv->store, addr, &log, &len, &err);
	if (r == STORE_ERROR) {
		log_line("%s", err.msg);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return error_json(c, *status, "store unavailable");
	}
	if (r != STORE_OK) {
		*status = MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, "unknown user");
	}
	*status = MHD_HTTP_OK;
	ret = respond(c, *status, "text/plain; charset=utf-8", log, len);
	free(log);
	return ret;
}

/* Per request: the body as it arrives, capped. */
struct request {
	struct sbuf body;
	int too_large;
};

static const char *
header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The signature headers of a request into rs; -1 if missing or malformed. */
static int
request_signature(struct MHD_Connection *c, struct reqsig *rs,
    char user[ADDRESS_MAX + 1])
{
	const char *signer = header(c, REQSIG_H_SIGNER);
	const char *date = header(c, REQSIG_H_DATE);
	const char *nonce = header(c, REQSIG_H_NONCE);
	const char *sig = header(c, REQSIG_H_SIGNATURE);
	struct smimp_err err;

	if (signer == NULL || date == NULL || nonce == NULL || sig == NULL ||
	    strlen(date) >= sizeof(rs->date) || strlen(nonce) >=
	    sizeof(rs->nonce) || strlen(sig) >= sizeof(rs->signature) ||
	    address_normalize(signer, user, &err) != 0 ||
	    strcmp(signer, user) != 0)
		return -1;
	memset(rs, 0, sizeof(*rs));
	memcpy(rs->signer, user, strlen(user) + 1);
	memcpy(rs->date, date, strlen(date) + 1);
	memcpy(rs->nonce, nonce, strlen(nonce) + 1);
	memcpy(rs->signature, sig, strlen(sig) + 1);
	return 0;
}

/*
 * A request's nonce, claimed later with the request's own writes, and
 * the signer's identity key it was verified with.
 */
struct deferred_nonce {
	char nonce[REQSIG_NONCE_STRLEN];
	int64_t expires;
	unsigned char identity_key[32];
};

/*
 * Authenticate a signed request from a user of this domain; on success
 * user holds the signer's address.  Answers 401 itself on failure.  The
 * nonce is claimed here, unless defer is given: then the caller claims
 * it in the transaction that stores what the request brings.
 */
static int
authenticate(struct server *srv, struct MHD_Connection *c,
    const char *method, const char *url, const struct request *rq,
    char user[ADDRESS_MAX + 1], struct deferred_nonce *defer,
    unsigned int *status, enum MHD_Result *ret)
{
	unsigned char hash[32], *log = NULL;
	struct smimp_err err;
	struct reqsig rs;
	struct idlog parsed;
	size_t len;
	int64_t when;
	int r;

	*status = MHD_HTTP_UNAUTHORIZED;
	if (request_signature(c, &rs, user) != 0) {
		*ret = error_json(c, *status, "missing or malformed request "
		    "signature");
		return -1;
	}
	r = strcmp(address_domain(user), srv->cfg.domain) != 0 ?
	    STORE_NOT_FOUND : store_user_get(srv->store, user, &log, &len,
	    &err);
	if (r != STORE_OK) {
		*ret = error_json(c, *status, "unknown signer");
		return -1;
	}
	r = idlog_parse_verified(&parsed, log, len, &err);
	free(log);
	if (r != 0) {
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		*ret = error_json(c, *status, "stored identity unreadable");
		return -1;
	}
	reqsig_body_hash(hash, rq->body.len > 0 ? rq->body.buf : "",
	    rq->body.len);
	r = reqsig_verify(&rs, method, srv->cfg.domain, url, hash,
	    parsed.identity_key, time_now(), &err);
	if (defer != NULL)
		memcpy(defer->identity_key, parsed.identity_key, 32);
	idlog_release(&parsed);
	if (r != 0) {
		*ret = error_json(c, *status, err.msg);
		return -1;
	}
	(void)time_parse(rs.date, strlen(rs.date), &when);
	if (defer != NULL) {
		memcpy(defer->nonce, rs.nonce, sizeof(defer->nonce));
		defer->expires = when + REQSIG_WINDOW;
		return 0;
	}
	r = store_nonce_claim(srv->store, user, rs.nonce,
	    when + REQSIG_WINDOW, time_now(), &err);
	if (r != STORE_OK) {
		if (r == STORE_ERROR)
			log_line("%s", err.msg);
		*status = r == STORE_ERROR ? MHD_HTTP_SERVICE_UNAVAILABLE :
		    MHD_HTTP_UNAUTHORIZED;
		*ret = error_json(c, *status, r == STORE_ERROR ?
		    "store unavailable" : "replayed request");
		return -1;
	}
	return 0;
}

/* What the store keeps of an invitation token. */
static void
invite_hash(const char *token, unsigned char out[INVITE_HASH_SIZE])
{
	static const char label[] = "smimp/1 invite";
	crypto_generichash_state h;

	(void)crypto_generichash_init(&h, NULL, 0, INVITE_HASH_SIZE);
	(void)crypto_generichash_update(&h, (const unsigned char *)label,
	    sizeof(label));
	(void)crypto_generichash_update(&h, (const unsigned char *)token,
	    strlen(token));
	(void)crypto_generichash_final(&h, out, INVITE_HASH_SIZE);
}

/*
 * POST {base}/v1/register: redeem an invitation.  The body is the new
 * user's identity log, the request is signed by its identity key, and
 * Smimp-Invite carries the token the admin handed out for that address.
 * The token is used up by the registration.
 */
static enum MHD_Result
register_user(struct server *srv, struct MHD_Connection *c, const char *url,
    const struct request *rq, unsigned int *status)
{
	const char *token = header(c, "Smimp-Invite");
	unsigned char hash[32], tokhash[INVITE_HASH_SIZE];
	char user[ADDRESS_MAX + 1], fp[FINGERPRINT_STRLEN], reply[256];
	struct smimp_err err;
	struct reqsig rs;
	struct idlog log;
	int r, n;

	*status = MHD_HTTP_BAD_REQUEST;
	if (token == NULL || strlen(token) > 128 || rq->body.len == 0)
		return error_json(c, *status, "needs Smimp-Invite and an "
		    "identity log");
	if (idlog_parse(&log, (const unsigned char *)rq->body.buf,
	    rq->body.len, &err) != 0)
		return error_json(c, *status, "malformed identity log");
	if (strcmp(address_domain(log.address), srv->cfg.domain) != 0) {
		idlog_release(&log);
		return error_json(c, *status, "not an address of this domain");
	}
	*status = MHD_HTTP_UNAUTHORIZED;
	reqsig_body_hash(hash, rq->body.buf, rq->body.len);
	if (request_signature(c, &rs, user) != 0 ||
	    strcmp(user, log.address) != 0 ||
	    reqsig_verify(&rs, "POST", srv->cfg.domain, url, hash,
	    log.identity_key, time_now(), &err) != 0) {
		idlog_release(&log);
		return error_json(c, *status, "the request must be signed by "
		    "the identity it registers");
	}
	invite_hash(token, tokhash);
	r = store_invite_redeem(srv->store, tokhash, log.address, log.raw,
	    log.raw_len, time_now(), &err);
	fingerprint_format(log.fingerprint, fp);
	idlog_release(&log);
	switch (r) {
	case STORE_OK:
		log_line("registered %s by invitation", user);
		*status = MHD_HTTP_CREATED;
		n = snprintf(reply, sizeof(reply), "{\"address\":\"%s\","
		    "\"fingerprint\":\"%s\"}\n", user, fp);
		return respond(c, *status, "application/json", reply,
		    (size_t)n);
	case STORE_NOT_FOUND:
		*status = MHD_HTTP_FORBIDDEN;
		return error_json(c, *status, "invalid or expired invitation");
	case STORE_EXISTS:
		*status = MHD_HTTP_CONFLICT;
		return error_json(c, *status, "the address has an account "
		    "already");
	default:
		log_line("%s", err.msg);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return error_json(c, *status, "store unavailable");
	}
}

/* What a submission queues for other domains: one entry per domain. */
struct remote_plan {
	struct store_outbound_new *obs;
	char **lists;		/* each one's recipients, malloc'd */
	size_t n;
	char sorted[8192];	/* every recipient, as stamped */
	const char *stamp, *sdate;
};

static void
plan_release(struct remote_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->n; i++)
		free(plan->lists[i]);
	free(plan->lists);
	free(plan->obs);
	plan->obs = NULL;
	plan->lists = NULL;
	plan->n = 0;
}

/*
 * Plan the relay of a submitted message to every other domain among its
 * recipients, after checking the sender's delivery stamp (the receiving
 * servers will check it too) with the key the request was verified
 * with.  Answers itself and returns -1 on failure.
 */
static int
plan_remote(struct server *srv, struct MHD_Connection *c, const char *user,
    const unsigned char identity_key[32], const char *to, const char *mid,
    char rcpts[][ADDRESS_MAX + 1], size_t n, const struct request *rq,
    struct remote_plan *plan, unsigned int *status, enum MHD_Result *ret)
{
	const char *stamp = header(c, "Smimp-Stamp");
	const char *sdate = header(c, "Smimp-Stamp-Date");
	char mine[8192];
	struct outbound *ob;
	struct smimp_err err;
	size_t i, j, off;

	*status = MHD_HTTP_BAD_REQUEST;
	if (stamp == NULL || sdate == NULL ||
	    strlen(stamp) >= sizeof(ob->stamp) ||
	    strlen(sdate) >= sizeof(ob->stamp_date) ||
	    stamp_recipients(to, plan->sorted, sizeof(plan->sorted)) != 0) {
		*ret = error_json(c, *status, "other domains need a delivery "
		    "stamp");
		return -1;
	}
	if (stamp_verify(stamp, user, plan->sorted, mid,
	    (const unsigned char *)rq->body.buf, rq->body.len, sdate,
	    identity_key, &err) != 0) {
		*ret = error_json(c, *status, "delivery stamp does not verify");
		return -1;
	}
	plan->obs = calloc(n, sizeof(*plan->obs));
	plan->lists = calloc(n, sizeof(*plan->lists));
	if (plan->obs == NULL || plan->lists == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		const char *dom = address_domain(rcpts[i]);

		if (strcmp(dom, srv->cfg.domain) == 0)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(address_domain(rcpts[j]), dom) == 0)
				break;
		if (j < i)
			continue;	/* this domain is planned already */
		off = 0;
		mine[0] = '\0';
		for (j = i; j < n; j++) {
			if (strcmp(address_domain(rcpts[j]), dom) != 0)
				continue;
			off += (size_t)snprintf(mine + off, sizeof(mine) - off,
			    "%s%s", off > 0 ? "," : "", rcpts[j]);
		}
		if ((plan->lists[plan->n] = strdup(mine)) == NULL)
			goto oom;
		plan->obs[plan->n].domain = dom;
		plan->obs[plan->n].recipients = plan->lists[plan->n];
		plan->n++;
	}
	plan->stamp = stamp;
	plan->sdate = sdate;
	return 0;
oom:
	plan_release(plan);
	*status = MHD_HTTP_SERVICE_UNAVAILABLE;
	*ret = error_json(c, *status, "out of memory");
	return -1;
}

int
rate_limited(struct ratelimit *rl, const char *name, struct MHD_Connection *c,
    unsigned int *status, enum MHD_Result *ret)
{
	unsigned int wait = ratelimit_take(rl, name);
	struct MHD_Response *r;
	char secs[16];
	static const char body[] = "{\"error\":\"rate limit\"}\n";

	if (wait == 0)
		return 0;
	*status = 429;
	(void)snprintf(secs, sizeof(secs), "%u", wait);
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		*ret = MHD_NO;
		return 1;
	}
	(void)MHD_add_response_header(r, "Content-Type", "application/json");
	(void)MHD_add_response_header(r, "Retry-After", secs);
	*ret = MHD_queue_response(c, 429, r);
	MHD_destroy_response(r);
	return 1;
}

/* POST {base}/v1/messages: a sealed message, for local or remote users. */
static enum MHD_Result
post_message(struct server *srv, struct MHD_Connection *c, const char *url,
    const struct request *rq, unsigned int *status)
{
	char user[ADDRESS_MAX + 1], rcpts[MSG_MAX_RECIPIENTS][ADDRESS_MAX + 1];
	char list[8192], *p, *comma, reply[512];
	const char *to = header(c, "Smimp-To");
	const char *mid = header(c, "Smimp-Message-Id");
	const char *local[MSG_MAX_RECIPIENTS];
	struct store_body body;
	struct store_submission sub;
	struct remote_plan plan;
	struct deferred_nonce dn;
	struct smimp_err err;
	enum MHD_Result ret;
	size_t n = 0, nlocal = 0, i;
	unsigned char *log;
	size_t loglen;
	int r, remote = 0;

	memset(&plan, 0, sizeof(plan));
	if (authenticate(srv, c, "POST", url, rq, user, &dn, status,
	    &ret) != 0 || rate_limited(&srv->per_sender, user, c, status, &ret))
		return ret;
	*status = MHD_HTTP_BAD_REQUEST;
	if (to == NULL || mid == NULL || strlen(to) >= sizeof(list) ||
	    !message_id_valid(mid) || rq->body.len == 0)
		return error_json(c, *status, "needs Smimp-To, Smimp-Message-Id "
		    "and a body");
	memcpy(list, to, strlen(to) + 1);
	for (p = list; p != NULL; p = comma) {
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		if (n == MSG_MAX_RECIPIENTS ||
		    address_normalize(p, rcpts[n], &err) != 0)
			return error_json(c, *status, "bad recipient list");
		n++;
	}
	/* Every recipient must be deliverable before anything is stored. */
	for (i = 0; i < n; i++) {
		if (strcmp(address_domain(rcpts[i]), srv->cfg.domain) != 0) {
			remote = 1;
			continue;
		}
		r = store_user_get(srv->store, rcpts[i], &log, &loglen, &err);
		if (r == STORE_ERROR)
			goto unavailable;
		if (r != STORE_OK) {
			*status = MHD_HTTP_NOT_FOUND;
			return error_json(c, *status, "unknown recipient");
		}
		free(log);
		local[nlocal++] = rcpts[i];
	}
	if (remote && plan_remote(srv, c, user, dn.identity_key, to, mid, rcpts,
	    n, rq, &plan, status, &ret) != 0)
		return ret;
	/* The nonce, the relay queue and the mailboxes: one commit. */
	memset(&body, 0, sizeof(body));
	body.data = (const unsigned char *)rq->body.buf;
	body.len = rq->body.len;
	memset(&sub, 0, sizeof(sub));
	sub.signer = user;
	sub.nonce = dn.nonce;
	sub.nonce_expires = dn.expires;
	sub.sender = user;
	sub.message_id = mid;
	sub.all = plan.sorted;
	sub.stamp = plan.stamp;
	sub.stamp_date = plan.sdate;
	sub.body = &body;
	sub.obs = plan.obs;
	sub.nobs = plan.n;
	sub.local = local;
	sub.nlocal = nlocal;
	r = store_submit(srv->store, &sub, time_now(), &err);
	plan_release(&plan);
	if (r == STORE_ERROR)
		goto unavailable;
	if (r == STORE_QUOTA) {
		*status = MHD_HTTP_INSUFFICIENT_STORAGE;
		return error_json(c, *status, "quota exceeded");
	}
	if (r != STORE_OK) {
		*status = MHD_HTTP_UNAUTHORIZED;
		return error_json(c, *status, "replayed request");
	}
	if (remote)
		relay_wake(srv);
	*status = MHD_HTTP_CREATED;
	r = snprintf(reply, sizeof(reply), "{\"message_id\":\"%s\","
	    "\"recipients\":%zu}\n", mid, n);
	return respond(c, *status, "application/json", reply, (size_t)r);
unavailable:
	log_line("%s", err.msg);
	*status = MHD_HTTP_SERVICE_UNAVAILABLE;
	return error_json(c, *status, "store unavailable");
}

static int
list_entry(const struct mailbox_entry *e, void *arg)
{
	struct sbuf *sb = arg;
	char when[TIME_STRLEN];

	time_format(e->received, when);
	return sbuf_addf(sb, "%s{\"id\":%lld,\"from\":\"%s\","
	    "\"message_id\":\"%s\",\"size\":%" PRIu64 ","
	    "\"received\":\"%s\"}",
	    sb->len > 1 ? "," : "", (long long)e->id, e->sender,
	    e->message_id, e->size, when);
}

/*
 * POST {base}/v1/mailbox/ack: acknowledge several messages at once.  The
 * body is a JSON array of up to MAILBOX_PAGE mailbox ids; ids that are
 * not the owner's (or gone already) are skipped.
 */
static enum MHD_Result
ack_many(struct server *srv, struct MHD_Connection *c, const char *user,
    const struct request *rq, unsigned int *status)
{
	int64_t ids[MAILBOX_PAGE];
	json_t *list, *item;
	json_error_t jerr;
	struct smimp_err err;
	size_t i, n = 0, acked = 0;
	char reply[64];
	int r;

	list = json_loadb(rq->body.len > 0 ? rq->body.buf : "", rq->body.len,
	    0, &jerr);
	if (!json_is_array(list) || json_array_size(list) > MAILBOX_PAGE) {
		json_decref(list);
		*status = MHD_HTTP_BAD_REQUEST;
		return error_json(c, *status, "expected a JSON array of at most "
		    "1000 mailbox ids");
	}
	json_array_foreach(list, i, item) {
		if (!json_is_integer(item) || json_integer_value(item) < 1) {
			json_decref(list);
			*status = MHD_HTTP_BAD_REQUEST;
			return error_json(c, *status, "mailbox ids are positive "
			    "integers");
		}
		ids[n++] = (int64_t)json_integer_value(item);
	}
	json_decref(list);
	r = store_mailbox_ack(srv->store, user, ids, n, &acked, time_now(),
	    &err);
	if (r != 0) {
		log_line("%s", err.msg);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return error_json(c, *status, "store unavailable");
	}
	*status = MHD_HTTP_OK;
	r = snprintf(reply, sizeof(reply), "{\"acknowledged\":%zu}\n", acked);
	return respond(c, *status, "application/json", reply, (size_t)r);
}

/* {base}/v1/mailbox[/ID]: the owner lists, downloads and acknowledges. */
static enum MHD_Result
mailbox(struct server *srv, struct MHD_Connection *c, const char *method,
    const char *url, const char *rest, const struct request *rq,
    unsigned int *status)
{
	char user[ADDRESS_MAX + 1];
	struct MHD_Response *resp;
	struct smimp_err err;
	enum MHD_Result ret;
	struct sbuf sb;
	uint64_t id = 0, len;
	int64_t one;
	size_t acked;
	int r, fd;

	if (authenticate(srv, c, method, url, rq, user, NULL, status,
	    &ret) != 0)
		return ret;
	if (*rest == '\0' && strcmp(method, "GET") == 0) {
		sbuf_init(&sb, 64 * 1024 * 1024);
		if (sbuf_add(&sb, "[", 1) != 0 || store_mailbox_list(srv->store,
		    user, list_entry, &sb, &err) != 0 ||
		    sbuf_add(&sb, "]\n", 2) != 0) {
			sbuf_release(&sb);
			*status = MHD_HTTP_SERVICE_UNAVAILABLE;
			return error_json(c, *status, "store unavailable");
		}
		*status = MHD_HTTP_OK;
		ret = respond(c, *status, "application/json", sb.buf, sb.len);
		sbuf_release(&sb);
		return ret;
	}
	if (strcmp(rest, "/ack") == 0 && strcmp(method, "POST") == 0)
		return ack_many(srv, c, user, rq, status);
	if (*rest != '/' || parse_u64(rest + 1, strlen(rest + 1), &id) != 0 ||
	    id > INT64_MAX) {
		*status = MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, "no such message");
	}
	if (strcmp(method, "DELETE") == 0) {
		one = (int64_t)id;
		r = store_mailbox_ack(srv->store, user, &one, 1, &acked,
		    time_now(), &err);
		if (r == STORE_ERROR)
			log_line("%s", err.msg);
		*status = r == STORE_ERROR ? MHD_HTTP_SERVICE_UNAVAILABLE :
		    acked == 0 ? MHD_HTTP_NOT_FOUND : MHD_HTTP_NO_CONTENT;
		return *status == MHD_HTTP_NO_CONTENT ? respond(c, *status,
		    "text/plain", "", 0) : error_json(c, *status,
		    r == STORE_ERROR ? "store unavailable" : "no such message");
	}
	if (strcmp(method, "GET") != 0) {
		*status = MHD_HTTP_METHOD_NOT_ALLOWED;
		return error_json(c, *status, "method not allowed");
	}
	r = store_mailbox_open(srv->store, user, (int64_t)id, &fd, &len, &err);
	if (r != STORE_OK) {
		if (r == STORE_ERROR)
			log_line("%s", err.msg);
		*status = r == STORE_ERROR ? MHD_HTTP_SERVICE_UNAVAILABLE :
		    MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, r == STORE_ERROR ?
		    "store unavailable" : "no such message");
	}
	/* Sent from the file as it is read: constant memory. */
	resp = MHD_create_response_from_fd64(len, fd);
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, "Content-Type",
	    "application/octet-stream");
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	*status = MHD_HTTP_OK;
	ret = MHD_queue_response(c, *status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
route(struct server *srv, struct MHD_Connection *c, const char *method,
    const char *url, const struct request *rq, unsigned int *status)
{
	const char *base = srv->cfg.base_path;
	size_t blen = strlen(base);
	char text[512];
	int n;

	if (rq->too_large) {
		*status = MHD_HTTP_CONTENT_TOO_LARGE;
		return error_json(c, *status, "message too large");
	}
	if (strncmp(url, base, blen) == 0 &&
	    strcmp(url + blen, "/v1/messages") == 0 &&
	    strcmp(method, "POST") == 0)
		return post_message(srv, c, url, rq, status);
	if (strncmp(url, base, blen) == 0 &&
	    strcmp(url + blen, "/v1/deliver") == 0 &&
	    strcmp(method, "POST") == 0)
		return relay_accept(srv, c, url,
		    (const unsigned char *)(rq->body.len > 0 ? rq->body.buf :
		    ""), rq->body.len, status);
	if (strncmp(url, base, blen) == 0 &&
	    strcmp(url + blen, "/v1/deliver-batch") == 0 &&
	    strcmp(method, "POST") == 0)
		return relay_accept_batch(srv, c, url,
		    (const unsigned char *)(rq->body.len > 0 ? rq->body.buf :
		    ""), rq->body.len, status);
	if (strncmp(url, base, blen) == 0 &&
	    strcmp(url + blen, "/v1/register") == 0 &&
	    strcmp(method, "POST") == 0)
		return register_user(srv, c, url, rq, status);
	if (strncmp(url, base, blen) == 0 &&
	    strncmp(url + blen, "/v1/mailbox", 11) == 0)
		return mailbox(srv, c, method, url, url + blen + 11, rq,
		    status);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		*status = MHD_HTTP_METHOD_NOT_ALLOWED;
		return error_json(c, *status, "method not allowed");
	}
	if (strcmp(url, "/.well-known/smimp.txt") == 0) {
		n = snprintf(text, sizeof(text), "%s\n", srv->cfg.base_url);
		*status = MHD_HTTP_OK;
		return respond(c, *status, "text/plain; charset=utf-8", text,
		    (size_t)n);
	}
	if (strncmp(url, base, blen) != 0) {
		*status = MHD_HTTP_NOT_FOUND;
		return error_json(c, *status, "no such resource");
	}
	url += blen;
	if (strcmp(url, "/version") == 0) {
		n = snprintf(text, sizeof(text), "{\"versions\":[\"v1\"],"
		    "\"software\":\"smimpd %s\"}\n", SMIMP_VERSION);
		*status = MHD_HTTP_OK;
		return respond(c, *status, "application/json", text,
		    (size_t)n);
	}
	if (strcmp(url, "/v1/meta") == 0) {
		*status = MHD_HTTP_OK;
		return respond(c, *status, "application/json", srv->meta_json,
		    strlen(srv->meta_json));
	}
	if (strncmp(url, "/v1/users/", 10) == 0)
		return get_user_log(srv, c, url + 10, status);
	*status = MHD_HTTP_NOT_FOUND;
	return error_json(c, *status, "no such resource");
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	struct server *srv = cls;
	struct request *rq = *state;
	unsigned int status = 0;
	enum MHD_Result ret;

	(void)version;
	/* The first call only announces the request. */
	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		sbuf_init(&rq->body, srv->cfg.max_message);
		*state = rq;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		/* Past the cap the rest is read and dropped, then 413. */
		if (!rq->too_large && sbuf_add(&rq->body, upload,
		    *upload_size) != 0) {
			rq->too_large = 1;
			sbuf_release(&rq->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	ret = route(srv, c, method, url, rq, &status);
	log_line("%s %.200s %u", method, url, status);
	return ret;
}

static void
request_done(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *state;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		sbuf_release(&rq->body);
		free(rq);
	}
	*state = NULL;
}

static int
read_pem(const char *path, char **out, struct smimp_err *err)
{
	unsigned char *buf;
	size_t len;

	if (file_read_all(path, 1024 * 1024, &buf, &len, err) != 0)
		return -1;
	*out = (char *)buf;
	return 0;
}

static int
serve(struct server *srv, struct smimp_err *err)
{
	struct MHD_Daemon *d;
	char *cert = NULL, *key = NULL, pk64[64];
	sigset_t set;
	int sig, ret = -1;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

	sodium_bin2base64(pk64, sizeof(pk64), srv->server_pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	(void)snprintf(srv->meta_json, sizeof(srv->meta_json),
	    "{\"domain\":\"%s\",\"server_key\":\"%s\",\"versions\":[\"v1\"],"
	    "\"limits\":{\"max_message_bytes\":%zu}}\n", srv->cfg.domain,
	    pk64, srv->cfg.max_message);
	if (ratelimit_init(&srv->per_sender, srv->cfg.rate_sender) != 0 ||
	    ratelimit_init(&srv->per_domain, srv->cfg.rate_domain) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up rate limits");
		goto out;
	}
	if (!srv->cfg.plain_http) {
		if (read_pem(srv->cfg.cert, &cert, err) != 0 ||
		    read_pem(srv->cfg.key, &key, err) != 0)
			goto out;
		flags |= MHD_USE_TLS;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Handler threads inherit the mask; the main thread waits. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(flags, srv->cfg.port, NULL, NULL, handle, srv,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->cfg.listen_addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)MAX_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, srv->cfg.timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
	    cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
	    MHD_OPTION_HTTPS_MEM_KEY, key,
	    MHD_OPTION_END);
	if (d == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot listen on %s",
		    srv->cfg.listen);
		goto out;
	}
	if (relay_start(srv) != 0) {
		MHD_stop_daemon(d);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start the relay");
		goto out;
	}
	log_line("serving %s on %s (%s)", srv->cfg.domain, srv->cfg.listen,
	    srv->cfg.plain_http ? "plain HTTP" : "HTTPS");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue;
		break;
	}
	log_line("signal %d: finishing requests in flight", sig);
	MHD_stop_daemon(d);
	relay_stop(srv);
	log_line("stopped");
	ret = 0;
out:
	free(cert);
	if (key != NULL) {
		sodium_memzero(key, strlen(key));
		free(key);
	}
	return ret;
}

struct smimpd_opts {
	const char *config;
	int foreground;
	int check_only;
	const char *sub;
	char **args;
	int nargs;
};

static int
parse_args(int argc, char **argv, struct smimpd_opts *o,
    struct smimpd_config *cfg, struct smimp_err *err)
{
	enum { OPT_DOMAIN = 256, OPT_LISTEN, OPT_DATA, OPT_CERT, OPT_KEY,
		OPT_PLAIN, OPT_BASE, OPT_VERSION };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "plain-http", no_argument, NULL, OPT_PLAIN },
		{ "base-url", required_argument, NULL, OPT_BASE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const names[] = { "domain", "listen", "data",
		"cert", "key", "plain-http", "base-url" };
	const char *flags[sizeof(names) / sizeof(names[0])] = { NULL };
	int c, i;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "+f:dnvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->config = optarg; break;
		case 'd': o->foreground = 1; break;
		case 'n': o->check_only = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); exit(SMIMP_EXIT_OK);
		case OPT_VERSION:
			printf("smimpd %s\n", SMIMP_VERSION);
			exit(SMIMP_EXIT_OK);
		case OPT_PLAIN: flags[5] = "yes"; break;
		default:
			if (c >= OPT_DOMAIN && c <= OPT_BASE) {
				flags[c == OPT_BASE ? 6 : c - OPT_DOMAIN] =
				    optarg;
				break;
			}
			usage(stderr);
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s", "");
		}
	}
	/* The file first, then flags override it. */
	if (o->config != NULL && config_read(cfg, o->config, err) != 0)
		return -1;
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (flags[i] != NULL && config_set(cfg, names[i], flags[i],
		    err) != 0)
			return -1;
	if (optind < argc) {
		o->sub = argv[optind++];
		o->args = argv + optind;
		o->nargs = argc - optind;
	}
	return 0;
}

static int
print_user(const char *address, const unsigned char *log, size_t len,
    void *arg)
{
	struct idlog parsed;
	struct smimp_err err;
	char fp[FINGERPRINT_STRLEN];

	(void)arg;
	if (idlog_parse_verified(&parsed, log, len, &err) != 0) {
		printf("%s (unreadable log)\n", address);
		return 0;
	}
	fingerprint_format(parsed.fingerprint, fp);
	printf("%s %s\n", address, fp);
	idlog_release(&parsed);
	return 0;
}

static int
print_invite(const char *address, int64_t expires, void *arg)
{
	char when[TIME_STRLEN];

	(void)arg;
	time_format(expires, when);
	printf("%s expires %s%s\n", address, when,
	    expires < time_now() ? " (expired)" : "");
	return 0;
}

#define INVITE_TOKEN_BYTES	24
#define INVITE_DEFAULT_HOURS	168

/* smimpd invite ADDRESS [HOURS]: print a new single-use token. */
static int
invite(struct store *st, const char *addr, const char *hours,
    struct smimp_err *err)
{
	unsigned char raw[INVITE_TOKEN_BYTES], hash[INVITE_HASH_SIZE];
	char token[sodium_base64_ENCODED_LEN(INVITE_TOKEN_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	uint64_t h = INVITE_DEFAULT_HOURS;
	int64_t expires;

	if (hours != NULL && (parse_u64(hours, strlen(hours), &h) != 0 ||
	    h == 0 || h > 24 * 365))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "HOURS is a number "
		    "from 1 to 8760");
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(token, sizeof(token), raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	invite_hash(token, hash);
	expires = time_now() + (int64_t)h * 3600;
	if (store_invite_add(st, hash, addr, expires, err) != 0)
		return -1;
	printf("%s\n", token);
	sodium_memzero(token, sizeof(token));
	return 0;
}

static int
admin(struct smimpd_opts *o, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	const char *sub = o->sub;
	struct store_limits lim;
	struct store *st;
	struct idlog log;
	char addr[ADDRESS_MAX + 1];
	int ret = -1, r;

	if (strcmp(sub, "users") == 0 || strcmp(sub, "invites") == 0 ?
	    o->nargs != 0 :
	    strcmp(sub, "deluser") == 0 ? o->nargs != 1 :
	    strcmp(sub, "adduser") == 0 ? o->nargs != 2 :
	    strcmp(sub, "invite") == 0 ? o->nargs < 1 || o->nargs > 2 : 1)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "usage: smimpd "
		    "adduser ADDRESS FILE.pub | deluser ADDRESS | users | "
		    "invite ADDRESS [HOURS] | invites");
	if (o->nargs > 0 && address_normalize(o->args[0], addr, err) != 0)
		return -1;
	if (o->nargs > 0 && cfg->domain[0] != '\0' &&
	    strcmp(address_domain(addr), cfg->domain) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is not an "
		    "address of %s", addr, cfg->domain);
	if (strcmp(sub, "invite") == 0 && cfg->domain[0] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "invite needs the "
		    "server's domain (--domain or the config file)");
	config_store_limits(cfg, &lim);
	st = store_open(cfg->store, &lim, err);
	if (st == NULL)
		return -1;
	if (strcmp(sub, "users") == 0) {
		ret = store_user_list(st, print_user, NULL, err);
	} else if (strcmp(sub, "invites") == 0) {
		ret = store_invite_list(st, print_invite, NULL, err);
	} else if (strcmp(sub, "invite") == 0) {
		ret = invite(st, addr, o->nargs > 1 ? o->args[1] : NULL, err);
	} else if (strcmp(sub, "deluser") == 0) {
		r = store_user_del(st, addr, time_now(), err);
		if (r == STORE_NOT_FOUND)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "%s has no account",
			    addr);
		ret = r == STORE_OK ? 0 : -1;
	} else if (idlog_read_file(&log, o->args[1], err) == 0) {
		if (strcmp(log.address, addr) != 0)
			smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the "
			    "identity of %s, not %s", o->args[1], log.address,
			    addr);
		else {
			r = store_user_add(st, addr, log.raw, log.raw_len,
			    time_now(), err);
			if (r == STORE_EXISTS)
				smimp_err_set(err, SMIMP_EXIT_FAIL, "%s already "
				    "has an account", addr);
			ret = r == STORE_OK ? 0 : -1;
		}
		idlog_release(&log);
	}
	store_close(st);
	return ret;
}

int
main(int argc, char **argv)
{
	struct smimpd_opts o;
	struct store_limits lim;
	struct server srv;
	struct smimp_err err;
	int ret;

	smimp_err_clear(&err);
	memset(&srv, 0, sizeof(srv));
	if (sodium_init() < 0) {
		fprintf(stderr, "smimpd: cannot initialize libsodium\n");
		return SMIMP_EXIT_FAIL;
	}
	config_defaults(&srv.cfg);
	if (parse_args(argc, argv, &o, &srv.cfg, &err) != 0 ||
	    config_finish(&srv.cfg, o.sub == NULL, &err) != 0)
		goto fail;
	if (o.sub != NULL) {
		if (admin(&o, &srv.cfg, &err) != 0)
			goto fail;
		return SMIMP_EXIT_OK;
	}
	if (o.check_only) {
		printf("smimpd: configuration OK\n");
		return SMIMP_EXIT_OK;
	}
	config_store_limits(&srv.cfg, &lim);
	srv.store = store_open(srv.cfg.store, &lim, &err);
	if (srv.store == NULL || server_key_load(&srv, &err) != 0)
		goto fail;
	ret = serve(&srv, &err);
	store_close(srv.store);
	sodium_free(srv.server_sk);
	if (ret != 0)
		goto fail;
	return SMIMP_EXIT_OK;
fail:
	if (err.msg[0] != '\0')
		fprintf(stderr, "smimpd: %s\n", err.msg);
	if (srv.store != NULL)
		store_close(srv.store);
	if (srv.server_sk != NULL)
		sodium_free(srv.server_sk);
	return err.code != 0 ? err.code : SMIMP_EXIT_FAIL;
}
