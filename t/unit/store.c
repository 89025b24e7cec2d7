/*
 * store - the store's unit test: one case per run, on a store in a
 * directory of its own (or, given a URI, on that store with the
 * directory as its local one), with the caller's clock everywhere.
 *
 *	store list			the cases
 *	store CASE DIR [URI]		run one: exit 0, or 1 and what failed,
 *					or 77 when the case is not for the
 *					URI's back end
 *	store claim DIR FILE		claim one relay entry as a worker
 *					would: print it, its body into FILE
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "fileio.h"
#include "sites.h"
#include "store.h"
#include "banned.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s: line %d: %s\n", \
	which, __LINE__, #c); return 1; } } while (0)
#define MAXLIST	64

static const char *which = "";
/* A log without devices: the store keeps its bytes, never reads them. */
static const struct store_log plain_log = {
	(const unsigned char *)"log", 3, NULL, 0
};
static const char *dir;
static const char *uri;		/* the store's; dir when none is given */
static int on_pg;		/* uri is PostgreSQL's */
static struct smimp_err err;

/*
 * The accounts the cases deliver to, made when a case opens its store;
 * a store keeps nothing for an address that has none.  A case that
 * makes its own (bare) opens with open_bare.
 */
static const char *const accounts[] = {
	"u@here", "v@here", "w@here", "s@here", "t@here", "i@here", "j@here",
	"bob@example.org", "inline@example.org", "queued@example.org",
};
static int bare;

static struct store *
open_with(const struct store_limits *lim)
{
	struct store *st = store_open(uri, dir, lim, &err);
	size_t i;
	int r;

	if (st == NULL) {
		fprintf(stderr, "%s: %s\n", which, err.msg);
		return NULL;
	}
	for (i = 0; !bare && i < sizeof(accounts) / sizeof(accounts[0]); i++) {
		r = store_user_add(st, accounts[i], &plain_log, 0, &err);
		if (r != STORE_OK && r != STORE_EXISTS) {
			fprintf(stderr, "%s: %s\n", which, err.msg);
			store_close(st);
			return NULL;
		}
	}
	return st;
}

/* A store whose accounts the case makes itself; lim NULL: none. */
static struct store *
open_bare(const struct store_limits *lim)
{
	struct store_limits none;

	memset(&none, 0, sizeof(none));
	bare = 1;
	return open_with(lim != NULL ? lim : &none);
}

static struct store *
open_plain(void)
{
	struct store_limits lim;

	memset(&lim, 0, sizeof(lim));
	return open_with(&lim);
}

/* One delivery of text: its result. */
static int
deliver(struct store *st, const char *to, const char *from, const char *mid,
    const char *text, int64_t now)
{
	struct store_body b = { NULL, (const unsigned char *)text,
	    strlen(text) };
	struct store_delivery d = { to, from, mid, &b };
	int res = -9;

	if (store_deliver(st, NULL, &d, 1, &res, now, &err) != STORE_OK) {
		fprintf(stderr, "deliver: %s\n", err.msg);
		return STORE_ERROR;
	}
	return res;
}

/*
 * One delivery from a@far.example of STORE_INLINE_MAX + 1 bytes c,
 * given in memory: too large to go inline.
 */
static int
deliver_big(struct store *st, const char *to, const char *mid, char c,
    int64_t now)
{
	char *text = malloc(STORE_INLINE_MAX + 2);
	int r;

	if (text == NULL)
		return STORE_ERROR;
	memset(text, c, STORE_INLINE_MAX + 1);
	text[STORE_INLINE_MAX + 1] = '\0';
	r = deliver(st, to, "a@far.example", mid, text, now);
	free(text);
	return r;
}

/* A submission by from of text, to local and to one other domain. */
static int
submit(struct store *st, const char *from, const char *mid,
    const char *nonce, const char *const *local, size_t nlocal,
    const char *domain, const struct store_body *b, int64_t now)
{
	struct store_outbound_new ob = { domain, "r@x", NULL, NULL, NULL };
	struct store_submission sub;

	memset(&sub, 0, sizeof(sub));
	sub.signer = from;
	sub.nonce = nonce;
	sub.nonce_expires = now + 300;
	sub.sender = from;
	sub.message_id = mid;
	sub.all = "r@x";
	sub.stamp = "stamp";
	sub.stamp_date = "2026-01-01T00:00:00Z";
	sub.body = b;
	sub.obs = &ob;
	sub.nobs = domain != NULL;
	sub.local = local;
	sub.nlocal = nlocal;
	return store_submit(st, &sub, now, &err);
}

static int
submit_text(struct store *st, const char *from, const char *mid,
    const char *domain, const char *text, int64_t now)
{
	struct store_body b = { NULL, (const unsigned char *)text,
	    strlen(text) };

	return submit(st, from, mid, mid, NULL, 0, domain, &b, now);
}

struct listing {
	size_t n;
	struct mailbox_entry e[MAXLIST];
};

static int
list_one(const struct mailbox_entry *e, void *arg)
{
	struct listing *l = arg;

	if (l->n == MAXLIST)
		return 1;
	l->e[l->n++] = *e;
	return 0;
}

/* What is pending for the owner's device ("" the identity key). */
static size_t
list_for(struct store *st, const char *owner, const char *device,
    struct listing *l)
{
	l->n = 0;
	if (store_mailbox_list(st, owner, device, list_one, l, &err) !=
	    STORE_OK) {
		fprintf(stderr, "list: %s\n", err.msg);
		return (size_t)-1;
	}
	return l->n;
}

static size_t
list(struct store *st, const char *owner, struct listing *l)
{
	return list_for(st, owner, "", l);
}

/* Acknowledge one id for a device: how many were pending, or -1. */
static int
ack_for(struct store *st, const char *owner, const char *device, int64_t id,
    int64_t now)
{
	size_t acked = 99;

	if (store_mailbox_ack(st, owner, device, &id, 1, &acked, now, &err) !=
	    STORE_OK) {
		fprintf(stderr, "ack: %s\n", err.msg);
		return -1;
	}
	return (int)acked;
}

/* Can the device open the owner's id? */
static int
opens(struct store *st, const char *owner, const char *device, int64_t id)
{
	uint64_t n;
	int fd, r;

	r = store_mailbox_open(st, owner, device, id, &fd, &n, &err);
	if (r == STORE_OK)
		close(fd);
	return r == STORE_OK;
}

/* Receiving devices, each with a key of its own (a byte repeated). */
static const struct store_device dev_a = { "a", { 1 } };
static const struct store_device dev_b = { "b", { 2 } };
static const struct store_device dev_b2 = { "b", { 3 } };	/* b again */

/* The log "log" naming the n devices of d. */
static struct store_log
log_of(const struct store_device *d, size_t n)
{
	struct store_log l = { (const unsigned char *)"log", 3, d, n };

	return l;
}

/* u@here's devices become the n of d: STORE_OK or what it answered. */
static int
devices_now(struct store *st, const struct store_device *d, size_t n,
    int64_t now)
{
	struct store_log l = log_of(d, n);

	return store_user_log_update(st, "u@here", (const unsigned char *)"log",
	    3, &l, now, &err);
}

/* u@here, with the devices a and b. */
static int
user_ab(struct store *st)
{
	struct store_device d[2];
	struct store_log l;

	d[0] = dev_a;
	d[1] = dev_b;
	l = log_of(d, 2);
	return store_user_add(st, "u@here", &l, 1, &err);
}

/* What fd holds (len bytes, the store said) is want; fd is closed. */
static int
read_is(int fd, uint64_t len, const void *want, size_t wlen)
{
	unsigned char *buf = NULL;
	size_t got;
	int ok;

	ok = lseek(fd, 0, SEEK_CUR) == 0 && fd_read_all(fd, "body", 1 << 20,
	    &buf, &got, &err) == 0 && got == len && got == wlen &&
	    (got == 0 || memcmp(buf, want, got) == 0);
	close(fd);
	free(buf);
	return ok;
}

/* A mailbox entry's body is these len bytes. */
static int
body_bytes(struct store *st, const char *owner, int64_t id,
    const void *want, size_t len)
{
	uint64_t n;
	int fd;

	if (store_mailbox_open(st, owner, "", id, &fd, &n, &err) != STORE_OK) {
		fprintf(stderr, "open: %s\n", err.msg);
		return 0;
	}
	return read_is(fd, n, want, len);
}

/* The body of a mailbox entry equals text. */
static int
body_is(struct store *st, const char *owner, int64_t id, const char *text)
{
	return body_bytes(st, owner, id, text, strlen(text));
}

/*
 * On PostgreSQL, what stands for the SQLite store's body files: the
 * references to stored bodies, one per row as a file name is; and no
 * chunk without its body, no body without a reference.
 */
static size_t
body_refs(void)
{
	PGconn *pc = PQconnectdb(uri);
	PGresult *res = NULL;
	size_t n = (size_t)-1;

	if (PQstatus(pc) == CONNECTION_OK)
		res = PQexec(pc, "SELECT coalesce(sum(refs), 0) + (SELECT "
		    "count(*) FROM body_chunks WHERE body NOT IN (SELECT id "
		    "FROM bodies)) * 1000 + (SELECT count(*) FROM bodies "
		    "WHERE refs <= 0) * 1000 FROM bodies");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		n = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fprintf(stderr, "body_refs: %s", PQerrorMessage(pc));
	PQclear(res);
	PQfinish(pc);
	return n;
}

/* Files under DIR/bodies (or, on PostgreSQL, body_refs). */
static size_t
body_files(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	unsigned int i;
	DIR *d;

	if (on_pg)
		return body_refs();
	for (i = 0; i < 256; i++) {
		(void)snprintf(path, sizeof(path), "%s/bodies/%02x", dir, i);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

static uint64_t
queued(struct store *st)
{
	uint64_t n = 999;

	(void)store_outbound_count(st, &n, &err);
	return n;
}

/* Claim for owner: how many entries, into obs (released here). */
static size_t
claim(struct store *st, const char *owner, int64_t now, unsigned int cap,
    unsigned int domain_cap, uint64_t max_bytes, int64_t *ids)
{
	struct outbound obs[16];
	size_t n = 0, i;

	if (store_outbound_claim(st, owner, now, now + 600, domain_cap,
	    max_bytes, NULL, 0, obs, cap, &n, &err) != STORE_OK) {
		fprintf(stderr, "claim: %s\n", err.msg);
		return 99;
	}
	for (i = 0; i < n; i++) {
		if (ids != NULL)
			ids[i] = obs[i].id;
		outbound_release(&obs[i]);
	}
	return n;
}

/* ---- the cases ---- */

/* Two senders, one message id, one recipient: two messages. */
static int
case_id_binding(void)
{
	struct store *st = open_plain();
	struct listing l;

	CHECK(st != NULL);
	CHECK(deliver(st, "u@here", "a@one.example", "m1", "from a", 10) ==
	    STORE_OK);
	CHECK(deliver(st, "u@here", "b@two.example", "m1", "from b", 11) ==
	    STORE_OK);
	/* The same triple again stores nothing, and is not an error. */
	CHECK(deliver(st, "u@here", "a@one.example", "m1", "other", 12) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 2);
	CHECK(strcmp(l.e[0].sender, "a@one.example") == 0);
	CHECK(strcmp(l.e[1].sender, "b@two.example") == 0);
	CHECK(body_is(st, "u@here", l.e[0].id, "from a"));
	CHECK(body_is(st, "u@here", l.e[1].id, "from b"));
	/* Small bodies in memory stay inside the database. */
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/* An acknowledged message delivered again: nothing until idempotency. */
static int
case_tombstone(void)
{
	struct store_limits lim = { 0, 0, 0, 100, 0, 0 };
	struct store *st = open_with(&lim);
	struct listing l;
	size_t acked = 0;

	CHECK(st != NULL);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 1000) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[0].id, 1, &acked, 1000,
	    &err) == STORE_OK && acked == 1);
	CHECK(body_files() == 0);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 1100) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 0);
	/* Another sender's message with that id is another message. */
	CHECK(deliver(st, "u@here", "b@far.example", "m1", "y", 1100) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 1);
	/* Past the window the tombstone is gone: stored again. */
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 1101) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 2);
	store_close(st);
	return 0;
}

