/*
 * store_postgresql.c - the store on PostgreSQL, "postgresql://..." (a
 * libpq URI): everything several smimpd nodes of one domain share lives
 * in the database, bodies included, so that any node answers any
 * request; a node keeps only its spool (uploads on their way in, bodies
 * on their way out) in its own directory.
 *
 * Each operation is one transaction on a connection of its own from a
 * pool (one connection per caller at a time, as many as the server has
 * threads that ask the store), with synchronous_commit on: a commit has
 * reached the server's disk when it returns.  PostgreSQL itself groups
 * the WAL flushes of the commits that arrive together, so concurrent
 * requests share fsyncs as the SQLite store's group commits do.
 *
 * Writes run READ COMMITTED and lock what they decide on before they
 * look at it, so that what the SQLite store gets from its one writer
 * (a message looked up and then stored, a quota checked and then
 * counted, a device's states dropped while messages arrive) holds
 * across nodes too: a recipient's row of mailbox_usage stands for its
 * mailbox and devices, a sender's row of queue_usage for its queue, a
 * user's row for its policy, each counter's row for itself.  Locks are
 * taken in one order (accounts, queues, mailboxes by address, counters,
 * bodies by id), so that transactions seldom wait on each other in a
 * circle; one that deadlocks anyway (40P01), or that an engine cannot
 * serialize (40001: CockroachDB runs SERIALIZABLE), is run again.
 * (SERIALIZABLE on PostgreSQL instead aborts most of the writers of one
 * busy mailbox, again and again.)
 * The relay queue is claimed with FOR UPDATE SKIP LOCKED: workers of
 * every node take disjoint entries without waiting for each other.
 *
 * Bodies: one small in memory (up to STORE_INLINE_MAX) is a bytea in
 * each row that carries it, as in the SQLite store.  Any other is
 * stored once per transaction in body_chunks, CHUNK bytes a row, and
 * counted in bodies.refs by the rows that name it; the row that drops
 * the count to 0 removes it.  It goes in and out a chunk at a time, so
 * memory stays constant per request: out, it is copied into an unlinked
 * file in the spool, which the caller reads through its descriptor.
 *
 * The SQL is kept to what PostgreSQL, CockroachDB and YugabyteDB all
 * run: no triggers, no stored procedures, no LISTEN/NOTIFY, no advisory
 * locks; counters are kept by the statements themselves (doc/SCALING.md
 * says what was checked against each engine's documentation).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "remote.h"
#include "sites.h"
#include "store_backend.h"
#include "banned.h"

#define PARAMS_MAX	16
#define POOL_MAX	512
#define POOL_DEFAULT	8
#define STMT_SLOTS	64
#define TRIES		20	/* runs of a transaction that deadlocked */
#define CHUNK		(256 * 1024)	/* bytes of a body per row */
#define SWEEP_S		10	/* forget what has expired this often */
#define PAGE		256	/* rows a listing or a removal takes at once */
#define SCHEMA_TRIES	5
/*
 * How far the clocks of the nodes may be apart: the sweep of one node
 * forgets a nonce only this long after it expired by its own clock,
 * for the nodes whose clocks are behind it still take the request's
 * date, and a replay of it.
 */
#define SKEW_S		300

static const char begin_write[] = "BEGIN ISOLATION LEVEL READ COMMITTED";
static const char begin_read[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, "
    "READ ONLY";

/*
 * A connection, used by one thread at a time.  It keeps the statements
 * it has prepared, by the address of their SQL (always a string
 * constant), as "s" and the slot's number.
 */
struct pg_store;

struct pg_conn {
	struct pg_store *s;	/* whose pool it is in */
	PGconn *pc;
	int broken;		/* to connect again before the next use */
	uint64_t mark;		/* made then, among the store's events */
	int retry;		/* its last failure may pass if run again */
	const char *prepared[STMT_SLOTS];
	/* Bodies whose references the transaction drops (unrefs_flush). */
	int64_t *unref;
	size_t nunref, capunref;
};

struct pg_store {
	struct store base;		/* first: what store.c sees */
	char *uri;			/* "postgresql:" and the rest */
	char local[PATH_MAX];
	char spool[PATH_MAX];
	int lock_fd;
	pthread_mutex_t mu;		/* the pool, the sweep's clock */
	pthread_cond_t freed;
	int locks;			/* mu and freed are set up */
	struct pg_conn *conns[POOL_MAX];	/* made so far */
	size_t nconns;
	struct pg_conn *idle[POOL_MAX];
	size_t nidle;
	int64_t next_sweep;
	/*
	 * Outages (store_watch): connections begun and failures seen are
	 * numbered as they come; outage is the failure that began the one
	 * on, or 0; last_outage the one that began the last, last_over the
	 * connection that ended it.  The watch is told under outage_mu, so
	 * that what it hears comes in order.
	 */
	pthread_mutex_t outage_mu;
	uint64_t events, outage, last_outage, last_over;
};

static struct pg_store *
pg(struct store *st)
{
	return (struct pg_store *)st;
}

/* ---- errors ---- */

/* What libpq says, on one line, into err. */
static int
pg_fail(struct smimp_err *err, const char *what, const char *msg)
{
	char line[SMIMP_ERR_MSG];
	size_t n;

	/* Its lines joined, each run of white space one blank. */
	for (n = 0; msg != NULL && *msg != '\0' && n + 1 < sizeof(line);
	    msg++) {
		if (strchr(" \t\r\n", *msg) == NULL)
			line[n++] = *msg;
		else if (n > 0 && line[n - 1] != ' ')
			line[n++] = ' ';
	}
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: %s: %s", what,
	    n > 0 ? line : "no answer from PostgreSQL");
}

/* ---- outages ---- */

/* A connection about to be made: its place among what happens. */
static uint64_t
outage_mark(struct pg_store *s)
{
	uint64_t m;

	pthread_mutex_lock(&s->outage_mu);
	m = ++s->events;
	pthread_mutex_unlock(&s->outage_mu);
	return m;
}

/*
 * The server could not be reached (err says why) by what began at mark
 * (a connection; OUTAGE_NOW: a statement): a failure of an outage,
 * which begins now unless one is on, or it began before the connection
 * that ended the last one (a late word of that one).  -1.
 */
#define OUTAGE_NOW	UINT64_MAX

static int
outage_failure(struct pg_store *s, uint64_t mark, struct smimp_err *err)
{
	err->code = SMIMP_EXIT_TEMPFAIL;
	pthread_mutex_lock(&s->outage_mu);
	if (s->outage == 0 && mark > s->last_over) {
		s->outage = s->last_outage = ++s->events;
		if (s->base.watch != NULL)
			s->base.watch(s->base.watch_arg, err->msg);
	}
	pthread_mutex_unlock(&s->outage_mu);
	return -1;
}

/*
 * A connection begun at mark is made: an outage that began before it
 * is over.  (One begun earlier may have got through just before the
 * server went away: it proves nothing.)
 */
static void
outage_over(struct pg_store *s, uint64_t mark)
{
	pthread_mutex_lock(&s->outage_mu);
	if (s->outage != 0 && s->outage < mark) {
		s->outage = 0;
		s->last_over = mark;
		if (s->base.watch != NULL)
			s->base.watch(s->base.watch_arg, NULL);
	}
	pthread_mutex_unlock(&s->outage_mu);
}

/*
 * Was c made before the last outage began?  Then it is gone too, even
 * if it looks fine: a pool hands out no connection to a server that
 * has since stopped or crashed, to fail at its first use.
 */
static int
outage_outlived(struct pg_conn *c)
{
	int old;

	pthread_mutex_lock(&c->s->outage_mu);
	old = c->mark < c->s->last_outage;
	pthread_mutex_unlock(&c->s->outage_mu);
	return old;
}

/*
 * A failed statement: what it means for the connection (gone: connect
 * again, and the server is away: an outage; a serialization failure or
 * a deadlock: run the transaction again), and why, into err.
 */
static int
failed(struct pg_conn *c, const PGresult *res, struct smimp_err *err,
    const char *what)
{
	const char *state = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/*
	 * Class 08, and the server shutting down or starting: reconnect.
	 * So too for a failure without a SQLSTATE, which libpq made
	 * itself: every error the server sends has one.  The connection
	 * may yet look fine ("server closed the connection unexpectedly"
	 * with CONNECTION_OK), and would fail again at its next use.
	 */
	int gone = PQstatus(c->pc) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0;

	if (state != NULL && (strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0))
		c->retry = 1;
	(void)pg_fail(err, what, res != NULL ? PQresultErrorMessage(res) :
	    PQerrorMessage(c->pc));
	if (!gone)
		return -1;
	c->broken = 1;
	return outage_failure(c->s, OUTAGE_NOW, err);
}

/* ---- statements ---- */

/*
 * Parameters as fmt says, one letter each: 't' text (const char *), 'i'
 * an int64_t, 'b' bytes (const void *, then a size_t), 'n' NULL (no
 * argument); 'I' and 'B' as 'i' and 'b', NULL for 0 and a NULL
 * pointer.  Text and numbers go as text, bytes as binary.
 */
struct params {
	int n;
	const char *v[PARAMS_MAX];
	int len[PARAMS_MAX];
	int fmt[PARAMS_MAX];
	char num[PARAMS_MAX][24];
};

static int
params_va(struct params *p, const char *fmt, va_list ap)
{
	const void *data;
	size_t len;
	int i;

	for (i = 0; fmt[i] != '\0'; i++) {
		if (i == PARAMS_MAX)
			return -1;
		p->len[i] = 0;
		p->fmt[i] = 0;
		switch (fmt[i]) {
		case 't':
			p->v[i] = va_arg(ap, const char *);
			break;
		case 'i':
			(void)snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64,
			    va_arg(ap, int64_t));
			p->v[i] = p->num[i];
			break;
		case 'b':
			data = va_arg(ap, const void *);
			len = va_arg(ap, size_t);
			if (len > INT_MAX)
				return -1;
			/* A NULL pointer would be SQL NULL: empty is "". */
			p->v[i] = data != NULL ? data : "";
			p->len[i] = (int)len;
			p->fmt[i] = 1;
			break;
		case 'B':	/* bytes, or NULL for a NULL pointer */
			data = va_arg(ap, const void *);
			len = va_arg(ap, size_t);
			if (len > INT_MAX)
				return -1;
			p->v[i] = data;
			p->len[i] = (int)len;
			p->fmt[i] = 1;
			break;
		case 'I':	/* an int64_t, NULL for 0 */
			(void)snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64,
			    va_arg(ap, int64_t));
			p->v[i] = strcmp(p->num[i], "0") != 0 ? p->num[i] : NULL;
			break;
		case 'n':
			p->v[i] = NULL;
			break;
		default:
			return -1;
		}
	}
	p->n = i;
	return 0;
}

/* The name of sql's prepared statement on c, prepared now if need be. */
static const char *
prepared(struct pg_conn *c, const char *sql, int nparams, char *name,
    size_t cap, struct smimp_err *err)
{
	size_t h = ((uintptr_t)sql >> 3) % STMT_SLOTS, i, k;
	PGresult *res;

	for (i = 0; i < STMT_SLOTS; i++) {
		k = (h + i) % STMT_SLOTS;
		if (c->prepared[k] == sql || c->prepared[k] == NULL)
			break;
	}
	if (i == STMT_SLOTS)
		return "";	/* full: the statement goes unprepared */
	(void)snprintf(name, cap, "s%zu", k);
	if (c->prepared[k] == sql)
		return name;
	/* Prepared statements outlive a rollback: one try is enough. */
	res = PQprepare(c->pc, name, sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		failed(c, res, err, "prepare");
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	c->prepared[k] = sql;
	return name;
}

/*
 * Run sql (a string constant) with its parameters; every result comes
 * in binary.  The result, or NULL with err set.
 */
static PGresult *
query_va(struct pg_conn *c, struct smimp_err *err, const char *sql,
    const char *fmt, va_list ap)
{
	struct params p;
	char name[16];
	const char *stmt;
	PGresult *res;
	ExecStatusType st;

	if (params_va(&p, fmt, ap) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: bad parameters");
		return NULL;
	}
	stmt = prepared(c, sql, p.n, name, sizeof(name), err);
	if (stmt == NULL)
		return NULL;
	if (stmt[0] != '\0')
		res = PQexecPrepared(c->pc, stmt, p.n, p.v, p.len, p.fmt, 1);
	else
		res = PQexecParams(c->pc, sql, p.n, NULL, p.v, p.len, p.fmt, 1);
	st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	failed(c, res, err, "query");
	PQclear(res);
	return NULL;
}

static PGresult *
query(struct pg_conn *c, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	PGresult *res;
	va_list ap;

	va_start(ap, fmt);
	res = query_va(c, err, sql, fmt, ap);
	va_end(ap);
	return res;
}

/* Run a statement: the rows it changed (or returned), or -1. */
static int64_t
exec_sql(struct pg_conn *c, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	PGresult *res;
	va_list ap;
	int64_t n;

	va_start(ap, fmt);
	res = query_va(c, err, sql, fmt, ap);
	va_end(ap);
	if (res == NULL)
		return -1;
	n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) :
	    strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n;
}

/* A column as an integer (int2, int4, int8 or boolean); NULL is 0. */
static int64_t
col_int(const PGresult *res, int row, int col)
{
	const unsigned char *p;
	uint64_t v = 0;
	int i, n;

	if (PQgetisnull(res, row, col))
		return 0;
	p = (const unsigned char *)PQgetvalue(res, row, col);
	n = PQgetlength(res, row, col);
	if (n < 1 || n > 8)
		return 0;
	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	if (n < 8 && (p[0] & 0x80))
		v |= ~UINT64_C(0) << (8 * n);
	return (int64_t)v;
}

/* A text column (NUL-terminated by libpq); NULL is "". */
static const char *
col_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

static void
col_copy(const PGresult *res, int row, int col, char *out, size_t cap)
{
	(void)snprintf(out, cap, "%s", col_text(res, row, col));
}

/*
 * The first column of the first row: an integer into *num (unless
 * NULL), text into text (cap bytes, unless NULL).  1 found, 0 no row,
 * -1 error.
 */
static int
first(struct pg_conn *c, struct smimp_err *err, int64_t *num, char *text,
    size_t cap, const char *sql, const char *fmt, ...)
{
	PGresult *res;
	va_list ap;
	int ret = 1;

	va_start(ap, fmt);
	res = query_va(c, err, sql, fmt, ap);
	va_end(ap);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	if (num != NULL)
		*num = col_int(res, 0, 0);
	if (text != NULL && (size_t)snprintf(text, cap, "%s",
	    col_text(res, 0, 0)) >= cap)
		ret = smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a stored "
		    "value is too long");
	PQclear(res);
	return ret;
}

