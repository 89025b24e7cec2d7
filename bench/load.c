/*
 * smimp-load - drive a smimpd with sealed messages for the server
 * benchmark, the way smtp-source drives an SMTP server.
 *
 *	smimp-load -i KEY [-c CONNECTIONS] [-t SECONDS] [-w KEY] FILE...
 *	smimp-load -i KEY -d -w KEY FILE...
 *
 * The files are read and checked before the clock starts.  Then each of
 * the connections submits them (signed requests, as smimp-send does) as
 * fast as the server answers; with -t it cycles through them until the
 * time is up.  With -w, a watcher signed in as a recipient lists its
 * mailbox, notes when each message arrived and acknowledges it: the
 * relay's throughput and end-to-end latency across domains, from the
 * start of each submission to the listing that first shows it.  With -d
 * nothing is submitted: the watcher waits for the messages (queued
 * earlier) and reports how fast they arrive, first to last.
 *
 * Prints one line per measurement:
 *	submitted N in S s: R msg/s, p50 A ms, p99 B ms, F failed
 *	client CPU C ms a submission	(this process's own)
 *	arrived N in S s: R msg/s, p50 A ms, p99 B ms
 */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "clientconf.h"
#include "identity.h"
#include "remote.h"
#include "send.h"

#define MAX_CONNS	256
#define BUCKET_US	50		/* latency histogram resolution */
#define BUCKETS		200000		/* up to ten seconds; then overflow */

struct histogram {
	pthread_mutex_t mu;
	unsigned long count[BUCKETS + 1];
	unsigned long total;
};

static struct {
	struct identity sender, watcher;
	int watching;
	int drain;
	struct submission *msgs;
	size_t nmsgs;
	_Atomic double *sent_at; /* per message: when its submission answered */
	unsigned char *listed;	/* per message: seen in the mailbox already */
	_Atomic size_t next;
	_Atomic size_t failed;
	_Atomic int done_sending;
	double deadline;	/* 0: each message once */
	struct remote_opts ropts;
	struct histogram submit, arrive;
	size_t arrived;
	double first_arrival, last_arrival;
} g;

/* This process's CPU time so far, user and system, every thread's. */
static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
record(struct histogram *h, double seconds)
{
	long b = (long)(seconds * 1e6 / BUCKET_US);

	if (b < 0)
		b = 0;
	if (b > BUCKETS)
		b = BUCKETS;
	pthread_mutex_lock(&h->mu);
	h->count[b]++;
	h->total++;
	pthread_mutex_unlock(&h->mu);
}

static double
percentile_ms(const struct histogram *h, double p)
{
	unsigned long want = (unsigned long)((double)h->total * p + 0.5), seen = 0;
	size_t b;

	if (want == 0)
		want = 1;
	for (b = 0; b <= BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= want)
			return (double)(b + 1) * BUCKET_US / 1000.0;
	}
	return 0;
}

static struct remote *
connect_or_die(void)
{
	struct smimp_err err;
	struct remote *r = remote_new(&g.ropts, &err);

	if (r == NULL) {
		fprintf(stderr, "smimp-load: %s\n", err.msg);
		exit(1);
	}
	return r;
}

static void *
submitter(void *arg)
{
	struct remote *r = arg;
	struct smimp_err err;
	size_t i;
	double t0;

	for (;;) {
		i = atomic_fetch_add(&g.next, 1);
		if (g.deadline == 0 ? i >= g.nmsgs : now() >= g.deadline)
			break;
		i %= g.nmsgs;
		t0 = now();
		/* Before the request: the relay may be quicker than our reply. */
		g.sent_at[i] = t0;
		if (send_submit(r, &g.sender, &g.msgs[i], &err) != 0) {
			if (atomic_fetch_add(&g.failed, 1) < 5)
				fprintf(stderr, "smimp-load: %s\n", err.msg);
			continue;
		}
		record(&g.submit, now() - t0);
	}
	return NULL;
}

static int
by_message_id(const void *a, const void *b)
{
	return strcmp(((const struct submission *)a)->message_id,
	    ((const struct submission *)b)->message_id);
}

/* The index of the message with this id, or -1. */
static long
find_message(const char *mid)
{
	struct submission key, *hit;

	(void)snprintf(key.message_id, sizeof(key.message_id), "%s", mid);
	hit = bsearch(&key, g.msgs, g.nmsgs, sizeof(*g.msgs), by_message_id);
	return hit != NULL ? (long)(hit - g.msgs) : -1;
}

/* Mailbox entries seen and waiting to be acknowledged. */
#define ACK_RING	65536
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long long ids[ACK_RING];
	size_t head, tail;
	int closed;
} acks = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0 };

static void
ack_push(long long id)
{
	pthread_mutex_lock(&acks.mu);
	while (acks.head - acks.tail == ACK_RING)
		pthread_cond_wait(&acks.cv, &acks.mu);
	acks.ids[acks.head++ % ACK_RING] = id;
	pthread_cond_broadcast(&acks.cv);
	pthread_mutex_unlock(&acks.mu);
}