/* Ids are random and tell nothing; listing is in arrival order. */
static int
case_random_ids(void)
{
	struct store *st = open_plain();
	struct listing l;
	char mid[32];
	size_t i, j, acked;
	int64_t gone;

	CHECK(st != NULL);
	for (i = 0; i < 40; i++) {
		(void)snprintf(mid, sizeof(mid), "m%zu", i);
		CHECK(deliver(st, "u@here", "a@far.example", mid, "x",
		    100) == STORE_OK);
	}
	CHECK(list(st, "u@here", &l) == 40);
	for (i = 0; i < l.n; i++) {
		(void)snprintf(mid, sizeof(mid), "m%zu", i);
		CHECK(strcmp(l.e[i].message_id, mid) == 0);
		CHECK(l.e[i].id >= 1 && l.e[i].id <= (INT64_C(1) << 53) - 1);
		for (j = 0; j < i; j++)
			CHECK(l.e[i].id != l.e[j].id);
		if (i > 0)
			CHECK(l.e[i].id != l.e[i - 1].id + 1);
	}
	/* A new arrival after a gap still lists last. */
	gone = l.e[3].id;
	CHECK(store_mailbox_ack(st, "u@here", "", &gone, 1, &acked, 100,
	    &err) == STORE_OK && acked == 1);
	CHECK(deliver(st, "u@here", "a@far.example", "late", "x", 100) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 40);
	CHECK(strcmp(l.e[39].message_id, "late") == 0);
	store_close(st);
	return 0;
}

static const char sixty[] =
    "012345678901234567890123456789012345678901234567890123456789";

/*
 * A delivery claims its request's nonce in its own transaction: a
 * replay stores nothing, and a request whose items all failed (none to
 * store) still uses its nonce up.
 */
static int
case_deliver_nonce(void)
{
	struct store *st = open_plain();
	struct store_body b = { NULL, (const unsigned char *)"age", 3 };
	struct store_delivery d = { "u@here", "a@far.example", "m1", &b };
	struct store_nonce n1 = { "server:far.example", "n1", 600 };
	struct store_nonce n2 = { "server:far.example", "n2", 600 };
	struct listing l;
	int res = STORE_ERROR;

	CHECK(st != NULL);
	CHECK(store_deliver(st, &n1, &d, 1, &res, 1, &err) == STORE_OK &&
	    res == STORE_OK);
	d.message_id = "m2";
	CHECK(store_deliver(st, &n1, &d, 1, &res, 2, &err) == STORE_REPLAY);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(store_deliver(st, &n2, NULL, 0, NULL, 2, &err) == STORE_OK);
	CHECK(store_deliver(st, &n2, &d, 1, &res, 3, &err) == STORE_REPLAY);
	CHECK(list(st, "u@here", &l) == 1);
	/* The same nonce from another signer is another nonce. */
	n2.signer = "server:other.example";
	CHECK(store_deliver(st, &n2, &d, 1, &res, 3, &err) == STORE_OK);
	CHECK(list(st, "u@here", &l) == 2);
	store_close(st);
	return 0;
}

/* A full mailbox refuses, copy by copy, and a submission as a whole. */
static int
case_mailbox_quota(void)
{
	struct store_limits lim = { 100, 0, 0, 0, 0, 0 };
	struct store *st = open_with(&lim);
	struct store_body b = { NULL, (const unsigned char *)sixty, 60 };
	struct store_delivery d[2] = {
		{ "u@here", "a@far.example", "m2", &b },
		{ "v@here", "a@far.example", "m2", &b },
	};
	const char *to[] = { "v@here", "u@here" };
	struct listing l;
	int res[2];
	size_t acked;

	CHECK(st != NULL);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", sixty, 1) ==
	    STORE_OK);
	CHECK(store_deliver(st, NULL, d, 2, res, 2, &err) == STORE_OK);
	CHECK(res[0] == STORE_QUOTA && res[1] == STORE_OK);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(list(st, "v@here", &l) == 1);
	/* u is full: the submission stores nothing, its nonce neither. */
	CHECK(submit(st, "s@here", "m3", "n1", to, 2, NULL, &b, 3) ==
	    STORE_QUOTA);
	CHECK(list(st, "v@here", &l) == 1);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[0].id, 1, &acked, 4,
	    &err) == STORE_OK && acked == 1);
	CHECK(submit(st, "s@here", "m3", "n1", to + 1, 1, NULL, &b, 5) ==
	    STORE_OK);
	CHECK(submit(st, "s@here", "m4", "n1", to + 1, 1, NULL, &b, 5) ==
	    STORE_REPLAY);
	store_close(st);
	return 0;
}

/* A sender's relay queue has a quota. */
static int
case_queue_quota(void)
{
	struct store_limits lim = { 0, 100, 0, 0, 0, 0 };
	struct store *st = open_with(&lim);
	int64_t id;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", sixty, 10) ==
	    STORE_OK);
	CHECK(submit_text(st, "s@here", "m2", "far.example", sixty, 10) ==
	    STORE_QUOTA);
	CHECK(queued(st) == 1);
	/* Another sender has a queue of its own. */
	CHECK(submit_text(st, "t@here", "m2", "far.example", sixty, 10) ==
	    STORE_OK);
	CHECK(claim(st, "w", 10, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_done(st, "w", &id, 1, &err) == STORE_OK);
	CHECK(submit_text(st, "s@here", "m3", "far.example", sixty, 10) ==
	    STORE_OK);
	store_close(st);
	return 0;
}

/* Bytes per day from a domain to those who never wrote to it. */
static int
case_stranger_quota(void)
{
	struct store_limits lim = { 0, 0, 100, 0, 0, 0 };
	struct store *st = open_with(&lim);
	int64_t day = 20000 * INT64_C(86400);

	CHECK(st != NULL);
	CHECK(store_correspondent(st, "w@here", "far.example", &err) ==
	    STORE_NOT_FOUND);
	CHECK(submit_text(st, "w@here", "m0", "far.example", "hi", day) ==
	    STORE_OK);
	/* Who wrote where: exactly that pair. */
	CHECK(store_correspondent(st, "w@here", "far.example", &err) ==
	    STORE_OK);
	CHECK(store_correspondent(st, "u@here", "far.example", &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_correspondent(st, "w@here", "mx.far.example", &err) ==
	    STORE_NOT_FOUND);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", sixty, day + 1) ==
	    STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m2", sixty, day + 2) ==
	    STORE_QUOTA);
	/* Its subdomains count with it: they are its to make up. */
	CHECK(deliver(st, "u@here", "b@mx.far.example", "m2", sixty,
	    day + 2) == STORE_QUOTA);
	/* Another domain counts on its own; a correspondent not at all. */
	CHECK(deliver(st, "u@here", "a@near.example", "m2", sixty, day + 2) ==
	    STORE_OK);
	CHECK(deliver(st, "w@here", "a@far.example", "m2", sixty, day + 3) ==
	    STORE_OK);
	CHECK(deliver(st, "w@here", "a@far.example", "m3", sixty, day + 3) ==
	    STORE_OK);
	/* The next UTC day starts afresh. */
	CHECK(deliver(st, "u@here", "a@far.example", "m2", sixty,
	    day + 86400) == STORE_OK);
	/* What a subdomain stores is counted for the site, not for it. */
	CHECK(deliver(st, "u@here", "b@mx.far.example", "m4", sixty,
	    day + 2 * 86400) == STORE_OK);
	CHECK(deliver(st, "u@here", "c@mail.far.example", "m4", sixty,
	    day + 2 * 86400) == STORE_QUOTA);
	store_close(st);
	return 0;
}

struct claimer {
	struct store *st;
	char owner[16];
	int64_t ids[256];
	size_t n;
	int failed;
};

static void *
claimer_main(void *arg)
{
	struct claimer *c = arg;
	struct outbound obs[7];
	struct smimp_err e;
	size_t n, i;

	for (;;) {
		if (store_outbound_claim(c->st, c->owner, 50, 650, 0, 0, NULL,
		    0, obs, 7, &n, &e) != STORE_OK) {
			c->failed = 1;
			break;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (c->n < 256)
				c->ids[c->n++] = obs[i].id;
			outbound_release(&obs[i]);
		}
	}
	return NULL;
}

/* Workers claiming at once never get the same entry. */
static int
case_claim_threads(void)
{
	struct store *st = open_plain();
	struct claimer c[6];
	pthread_t t[6];
	char mid[32], dom[32];
	unsigned char *seen;
	size_t i, j, total = 0;

	CHECK(st != NULL);
	for (i = 0; i < 200; i++) {
		(void)snprintf(mid, sizeof(mid), "m%zu", i);
		(void)snprintf(dom, sizeof(dom), "d%zu.example", i % 8);
		CHECK(submit_text(st, "s@here", mid, dom, "x", 50) ==
		    STORE_OK);
	}
	for (i = 0; i < 6; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].st = st;
		(void)snprintf(c[i].owner, sizeof(c[i].owner), "node:%zu", i);
		CHECK(pthread_create(&t[i], NULL, claimer_main, &c[i]) == 0);
	}
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	seen = calloc(1024, 1);
	CHECK(seen != NULL);
	for (i = 0; i < 6; i++) {
		CHECK(!c[i].failed);
		for (j = 0; j < c[i].n; j++) {
			CHECK(c[i].ids[j] > 0 && c[i].ids[j] < 1024);
			CHECK(!seen[c[i].ids[j]]);
			seen[c[i].ids[j]] = 1;
		}
		total += c[i].n;
	}
	free(seen);
	CHECK(total == 200);
	store_close(st);
	return 0;
}

#define RACERS		6
#define RACE_MSGS	40