/* A statement without parameters or rows: BEGIN, COMMIT, ROLLBACK. */
static int
simple(struct pg_conn *c, struct smimp_err *err, const char *sql)
{
	PGresult *res = PQexec(c->pc, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		failed(c, res, err, sql);
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * COMMIT, and it committed: a transaction that failed inside (a
 * statement whose failure went unchecked) is rolled back by COMMIT
 * without an error, and must not pass for a commit.
 */
static int
commit(struct pg_conn *c, struct smimp_err *err)
{
	PGresult *res = PQexec(c->pc, "COMMIT");
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		failed(c, res, err, "COMMIT");
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: the transaction "
		    "failed and was rolled back");
		ok = 0;
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* ---- connections ---- */

/*
 * The session every operation counts on: commits on disk before they
 * return, whatever the server's default; no statement waits forever.
 * An engine that knows no synchronous_commit (42704) commits durably
 * by design.
 */
static int
session_setup(struct pg_conn *c, struct smimp_err *err)
{
	PGresult *res = PQexec(c->pc, "SET synchronous_commit TO on");
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    (state != NULL && strcmp(state, "42704") == 0);

	if (!ok)
		failed(c, res, err, "synchronous_commit");
	PQclear(res);
	if (!ok)
		return -1;
	return simple(c, err, "SET statement_timeout TO '60s'");
}

static void
notice_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* (Re)connect c; its prepared statements are gone with the old one. */
static int
conn_connect(struct pg_store *s, struct pg_conn *c, struct smimp_err *err)
{
	/*
	 * Defaults first: what the URI says wins.  Over TCP, a database
	 * host that vanished (power lost, the network cut) is given up on
	 * within a minute: by the kernel's defaults, a request waiting on
	 * it would wait for hours, and every thread with it.
	 */
	static const char *const keys[] = { "connect_timeout",
	    "application_name", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "tcp_user_timeout", "dbname", NULL };
	const char *vals[] = { "10", "smimpd", "30", "10", "3", "60000",
	    s->uri, NULL };
	uint64_t mark;

	if (c->pc != NULL)
		PQfinish(c->pc);
	memset(c->prepared, 0, sizeof(c->prepared));
	c->broken = 1;
	mark = outage_mark(s);
	c->pc = PQconnectdbParams(keys, vals, 1);
	if (c->pc == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: out of "
		    "memory");
	if (PQstatus(c->pc) != CONNECTION_OK) {
		(void)pg_fail(err, "cannot connect to PostgreSQL",
		    PQerrorMessage(c->pc));
		return outage_failure(s, mark, err);
	}
	/* Notices ("already exists, skipping") are no failures: unsaid. */
	(void)PQsetNoticeProcessor(c->pc, notice_ignore, NULL);
	if (session_setup(c, err) != 0)
		return -1;
	c->broken = 0;
	c->mark = mark;
	outage_over(s, mark);
	return 0;
}

static size_t
pool_max(const struct pg_store *s)
{
	unsigned int n = s->base.limits.connections;

	return n == 0 ? POOL_DEFAULT : n > POOL_MAX ? POOL_MAX : n;
}

static void
conn_put(struct pg_store *s, struct pg_conn *c)
{
	pthread_mutex_lock(&s->mu);
	s->idle[s->nidle++] = c;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->mu);
}

/*
 * A connection of the pool, connected: an idle one, a new one while
 * the pool is not full, else the first one given back.  One found gone,
 * or made before the last outage began, is made again first.
 */
static struct pg_conn *
conn_get(struct pg_store *s, struct smimp_err *err)
{
	struct pg_conn *c = NULL;
	size_t max = pool_max(s);

	pthread_mutex_lock(&s->mu);
	while (s->nidle == 0 && s->nconns >= max)
		pthread_cond_wait(&s->freed, &s->mu);
	if (s->nidle > 0) {
		c = s->idle[--s->nidle];
	} else {
		c = calloc(1, sizeof(*c));
		if (c != NULL) {
			c->s = s;
			s->conns[s->nconns++] = c;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (c == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	if ((c->pc == NULL || c->broken || PQstatus(c->pc) != CONNECTION_OK ||
	    outage_outlived(c)) && conn_connect(s, c, err) != 0) {
		conn_put(s, c);
		return NULL;
	}
	return c;
}

/* ---- transactions ---- */

typedef int (*txn_fn)(struct pg_store *, struct pg_conn *, void *,
    struct smimp_err *);

static void sweep(struct pg_store *s, struct pg_conn *c, int64_t now);

/* Is it time to sweep?  At most every SWEEP_S seconds, on a write. */
static int
sweep_due(struct pg_store *s, int64_t now)
{
	int due = 0;

	if (now <= 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (now >= s->next_sweep) {
		s->next_sweep = now + SWEEP_S;
		due = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return due;
}

/* A little random wait before a transaction runs again. */
static void
backoff(int tries)
{
	struct timespec ts;
	uint32_t us = randombytes_uniform(1000) + 1000 * (uint32_t)
	    (tries < 10 ? tries : 10);

	ts.tv_sec = 0;
	ts.tv_nsec = (long)us * 1000;
	(void)nanosleep(&ts, NULL);
}

static int
id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The references the transaction dropped, at its end and in id order:
 * transactions that drop references to the same bodies never wait on
 * each other in a circle.  The last reference takes the body with it.
 */
static int
unrefs_flush(struct pg_conn *c, struct smimp_err *err)
{
	int64_t refs;
	size_t i;
	int r;

	if (c->nunref == 0)
		return 0;
	qsort(c->unref, c->nunref, sizeof(*c->unref), id_cmp);
	for (i = 0; i < c->nunref; i++) {
		refs = 0;
		r = first(c, err, &refs, NULL, 0, "UPDATE bodies SET refs = "
		    "refs - 1 WHERE id = $1 RETURNING refs", "i", c->unref[i]);
		if (r < 0 || (r == 1 && refs <= 0 &&
		    (exec_sql(c, err, "DELETE FROM body_chunks WHERE body = $1",
		    "i", c->unref[i]) < 0 || exec_sql(c, err, "DELETE FROM "
		    "bodies WHERE id = $1", "i", c->unref[i]) < 0)))
			return -1;
	}
	c->nunref = 0;
	return 0;
}

/*
 * One attempt at run(arg) in a transaction begun by begin: what run
 * answered, STORE_OK only once committed.  Any other answer stores
 * nothing of it.  *began: the transaction began (else nothing was
 * asked of the server).
 */
static int
txn_once(struct pg_store *s, struct pg_conn *c, const char *begin, txn_fn run,
    void *arg, int *began, struct smimp_err *err)
{
	struct smimp_err ignored;
	int r;

	*began = 0;
	c->nunref = 0;
	if (simple(c, err, begin) != 0)
		return STORE_ERROR;
	*began = 1;
	r = run(s, c, arg, err);
	if (r == STORE_OK && unrefs_flush(c, err) != 0)
		r = STORE_ERROR;
	if (r == STORE_OK)
		return commit(c, err) == 0 ? STORE_OK : STORE_ERROR;
	/* Why it failed stays in err, not why the rollback did. */
	(void)simple(c, r == STORE_ERROR ? &ignored : err, "ROLLBACK");
	return r;
}

/*
 * Run run(arg) in a transaction (begin says which kind) on c: what it
 * answered, once committed.  A transaction that deadlocked is run
 * again, and so is one whose connection had gone before it began, on a
 * new connection.
 */
static int
txn_on(struct pg_store *s, struct pg_conn *c, const char *begin, txn_fn run,
    void *arg, struct smimp_err *err)
{
	int r = STORE_ERROR, tries, began, reconnected = 0;

	for (tries = 0; tries < TRIES; tries++) {
		c->retry = 0;
		r = txn_once(s, c, begin, run, arg, &began, err);
		if (r != STORE_ERROR)
			break;
		if (c->broken) {
			if (began || reconnected || conn_connect(s, c, err) != 0)
				break;
			reconnected = 1;
			continue;
		}
		if (!c->retry)
			break;
		backoff(tries);
	}
	return r;
}

/* txn_on, on a connection of the pool; a write may sweep first. */
static int
txn(struct pg_store *s, const char *begin, txn_fn run, void *arg,
    int64_t now, struct smimp_err *err)
{
	struct pg_conn *c;
	int64_t started;
	int r;

	c = conn_get(s, err);
	if (c == NULL)
		return STORE_ERROR;
	if (begin == begin_write && sweep_due(s, now))
		sweep(s, c, now);
	started = time_mono_us();
	r = txn_on(s, c, begin, run, arg, err);
	conn_put(s, c);
	if (r == STORE_OK && begin == begin_write)
		store_committed(&s->base, started);
	return r;
}

/*
 * A query outside any transaction (a read), its result for the caller
 * to PQclear, or NULL.  The connection goes back to the pool before the
 * caller reads the rows: a caller's callback may use the store itself.
 * A connection found gone is replaced, once: a read is safe to repeat.
 */
static PGresult *
read_query(struct pg_store *s, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	struct pg_conn *c;
	PGresult *res = NULL;
	va_list ap;
	int tries;

	c = conn_get(s, err);
	if (c == NULL)
		return NULL;
	for (tries = 0; tries < 2; tries++) {
		va_start(ap, fmt);
		res = query_va(c, err, sql, fmt, ap);
		va_end(ap);
		if (res != NULL || !c->broken || tries > 0 ||
		    conn_connect(s, c, err) != 0)
			break;
	}
	conn_put(s, c);
	return res;
}

/* ---- the schema and its versions ---- */

/*
 * Version 1: what the SQLite store holds at its version 7, in one
 * step.  Counters (mailbox_usage, queue_usage) are kept by the
 * statements that add and remove rows, not by triggers.  A mailbox
 * copy or queue entry has its body inline (data) or in body_chunks
 * (body names it), never both; seq and outbound.id give the order of
 * arrival.  Times are Unix seconds, as the callers give them.
 * An index read by range (what has expired, what is due) says ASC:
 * the order PostgreSQL and CockroachDB give every index anyway, but
 * YugabyteDB hashes a first column not marked so, and a hashed index
 * answers no range.  (The same index, so a database made before this
 * was said is no different.)
 */
static const char schema_v1[] =
    "CREATE TABLE users ("
    " address text PRIMARY KEY, log bytea NOT NULL,"
    " created bigint NOT NULL);"
    "CREATE TABLE user_devices ("
    " address text NOT NULL, device text NOT NULL, key bytea NOT NULL,"
    " PRIMARY KEY (address, device));"
    "CREATE TABLE invites ("
    " hash bytea PRIMARY KEY, address text NOT NULL,"
    " expires bigint NOT NULL);"
    "CREATE INDEX invites_expires ON invites (expires ASC);"
    "CREATE TABLE nonces ("
    " signer text NOT NULL, nonce text NOT NULL, expires bigint NOT NULL,"
    " PRIMARY KEY (signer, nonce));"
    "CREATE INDEX nonces_expires ON nonces (expires ASC);"
    "CREATE TABLE bodies ("
    " id bigint PRIMARY KEY, size bigint NOT NULL, refs integer NOT NULL);"
    "CREATE TABLE body_chunks ("
    " body bigint NOT NULL, n integer NOT NULL, data bytea NOT NULL,"
    " PRIMARY KEY (body, n));"
    "CREATE TABLE mailbox ("
    " seq bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id bigint NOT NULL UNIQUE,"
    " recipient text NOT NULL, sender text NOT NULL,"
    " message_id text NOT NULL, body bigint, data bytea,"
    " size bigint NOT NULL, received bigint NOT NULL,"
    " identity_pending boolean NOT NULL, sent boolean NOT NULL,"
    " first_ack bigint,"
    " CHECK ((body IS NULL) <> (data IS NULL)),"
    " UNIQUE (recipient, sender, message_id));"
    "CREATE INDEX mailbox_order ON mailbox (recipient, identity_pending, seq);"
    "CREATE INDEX mailbox_retained ON mailbox (first_ack ASC)"
    " WHERE first_ack IS NOT NULL;"
    "CREATE TABLE mailbox_pending ("
    " recipient text NOT NULL, device text NOT NULL, seq bigint NOT NULL,"
    " PRIMARY KEY (recipient, device, seq));"
    "CREATE INDEX mailbox_pending_seq ON mailbox_pending (seq);"
    "CREATE TABLE tombstones ("
    " recipient text NOT NULL, sender text NOT NULL,"
    " message_id text NOT NULL, acked bigint NOT NULL,"
    " PRIMARY KEY (recipient, sender, message_id));"
    "CREATE INDEX tombstones_acked ON tombstones (acked ASC);"
    "CREATE TABLE mailbox_usage ("
    " recipient text PRIMARY KEY, bytes bigint NOT NULL);"
    "CREATE TABLE correspondents ("
    " local text NOT NULL, domain text NOT NULL,"
    " PRIMARY KEY (local, domain));"
    "CREATE TABLE stranger_bytes ("
    " domain text NOT NULL, day bigint NOT NULL, bytes bigint NOT NULL,"
    " PRIMARY KEY (domain, day));"
    "CREATE TABLE outbound ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " domain text NOT NULL, sender text NOT NULL, recipients text NOT NULL,"
    " all_recipients text NOT NULL, message_id text NOT NULL,"
    " body bigint, data bytea, size bigint NOT NULL,"
    " stamp text NOT NULL, stamp_date text NOT NULL,"
    " stamp_device text NOT NULL, work text NOT NULL,"
    " introduction text NOT NULL,"
    " attempts integer NOT NULL DEFAULT 0, first_try bigint NOT NULL,"
    " next_try bigint NOT NULL, lease_owner text, lease_until bigint,"
    " CHECK ((body IS NULL) <> (data IS NULL)),"
    " UNIQUE (domain, sender, message_id));"
    "CREATE INDEX outbound_due ON outbound (next_try ASC);"
    "CREATE INDEX outbound_domain ON outbound (domain, id);"
    "CREATE INDEX outbound_lease ON outbound (lease_until ASC);"
    "CREATE TABLE queue_usage ("
    " sender text PRIMARY KEY, bytes bigint NOT NULL);"
    "CREATE TABLE policies ("
    " address text PRIMARY KEY, date bigint NOT NULL,"
    " unknown integer NOT NULL, bits integer NOT NULL,"
    " allowance bigint NOT NULL, salt bytea NOT NULL, text bytea NOT NULL);"
    "CREATE TABLE policy_entries ("
    " address text NOT NULL, hash bytea NOT NULL, kind integer NOT NULL,"
    " PRIMARY KEY (address, hash));"
    "CREATE TABLE consent_domains ("
    " domain text PRIMARY KEY, hour bigint NOT NULL,"
    " count bigint NOT NULL, ignored_until bigint NOT NULL);"
    "CREATE TABLE consent_allowance ("
    " recipient text PRIMARY KEY, day bigint NOT NULL,"
    " count bigint NOT NULL);";

/*
 * Version 2 (the SQLite store's 8): the administrator may hold a queued
 * entry (the relay claims none that is held) or ask for an attempt now
 * (retry_now), and sees why its last attempt failed.
 */
static const char schema_v2[] =
    "ALTER TABLE outbound ADD COLUMN held boolean NOT NULL DEFAULT false;"
    "ALTER TABLE outbound ADD COLUMN retry_now boolean NOT NULL "
    "DEFAULT false;"
    "ALTER TABLE outbound ADD COLUMN last_error text NOT NULL DEFAULT '';";

/*
 * Version 3 (the SQLite store's 9): what became of each sent message at
 * each domain, kept for its sender (doc/PROTOCOL.md 8.14), and the
 * queue read by message for the same question.
 */
static const char schema_v3[] =
    "CREATE TABLE sent_states ("
    " sender text NOT NULL, message_id text NOT NULL, domain text NOT NULL,"
    " state integer NOT NULL, recipients text NOT NULL,"
    " detail text NOT NULL, at bigint NOT NULL,"
    " PRIMARY KEY (sender, message_id, domain));"
    "CREATE INDEX sent_states_at ON sent_states (at ASC);"
    "CREATE INDEX outbound_sender ON outbound (sender, message_id);";

/*
 * Version 4 (the SQLite store's 10): one-time prekeys, a pool per
 * (user, receiving device: "" the identity key), each handed out once;
 * prekey_pools keeps the date of the last batch a pool took.
 */
static const char schema_v4[] =
    "CREATE TABLE prekeys ("
    " address text NOT NULL, device text NOT NULL, id text NOT NULL,"
    " key bytea NOT NULL, date bigint NOT NULL, signature bytea NOT NULL,"
    " PRIMARY KEY (address, device, id));"
    "CREATE TABLE prekey_pools ("
    " address text NOT NULL, device text NOT NULL,"
    " last_date bigint NOT NULL, PRIMARY KEY (address, device));";

/*
 * Version 5 (the SQLite store's 11): the messages counted today against
 * each recipient's allowance, so that a message is counted once however
 * often it comes before it is stored (copies checked on several nodes
 * at once, a retry after 429).
 */
static const char schema_v5[] =
    "CREATE TABLE consent_counted ("
    " recipient text NOT NULL, sender text NOT NULL,"
    " message_id text NOT NULL, day bigint NOT NULL,"
    " PRIMARY KEY (recipient, sender, message_id));"
    "CREATE INDEX consent_counted_day ON consent_counted (day ASC);";

/*
 * Version 6: the public server key the domain's nodes sign with, as the
 * first node to start gave it, so that a node with another key (or
 * none, which it would make up) can tell and refuse to serve.
 */
static const char schema_v6[] =
    "CREATE TABLE server_key ("
    " one integer PRIMARY KEY CHECK (one = 1), key bytea NOT NULL);";

/* migrations[v] takes a database from version v to v + 1. */
static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
};

#define SCHEMA_VERSION	((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

/*
 * The version table, made by whichever node comes first: two that come
 * at once may both try, and one fails; it tries again.
 */
static int
version_table(struct pg_conn *c, struct smimp_err *err)
{
	int tries;

	for (tries = 0; tries < SCHEMA_TRIES; tries++) {
		if (simple(c, err, "CREATE TABLE IF NOT EXISTS smimp_schema ("
		    " one integer PRIMARY KEY CHECK (one = 1),"
		    " version integer NOT NULL)") == 0 &&
		    simple(c, err, "INSERT INTO smimp_schema (one, version) "
		    "VALUES (1, 0) ON CONFLICT (one) DO NOTHING") == 0)
			return 0;
		if (c->broken)
			break;
		backoff(tries);
	}
	return -1;
}

/*
 * One step of migration, or none when the database is current, in one
 * transaction that holds the version's row: of the nodes that start
 * together, one migrates while the others wait, then find it done.
 * 1 a step was taken, 0 current, -1 error.
 */
static int
migrate_step(struct pg_conn *c, struct smimp_err *err)
{
	struct smimp_err ignored;
	int64_t v = 0;
	int r;

	if (simple(c, err, begin_write) != 0)
		return -1;
	r = first(c, err, &v, NULL, 0, "SELECT version FROM smimp_schema "
	    "WHERE one = 1 FOR UPDATE", "");
	if (r == 0)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: no schema version");
	else if (r == 1 && v > SCHEMA_VERSION)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the store has schema "
		    "version %lld; this smimpd knows versions up to %lld",
		    (long long)v, (long long)SCHEMA_VERSION);
	else if (r == 1 && v == SCHEMA_VERSION)
		return commit(c, err) == 0 ? 0 : -1;
	else if (r == 1 && v >= 0 && simple(c, err, migrations[v]) == 0 &&
	    exec_sql(c, err, "UPDATE smimp_schema SET version = $1 WHERE "
	    "one = 1", "i", v + 1) == 1 && commit(c, err) == 0)
		return 1;
	(void)simple(c, &ignored, "ROLLBACK");
	return -1;
}

/* Create or migrate the schema, step by step. */
static int
migrate(struct pg_conn *c, struct smimp_err *err)
{
	int r, tries = 0;

	if (version_table(c, err) != 0)
		return -1;
	do {
		c->retry = 0;
		r = migrate_step(c, err);
		if (r < 0 && c->retry && tries++ < TRIES) {
			backoff(tries);
			r = 1;
		}
	} while (r == 1);
	return r;
}

/* ---- bodies in the database ---- */

/*
 * A row that named body id is gone: its reference is dropped when the
 * transaction is about to commit (unrefs_flush).
 */
static int
body_unref(struct pg_conn *c, int64_t id, struct smimp_err *err)
{
	int64_t *p;
	size_t cap;

	if (c->nunref == c->capunref) {
		cap = c->capunref > 0 ? 2 * c->capunref : 16;
		p = realloc(c->unref, cap * sizeof(*p));
		if (p == NULL)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of "
			    "memory");
		c->unref = p;
		c->capunref = cap;
	}
	c->unref[c->nunref++] = id;
	return 0;
}

/* ---- locks: what a transaction decides on, held until it ends ---- */

/*
 * The recipient's mailbox, locked (its row of mailbox_usage, made if
 * need be): its messages, their states and its devices change only
 * under this lock.  *bytes, unless NULL: what the mailbox holds.
 */
static int
recipient_lock(struct pg_conn *c, const char *recipient, int64_t *bytes,
    struct smimp_err *err)
{
	int64_t v = 0;
	int r;

	r = first(c, err, &v, NULL, 0, "INSERT INTO mailbox_usage (recipient, "
	    "bytes) VALUES ($1, 0) ON CONFLICT (recipient) DO UPDATE SET "
	    "bytes = mailbox_usage.bytes RETURNING bytes", "t", recipient);
	if (r == 0)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: no mailbox to lock");
	if (bytes != NULL)
		*bytes = v;
	return r == 1 ? 0 : -1;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The mailboxes of n recipients, locked in address order. */
static int
recipients_lock(struct pg_conn *c, const char **names, size_t n,
    struct smimp_err *err)
{
	size_t i;

	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++)
		if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) &&
		    recipient_lock(c, names[i], NULL, err) != 0)
			return -1;
	return 0;
}

/* ---- leaving messages ---- */

/*
 * Mailbox rows deleted, as DELETE ... RETURNING recipient, size, body
 * gave them: the counters follow, and their bodies lose a reference.
 */
static int
mailbox_gone(struct pg_conn *c, const PGresult *res, struct smimp_err *err)
{
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++) {
		if (exec_sql(c, err, "UPDATE mailbox_usage SET bytes = bytes - "
		    "$2 WHERE recipient = $1", "ti", col_text(res, i, 0),
		    col_int(res, i, 1)) < 0)
			return -1;
		if (!PQgetisnull(res, i, 2) && body_unref(c, col_int(res, i, 2),
		    err) != 0)
			return -1;
	}
	return 0;
}

