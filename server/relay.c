/*
 * relay.c - store-and-forward between domains.
 *
 * Outbound: messages for other domains wait in a durable queue; a
 * thread delivers each to the recipient domain's server in a request
 * signed by this server's key, retrying with exponential backoff and,
 * past the give-up time, leaving a signed bounce notice in the sender's
 * mailbox.  Inbound: a delivery is accepted only if the request is
 * signed by the sending domain's published server key and the sender's
 * delivery stamp verifies under the identity log its domain serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "batch.h"
#include "idlog.h"
#include "message.h"
#include "remote.h"
#include "reqsig.h"
#include "stamp.h"
#include "util.h"
#include "server.h"
#include "banned.h"

#define RELAY_IDLE_MS	200
static struct remote *
new_remote(const struct server *srv, struct smimp_err *err)
{
	struct remote_opts o;

	memset(&o, 0, sizeof(o));
	o.resolve = srv->cfg.resolve[0] != '\0' ? srv->cfg.resolve : NULL;
	o.cacert = srv->cfg.cacert[0] != '\0' ? srv->cfg.cacert : NULL;
	o.allow_http = srv->cfg.allow_http[0] != '\0' ? srv->cfg.allow_http :
	    NULL;
	return remote_new(&o, err);
}

/* A bounce notice, signed by this server, into the sender's mailbox. */
static void
bounce(struct server *srv, const struct outbound *ob, const char *reason)
{
	struct smimp_err err;
	unsigned char sig[64];
	char when[TIME_STRLEN], signer[300], mid[600];
	struct sbuf sb;

	sbuf_init(&sb, 64 * 1024);
	time_format(time_now(), when);
	if (sbuf_addf(&sb, "smimp-bounce/1\nserver: %s\nmessage-id: %s\n"
	    "recipients: %s\ndate: %s\nreason: %s\n", srv->cfg.domain,
	    ob->message_id, ob->recipients, when, reason) != 0)
		goto out;
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, sb.len,
	    srv->server_sk);
	if (sbuf_add(&sb, "signature: ", 11) || sbuf_add_b64(&sb, sig, 64) ||
	    sbuf_add(&sb, "\n", 1))
		goto out;
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	(void)snprintf(mid, sizeof(mid), "bounce:%s:%s", ob->domain,
	    ob->message_id);
	if (store_deliver(srv->store, ob->sender, signer, mid,
	    (unsigned char *)sb.buf, sb.len, &err) != 0)
		log_line("bounce for %s: %s", ob->sender, err.msg);
	else
		log_line("bounced %s to %s: %s", ob->message_id, ob->sender,
		    reason);
out:
	sbuf_release(&sb);
}

/* One delivery attempt: 0 delivered, 1 retry later, 2 permanent failure. */
static int
attempt(struct server *srv, struct remote *r, const struct outbound *ob,
    char *reason, size_t cap)
{
	struct remote_reply rep;
	struct smimp_err err;
	char base[512], signer[300], h[6][8400];
	const char *extra[7];
	int i, ret;

	smimp_err_clear(&err);
	if (remote_base(r, ob->domain, base, sizeof(base), &err) != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return err.code == SMIMP_EXIT_TEMPFAIL ? 1 : 1;
	}
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	(void)snprintf(h[0], sizeof(h[0]), "Smimp-From: %s", ob->sender);
	(void)snprintf(h[1], sizeof(h[1]), "Smimp-To: %s", ob->recipients);
	(void)snprintf(h[2], sizeof(h[2]), "Smimp-Stamp-To: %s", ob->all);
	(void)snprintf(h[3], sizeof(h[3]), "Smimp-Message-Id: %s",
	    ob->message_id);
	(void)snprintf(h[4], sizeof(h[4]), "Smimp-Stamp: %s", ob->stamp);
	(void)snprintf(h[5], sizeof(h[5]), "Smimp-Stamp-Date: %s",
	    ob->stamp_date);
	for (i = 0; i < 6; i++)
		extra[i] = h[i];
	extra[6] = NULL;
	if (remote_request(r, "POST", ob->domain, base, "/v1/deliver",
	    ob->data, ob->len, signer, srv->server_sk, extra, &rep,
	    &err) != 0) {
		(void)snprintf(reason, cap, "%s", err.msg);
		return 1;
	}
	if (rep.status >= 200 && rep.status < 300)
		ret = 0;
	else if (rep.status >= 500 || rep.status == 429 || rep.status == 408)
		ret = 1;
	else
		ret = 2;
	(void)snprintf(reason, cap, "%s answered HTTP %ld%s%s", ob->domain,
	    rep.status, rep.error[0] != '\0' ? ": " : "", rep.error);
	remote_reply_release(&rep);
	return ret;
}

static int64_t
backoff(const struct server *srv, unsigned int attempts)
{
	uint64_t d = srv->cfg.retry_base;

	while (attempts-- > 0 && d < srv->cfg.retry_max)
		d *= 2;
	return (int64_t)(d < srv->cfg.retry_max ? d : srv->cfg.retry_max);
}