struct racer {
	struct store *st;
	const char *device;	/* acknowledges for it, or NULL: delivers */
	unsigned int first;	/* of the messages it delivers, the first */
	int64_t ids[RACE_MSGS];
	size_t n, stored;
	int failed;
};

/*
 * Deliver RACE_MSGS messages to u@here, from m<first> on, wrapping
 * around: every racer delivers the same ones, in another order.
 */
static void *
racer_deliver(void *arg)
{
	struct racer *r = arg;
	struct store_body b = { NULL, (const unsigned char *)"race", 4 };
	struct store_delivery d = { "u@here", "a@far.example", NULL, &b };
	struct smimp_err e;
	char mid[16];
	size_t i;
	int res;

	for (i = 0; i < RACE_MSGS && !r->failed; i++) {
		(void)snprintf(mid, sizeof(mid), "m%zu",
		    (r->first + i) % RACE_MSGS);
		d.message_id = mid;
		if (store_deliver(r->st, NULL, &d, 1, &res, 10, &e) !=
		    STORE_OK)
			r->failed = 1;
		r->stored += res == STORE_OK;
	}
	return NULL;
}

/* Acknowledge r->ids one by one for r->device. */
static void *
racer_ack(void *arg)
{
	struct racer *r = arg;
	struct smimp_err e;
	size_t i, acked;

	for (i = 0; i < r->n && !r->failed; i++) {
		if (store_mailbox_ack(r->st, "u@here", r->device, &r->ids[i], 1,
		    &acked, 20, &e) != STORE_OK)
			r->failed = 1;
		r->stored += acked;
	}
	return NULL;
}

/* Run n racers at once, each from fn. */
static int
race(struct racer *r, size_t n, void *(*fn)(void *))
{
	pthread_t t[RACERS];
	size_t i;
	int ok = 1;

	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, &r[i]) != 0)
			return 0;
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		ok = ok && !r[i].failed;
	}
	return ok;
}

/*
 * Deliveries of the same messages from threads at once store each one
 * once; the identity key and two devices acknowledging at once each
 * count each message once, and the last one takes it away.
 */
static int
case_races(void)
{
	struct store_limits lim = { 0, 0, 0, 1000, 0, 0 };
	struct store *st = open_bare(&lim);
	static const char *const devs[] = { "", "a", "b" };
	struct racer r[RACERS];
	struct listing l;
	size_t i, j;

	CHECK(st != NULL);
	CHECK(user_ab(st) == STORE_OK);
	memset(r, 0, sizeof(r));
	for (i = 0; i < RACERS; i++) {
		r[i].st = st;
		r[i].first = (unsigned int)(i * 7);
	}
	CHECK(race(r, RACERS, racer_deliver));
	CHECK(list(st, "u@here", &l) == RACE_MSGS);
	for (i = 0; i < l.n; i++)
		for (j = 0; j < i; j++)
			CHECK(strcmp(l.e[i].message_id, l.e[j].message_id) != 0);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++) {
		r[i].st = st;
		r[i].device = devs[i];
		r[i].n = l.n;
		for (j = 0; j < l.n; j++)
			r[i].ids[j] = l.e[(j + i * 13) % l.n].id;
	}
	CHECK(race(r, 3, racer_ack));
	for (i = 0; i < 3; i++) {
		CHECK(r[i].stored == RACE_MSGS);
		CHECK(list_for(st, "u@here", devs[i], &l) == 0);
	}
	/* Gone, and acknowledged: delivered again, stored no more. */
	CHECK(body_files() == 0);
	CHECK(deliver(st, "u@here", "a@far.example", "m0", "again", 30) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 0);
	store_close(st);
	return 0;
}

/* A mailbox quota holds when deliveries race for its last room. */
static int
case_quota_race(void)
{
	struct store_limits lim = { 4 * 10, 0, 0, 0, 0, 0 };
	struct store *st = open_with(&lim);
	struct racer r[RACERS];
	struct listing l;
	size_t i, stored = 0;

	CHECK(st != NULL);
	memset(r, 0, sizeof(r));
	for (i = 0; i < RACERS; i++) {
		r[i].st = st;
		r[i].first = (unsigned int)(i * 7);
	}
	CHECK(race(r, RACERS, racer_deliver));
	for (i = 0; i < RACERS; i++)
		stored += r[i].stored;
	/* Ten fit; the others are refused, by every racer alike. */
	CHECK(list(st, "u@here", &l) == 10);
	CHECK(stored >= 10);
	store_close(st);
	return 0;
}

/* No more than domain_cap owners in one domain; max_bytes per claim. */
static int
case_domain_cap(void)
{
	struct store *st = open_plain();
	char mid[32];
	int64_t ids[16];
	size_t i;

	CHECK(st != NULL);
	for (i = 0; i < 10; i++) {
		(void)snprintf(mid, sizeof(mid), "a%zu", i);
		CHECK(submit_text(st, "s@here", mid, "a.example", sixty, 5) ==
		    STORE_OK);
	}
	CHECK(claim(st, "o1", 5, 2, 2, 0, ids) == 2);
	CHECK(claim(st, "o2", 5, 2, 2, 0, NULL) == 2);
	CHECK(claim(st, "o3", 5, 2, 2, 0, NULL) == 0);
	CHECK(submit_text(st, "s@here", "b0", "b.example", sixty, 5) ==
	    STORE_OK);
	CHECK(claim(st, "o3", 5, 2, 2, 0, NULL) == 1);
	CHECK(claim(st, "o1", 5, 2, 2, 0, NULL) == 0);
	/* One owner fewer in a.example: room for another. */
	CHECK(store_outbound_done(st, "o1", ids, 2, &err) == STORE_OK);
	/* At least one entry, then no more than max_bytes. */
	CHECK(claim(st, "o4", 5, 5, 2, 100, NULL) == 1);
	CHECK(claim(st, "o4", 5, 5, 0, 130, NULL) == 2);
	CHECK(queued(st) == 9);
	store_close(st);
	return 0;
}

/* A lease that expires makes its entries claimable by another owner. */
static int
case_lease_expiry(void)
{
	struct store *st = open_plain();
	int64_t id, id2;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, &id) == 1);
	CHECK(claim(st, "o2", 1599, 1, 0, 0, NULL) == 0);
	CHECK(claim(st, "o2", 1600, 1, 0, 0, &id2) == 1 && id2 == id);
	/* o1 lost it: what it says about the entry does nothing. */
	CHECK(store_outbound_done(st, "o1", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 1);
	CHECK(store_outbound_retry(st, "o1", id, 5000, "test", &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_done(st, "o2", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 0);
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/*
 * A renewal extends only the renewing owner's lease: one that expired
 * but was not taken yet is kept, one that another owner took is not.
 */
static int
case_lease_renewal(void)
{
	struct store *st = open_plain();
	int64_t id, id2;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_renew(st, "o1", &id, 1, 2000, &err) ==
	    STORE_OK);
	CHECK(claim(st, "o2", 1999, 1, 0, 0, NULL) == 0);
	/* Another owner's renewal does nothing. */
	CHECK(store_outbound_renew(st, "o2", &id, 1, 5000, &err) ==
	    STORE_OK);
	CHECK(claim(st, "o2", 2000, 1, 0, 0, &id2) == 1 && id2 == id);
	/* o1 lost it to o2: renewing it now keeps o2's lease as it is. */
	CHECK(store_outbound_renew(st, "o1", &id, 1, 9000, &err) ==
	    STORE_OK);
	CHECK(claim(st, "o3", 2600, 1, 0, 0, &id2) == 1 && id2 == id);
	CHECK(store_outbound_done(st, "o3", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 0);
	store_close(st);
	return 0;
}

/*
 * Alone with the SQLite store on open: the leases of the dead are let
 * go.  A PostgreSQL store is never known to be alone (other nodes may
 * hold leases): they run out instead.
 */
static int
case_restart_leases(void)
{
	struct store *st = open_plain();
	int64_t id, id2;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, &id) == 1);
	CHECK(claim(st, "o2", 1000, 1, 0, 0, NULL) == 0);
	store_close(st);
	st = open_plain();
	CHECK(st != NULL);
	if (on_pg) {
		CHECK(claim(st, "o2", 1599, 1, 0, 0, NULL) == 0);
		CHECK(claim(st, "o2", 1600, 1, 0, 0, &id2) == 1 && id2 == id);
	} else {
		CHECK(claim(st, "o2", 1000, 1, 0, 0, &id2) == 1 && id2 == id);
	}
	store_close(st);
	return 0;
}

/* done and retry by someone who does not hold the entry do nothing. */
static int
case_not_owner(void)
{
	struct store *st = open_plain();
	struct outbound ob;
	size_t n;
	int64_t id;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_retry(st, "o2", id, 1001, "test", &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_done(st, "o2", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 1);
	CHECK(claim(st, "o3", 1001, 1, 0, 0, NULL) == 0);
	/* The owner's retry: one attempt more, due at next_try, free. */
	CHECK(store_outbound_retry(st, "o1", id, 2000, "test", &err) ==
	    STORE_OK);
	CHECK(claim(st, "o3", 1999, 1, 0, 0, NULL) == 0);
	CHECK(store_outbound_claim(st, "o3", 2000, 2600, 0, 0, NULL, 0, &ob, 1,
	    &n, &err) == STORE_OK && n == 1);
	CHECK(ob.attempts == 1 && ob.first_try == 1000 && ob.id == id);
	outbound_release(&ob);
	store_close(st);
	return 0;
}

/*
 * A claim removes what its owner finished in the same transaction, and
 * only that: another owner's entry stays; with nothing else due, the
 * done entries still go.
 */
static int
case_claim_done(void)
{
	struct store *st = open_plain();
	struct outbound ob;
	int64_t a, b2, c, done[2];
	size_t n;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 10) ==
	    STORE_OK);
	CHECK(submit_text(st, "s@here", "m2", "far.example", "y", 10) ==
	    STORE_OK);
	CHECK(submit_text(st, "s@here", "m3", "far.example", "z", 10) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 10, 1, 0, 0, &a) == 1);
	CHECK(claim(st, "o2", 10, 1, 0, 0, &b2) == 1);
	/* o1 hands in its own entry and o2's: only its own goes. */
	done[0] = a;
	done[1] = b2;
	CHECK(store_outbound_claim(st, "o1", 11, 611, 0, 0, done, 2, &ob, 1,
	    &n, &err) == STORE_OK && n == 1);
	c = ob.id;
	CHECK(c != a && c != b2 && strcmp(ob.message_id, "m3") == 0);
	outbound_release(&ob);
	CHECK(queued(st) == 2);
	/* Nothing left due: the claim finds none, and still removes c. */
	CHECK(store_outbound_claim(st, "o1", 12, 612, 0, 0, &c, 1, &ob, 1,
	    &n, &err) == STORE_OK && n == 0);
	CHECK(queued(st) == 1);
	CHECK(store_outbound_done(st, "o2", &b2, 1, &err) == STORE_OK);
	CHECK(queued(st) == 0);
	store_close(st);
	return 0;
}