/* The seqs of a query's first column, as an array literal "{1,2}". */
static void
seq_list(const PGresult *res, char *buf, size_t cap)
{
	size_t len = 0;
	int i, n = PQntuples(res);

	buf[len++] = '{';
	for (i = 0; i < n && len + 24 < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64,
		    i > 0 ? "," : "", col_int(res, i, 0));
	(void)snprintf(buf + len, cap - len, "}");
}

#define SEQ_LIST_MAX	(PAGE * 22 + 4)

/*
 * The messages whose seqs are listed leave, inside a transaction: their
 * states, their rows (the triples kept as acknowledged at now), their
 * bodies' references.
 */
static int
mailbox_drop(struct pg_conn *c, const char *seqs, int64_t now,
    struct smimp_err *err)
{
	PGresult *res;
	int r;

	if (exec_sql(c, err, "DELETE FROM mailbox_pending WHERE seq = "
	    "ANY($1::bigint[])", "t", seqs) < 0 ||
	    exec_sql(c, err, "INSERT INTO tombstones (recipient, sender, "
	    "message_id, acked) SELECT recipient, sender, message_id, "
	    "$2::bigint FROM mailbox WHERE seq = ANY($1::bigint[]) "
	    "ON CONFLICT (recipient, sender, message_id) DO UPDATE SET "
	    "acked = excluded.acked", "ti", seqs, now) < 0)
		return -1;
	res = query(c, err, "DELETE FROM mailbox WHERE seq = ANY($1::bigint[]) "
	    "RETURNING recipient, size, body", "t", seqs);
	if (res == NULL)
		return -1;
	r = mailbox_gone(c, res, err);
	PQclear(res);
	return r;
}

/*
 * Page by page, the messages a query of seqs finds (at most PAGE, with
 * one parameter: text or a number) leave as by mailbox_drop, until it
 * finds no more.
 */
static int
mailbox_drop_all(struct pg_conn *c, const char *sql, const char *text,
    int64_t num, int64_t now, struct smimp_err *err)
{
	char seqs[SEQ_LIST_MAX];
	PGresult *res;
	int n;

	do {
		res = text != NULL ? query(c, err, sql, "t", text) :
		    query(c, err, sql, "i", num);
		if (res == NULL)
			return -1;
		n = PQntuples(res);
		seq_list(res, seqs, sizeof(seqs));
		PQclear(res);
		if (n > 0 && mailbox_drop(c, seqs, now, err) != 0)
			return -1;
	} while (n == PAGE);
	return 0;
}

/* The owner's messages pending for no device leave (devices_set). */
static int
mailbox_unpended(struct pg_conn *c, const char *owner, int64_t now,
    struct smimp_err *err)
{
	return mailbox_drop_all(c, "SELECT seq FROM mailbox m WHERE "
	    "recipient = $1 AND NOT identity_pending AND NOT EXISTS (SELECT 1 "
	    "FROM mailbox_pending p WHERE p.seq = m.seq) LIMIT 256", owner, 0,
	    now, err);
}

/* ---- the sweep ---- */

struct expire_args {
	int64_t cut, now;
	int n;			/* messages the page found */
};

/*
 * A page of the messages first acknowledged before cut leave, their
 * mailboxes locked first: a transaction of its own, so that its locks
 * are taken in one order.
 */
static int
expire_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct expire_args *a = arg;
	const char *names[PAGE];
	char seqs[SEQ_LIST_MAX];
	PGresult *res;
	int i, r;

	(void)s;
	res = query(c, err, "SELECT seq, recipient FROM mailbox WHERE "
	    "first_ack IS NOT NULL AND first_ack < $1 LIMIT 256", "i", a->cut);
	if (res == NULL)
		return STORE_ERROR;
	a->n = PQntuples(res);
	for (i = 0; i < a->n; i++)
		names[i] = col_text(res, i, 1);
	seq_list(res, seqs, sizeof(seqs));
	r = a->n > 0 && (recipients_lock(c, names, (size_t)a->n, err) != 0 ||
	    mailbox_drop(c, seqs, a->now, err) != 0);
	PQclear(res);
	return r ? STORE_ERROR : STORE_OK;
}

/*
 * Forget what has expired by now, each in a transaction of its own;
 * best effort: what stays is swept next time, and checked anyway.
 */
static void
sweep(struct pg_store *s, struct pg_conn *c, int64_t now)
{
	struct expire_args a;
	struct smimp_err err;
	int64_t idem = s->base.limits.idempotency;
	int64_t keep = s->base.limits.retention;

	/* A connection found gone ends it: the caller connects again. */
	if (exec_sql(c, &err, "DELETE FROM nonces WHERE expires < $1", "i",
	    now - SKEW_S) < 0 && c->broken)
		return;
	(void)exec_sql(c, &err, "DELETE FROM invites WHERE expires < $1", "i",
	    now);
	(void)exec_sql(c, &err, "DELETE FROM stranger_bytes WHERE day < $1",
	    "i", now / STORE_DAY_S);
	if (idem > 0)
		(void)exec_sql(c, &err, "DELETE FROM tombstones WHERE "
		    "acked < $1", "i", now - idem);
	(void)exec_sql(c, &err, "DELETE FROM consent_allowance WHERE "
	    "day < $1", "i", now / STORE_DAY_S);
	(void)exec_sql(c, &err, "DELETE FROM consent_counted WHERE "
	    "day < $1", "i", now / STORE_DAY_S);
	(void)exec_sql(c, &err, "DELETE FROM consent_domains WHERE hour < $1 "
	    "AND ignored_until <= $2", "ii", now / STORE_HOUR_S, now);
	if (c->broken)
		return;
	a.cut = now - keep;
	a.now = now;
	do {
		a.n = 0;
		if (keep <= 0 || txn_on(s, c, begin_write, expire_run, &a,
		    &err) != STORE_OK)
			break;
	} while (a.n == PAGE);
}

/* ---- a user's receiving devices ---- */

/*
 * The devices of address become log's, inside a transaction: each one
 * the log no longer names (by name and key) loses its pending states,
 * and the messages then pending for no device leave.
 */
static int
devices_set(struct pg_conn *c, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	struct store_gone_devices gone;
	PGresult *res;
	size_t i;
	int k;

	if (recipient_lock(c, address, NULL, err) != 0)
		return STORE_ERROR;
	res = query(c, err, "SELECT device, key FROM user_devices WHERE "
	    "address = $1", "t", address);
	if (res == NULL)
		return STORE_ERROR;
	gone.n = gone.over = 0;
	for (k = 0; k < PQntuples(res); k++)
		store_gone_note(&gone, log, col_text(res, k, 0),
		    PQgetvalue(res, k, 1), (size_t)PQgetlength(res, k, 1));
	PQclear(res);
	if (store_gone_check(&gone, address, err) != 0)
		return STORE_ERROR;
	for (i = 0; i < gone.n; i++)
		if (exec_sql(c, err, "DELETE FROM mailbox_pending WHERE "
		    "recipient = $1 AND device = $2", "tt", address,
		    gone.name[i]) < 0 || exec_sql(c, err, "DELETE FROM prekeys "
		    "WHERE address = $1 AND device = $2", "tt", address,
		    gone.name[i]) < 0 || exec_sql(c, err, "DELETE FROM "
		    "prekey_pools WHERE address = $1 AND device = $2", "tt",
		    address, gone.name[i]) < 0)
			return STORE_ERROR;
	if (exec_sql(c, err, "DELETE FROM user_devices WHERE address = $1",
	    "t", address) < 0)
		return STORE_ERROR;
	/* A name twice in a log: the last one's key, as SQLite's REPLACE. */
	for (i = 0; i < log->ndevices; i++)
		if (exec_sql(c, err, "INSERT INTO user_devices (address, "
		    "device, key) VALUES ($1, $2, $3) ON CONFLICT (address, "
		    "device) DO UPDATE SET key = excluded.key", "ttb", address,
		    log->devices[i].name, log->devices[i].key,
		    sizeof(log->devices[i].key)) < 0)
			return STORE_ERROR;
	if (gone.n > 0 && mailbox_unpended(c, address, now, err) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

/* ---- accounts ---- */

/* A new account with its devices, inside a transaction. */
static int
user_insert(struct pg_conn *c, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	int64_t n;

	n = exec_sql(c, err, "INSERT INTO users (address, log, created) "
	    "VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING", "tbi",
	    address, log->raw, log->len, now);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : STORE_EXISTS;
	return log->ndevices > 0 ? devices_set(c, address, log, now, err) :
	    STORE_OK;
}

static int
user_add_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct store_user_args *a = arg;

	(void)s;
	return user_insert(c, a->address, a->log, a->now, err);
}

static int
pg_user_add(struct store *st, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	struct store_user_args a = { address, log, now };

	return txn(pg(st), begin_write, user_add_run, &a, now, err);
}

static int
user_log_update_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct store_log_update_args *a = arg;
	int64_t n;

	(void)s;
	n = exec_sql(c, err, "UPDATE users SET log = $1 WHERE address = $2 "
	    "AND log = $3", "btb", a->log->raw, a->log->len, a->address,
	    a->old, a->old_len);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	return devices_set(c, a->address, a->log, a->now, err);
}

static int
pg_user_log_update(struct store *st, const char *address,
    const unsigned char *old, size_t old_len, const struct store_log *log,
    int64_t now, struct smimp_err *err)
{
	struct store_log_update_args a = { address, old, old_len, log, now };

	return txn(pg(st), begin_write, user_log_update_run, &a, now, err);
}

/* A bytea column of a result, malloc'd with a NUL after it. */
static int
blob_copy(const PGresult *res, int row, int col, unsigned char **out,
    size_t *len, struct smimp_err *err)
{
	size_t n = (size_t)PQgetlength(res, row, col);

	*out = malloc(n + 1);
	if (*out == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (n > 0)
		memcpy(*out, PQgetvalue(res, row, col), n);
	(*out)[n] = '\0';
	*len = n;
	return STORE_OK;
}

/* The one bytea a query finds: STORE_OK malloc'd, or NOT_FOUND. */
static int
blob_get(struct pg_store *s, const char *sql, const char *key,
    unsigned char **out, size_t *len, struct smimp_err *err)
{
	PGresult *res;
	int r;

	*out = NULL;
	*len = 0;
	res = read_query(s, err, sql, "t", key);
	if (res == NULL)
		return STORE_ERROR;
	r = PQntuples(res) == 0 ? STORE_NOT_FOUND :
	    blob_copy(res, 0, 0, out, len, err);
	PQclear(res);
	return r;
}

static int
pg_user_get(struct store *st, const char *address, unsigned char **log,
    size_t *len, struct smimp_err *err)
{
	return blob_get(pg(st), "SELECT log FROM users WHERE address = $1",
	    address, log, len, err);
}

static int queue_gone(struct pg_conn *, const PGresult *,
    struct smimp_err *);

/*
 * The account, its mailbox, its tombstones, whom it wrote to, what it
 * sent that still waits in the relay queue and the invitations still
 * pending for its address, in one transaction: an address given again
 * later inherits nothing, not even a bounce of the old mail, and a
 * token kept from before cannot take it back.  The bodies lose their
 * references.
 */
static int
user_del_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	static const char *const gone[] = {
		"DELETE FROM mailbox_pending WHERE recipient = $1",
		"DELETE FROM user_devices WHERE address = $1",
		"DELETE FROM mailbox_usage WHERE recipient = $1",
		"DELETE FROM tombstones WHERE recipient = $1",
		"DELETE FROM correspondents WHERE local = $1",
		"DELETE FROM policies WHERE address = $1",
		"DELETE FROM policy_entries WHERE address = $1",
		"DELETE FROM consent_allowance WHERE recipient = $1",
		"DELETE FROM consent_counted WHERE recipient = $1",
		"DELETE FROM sent_states WHERE sender = $1",
		"DELETE FROM prekeys WHERE address = $1",
		"DELETE FROM prekey_pools WHERE address = $1",
		"DELETE FROM invites WHERE address = $1",
	};
	const struct store_user_args *a = arg;
	PGresult *res;
	int64_t n;
	size_t i;
	int r;

	(void)s;
	n = exec_sql(c, err, "DELETE FROM users WHERE address = $1", "t",
	    a->address);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	/* The queue first, then the mailbox: the order submit_run takes. */
	res = query(c, err, "DELETE FROM outbound WHERE sender = $1 "
	    "RETURNING sender, size, body", "t", a->address);
	if (res == NULL)
		return STORE_ERROR;
	r = queue_gone(c, res, err);
	PQclear(res);
	if (r != 0)
		return STORE_ERROR;
	if (recipient_lock(c, a->address, NULL, err) != 0)
		return STORE_ERROR;
	res = query(c, err, "DELETE FROM mailbox WHERE recipient = $1 "
	    "RETURNING recipient, size, body", "t", a->address);
	if (res == NULL)
		return STORE_ERROR;
	r = mailbox_gone(c, res, err);
	PQclear(res);
	for (i = 0; r == 0 && i < sizeof(gone) / sizeof(gone[0]); i++)
		if (exec_sql(c, err, gone[i], "t", a->address) < 0)
			r = -1;
	return r == 0 ? STORE_OK : STORE_ERROR;
}

static int
pg_user_del(struct store *st, const char *address, int64_t now,
    struct smimp_err *err)
{
	struct store_user_args a = { address, NULL, now };

	return txn(pg(st), begin_write, user_del_run, &a, now, err);
}

/*
 * fn for each user in address order, a page at a time, no connection
 * held while fn runs.  Every account here was made with its devices:
 * none is ever unsynced.
 */
static int
pg_user_list(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	char last[ADDRESS_MAX + 8] = "";
	PGresult *res;
	int i, n;

	do {
		res = read_query(pg(st), err, "SELECT address, log FROM users "
		    "WHERE address > $1 ORDER BY address LIMIT 256", "t", last);
		if (res == NULL)
			return STORE_ERROR;
		n = PQntuples(res);
		for (i = 0; i < n; i++)
			if (fn(col_text(res, i, 0), (const unsigned char *)
			    PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i,
			    1), arg) != 0) {
				PQclear(res);
				return store_stopped(err);
			}
		if (n > 0)
			col_copy(res, n - 1, 0, last, sizeof(last));
		PQclear(res);
	} while (n == PAGE);
	return STORE_OK;
}