/* Is id being delivered by a worker now?  Under relay_mu. */
static int
in_flight(const struct server *srv, int64_t id)
{
	unsigned int i, j;

	for (i = 0; i < srv->relay_running; i++)
		for (j = 0; j < BATCH_MAX; j++)
			if (srv->relay_inflight[i][j] == id)
				return 1;
	return 0;
}

/*
 * Refill the shared batch with due entries after the cursor that no
 * worker holds.  Under relay_mu.  Returns how many the query found.
 */
static size_t
refill(struct server *srv)
{
	struct outbound due[RELAY_BATCH];
	struct smimp_err err;
	size_t n = 0, i;

	smimp_err_clear(&err);
	if (store_outbound_due(srv->store, time_now(), srv->relay_cursor, due,
	    RELAY_BATCH, &n, &err) != 0) {
		log_line("relay: %s", err.msg);
		return 0;
	}
	srv->relay_nbatch = srv->relay_next = 0;
	for (i = 0; i < n; i++) {
		srv->relay_cursor = due[i].id;
		if (in_flight(srv, due[i].id))
			outbound_release(&due[i]);
		else
			srv->relay_batch[srv->relay_nbatch++] = due[i];
	}
	return n;
}

static void
idle_wait(struct server *srv)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += RELAY_IDLE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&srv->relay_cv, &srv->relay_mu, &ts);
}

/*
 * The next entries for worker w to deliver, into obs: the next due one
 * and those after it for the same domain, up to BATCH_MAX and
 * RELAY_BATCH_BYTES.  Returns how many, 0 when stopping.  Scans the
 * queue in id order from a cursor, wrapping to the start when it runs
 * out, and sleeps only when a whole scan from the start finds nothing.
 */
static size_t
take_work(struct server *srv, unsigned int w, struct outbound *obs)
{
	size_t found, n, bytes;
	int from_start;
	struct outbound *next;

	pthread_mutex_lock(&srv->relay_mu);
	memset(srv->relay_inflight[w], 0, sizeof(srv->relay_inflight[w]));
	for (;;) {
		if (srv->relay_stop) {
			pthread_mutex_unlock(&srv->relay_mu);
			return 0;
		}
		for (n = 0, bytes = 0; srv->relay_next < srv->relay_nbatch &&
		    n < BATCH_MAX; n++) {
			next = &srv->relay_batch[srv->relay_next];
			if (n > 0 && (strcmp(next->domain, obs[0].domain) != 0 ||
			    bytes + next->len > RELAY_BATCH_BYTES))
				break;
			obs[n] = *next;
			srv->relay_next++;
			bytes += obs[n].len;
			srv->relay_inflight[w][n] = obs[n].id;
		}
		if (n > 0) {
			pthread_mutex_unlock(&srv->relay_mu);
			return n;
		}
		from_start = srv->relay_cursor == 0;
		found = refill(srv);
		if (srv->relay_nbatch > 1)
			pthread_cond_broadcast(&srv->relay_cv);
		if (srv->relay_nbatch > 0 || found == RELAY_BATCH)
			continue;
		srv->relay_cursor = 0;
		if (!from_start)
			continue;
		idle_wait(srv);
	}
}

struct worker {
	struct server *srv;
	unsigned int index;
};

/* A batch body for these queue entries. */
static int
batch_body(const struct outbound *obs, size_t n, struct sbuf *sb)
{
	struct batch_item it;
	size_t i;

	for (i = 0; i < n; i++) {
		it.from = obs[i].sender;
		it.to = obs[i].recipients;
		it.all = obs[i].all;
		it.mid = obs[i].message_id;
		it.stamp = obs[i].stamp;
		it.sdate = obs[i].stamp_date;
		it.body = obs[i].data;
		it.len = obs[i].len;
		if (batch_add(sb, &it) != 0)
			return -1;
	}
	return 0;
}

/* What an HTTP status means for a delivery: 0 done, 1 retry, 2 never. */
static int
status_outcome(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	if (status >= 500 || status == 429 || status == 408)
		return 1;
	return 2;
}

/*
 * Deliver several messages for one domain in one request; res and
 * reasons get each one's outcome.  A peer that does not take batches,
 * or refuses this one as a whole, gets them one by one.
 */