/* A bounce removes the entry and delivers the notice, together. */
static int
case_bounce(void)
{
	struct store *st = open_plain();
	struct store_body b = { NULL, (const unsigned char *)"gave up", 7 };
	struct store_delivery notice = { "s@here", "server:here",
	    "bounce:far.example:m1", &b };
	struct listing l;
	int64_t id;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 10) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 10, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_bounce(st, "o2", id, &notice, 20, &err) ==
	    STORE_NOT_FOUND);
	CHECK(queued(st) == 1);
	CHECK(list(st, "s@here", &l) == 0);
	CHECK(body_files() == 0);
	CHECK(store_outbound_bounce(st, "o1", id, &notice, 20, &err) ==
	    STORE_OK);
	CHECK(queued(st) == 0);
	CHECK(list(st, "s@here", &l) == 1);
	CHECK(strcmp(l.e[0].sender, "server:here") == 0);
	CHECK(l.e[0].received == 20);
	CHECK(body_is(st, "s@here", l.e[0].id, "gave up"));
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/* What a listing of the queue saw: the entry it was asked for. */
struct seen {
	size_t n;
	int64_t id;
	int held;
	unsigned int attempts;
	int64_t next_try, first_try;
	char last_error[STORE_REASON_MAX + 1];
	char domain[64];
	uint64_t size;
};

static int
seen_one(const struct store_queue_entry *e, void *arg)
{
	struct seen *s = arg;

	s->n++;
	s->id = e->id;
	s->held = e->held;
	s->attempts = e->attempts;
	s->next_try = e->next_try;
	s->first_try = e->first_try;
	s->size = e->size;
	(void)snprintf(s->last_error, sizeof(s->last_error), "%s",
	    e->last_error);
	(void)snprintf(s->domain, sizeof(s->domain), "%s", e->domain);
	return 0;
}

/*
 * The administrator's hold, release and retry: a held entry is never
 * claimed; a retry makes it due at once, released, but not while a
 * live lease holds it; the reason of a failed attempt is kept, escaped.
 */
static int
case_queue_admin(void)
{
	struct store *st = open_plain();
	struct outbound ob;
	struct seen s;
	int64_t id;
	size_t n;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	memset(&s, 0, sizeof(s));
	CHECK(store_outbound_list(st, 0, seen_one, &s, &err) == STORE_OK);
	CHECK(s.n == 1 && !s.held && s.attempts == 0 && s.first_try == 1000);
	CHECK(strcmp(s.domain, "far.example") == 0 && s.size == 1);
	CHECK(s.last_error[0] == '\0');
	id = s.id;
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_HOLD, 1000, &err) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 5000, 1, 0, 0, NULL) == 0);
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_RELEASE, 1000, &err) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, NULL) == 1);
	/* Under o1's live lease: no retry; a hold still takes. */
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_RETRY, 1001, &err) ==
	    STORE_EXISTS);
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_HOLD, 1001, &err) ==
	    STORE_OK);
	CHECK(store_outbound_retry(st, "o1", id, 1100, "far.example said "
	    "\033[2J no", &err) == STORE_OK);
	memset(&s, 0, sizeof(s));
	CHECK(store_outbound_list(st, id, seen_one, &s, &err) == STORE_OK);
	CHECK(s.n == 1 && s.held && s.attempts == 1 && s.next_try == 1100);
	CHECK(strcmp(s.last_error, "far.example said \\x1B[2J no") == 0);
	/* Held through the attempt: still not claimed when due. */
	CHECK(claim(st, "o2", 1100, 1, 0, 0, NULL) == 0);
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_RETRY, 1050, &err) ==
	    STORE_OK);
	memset(&s, 0, sizeof(s));
	CHECK(store_outbound_list(st, id, seen_one, &s, &err) == STORE_OK);
	CHECK(!s.held && s.next_try == 1050 && s.attempts == 1);
	/* Forced until its next retry. */
	CHECK(store_outbound_claim(st, "o2", 1050, 1650, 0, 0, NULL, 0, &ob,
	    1, &n, &err) == STORE_OK && n == 1 && ob.forced);
	outbound_release(&ob);
	CHECK(store_outbound_retry(st, "o2", id, 1060, "again", &err) ==
	    STORE_OK);
	CHECK(store_outbound_claim(st, "o2", 1060, 1660, 0, 0, NULL, 0, &ob,
	    1, &n, &err) == STORE_OK && n == 1 && !ob.forced);
	outbound_release(&ob);
	/* An id that is no entry. */
	CHECK(store_outbound_list(st, id + 1, seen_one, &s, &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_admin(st, id + 1, STORE_QUEUE_HOLD, 1, &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_admin(st, id + 1, STORE_QUEUE_RETRY, 1, &err) ==
	    STORE_NOT_FOUND);
	store_close(st);
	return 0;
}

/*
 * The administrator takes one entry, held or not, unless a live lease
 * holds it; then it is the taker's to finish, as a worker's claim.
 */
static int
case_queue_take(void)
{
	struct store *st = open_plain();
	struct outbound ob;
	int64_t id;

	CHECK(st != NULL);
	CHECK(submit_text(st, "s@here", "m1", "far.example", "x", 1000) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 1000, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_take(st, id, "admin", 1000, 1060, &ob, &err) ==
	    STORE_EXISTS);
	CHECK(store_outbound_take(st, id + 1, "admin", 1000, 1060, &ob,
	    &err) == STORE_NOT_FOUND);
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_HOLD, 1000, &err) ==
	    STORE_OK);
	/* o1's lease ran out: the held entry is the administrator's. */
	CHECK(store_outbound_take(st, id, "admin", 1600, 1660, &ob, &err) ==
	    STORE_OK);
	CHECK(ob.id == id && strcmp(ob.message_id, "m1") == 0 &&
	    strcmp(ob.sender, "s@here") == 0 && ob.len == 1);
	outbound_release(&ob);
	CHECK(store_outbound_retry(st, "o1", id, 2000, "late", &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_done(st, "admin", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 0);
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/* The counts smimpd stats shows, and a sound store's check. */
static int
case_stats(void)
{
	struct store_limits lim;
	struct store *st;
	struct store_stats s;
	struct store_health h;
	int64_t id;

	memset(&lim, 0, sizeof(lim));
	st = open_bare(&lim);
	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_add(st, "s@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "hello", 10) ==
	    STORE_OK);
	CHECK(submit_text(st, "s@here", "m2", "far.example", "abc", 500) ==
	    STORE_OK);
	CHECK(submit_text(st, "s@here", "m3", "else.example", "de", 700) ==
	    STORE_OK);
	CHECK(claim(st, "o1", 700, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_retry(st, "o1", id, 800, "no", &err) ==
	    STORE_OK);
	CHECK(store_outbound_admin(st, id, STORE_QUEUE_HOLD, 700, &err) ==
	    STORE_OK);
	CHECK(store_stats(st, &s, &err) == STORE_OK);
	CHECK(s.users == 2 && s.mailbox_messages == 1 &&
	    s.mailbox_bytes == 5);
	CHECK(s.queue_entries == 2 && s.queue_bytes == 5 &&
	    s.queue_held == 1 && s.queue_retrying == 1 &&
	    s.queue_domains == 2 && s.queue_oldest == 500);
	CHECK(s.store_bytes > 0);
	CHECK(store_check(st, &h, &err) == STORE_OK);
	CHECK(h.integrity && h.problem[0] == '\0' && h.version >= 1);
	store_close(st);
	return 0;
}

/* Removing an account removes its mail, bodies and tombstones. */
static int
case_user_del(void)
{
	struct store_limits lim = { 0, 0, 0, 1000, 0, 0 };
	struct store *st = open_bare(&lim);
	struct listing l;
	size_t acked;

	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_EXISTS);
	CHECK(store_user_add(st, "v@here", &plain_log, 1, &err) == STORE_OK);
	/* Two bodies in files, one inline: both kinds go. */
	CHECK(deliver_big(st, "u@here", "m1", '1', 2) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m2", '2', 2) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m3", "3", 2) ==
	    STORE_OK);
	CHECK(deliver(st, "v@here", "a@far.example", "m1", "4", 2) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 3);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[0].id, 1, &acked, 3,
	    &err) == STORE_OK && acked == 1);
	CHECK(body_files() == 1);
	CHECK(store_user_del(st, "u@here", 4, &err) == STORE_OK);
	CHECK(list(st, "u@here", &l) == 0);
	CHECK(body_files() == 0);
	CHECK(list(st, "v@here", &l) == 1);
	CHECK(body_is(st, "v@here", l.e[0].id, "4"));
	CHECK(store_user_del(st, "u@here", 5, &err) == STORE_NOT_FOUND);
	/* A later owner of the address starts with nothing remembered. */
	CHECK(store_user_add(st, "u@here", &plain_log, 6, &err) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "1", 7) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 1);
	store_close(st);
	return 0;
}

/*
 * What comes for an address after its account went (checked before
 * deluser, stored after) is not kept: a later owner of the address
 * finds nothing of it.
 */
static int
case_account_gone(void)
{
	struct store *st = open_bare(NULL);
	const char *to[] = { "u@here" };
	struct store_body b = { NULL, (const unsigned char *)"x", 1 };
	struct listing l;

	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_add(st, "s@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_del(st, "u@here", 2, &err) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 3) ==
	    STORE_OK);
	CHECK(deliver_big(st, "u@here", "m2", '2', 3) == STORE_OK);
	CHECK(submit(st, "s@here", "m3", "n3", to, 1, NULL, &b, 4) ==
	    STORE_OK);
	CHECK(body_files() == 0);
	CHECK(store_user_add(st, "u@here", &plain_log, 5, &err) == STORE_OK);
	CHECK(list(st, "u@here", &l) == 0);
	/* The new owner's own mail is kept as ever. */
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "y", 6) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(body_is(st, "u@here", l.e[0].id, "y"));
	store_close(st);
	return 0;
}

static int
touch(const char *rel)
{
	char path[PATH_MAX];
	int fd;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Opening removes body files no row names, and the spool. */
static int
case_orphans(void)
{
	struct store *st = open_plain();
	struct listing l;
	char path[PATH_MAX];

	CHECK(st != NULL);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "kept", 1) ==
	    STORE_OK);
	store_close(st);
	CHECK(touch("bodies/ab/ab0123456789abcdef0123456789abcd") == 0);
	CHECK(touch("bodies/cd/junk") == 0);
	CHECK(touch("spool/upload") == 0);
	/* "kept" is inline: the two files are the orphans. */
	CHECK(body_files() == 2);
	st = open_plain();
	CHECK(st != NULL);
	CHECK(body_files() == 0);
	(void)snprintf(path, sizeof(path), "%s/spool/upload", dir);
	CHECK(access(path, F_OK) != 0 && errno == ENOENT);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(body_is(st, "u@here", l.e[0].id, "kept"));
	store_close(st);
	return 0;
}