static int
pg_user_list_unsynced(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	(void)st;
	(void)fn;
	(void)arg;
	(void)err;
	return STORE_OK;
}

/* ---- invitations ---- */

static int
invite_add_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct store_invite_args *a = arg;

	(void)s;
	return exec_sql(c, err, "INSERT INTO invites (hash, address, expires) "
	    "VALUES ($1, $2, $3)", "bti", a->hash, (size_t)INVITE_HASH_SIZE,
	    a->address, a->when) == 1 ? STORE_OK : STORE_ERROR;
}

static int
pg_invite_add(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, int64_t expires, struct smimp_err *err)
{
	struct store_invite_args a = { hash, address, expires, NULL };

	return txn(pg(st), begin_write, invite_add_run, &a, 0, err);
}

static int
pg_invite_check(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    int64_t now, char address[ADDRESS_MAX + 1], struct smimp_err *err)
{
	PGresult *res;
	int r = STORE_NOT_FOUND;

	res = read_query(pg(st), err, "SELECT address FROM invites WHERE "
	    "hash = $1 AND expires >= $2", "bi", hash, (size_t)INVITE_HASH_SIZE,
	    now);
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) > 0) {
		r = STORE_OK;
		if ((size_t)snprintf(address, ADDRESS_MAX + 1, "%s",
		    col_text(res, 0, 0)) > ADDRESS_MAX)
			r = smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
			    "stored value is too long");
	}
	PQclear(res);
	return r;
}

static int
invite_redeem_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct store_invite_args *a = arg;
	int64_t n;

	(void)s;
	n = exec_sql(c, err, "DELETE FROM invites WHERE hash = $1 AND "
	    "address = $2 AND expires >= $3", "bti", a->hash,
	    (size_t)INVITE_HASH_SIZE, a->address, a->when);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	/* EXISTS rolls back: the invitation stays for another try. */
	return user_insert(c, a->address, a->log, a->when, err);
}

static int
pg_invite_redeem(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, const struct store_log *log, int64_t now,
    struct smimp_err *err)
{
	struct store_invite_args a = { hash, address, now, log };

	return txn(pg(st), begin_write, invite_redeem_run, &a, now, err);
}

/* Invitations are made by hand, a few at a time: one query for all. */
static int
pg_invite_list(struct store *st, int (*fn)(const char *, int64_t, void *),
    void *arg, struct smimp_err *err)
{
	PGresult *res;
	int i, n, r = STORE_OK;

	res = read_query(pg(st), err, "SELECT address, expires FROM invites "
	    "ORDER BY address, expires", "");
	if (res == NULL)
		return STORE_ERROR;
	n = PQntuples(res);
	for (i = 0; i < n && r == STORE_OK; i++)
		if (fn(col_text(res, i, 0), col_int(res, i, 1), arg) != 0)
			r = store_stopped(err);
	PQclear(res);
	return r;
}

/* ---- nonces ---- */

/* Claim (signer, nonce) inside a transaction: STORE_OK or STORE_REPLAY. */
static int
nonce_put(struct pg_conn *c, const char *signer, const char *nonce,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	int64_t n;

	/* One that expired by now is free again, swept or not. */
	n = exec_sql(c, err, "INSERT INTO nonces (signer, nonce, expires) "
	    "VALUES ($1, $2, $3) ON CONFLICT (signer, nonce) DO UPDATE SET "
	    "expires = excluded.expires WHERE nonces.expires < $4", "ttii",
	    signer, nonce, expires, now);
	return n < 0 ? STORE_ERROR : n == 0 ? STORE_REPLAY : STORE_OK;
}

static int
nonce_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct store_nonce_args *a = arg;

	(void)s;
	return nonce_put(c, a->signer, a->nonce, a->expires, a->now, err);
}

static int
pg_nonce_claim(struct store *st, const char *signer, const char *nonce,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	struct store_nonce_args a = { signer, nonce, expires, now };

	return txn(pg(st), begin_write, nonce_run, &a, now, err);
}

/* ---- bodies: in ---- */

/*
 * A body for the rows of one transaction: inline (a copy in each row),
 * or stored once, in chunks, when the first row takes it, and counted
 * in bodies.refs by the rows that name it.
 */
struct pg_body {
	const struct store_body *b;
	int fd;			/* b->path, open; else -1 */
	uint64_t size;
	int in;			/* inline */
	int64_t id;		/* stored by this run of the transaction */
	int64_t refs;		/* rows of this run that name it */
};

/* An inline body's bytes to bind: never NULL, which would be SQL NULL. */
static const void *
inline_bytes(const struct pg_body *pb)
{
	static const unsigned char none[1];

	return pb->b->data != NULL ? pb->b->data : none;
}

/*
 * Before the transaction: its size, and a spooled file opened, so that
 * every run of the transaction reads the same file.
 */
static int
body_prepare(struct pg_body *pb, const struct store_body *b,
    struct smimp_err *err)
{
	struct stat sb;

	memset(pb, 0, sizeof(*pb));
	pb->b = b;
	pb->fd = -1;
	/* As the SQLite store: spooled uploads never go inline. */
	pb->in = b->path == NULL && b->len <= STORE_INLINE_MAX;
	if (b->path == NULL) {
		pb->size = b->len;
		return b->data == NULL && b->len > 0 ? smimp_err_set(err,
		    SMIMP_EXIT_FAIL, "store: a body without data") : 0;
	}
	pb->fd = open(b->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (pb->fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    b->path);
	/* Only a regular file is a body: never a link to elsewhere. */
	if (fstat(pb->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		(void)close(pb->fd);
		pb->fd = -1;
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: '%s' is not "
		    "a regular file", b->path);
	}
	pb->size = (uint64_t)sb.st_size;
	return 0;
}

static void
body_finish(struct pg_body *pb)
{
	if (pb->fd >= 0)
		(void)close(pb->fd);
	pb->fd = -1;
}

/* A chunk of a spooled file, at off: len bytes into buf. */
static int
chunk_read(struct pg_body *pb, uint64_t off, unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	size_t got;

	if ((off == 0 && lseek(pb->fd, 0, SEEK_SET) != 0) ||
	    fd_read_full(pb->fd, buf, len, &got) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'",
		    pb->b->path);
	return got == len ? 0 : smimp_err_set(err, SMIMP_EXIT_FAIL, "store: "
	    "'%s' changed while it was stored", pb->b->path);
}

/* A fresh id for a body, its row made with no reference yet. */
static int64_t
body_new(struct pg_conn *c, uint64_t size, struct smimp_err *err)
{
	int64_t id, n;
	int tries;

	for (tries = 0; tries < STORE_ID_TRIES; tries++) {
		id = store_random_id();
		n = exec_sql(c, err, "INSERT INTO bodies (id, size, refs) "
		    "VALUES ($1, $2, 0) ON CONFLICT (id) DO NOTHING", "ii", id,
		    (int64_t)size);
		if (n != 0)
			return n < 0 ? -1 : id;
	}
	smimp_err_set(err, SMIMP_EXIT_FAIL, "store: no fresh body id");
	return -1;
}

/* Store pb's bytes, CHUNK bytes a row: memory stays constant. */
static int
body_store(struct pg_conn *c, struct pg_body *pb, struct smimp_err *err)
{
	const unsigned char *p;
	unsigned char *buf = NULL;
	uint64_t off;
	int64_t id, k;
	size_t len;
	int ret = -1;

	id = body_new(c, pb->size, err);
	if (id < 0)
		return -1;
	if (pb->fd >= 0 && (buf = malloc(CHUNK)) == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (off = 0, k = 0; off < pb->size; off += len, k++) {
		len = pb->size - off < CHUNK ? (size_t)(pb->size - off) : CHUNK;
		p = buf != NULL ? buf : pb->b->data + off;
		if ((buf != NULL && chunk_read(pb, off, buf, len, err) != 0) ||
		    exec_sql(c, err, "INSERT INTO body_chunks (body, n, data) "
		    "VALUES ($1, $2, $3)", "iib", id, k, p, len) < 0)
			goto out;
	}
	pb->id = id;
	ret = 0;
out:
	free(buf);
	return ret;
}

/* A row is about to name pb: stored now if it is the first. */
static int
body_take(struct pg_conn *c, struct pg_body *pb, struct smimp_err *err)
{
	if (pb->in)
		return 0;
	if (pb->id == 0 && body_store(c, pb, err) != 0)
		return -1;
	pb->refs++;
	return 0;
}

/* At the end of a run: the rows that named pb, counted; none, gone. */
static int
body_settle(struct pg_conn *c, struct pg_body *pb, struct smimp_err *err)
{
	if (pb->id == 0)
		return 0;
	if (pb->refs == 0)
		return body_unref(c, pb->id, err);
	return exec_sql(c, err, "UPDATE bodies SET refs = $2 WHERE id = $1",
	    "ii", pb->id, pb->refs) == 1 ? 0 : -1;
}

/* ---- bodies: out ---- */

/* A new file to write and read back (name_beside's make). */
static int
create_rw(const char *name, void *arg)
{
	(void)arg;
	return open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
}

/*
 * Body id's chunks into an unlinked file in the spool, at its start
 * (*fd): STORE_OK, or STORE_NOT_FOUND when a chunk is gone.  Inside a
 * read-only transaction, which sees all of them or none.
 */
static int
chunks_to_fd(struct pg_store *s, struct pg_conn *c, int64_t id,
    uint64_t size, int *fd, struct smimp_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	PGresult *res;
	uint64_t off = 0;
	size_t len;
	int64_t k;
	int f, r = STORE_ERROR;

	if ((size_t)snprintf(path, sizeof(path), "%s/out", s->spool) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path too "
		    "long");
	f = name_beside(path, tmp, sizeof(tmp), create_rw, NULL, err);
	if (f < 0)
		return STORE_ERROR;
	(void)unlink(tmp);
	for (k = 0; off < size; k++, off += len) {
		res = query(c, err, "SELECT data FROM body_chunks WHERE "
		    "body = $1 AND n = $2", "ii", id, k);
		if (res == NULL)
			goto out;
		len = PQntuples(res) > 0 ? (size_t)PQgetlength(res, 0, 0) : 0;
		if (len == 0 || len > size - off || (len != CHUNK &&
		    off + len != size)) {
			r = PQntuples(res) == 0 ? STORE_NOT_FOUND :
			    smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
			    "stored body is damaged");
			PQclear(res);
			goto out;
		}
		if (fd_write_all(f, PQgetvalue(res, 0, 0), len) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write a "
			    "body into the spool");
			PQclear(res);
			goto out;
		}
		PQclear(res);
	}
	if (lseek(f, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read back a body");
		goto out;
	}
	*fd = f;
	f = -1;
	r = STORE_OK;
out:
	if (f >= 0)
		(void)close(f);
	return r;
}

/* A body to open: the row's query (its columns body, data, size). */
struct open_args {
	const char *sql;
	const char *owner, *device;	/* NULL: the query has only the id */
	int64_t id;
	int fd;
	uint64_t len;
};

static int
open_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct open_args *a = arg;
	PGresult *res;
	int r;

	a->fd = -1;
	a->len = 0;
	res = a->owner != NULL ? query(c, err, a->sql, "tit", a->owner, a->id,
	    a->device) : query(c, err, a->sql, "i", a->id);
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	a->len = (uint64_t)col_int(res, 0, 2);
	if (PQgetisnull(res, 0, 0))
		r = store_blob_fd(PQgetvalue(res, 0, 1),
		    (size_t)PQgetlength(res, 0, 1), &a->fd, &a->len, err);
	else
		r = chunks_to_fd(s, c, col_int(res, 0, 0), a->len, &a->fd,
		    err);
	PQclear(res);
	return r;
}

/* The body of the row a query finds, as a file to read from its start. */
static int
body_open(struct pg_store *s, struct open_args *a, int *fd, uint64_t *len,
    struct smimp_err *err)
{
	int r;

	r = txn(s, begin_read, open_run, a, 0, err);
	*fd = r == STORE_OK ? a->fd : -1;
	*len = r == STORE_OK ? a->len : 0;
	if (r != STORE_OK && a->fd >= 0)
		(void)close(a->fd);
	return r;
}

/* ---- mailboxes ---- */

#define CHECK_QUOTA	1	/* the recipient's mailbox quota */
#define CHECK_STRANGER	2	/* the sender domain's stranger quota */
/*
 * The tombstone of an acknowledged copy holds a redelivery off, from a
 * server retrying after a lost answer or a user submitting again, for
 * limits.idempotency seconds.
 */
#define CHECK_ACKED	4

/*
 * Is the triple stored, or acknowledged within the idempotency window
 * (when checks asks)?  1, 0 or -1.
 */
static int
mailbox_known(struct pg_store *s, struct pg_conn *c,
    const struct store_delivery *d, int64_t now, int checks,
    struct smimp_err *err)
{
	const struct store_limits *lim = &s->base.limits;

	return first(c, err, NULL, NULL, 0, "SELECT 1 FROM mailbox WHERE "
	    "recipient = $1 AND sender = $2 AND message_id = $3 UNION ALL "
	    "SELECT 1 FROM tombstones WHERE $6::boolean AND recipient = $1 AND "
	    "sender = $2 AND message_id = $3 AND ($4::bigint <= 0 OR "
	    "acked >= $5::bigint)", "tttiii", d->recipient, d->sender,
	    d->message_id, lim->idempotency, now - lim->idempotency,
	    (int64_t)((checks & CHECK_ACKED) != 0));
}

/*
 * Would size more bytes pass the quotas checks asks for, usage being
 * what the mailbox holds (its lock said)?  STORE_OK (*stranger: the
 * recipient never wrote to the sender's domain, whose site's count for
 * the day, named in site, is then locked, to be counted), STORE_QUOTA
 * or STORE_ERROR.
 */
static int
mailbox_room(struct pg_store *s, struct pg_conn *c,
    const struct store_delivery *d, uint64_t size, int64_t usage,
    int64_t now, int checks, int *stranger, char site[ADDRESS_DOMAIN_MAX + 1],
    struct smimp_err *err)
{
	const struct store_limits *lim = &s->base.limits;
	const char *dom = store_domain_of(d->sender);
	int64_t v = 0;
	int r;

	*stranger = 0;
	if ((checks & CHECK_QUOTA) && lim->mailbox_bytes > 0 &&
	    (uint64_t)(usage > 0 ? usage : 0) + size > lim->mailbox_bytes)
		return STORE_QUOTA;
	if (!(checks & CHECK_STRANGER) || lim->stranger_domain_bytes == 0)
		return STORE_OK;
	r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM correspondents WHERE "
	    "local = $1 AND domain = $2", "tt", d->recipient, dom);
	if (r != 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	*stranger = 1;
	/*
	 * The count for the day of the domain's site (its subdomains share
	 * it), locked until it is counted.
	 */
	site_of(dom, site);
	r = first(c, err, &v, NULL, 0, "INSERT INTO stranger_bytes (domain, "
	    "day, bytes) VALUES ($1, $2, 0) ON CONFLICT (domain, day) DO "
	    "UPDATE SET bytes = stranger_bytes.bytes RETURNING bytes", "ti",
	    site, now / STORE_DAY_S);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : smimp_err_set(err,
		    SMIMP_EXIT_FAIL, "store: no count to lock");
	return (uint64_t)(v > 0 ? v : 0) + size >
	    lim->stranger_domain_bytes ? STORE_QUOTA : STORE_OK;
}

/*
 * A new mailbox row under a fresh random id, counted in the recipient's
 * usage (whose row its lock made) and pending for each receiving device
 * but except, in one statement: its seq, or -1.
 */
static int64_t
mailbox_insert(struct pg_conn *c, const struct store_delivery *d,
    const struct pg_body *pb, int64_t now, const char *sent_by,
    struct smimp_err *err)
{
	PGresult *res;
	int64_t seq = -1;
	int tries;

	for (tries = 0; tries < STORE_ID_TRIES && seq < 0; tries++) {
		res = query(c, err, "WITH m AS (INSERT INTO mailbox (id, "
		    "recipient, sender, message_id, body, data, size, received, "
		    "identity_pending, sent) VALUES ($1, $2, $3, $4, $5, $6, "
		    "$7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING seq), "
		    "u AS (UPDATE mailbox_usage SET bytes = bytes + $7 WHERE "
		    "recipient = $2 AND EXISTS (SELECT 1 FROM m)), "
		    "p AS (INSERT INTO mailbox_pending (recipient, device, seq) "
		    "SELECT d.address, d.device, m.seq FROM user_devices d, m "
		    "WHERE d.address = $2 AND d.device <> $11) SELECT seq FROM m",
		    "ittt" "IB" "iiiit", store_random_id(), d->recipient,
		    d->sender, d->message_id, pb->in ? 0 : pb->id,
		    pb->in ? inline_bytes(pb) : NULL,
		    pb->in ? pb->b->len : (size_t)0, (int64_t)pb->size, now,
		    (int64_t)(sent_by == NULL || sent_by[0] != '\0'),
		    (int64_t)(sent_by != NULL),
		    sent_by != NULL ? sent_by : "");
		if (res == NULL)
			return -1;
		if (PQntuples(res) > 0)
			seq = col_int(res, 0, 0);
		PQclear(res);
	}
	if (seq < 0)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: no fresh mailbox "
		    "id");
	return seq;
}