/* Up to cap ids to acknowledge into out; 0 when the lister is done. */
static size_t
ack_pop(long long *out, size_t cap)
{
	size_t n = 0;

	pthread_mutex_lock(&acks.mu);
	while (acks.head == acks.tail && !acks.closed)
		pthread_cond_wait(&acks.cv, &acks.mu);
	while (acks.head != acks.tail && n < cap)
		out[n++] = acks.ids[acks.tail++ % ACK_RING];
	pthread_cond_broadcast(&acks.cv);
	pthread_mutex_unlock(&acks.mu);
	return n;
}

static void *
acker(void *arg)
{
	struct remote *r = arg;
	const char *me = g.watcher.sk.address, *domain = address_domain(me);
	struct remote_reply rep;
	struct smimp_err err;
	struct signer who;
	char base[512], body[64 * 24];
	long long ids[64];
	size_t n, i, off;

	signer_secret(&who, me, g.watcher.sk.identity_secret);
	if (remote_base(r, domain, base, sizeof(base), &err) != 0)
		return NULL;
	/* As smimp-fetch does: many acknowledgements in one request. */
	while ((n = ack_pop(ids, 64)) > 0) {
		for (i = 0, off = 0; i < n; i++)
			off += (size_t)snprintf(body + off, sizeof(body) - off,
			    "%c%lld", i > 0 ? ',' : '[', ids[i]);
		off += (size_t)snprintf(body + off, sizeof(body) - off, "]");
		if (remote_request(r, "POST", domain, base, "/v1/mailbox/ack",
		    body, off, &who, NULL, REMOTE_MAX_STATUS, &rep,
		    &err) == 0)
			remote_reply_release(&rep);
	}
	return NULL;
}

/*
 * One listing of the watcher's mailbox: note the arrival of entries not
 * seen before and hand them to the acknowledger.  Returns how many
 * were new, -1 on error.
 */
static int
watch_once(struct remote *r, const char *base)
{
	const char *me = g.watcher.sk.address, *domain = address_domain(me);
	struct remote_reply rep;
	struct smimp_err err;
	struct signer who;
	json_t *list, *e;
	long long id;
	size_t i;
	long m;
	int seen = 0;

	signer_secret(&who, me, g.watcher.sk.identity_secret);
	if (remote_request(r, "GET", domain, base, "/v1/mailbox", NULL, 0,
	    &who, NULL, REMOTE_MAX_LISTING, &rep, &err) != 0) {
		fprintf(stderr, "smimp-load: watching: %s\n", err.msg);
		return -1;
	}
	if (rep.status != 200) {
		fprintf(stderr, "smimp-load: watching: HTTP %ld %s\n",
		    rep.status, rep.error);
		remote_reply_release(&rep);
		return -1;
	}
	list = json_loadb(rep.body.buf, rep.body.len, 0, NULL);
	remote_reply_release(&rep);
	json_array_foreach(list, i, e) {
		const char *mid = json_string_value(json_object_get(e,
		    "message_id"));
		double t = now();

		id = json_integer_value(json_object_get(e, "id"));
		m = mid != NULL ? find_message(mid) : -1;
		/* Ids are random: what is new is told by the message id. */
		if (m >= 0 && g.listed[m])
			continue;
		if (m >= 0)
			g.listed[m] = 1;
		seen++;
		if (m >= 0 && g.drain && g.sent_at[m] == 0)
			g.sent_at[m] = t;	/* only arrivals are timed */
		if (m >= 0 && g.sent_at[m] > 0) {
			record(&g.arrive, t - g.sent_at[m]);
			g.sent_at[m] = 0;
			if (g.arrived++ == 0)
				g.first_arrival = t;
			g.last_arrival = t;
		}
		ack_push(id);
	}
	json_decref(list);
	return seen;
}

static void *
watcher(void *arg)
{
	struct remote *r = arg;
	struct smimp_err err;
	char base[512];
	double quiet_since = 0;

	if (remote_base(r, address_domain(g.watcher.sk.address), base,
	    sizeof(base), &err) != 0) {
		fprintf(stderr, "smimp-load: %s\n", err.msg);
		goto out;
	}
	for (;;) {
		int n = watch_once(r, base);

		if (n < 0)
			break;
		if (g.deadline == 0 && g.arrived >= g.nmsgs - g.failed)
			break;
		if (n > 0 || !g.done_sending)
			quiet_since = 0;
		else if (quiet_since == 0)
			quiet_since = now();
		else if (now() - quiet_since > (g.deadline > 0 ? 2 : 10))
			break;	/* nothing more is coming */
		if (n == 0)
			usleep(5000);
	}
out:
	pthread_mutex_lock(&acks.mu);
	acks.closed = 1;
	pthread_cond_broadcast(&acks.cv);
	pthread_mutex_unlock(&acks.mu);
	return NULL;
}

static void
load_identity(struct identity *id, const char *path)
{
	struct passphrase_source src = { NULL, 0 };
	struct smimp_err err;

	if (identity_load(id, path, &src, 0, &err) != 0) {
		fprintf(stderr, "smimp-load: %s\n", err.msg);
		exit(1);
	}
}