/* Whatever depends on time uses the caller's now. */
static int
case_now(void)
{
	struct store *st = open_bare(NULL);
	unsigned char hash[INVITE_HASH_SIZE], hash2[INVITE_HASH_SIZE];
	char addr[ADDRESS_MAX + 1];
	struct listing l;
	struct outbound ob;
	size_t n;

	CHECK(st != NULL);
	memset(hash, 7, sizeof(hash));
	memset(hash2, 8, sizeof(hash2));
	CHECK(store_invite_add(st, hash, "i@here", 2000, &err) == STORE_OK);
	CHECK(store_invite_add(st, hash2, "j@here", 2000, &err) == STORE_OK);
	CHECK(store_invite_check(st, hash, 2000, addr, &err) == STORE_OK);
	CHECK(strcmp(addr, "i@here") == 0);
	CHECK(store_invite_check(st, hash, 2001, addr, &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_invite_redeem(st, hash, "i@here", &plain_log, 1999,
	    &err) == STORE_OK);
	CHECK(store_invite_redeem(st, hash2, "j@here", &plain_log, 2001,
	    &err) == STORE_NOT_FOUND);
	CHECK(store_nonce_claim(st, "s@here", "n", 1500, 1000, &err) ==
	    STORE_OK);
	CHECK(store_nonce_claim(st, "s@here", "n", 1500, 1500, &err) ==
	    STORE_REPLAY);
	CHECK(store_nonce_claim(st, "s@here", "n", 2500, 1501, &err) ==
	    STORE_OK);
	CHECK(store_user_add(st, "u@here", &plain_log, 12345, &err) ==
	    STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 12345) ==
	    STORE_OK);
	CHECK(list(st, "u@here", &l) == 1 && l.e[0].received == 12345);
	CHECK(submit_text(st, "s@here", "m2", "far.example", "x", 777) ==
	    STORE_OK);
	CHECK(claim(st, "o", 776, 1, 0, 0, NULL) == 0);
	CHECK(store_outbound_claim(st, "o", 777, 900, 0, 0, NULL, 0, &ob, 1,
	    &n, &err) == STORE_OK && n == 1);
	CHECK(ob.first_try == 777 && ob.attempts == 0);
	outbound_release(&ob);
	CHECK(claim(st, "p", 899, 1, 0, 0, NULL) == 0);
	CHECK(claim(st, "p", 900, 1, 0, 0, NULL) == 1);
	store_close(st);
	return 0;
}

static int
mode_of(const char *rel)
{
	char path[PATH_MAX];
	struct stat sb;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

/* A spooled body is linked, one name per row; everything private. */
static int
case_bodies(void)
{
	struct store *st = open_plain();
	const char *to[] = { "u@here", "v@here" };
	char spooled[PATH_MAX];
	struct store_body b;
	struct listing l;
	struct outbound ob;
	struct stat sb;
	unsigned char *buf = NULL;
	uint64_t len;
	size_t n, got, acked;
	int fd;

	CHECK(st != NULL);
	(void)snprintf(spooled, sizeof(spooled), "%s/upload",
	    store_spool_dir(st));
	CHECK(file_write_atomic(spooled, "spooled body", 12, 0600, 0,
	    &err) == 0);
	memset(&b, 0, sizeof(b));
	b.path = spooled;
	CHECK(submit(st, "s@here", "m1", "n1", to, 2, "far.example", &b,
	    10) == STORE_OK);
	/* The caller's name, the mailboxes' two, the queue entry's one. */
	CHECK(stat(spooled, &sb) == 0 && sb.st_nlink == (on_pg ? 1 : 4));
	CHECK(unlink(spooled) == 0);
	CHECK(body_files() == 3);
	CHECK(list(st, "u@here", &l) == 1);
	CHECK(body_is(st, "u@here", l.e[0].id, "spooled body"));
	CHECK(l.e[0].size == 12);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[0].id, 1, &acked, 11,
	    &err) == STORE_OK && acked == 1);
	CHECK(body_files() == 2);
	CHECK(list(st, "v@here", &l) == 1);
	CHECK(body_is(st, "v@here", l.e[0].id, "spooled body"));
	CHECK(store_outbound_claim(st, "o", 10, 70, 0, 0, NULL, 0, &ob, 1,
	    &n, &err) == STORE_OK && n == 1);
	CHECK(store_outbound_open(st, ob.id, &fd, &len, &err) == STORE_OK);
	CHECK(fd_read_all(fd, "b", 100, &buf, &got, &err) == 0);
	close(fd);
	CHECK(len == 12 && ob.len == 12 && got == 12 &&
	    memcmp(buf, "spooled body", 12) == 0);
	free(buf);
	outbound_release(&ob);
	if (!on_pg) {
		CHECK(mode_of("smimpd.db") == 0600);
		CHECK(mode_of("bodies") == 0700 &&
		    mode_of("bodies/00") == 0700);
	}
	CHECK(mode_of("spool") == 0700);
	store_close(st);
	return 0;
}

/* The store URI: a scheme, or a bare path. */
static int
case_uri(void)
{
	struct store *st;
	struct listing l;
	char other[PATH_MAX + 8];

	CHECK(store_open("mysql://db.example/smimp", NULL, NULL, &err) ==
	    NULL);
	CHECK(strcmp(err.msg, "unknown store scheme 'mysql' (known: sqlite, "
	    "postgresql)") == 0);
	/* The rest of a URI may hold a password: never said. */
	CHECK(store_open("postgressql://u:s3cret@db.example/smimp", NULL, NULL,
	    &err) == NULL);
	CHECK(strstr(err.msg, "s3cret") == NULL);
	CHECK(store_open("postgresql:", NULL, NULL, &err) == NULL);
	CHECK(strcmp(err.msg, "store 'postgresql:' names no database") == 0);
	CHECK(store_open("sqlite:", NULL, NULL, &err) == NULL);
	CHECK(strcmp(err.msg, "store 'sqlite:' names no directory") == 0);
	if (on_pg)
		(void)snprintf(other, sizeof(other), "%s", uri);
	else
		(void)snprintf(other, sizeof(other), "sqlite:%s", dir);
	st = store_open(other, dir, NULL, &err);
	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "x", 1) ==
	    STORE_OK);
	store_close(st);
	st = open_plain();
	CHECK(st != NULL);
	CHECK(list(st, "u@here", &l) == 1);
	store_close(st);
	return 0;
}

/* A relay entry's body, read through store_outbound_open, equals want. */
static int
outbound_is(struct store *st, int64_t id, const unsigned char *want,
    size_t wlen)
{
	uint64_t len;
	int fd;

	return store_outbound_open(st, id, &fd, &len, &err) == STORE_OK &&
	    read_is(fd, len, want, wlen);
}

/*
 * A small body given in memory is kept in the rows: no file; every
 * byte (a NUL and 0xff among them) read back through both opens; each
 * row its own copy, gone with an ack, a done and a user_del.
 */