/*
 * One copy into a mailbox, inside a transaction: STORE_OK (stored, or
 * known already), STORE_QUOTA or STORE_ERROR.  sent_by: NULL for a
 * message to the recipient, pending for each of its devices; for a sent
 * copy, the device that sent it ("" the identity key), which is the one
 * device it is not pending for.
 */
static int
mailbox_put(struct pg_store *s, struct pg_conn *c,
    const struct store_delivery *d, struct pg_body *pb, int64_t now,
    int checks, const char *sent_by, struct smimp_err *err)
{
	char site[ADDRESS_DOMAIN_MAX + 1];
	int64_t seq, usage = 0;
	int r, stranger;

	if (recipient_lock(c, d->recipient, &usage, err) != 0)
		return STORE_ERROR;
	/*
	 * The account may have gone since the request was checked: what
	 * came for it goes with it, as if deleted by deluser, and never
	 * waits for the address's next owner.  Read after the lock, which
	 * deluser takes too, so that one of the two sees the other.
	 */
	r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = $1", "t", d->recipient);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	r = mailbox_known(s, c, d, now, checks, err);
	if (r != 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	r = mailbox_room(s, c, d, pb->size, usage, now, checks, &stranger,
	    site, err);
	if (r != STORE_OK)
		return r;
	if (body_take(c, pb, err) != 0)
		return STORE_ERROR;
	seq = mailbox_insert(c, d, pb, now, sent_by, err);
	if (seq < 0)
		return STORE_ERROR;
	if (stranger && exec_sql(c, err, "INSERT INTO stranger_bytes (domain, "
	    "day, bytes) VALUES ($1, $2, $3) ON CONFLICT (domain, day) DO "
	    "UPDATE SET bytes = stranger_bytes.bytes + excluded.bytes", "tii",
	    site, now / STORE_DAY_S, (int64_t)pb->size) < 0)
		return STORE_ERROR;
	return STORE_OK;
}

/*
 * The bodies of n deliveries: one struct pg_body for each run of
 * deliveries in a row with the same body, which they share.
 */
struct pg_bodies {
	size_t n;
	struct pg_body *pb;
	size_t *of;		/* delivery i's body: pb[of[i]] */
};

static void
bodies_finish(struct pg_bodies *bs)
{
	size_t i;

	for (i = 0; bs->pb != NULL && i < bs->n; i++)
		body_finish(&bs->pb[i]);
	free(bs->pb);
	free(bs->of);
	memset(bs, 0, sizeof(*bs));
}

static int
bodies_prepare(struct pg_bodies *bs, const struct store_delivery *d,
    size_t n, struct smimp_err *err)
{
	size_t i;

	memset(bs, 0, sizeof(*bs));
	bs->pb = calloc(n + 1, sizeof(*bs->pb));
	bs->of = calloc(n + 1, sizeof(*bs->of));
	if (bs->pb == NULL || bs->of == NULL) {
		bodies_finish(bs);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && d[i].body == d[i - 1].body) {
			bs->of[i] = bs->of[i - 1];
			continue;
		}
		bs->of[i] = bs->n;
		if (body_prepare(&bs->pb[bs->n], d[i].body, err) != 0) {
			bodies_finish(bs);
			return -1;
		}
		bs->n++;
	}
	return 0;
}

struct deliver_args {
	const struct store_nonce *nonce;
	const struct store_delivery *d;
	size_t n;
	int *results;
	int64_t now;
	struct pg_bodies bs;
	const char **names;	/* the recipients, to lock */
};

static int
deliver_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct deliver_args *a = arg;
	size_t i;
	int r;

	for (i = 0; i < a->bs.n; i++)
		a->bs.pb[i].id = a->bs.pb[i].refs = 0;
	if (a->nonce != NULL && (r = nonce_put(c, a->nonce->signer,
	    a->nonce->nonce, a->nonce->expires, a->now, err)) != STORE_OK)
		return r;
	/* Several: locked in order first (one, mailbox_put locks anyway). */
	if (a->n > 1 && recipients_lock(c, a->names, a->n, err) != 0)
		return STORE_ERROR;
	for (i = 0; i < a->n; i++) {
		r = mailbox_put(s, c, &a->d[i], &a->bs.pb[a->bs.of[i]], a->now,
		    CHECK_QUOTA | CHECK_STRANGER | CHECK_ACKED, NULL, err);
		if (r == STORE_ERROR)
			return STORE_ERROR;
		a->results[i] = r;
	}
	for (i = 0; i < a->bs.n; i++)
		if (body_settle(c, &a->bs.pb[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
pg_deliver(struct store *st, const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results, int64_t now,
    struct smimp_err *err)
{
	struct deliver_args a = { nonce, d, n, results, now,
	    { 0, NULL, NULL }, NULL };
	size_t i;
	int r;

	a.names = calloc(n + 1, sizeof(*a.names));
	if (a.names == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < n; i++)
		a.names[i] = d[i].recipient;
	r = bodies_prepare(&a.bs, d, n, err);
	if (r == 0) {
		r = txn(pg(st), begin_write, deliver_run, &a, now, err);
		bodies_finish(&a.bs);
	}
	free(a.names);
	return r;
}

static int
pg_mailbox_list(struct store *st, const char *owner, const char *device,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err)
{
	struct mailbox_entry e;
	PGresult *res;
	int i, r = STORE_OK;

	device = store_device_key(device);
	/* seq is the arrival order; it never leaves the store. */
	if (device[0] == '\0')
		res = read_query(pg(st), err, "SELECT id, sender, message_id, "
		    "size, received, sent FROM mailbox WHERE recipient = $1 AND "
		    "identity_pending ORDER BY seq LIMIT $2", "ti", owner,
		    (int64_t)MAILBOX_PAGE);
	else
		res = read_query(pg(st), err, "SELECT m.id, m.sender, "
		    "m.message_id, m.size, m.received, m.sent FROM "
		    "mailbox_pending p JOIN mailbox m ON m.seq = p.seq WHERE "
		    "p.recipient = $1 AND p.device = $2 ORDER BY p.seq LIMIT $3",
		    "tti", owner, device, (int64_t)MAILBOX_PAGE);
	if (res == NULL)
		return STORE_ERROR;
	for (i = 0; i < PQntuples(res) && r == STORE_OK; i++) {
		memset(&e, 0, sizeof(e));
		e.id = col_int(res, i, 0);
		col_copy(res, i, 1, e.sender, sizeof(e.sender));
		col_copy(res, i, 2, e.message_id, sizeof(e.message_id));
		e.size = (uint64_t)col_int(res, i, 3);
		e.received = col_int(res, i, 4);
		e.sent = col_int(res, i, 5) != 0;
		if (fn(&e, arg) != 0)
			r = store_stopped(err);
	}
	PQclear(res);
	return r;
}

static int
pg_mailbox_open(struct store *st, const char *owner, const char *device,
    int64_t id, int *fd, uint64_t *len, struct smimp_err *err)
{
	struct open_args a = { "SELECT body, data, size FROM mailbox WHERE "
	    "recipient = $1 AND id = $2 AND CASE WHEN $3::text = '' THEN "
	    "identity_pending ELSE EXISTS (SELECT 1 FROM mailbox_pending p "
	    "WHERE p.recipient = $1 AND p.device = $3 AND p.seq = mailbox.seq) "
	    "END", owner, store_device_key(device), id, -1, 0 };

	return body_open(pg(st), &a, fd, len, err);
}

struct ack_args {
	const char *owner, *device;
	const int64_t *ids;
	size_t n, acked;
	int64_t now;
};

/* A message no device is pending for leaves. */
static int
ack_drop(struct pg_conn *c, int64_t seq, int64_t now, struct smimp_err *err)
{
	char seqs[32];

	(void)snprintf(seqs, sizeof(seqs), "{%" PRId64 "}", seq);
	return mailbox_drop(c, seqs, now, err);
}

/*
 * Acknowledge one id for a->device: 0 (counted in a->acked if it was
 * pending for it), -1.
 */
static int
ack_one(struct pg_conn *c, struct ack_args *a, int64_t id,
    struct smimp_err *err)
{
	PGresult *res;
	int64_t seq, n;
	int identity, r;

	res = query(c, err, "SELECT seq, identity_pending FROM mailbox WHERE "
	    "recipient = $1 AND id = $2", "ti", a->owner, id);
	if (res == NULL)
		return -1;
	r = PQntuples(res);
	seq = r > 0 ? col_int(res, 0, 0) : 0;
	identity = r > 0 && col_int(res, 0, 1) != 0;
	PQclear(res);
	if (r == 0)
		return 0;
	if (a->device[0] == '\0') {
		if (!identity)
			return 0;
		identity = 0;
	} else {
		n = exec_sql(c, err, "DELETE FROM mailbox_pending WHERE "
		    "recipient = $1 AND device = $2 AND seq = $3", "tti",
		    a->owner, a->device, seq);
		if (n <= 0)
			return (int)n;
	}
	a->acked++;
	r = identity ? 1 : first(c, err, NULL, NULL, 0, "SELECT 1 FROM "
	    "mailbox_pending WHERE seq = $1 LIMIT 1", "i", seq);
	if (r <= 0)
		return r < 0 ? -1 : ack_drop(c, seq, a->now, err);
	/* Others still to fetch it: it stays, for retention at most. */
	return exec_sql(c, err, "UPDATE mailbox SET identity_pending = "
	    "$1::boolean, first_ack = coalesce(first_ack, $2::bigint) WHERE "
	    "seq = $3", "iii", (int64_t)identity, a->now, seq) < 0 ? -1 : 0;
}

static int
ack_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct ack_args *a = arg;
	size_t i;

	(void)s;
	a->acked = 0;
	if (recipient_lock(c, a->owner, NULL, err) != 0)
		return STORE_ERROR;
	for (i = 0; i < a->n; i++)
		if (ack_one(c, a, a->ids[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
pg_mailbox_ack(struct store *st, const char *owner, const char *device,
    const int64_t *ids, size_t n, size_t *acked, int64_t now,
    struct smimp_err *err)
{
	struct ack_args a = { owner, store_device_key(device), ids, n, 0, now };
	int r;

	r = txn(pg(st), begin_write, ack_run, &a, now, err);
	if (r == STORE_OK)
		*acked = a.acked;
	return r;
}

/* ---- submissions ---- */

struct submit_args {
	const struct store_submission *sub;
	int64_t now;
	struct pg_body pb;
	const char **names;	/* the local recipients, and the sender */
	int sent;		/* a sent copy may be made */
};

/* ---- records of sent messages, written inside other transactions ---- */

#define SENT_UPSERT_TAIL "ON CONFLICT (sender, message_id, domain) DO " \
    "UPDATE SET state = excluded.state, recipients = excluded.recipients, " \
    "detail = excluded.detail, at = excluded.at"
/* A bounce's record, from its queue entry while the owner holds it. */
#define SENT_UPSERT_FROM_OUTBOUND "INSERT INTO sent_states (sender, " \
    "message_id, domain, state, recipients, detail, at) SELECT sender, " \
    "message_id, domain, $1, recipients, $3, $2 FROM outbound WHERE " \
    "lease_owner = $4 AND id = $5 " SENT_UPSERT_TAIL

static int
sent_upsert(struct pg_conn *c, const struct store_sent *e,
    struct smimp_err *err)
{
	return exec_sql(c, err, "INSERT INTO sent_states (sender, "
	    "message_id, domain, state, recipients, detail, at) VALUES ($1, "
	    "$2, $3, $4, $5, $6, $7) " SENT_UPSERT_TAIL, "tttitti", e->sender,
	    e->message_id, e->domain, (int64_t)e->state, e->recipients,
	    e->text, e->at) < 0 ? -1 : 0;
}

/*
 * May the submission make a sent copy?  Not when no device but the one
 * that submitted receives: then the sender's mailbox is not locked.
 * 1, 0 or -1.
 */
static int
sent_possible(struct pg_conn *c, const struct store_submission *sub,
    struct smimp_err *err)
{
	if (store_device_key(sub->device)[0] != '\0')
		return 1;
	return first(c, err, NULL, NULL, 0, "SELECT 1 FROM user_devices WHERE "
	    "address = $1 LIMIT 1", "t", sub->sender);
}

/*
 * The sender's own copy, filed as sent (store.h), when sent_possible;
 * none over the sender's quota.
 */
static int
sent_copy(struct pg_store *s, struct pg_conn *c, struct submit_args *a,
    struct smimp_err *err)
{
	const struct store_submission *sub = a->sub;
	struct store_delivery d;
	int r;

	if (!a->sent)
		return STORE_OK;
	d.recipient = d.sender = sub->sender;
	d.message_id = sub->message_id;
	d.body = sub->body;
	r = mailbox_put(s, c, &d, &a->pb, a->now, CHECK_QUOTA | CHECK_ACKED,
	    store_device_key(sub->device), err);
	return r == STORE_QUOTA ? STORE_OK : r;
}

/*
 * One relay queue entry, queued once per (domain, sender, message id):
 * 1 queued, 0 queued before, -1.
 */
static int
outbound_put(struct pg_conn *c, struct submit_args *a,
    const struct store_outbound_new *ob, struct smimp_err *err)
{
	const struct store_submission *sub = a->sub;
	struct pg_body *pb = &a->pb;
	int64_t n;

	if (body_take(c, pb, err) != 0)
		return -1;
	n = exec_sql(c, err, "INSERT INTO outbound (domain, sender, "
	    "recipients, all_recipients, message_id, body, data, size, stamp, "
	    "stamp_date, first_try, next_try, work, introduction, "
	    "stamp_device) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
	    "$11, $11, $12, $13, $14) ON CONFLICT (domain, sender, message_id) "
	    "DO NOTHING", "ttttt" "IB" "ittittt", ob->domain, sub->sender,
	    ob->recipients, ob->stamp != NULL ? ob->recipients : sub->all,
	    sub->message_id, pb->in ? 0 : pb->id,
	    pb->in ? inline_bytes(pb) : NULL, pb->in ? pb->b->len : (size_t)0,
	    (int64_t)pb->size, ob->stamp != NULL ? ob->stamp : sub->stamp,
	    sub->stamp_date, a->now,
	    store_or_empty(ob->work), store_or_empty(ob->introduction),
	    store_or_empty(sub->stamp_device));
	if (n < 0)
		return -1;
	if (n == 0) {
		pb->refs -= !pb->in;
		return 0;
	}
	return exec_sql(c, err, "INSERT INTO queue_usage (sender, bytes) "
	    "VALUES ($1, $2) ON CONFLICT (sender) DO UPDATE SET bytes = "
	    "queue_usage.bytes + excluded.bytes", "ti", sub->sender,
	    (int64_t)pb->size) < 0 ? -1 : 1;
}

/* The relay entries; over the sender's queue quota: STORE_QUOTA. */
static int
submit_queue(struct pg_store *s, struct pg_conn *c, struct submit_args *a,
    struct smimp_err *err)
{
	const struct store_submission *sub = a->sub;
	int64_t bytes = 0;
	int queued = 0, r;
	size_t i;

	for (i = 0; i < sub->nobs; i++) {
		r = outbound_put(c, a, &sub->obs[i], err);
		if (r < 0)
			return STORE_ERROR;
		queued += r;
		/* The sender wrote to that domain: no stranger to it now. */
		if (exec_sql(c, err, "INSERT INTO correspondents (local, "
		    "domain) VALUES ($1, $2) ON CONFLICT (local, domain) DO "
		    "NOTHING", "tt", sub->sender, sub->obs[i].domain) < 0)
			return STORE_ERROR;
	}
	/* What the sender has queued, this submission's entries included. */
	if (queued == 0 || s->base.limits.sender_queue_bytes == 0)
		return STORE_OK;
	r = first(c, err, &bytes, NULL, 0, "SELECT bytes FROM queue_usage "
	    "WHERE sender = $1", "t", sub->sender);
	if (r < 0)
		return STORE_ERROR;
	return r == 1 && bytes > 0 && (uint64_t)bytes >
	    s->base.limits.sender_queue_bytes ? STORE_QUOTA : STORE_OK;
}

static int
submit_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct submit_args *a = arg;
	const struct store_submission *sub = a->sub;
	struct store_delivery d;
	size_t i;
	int r;

	a->pb.id = a->pb.refs = 0;
	r = nonce_put(c, sub->signer, sub->nonce, sub->nonce_expires, a->now,
	    err);
	if (r == STORE_OK && sub->sent != NULL &&
	    sent_upsert(c, sub->sent, err) != 0)
		r = STORE_ERROR;
	if (r == STORE_OK)
		r = submit_queue(s, c, a, err);
	if (r == STORE_OK && (a->sent = sent_possible(c, sub, err)) < 0)
		r = STORE_ERROR;
	/*
	 * The queue's lock first, then the mailboxes' in order (one alone,
	 * mailbox_put locks anyway): one order for all.
	 */
	for (i = 0; i < sub->nlocal; i++)
		a->names[i] = sub->local[i];
	a->names[sub->nlocal] = sub->sender;
	if (r == STORE_OK && sub->nlocal + (size_t)a->sent > 1 &&
	    recipients_lock(c, a->names, sub->nlocal + (size_t)a->sent,
	    err) != 0)
		r = STORE_ERROR;
	for (i = 0; i < sub->nlocal && r == STORE_OK; i++) {
		d.recipient = sub->local[i];
		d.sender = sub->sender;
		d.message_id = sub->message_id;
		d.body = sub->body;
		r = mailbox_put(s, c, &d, &a->pb, a->now, CHECK_QUOTA |
		    CHECK_ACKED, NULL, err);
	}
	/* After the local copies: one to the sender is the sent copy too. */
	if (r == STORE_OK)
		r = sent_copy(s, c, a, err);
	if (r == STORE_OK && body_settle(c, &a->pb, err) != 0)
		r = STORE_ERROR;
	return r;
}

static int
pg_submit(struct store *st, const struct store_submission *sub, int64_t now,
    struct smimp_err *err)
{
	struct submit_args a;
	int r;

	memset(&a, 0, sizeof(a));
	a.sub = sub;
	a.now = now;
	a.names = calloc(sub->nlocal + 1, sizeof(*a.names));
	if (a.names == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	r = body_prepare(&a.pb, sub->body, err);
	if (r == 0) {
		r = txn(pg(st), begin_write, submit_run, &a, now, err);
		body_finish(&a.pb);
	}
	free(a.names);
	return r;
}

/* ---- the relay queue ---- */

/* ids as an array literal "{1,2}", malloc'd. */
static char *
id_list(const int64_t *ids, size_t n, struct smimp_err *err)
{
	size_t cap = n * 22 + 3, len = 0, i;
	char *s = malloc(cap);

	if (s == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	s[len++] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64,
		    i > 0 ? "," : "", ids[i]);
	(void)snprintf(s + len, cap - len, "}");
	return s;
}

/* A queue entry removed: whose queue, and by how much. */
struct gone_entry {
	const char *sender;
	int64_t size;
};

static int
gone_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gone_entry *)a)->sender,
	    ((const struct gone_entry *)b)->sender);
}

/*
 * The senders' queue counters, less what entries removed took (as
 * DELETE ... RETURNING sender, size, body gave them), in sender order:
 * one order for all that lock them; their bodies lose a reference.
 */
static int
queue_gone(struct pg_conn *c, const PGresult *res, struct smimp_err *err)
{
	struct gone_entry *g;
	int64_t sum;
	int i, k = PQntuples(res), ret = 0;

	g = calloc((size_t)k + 1, sizeof(*g));
	if (g == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < k; i++) {
		g[i].sender = col_text(res, i, 0);
		g[i].size = col_int(res, i, 1);
		if (!PQgetisnull(res, i, 2) && body_unref(c, col_int(res, i, 2),
		    err) != 0)
			ret = -1;
	}
	qsort(g, (size_t)k, sizeof(*g), gone_cmp);
	for (i = 0; i < k && ret == 0; i++) {
		for (sum = g[i].size; i + 1 < k &&
		    strcmp(g[i + 1].sender, g[i].sender) == 0; i++)
			sum += g[i + 1].size;
		if (exec_sql(c, err, "UPDATE queue_usage SET bytes = bytes - $2 "
		    "WHERE sender = $1", "ti", g[i].sender, sum) < 0)
			ret = -1;
	}
	free(g);
	return ret;
}

/*
 * Remove the entries among ids that owner holds, inside a transaction:
 * the senders' queue counters follow, their bodies lose a reference.
 * How many went, or -1.
 */
static int64_t
outbound_remove(struct pg_conn *c, const char *owner, const int64_t *ids,
    size_t n, struct smimp_err *err)
{
	PGresult *res;
	char *list;
	int64_t k;

	list = id_list(ids, n, err);
	if (list == NULL)
		return -1;
	res = query(c, err, "DELETE FROM outbound WHERE id = ANY($1::bigint[]) "
	    "AND lease_owner = $2 RETURNING sender, size, body", "tt", list,
	    owner);
	free(list);
	if (res == NULL)
		return -1;
	k = queue_gone(c, res, err) == 0 ? PQntuples(res) : -1;
	PQclear(res);
	return k;
}

/* The columns outbound_fill reads, of the entries chosen after WHERE. */
#define CLAIM_SELECT "SELECT id, domain, sender, recipients, " \
    "all_recipients, message_id, size, stamp, stamp_date, attempts, " \
    "first_try, data, work, introduction, stamp_device, retry_now FROM " \
    "outbound WHERE "

/* Fill ob from a claimed row; -1 out of memory. */
static int
outbound_fill(const PGresult *res, int row, struct outbound *ob)
{
	memset(ob, 0, sizeof(*ob));
	ob->id = col_int(res, row, 0);
	col_copy(res, row, 1, ob->domain, sizeof(ob->domain));
	col_copy(res, row, 2, ob->sender, sizeof(ob->sender));
	ob->recipients = strdup(col_text(res, row, 3));
	ob->all = strdup(col_text(res, row, 4));
	col_copy(res, row, 5, ob->message_id, sizeof(ob->message_id));
	ob->len = (uint64_t)col_int(res, row, 6);
	col_copy(res, row, 7, ob->stamp, sizeof(ob->stamp));
	col_copy(res, row, 8, ob->stamp_date, sizeof(ob->stamp_date));
	ob->attempts = (unsigned int)col_int(res, row, 9);
	ob->first_try = col_int(res, row, 10);
	ob->work = strdup(col_text(res, row, 12));
	ob->introduction = strdup(col_text(res, row, 13));
	col_copy(res, row, 14, ob->stamp_device, sizeof(ob->stamp_device));
	ob->forced = col_int(res, row, 15) != 0;
	/* An inline body comes along: the relay sends it without a read. */
	if (!PQgetisnull(res, row, 11) &&
	    (uint64_t)PQgetlength(res, row, 11) == ob->len) {
		ob->data = malloc(ob->len > 0 ? ob->len : 1);
		if (ob->data != NULL && ob->len > 0)
			memcpy(ob->data, PQgetvalue(res, row, 11), ob->len);
	}
	if (ob->recipients == NULL || ob->all == NULL || ob->work == NULL ||
	    ob->introduction == NULL || (!PQgetisnull(res, row, 11) &&
	    ob->data == NULL)) {
		outbound_release(ob);
		return -1;
	}
	return 0;
}

struct claim_args {
	const char *owner;
	const int64_t *done;
	size_t ndone;
	int64_t now, lease_until;
	unsigned int domain_cap;
	uint64_t max_bytes;
	struct outbound *obs;
	size_t cap, n;
};

/* Lease the claimed entries to their owner. */
static int
claim_lease(struct pg_conn *c, struct claim_args *a, struct smimp_err *err)
{
	int64_t ids[64];
	char *list;
	size_t i, k;
	int64_t n = 0;

	for (i = 0; i < a->n; i += k) {
		for (k = 0; k < 64 && i + k < a->n; k++)
			ids[k] = a->obs[i + k].id;
		list = id_list(ids, k, err);
		if (list == NULL)
			return -1;
		n = exec_sql(c, err, "UPDATE outbound SET lease_owner = $1, "
		    "lease_until = $2 WHERE id = ANY($3::bigint[])", "tit",
		    a->owner, a->lease_until, list);
		free(list);
		if (n < 0)
			return -1;
	}
	return 0;
}

/*
 * READ COMMITTED: the entries are locked FOR UPDATE SKIP LOCKED, so
 * that workers of every node claiming at once take disjoint entries
 * without waiting; each row is checked again once locked.  The domain
 * cap is looked at, not locked: two nodes choosing at the same moment
 * may each add an owner to a domain at its cap.
 */
static int
claim_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct claim_args *a = arg;
	char domain[ADDRESS_DOMAIN_MAX + 1];
	uint64_t bytes = 0, size;
	PGresult *res;
	int i, r;

	(void)s;
	store_outbounds_release(a->obs, &a->n);
	if (a->ndone > 0 && outbound_remove(c, a->owner, a->done, a->ndone,
	    err) < 0)
		return STORE_ERROR;
	/*
	 * The domain of the entry due the longest that is free, among the
	 * domains fewer than domain_cap owners hold live leases in (the
	 * SQLite store's order, and by the same indexes: a claim reads
	 * the leased entries and those it passes over, not the queue).
	 */
	r = first(c, err, NULL, domain, sizeof(domain), "SELECT domain FROM "
	    "outbound WHERE next_try <= $1 AND NOT held AND (lease_until IS "
	    "NULL OR lease_until <= $1) AND domain NOT IN (SELECT domain FROM "
	    "outbound "
	    "WHERE lease_until > $1 GROUP BY domain HAVING $2::bigint > 0 AND "
	    "count(DISTINCT lease_owner) >= $2::bigint) ORDER BY next_try, id "
	    "LIMIT 1", "ii", a->now, (int64_t)a->domain_cap);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	res = query(c, err, CLAIM_SELECT "domain = $1 AND next_try <= $2 AND "
	    "NOT held AND (lease_until IS NULL OR lease_until <= $2) ORDER BY "
	    "id LIMIT $3 FOR UPDATE SKIP LOCKED", "tii", domain, a->now,
	    (int64_t)a->cap);
	if (res == NULL)
		return STORE_ERROR;
	for (i = 0; i < PQntuples(res) && a->n < a->cap; i++) {
		size = (uint64_t)col_int(res, i, 6);
		if (a->n > 0 && a->max_bytes > 0 && bytes + size > a->max_bytes)
			break;
		if (outbound_fill(res, i, &a->obs[a->n]) != 0) {
			PQclear(res);
			store_outbounds_release(a->obs, &a->n);
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of "
			    "memory");
		}
		bytes += size;
		a->n++;
	}
	PQclear(res);
	if (claim_lease(c, a, err) != 0) {
		store_outbounds_release(a->obs, &a->n);
		return STORE_ERROR;
	}
	return STORE_OK;
}