static void
attempt_batch(struct server *srv, struct remote *r,
    const struct outbound *obs, size_t n, int *res, char (*reasons)[1024])
{
	struct remote_reply rep;
	struct smimp_err err;
	char base[512], signer[300];
	struct sbuf body;
	json_t *list = NULL, *item;
	size_t i;
	int all = -1;

	if (n == 1) {
		res[0] = attempt(srv, r, &obs[0], reasons[0], 1024);
		return;
	}
	smimp_err_clear(&err);
	sbuf_init(&body, RELAY_BATCH_BYTES + 64 * 1024);
	(void)snprintf(signer, sizeof(signer), "server:%s", srv->cfg.domain);
	if (batch_body(obs, n, &body) != 0)
		goto singly;
	if (remote_base(r, obs[0].domain, base, sizeof(base), &err) != 0 ||
	    remote_request(r, "POST", obs[0].domain, base, "/v1/deliver-batch",
	    body.buf, body.len, signer, srv->server_sk, NULL, &rep,
	    &err) != 0) {
		for (i = 0; i < n; i++) {
			res[i] = 1;
			(void)snprintf(reasons[i], 1024, "%s", err.msg);
		}
		goto out;
	}
	if (rep.status == 200)
		list = json_loadb(rep.body.buf, rep.body.len, 0, NULL);
	else if (status_outcome(rep.status) == 1)
		all = 1;
	if (all == 1 || (rep.status == 200 && json_array_size(list) != n))
		for (i = 0; i < n; i++) {
			res[i] = 1;
			(void)snprintf(reasons[i], 1024, "%s answered HTTP %ld%s%s",
			    obs[0].domain, rep.status, rep.error[0] != '\0' ?
			    ": " : "", rep.error);
		}
	else if (rep.status == 200)
		json_array_foreach(list, i, item) {
			const char *mid = json_string_value(json_object_get(item,
			    "message_id"));
			const char *why = json_string_value(json_object_get(item,
			    "error"));
			long st = (long)json_integer_value(json_object_get(item,
			    "status"));

			if (mid == NULL || strcmp(mid, obs[i].message_id) != 0)
				st = 502;	/* not an answer for this one */
			res[i] = status_outcome(st);
			(void)snprintf(reasons[i], 1024, "%s answered %ld%s%s",
			    obs[i].domain, st, why != NULL ? ": " : "",
			    why != NULL ? why : "");
		}
	remote_reply_release(&rep);
	json_decref(list);
	if (rep.status == 200 || all == 1)
		goto out;
singly:
	for (i = 0; i < n; i++)
		res[i] = attempt(srv, r, &obs[i], reasons[i], 1024);
out:
	sbuf_release(&body);
}

static void *
relay_main(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	unsigned int w = wk->index;
	struct remote *r;
	struct smimp_err err;
	struct outbound *obs;
	int64_t done[BATCH_MAX];
	int res[BATCH_MAX];
	char (*reasons)[1024];
	size_t n, i, ndone;

	free(wk);
	smimp_err_clear(&err);
	obs = calloc(BATCH_MAX, sizeof(*obs));
	reasons = calloc(BATCH_MAX, sizeof(*reasons));
	r = new_remote(srv, &err);
	if (r == NULL || obs == NULL || reasons == NULL) {
		log_line("relay: %s", r == NULL ? err.msg : "out of memory");
		goto out;
	}
	while ((n = take_work(srv, w, obs)) > 0) {
		attempt_batch(srv, r, obs, n, res, reasons);
		for (i = 0, ndone = 0; i < n; i++) {
			if (res[i] == 0) {
				log_line("relayed %s to %s", obs[i].message_id,
				    obs[i].domain);
				done[ndone++] = obs[i].id;
			} else if (res[i] == 2 || time_now() -
			    obs[i].first_try >= (int64_t)srv->cfg.give_up) {
				bounce(srv, &obs[i], reasons[i]);
				done[ndone++] = obs[i].id;
			} else {
				log_line("relay %s to %s: %s; retrying",
				    obs[i].message_id, obs[i].domain,
				    reasons[i]);
				(void)store_outbound_retry(srv->store, obs[i].id,
				    time_now() + backoff(srv, obs[i].attempts),
				    &err);
			}
		}
		if (store_outbound_done_many(srv->store, done, ndone, &err) != 0)
			log_line("relay: %s", err.msg);
		for (i = 0; i < n; i++)
			outbound_release(&obs[i]);
	}
out:
	free(reasons);
	free(obs);
	remote_free(r);
	return NULL;
}

int
relay_start(struct server *srv)
{
	struct worker *wk;
	unsigned int i;

	if (pthread_mutex_init(&srv->relay_mu, NULL) != 0 ||
	    pthread_cond_init(&srv->relay_cv, NULL) != 0)
		return -1;
	for (i = 0; i < srv->cfg.relay_workers; i++) {
		wk = malloc(sizeof(*wk));
		if (wk == NULL)
			break;
		wk->srv = srv;
		wk->index = i;
		pthread_mutex_lock(&srv->relay_mu);
		if (pthread_create(&srv->relay[i], NULL, relay_main, wk) != 0) {
			pthread_mutex_unlock(&srv->relay_mu);
			free(wk);
			break;
		}
		srv->relay_running = i + 1;
		pthread_mutex_unlock(&srv->relay_mu);
	}
	return srv->relay_running > 0 ? 0 : -1;
}

void
relay_wake(struct server *srv)
{
	if (srv->relay_running == 0)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	pthread_cond_signal(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
}

void
relay_stop(struct server *srv)
{
	unsigned int i;

	if (srv->relay_running == 0)
		return;
	pthread_mutex_lock(&srv->relay_mu);
	srv->relay_stop = 1;
	pthread_cond_broadcast(&srv->relay_cv);
	pthread_mutex_unlock(&srv->relay_mu);
	for (i = 0; i < srv->relay_running; i++)
		pthread_join(srv->relay[i], NULL);
	while (srv->relay_next < srv->relay_nbatch)
		outbound_release(&srv->relay_batch[srv->relay_next++]);
	srv->relay_running = 0;
}