static int
case_inline(void)
{
	struct store *st = open_bare(NULL);
	const char *to[] = { "u@here", "v@here" };
	static const unsigned char bytes[] = { 0, 0xff, 'a', '\n', 0 };
	struct store_body b = { NULL, bytes, sizeof(bytes) };
	struct store_body empty = { NULL, NULL, 0 };
	struct listing l;
	unsigned char *buf = NULL;
	uint64_t len;
	size_t acked, got;
	int64_t id;
	int fd;

	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_add(st, "v@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(submit(st, "s@here", "m1", "n1", to, 2, "far.example", &b,
	    10) == STORE_OK);
	CHECK(body_files() == 0);
	CHECK(list(st, "u@here", &l) == 1 && l.e[0].size == sizeof(bytes));
	CHECK(store_mailbox_open(st, "u@here", "", l.e[0].id, &fd, &len,
	    &err) == STORE_OK);
	CHECK(lseek(fd, 0, SEEK_CUR) == 0);
	CHECK(fd_read_all(fd, "b", 100, &buf, &got, &err) == 0);
	close(fd);
	CHECK(len == sizeof(bytes) && got == len &&
	    memcmp(buf, bytes, got) == 0);
	free(buf);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[0].id, 1, &acked, 11,
	    &err) == STORE_OK && acked == 1);
	CHECK(list(st, "u@here", &l) == 0);
	CHECK(store_mailbox_open(st, "u@here", "", l.e[0].id, &fd, &len,
	    &err) == STORE_NOT_FOUND);
	/* The other recipient's copy and the relay entry stay. */
	CHECK(list(st, "v@here", &l) == 1);
	CHECK(store_mailbox_open(st, "v@here", "", l.e[0].id, &fd, &len,
	    &err) == STORE_OK && len == sizeof(bytes));
	close(fd);
	CHECK(claim(st, "o", 10, 1, 0, 0, &id) == 1);
	CHECK(outbound_is(st, id, bytes, sizeof(bytes)));
	CHECK(store_outbound_done(st, "o", &id, 1, &err) == STORE_OK);
	CHECK(queued(st) == 0);
	CHECK(store_outbound_open(st, id, &fd, &len, &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_user_del(st, "v@here", 12, &err) == STORE_OK);
	CHECK(list(st, "v@here", &l) == 0);
	/* An empty body is inline too, and reads back empty. */
	CHECK(submit(st, "s@here", "m2", "n2", to, 1, "far.example", &empty,
	    13) == STORE_OK);
	CHECK(list(st, "u@here", &l) == 1 && l.e[0].size == 0);
	CHECK(body_is(st, "u@here", l.e[0].id, ""));
	CHECK(claim(st, "o", 13, 1, 0, 0, &id) == 1);
	CHECK(outbound_is(st, id, bytes, 0));
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/*
 * STORE_INLINE_MAX bytes in memory go inline; one more goes to a file,
 * which reads back the same and goes with its row.
 */
static int
case_inline_max(void)
{
	struct store *st = open_plain();
	const char *to[] = { "u@here" };
	struct store_body b;
	struct listing l;
	unsigned char *big = NULL;
	size_t i, acked;
	int64_t id;

	CHECK(st != NULL);
	big = malloc(STORE_INLINE_MAX + 1);
	CHECK(big != NULL);
	for (i = 0; i < STORE_INLINE_MAX + 1; i++)
		big[i] = (unsigned char)(i * 7);
	b.path = NULL;
	b.data = big;
	b.len = STORE_INLINE_MAX;
	CHECK(submit(st, "s@here", "m1", "n1", to, 1, "far.example", &b,
	    10) == STORE_OK);
	CHECK(body_files() == 0);
	b.len = STORE_INLINE_MAX + 1;
	CHECK(submit(st, "s@here", "m2", "n2", to, 1, "far.example", &b,
	    10) == STORE_OK);
	/* The mailbox copy and the relay entry: a name each. */
	CHECK(body_files() == 2);
	CHECK(list(st, "u@here", &l) == 2);
	CHECK(l.e[0].size == STORE_INLINE_MAX);
	CHECK(l.e[1].size == STORE_INLINE_MAX + 1);
	CHECK(claim(st, "o", 10, 1, 0, 0, &id) == 1);
	CHECK(outbound_is(st, id, big, STORE_INLINE_MAX));
	CHECK(store_outbound_done(st, "o", &id, 1, &err) == STORE_OK);
	CHECK(claim(st, "o", 10, 1, 0, 0, &id) == 1);
	CHECK(outbound_is(st, id, big, STORE_INLINE_MAX + 1));
	CHECK(store_outbound_done(st, "o", &id, 1, &err) == STORE_OK);
	CHECK(body_files() == 1);
	CHECK(store_mailbox_ack(st, "u@here", "", &l.e[1].id, 1, &acked, 11,
	    &err) == STORE_OK && acked == 1);
	CHECK(body_files() == 0);
	free(big);
	store_close(st);
	return 0;
}

/*
 * Run on the store t/fixtures/store-v1.sql makes (t/0650-store.bats):
 * its file bodies read back after the migration, and new small ones go
 * inline beside them.
 */
static int
case_migrated_v1(void)
{
	struct store *st = open_plain();
	struct listing l;
	size_t acked;
	int64_t ids[2];

	CHECK(st != NULL);
	CHECK(body_files() == 3);
	CHECK(list(st, "bob@example.org", &l) == 2);
	CHECK(body_is(st, "bob@example.org", l.e[1].id, "two\n"));
	CHECK(deliver(st, "bob@example.org", "a@far.example", "new", "inline",
	    1795000300) == STORE_OK);
	CHECK(body_files() == 3);
	CHECK(list(st, "bob@example.org", &l) == 3);
	CHECK(body_is(st, "bob@example.org", l.e[2].id, "inline"));
	ids[0] = l.e[1].id;
	ids[1] = l.e[2].id;
	CHECK(store_mailbox_ack(st, "bob@example.org", "", ids, 2, &acked,
	    1795000400, &err) == STORE_OK && acked == 2);
	CHECK(body_files() == 2);
	CHECK(list(st, "bob@example.org", &l) == 1);
	store_close(st);
	return 0;
}

/*
 * Run on the store t/fixtures/store-v2.sql makes (t/0650-store.bats):
 * the queued entries come out with their bodies, the inline one brought
 * by the claim itself, and the mailbox reads back byte for byte.
 */
static int
case_migrated_v2(void)
{
	struct store *st = open_plain();
	struct outbound ob[2];
	struct listing l;
	size_t n = 0;

	CHECK(st != NULL);
	CHECK(list(st, "bob@example.org", &l) == 3);
	CHECK(body_bytes(st, "bob@example.org", l.e[0].id, "\0\377one\n", 6));
	CHECK(body_bytes(st, "bob@example.org", l.e[2].id, "\0four", 5));
	CHECK(store_outbound_claim(st, "t:0", INT64_MAX / 2, INT64_MAX / 2 +
	    600, 0, 0, NULL, 0, ob, 1, &n, &err) == STORE_OK && n == 1);
	CHECK(strcmp(ob[0].message_id, "queued@example.org") == 0 &&
	    ob[0].data == NULL);
	CHECK(store_outbound_claim(st, "t:1", INT64_MAX / 2, INT64_MAX / 2 +
	    600, 0, 0, NULL, 0, ob + 1, 1, &n, &err) == STORE_OK && n == 1);
	CHECK(strcmp(ob[1].message_id, "inline@example.org") == 0 &&
	    ob[1].len == 5 && ob[1].data != NULL &&
	    memcmp(ob[1].data, "five\0", 5) == 0);
	CHECK(store_outbound_done(st, "t:1", &ob[1].id, 1, &err) == STORE_OK);
	CHECK(store_outbound_done(st, "t:0", &ob[0].id, 1, &err) == STORE_OK);
	outbound_release(&ob[0]);
	outbound_release(&ob[1]);
	CHECK(body_files() == 2);
	store_close(st);
	return 0;
}

/*
 * A queued entry carries its submission's consent headers to the
 * relay, for each domain its own; an entry without them has "".  An
 * entry with a stamp of its own names its recipients only; one without
 * has the submission's stamp and list.
 */
static int
case_consent_headers(void)
{
	struct store *st = open_plain();
	struct store_body b = { NULL, (const unsigned char *)"x", 1 };
	struct store_outbound_new obs[2] = {
		{ "far.example", "r@far.example", "r@far.example=0123456789abcdef",
		    "aW50cm8", "stamp-far" },
		{ "else.example", "q@else.example", NULL, NULL, NULL },
	};
	struct store_submission sub;
	struct outbound ob[2];
	size_t n, i;

	CHECK(st != NULL);
	memset(&sub, 0, sizeof(sub));
	sub.signer = sub.sender = "s@here";
	sub.nonce = "n1";
	sub.nonce_expires = 1300;
	sub.message_id = "m1";
	sub.all = "q@else.example,r@far.example";
	sub.stamp = "stamp";
	sub.stamp_date = "2026-01-01T00:00:00Z";
	sub.body = &b;
	sub.obs = obs;
	sub.nobs = 2;
	CHECK(store_submit(st, &sub, 1000, &err) == STORE_OK);
	for (i = 0; i < 2; i++) {
		CHECK(store_outbound_claim(st, "o", 1000, 1600, 0, 0, NULL, 0,
		    &ob[i], 1, &n, &err) == STORE_OK && n == 1);
	}
	if (strcmp(ob[0].domain, "far.example") != 0) {
		struct outbound t = ob[0];

		ob[0] = ob[1];
		ob[1] = t;
	}
	CHECK(strcmp(ob[0].work, "r@far.example=0123456789abcdef") == 0 &&
	    strcmp(ob[0].introduction, "aW50cm8") == 0);
	CHECK(strcmp(ob[1].domain, "else.example") == 0 &&
	    ob[1].work[0] == '\0' && ob[1].introduction[0] == '\0');
	CHECK(strcmp(ob[0].stamp, "stamp-far") == 0 &&
	    strcmp(ob[0].all, "r@far.example") == 0);
	CHECK(strcmp(ob[1].stamp, "stamp") == 0 &&
	    strcmp(ob[1].all, "q@else.example,r@far.example") == 0);
	outbound_release(&ob[0]);
	outbound_release(&ob[1]);
	store_close(st);
	return 0;
}

/*
 * Each device lists, opens and acknowledges on its own; the message
 * leaves once the last one acknowledged it, and stays acknowledged.
 */
static int
case_device_states(void)
{
	struct store_limits lim = { 0, 0, 0, 1000, 0, 0 };
	struct store *st = open_bare(&lim);
	struct listing l;
	int64_t m1, m2;

	CHECK(st != NULL);
	CHECK(user_ab(st) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m1", '1', 2) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m2", "two", 3) ==
	    STORE_OK);
	/* One copy, however many devices. */
	CHECK(body_files() == 1);
	CHECK(list_for(st, "u@here", "", &l) == 2 && !l.e[0].sent);
	m1 = l.e[0].id;
	m2 = l.e[1].id;
	CHECK(list_for(st, "u@here", "a", &l) == 2 && l.e[0].id == m1 &&
	    l.e[1].id == m2 && l.e[0].size == STORE_INLINE_MAX + 1);
	CHECK(list_for(st, "u@here", "b", &l) == 2);
	/* a takes m1: gone for a alone. */
	CHECK(ack_for(st, "u@here", "a", m1, 4) == 1);
	CHECK(ack_for(st, "u@here", "a", m1, 4) == 0);
	CHECK(list_for(st, "u@here", "a", &l) == 1 && l.e[0].id == m2);
	CHECK(!opens(st, "u@here", "a", m1));
	CHECK(opens(st, "u@here", "b", m1) && opens(st, "u@here", "", m1));
	CHECK(list_for(st, "u@here", "", &l) == 2);
	CHECK(list_for(st, "u@here", "b", &l) == 2);
	/* A name that is no device of u's, and another owner: nothing. */
	CHECK(list_for(st, "u@here", "c", &l) == 0);
	CHECK(!opens(st, "u@here", "c", m2) && ack_for(st, "u@here", "c", m2,
	    4) == 0);
	CHECK(!opens(st, "v@here", "a", m2) && ack_for(st, "v@here", "a", m2,
	    4) == 0);
	/* The identity key, then b: m1 leaves with its file. */
	CHECK(ack_for(st, "u@here", "", m1, 5) == 1);
	CHECK(ack_for(st, "u@here", "", m1, 5) == 0);
	CHECK(body_files() == 1);
	CHECK(ack_for(st, "u@here", "b", m1, 6) == 1);
	CHECK(body_files() == 0);
	CHECK(list_for(st, "u@here", "b", &l) == 1 && l.e[0].id == m2);
	/* Acknowledged by all, it is not stored again. */
	CHECK(deliver_big(st, "u@here", "m1", '1', 7) == STORE_OK);
	CHECK(list_for(st, "u@here", "a", &l) == 1 && l.e[0].id == m2);
	CHECK(body_files() == 0);
	store_close(st);
	return 0;
}

/*
 * A log that no longer names a device drops its pending states at
 * once, and what is then pending for no device leaves; a name added
 * again with another key is another device.
 */
static int
case_device_removed(void)
{
	struct store_limits lim = { 0, 0, 0, 1000, 0, 0 };
	struct store *st = open_bare(&lim);
	struct store_device d[2];
	struct listing l;
	int64_t m1, m2;

	CHECK(st != NULL);
	CHECK(user_ab(st) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m1", '1', 2) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m2", '2', 2) == STORE_OK);
	CHECK(list_for(st, "u@here", "", &l) == 2);
	m1 = l.e[0].id;
	m2 = l.e[1].id;
	CHECK(ack_for(st, "u@here", "", m1, 3) == 1);
	CHECK(ack_for(st, "u@here", "", m2, 3) == 1);
	CHECK(ack_for(st, "u@here", "a", m1, 3) == 1);
	/* b goes: m1 was pending for b alone. */
	CHECK(devices_now(st, &dev_a, 1, 4) == STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 0);
	CHECK(!opens(st, "u@here", "b", m2));
	CHECK(list_for(st, "u@here", "a", &l) == 1 && l.e[0].id == m2);
	CHECK(body_files() == 1);
	/* A compare and swap still: a stale old log changes nothing. */
	d[0] = dev_b;
	{
		struct store_log nl = log_of(d, 1);

		CHECK(store_user_log_update(st, "u@here",
		    (const unsigned char *)"old", 3, &nl, 5, &err) ==
		    STORE_NOT_FOUND);
	}
	CHECK(list_for(st, "u@here", "a", &l) == 1);
	/* b is back under its name with new keys, a is gone: m2 goes. */
	d[0] = dev_b2;
	CHECK(devices_now(st, d, 1, 6) == STORE_OK);
	CHECK(list_for(st, "u@here", "a", &l) == 0);
	CHECK(list_for(st, "u@here", "b", &l) == 0);
	CHECK(list_for(st, "u@here", "", &l) == 0);
	CHECK(body_files() == 0);
	/* Gone as acknowledged: not stored again. */
	CHECK(deliver_big(st, "u@here", "m2", '2', 7) == STORE_OK);
	CHECK(list_for(st, "u@here", "", &l) == 0);
	/* The new b gets what arrives now. */
	CHECK(deliver(st, "u@here", "a@far.example", "m3", "3", 8) ==
	    STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 1);
	/* Removing the account removes the devices' states with it. */
	CHECK(store_user_del(st, "u@here", 9, &err) == STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 0);
	store_close(st);
	return 0;
}