static int
pg_outbound_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_until, unsigned int domain_cap, uint64_t max_bytes,
    const int64_t *done, size_t ndone, struct outbound *obs, size_t cap,
    size_t *n, struct smimp_err *err)
{
	struct claim_args a = { owner, done, ndone, now, lease_until,
	    domain_cap, max_bytes, obs, cap, 0 };
	PGresult *res;
	int r;

	if (ndone == 0) {
		/* Idle workers poll: one read answers "nothing due" cheaply. */
		res = read_query(pg(st), err, "SELECT 1 FROM outbound WHERE "
		    "next_try <= $1 AND NOT held AND (lease_until IS NULL OR "
		    "lease_until <= $1) LIMIT 1", "i", now);
		if (res == NULL)
			return STORE_ERROR;
		r = PQntuples(res);
		PQclear(res);
		if (r == 0)
			return STORE_OK;
	}
	r = txn(pg(st), begin_write, claim_run, &a, now, err);
	if (r != STORE_OK) {
		store_outbounds_release(a.obs, &a.n);
		return STORE_ERROR;
	}
	*n = a.n;
	return STORE_OK;
}

static int
pg_outbound_open(struct store *st, int64_t id, int *fd, uint64_t *len,
    struct smimp_err *err)
{
	struct open_args a = { "SELECT body, data, size FROM outbound WHERE "
	    "id = $1", NULL, NULL, id, -1, 0 };

	return body_open(pg(st), &a, fd, len, err);
}

/* What done, retry and bounce act on: entries owner holds. */
struct owned_args {
	const char *owner;
	const int64_t *ids;
	size_t n;
	int64_t next_try, now, lease_until;
	const char *reason;
	const struct store_delivery *notice;
	const char *record;	/* a bounce's notice, as its record's text */
	struct pg_body pb;
};

static int
done_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct owned_args *a = arg;

	(void)s;
	return outbound_remove(c, a->owner, a->ids, a->n, err) < 0 ?
	    STORE_ERROR : STORE_OK;
}

static int
pg_outbound_done(struct store *st, const char *owner, const int64_t *ids,
    size_t n, struct smimp_err *err)
{
	struct owned_args a;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = ids;
	a.n = n;
	return txn(pg(st), begin_write, done_run, &a, 0, err);
}

static int
renew_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct owned_args *a = arg;
	size_t i;

	(void)s;
	for (i = 0; i < a->n; i++)
		if (exec_sql(c, err, "UPDATE outbound SET lease_until = $1 "
		    "WHERE id = $2 AND lease_owner = $3", "iit", a->lease_until,
		    a->ids[i], a->owner) < 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
pg_outbound_renew(struct store *st, const char *owner, const int64_t *ids,
    size_t n, int64_t lease_until, struct smimp_err *err)
{
	struct owned_args a;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = ids;
	a.n = n;
	a.lease_until = lease_until;
	return txn(pg(st), begin_write, renew_run, &a, 0, err);
}

static int
retry_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct owned_args *a = arg;
	int64_t n;

	(void)s;
	n = exec_sql(c, err, "UPDATE outbound SET attempts = attempts + 1, "
	    "next_try = $1, last_error = $4, retry_now = false, lease_owner = "
	    "NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3",
	    "iitt", a->next_try,
	    a->ids[0], a->owner, a->reason);
	return n < 0 ? STORE_ERROR : n > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int
pg_outbound_retry(struct store *st, const char *owner, int64_t id,
    int64_t next_try, const char *reason, struct smimp_err *err)
{
	struct owned_args a;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = &id;
	a.n = 1;
	a.next_try = next_try;
	a.reason = reason;
	return txn(pg(st), begin_write, retry_run, &a, 0, err);
}

static int
bounce_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct owned_args *a = arg;
	int64_t n;
	int r;

	a->pb.id = a->pb.refs = 0;
	/* Recorded for its sender while the entry still says what it was. */
	if (exec_sql(c, err, SENT_UPSERT_FROM_OUTBOUND, "iitti",
	    (int64_t)STORE_SENT_BOUNCED, a->now, a->record, a->owner,
	    a->ids[0]) < 0)
		return STORE_ERROR;
	n = outbound_remove(c, a->owner, a->ids, 1, err);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	/* The notice is small and the sender's own: no quota holds it up. */
	r = mailbox_put(s, c, a->notice, &a->pb, a->now, CHECK_ACKED, NULL,
	    err);
	if (r == STORE_OK && body_settle(c, &a->pb, err) != 0)
		r = STORE_ERROR;
	return r;
}

static int
pg_outbound_bounce(struct store *st, const char *owner, int64_t id,
    const struct store_delivery *notice, int64_t now, struct smimp_err *err)
{
	struct owned_args a;
	int r;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = &id;
	a.n = 1;
	a.now = now;
	a.notice = notice;
	a.record = store_body_text(notice->body);
	if (a.record == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (body_prepare(&a.pb, notice->body, err) != 0) {
		free((char *)a.record);
		return STORE_ERROR;
	}
	r = txn(pg(st), begin_write, bounce_run, &a, now, err);
	body_finish(&a.pb);
	free((char *)a.record);
	return r;
}

static int
pg_outbound_count(struct store *st, uint64_t *n, struct smimp_err *err)
{
	PGresult *res;

	*n = 0;
	res = read_query(pg(st), err, "SELECT count(*) FROM outbound", "");
	if (res == NULL)
		return STORE_ERROR;
	*n = (uint64_t)col_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

static int
pg_outbound_stats(struct store *st, struct store_queue_stats *qs,
    struct smimp_err *err)
{
	PGresult *res;

	res = read_query(pg(st), err, "SELECT count(*), "
	    "coalesce(min(first_try), 0) FROM outbound", "");
	if (res == NULL)
		return STORE_ERROR;
	qs->entries = (uint64_t)col_int(res, 0, 0);
	qs->oldest = col_int(res, 0, 1);
	PQclear(res);
	return STORE_OK;
}

/* ---- the relay queue, for the administrator ---- */

#define QUEUE_SELECT "SELECT id, domain, sender, recipients, message_id, " \
    "size, attempts, first_try, next_try, lease_owner, lease_until, held, " \
    "last_error FROM outbound "

/* fn for each row of res; -1 when it asks to stop. */
static int
queue_rows(const PGresult *res, int (*fn)(const struct store_queue_entry *,
    void *), void *arg)
{
	struct store_queue_entry e;
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		e.id = col_int(res, i, 0);
		e.domain = col_text(res, i, 1);
		e.sender = col_text(res, i, 2);
		e.recipients = col_text(res, i, 3);
		e.message_id = col_text(res, i, 4);
		e.size = (uint64_t)col_int(res, i, 5);
		e.attempts = (unsigned int)col_int(res, i, 6);
		e.first_try = col_int(res, i, 7);
		e.next_try = col_int(res, i, 8);
		e.lease_owner = col_text(res, i, 9);
		e.lease_until = col_int(res, i, 10);
		e.held = col_int(res, i, 11) != 0;
		e.last_error = col_text(res, i, 12);
		if (fn(&e, arg) != 0)
			return -1;
	}
	return 0;
}

/* A page at a time, in id order; no connection held while fn runs. */
static int
pg_outbound_list(struct store *st, int64_t id,
    int (*fn)(const struct store_queue_entry *, void *), void *arg,
    struct smimp_err *err)
{
	PGresult *res;
	int64_t last = 0;
	int n, r;

	do {
		res = id != 0 ? read_query(pg(st), err, QUEUE_SELECT "WHERE "
		    "id = $1", "i", id) : read_query(pg(st), err, QUEUE_SELECT
		    "WHERE id > $1 ORDER BY id LIMIT 256", "i", last);
		if (res == NULL)
			return STORE_ERROR;
		n = PQntuples(res);
		if (n > 0)
			last = col_int(res, n - 1, 0);
		r = queue_rows(res, fn, arg);
		PQclear(res);
		if (r != 0)
			return store_stopped(err);
		if (id != 0)
			return n > 0 ? STORE_OK : STORE_NOT_FOUND;
	} while (n == PAGE);
	return STORE_OK;
}

/* No row changed: was it there (then a live lease kept it) or not? */
static int
queue_missed(struct pg_conn *c, int64_t id, struct smimp_err *err)
{
	int r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM outbound WHERE "
	    "id = $1", "i", id);

	return r < 0 ? STORE_ERROR : r > 0 ? STORE_EXISTS : STORE_NOT_FOUND;
}