static void
prepare(char **files, size_t n)
{
	struct smimp_err err;
	size_t i;
	int fd;

	g.msgs = calloc(n, sizeof(*g.msgs));
	g.sent_at = calloc(n, sizeof(*g.sent_at));
	g.listed = calloc(n, 1);
	if (g.msgs == NULL || g.sent_at == NULL || g.listed == NULL) {
		fprintf(stderr, "smimp-load: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		fd = open(files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || send_prepare(&g.sender, fd, &g.msgs[i],
		    &err) != 0) {
			fprintf(stderr, "smimp-load: %s: %s\n", files[i],
			    fd < 0 ? "cannot open" : err.msg);
			exit(1);
		}
		close(fd);
	}
	g.nmsgs = n;
	qsort(g.msgs, n, sizeof(*g.msgs), by_message_id);
}

static void
usage(void)
{
	fprintf(stderr, "usage: smimp-load -i KEY [-c CONNECTIONS] "
	    "[-t SECONDS] [-w KEY] FILE...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct remote *conns[MAX_CONNS], *wr = NULL, *ar = NULL;
	pthread_t tid[MAX_CONNS], wtid, atid;
	const char *key = NULL, *wkey = NULL;
	long nconns = 8, seconds = 0, i;
	double t0, t1, cpu0, cpu1 = 0;
	size_t count;
	int c;

	while ((c = getopt(argc, argv, "c:di:t:w:")) != -1) {
		switch (c) {
		case 'd': g.drain = 1; break;
		case 'c': nconns = strtol(optarg, NULL, 10); break;
		case 'i': key = optarg; break;
		case 't': seconds = strtol(optarg, NULL, 10); break;
		case 'w': wkey = optarg; break;
		default: usage();
		}
	}
	if (g.drain)
		nconns = 0;
	if (key == NULL || optind == argc || nconns < 0 ||
	    (g.drain && wkey == NULL) ||
	    nconns > MAX_CONNS || seconds < 0)
		usage();
	if (sodium_init() < 0)
		return 1;
	pthread_mutex_init(&g.submit.mu, NULL);
	pthread_mutex_init(&g.arrive.mu, NULL);
	clientconf_from_env(&g.ropts);
	load_identity(&g.sender, key);
	if (wkey != NULL) {
		load_identity(&g.watcher, wkey);
		g.watching = 1;
	}
	prepare(argv + optind, (size_t)(argc - optind));
	for (i = 0; i < nconns; i++)
		conns[i] = connect_or_die();
	if (g.watching) {
		wr = connect_or_die();
		ar = connect_or_die();
	}
	cpu0 = cpu_seconds();
	t0 = now();
	if (seconds > 0)
		g.deadline = t0 + (double)seconds;
	if (g.watching && (pthread_create(&wtid, NULL, watcher, wr) != 0 ||
	    pthread_create(&atid, NULL, acker, ar) != 0))
		return 1;
	for (i = 0; i < nconns; i++)
		if (pthread_create(&tid[i], NULL, submitter, conns[i]) != 0)
			return 1;
	for (i = 0; i < nconns; i++)
		pthread_join(tid[i], NULL);
	t1 = now();
	cpu1 = cpu_seconds();
	g.done_sending = 1;
	count = g.submit.total;
	if (!g.drain) {
		printf("submitted %zu in %.2f s: %.0f msg/s, p50 %.2f ms, p99 %.2f ms, "
		    "%zu failed\n", count, t1 - t0, (double)count / (t1 - t0),
		    percentile_ms(&g.submit, 0.50), percentile_ms(&g.submit, 0.99),
		    (size_t)g.failed);
		/* What the load itself costs, beside the server's. */
		printf("client CPU %.3f ms a submission\n", count > 0 ?
		    (cpu1 - cpu0) * 1000.0 / (double)count : 0.0);
	}
	if (g.watching) {
		pthread_join(wtid, NULL);
		pthread_join(atid, NULL);
		if (g.drain) {
			printf("drained %zu in %.2f s: %.0f msg/s\n", g.arrived,
			    g.last_arrival - g.first_arrival, g.arrived > 1 ?
			    (double)(g.arrived - 1) / (g.last_arrival -
			    g.first_arrival) : 0.0);
			goto done;
		}
		printf("arrived %zu in %.2f s: %.0f msg/s, p50 %.2f ms, "
		    "p99 %.2f ms\n", g.arrived, g.arrived > 0 ?
		    g.last_arrival - t0 : 0.0,
		    g.arrived > 0 ? (double)g.arrived / (g.last_arrival - t0) :
		    0.0, percentile_ms(&g.arrive, 0.50),
		    percentile_ms(&g.arrive, 0.99));
	}
done:
	if (g.watching) {
		remote_free(wr);
		remote_free(ar);
	}
	for (i = 0; i < nconns; i++)
		remote_free(conns[i]);
	fflush(stdout);
	return g.failed > 0 ? 1 : 0;
}