/* A device added later gets only what arrives after it joined. */
static int
case_device_later(void)
{
	struct store *st = open_bare(NULL);
	struct store_device d[2];
	struct listing l;

	CHECK(st != NULL);
	CHECK(store_user_add(st, "u@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "1", 2) ==
	    STORE_OK);
	d[0] = dev_a;
	CHECK(devices_now(st, d, 1, 3) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m2", "2", 4) ==
	    STORE_OK);
	d[1] = dev_b;
	CHECK(devices_now(st, d, 2, 5) == STORE_OK);
	CHECK(deliver(st, "u@here", "a@far.example", "m3", "3", 6) ==
	    STORE_OK);
	CHECK(list_for(st, "u@here", "", &l) == 3);
	CHECK(list_for(st, "u@here", "a", &l) == 2 &&
	    strcmp(l.e[0].message_id, "m2") == 0 &&
	    strcmp(l.e[1].message_id, "m3") == 0);
	CHECK(list_for(st, "u@here", "b", &l) == 1 &&
	    strcmp(l.e[0].message_id, "m3") == 0);
	/* m1 was the identity key's alone: its one ack removes it. */
	CHECK(list_for(st, "u@here", "", &l) == 3);
	CHECK(ack_for(st, "u@here", "", l.e[0].id, 7) == 1);
	CHECK(!opens(st, "u@here", "a", l.e[0].id));
	CHECK(list_for(st, "u@here", "", &l) == 2);
	/* Same devices again: nothing changes. */
	CHECK(devices_now(st, d, 2, 8) == STORE_OK);
	CHECK(list_for(st, "u@here", "a", &l) == 2);
	store_close(st);
	return 0;
}

/*
 * A message leaves limits.retention seconds after its first
 * acknowledgement, whoever has not fetched it; one nobody has
 * acknowledged stays.
 */
static int
case_retention(void)
{
	struct store_limits lim = { 0, 0, 0, 100000, 100, 0 };
	struct store *st = open_bare(&lim);
	struct listing l;

	CHECK(st != NULL);
	CHECK(user_ab(st) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m1", '1', 1000) == STORE_OK);
	CHECK(deliver_big(st, "u@here", "m2", '2', 1000) == STORE_OK);
	CHECK(list_for(st, "u@here", "a", &l) == 2);
	CHECK(ack_for(st, "u@here", "a", l.e[0].id, 1000) == 1);
	/* Later acknowledgements do not move the first's date. */
	CHECK(ack_for(st, "u@here", "", l.e[0].id, 1090) == 1);
	CHECK(deliver(st, "u@here", "a@far.example", "m3", "3", 1100) ==
	    STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 3 && body_files() == 2);
	/* The sweep after 1100: m1 leaves, its file with it. */
	CHECK(deliver(st, "u@here", "a@far.example", "m4", "4", 1111) ==
	    STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 3 &&
	    strcmp(l.e[0].message_id, "m2") == 0);
	CHECK(body_files() == 1);
	CHECK(list_for(st, "u@here", "a", &l) == 3);
	CHECK(list_for(st, "u@here", "", &l) == 3);
	/* Kept as acknowledged: not stored again. */
	CHECK(deliver_big(st, "u@here", "m1", '1', 1200) == STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 3);
	/* Nobody acknowledged m2: it stays, however old. */
	CHECK(deliver(st, "u@here", "a@far.example", "m5", "5", 9000) ==
	    STORE_OK);
	CHECK(list_for(st, "u@here", "b", &l) == 4 &&
	    strcmp(l.e[0].message_id, "m2") == 0);
	store_close(st);
	return 0;
}

/* A submission by sender from device dev to local: its result. */
static int
submit_from(struct store *st, const char *sender, const char *dev,
    const char *mid, const char *const *local, size_t nlocal,
    const struct store_body *b, int64_t now)
{
	struct store_submission sub;

	memset(&sub, 0, sizeof(sub));
	sub.signer = sub.sender = sender;
	sub.nonce = mid;
	sub.nonce_expires = now + 300;
	sub.message_id = mid;
	sub.body = b;
	sub.local = local;
	sub.nlocal = nlocal;
	sub.device = dev;
	return store_submit(st, &sub, now, &err);
}

/*
 * The sender's own copy, flagged sent, for its receiving devices but
 * the one that submitted; none for a sender without other devices.
 */
static int
case_sent_copy(void)
{
	struct store_limits lim = { 200, 0, 0, 1000, 0, 0 };
	struct store *st = open_bare(&lim);
	struct store_body b = { NULL, (const unsigned char *)"hello", 5 };
	const char *to[] = { "v@here", "u@here" };
	struct listing l;
	char *big;

	CHECK(st != NULL);
	CHECK(user_ab(st) == STORE_OK);
	CHECK(store_user_add(st, "v@here", &plain_log, 1, &err) == STORE_OK);
	CHECK(store_user_add(st, "w@here", &plain_log, 1, &err) == STORE_OK);
	/* From a: for the identity key and b. */
	CHECK(submit_from(st, "u@here", "a", "m1", to, 1, &b, 10) == STORE_OK);
	CHECK(list_for(st, "v@here", "", &l) == 1 && !l.e[0].sent);
	CHECK(list_for(st, "u@here", "a", &l) == 0);
	CHECK(list_for(st, "u@here", "b", &l) == 1 && l.e[0].sent &&
	    strcmp(l.e[0].sender, "u@here") == 0 &&
	    strcmp(l.e[0].message_id, "m1") == 0);
	CHECK(body_is(st, "u@here", l.e[0].id, "hello"));
	CHECK(list_for(st, "u@here", "", &l) == 1 && l.e[0].sent);
	/* From the identity key: for a and b. */
	CHECK(submit_from(st, "u@here", "", "m2", to, 1, &b, 11) == STORE_OK);
	CHECK(list_for(st, "u@here", "", &l) == 1);
	CHECK(list_for(st, "u@here", "a", &l) == 1 && l.e[0].sent);
	CHECK(list_for(st, "u@here", "b", &l) == 2);
	/* Sent to itself too: one message, for every device, not sent. */
	CHECK(submit_from(st, "u@here", "a", "m3", to, 2, &b, 12) == STORE_OK);
	CHECK(list_for(st, "u@here", "a", &l) == 2 && !l.e[1].sent &&
	    strcmp(l.e[1].message_id, "m3") == 0);
	CHECK(list_for(st, "u@here", "b", &l) == 3 && !l.e[2].sent);
	/* Again, after all acknowledged it: no second sent copy. */
	CHECK(list_for(st, "u@here", "b", &l) == 3);
	CHECK(ack_for(st, "u@here", "b", l.e[0].id, 13) == 1);
	CHECK(ack_for(st, "u@here", "", l.e[0].id, 13) == 1);
	CHECK(submit_from(st, "u@here", "a", "m1", to, 1, &b, 14) ==
	    STORE_REPLAY);
	b.len = 4;
	{
		struct store_submission sub;

		memset(&sub, 0, sizeof(sub));
		sub.signer = sub.sender = "u@here";
		sub.nonce = "fresh";
		sub.nonce_expires = 400;
		sub.message_id = "m1";
		sub.body = &b;
		sub.local = to;
		sub.nlocal = 1;
		sub.device = "a";
		CHECK(store_submit(st, &sub, 14, &err) == STORE_OK);
	}
	CHECK(list_for(st, "u@here", "b", &l) == 2 &&
	    strcmp(l.e[0].message_id, "m2") == 0);
	/* v has no devices: its identity key sends, and nothing is kept. */
	CHECK(list_for(st, "v@here", "", &l) == 3);
	to[0] = "u@here";
	CHECK(submit_from(st, "v@here", "", "m4", to, 1, &b, 15) == STORE_OK);
	CHECK(list_for(st, "v@here", "", &l) == 3);
	/* A device that does not receive (send) sends: the others get it. */
	CHECK(submit_from(st, "v@here", "ci", "m5", to, 1, &b, 16) ==
	    STORE_OK);
	CHECK(list_for(st, "v@here", "", &l) == 4 && l.e[3].sent);
	CHECK(list_for(st, "v@here", "ci", &l) == 0);
	/* Over the sender's quota (200 bytes): sent, without the copy. */
	big = malloc(190);
	CHECK(big != NULL);
	memset(big, 'x', 190);
	b.data = (const unsigned char *)big;
	b.len = 190;
	to[0] = "w@here";
	CHECK(list_for(st, "u@here", "b", &l) == 4);
	CHECK(submit_from(st, "u@here", "a", "m6", to, 1, &b, 17) == STORE_OK);
	CHECK(list_for(st, "w@here", "", &l) == 1);
	CHECK(list_for(st, "u@here", "b", &l) == 4);
	CHECK(list_for(st, "u@here", "", &l) == 3);
	free(big);
	store_close(st);
	return 0;
}

/*
 * A store of version 5 (t/fixtures/store-v5.sql): its messages are
 * pending for the identity key only, and its users wait for their
 * devices until the caller gives them.
 */
static int
unsynced_one(const char *address, const unsigned char *log, size_t len,
    void *arg)
{
	(void)log;
	(void)len;
	return strcmp(address, "bob@example.org") != 0 || ++*(int *)arg > 1;
}

static int
case_migrated_v5(void)
{
	struct store *st = open_plain();
	struct store_log x = { (const unsigned char *)"x", 1, &dev_a, 1 };
	struct listing l;
	int n = 0;

	CHECK(st != NULL);
	CHECK(list_for(st, "bob@example.org", "", &l) == 2);
	CHECK(body_bytes(st, "bob@example.org", l.e[0].id, "one", 3));
	CHECK(!l.e[0].sent && !l.e[1].sent);
	CHECK(store_user_list_unsynced(st, unsynced_one, &n, &err) ==
	    STORE_OK && n == 1);
	CHECK(store_user_log_update(st, "bob@example.org",
	    (const unsigned char *)"x", 1, &x, 10, &err) == STORE_OK);
	n = 0;
	CHECK(store_user_list_unsynced(st, unsynced_one, &n, &err) ==
	    STORE_OK && n == 0);
	CHECK(list_for(st, "bob@example.org", "a", &l) == 0);
	CHECK(deliver(st, "bob@example.org", "a@far.example", "m3", "3", 11) ==
	    STORE_OK);
	CHECK(list_for(st, "bob@example.org", "a", &l) == 1);
	CHECK(list_for(st, "bob@example.org", "", &l) == 3);
	/* A new account is given its devices when it is made. */
	CHECK(store_user_add(st, "new@example.org", &plain_log, 12, &err) ==
	    STORE_OK);
	n = 0;
	CHECK(store_user_list_unsynced(st, unsynced_one, &n, &err) ==
	    STORE_OK && n == 0);
	store_close(st);
	return 0;
}

/* The store refuses devices it cannot keep: nothing is stored. */
static int
case_device_limits(void)
{
	struct store *st = open_bare(NULL);
	struct store_device d[STORE_DEVICES_MAX + 1];
	struct store_log lg;
	char names[STORE_DEVICES_MAX + 1][8];
	size_t i;

	CHECK(st != NULL);
	for (i = 0; i <= STORE_DEVICES_MAX; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "d%zu", i);
		d[i].name = names[i];
		memset(d[i].key, (int)i, sizeof(d[i].key));
	}
	lg = log_of(d, STORE_DEVICES_MAX + 1);
	CHECK(store_user_add(st, "u@here", &lg, 1, &err) == STORE_ERROR);
	lg.ndevices = STORE_DEVICES_MAX;
	CHECK(store_user_add(st, "u@here", &lg, 1, &err) == STORE_OK);
	d[0].name = "123456789012345678901234567890123";
	CHECK(devices_now(st, d, 1, 2) == STORE_ERROR);
	d[0].name = "";
	CHECK(devices_now(st, d, 1, 2) == STORE_ERROR);
	/* Unchanged by the refusals: all 64 receive. */
	CHECK(deliver(st, "u@here", "a@far.example", "m1", "1", 3) ==
	    STORE_OK);
	{
		struct listing l;

		CHECK(list_for(st, "u@here", "d63", &l) == 1);
		CHECK(list_for(st, "u@here", "d64", &l) == 0);
	}
	store_close(st);
	return 0;
}

/* What sent_list shows: each state seen, in domain order. */
struct sent_seen {
	size_t n;
	char line[8][160];
};

static int
sent_one(const struct store_sent_row *r, void *arg)
{
	struct sent_seen *s = arg;

	if (s->n == 8)
		return -1;
	(void)snprintf(s->line[s->n++], sizeof(s->line[0]), "%s %d %s %.40s "
	    "%lld", r->domain, (int)r->state, r->recipients, r->text,
	    (long long)r->at);
	return 0;
}

static int
sent_list(struct store *st, const char *sender, const char *mid,
    struct sent_seen *s)
{
	memset(s, 0, sizeof(*s));
	return store_sent_list(st, sender, mid, sent_one, s, &err);
}

/*
 * What became of a sent message, for its sender: the queue entry, the
 * record its submission made for the local recipients, a delivery and
 * a bounce (recorded with the entry's removal); nobody else's message;
 * records forgotten by age, and with the sender's account.
 */
static int
case_sent_states(void)
{
	struct store *st = open_bare(NULL);
	struct store_outbound_new ob = { "far.example", "r@far.example", NULL,
	    NULL, NULL };
	struct store_sent here = { "s@here", "m1", "here",
	    STORE_SENT_DELIVERED, "t@here", "receipt-here", 10 };
	struct store_sent far = { "s@here", "m1", "far.example",
	    STORE_SENT_DELIVERED, "r@far.example", "receipt-far", 30 };
	struct store_body b = { NULL, (const unsigned char *)"x", 1 };
	struct store_body nb = { NULL, (const unsigned char *)"notice", 6 };
	struct store_delivery notice = { "s@here", "server:here",
	    "bounce:far.example:m1", &nb };
	struct store_submission sub;
	struct sent_seen seen;
	uint64_t n;
	int64_t id;

	CHECK(st != NULL);
	CHECK(store_user_add(st, "s@here", &plain_log, 1, &err) == STORE_OK);
	memset(&sub, 0, sizeof(sub));
	sub.signer = sub.sender = "s@here";
	sub.nonce = "n1";
	sub.nonce_expires = 300;
	sub.message_id = "m1";
	sub.all = sub.stamp = "";
	sub.stamp_date = "2026-01-01T00:00:00Z";
	sub.body = &b;
	sub.obs = &ob;
	sub.nobs = 1;
	sub.sent = &here;
	CHECK(store_submit(st, &sub, 10, &err) == STORE_OK);
	CHECK(sent_list(st, "s@here", "m1", &seen) == STORE_OK && seen.n == 2);
	CHECK(strcmp(seen.line[0], "far.example 0 r@far.example  10") == 0);
	CHECK(strcmp(seen.line[1], "here 1 t@here receipt-here 10") == 0);
	/* Another sender's message of that id is not found, nor another id. */
	CHECK(sent_list(st, "t@here", "m1", &seen) == STORE_NOT_FOUND);
	CHECK(sent_list(st, "s@here", "m2", &seen) == STORE_NOT_FOUND);
	/* Delivered: recorded beside the entry until the entry goes. */
	CHECK(store_sent_put(st, &far, 1, &err) == STORE_OK);
	CHECK(sent_list(st, "s@here", "m1", &seen) == STORE_OK && seen.n == 3);
	CHECK(strcmp(seen.line[1], "far.example 1 r@far.example receipt-far "
	    "30") == 0);
	/* Bounced: the record is the notice, the entry gone with it. */
	CHECK(claim(st, "o1", 40, 1, 0, 0, &id) == 1);
	CHECK(store_outbound_bounce(st, "o2", id, &notice, 50, &err) ==
	    STORE_NOT_FOUND);
	CHECK(store_outbound_bounce(st, "o1", id, &notice, 50, &err) ==
	    STORE_OK);
	CHECK(sent_list(st, "s@here", "m1", &seen) == STORE_OK && seen.n == 2);
	CHECK(strcmp(seen.line[0], "far.example 2 r@far.example notice 50") ==
	    0);
	/* Forgotten by age: the records made before the time given. */
	CHECK(store_sent_expire(st, 11, &n, &err) == STORE_OK && n == 1);
	CHECK(sent_list(st, "s@here", "m1", &seen) == STORE_OK && seen.n == 1);
	/* And with the account. */
	CHECK(store_user_del(st, "s@here", 60, &err) == STORE_OK);
	CHECK(sent_list(st, "s@here", "m1", &seen) == STORE_NOT_FOUND);
	store_close(st);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
	int sqlite_only;	/* of the SQLite store's files or fixtures */
} cases[] = {
	{ "id-binding", case_id_binding, 0 },
	{ "deliver-nonce", case_deliver_nonce, 0 },
	{ "tombstone", case_tombstone, 0 },
	{ "random-ids", case_random_ids, 0 },
	{ "mailbox-quota", case_mailbox_quota, 0 },
	{ "queue-quota", case_queue_quota, 0 },
	{ "stranger-quota", case_stranger_quota, 0 },
	{ "claim-threads", case_claim_threads, 0 },
	{ "races", case_races, 0 },
	{ "quota-race", case_quota_race, 0 },
	{ "domain-cap", case_domain_cap, 0 },
	{ "lease-expiry", case_lease_expiry, 0 },
	{ "lease-renewal", case_lease_renewal, 0 },
	{ "restart-leases", case_restart_leases, 0 },
	{ "not-owner", case_not_owner, 0 },
	{ "claim-done", case_claim_done, 0 },
	{ "bounce", case_bounce, 0 },
	{ "queue-admin", case_queue_admin, 0 },
	{ "queue-take", case_queue_take, 0 },
	{ "stats", case_stats, 0 },
	{ "user-del", case_user_del, 0 },
	{ "account-gone", case_account_gone, 0 },
	{ "orphans", case_orphans, 1 },
	{ "now", case_now, 0 },
	{ "bodies", case_bodies, 0 },
	{ "uri", case_uri, 0 },
	{ "inline", case_inline, 0 },
	{ "inline-max", case_inline_max, 0 },
	{ "migrated-v1", case_migrated_v1, 1 },
	{ "migrated-v2", case_migrated_v2, 1 },
	{ "consent-headers", case_consent_headers, 0 },
	{ "device-states", case_device_states, 0 },
	{ "device-removed", case_device_removed, 0 },
	{ "device-later", case_device_later, 0 },
	{ "retention", case_retention, 0 },
	{ "sent-copy", case_sent_copy, 0 },
	{ "device-limits", case_device_limits, 0 },
	{ "migrated-v5", case_migrated_v5, 1 },
	{ "sent-states", case_sent_states, 0 },
};

#define NCASES	(sizeof(cases) / sizeof(cases[0]))

/* Claim one entry, print it and write its body to out. */
static int
claim_one(const char *out)
{
	struct store *st = open_plain();
	struct outbound ob;
	unsigned char *buf = NULL;
	uint64_t len;
	size_t n = 0, got;
	int fd, ret = 1;

	if (st == NULL)
		return 1;
	if (store_outbound_claim(st, "test:0", INT64_MAX / 2, INT64_MAX / 2 +
	    600, 2, 0, NULL, 0, &ob, 1, &n, &err) != STORE_OK || n != 1) {
		fprintf(stderr, "claim: %s\n", n == 0 ? "nothing due" :
		    err.msg);
		goto out;
	}
	printf("%s %s %s %s %u %" PRIu64 "\n", ob.domain, ob.sender,
	    ob.message_id, ob.recipients, ob.attempts, ob.len);
	if (store_outbound_open(st, ob.id, &fd, &len, &err) != STORE_OK ||
	    fd_read_all(fd, "body", 1 << 20, &buf, &got, &err) != 0 ||
	    file_write_atomic(out, buf, got, 0600, 0, &err) != 0)
		fprintf(stderr, "claim: %s\n", err.msg);
	else
		ret = 0;
	free(buf);
	outbound_release(&ob);
out:
	store_close(st);
	return ret;
}

int
main(int argc, char **argv)
{
	size_t i;

	/* Per-domain quotas count per site, as smimpd counts them. */
	if (sodium_init() < 0 || sites_init() != 0)
		return 1;
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (i = 0; i < NCASES; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "claim") == 0) {
		dir = uri = argv[2];
		which = "claim";
		return claim_one(argv[3]);
	}
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: store list | CASE DIR [URI] | claim "
		    "DIR FILE\n");
		return 2;
	}
	which = argv[1];
	dir = argv[2];
	uri = argc == 4 ? argv[3] : dir;
	on_pg = strncmp(uri, "postgresql:", 11) == 0;
	for (i = 0; i < NCASES; i++)
		if (strcmp(cases[i].name, which) == 0) {
			if (on_pg && cases[i].sqlite_only) {
				printf("skip %s: of the SQLite store\n", which);
				return 77;
			}
			if (cases[i].run() != 0)
				return 1;
			printf("ok %s\n", which);
			return 0;
		}
	fprintf(stderr, "store: no case '%s'\n", which);
	return 2;
}