static int
queue_op_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct store_queue_args *a = arg;
	int64_t n;

	(void)s;
	if (a->op == STORE_QUEUE_RETRY)
		n = exec_sql(c, err, "UPDATE outbound SET held = false, "
		    "retry_now = true, next_try = $2 WHERE id = $1 AND "
		    "(lease_until IS NULL OR lease_until <= $2)", "ii", a->id,
		    a->now);
	else
		n = exec_sql(c, err, "UPDATE outbound SET held = $2::bigint "
		    "<> 0 WHERE id = $1", "ii", a->id,
		    (int64_t)(a->op == STORE_QUEUE_HOLD));
	if (n < 0)
		return STORE_ERROR;
	return n > 0 ? STORE_OK : queue_missed(c, a->id, err);
}

static int
pg_outbound_admin(struct store *st, struct store_queue_args *a,
    struct smimp_err *err)
{
	return txn(pg(st), begin_write, queue_op_run, a, 0, err);
}

static int
take_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct store_queue_args *a = arg;
	PGresult *res;
	int64_t n;
	int r = STORE_OK;

	(void)s;
	outbound_release(a->ob);
	n = exec_sql(c, err, "UPDATE outbound SET lease_owner = $2, "
	    "lease_until = $3 WHERE id = $1 AND (lease_until IS NULL OR "
	    "lease_until <= $4)", "itii", a->id, a->owner, a->lease_until,
	    a->now);
	if (n <= 0)
		return n < 0 ? STORE_ERROR : queue_missed(c, a->id, err);
	res = query(c, err, CLAIM_SELECT "id = $1", "i", a->id);
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) != 1)
		r = smimp_err_set(err, SMIMP_EXIT_FAIL, "store: the entry "
		    "went away");
	else if (outbound_fill(res, 0, a->ob) != 0)
		r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	PQclear(res);
	return r;
}

static int
pg_outbound_take(struct store *st, struct store_queue_args *a,
    struct smimp_err *err)
{
	return txn(pg(st), begin_write, take_run, a, 0, err);
}

/* ---- what the store holds, and whether it is sound ---- */

static int
stats_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct store_stats *out = arg;
	PGresult *res;

	(void)s;
	res = query(c, err, "SELECT (SELECT count(*) FROM users), "
	    "(SELECT count(*) FROM mailbox), (SELECT coalesce(sum(size), 0)"
	    "::bigint FROM mailbox), count(*), coalesce(sum(size), 0)::bigint, "
	    "coalesce(sum(CASE WHEN held THEN 1 ELSE 0 END), 0)::bigint, "
	    "coalesce(sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0)"
	    "::bigint, count(DISTINCT domain), coalesce(min(first_try), 0)"
	    "::bigint FROM outbound", "");
	if (res == NULL)
		return STORE_ERROR;
	out->users = (uint64_t)col_int(res, 0, 0);
	out->mailbox_messages = (uint64_t)col_int(res, 0, 1);
	out->mailbox_bytes = (uint64_t)col_int(res, 0, 2);
	out->queue_entries = (uint64_t)col_int(res, 0, 3);
	out->queue_bytes = (uint64_t)col_int(res, 0, 4);
	out->queue_held = (uint64_t)col_int(res, 0, 5);
	out->queue_retrying = (uint64_t)col_int(res, 0, 6);
	out->queue_domains = (uint64_t)col_int(res, 0, 7);
	out->queue_oldest = col_int(res, 0, 8);
	PQclear(res);
	return STORE_OK;
}

static int
pg_stats(struct store *st, struct store_stats *out, struct smimp_err *err)
{
	struct smimp_err ignored;
	PGresult *res;

	if (txn(pg(st), begin_read, stats_run, out, 0, err) != STORE_OK)
		return STORE_ERROR;
	/* PostgreSQL's own measure; an engine without it says nothing. */
	out->store_bytes = -1;
	res = read_query(pg(st), &ignored, "SELECT pg_database_size("
	    "current_database())", "");
	if (res != NULL && PQntuples(res) == 1)
		out->store_bytes = col_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

/*
 * In one snapshot: the schema version, rows that name a body that is
 * not there, bodies whose chunks do not add up to their size.
 */
static int
check_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct store_health *h = arg;
	int64_t orphans = 0, short_bodies = 0;

	(void)s;
	if (first(c, err, &h->version, NULL, 0, "SELECT version FROM "
	    "smimp_schema WHERE one = 1", "") != 1 ||
	    first(c, err, &orphans, NULL, 0, "SELECT count(*) FROM (SELECT "
	    "body FROM mailbox WHERE body IS NOT NULL UNION ALL SELECT body "
	    "FROM outbound WHERE body IS NOT NULL) r WHERE NOT EXISTS (SELECT "
	    "1 FROM bodies b WHERE b.id = r.body)", "") != 1 ||
	    first(c, err, &short_bodies, NULL, 0, "SELECT count(*) FROM bodies "
	    "b WHERE b.size <> coalesce((SELECT sum(length(data)) FROM "
	    "body_chunks k WHERE k.body = b.id), 0)", "") != 1)
		return err->msg[0] != '\0' ? STORE_ERROR : smimp_err_set(err,
		    SMIMP_EXIT_FAIL, "store: no schema version");
	h->integrity = 1;
	if (orphans > 0)
		(void)snprintf(h->problem, sizeof(h->problem), "%lld message "
		    "rows name a body that is not stored", (long long)orphans);
	else if (short_bodies > 0)
		(void)snprintf(h->problem, sizeof(h->problem), "%lld bodies do "
		    "not hold the bytes their size says",
		    (long long)short_bodies);
	return STORE_OK;
}

static int
pg_check(struct store *st, struct store_health *h, struct smimp_err *err)
{
	smimp_err_clear(err);
	return txn(pg(st), begin_read, check_run, h, 0, err);
}

/* ---- consent policies ---- */

struct policy_put_args {
	const struct policy *p;
	const unsigned char *text;
	size_t len;
};

/*
 * May the statement replace the one stored (if any)?  STORE_OK to go
 * on, 1 when it is the one stored already (nothing to do), STORE_EXISTS
 * for a later one or another of the same date, STORE_ERROR.
 */
static int
policy_newer(struct pg_conn *c, const struct policy_put_args *a,
    struct smimp_err *err)
{
	PGresult *res;
	int64_t date;
	int ret = STORE_OK;

	res = query(c, err, "SELECT date, text FROM policies WHERE "
	    "address = $1", "t", a->p->address);
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) > 0) {
		date = col_int(res, 0, 0);
		if (date == a->p->date &&
		    (size_t)PQgetlength(res, 0, 1) == a->len &&
		    memcmp(PQgetvalue(res, 0, 1), a->text, a->len) == 0)
			ret = 1;
		else if (date >= a->p->date)
			ret = STORE_EXISTS;
	}
	PQclear(res);
	return ret;
}

static int
policy_entries_put(struct pg_conn *c, const char *address,
    const unsigned char (*list)[POLICY_ENTRY_SIZE], size_t n, int kind,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (exec_sql(c, err, "INSERT INTO policy_entries (address, "
		    "hash, kind) VALUES ($1, $2, $3)", "tbi", address, list[i],
		    (size_t)POLICY_ENTRY_SIZE, (int64_t)kind) < 0)
			return -1;
	return 0;
}

static int
policy_put_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct policy_put_args *a = arg;
	const struct policy *p = a->p;
	int r;

	(void)s;
	/* The user's row, locked: one policy put at a time. */
	r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = $1 FOR UPDATE", "t", p->address);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	r = policy_newer(c, a, err);
	if (r != STORE_OK)
		return r == 1 ? STORE_OK : r;
	if (exec_sql(c, err, "DELETE FROM policy_entries WHERE address = $1",
	    "t", p->address) < 0 ||
	    policy_entries_put(c, p->address, p->block, p->nblock,
	    STORE_LISTED_BLOCK, err) != 0 ||
	    policy_entries_put(c, p->address, p->allow, p->nallow,
	    STORE_LISTED_ALLOW, err) != 0 ||
	    exec_sql(c, err, "INSERT INTO policies (address, date, unknown, "
	    "bits, allowance, salt, text) VALUES ($1, $2, $3, $4, $5, $6, $7) "
	    "ON CONFLICT (address) DO UPDATE SET date = excluded.date, "
	    "unknown = excluded.unknown, bits = excluded.bits, "
	    "allowance = excluded.allowance, salt = excluded.salt, "
	    "text = excluded.text", "tiiiibb", p->address, p->date,
	    (int64_t)p->unknown, (int64_t)p->bits, (int64_t)p->allowance,
	    p->salt, (size_t)POLICY_SALT_SIZE, a->text, a->len) < 0)
		return STORE_ERROR;
	return STORE_OK;
}

static int
pg_policy_put(struct store *st, const struct policy *p,
    const unsigned char *text, size_t len, int64_t now,
    struct smimp_err *err)
{
	struct policy_put_args a = { p, text, len };

	return txn(pg(st), begin_write, policy_put_run, &a, now, err);
}

static int
pg_policy_get(struct store *st, const char *address, unsigned char **text,
    size_t *len, struct smimp_err *err)
{
	return blob_get(pg(st), "SELECT text FROM policies WHERE address = $1",
	    address, text, len, err);
}

static int
pg_policy_head(struct store *st, const char *address,
    struct store_policy_head *h, struct smimp_err *err)
{
	PGresult *res;
	int64_t unknown;
	int r = STORE_OK;

	memset(h, 0, sizeof(*h));
	res = read_query(pg(st), err, "SELECT p.address, p.date, p.unknown, "
	    "p.bits, p.allowance, p.salt FROM users u LEFT JOIN policies p ON "
	    "p.address = u.address WHERE u.address = $1", "t", address);
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) == 0)
		r = STORE_NOT_FOUND;
	else if (!PQgetisnull(res, 0, 0) &&
	    PQgetlength(res, 0, 5) == POLICY_SALT_SIZE) {
		h->has_policy = 1;
		h->date = col_int(res, 0, 1);
		unknown = col_int(res, 0, 2);
		/* Stored by this code from a parsed statement; else: closed. */
		h->unknown = unknown >= POLICY_OPEN && unknown <= POLICY_CLOSED ?
		    (enum policy_unknown)unknown : POLICY_CLOSED;
		h->bits = (unsigned int)col_int(res, 0, 3);
		h->allowance = (uint32_t)col_int(res, 0, 4);
		memcpy(h->salt, PQgetvalue(res, 0, 5), POLICY_SALT_SIZE);
	}
	PQclear(res);
	return r;
}

static int
pg_correspondent(struct store *st, const char *local, const char *domain,
    struct smimp_err *err)
{
	PGresult *res;
	int r;

	res = read_query(pg(st), err, "SELECT 1 FROM correspondents WHERE "
	    "local = $1 AND domain = $2", "tt", local, domain);
	if (res == NULL)
		return STORE_ERROR;
	r = PQntuples(res) > 0 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(res);
	return r;
}

struct match_args {
	const char *address;
	const unsigned char (*entries)[POLICY_ENTRY_SIZE];
	size_t n;
	int *listed;
};

/* One lookup per entry, on one connection, in one snapshot. */
static int
match_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct match_args *a = arg;
	int64_t kind;
	size_t i;
	int r;

	(void)s;
	for (i = 0; i < a->n; i++) {
		kind = STORE_UNLISTED;
		r = first(c, err, &kind, NULL, 0, "SELECT kind FROM "
		    "policy_entries WHERE address = $1 AND hash = $2", "tb",
		    a->address, a->entries[i], (size_t)POLICY_ENTRY_SIZE);
		if (r < 0)
			return STORE_ERROR;
		a->listed[i] = r == 1 && (kind == STORE_LISTED_BLOCK ||
		    kind == STORE_LISTED_ALLOW) ? (int)kind : STORE_UNLISTED;
	}
	return STORE_OK;
}

static int
pg_policy_match(struct store *st, const char *address,
    const unsigned char (*entries)[POLICY_ENTRY_SIZE], size_t n,
    int *listed, struct smimp_err *err)
{
	struct match_args a = { address, entries, n, listed };

	return txn(pg(st), begin_read, match_run, &a, 0, err);
}

struct count_args {
	const struct store_consent_count *c;
	int64_t now;
	unsigned int retry;	/* 0: taken */
};

/*
 * The sending domain's count for this hour, one more; a retry when it
 * is past the cap, or ignored.  0 or -1.
 */
static int
count_domain(struct pg_conn *c, struct count_args *a, struct smimp_err *err)
{
	const struct store_consent_count *cc = a->c;
	int64_t hour = a->now / STORE_HOUR_S, n = 0, until = 0;
	PGresult *res;

	/* The domain's row, locked (made if need be) until it is counted. */
	res = query(c, err, "INSERT INTO consent_domains (domain, hour, count, "
	    "ignored_until) VALUES ($1, $2, 0, 0) ON CONFLICT (domain) DO "
	    "UPDATE SET domain = excluded.domain RETURNING hour, count, "
	    "ignored_until", "ti", cc->domain, hour);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		n = col_int(res, 0, 0) == hour ? col_int(res, 0, 1) : 0;
		until = col_int(res, 0, 2);
	}
	PQclear(res);
	if (!store_consent_domain_step(cc, a->now, &n, &until, &a->retry))
		return 0;
	return exec_sql(c, err, "INSERT INTO consent_domains (domain, hour, "
	    "count, ignored_until) VALUES ($1, $2, $3, $4) ON CONFLICT "
	    "(domain) DO UPDATE SET hour = excluded.hour, count = "
	    "excluded.count, ignored_until = excluded.ignored_until", "tiii",
	    cc->domain, hour, n, until) < 0 ? -1 : 0;
}

/*
 * The recipient's allowance for today, one more unless used up or the
 * message (with a sender and an id) was counted today already: its
 * row, locked first, makes the copies of one message counted on
 * several nodes at once wait for each other.
 */
static int
count_allowance(struct pg_conn *c, struct count_args *a,
    struct smimp_err *err)
{
	const struct store_consent_count *cc = a->c;
	int64_t day = a->now / STORE_DAY_S, n = 0;
	PGresult *res;
	int r;

	/* The recipient's row, locked (made if need be) until counted. */
	res = query(c, err, "INSERT INTO consent_allowance (recipient, day, "
	    "count) VALUES ($1, $2, 0) ON CONFLICT (recipient) DO UPDATE SET "
	    "recipient = excluded.recipient RETURNING day, count", "ti",
	    cc->recipient, day);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0 && col_int(res, 0, 0) == day)
		n = col_int(res, 0, 1);
	PQclear(res);
	/* Counted today: taken, even once the allowance is used up. */
	if (cc->sender != NULL && cc->message_id != NULL) {
		r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM consent_counted "
		    "WHERE recipient = $1 AND sender = $2 AND message_id = $3 "
		    "AND day = $4", "ttti", cc->recipient, cc->sender,
		    cc->message_id, day);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (n >= cc->allowance) {
		a->retry = (unsigned int)((day + 1) * STORE_DAY_S - a->now);
		return 0;
	}
	if (cc->sender != NULL && cc->message_id != NULL &&
	    exec_sql(c, err, "INSERT INTO consent_counted (recipient, sender, "
	    "message_id, day) VALUES ($1, $2, $3, $4) ON CONFLICT (recipient, "
	    "sender, message_id) DO UPDATE SET day = excluded.day", "ttti",
	    cc->recipient, cc->sender, cc->message_id, day) < 0)
		return -1;
	return exec_sql(c, err, "INSERT INTO consent_allowance (recipient, "
	    "day, count) VALUES ($1, $2, 1) ON CONFLICT (recipient) DO UPDATE "
	    "SET count = CASE WHEN consent_allowance.day = excluded.day THEN "
	    "consent_allowance.count + 1 ELSE 1 END, day = excluded.day", "ti",
	    cc->recipient, day) < 0 ? -1 : 0;
}

/*
 * Always STORE_OK when it could count: a refusal keeps its count.  A
 * message the recipient holds already is not counted again against
 * its allowance: it would not be stored again.
 */
static int
consent_count_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct count_args *a = arg;
	struct store_delivery d = { a->c->recipient, a->c->sender,
	    a->c->message_id, NULL };
	int known = 0;

	a->retry = 0;
	if (a->c->domain != NULL && count_domain(c, a, err) != 0)
		return STORE_ERROR;
	if (a->retry == 0 && a->c->allowance >= 0 && d.sender != NULL &&
	    d.message_id != NULL &&
	    (known = mailbox_known(s, c, &d, a->now, CHECK_ACKED, err)) < 0)
		return STORE_ERROR;
	if (a->retry == 0 && a->c->allowance >= 0 && !known &&
	    count_allowance(c, a, err) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

static int
pg_consent_count(struct store *st, const struct store_consent_count *c,
    int64_t now, unsigned int *retry_after, struct smimp_err *err)
{
	struct count_args a = { c, now, 0 };
	int r;

	*retry_after = 0;
	r = txn(pg(st), begin_write, consent_count_run, &a, now, err);
	if (r != STORE_OK)
		return r;
	*retry_after = a.retry;
	return a.retry > 0 ? STORE_QUOTA : STORE_OK;
}

/* ---- what became of sent messages ---- */

struct sent_put_args {
	const struct store_sent *s;
	size_t n;
};

static int
sent_put_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct sent_put_args *a = arg;
	size_t i;

	(void)s;
	for (i = 0; i < a->n; i++)
		if (sent_upsert(c, &a->s[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
pg_sent_put(struct store *st, const struct store_sent *e, size_t n,
    struct smimp_err *err)
{
	struct sent_put_args a = { e, n };

	return txn(pg(st), begin_write, sent_put_run, &a, 0, err);
}

static int
pg_sent_list(struct store *st, const char *sender, const char *message_id,
    int (*fn)(const struct store_sent_row *, void *), void *arg,
    struct smimp_err *err)
{
	struct store_sent_row r;
	PGresult *res;
	int i, n;

	/* One statement: the queue and the records as of one moment. */
	res = read_query(pg(st), err, "SELECT domain, recipients, 0, "
	    "last_error, first_try, attempts, next_try, held FROM outbound "
	    "WHERE sender = $1 AND message_id = $2 UNION ALL SELECT domain, "
	    "recipients, state, detail, at, 0, 0::bigint, false FROM "
	    "sent_states WHERE sender = $1 AND message_id = $2 ORDER BY 1, 3",
	    "tt", sender, message_id);
	if (res == NULL)
		return STORE_ERROR;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		r.domain = col_text(res, i, 0);
		r.recipients = col_text(res, i, 1);
		r.state = (enum store_sent_state)col_int(res, i, 2);
		r.text = col_text(res, i, 3);
		r.at = col_int(res, i, 4);
		r.attempts = (unsigned int)col_int(res, i, 5);
		r.next_try = col_int(res, i, 6);
		r.held = col_int(res, i, 7) != 0;
		if (fn(&r, arg) != 0) {
			PQclear(res);
			return store_stopped(err);
		}
	}
	PQclear(res);
	return n > 0 ? STORE_OK : STORE_NOT_FOUND;
}

struct sent_expire_args {
	int64_t before;
	uint64_t n;
};

static int
sent_expire_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct sent_expire_args *a = arg;
	int64_t n;

	(void)s;
	n = exec_sql(c, err, "DELETE FROM sent_states WHERE at < $1", "i",
	    a->before);
	if (n < 0)
		return STORE_ERROR;
	a->n = (uint64_t)n;
	return STORE_OK;
}

static int
pg_sent_expire(struct store *st, int64_t before, uint64_t *n,
    struct smimp_err *err)
{
	struct sent_expire_args a = { before, 0 };
	int r;

	r = txn(pg(st), begin_write, sent_expire_run, &a, 0, err);
	*n = r == STORE_OK ? a.n : 0;
	return r;
}

/* ---- one-time prekeys ---- */

static int
prekey_pool_size(struct pg_conn *c, const char *address, const char *device,
    size_t *count, struct smimp_err *err)
{
	int64_t n = 0;

	if (first(c, err, &n, NULL, 0, "SELECT count(*) FROM prekeys WHERE "
	    "address = $1 AND device = $2", "tt", address, device) < 0)
		return -1;
	*count = (size_t)n;
	return 0;
}

struct prekey_add_args {
	const struct store_prekey_batch *b;
	size_t *count;
};

static int
prekey_add_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct prekey_add_args *a = arg;
	const struct store_prekey_batch *b = a->b;
	int64_t last = 0, n;
	size_t i;
	int r;

	(void)s;
	/* The user's row, locked: one batch at a time for a user. */
	r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = $1 FOR UPDATE", "t", b->address);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	r = first(c, err, &last, NULL, 0, "SELECT last_date FROM prekey_pools "
	    "WHERE address = $1 AND device = $2", "tt", b->address, b->device);
	if (r < 0 || prekey_pool_size(c, b->address, b->device, a->count,
	    err) != 0)
		return STORE_ERROR;
	r = store_prekey_batch_verdict(b, r == 1, last, *a->count);
	if (r != STORE_OK)
		return r;
	for (i = 0; i < b->n; i++) {
		n = exec_sql(c, err, "INSERT INTO prekeys (address, device, id, "
		    "key, date, signature) VALUES ($1, $2, $3, $4, $5, $6) "
		    "ON CONFLICT DO NOTHING", "tttbib", b->address, b->device,
		    b->keys[i].id, b->keys[i].key, (size_t)32, b->date,
		    b->keys[i].sig, (size_t)64);
		if (n <= 0)
			return n < 0 ? STORE_ERROR : STORE_EXISTS;
	}
	if (exec_sql(c, err, "INSERT INTO prekey_pools (address, device, "
	    "last_date) VALUES ($1, $2, $3) ON CONFLICT (address, device) DO "
	    "UPDATE SET last_date = excluded.last_date", "tti", b->address,
	    b->device, b->date) < 0)
		return STORE_ERROR;
	*a->count += b->n;
	return STORE_OK;
}

static int
pg_prekey_add(struct store *st, const struct store_prekey_batch *b,
    size_t *count, struct smimp_err *err)
{
	struct prekey_add_args a = { b, count };

	return txn(pg(st), begin_write, prekey_add_run, &a, b->now, err);
}

static int
pg_prekey_count(struct store *st, const char *address, const char *device,
    size_t *count, struct smimp_err *err)
{
	PGresult *res;

	res = read_query(pg(st), err, "SELECT count(*) FROM prekeys WHERE "
	    "address = $1 AND device = $2", "tt", address, device);
	if (res == NULL)
		return STORE_ERROR;
	*count = PQntuples(res) == 1 ? (size_t)col_int(res, 0, 0) : 0;
	PQclear(res);
	return STORE_OK;
}

/*
 * One prekey of the pool of (address, device), removed: *state says.
 * The oldest batch's first (store_prekey_claim).  A row another
 * transaction is taking is skipped, not waited for: two nodes that
 * claim at once each get another, or none.
 */
static int
prekey_take(struct pg_conn *c, const char *address, const char *device,
    struct store_prekey *k, int *state, struct smimp_err *err)
{
	PGresult *res;
	int r;

	res = query(c, err, "DELETE FROM prekeys WHERE address = $1 AND "
	    "device = $2 AND id = (SELECT id FROM prekeys WHERE address = $1 "
	    "AND device = $2 ORDER BY date, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
	    "RETURNING id, key, date, signature", "tt", address, device);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 1) == 32 &&
	    PQgetlength(res, 0, 3) == 64) {
		col_copy(res, 0, 0, k->id, sizeof(k->id));
		memcpy(k->key, PQgetvalue(res, 0, 1), 32);
		k->date = col_int(res, 0, 2);
		memcpy(k->sig, PQgetvalue(res, 0, 3), 64);
		PQclear(res);
		*state = STORE_PREKEY_TAKEN;
		return 0;
	}
	PQclear(res);
	r = first(c, err, NULL, NULL, 0, "SELECT 1 FROM prekey_pools WHERE "
	    "address = $1 AND device = $2", "tt", address, device);
	*state = r == 1 ? STORE_PREKEY_EMPTY : STORE_PREKEY_NONE;
	return r < 0 ? -1 : 0;
}

struct prekey_claim_args {
	const char *address;
	const char *const *devices;
	size_t n;
	struct store_prekey *keys;
	int *states;
};

static int
prekey_claim_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct prekey_claim_args *a = arg;
	size_t i;

	(void)s;
	for (i = 0; i < a->n; i++)
		if (prekey_take(c, a->address, a->devices[i], &a->keys[i],
		    &a->states[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
pg_prekey_claim(struct store *st, const char *address,
    const char *const *devices, size_t n, struct store_prekey *keys,
    int *states, int64_t now, struct smimp_err *err)
{
	struct prekey_claim_args a = { address, devices, n, keys, states };

	return txn(pg(st), begin_write, prekey_claim_run, &a, now, err);
}

struct prekey_drop_args {
	const char *address, *device;
	int64_t through;
};

static int
prekey_drop_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	const struct prekey_drop_args *a = arg;

	(void)s;
	return exec_sql(c, err, "DELETE FROM prekeys WHERE address = $1 AND "
	    "device = $2 AND date <= $3", "tti", a->address, a->device,
	    a->through) < 0 ? STORE_ERROR : STORE_OK;
}

static int
pg_prekey_drop(struct store *st, const char *address, const char *device,
    int64_t through, int64_t now, struct smimp_err *err)
{
	struct prekey_drop_args a = { address, device, through };

	return txn(pg(st), begin_write, prekey_drop_run, &a, now, err);
}

/* ---- the server key ---- */

struct server_key_args {
	const unsigned char *pk;
	unsigned char *recorded;
};

static int
server_key_run(struct pg_store *s, struct pg_conn *c, void *arg,
    struct smimp_err *err)
{
	struct server_key_args *a = arg;
	PGresult *res;
	int r = STORE_NOT_FOUND;

	(void)s;
	/* Of the nodes that start at once, the first to commit is taken. */
	if (a->pk != NULL && exec_sql(c, err, "INSERT INTO server_key (one, "
	    "key) VALUES (1, $1) ON CONFLICT (one) DO NOTHING", "b", a->pk,
	    (size_t)32) < 0)
		return STORE_ERROR;
	res = query(c, err, "SELECT key FROM server_key WHERE one = 1", "");
	if (res == NULL)
		return STORE_ERROR;
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 32) {
		memcpy(a->recorded, PQgetvalue(res, 0, 0), 32);
		r = STORE_OK;
	} else if (PQntuples(res) == 1) {
		r = smimp_err_set(err, SMIMP_EXIT_FAIL, "store: the recorded "
		    "server key is malformed");
	}
	PQclear(res);
	return r;
}

static int
pg_server_key(struct store *st, const unsigned char *pk,
    unsigned char recorded[32], struct smimp_err *err)
{
	struct server_key_args a = { pk, recorded };

	return txn(pg(st), pk != NULL ? begin_write : begin_read,
	    server_key_run, &a, 0, err);
}

/* ---- opening ---- */

static void
pg_close(struct store *st)
{
	struct pg_store *s = pg(st);
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nconns; i++) {
		if (s->conns[i]->pc != NULL)
			PQfinish(s->conns[i]->pc);
		free(s->conns[i]->unref);
		free(s->conns[i]);
	}
	if (s->locks) {
		pthread_cond_destroy(&s->freed);
		pthread_mutex_destroy(&s->mu);
		pthread_mutex_destroy(&s->outage_mu);
	}
	if (s->lock_fd >= 0)
		(void)close(s->lock_fd);
	free(s->uri);
	free(s);
}

/*
 * The URI as libpq takes it, checked before any connection: a bad one
 * is a configuration error, said without the URI (it may hold a
 * password).
 */
static int
set_uri(struct pg_store *s, const char *rest, struct smimp_err *err)
{
	PQconninfoOption *opts;
	char *msg = NULL;
	size_t n = strlen(rest) + sizeof("postgresql:");

	s->uri = malloc(n);
	if (s->uri == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	(void)snprintf(s->uri, n, "postgresql:%s", rest);
	opts = PQconninfoParse(s->uri, &msg);
	if (opts == NULL) {
		/* libpq quotes what it could not take: a password too. */
		pg_fail(err, "bad PostgreSQL URI", msg);
		store_text_hide(err->msg, sizeof(err->msg), s->uri);
		err->code = SMIMP_EXIT_USAGE;
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

/*
 * The node's own directory: the spool, emptied by the first process
 * that opens the store there (what it holds is a crashed one's).
 */
static int
set_local(struct pg_store *s, const char *local, struct smimp_err *err)
{
	int alone;

	if (local == NULL || local[0] == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a PostgreSQL "
		    "store needs a local directory for its spool (data)");
	if ((size_t)snprintf(s->local, sizeof(s->local), "%s", local) >=
	    sizeof(s->local) || (size_t)snprintf(s->spool, sizeof(s->spool),
	    "%s/spool", local) >= sizeof(s->spool))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store directory "
		    "path too long");
	/* The directory is checked (store_lock_dir) before anything in it. */
	if (mkdir_p(s->local, 0700, err) != 0)
		return -1;
	alone = store_lock_dir(s->local, &s->lock_fd, err);
	if (alone < 0 || mkdir_p(s->spool, 0700, err) != 0 ||
	    store_give(s->local, s->spool, err) != 0)
		return -1;
	if (alone && (store_dir_empty(s->spool, NULL, NULL, err) != 0 ||
	    store_lock_shared(s->lock_fd, s->local, err) != 0))
		return -1;
	return 0;
}

static struct store *
pg_open(const char *rest, const char *local, struct smimp_err *err)
{
	struct pg_store *s;
	struct pg_conn *c;
	int r;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	s->base.ops = &store_postgresql_ops;
	s->lock_fd = -1;
	if (pthread_mutex_init(&s->mu, NULL) != 0 ||
	    pthread_cond_init(&s->freed, NULL) != 0 ||
	    pthread_mutex_init(&s->outage_mu, NULL) != 0) {
		free(s);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up locks");
		return NULL;
	}
	s->locks = 1;
	if (set_uri(s, rest, err) != 0 || set_local(s, local, err) != 0)
		goto fail;
	c = conn_get(s, err);
	if (c == NULL)
		goto fail;
	r = migrate(c, err);
	conn_put(s, c);
	if (r != 0)
		goto fail;
	return &s->base;
fail:
	pg_close(&s->base);
	return NULL;
}

static const char *
pg_spool_dir(struct store *st)
{
	return pg(st)->spool;
}

/* A database server's: told by connecting, which the open does. */
static int
pg_exists(const char *rest)
{
	(void)rest;
	return 1;
}

/* Bodies and all are in the database: pg_dump's job, not ours. */
static int
pg_backup(struct store *st, const char *dir, uint64_t *bodies,
    struct smimp_err *err)
{
	(void)st;
	(void)dir;
	(void)bodies;
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "a PostgreSQL store is "
	    "backed up with pg_dump (its message bodies are in the "
	    "database); copy server.key beside the dump");
}

const struct store_ops store_postgresql_ops = {
	.exists = pg_exists,
	.open = pg_open,
	.close = pg_close,
	.spool_dir = pg_spool_dir,
	.user_add = pg_user_add,
	.user_get = pg_user_get,
	.user_log_update = pg_user_log_update,
	.user_del = pg_user_del,
	.user_list = pg_user_list,
	.user_list_unsynced = pg_user_list_unsynced,
	.invite_add = pg_invite_add,
	.invite_check = pg_invite_check,
	.invite_redeem = pg_invite_redeem,
	.invite_list = pg_invite_list,
	.nonce_claim = pg_nonce_claim,
	.submit = pg_submit,
	.deliver = pg_deliver,
	.mailbox_list = pg_mailbox_list,
	.mailbox_open = pg_mailbox_open,
	.mailbox_ack = pg_mailbox_ack,
	.outbound_claim = pg_outbound_claim,
	.outbound_open = pg_outbound_open,
	.outbound_done = pg_outbound_done,
	.outbound_renew = pg_outbound_renew,
	.outbound_retry = pg_outbound_retry,
	.outbound_bounce = pg_outbound_bounce,
	.outbound_count = pg_outbound_count,
	.outbound_stats = pg_outbound_stats,
	.outbound_list = pg_outbound_list,
	.outbound_admin = pg_outbound_admin,
	.outbound_take = pg_outbound_take,
	.stats = pg_stats,
	.check = pg_check,
	.backup = pg_backup,
	.policy_put = pg_policy_put,
	.policy_get = pg_policy_get,
	.policy_head = pg_policy_head,
	.correspondent = pg_correspondent,
	.policy_match = pg_policy_match,
	.consent_count = pg_consent_count,
	.sent_put = pg_sent_put,
	.sent_list = pg_sent_list,
	.sent_expire = pg_sent_expire,
	.prekey_add = pg_prekey_add,
	.prekey_count = pg_prekey_count,
	.prekey_claim = pg_prekey_claim,
	.prekey_drop = pg_prekey_drop,
	.server_key = pg_server_key,
};
