/*
 * store_sqlite.c - the embedded store, "sqlite:DIR": SQLite in WAL mode
 * with synchronous=FULL in DIR/smimpd.db, so that a commit is on disk
 * when it returns; small message bodies inside the database, large ones
 * as files under DIR/bodies/; uploads spooled in DIR/spool/.
 *
 * Writes go through one writer connection in group commits: a caller
 * queues its operation, and whichever caller finds no commit under way
 * runs every queued operation in one transaction (each inside its own
 * savepoint, so that one failure undoes only itself), commits once and
 * wakes the others.  Under load many requests share one fsync; alone,
 * a request pays exactly one.  Reads use a small pool of connections
 * of their own, which in WAL mode see only committed data and never
 * wait for the writer.
 *
 * Deleted rows are zeroed where that costs no extra write (secure_delete
 * FAST): a freed overflow page is not rewritten just to clear it.  What
 * may linger there is ciphertext, as in the unlinked body files.
 *
 * Small bodies given in memory (up to STORE_INLINE_MAX) are a blob in
 * each row that carries them, written by the transaction itself: the
 * group commit's one fsync covers them, where a file would cost two
 * fsyncs of its own (the file, its directory) that no commit shares.
 * Each row holds its own copy rather than sharing one through another
 * table: the copies are small and few (the local recipients and other
 * domains of one submission), and a row then stands alone, removed by
 * one DELETE with no count of who else holds the bytes.
 *
 * File bodies (spooled uploads, and bodies in memory above the inline
 * size): every row that carries one (a mailbox copy, a relay queue
 * entry) has a file name of its own, bodies/XX/NAME; the rows of one
 * message share one file through hard links, so removing a row unlinks
 * only its own name.  A name is linked, its file and directory synced,
 * before the transaction that references it commits, and unlinked only
 * after the transaction that forgets it has committed.  A crash in
 * between leaves names that no row references, and only those: the
 * next open removes them, and everything in spool/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "exitcode.h"
#include "fileio.h"
#include "remote.h"
#include "sites.h"
#include "store_backend.h"
#include "banned.h"

#define BUSY_TIMEOUT_MS	5000
#define READERS		8
#define SWEEP_S		10	/* forget what has expired this often */
#define NAME_LEN	32	/* a body file's name: hex, random */
#define NAME_TRIES	8	/* fresh names or ids tried on a collision */
#define TRASH_PAGE	256
#define COPY_CHUNK	(64 * 1024)
#define DAY_S		86400

struct sqlite_store;

/*
 * Each connection keeps the statements it has prepared, by the address
 * of their SQL (always a string constant): parsing and planning the
 * same few statements again for every request cost more than running
 * them.  A statement in use (a nested query with the same SQL) is not
 * shared: the second user prepares its own, as when the cache is full.
 */
#define STMT_SLOTS	64
#define CACHES_MAX	(8 * (1 + READERS))	/* every open store's */

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *stmt;
	int busy;
};

struct stmt_cache {
	sqlite3 *db;
	struct stmt_slot slot[STMT_SLOTS];
};

struct write_op {
	int (*run)(struct sqlite_store *s, void *arg, struct smimp_err *err);
	void *arg;
	int64_t now;		/* the caller's clock, for the sweeps; or 0 */
	int ret;
	struct smimp_err err;
	int taken;		/* in a commit's batch (under the lock) */
	/*
	 * Set (release) once ret and err are final; the caller reads it
	 * (acquire) without the lock when woken, so that it does not wait
	 * for the lock the leader may still hold.
	 */
	atomic_int done;
	sem_t wake;		/* its commit is done, or it is to lead */
	struct write_op *next;
};

struct sqlite_store {
	struct store base;		/* first: what store.c sees */
	char dir[PATH_MAX];
	char bodies[PATH_MAX];
	char spool[PATH_MAX];
	int lock_fd;
	sqlite3 *db;			/* the writer */
	pthread_mutex_t mu;		/* the write queue */
	pthread_mutex_t readers_mu;	/* the reader pool */
	pthread_cond_t reader_free;
	struct write_op *queued;	/* newest first */
	int committing;
	int64_t next_sweep;		/* the writer's own */
	int sweep_trash;		/* a batch put names in the trash */
	sqlite3 *readers[READERS];
	int nfree;
	sqlite3 *free_readers[READERS];
	int locks;			/* the locks above are set up */
	sqlite3_stmt *sweep;		/* "does a row name it?", at open */
	struct stmt_cache caches[1 + READERS];	/* the writer's, each reader's */
};

/* A body file's name, as rows keep it. */
struct body_name {
	char s[NAME_LEN + 1];
};

static struct sqlite_store *
sq(struct store *st)
{
	return (struct sqlite_store *)st;
}

static int
db_fail(sqlite3 *db, struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: %s: %s", what,
	    sqlite3_errmsg(db));
}

/* ---- statements ---- */

/*
 * Bind parameters 1, 2, ... as fmt says, one letter each: 't' text
 * (const char *), 'i' an int64_t, 'b' a blob (const void *, then its
 * length as an int).
 */
static int
bind_va(sqlite3_stmt *stmt, const char *fmt, va_list ap)
{
	const void *p;
	int i, n, rc;

	for (i = 0; fmt[i] != '\0'; i++) {
		switch (fmt[i]) {
		case 't':
			rc = sqlite3_bind_text(stmt, i + 1,
			    va_arg(ap, const char *), -1, SQLITE_STATIC);
			break;
		case 'i':
			rc = sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t));
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, int);
			rc = sqlite3_bind_blob(stmt, i + 1, p, n, SQLITE_STATIC);
			break;
		default:
			rc = SQLITE_MISUSE;
			break;
		}
		if (rc != SQLITE_OK)
			return -1;
	}
	return 0;
}

/*
 * Which cache is a connection's: found from the connection, since most
 * code passes only that.  Changed at open and close, read on every
 * statement.
 */
static struct stmt_cache *caches[CACHES_MAX];
static pthread_rwlock_t caches_lock = PTHREAD_RWLOCK_INITIALIZER;

static void
cache_add(struct stmt_cache *c, sqlite3 *db)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->db = db;
	pthread_rwlock_wrlock(&caches_lock);
	for (i = 0; i < CACHES_MAX; i++)
		if (caches[i] == NULL) {
			caches[i] = c;
			break;
		}
	/* No room: that connection prepares every time, no less right. */
	pthread_rwlock_unlock(&caches_lock);
}

/* Before the connection closes: SQLite refuses to close with statements. */
static void
cache_drop(struct stmt_cache *c)
{
	size_t i;

	pthread_rwlock_wrlock(&caches_lock);
	for (i = 0; i < CACHES_MAX; i++)
		if (caches[i] == c)
			caches[i] = NULL;
	pthread_rwlock_unlock(&caches_lock);
	for (i = 0; i < STMT_SLOTS; i++)
		sqlite3_finalize(c->slot[i].stmt);
	memset(c, 0, sizeof(*c));
}

static struct stmt_cache *
cache_of(sqlite3 *db)
{
	struct stmt_cache *c = NULL;
	size_t i;

	pthread_rwlock_rdlock(&caches_lock);
	for (i = 0; i < CACHES_MAX && c == NULL; i++)
		if (caches[i] != NULL && caches[i]->db == db)
			c = caches[i];
	pthread_rwlock_unlock(&caches_lock);
	return c;
}

/* sql's slot, taken, or a free slot for it; NULL when neither is left. */
static struct stmt_slot *
slot_for(struct stmt_cache *c, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 3) % STMT_SLOTS, i;
	struct stmt_slot *sl;

	for (i = 0; i < STMT_SLOTS; i++) {
		sl = &c->slot[(h + i) % STMT_SLOTS];
		if (sl->sql == sql)
			return sl->busy ? NULL : sl;
		if (sl->sql == NULL)
			return sl;
	}
	return NULL;
}

/* A prepared statement for sql (a string constant) on db, unbound. */
static sqlite3_stmt *
stmt_prepare(sqlite3 *db, const char *sql)
{
	struct stmt_cache *c = cache_of(db);
	struct stmt_slot *sl = c != NULL ? slot_for(c, sql) : NULL;
	sqlite3_stmt *stmt = NULL;

	if (sl == NULL)
		return sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) ==
		    SQLITE_OK ? stmt : NULL;
	if (sl->stmt == NULL) {
		if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		    &sl->stmt, NULL) != SQLITE_OK) {
			sqlite3_finalize(sl->stmt);
			sl->stmt = NULL;
			return NULL;
		}
		sl->sql = sql;
	}
	sl->busy = 1;
	return sl->stmt;
}

/* Done with a statement from stmt_prepare: back to its cache, or gone. */
static void
stmt_release(sqlite3_stmt *stmt)
{
	struct stmt_cache *c;
	size_t i;

	if (stmt == NULL)
		return;
	c = cache_of(sqlite3_db_handle(stmt));
	for (i = 0; c != NULL && i < STMT_SLOTS; i++)
		if (c->slot[i].stmt == stmt) {
			/* Bindings point into the caller's memory: cleared. */
			(void)sqlite3_reset(stmt);
			(void)sqlite3_clear_bindings(stmt);
			c->slot[i].busy = 0;
			return;
		}
	sqlite3_finalize(stmt);
}

static sqlite3_stmt *
stmt_va(sqlite3 *db, struct smimp_err *err, const char *sql,
    const char *fmt, va_list ap)
{
	sqlite3_stmt *stmt = stmt_prepare(db, sql);

	if (stmt == NULL) {
		db_fail(db, err, "prepare");
		return NULL;
	}
	if (bind_va(stmt, fmt, ap) != 0) {
		db_fail(db, err, "bind");
		stmt_release(stmt);
		return NULL;
	}
	return stmt;
}

/* A statement from the cache, bound; stmt_release gives it back. */
static sqlite3_stmt *
stmt_get(sqlite3 *db, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *stmt;
	va_list ap;

	va_start(ap, fmt);
	stmt = stmt_va(db, err, sql, fmt, ap);
	va_end(ap);
	return stmt;
}

/* A statement of its own, bound, for sqlite3_finalize. */
static sqlite3_stmt *
stmt_new(sqlite3 *db, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *stmt = NULL;
	va_list ap;
	int bad;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_fail(db, err, "prepare");
		return NULL;
	}
	va_start(ap, fmt);
	bad = bind_va(stmt, fmt, ap);
	va_end(ap);
	if (bad) {
		db_fail(db, err, "bind");
		sqlite3_finalize(stmt);
		return NULL;
	}
	return stmt;
}

/* Step stmt to its end and release it: 0, 1 a constraint refused, -1. */
static int
stmt_finish(sqlite3 *db, sqlite3_stmt *stmt, struct smimp_err *err)
{
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		continue;
	if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT)
		db_fail(db, err, "step");
	stmt_release(stmt);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? 1 : -1;
}

/* Run one statement: 0 done, 1 a constraint refused it, -1 error. */
static int
sql_exec(sqlite3 *db, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *stmt;
	va_list ap;

	va_start(ap, fmt);
	stmt = stmt_va(db, err, sql, fmt, ap);
	va_end(ap);
	return stmt == NULL ? -1 : stmt_finish(db, stmt, err);
}

/*
 * The first column of the first row: an integer into *num (unless
 * NULL), text into text (cap bytes, unless NULL).  1 found, 0 no row,
 * -1 error.
 */
static int
sql_first(sqlite3 *db, struct smimp_err *err, int64_t *num, char *text,
    size_t cap, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *stmt;
	const unsigned char *t;
	va_list ap;
	int rc, ret = -1;

	va_start(ap, fmt);
	stmt = stmt_va(db, err, sql, fmt, ap);
	va_end(ap);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(db, err, "select");
		goto out;
	}
	if (num != NULL)
		*num = sqlite3_column_int64(stmt, 0);
	if (text != NULL) {
		t = sqlite3_column_text(stmt, 0);
		if ((size_t)snprintf(text, cap, "%s", t != NULL ?
		    (const char *)t : "") >= cap) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a stored "
			    "value is too long");
			goto out;
		}
	}
	ret = 1;
out:
	stmt_release(stmt);
	return ret;
}

static int
exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* One statement without parameters (a string constant), from the cache. */
static int
stmt_run(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = stmt_prepare(db, sql);
	int rc;

	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		continue;
	stmt_release(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
col_copy(sqlite3_stmt *stmt, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	(void)snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

static char *
col_strdup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return strdup(t != NULL ? (const char *)t : "");
}

/* ---- reads: a connection from the pool ---- */

static sqlite3 *
reader_get(struct sqlite_store *s)
{
	sqlite3 *db;

	pthread_mutex_lock(&s->readers_mu);
	while (s->nfree == 0)
		pthread_cond_wait(&s->reader_free, &s->readers_mu);
	db = s->free_readers[--s->nfree];
	pthread_mutex_unlock(&s->readers_mu);
	return db;
}

static void
reader_put(struct sqlite_store *s, sqlite3 *db)
{
	pthread_mutex_lock(&s->readers_mu);
	s->free_readers[s->nfree++] = db;
	pthread_cond_signal(&s->reader_free);
	pthread_mutex_unlock(&s->readers_mu);
}

/*
 * Run a query on a reader connection, its parameters bound as fmt says
 * (bind_va); row takes each row, and a row that returns non-zero stops
 * the query as a failure, with err set by row.  STORE_OK or STORE_ERROR.
 */
static int
each_row(struct sqlite_store *s, int (*row)(sqlite3_stmt *, void *,
    struct smimp_err *), void *arg, struct smimp_err *err, const char *sql,
    const char *fmt, ...)
{
	sqlite3 *db = reader_get(s);
	sqlite3_stmt *stmt;
	va_list ap;
	int rc, ret = STORE_ERROR;

	va_start(ap, fmt);
	stmt = stmt_va(db, err, sql, fmt, ap);
	va_end(ap);
	if (stmt == NULL)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		if (row(stmt, arg, err) != 0)
			goto out;
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "select");
		goto out;
	}
	ret = STORE_OK;
out:
	stmt_release(stmt);
	reader_put(s, db);
	return ret;
}

/* A row callback: the first column as an integer into *(int64_t *)arg. */
static int
int_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	(void)err;
	*(int64_t *)arg = sqlite3_column_int64(stmt, 0);
	return 0;
}

/* ---- writes: group commits on the writer ---- */

static int mailbox_expire(struct sqlite_store *, int64_t, struct smimp_err *);
static void trash_empty(struct sqlite_store *s);

/*
 * Messages past their retention leave, in a savepoint of their own: a
 * failure undoes all of it (never a trashed name whose row stays).
 */
static void
sweep_retained(struct sqlite_store *s, int64_t now)
{
	struct smimp_err err;
	int64_t keep = s->base.limits.retention;

	if (keep <= 0 || stmt_run(s->db, "SAVEPOINT sweep") != 0)
		return;
	if (mailbox_expire(s, now - keep, &err) != 0)
		(void)stmt_run(s->db, "ROLLBACK TO sweep");
	(void)stmt_run(s->db, "RELEASE sweep");
}

/* Forget what has expired by now; at most every few seconds. */
static void
sweep(struct sqlite_store *s, int64_t now)
{
	struct smimp_err err;
	int64_t idem = s->base.limits.idempotency;

	if (now <= 0 || now < s->next_sweep)
		return;
	s->next_sweep = now + SWEEP_S;
	/* Best effort: what stays is swept next time, and checked anyway. */
	(void)sql_exec(s->db, &err, "DELETE FROM nonces WHERE expires < ?",
	    "i", now);
	(void)sql_exec(s->db, &err, "DELETE FROM invites WHERE expires < ?",
	    "i", now);
	(void)sql_exec(s->db, &err, "DELETE FROM stranger_bytes WHERE "
	    "day < ?", "i", now / DAY_S);
	if (idem > 0)
		(void)sql_exec(s->db, &err, "DELETE FROM tombstones WHERE "
		    "acked < ?", "i", now - idem);
	(void)sql_exec(s->db, &err, "DELETE FROM consent_allowance WHERE "
	    "day < ?", "i", now / DAY_S);
	(void)sql_exec(s->db, &err, "DELETE FROM consent_counted WHERE "
	    "day < ?", "i", now / DAY_S);
	(void)sql_exec(s->db, &err, "DELETE FROM consent_domains WHERE "
	    "hour < ? AND ignored_until <= ?", "ii", now / 3600, now);
	sweep_retained(s, now);
}

/*
 * Run a batch (oldest first) in one transaction and commit it; on
 * failure, why into err, taken before the rollback can replace it.
 */
static int
run_batch(struct sqlite_store *s, struct write_op *batch,
    struct smimp_err *err)
{
	struct write_op *op;
	int64_t now = 0;

	if (stmt_run(s->db, "BEGIN IMMEDIATE") != 0)
		return db_fail(s->db, err, "begin");
	for (op = batch; op != NULL; op = op->next)
		if (op->now > now)
			now = op->now;
	sweep(s, now);
	for (op = batch; op != NULL; op = op->next) {
		if (stmt_run(s->db, "SAVEPOINT op") != 0) {
			op->ret = db_fail(s->db, &op->err, "savepoint");
			continue;
		}
		op->ret = op->run(s, op->arg, &op->err);
		/* An answer other than OK stores nothing of the operation. */
		if (op->ret != STORE_OK)
			(void)stmt_run(s->db, "ROLLBACK TO op");
		(void)stmt_run(s->db, "RELEASE op");
	}
	if (stmt_run(s->db, "COMMIT") != 0) {
		(void)db_fail(s->db, err, "commit");
		(void)stmt_run(s->db, "ROLLBACK");
		return -1;
	}
	return 0;
}

/* The queue, oldest first. */
static struct write_op *
take_queue(struct sqlite_store *s)
{
	struct write_op *op = s->queued, *prev = NULL, *next;

	s->queued = NULL;
	for (; op != NULL; op = next) {
		next = op->next;
		op->taken = 1;
		op->next = prev;
		prev = op;
	}
	return prev;
}

/* Give op its result and wake it; op may be gone once this returns. */
static void
op_finish(struct write_op *op, int failed, const struct smimp_err *cerr)
{
	if (failed) {
		op->ret = STORE_ERROR;
		op->err = *cerr;
	}
	atomic_store_explicit(&op->done, 1, memory_order_release);
	(void)sem_post(&op->wake);
}

/* Lead one commit: run what is queued (me among it) and wake the rest. */
static void
lead_commit(struct sqlite_store *s, struct write_op *me, int *empty)
{
	struct write_op *batch, *op, *next;
	struct smimp_err cerr;
	int64_t started;
	int failed;

	s->committing = 1;
	batch = take_queue(s);
	pthread_mutex_unlock(&s->mu);
	started = time_mono_us();
	failed = run_batch(s, batch, &cerr) != 0;
	if (!failed)
		store_committed(&s->base, started);
	pthread_mutex_lock(&s->mu);
	/* Names the batch put in the trash: the leader unlinks them. */
	if (s->sweep_trash && !failed)
		*empty = 1;
	s->sweep_trash = 0;
	s->committing = 0;
	/*
	 * Who queued meanwhile: one of them leads the next commit.  Woken
	 * under the lock, for it cannot have left: it leaves only once a
	 * commit has taken it.
	 */
	if (s->queued != NULL)
		(void)sem_post(&s->queued->wake);
	pthread_mutex_unlock(&s->mu);
	/* The others, outside the lock: each wakes once, for its commit. */
	for (op = batch; op != NULL; op = next) {
		next = op->next;
		if (op != me)
			op_finish(op, failed, &cerr);
		else if (failed) {
			me->ret = STORE_ERROR;
			me->err = cerr;
		}
	}
}

/*
 * Run run(arg) in a transaction and return once it is committed (or
 * failed): what run returned, or STORE_ERROR if the commit failed.
 */
static int
group_write(struct sqlite_store *s, int (*run)(struct sqlite_store *,
    void *, struct smimp_err *), void *arg, int64_t now,
    struct smimp_err *err)
{
	struct write_op me;
	int empty = 0;

	memset(&me, 0, sizeof(me));
	me.run = run;
	me.arg = arg;
	me.now = now;
	atomic_init(&me.done, 0);
	if (sem_init(&me.wake, 0, 0) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: cannot "
		    "set up a lock");
	pthread_mutex_lock(&s->mu);
	me.next = s->queued;
	s->queued = &me;
	for (;;) {
		/* Taken by a commit under way: its leader wakes us when done. */
		if (!s->committing && !me.taken) {
			lead_commit(s, &me, &empty);	/* unlocks */
			break;
		}
		pthread_mutex_unlock(&s->mu);
		while (sem_wait(&me.wake) != 0 && errno == EINTR)
			;
		if (atomic_load_explicit(&me.done, memory_order_acquire))
			break;
		pthread_mutex_lock(&s->mu);
	}
	(void)sem_destroy(&me.wake);
	if (empty)
		trash_empty(s);
	if (me.ret == STORE_ERROR && err != NULL)
		*err = me.err;
	return me.ret;
}

/* ---- body files ---- */

static int
body_path(const struct sqlite_store *s, const char *name, char *path,
    struct smimp_err *err)
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/%.2s/%s", s->bodies, name,
	    name) >= PATH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path too "
		    "long");
	return 0;
}

/* A fresh random name in the directory named by prefix (2 hex digits). */
static void
name_new(const char *prefix, struct body_name *n)
{
	unsigned char rnd[NAME_LEN / 2];

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(n->s, sizeof(n->s), rnd, sizeof(rnd));
	n->s[0] = prefix[0];
	n->s[1] = prefix[1];
}

static int
name_valid(const char *s)
{
	size_t i;

	for (i = 0; i < NAME_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return 0;
	return s[NAME_LEN] == '\0';
}

/*
 * Forget a name no row holds any more.  A failure leaves an orphan,
 * which the next open removes.
 */
static void
body_unlink(const struct sqlite_store *s, const char *name)
{
	char path[PATH_MAX];
	struct smimp_err err;

	/* An inline body's row has no name: nothing to unlink. */
	if (name[0] != '\0' && body_path(s, name, path, &err) == 0)
		(void)unlink(path);
}

/*
 * Is b kept inside the database (as a blob in its rows) rather than in
 * a file?  Spooled uploads are on disk already: linking them costs less
 * than copying them into the database.
 */
static int
body_inline(const struct store_body *b)
{
	return b->path == NULL && b->len <= STORE_INLINE_MAX;
}

/* An inline body's bytes to bind: never NULL, which SQLite binds as NULL. */
static const void *
inline_bytes(const struct store_body *b)
{
	static const unsigned char none[1];

	return b->data != NULL ? b->data : none;
}

/* A new file at path with data, synced: 0, 1 the name exists, -1. */
static int
write_new(const char *path, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return errno == EEXIST ? 1 : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot create '%s'", path);
	if ((len > 0 && fd_write_all(fd, data, len) != 0) || fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", path);
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	if (close(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", path);
		(void)unlink(path);
		return -1;
	}
	return 0;
}

/* link(2) from to path: 0, 1 the name exists, 2 across file systems, -1. */
static int
link_new(const char *from, const char *path, struct smimp_err *err)
{
	if (link(from, path) == 0)
		return 0;
	if (errno == EEXIST)
		return 1;
	if (errno == EXDEV)
		return 2;
	return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot link '%s'", from);
}

/*
 * A new name for a row whose body is b: a link to prev, the name of an
 * earlier row with the same body, when given; else a link to b's
 * spooled file (a copy on another file system) or a new file with its
 * data.  The file is synced; its directory is not yet.  *size gets its
 * size.
 */
static int
body_place(struct sqlite_store *s, const struct store_body *b,
    const char *prev, const char *prefix, struct body_name *out,
    uint64_t *size, struct smimp_err *err)
{
	char path[PATH_MAX], from[PATH_MAX];
	struct stat sb;
	int tries, r = 1;

	if (prev != NULL && body_path(s, prev, from, err) != 0)
		return -1;
	if (b->path == NULL && b->data == NULL && b->len > 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a body "
		    "without data");
	for (tries = 0; tries < NAME_TRIES && r == 1; tries++) {
		name_new(prefix, out);
		if (body_path(s, out->s, path, err) != 0)
			return -1;
		if (prev != NULL)
			r = link_new(from, path, err);
		else if (b->path != NULL) {
			r = link_new(b->path, path, err);
			if (r == 2)
				r = file_copy_new(b->path, path, err);
		} else
			r = write_new(path, b->data, b->len, err);
		if (r < 0 || r == 2)
			return r == 2 ? smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "store: cannot link within '%s'", s->bodies) : -1;
	}
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: no fresh "
		    "body name");
	/* Only a regular file is a body: never a link to elsewhere. */
	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: '%s' is not a "
		    "regular file", prev != NULL ? from : b->path != NULL ?
		    b->path : path);
		(void)unlink(path);
		return -1;
	}
	*size = (uint64_t)sb.st_size;
	return 0;
}

/*
 * The body names of a batch of rows, placed before the transaction
 * that references them; the transaction marks those a row took.  A row
 * whose body is inline has an empty name, and its body's size.
 */
struct names {
	size_t n;
	struct body_name *name;
	uint64_t *size;
	unsigned char *used;
};

static void
names_free(struct names *ns)
{
	free(ns->name);
	free(ns->size);
	free(ns->used);
	memset(ns, 0, sizeof(*ns));
}

/*
 * After the transaction: unlink the names no row took (every one when
 * it did not commit).
 */
static void
names_release(struct sqlite_store *s, struct names *ns, int committed)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		if (!committed || !ns->used[i])
			body_unlink(s, ns->name[i].s);
	names_free(ns);
}

/*
 * Place a name for each of n rows, row i with body b[i]; rows in a row
 * with the same body share its file.  All in one directory, synced
 * once.
 */
static int
names_place(struct sqlite_store *s, const struct store_body *const *b,
    size_t n, struct names *ns, struct smimp_err *err)
{
	char prefix[3], path[PATH_MAX];
	const char *placed = NULL;
	unsigned char r;
	size_t i;

	memset(ns, 0, sizeof(*ns));
	ns->name = calloc(n + 1, sizeof(*ns->name));
	ns->size = calloc(n + 1, sizeof(*ns->size));
	ns->used = calloc(n + 1, 1);
	if (ns->name == NULL || ns->size == NULL || ns->used == NULL) {
		names_free(ns);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	randombytes_buf(&r, 1);
	sodium_bin2hex(prefix, sizeof(prefix), &r, 1);
	for (i = 0; i < n; i++) {
		if (body_inline(b[i])) {
			if (b[i]->data == NULL && b[i]->len > 0) {
				smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
				    "body without data");
				goto fail;
			}
			ns->size[i] = b[i]->len;
			ns->n++;
			continue;
		}
		if (body_place(s, b[i], i > 0 && b[i] == b[i - 1] ?
		    ns->name[i - 1].s : NULL, prefix, &ns->name[i],
		    &ns->size[i], err) != 0)
			goto fail;
		placed = ns->name[i].s;
		ns->n++;
	}
	/* Only files need their directory synced; inline rows need nothing. */
	if (placed != NULL && (body_path(s, placed, path, err) != 0 ||
	    fsync_parent_dir(path, err) != 0))
		goto fail;
	return 0;
fail:
	names_release(s, ns, 0);
	return -1;
}

/* Names that rows gave up, to unlink once that has committed. */
struct gone {
	size_t n, cap;
	struct body_name *name;
};

static int
gone_init(struct gone *g, size_t cap, struct smimp_err *err)
{
	g->n = 0;
	g->cap = cap;
	g->name = calloc(cap + 1, sizeof(*g->name));
	return g->name != NULL ? 0 : smimp_err_sys(err, SMIMP_EXIT_FAIL,
	    "out of memory");
}

/* Unlink them if the transaction committed, and free the list. */
static void
gone_release(struct sqlite_store *s, struct gone *g, int committed)
{
	size_t i;

	for (i = 0; committed && i < g->n; i++)
		body_unlink(s, g->name[i].s);
	free(g->name);
	memset(g, 0, sizeof(*g));
}

/*
 * Delete rows with a statement that returns each one's body name
 * (DELETE ... RETURNING body), noting the names in g; an inline body's
 * row returns NULL and leaves nothing to unlink.
 */
static int
delete_noting(sqlite3 *db, struct gone *g, size_t *deleted,
    struct smimp_err *err, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *stmt;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	stmt = stmt_va(db, err, sql, fmt, ap);
	va_end(ap);
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (g->n == g->cap)
			continue;	/* one row per id: cannot be */
		(*deleted)++;
		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue;
		col_copy(stmt, 0, g->name[g->n].s, sizeof(g->name[0].s));
		g->n++;
	}
	if (rc != SQLITE_DONE)
		db_fail(db, err, "delete");
	stmt_release(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- a user's receiving devices ---- */

/* A device's pool of prekeys, when it no longer receives. */
static int
prekeys_drop(sqlite3 *db, const char *address, const char *device,
    struct smimp_err *err)
{
	return sql_exec(db, err, "DELETE FROM prekeys WHERE address = ? AND "
	    "device = ?", "tt", address, device) != 0 || sql_exec(db, err,
	    "DELETE FROM prekey_pools WHERE address = ? AND device = ?", "tt",
	    address, device) != 0 ? -1 : 0;
}

static int mailbox_unpended(struct sqlite_store *, const char *, int64_t,
    struct smimp_err *);

/*
 * The devices of address become log's, inside a transaction: each one
 * the log no longer names (by name and key) loses its pending states,
 * and the messages then pending for no device leave.
 */
static int
devices_set(struct sqlite_store *s, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	struct store_gone_devices gone;
	sqlite3_stmt *stmt;
	size_t i;
	int rc;

	stmt = stmt_get(s->db, err, "SELECT device, key FROM user_devices "
	    "WHERE address = ?", "t", address);
	if (stmt == NULL)
		return STORE_ERROR;
	gone.n = gone.over = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		store_gone_note(&gone, log,
		    (const char *)sqlite3_column_text(stmt, 0),
		    sqlite3_column_blob(stmt, 1),
		    (size_t)sqlite3_column_bytes(stmt, 1));
	stmt_release(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(s->db, err, "select");
	if (store_gone_check(&gone, address, err) != 0)
		return STORE_ERROR;
	for (i = 0; i < gone.n; i++)
		if (sql_exec(s->db, err, "DELETE FROM mailbox_pending WHERE "
		    "recipient = ? AND device = ?", "tt", address,
		    gone.name[i]) != 0 || prekeys_drop(s->db, address,
		    gone.name[i], err) != 0)
			return STORE_ERROR;
	if (sql_exec(s->db, err, "DELETE FROM user_devices WHERE address = ?",
	    "t", address) != 0)
		return STORE_ERROR;
	for (i = 0; i < log->ndevices; i++)
		if (sql_exec(s->db, err, "INSERT OR REPLACE INTO user_devices "
		    "(address, device, key) VALUES (?, ?, ?)", "ttb", address,
		    log->devices[i].name, log->devices[i].key, 32) != 0)
			return STORE_ERROR;
	if (gone.n > 0 && mailbox_unpended(s, address, now, err) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

/* ---- accounts ---- */

/* A new account with its devices, inside a transaction. */
static int
user_insert(struct sqlite_store *s, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	int r;

	r = sql_exec(s->db, err, "INSERT INTO users (address, log, created, "
	    "devices_synced) VALUES (?, ?, ?, 1)", "tbi", address, log->raw,
	    (int)log->len, now);
	if (r != 0)
		return r < 0 ? STORE_ERROR : STORE_EXISTS;
	return log->ndevices > 0 ? devices_set(s, address, log, now, err) :
	    STORE_OK;
}

static int
user_add_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_user_args *a = arg;

	return user_insert(s, a->address, a->log, a->now, err);
}

static int
sq_user_add(struct store *st, const char *address,
    const struct store_log *log, int64_t now, struct smimp_err *err)
{
	struct store_user_args a = { address, log, now };

	return group_write(sq(st), user_add_run, &a, now, err);
}

static int
user_log_update_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_log_update_args *a = arg;

	if (sql_exec(s->db, err, "UPDATE users SET log = ?, devices_synced = 1 "
	    "WHERE address = ? AND log = ?", "btb", a->log->raw,
	    (int)a->log->len, a->address, a->old, (int)a->old_len) != 0)
		return STORE_ERROR;
	if (sqlite3_changes(s->db) == 0)
		return STORE_NOT_FOUND;
	return devices_set(s, a->address, a->log, a->now, err);
}

static int
sq_user_log_update(struct store *st, const char *address,
    const unsigned char *old, size_t old_len, const struct store_log *log,
    int64_t now, struct smimp_err *err)
{
	struct store_log_update_args a = { address, old, old_len, log, now };

	/*
	 * Messages a removed device left pending for nobody go to the
	 * trash, which the commit's leader empties.
	 */
	return group_write(sq(st), user_log_update_run, &a, now, err);
}

struct blob_out {
	unsigned char **data;
	size_t *len;
	int found;
};

static int
blob_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct blob_out *b = arg;
	size_t len = (size_t)sqlite3_column_bytes(stmt, 0);

	*b->data = malloc(len + 1);
	if (*b->data == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	if (len > 0)
		memcpy(*b->data, sqlite3_column_blob(stmt, 0), len);
	(*b->data)[len] = '\0';
	*b->len = len;
	b->found = 1;
	return 0;
}

static int
sq_user_get(struct store *st, const char *address, unsigned char **log,
    size_t *len, struct smimp_err *err)
{
	struct blob_out b = { log, len, 0 };

	*log = NULL;
	*len = 0;
	if (each_row(sq(st), blob_row, &b, err, "SELECT log FROM users "
	    "WHERE address = ?", "t", address) != STORE_OK)
		return STORE_ERROR;
	return b.found ? STORE_OK : STORE_NOT_FOUND;
}

/*
 * The account, its mailbox, its tombstones, whom it wrote to, what it
 * sent that still waits in the relay queue and the invitations still
 * pending for its address, in one transaction: an address given again
 * later inherits nothing, not even a bounce of the old mail, and a
 * token kept from before cannot take it back.  The body names go to the
 * trash, to unlink once that has committed.
 */
static int
user_del_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_user_args *a = arg;

	if (sql_exec(s->db, err, "DELETE FROM users WHERE address = ?", "t",
	    a->address) != 0)
		return STORE_ERROR;
	if (sqlite3_changes(s->db) == 0)
		return STORE_NOT_FOUND;
	if (sql_exec(s->db, err, "INSERT INTO trash (name) SELECT body "
	    "FROM mailbox WHERE recipient = ? AND body IS NOT NULL", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "INSERT INTO trash (name) SELECT body "
	    "FROM outbound WHERE sender = ? AND body IS NOT NULL", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM outbound WHERE sender = ?", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM mailbox_pending WHERE "
	    "recipient = ?", "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM user_devices WHERE address = ?",
	    "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM mailbox WHERE recipient = ?", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM mailbox_usage WHERE "
	    "recipient = ?", "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM tombstones WHERE recipient = ?",
	    "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM correspondents WHERE local = ?",
	    "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM policies WHERE address = ?", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM policy_entries WHERE "
	    "address = ?", "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM consent_allowance WHERE "
	    "recipient = ?", "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM consent_counted WHERE "
	    "recipient = ?", "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM sent_states WHERE sender = ?",
	    "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM prekeys WHERE address = ?", "t",
	    a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM prekey_pools WHERE address = ?",
	    "t", a->address) != 0 ||
	    sql_exec(s->db, err, "DELETE FROM invites WHERE address = ?", "t",
	    a->address) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

struct trash_page {
	size_t n;
	int64_t last;
	struct body_name name[TRASH_PAGE];
};

static int
trash_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct trash_page *p = arg;

	(void)err;
	if (p->n == TRASH_PAGE)
		return 0;	/* LIMIT says this cannot be */
	p->last = sqlite3_column_int64(stmt, 0);
	col_copy(stmt, 1, p->name[p->n].s, sizeof(p->name[0].s));
	p->n++;
	return 0;
}

static int
trash_forget(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	return sql_exec(s->db, err, "DELETE FROM trash WHERE rowid <= ?", "i",
	    *(int64_t *)arg) == 0 ? STORE_OK : STORE_ERROR;
}

/*
 * Unlink the names in the trash, a page at a time.  What fails here
 * stays for the next open's sweep: the rows that held them are gone.
 */
static void
trash_empty(struct sqlite_store *s)
{
	struct trash_page *p;
	struct smimp_err err;
	size_t i;

	p = malloc(sizeof(*p));
	if (p == NULL)
		return;
	do {
		p->n = 0;
		if (each_row(s, trash_row, p, &err, "SELECT rowid, name FROM "
		    "trash ORDER BY rowid LIMIT ?", "i",
		    (int64_t)TRASH_PAGE) != STORE_OK)
			break;
		for (i = 0; i < p->n; i++)
			body_unlink(s, p->name[i].s);
		if (p->n > 0 && group_write(s, trash_forget, &p->last, 0,
		    &err) != STORE_OK)
			break;
	} while (p->n == TRASH_PAGE);
	free(p);
}

static int
sq_user_del(struct store *st, const char *address, int64_t now,
    struct smimp_err *err)
{
	struct store_user_args a = { address, NULL, now };
	int r;

	r = group_write(sq(st), user_del_run, &a, now, err);
	if (r == STORE_OK)
		trash_empty(sq(st));
	return r;
}

struct user_each {
	int (*fn)(const char *, const unsigned char *, size_t, void *);
	void *arg;
};

static int
user_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct user_each *u = arg;

	return u->fn((const char *)sqlite3_column_text(stmt, 0),
	    sqlite3_column_blob(stmt, 1), (size_t)sqlite3_column_bytes(stmt, 1),
	    u->arg) != 0 ? store_stopped(err) : 0;
}

/* fn for each row of sql (address, log; no parameters). */
static int
users_each(struct store *st, const char *sql,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	struct user_each u = { fn, arg };

	return each_row(sq(st), user_row, &u, err, sql, "");
}

static int
sq_user_list(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	return users_each(st, "SELECT address, log FROM users ORDER BY "
	    "address", fn, arg, err);
}

static int
sq_user_list_unsynced(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	return users_each(st, "SELECT address, log FROM users WHERE "
	    "devices_synced = 0 ORDER BY address", fn, arg, err);
}

/* ---- invitations ---- */

static int
invite_add_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_invite_args *a = arg;

	return sql_exec(s->db, err, "INSERT INTO invites (hash, address, "
	    "expires) VALUES (?, ?, ?)", "bti", a->hash, INVITE_HASH_SIZE,
	    a->address, a->when) == 0 ? STORE_OK : STORE_ERROR;
}

static int
sq_invite_add(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, int64_t expires, struct smimp_err *err)
{
	struct store_invite_args a = { hash, address, expires, NULL };

	return group_write(sq(st), invite_add_run, &a, 0, err);
}

static int
sq_invite_check(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    int64_t now, char address[ADDRESS_MAX + 1], struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	sqlite3 *db = reader_get(s);
	int r;

	r = sql_first(db, err, NULL, address, ADDRESS_MAX + 1, "SELECT "
	    "address FROM invites WHERE hash = ? AND expires >= ?", "bi", hash,
	    INVITE_HASH_SIZE, now);
	reader_put(s, db);
	return r < 0 ? STORE_ERROR : r == 0 ? STORE_NOT_FOUND : STORE_OK;
}

static int
invite_redeem_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_invite_args *a = arg;

	if (sql_exec(s->db, err, "DELETE FROM invites WHERE hash = ? AND "
	    "address = ? AND expires >= ?", "bti", a->hash, INVITE_HASH_SIZE,
	    a->address, a->when) != 0)
		return STORE_ERROR;
	if (sqlite3_changes(s->db) == 0)
		return STORE_NOT_FOUND;
	/* EXISTS rolls back: the invitation stays for another try. */
	return user_insert(s, a->address, a->log, a->when, err);
}

static int
sq_invite_redeem(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, const struct store_log *log, int64_t now,
    struct smimp_err *err)
{
	struct store_invite_args a = { hash, address, now, log };

	return group_write(sq(st), invite_redeem_run, &a, now, err);
}

struct invite_each {
	int (*fn)(const char *, int64_t, void *);
	void *arg;
};

static int
invite_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct invite_each *v = arg;

	return v->fn((const char *)sqlite3_column_text(stmt, 0),
	    sqlite3_column_int64(stmt, 1), v->arg) != 0 ? store_stopped(err) : 0;
}

static int
sq_invite_list(struct store *st, int (*fn)(const char *, int64_t, void *),
    void *arg, struct smimp_err *err)
{
	struct invite_each v = { fn, arg };

	return each_row(sq(st), invite_row, &v, err, "SELECT address, expires "
	    "FROM invites ORDER BY address, expires", "");
}

/* ---- nonces ---- */

/* Claim (signer, nonce) inside a transaction: STORE_OK or STORE_REPLAY. */
static int
nonce_put(sqlite3 *db, const char *signer, const char *nonce,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	/* One that expired by now is free again, swept or not. */
	if (sql_exec(db, err, "INSERT INTO nonces (signer, nonce, expires) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (signer, nonce) DO UPDATE SET "
	    "expires = ?3 WHERE nonces.expires < ?4", "ttii", signer, nonce,
	    expires, now) != 0)
		return STORE_ERROR;
	return sqlite3_changes(db) == 0 ? STORE_REPLAY : STORE_OK;
}

static int
nonce_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct store_nonce_args *a = arg;

	return nonce_put(s->db, a->signer, a->nonce, a->expires, a->now, err);
}

static int
sq_nonce_claim(struct store *st, const char *signer, const char *nonce,
    int64_t expires, int64_t now, struct smimp_err *err)
{
	struct store_nonce_args a = { signer, nonce, expires, now };

	return group_write(sq(st), nonce_run, &a, now, err);
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
 * The delivery states of a new copy (its row's seq): pending for each
 * receiving device of the recipient but except (a device name, or ""
 * for none).  The identity key's state is in the row itself.
 */
static int
pending_put(struct sqlite_store *s, const char *recipient, int64_t seq,
    const char *except, struct smimp_err *err)
{
	return sql_exec(s->db, err, "INSERT INTO mailbox_pending (recipient, "
	    "device, seq) SELECT address, device, ?3 FROM user_devices WHERE "
	    "address = ?1 AND device <> ?2", "tti", recipient, except, seq);
}

/*
 * Is the triple of d stored, or acknowledged within the idempotency
 * window (when checks asks)?  1, 0 or -1.
 */
static int
mailbox_known(struct sqlite_store *s, const struct store_delivery *d,
    int64_t now, int checks, struct smimp_err *err)
{
	const struct store_limits *lim = &s->base.limits;

	return sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM mailbox "
	    "WHERE recipient = ?1 AND sender = ?2 AND message_id = ?3 "
	    "UNION ALL SELECT 1 FROM tombstones WHERE ?6 AND recipient = ?1 "
	    "AND sender = ?2 AND message_id = ?3 AND (?4 <= 0 OR "
	    "acked >= ?5)", "tttiii", d->recipient, d->sender, d->message_id,
	    lim->idempotency, now - lim->idempotency,
	    (int64_t)((checks & CHECK_ACKED) != 0));
}

/*
 * One copy into a mailbox, inside a transaction: STORE_OK (stored, or
 * known already: *stored says which), STORE_QUOTA or STORE_ERROR.  body
 * is its file's name, or empty when d->body goes inline.  sent_by: NULL
 * for a message to the recipient, pending for each of its devices; for
 * a sent copy, the device that sent it ("" the identity key), which is
 * the one device it is not pending for.
 */
static int
mailbox_put(struct sqlite_store *s, const struct store_delivery *d,
    const char *body, uint64_t size, int64_t now, int checks,
    const char *sent_by, int *stored, struct smimp_err *err)
{
	const struct store_limits *lim = &s->base.limits;
	const char *dom = store_domain_of(d->sender);
	char site[ADDRESS_DOMAIN_MAX + 1];
	int in = body[0] == '\0';
	int64_t v = 0, id;
	int r, i, stranger = 0;

	*stored = 0;
	/*
	 * The account may have gone since the request was checked: what
	 * came for it goes with it, as if deleted by deluser, and never
	 * waits for the address's next owner.
	 */
	r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = ?", "t", d->recipient);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	r = mailbox_known(s, d, now, checks, err);
	if (r != 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	if ((checks & CHECK_QUOTA) && lim->mailbox_bytes > 0) {
		r = sql_first(s->db, err, &v, NULL, 0, "SELECT bytes FROM "
		    "mailbox_usage WHERE recipient = ?", "t", d->recipient);
		if (r < 0)
			return STORE_ERROR;
		if (r == 0 || v < 0)
			v = 0;
		if ((uint64_t)v + size > lim->mailbox_bytes)
			return STORE_QUOTA;
	}
	if ((checks & CHECK_STRANGER) && lim->stranger_domain_bytes > 0) {
		r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM "
		    "correspondents WHERE local = ? AND domain = ?", "tt",
		    d->recipient, dom);
		if (r < 0)
			return STORE_ERROR;
		stranger = r == 0;
		/* Counted per site: a domain's subdomains share its quota. */
		site_of(dom, site);
		r = !stranger ? 0 : sql_first(s->db, err, &v, NULL, 0,
		    "SELECT bytes FROM stranger_bytes WHERE domain = ? AND "
		    "day = ?", "ti", site, now / DAY_S);
		if (r < 0)
			return STORE_ERROR;
		if (r == 0 || v < 0)
			v = 0;
		if (stranger && (uint64_t)v + size > lim->stranger_domain_bytes)
			return STORE_QUOTA;
	}
	for (i = 0, r = 1; i < NAME_TRIES && r == 1; i++) {
		id = store_random_id();
		r = sql_exec(s->db, err, "INSERT INTO mailbox (id, recipient, "
		    "sender, message_id, body, data, size, received, "
		    "identity_pending, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
		    "?)", "ittttbiiii", id, d->recipient, d->sender,
		    d->message_id, in ? NULL : body, in ? inline_bytes(d->body) :
		    NULL, in ? (int)d->body->len : 0, (int64_t)size, now,
		    (int64_t)(sent_by == NULL || sent_by[0] != '\0'),
		    (int64_t)(sent_by != NULL));
	}
	if (r != 0)
		return r < 0 ? STORE_ERROR : smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "store: no fresh mailbox id");
	if (pending_put(s, d->recipient, sqlite3_last_insert_rowid(s->db),
	    sent_by != NULL ? sent_by : "", err) != 0)
		return STORE_ERROR;
	if (stranger && sql_exec(s->db, err, "INSERT INTO stranger_bytes "
	    "(domain, day, bytes) VALUES (?, ?, ?) ON CONFLICT (domain, day) "
	    "DO UPDATE SET bytes = bytes + excluded.bytes", "tii", site,
	    now / DAY_S, (int64_t)size) != 0)
		return STORE_ERROR;
	*stored = 1;
	return STORE_OK;
}

struct deliver_args {
	const struct store_nonce *nonce;
	const struct store_delivery *d;
	size_t n;
	int *results;
	int64_t now;
	struct names ns;
};

static int
deliver_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct deliver_args *a = arg;
	size_t i;
	int r, stored;

	if (a->nonce != NULL && (r = nonce_put(s->db, a->nonce->signer,
	    a->nonce->nonce, a->nonce->expires, a->now, err)) != STORE_OK)
		return r;
	for (i = 0; i < a->n; i++) {
		r = mailbox_put(s, &a->d[i], a->ns.name[i].s, a->ns.size[i],
		    a->now, CHECK_QUOTA | CHECK_STRANGER | CHECK_ACKED, NULL,
		    &stored, err);
		if (r == STORE_ERROR)
			return STORE_ERROR;
		a->results[i] = r;
		a->ns.used[i] = (unsigned char)stored;
	}
	return STORE_OK;
}

static int
sq_deliver(struct store *st, const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results, int64_t now,
    struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct deliver_args a = { nonce, d, n, results, now,
	    { 0, NULL, NULL, NULL } };
	const struct store_body **b;
	size_t i;
	int r;

	b = calloc(n > 0 ? n : 1, sizeof(*b));
	if (b == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < n; i++)
		b[i] = d[i].body;
	r = names_place(s, b, n, &a.ns, err);
	free(b);
	if (r != 0)
		return STORE_ERROR;
	r = group_write(s, deliver_run, &a, now, err);
	names_release(s, &a.ns, r == STORE_OK);
	return r;
}

struct mailbox_each {
	int (*fn)(const struct mailbox_entry *, void *);
	void *arg;
};

static int
mailbox_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct mailbox_each *m = arg;
	struct mailbox_entry e;

	memset(&e, 0, sizeof(e));
	e.id = sqlite3_column_int64(stmt, 0);
	col_copy(stmt, 1, e.sender, sizeof(e.sender));
	col_copy(stmt, 2, e.message_id, sizeof(e.message_id));
	e.size = (uint64_t)sqlite3_column_int64(stmt, 3);
	e.received = sqlite3_column_int64(stmt, 4);
	e.sent = sqlite3_column_int64(stmt, 5) != 0;
	return m->fn(&e, m->arg) != 0 ? store_stopped(err) : 0;
}

static int
sq_mailbox_list(struct store *st, const char *owner, const char *device,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err)
{
	struct mailbox_each m = { fn, arg };

	device = store_device_key(device);
	/* seq is the arrival order; it never leaves the store. */
	if (device[0] == '\0')
		return each_row(sq(st), mailbox_row, &m, err, "SELECT id, "
		    "sender, message_id, size, received, sent FROM mailbox "
		    "WHERE recipient = ? AND identity_pending = 1 ORDER BY seq "
		    "LIMIT ?", "ti", owner, (int64_t)MAILBOX_PAGE);
	return each_row(sq(st), mailbox_row, &m, err, "SELECT m.id, m.sender, "
	    "m.message_id, m.size, m.received, m.sent FROM mailbox_pending p "
	    "JOIN mailbox m ON m.seq = p.seq WHERE p.recipient = ? AND "
	    "p.device = ? ORDER BY p.seq LIMIT ?", "tti", owner, device,
	    (int64_t)MAILBOX_PAGE);
}

/*
 * Open the body of the row sql finds (its columns: body, data) on a
 * reader, with the owner and device when given (?1 owner, ?2 id, ?3
 * device; else ?1 id): STORE_OK with *fd and *len, or STORE_NOT_FOUND,
 * also when the row went between the query and the open.
 */
static int
body_open(struct sqlite_store *s, const char *sql, const char *owner,
    const char *device, int64_t id, int *fd, uint64_t *len,
    struct smimp_err *err)
{
	char name[NAME_LEN + 1], path[PATH_MAX];
	sqlite3 *db = reader_get(s);
	sqlite3_stmt *stmt;
	const unsigned char *t;
	const void *data;
	struct stat sb;
	int rc, ret = STORE_ERROR, found = 0;

	*fd = -1;
	*len = 0;
	if (owner != NULL)
		stmt = stmt_get(db, err, sql, "tit", owner, id, device);
	else
		stmt = stmt_get(db, err, sql, "i", id);
	if (stmt == NULL)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = STORE_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(db, err, "select");
		goto out;
	}
	if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
		/* blob, then bytes: the order SQLite asks for */
		data = sqlite3_column_blob(stmt, 1);
		ret = store_blob_fd(data, (size_t)sqlite3_column_bytes(stmt, 1), fd,
		    len, err);
		goto out;
	}
	t = sqlite3_column_text(stmt, 0);
	if (t == NULL || !name_valid((const char *)t)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a row names no "
		    "valid body");
		goto out;
	}
	memcpy(name, t, sizeof(name));
	found = 1;
out:
	stmt_release(stmt);
	reader_put(s, db);
	if (!found)
		return ret;
	if (body_path(s, name, path, err) != 0)
		return STORE_ERROR;
	/* Not blocked by a FIFO in its place: only a file is a body. */
	*fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? STORE_NOT_FOUND : smimp_err_sys(err,
		    SMIMP_EXIT_FAIL, "cannot open '%s'", path);
	rc = fstat(*fd, &sb);
	if (rc != 0 || !S_ISREG(sb.st_mode)) {
		if (rc != 0)
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'",
			    path);
		else
			smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is not a "
			    "file", path);
		(void)close(*fd);
		*fd = -1;
		return STORE_ERROR;
	}
	*len = (uint64_t)sb.st_size;
	return STORE_OK;
}

static int
sq_mailbox_open(struct store *st, const char *owner, const char *device,
    int64_t id, int *fd, uint64_t *len, struct smimp_err *err)
{
	return body_open(sq(st), "SELECT body, data FROM mailbox WHERE "
	    "recipient = ?1 AND id = ?2 AND CASE WHEN ?3 = '' THEN "
	    "identity_pending = 1 ELSE EXISTS (SELECT 1 FROM mailbox_pending p "
	    "WHERE p.recipient = ?1 AND p.device = ?3 AND p.seq = mailbox.seq) "
	    "END", owner, store_device_key(device), id, fd, len, err);
}

/*
 * The messages whose seqs are in temp.doomed leave, inside a
 * transaction: their states, their rows (the triples kept as
 * acknowledged at now), their body names into the trash.
 */
static int
doomed_remove(struct sqlite_store *s, int64_t now, struct smimp_err *err)
{
	int trashed;

	if (sql_exec(s->db, err, "DELETE FROM mailbox_pending WHERE seq IN "
	    "(SELECT seq FROM temp.doomed)", "") != 0 ||
	    sql_exec(s->db, err, "INSERT OR REPLACE INTO tombstones (recipient, "
	    "sender, message_id, acked) SELECT recipient, sender, message_id, ? "
	    "FROM mailbox WHERE seq IN (SELECT seq FROM temp.doomed)", "i",
	    now) != 0 ||
	    sql_exec(s->db, err, "INSERT INTO trash (name) SELECT body FROM "
	    "mailbox WHERE seq IN (SELECT seq FROM temp.doomed) AND body IS "
	    "NOT NULL", "") != 0)
		return -1;
	trashed = sqlite3_changes(s->db) > 0;
	if (sql_exec(s->db, err, "DELETE FROM mailbox WHERE seq IN (SELECT seq "
	    "FROM temp.doomed)", "") != 0 ||
	    sql_exec(s->db, err, "DELETE FROM temp.doomed", "") != 0)
		return -1;
	if (trashed)
		s->sweep_trash = 1;
	return 0;
}

/* The owner's messages pending for no device leave (devices_set). */
static int
mailbox_unpended(struct sqlite_store *s, const char *owner, int64_t now,
    struct smimp_err *err)
{
	if (sql_exec(s->db, err, "INSERT INTO temp.doomed (seq) SELECT seq "
	    "FROM mailbox WHERE recipient = ? AND identity_pending = 0 AND "
	    "NOT EXISTS (SELECT 1 FROM mailbox_pending p WHERE p.seq = "
	    "mailbox.seq)", "t", owner) != 0)
		return -1;
	return doomed_remove(s, now, err);
}

/* Messages first acknowledged before cut leave (the sweep). */
static int
mailbox_expire(struct sqlite_store *s, int64_t cut, struct smimp_err *err)
{
	if (sql_exec(s->db, err, "INSERT INTO temp.doomed (seq) SELECT seq "
	    "FROM mailbox WHERE first_ack IS NOT NULL AND first_ack < ?", "i",
	    cut) != 0)
		return -1;
	return doomed_remove(s, cut + s->base.limits.retention, err);
}

struct ack_args {
	const char *owner, *device;
	const int64_t *ids;
	size_t n, acked;
	int64_t now;
	struct gone g;
};

/*
 * The owner's message id: 1 with its seq and whether it is pending for
 * the identity key, 0 none, -1 error.
 */
static int
mailbox_find(sqlite3 *db, const char *owner, int64_t id, int64_t *seq,
    int *identity, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = stmt_get(db, err, "SELECT seq, identity_pending FROM mailbox "
	    "WHERE recipient = ? AND id = ?", "ti", owner, id);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(stmt, 0);
		*identity = sqlite3_column_int64(stmt, 1) != 0;
	}
	stmt_release(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, err, "select");
	return rc == SQLITE_ROW;
}

/* A message no device is pending for leaves: its name into a->g. */
static int
ack_drop(struct sqlite_store *s, struct ack_args *a, int64_t seq,
    struct smimp_err *err)
{
	size_t n = 0;

	return sql_exec(s->db, err, "INSERT OR REPLACE INTO tombstones "
	    "(recipient, sender, message_id, acked) SELECT recipient, sender, "
	    "message_id, ? FROM mailbox WHERE seq = ?", "ii", a->now,
	    seq) != 0 || delete_noting(s->db, &a->g, &n, err, "DELETE FROM "
	    "mailbox WHERE seq = ? RETURNING body", "i", seq) != 0 ? -1 : 0;
}

/* Acknowledge one id for a->device: 0 (counted in a->acked if it was). */
static int
ack_one(struct sqlite_store *s, struct ack_args *a, int64_t id,
    struct smimp_err *err)
{
	int64_t seq = 0;
	int identity = 0, r;

	r = mailbox_find(s->db, a->owner, id, &seq, &identity, err);
	if (r <= 0)
		return r;
	if (a->device[0] == '\0') {
		if (!identity)
			return 0;
		identity = 0;
	} else {
		if (sql_exec(s->db, err, "DELETE FROM mailbox_pending WHERE "
		    "recipient = ? AND device = ? AND seq = ?", "tti", a->owner,
		    a->device, seq) != 0)
			return -1;
		if (sqlite3_changes(s->db) == 0)
			return 0;
	}
	a->acked++;
	r = identity ? 1 : sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 "
	    "FROM mailbox_pending WHERE seq = ? LIMIT 1", "i", seq);
	if (r < 0)
		return -1;
	if (r == 0)
		return ack_drop(s, a, seq, err);
	/* Others still to fetch it: it stays, for retention at most. */
	return sql_exec(s->db, err, "UPDATE mailbox SET identity_pending = ?, "
	    "first_ack = coalesce(first_ack, ?) WHERE seq = ?", "iii",
	    (int64_t)identity, a->now, seq);
}

static int
ack_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct ack_args *a = arg;
	size_t i;

	a->acked = 0;
	a->g.n = 0;
	for (i = 0; i < a->n; i++)
		if (ack_one(s, a, a->ids[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
sq_mailbox_ack(struct store *st, const char *owner, const char *device,
    const int64_t *ids, size_t n, size_t *acked, int64_t now,
    struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct ack_args a = { owner, store_device_key(device), ids, n, 0, now,
	    { 0, 0, NULL } };
	int r;

	*acked = 0;
	if (n == 0)
		return STORE_OK;
	if (gone_init(&a.g, n, err) != 0)
		return STORE_ERROR;
	r = group_write(s, ack_run, &a, now, err);
	gone_release(s, &a.g, r == STORE_OK);
	if (r == STORE_OK)
		*acked = a.acked;
	return r;
}

/* ---- what became of sent messages ---- */

#define SENT_UPSERT_TAIL "ON CONFLICT (sender, message_id, domain) DO " \
    "UPDATE SET state = excluded.state, recipients = excluded.recipients, " \
    "detail = excluded.detail, at = excluded.at"
/* A bounce's record, from its queue entry while the owner holds it. */
#define SENT_UPSERT_FROM_OUTBOUND "INSERT INTO sent_states (sender, " \
    "message_id, domain, state, recipients, detail, at) SELECT sender, " \
    "message_id, domain, ?1, recipients, ?3, ?2 FROM outbound WHERE " \
    "lease_owner = ?4 AND id = ?5 " SENT_UPSERT_TAIL

static int
sent_upsert(sqlite3 *db, const struct store_sent *e, struct smimp_err *err)
{
	return sql_exec(db, err, "INSERT INTO sent_states (sender, "
	    "message_id, domain, state, recipients, detail, at) VALUES (?, ?, "
	    "?, ?, ?, ?, ?) " SENT_UPSERT_TAIL, "tttitti", e->sender,
	    e->message_id, e->domain, (int64_t)e->state, e->recipients,
	    e->text, e->at) != 0 ? -1 : 0;
}

struct sent_put_args {
	const struct store_sent *s;
	size_t n;
};

static int
sent_put_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct sent_put_args *a = arg;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (sent_upsert(s->db, &a->s[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
sq_sent_put(struct store *st, const struct store_sent *e, size_t n,
    struct smimp_err *err)
{
	struct sent_put_args a = { e, n };

	return group_write(sq(st), sent_put_run, &a, 0, err);
}

struct sent_each {
	int (*fn)(const struct store_sent_row *, void *);
	void *arg;
	size_t seen;
};

static int
sent_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct sent_each *q = arg;
	struct store_sent_row r;
	const unsigned char *t;

	t = sqlite3_column_text(stmt, 0);
	r.domain = t != NULL ? (const char *)t : "";
	t = sqlite3_column_text(stmt, 1);
	r.recipients = t != NULL ? (const char *)t : "";
	r.state = (enum store_sent_state)sqlite3_column_int(stmt, 2);
	t = sqlite3_column_text(stmt, 3);
	r.text = t != NULL ? (const char *)t : "";
	r.at = sqlite3_column_int64(stmt, 4);
	r.attempts = (unsigned int)sqlite3_column_int(stmt, 5);
	r.next_try = sqlite3_column_int64(stmt, 6);
	r.held = sqlite3_column_int(stmt, 7) != 0;
	q->seen++;
	return q->fn(&r, q->arg) != 0 ? store_stopped(err) : 0;
}

static int
sq_sent_list(struct store *st, const char *sender, const char *message_id,
    int (*fn)(const struct store_sent_row *, void *), void *arg,
    struct smimp_err *err)
{
	struct sent_each q = { fn, arg, 0 };
	int r;

	/* One statement: the queue and the records as of one moment. */
	r = each_row(sq(st), sent_row, &q, err, "SELECT domain, recipients, "
	    "0, last_error, first_try, attempts, next_try, held FROM outbound "
	    "WHERE sender = ?1 AND message_id = ?2 UNION ALL SELECT domain, "
	    "recipients, state, detail, at, 0, 0, 0 FROM sent_states WHERE "
	    "sender = ?1 AND message_id = ?2 ORDER BY 1, 3", "tt", sender,
	    message_id);
	return r == STORE_OK && q.seen == 0 ? STORE_NOT_FOUND : r;
}

struct sent_expire_args {
	int64_t before;
	uint64_t n;
};

static int
sent_expire_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct sent_expire_args *a = arg;

	if (sql_exec(s->db, err, "DELETE FROM sent_states WHERE at < ?", "i",
	    a->before) != 0)
		return STORE_ERROR;
	a->n = (uint64_t)sqlite3_changes(s->db);
	return STORE_OK;
}

static int
sq_sent_expire(struct store *st, int64_t before, uint64_t *n,
    struct smimp_err *err)
{
	struct sent_expire_args a = { before, 0 };
	int r;

	r = group_write(sq(st), sent_expire_run, &a, 0, err);
	*n = r == STORE_OK ? a.n : 0;
	return r;
}

/* ---- submissions ---- */

struct submit_args {
	const struct store_submission *sub;
	int64_t now;
	int sent;		/* a name is placed for a sent copy, last */
	struct names ns;	/* the relay entries', then the mailboxes' */
};

/*
 * The sender's own copy, filed as sent (store.h): none when no device
 * but the one that submitted receives, none over the sender's quota.
 */
static int
sent_copy(struct sqlite_store *s, struct submit_args *a, uint64_t size,
    struct smimp_err *err)
{
	const struct store_submission *sub = a->sub;
	const char *dev = store_device_key(sub->device);
	struct store_delivery d;
	size_t k = sub->nobs + sub->nlocal;
	int r, stored;

	if (dev[0] == '\0') {
		r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM "
		    "user_devices WHERE address = ? LIMIT 1", "t", sub->sender);
		if (r <= 0)
			return r < 0 ? STORE_ERROR : STORE_OK;
	}
	d.recipient = d.sender = sub->sender;
	d.message_id = sub->message_id;
	d.body = sub->body;
	r = mailbox_put(s, &d, a->ns.name[k].s, size, a->now, CHECK_QUOTA |
	    CHECK_ACKED, dev, &stored, err);
	if (r == STORE_OK)
		a->ns.used[k] = (unsigned char)stored;
	return r == STORE_QUOTA ? STORE_OK : r;
}

static int
submit_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct submit_args *a = arg;
	const struct store_submission *sub = a->sub;
	struct store_delivery d;
	uint64_t size = a->ns.n > 0 ? a->ns.size[0] : 0;
	int in = body_inline(sub->body);
	int64_t bytes = 0;
	int queued = 0;
	size_t i;
	int r, stored;

	r = nonce_put(s->db, sub->signer, sub->nonce, sub->nonce_expires,
	    a->now, err);
	if (r != STORE_OK)
		return r;
	if (sub->sent != NULL && sent_upsert(s->db, sub->sent, err) != 0)
		return STORE_ERROR;
	for (i = 0; i < sub->nobs; i++) {
		/* Queued once per (domain, sender, message id). */
		if (sql_exec(s->db, err, "INSERT INTO outbound (domain, sender, "
		    "recipients, all_recipients, message_id, body, size, stamp, "
		    "stamp_date, first_try, next_try, work, introduction, "
		    "stamp_device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		    "?10, ?10, ?11, ?12, ?13) ON CONFLICT (domain, sender, "
		    "message_id) DO NOTHING", "ttttttittittt",
		    sub->obs[i].domain, sub->sender, sub->obs[i].recipients,
		    sub->obs[i].stamp != NULL ? sub->obs[i].recipients :
		    sub->all, sub->message_id, in ? NULL : a->ns.name[i].s,
		    (int64_t)size, sub->obs[i].stamp != NULL ?
		    sub->obs[i].stamp : sub->stamp, sub->stamp_date, a->now,
		    store_or_empty(sub->obs[i].work),
		    store_or_empty(sub->obs[i].introduction),
		    store_or_empty(sub->stamp_device)) != 0)
			return STORE_ERROR;
		if (sqlite3_changes(s->db) > 0) {
			a->ns.used[i] = 1;
			queued++;
			if (in && sql_exec(s->db, err, "INSERT INTO outbound_data "
			    "(id, data) VALUES (?, ?)", "ib",
			    sqlite3_last_insert_rowid(s->db),
			    inline_bytes(sub->body), (int)sub->body->len) != 0)
				return STORE_ERROR;
		}
		/* The sender wrote to that domain: no stranger to it now. */
		if (sql_exec(s->db, err, "INSERT OR IGNORE INTO correspondents "
		    "(local, domain) VALUES (?, ?)", "tt", sub->sender,
		    sub->obs[i].domain) != 0)
			return STORE_ERROR;
	}
	/* What the sender has queued, this submission's entries included. */
	if (queued > 0 && s->base.limits.sender_queue_bytes > 0) {
		r = sql_first(s->db, err, &bytes, NULL, 0, "SELECT bytes FROM "
		    "queue_usage WHERE sender = ?", "t", sub->sender);
		if (r < 0)
			return STORE_ERROR;
		if (r == 1 && bytes > 0 && (uint64_t)bytes >
		    s->base.limits.sender_queue_bytes)
			return STORE_QUOTA;
	}
	for (i = 0; i < sub->nlocal; i++) {
		d.recipient = sub->local[i];
		d.sender = sub->sender;
		d.message_id = sub->message_id;
		d.body = sub->body;
		r = mailbox_put(s, &d, a->ns.name[sub->nobs + i].s, size, a->now,
		    CHECK_QUOTA | CHECK_ACKED, NULL, &stored, err);
		if (r != STORE_OK)
			return r;
		a->ns.used[sub->nobs + i] = (unsigned char)stored;
	}
	/* After the local copies: one to the sender is the sent copy too. */
	return a->sent ? sent_copy(s, a, size, err) : STORE_OK;
}

/*
 * May the submission make a sent copy?  Asked before placing its name,
 * so that a sender without devices places no file link for nothing.
 * The transaction decides; a name placed for nothing is unlinked.
 */
static int
sent_possible(struct sqlite_store *s, const struct store_submission *sub,
    struct smimp_err *err)
{
	sqlite3 *db;
	int r;

	if (body_inline(sub->body) || store_device_key(sub->device)[0] != '\0')
		return 1;
	db = reader_get(s);
	r = sql_first(db, err, NULL, NULL, 0, "SELECT 1 FROM user_devices "
	    "WHERE address = ? LIMIT 1", "t", sub->sender);
	reader_put(s, db);
	return r;
}

static int
sq_submit(struct store *st, const struct store_submission *sub, int64_t now,
    struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct submit_args a = { sub, now, 0, { 0, NULL, NULL, NULL } };
	const struct store_body **b;
	size_t i, n = sub->nobs + sub->nlocal;
	int r;

	a.sent = sent_possible(s, sub, err);
	if (a.sent < 0)
		return STORE_ERROR;
	n += (size_t)a.sent;
	b = calloc(n + 1, sizeof(*b));
	if (b == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < n; i++)
		b[i] = sub->body;
	r = names_place(s, b, n, &a.ns, err);
	free(b);
	if (r != 0)
		return STORE_ERROR;
	r = group_write(s, submit_run, &a, now, err);
	names_release(s, &a.ns, r == STORE_OK);
	return r;
}

/* ---- the relay queue ---- */

/* The columns outbound_fill reads, of the entries chosen after WHERE. */
#define CLAIM_SELECT "SELECT o.id, o.domain, o.sender, o.recipients, " \
    "o.all_recipients, o.message_id, o.size, o.stamp, o.stamp_date, " \
    "o.attempts, o.first_try, d.data, o.work, o.introduction, " \
    "o.stamp_device, o.retry_now FROM outbound o LEFT JOIN outbound_data " \
    "d ON d.id = o.id WHERE "

/* Fill ob from a claimed row; -1 out of memory. */
static int
outbound_fill(sqlite3_stmt *stmt, struct outbound *ob)
{
	memset(ob, 0, sizeof(*ob));
	ob->id = sqlite3_column_int64(stmt, 0);
	col_copy(stmt, 1, ob->domain, sizeof(ob->domain));
	col_copy(stmt, 2, ob->sender, sizeof(ob->sender));
	ob->recipients = col_strdup(stmt, 3);
	ob->all = col_strdup(stmt, 4);
	col_copy(stmt, 5, ob->message_id, sizeof(ob->message_id));
	ob->len = (uint64_t)sqlite3_column_int64(stmt, 6);
	col_copy(stmt, 7, ob->stamp, sizeof(ob->stamp));
	col_copy(stmt, 8, ob->stamp_date, sizeof(ob->stamp_date));
	ob->attempts = (unsigned int)sqlite3_column_int(stmt, 9);
	ob->first_try = sqlite3_column_int64(stmt, 10);
	ob->work = col_strdup(stmt, 12);
	ob->introduction = col_strdup(stmt, 13);
	col_copy(stmt, 14, ob->stamp_device, sizeof(ob->stamp_device));
	ob->forced = sqlite3_column_int(stmt, 15) != 0;
	/* An inline body comes along: the relay sends it without a read. */
	if (sqlite3_column_type(stmt, 11) == SQLITE_BLOB &&
	    (uint64_t)sqlite3_column_bytes(stmt, 11) == ob->len) {
		ob->data = malloc(ob->len > 0 ? ob->len : 1);
		if (ob->data == NULL) {
			outbound_release(ob);
			return -1;
		}
		if (ob->len > 0)	/* an empty blob has no address */
			memcpy(ob->data, sqlite3_column_blob(stmt, 11),
			    ob->len);
	}
	if (ob->recipients == NULL || ob->all == NULL || ob->work == NULL ||
	    ob->introduction == NULL) {
		outbound_release(ob);
		return -1;
	}
	return 0;
}

/* What done, retry and bounce act on: entries owner holds. */
struct owned_args {
	const char *owner;
	const int64_t *ids;
	size_t n, count;
	int64_t next_try, now, lease_until;
	const char *reason;
	const struct store_delivery *notice;
	const char *record;	/* a bounce's notice, as its record's text */
	struct names ns;
	struct gone g;
};

static int done_run(struct sqlite_store *, void *, struct smimp_err *);

struct claim_args {
	struct owned_args *done;	/* finished first, or NULL */
	const char *owner;
	int64_t now, lease_until;
	unsigned int domain_cap;
	uint64_t max_bytes;
	struct outbound *obs;
	size_t cap, n;
};

static int
claim_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct claim_args *a = arg;
	char domain[ADDRESS_DOMAIN_MAX + 1];
	sqlite3_stmt *stmt;
	uint64_t bytes = 0, size;
	size_t i;
	int r, rc;

	a->n = 0;
	if (a->done != NULL && done_run(s, a->done, err) != STORE_OK)
		return STORE_ERROR;
	/*
	 * The domain of the entry due the longest that is free, among the
	 * domains fewer than domain_cap owners hold live leases in.  Both
	 * walk an index from its start, so that a claim reads the leased
	 * entries and those it passes over, not the whole queue: the due
	 * entries in the order they fell due (outbound_due holds the id
	 * after next_try), the live leases by outbound_lease, which the
	 * planner would otherwise pass over for a scan in domain order.
	 */
	r = sql_first(s->db, err, NULL, domain, sizeof(domain), "SELECT "
	    "domain FROM outbound INDEXED BY outbound_due WHERE next_try <= ?1 "
	    "AND held = 0 AND (lease_until IS NULL OR lease_until <= ?1) AND "
	    "domain NOT IN (SELECT domain FROM outbound INDEXED BY "
	    "outbound_lease WHERE lease_until > ?1 GROUP BY domain HAVING "
	    "?2 > 0 AND count(DISTINCT lease_owner) >= ?2) ORDER BY next_try, "
	    "id LIMIT 1", "ii", a->now, (int64_t)a->domain_cap);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_OK;
	stmt = stmt_get(s->db, err, CLAIM_SELECT "o.domain = ?1 AND "
	    "o.next_try <= ?2 AND o.held = 0 AND (o.lease_until IS NULL OR "
	    "o.lease_until <= ?2) ORDER BY o.id LIMIT ?3", "tii", domain,
	    a->now, (int64_t)a->cap);
	if (stmt == NULL)
		return STORE_ERROR;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && a->n < a->cap) {
		size = (uint64_t)sqlite3_column_int64(stmt, 6);
		if (a->n > 0 && a->max_bytes > 0 && bytes + size > a->max_bytes)
			break;
		if (outbound_fill(stmt, &a->obs[a->n]) != 0) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
			stmt_release(stmt);
			goto fail;
		}
		bytes += size;
		a->n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(s->db, err, "claim");
		stmt_release(stmt);
		goto fail;
	}
	stmt_release(stmt);
	for (i = 0; i < a->n; i++)
		if (sql_exec(s->db, err, "UPDATE outbound SET lease_owner = ?, "
		    "lease_until = ? WHERE id = ?", "tii", a->owner,
		    a->lease_until, a->obs[i].id) != 0)
			goto fail;
	return STORE_OK;
fail:
	store_outbounds_release(a->obs, &a->n);
	return STORE_ERROR;
}

static int
sq_outbound_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_until, unsigned int domain_cap, uint64_t max_bytes,
    const int64_t *done, size_t ndone, struct outbound *obs, size_t cap,
    size_t *n, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct claim_args a = { NULL, owner, now, lease_until, domain_cap,
	    max_bytes, obs, cap, 0 };
	struct owned_args d;
	sqlite3 *db;
	int r;

	*n = 0;
	if (ndone == 0) {
		/* Idle workers poll: a reader answers "nothing due" cheaply. */
		db = reader_get(s);
		r = sql_first(db, err, NULL, NULL, 0, "SELECT 1 FROM outbound "
		    "WHERE next_try <= ?1 AND held = 0 AND (lease_until IS "
		    "NULL OR lease_until <= ?1) LIMIT 1", "i", now);
		reader_put(s, db);
		if (r <= 0)
			return r < 0 ? STORE_ERROR : STORE_OK;
	} else {
		/* What the owner finished goes in the same transaction. */
		memset(&d, 0, sizeof(d));
		d.owner = owner;
		d.ids = done;
		d.n = ndone;
		if (gone_init(&d.g, ndone, err) != 0)
			return STORE_ERROR;
		a.done = &d;
	}
	r = group_write(s, claim_run, &a, now, err);
	if (a.done != NULL)
		gone_release(s, &d.g, r == STORE_OK);
	if (r != STORE_OK) {
		store_outbounds_release(a.obs, &a.n);
		return STORE_ERROR;
	}
	*n = a.n;
	return STORE_OK;
}

static int
sq_outbound_open(struct store *st, int64_t id, int *fd, uint64_t *len,
    struct smimp_err *err)
{
	return body_open(sq(st), "SELECT o.body, d.data FROM outbound o "
	    "LEFT JOIN outbound_data d ON d.id = o.id WHERE o.id = ?", NULL,
	    NULL, id, fd, len, err);
}


static int
done_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct owned_args *a = arg;
	size_t i;

	a->g.n = 0;
	a->count = 0;
	for (i = 0; i < a->n; i++)
		if (delete_noting(s->db, &a->g, &a->count, err, "DELETE FROM "
		    "outbound WHERE id = ? AND lease_owner = ? RETURNING body",
		    "it", a->ids[i], a->owner) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
sq_outbound_done(struct store *st, const char *owner, const int64_t *ids,
    size_t n, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct owned_args a;
	int r;

	if (n == 0)
		return STORE_OK;
	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = ids;
	a.n = n;
	if (gone_init(&a.g, n, err) != 0)
		return STORE_ERROR;
	r = group_write(s, done_run, &a, 0, err);
	gone_release(s, &a.g, r == STORE_OK);
	return r;
}

static int
renew_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct owned_args *a = arg;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (sql_exec(s->db, err, "UPDATE outbound SET lease_until = ? "
		    "WHERE id = ? AND lease_owner = ?", "iit", a->lease_until,
		    a->ids[i], a->owner) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
sq_outbound_renew(struct store *st, const char *owner, const int64_t *ids,
    size_t n, int64_t lease_until, struct smimp_err *err)
{
	struct owned_args a;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = ids;
	a.n = n;
	a.lease_until = lease_until;
	return group_write(sq(st), renew_run, &a, 0, err);
}

static int
retry_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct owned_args *a = arg;

	if (sql_exec(s->db, err, "UPDATE outbound SET attempts = attempts + 1, "
	    "next_try = ?, last_error = ?, retry_now = 0, lease_owner = NULL, "
	    "lease_until = NULL WHERE id = ? AND lease_owner = ?", "itit",
	    a->next_try,
	    a->reason, a->ids[0], a->owner) != 0)
		return STORE_ERROR;
	return sqlite3_changes(s->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int
sq_outbound_retry(struct store *st, const char *owner, int64_t id,
    int64_t next_try, const char *reason, struct smimp_err *err)
{
	struct owned_args a;

	memset(&a, 0, sizeof(a));
	a.owner = owner;
	a.ids = &id;
	a.n = 1;
	a.next_try = next_try;
	a.reason = reason;
	return group_write(sq(st), retry_run, &a, 0, err);
}

static int
bounce_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct owned_args *a = arg;
	int r, stored;

	/* Recorded for its sender while the entry still says what it was. */
	if (sql_exec(s->db, err, SENT_UPSERT_FROM_OUTBOUND, "iitti",
	    (int64_t)STORE_SENT_BOUNCED, a->now, a->record, a->owner,
	    a->ids[0]) != 0 || done_run(s, a, err) != STORE_OK)
		return STORE_ERROR;
	if (a->count == 0)
		return STORE_NOT_FOUND;
	/* The notice is small and the sender's own: no quota holds it up. */
	r = mailbox_put(s, a->notice, a->ns.name[0].s, a->ns.size[0], a->now,
	    CHECK_ACKED, NULL, &stored, err);
	a->ns.used[0] = (unsigned char)stored;
	return r;
}

static int
sq_outbound_bounce(struct store *st, const char *owner, int64_t id,
    const struct store_delivery *notice, int64_t now, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
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
	if (gone_init(&a.g, 1, err) != 0) {
		free((char *)a.record);
		return STORE_ERROR;
	}
	if (names_place(s, &notice->body, 1, &a.ns, err) != 0) {
		gone_release(s, &a.g, 0);
		free((char *)a.record);
		return STORE_ERROR;
	}
	r = group_write(s, bounce_run, &a, now, err);
	names_release(s, &a.ns, r == STORE_OK);
	gone_release(s, &a.g, r == STORE_OK);
	free((char *)a.record);
	return r;
}

static int
sq_outbound_count(struct store *st, uint64_t *n, struct smimp_err *err)
{
	int64_t v = 0;
	int r;

	r = each_row(sq(st), int_row, &v, err, "SELECT count(*) FROM outbound",
	    "");
	*n = (uint64_t)v;
	return r;
}

static int
stats_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct store_queue_stats *qs = arg;

	(void)err;
	qs->entries = (uint64_t)sqlite3_column_int64(stmt, 0);
	qs->oldest = sqlite3_column_int64(stmt, 1);	/* NULL reads 0 */
	return 0;
}

static int
sq_outbound_stats(struct store *st, struct store_queue_stats *qs,
    struct smimp_err *err)
{
	return each_row(sq(st), stats_row, qs, err, "SELECT count(*), "
	    "min(first_try) FROM outbound", "");
}

/* ---- the relay queue, for the administrator ---- */

struct queue_each {
	int (*fn)(const struct store_queue_entry *, void *);
	void *arg;
	size_t seen;
};

static const char *
col_text(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return t != NULL ? (const char *)t : "";
}

static int
queue_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct queue_each *q = arg;
	struct store_queue_entry e;

	e.id = sqlite3_column_int64(stmt, 0);
	e.domain = col_text(stmt, 1);
	e.sender = col_text(stmt, 2);
	e.recipients = col_text(stmt, 3);
	e.message_id = col_text(stmt, 4);
	e.size = (uint64_t)sqlite3_column_int64(stmt, 5);
	e.attempts = (unsigned int)sqlite3_column_int(stmt, 6);
	e.first_try = sqlite3_column_int64(stmt, 7);
	e.next_try = sqlite3_column_int64(stmt, 8);
	e.lease_owner = col_text(stmt, 9);
	e.lease_until = sqlite3_column_int64(stmt, 10);
	e.held = sqlite3_column_int(stmt, 11) != 0;
	e.last_error = col_text(stmt, 12);
	q->seen++;
	return q->fn(&e, q->arg) != 0 ? store_stopped(err) : 0;
}

#define QUEUE_SELECT "SELECT id, domain, sender, recipients, message_id, " \
    "size, attempts, first_try, next_try, lease_owner, lease_until, held, " \
    "last_error FROM outbound "

static int
sq_outbound_list(struct store *st, int64_t id,
    int (*fn)(const struct store_queue_entry *, void *), void *arg,
    struct smimp_err *err)
{
	struct queue_each q = { fn, arg, 0 };
	int r;

	if (id == 0)
		return each_row(sq(st), queue_row, &q, err, QUEUE_SELECT
		    "ORDER BY id", "");
	r = each_row(sq(st), queue_row, &q, err, QUEUE_SELECT "WHERE id = ?",
	    "i", id);
	return r == STORE_OK && q.seen == 0 ? STORE_NOT_FOUND : r;
}

/* No row changed: was it there (then a live lease kept it) or not? */
static int
queue_missed(struct sqlite_store *s, int64_t id, struct smimp_err *err)
{
	int r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM outbound "
	    "WHERE id = ?", "i", id);

	return r < 0 ? STORE_ERROR : r > 0 ? STORE_EXISTS : STORE_NOT_FOUND;
}

static int
queue_op_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct store_queue_args *a = arg;
	int r;

	if (a->op == STORE_QUEUE_RETRY)
		r = sql_exec(s->db, err, "UPDATE outbound SET held = 0, "
		    "retry_now = 1, next_try = ?2 WHERE id = ?1 AND "
		    "(lease_until IS NULL OR lease_until <= ?2)", "ii", a->id,
		    a->now);
	else
		r = sql_exec(s->db, err, "UPDATE outbound SET held = ?2 WHERE "
		    "id = ?1", "ii", a->id,
		    (int64_t)(a->op == STORE_QUEUE_HOLD));
	if (r != 0)
		return STORE_ERROR;
	return sqlite3_changes(s->db) > 0 ? STORE_OK : queue_missed(s, a->id,
	    err);
}

static int
sq_outbound_admin(struct store *st, struct store_queue_args *a,
    struct smimp_err *err)
{
	return group_write(sq(st), queue_op_run, a, 0, err);
}

static int
take_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct store_queue_args *a = arg;
	sqlite3_stmt *stmt;
	int rc;

	if (sql_exec(s->db, err, "UPDATE outbound SET lease_owner = ?2, "
	    "lease_until = ?3 WHERE id = ?1 AND (lease_until IS NULL OR "
	    "lease_until <= ?4)", "itii", a->id, a->owner, a->lease_until,
	    a->now) != 0)
		return STORE_ERROR;
	if (sqlite3_changes(s->db) == 0)
		return queue_missed(s, a->id, err);
	stmt = stmt_get(s->db, err, CLAIM_SELECT "o.id = ?1", "i", a->id);
	if (stmt == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW)
		db_fail(s->db, err, "take");
	else if (outbound_fill(stmt, a->ob) != 0)
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	else
		rc = SQLITE_DONE;
	stmt_release(stmt);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int
sq_outbound_take(struct store *st, struct store_queue_args *a,
    struct smimp_err *err)
{
	return group_write(sq(st), take_run, a, 0, err);
}

/* ---- what the store holds, and whether it is sound ---- */

/* A row callback: its first columns as integers, into int64_t v[]. */
struct ints {
	int64_t *v;
	int n;
};

static int
ints_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct ints *in = arg;
	int i;

	(void)err;
	for (i = 0; i < in->n; i++)
		in->v[i] = sqlite3_column_int64(stmt, i);
	return 0;
}

/*
 * The bytes the files of a directory tree hold.  A body file linked
 * under n names counts 1/n at each, so that each file counts once:
 * every name of a body is under bodies/.
 */
static int64_t
tree_bytes(const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	int64_t sum = 0;
	DIR *d;

	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (size_t)snprintf(sub, sizeof(sub),
		    "%s/%s", path, de->d_name) >= sizeof(sub) ||
		    lstat(sub, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode) && depth > 0)
			sum += tree_bytes(sub, depth - 1);
		else if (S_ISREG(sb.st_mode))
			sum += (int64_t)sb.st_size / (sb.st_nlink > 0 ?
			    (int64_t)sb.st_nlink : 1);
	}
	(void)closedir(d);
	return sum;
}

/* The database, its WAL, and the body files. */
static int64_t
disk_bytes(struct sqlite_store *s, int64_t pages, int64_t page_size)
{
	char wal[PATH_MAX];
	struct stat sb;
	int64_t sum = pages * page_size;

	if ((size_t)snprintf(wal, sizeof(wal), "%s/smimpd.db-wal", s->dir) <
	    sizeof(wal) && stat(wal, &sb) == 0)
		sum += (int64_t)sb.st_size;
	return sum + tree_bytes(s->bodies, 1);
}

static int
sq_stats(struct store *st, struct store_stats *out, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	int64_t u = 0, m[2] = { 0, 0 }, q[6] = { 0 }, pages = 0, psize = 0;
	struct ints iu = { &u, 1 }, im = { m, 2 }, iq = { q, 6 };
	struct ints ip = { &pages, 1 }, is = { &psize, 1 };

	if (each_row(s, ints_row, &iu, err, "SELECT count(*) FROM users",
	    "") != STORE_OK ||
	    each_row(s, ints_row, &im, err, "SELECT count(*), "
	    "coalesce(sum(size), 0) FROM mailbox", "") != STORE_OK ||
	    each_row(s, ints_row, &iq, err, "SELECT count(*), coalesce(sum("
	    "size), 0), coalesce(sum(held <> 0), 0), coalesce(sum(attempts > "
	    "0), 0), count(DISTINCT domain), coalesce(min(first_try), 0) "
	    "FROM outbound", "") != STORE_OK ||
	    each_row(s, ints_row, &ip, err, "PRAGMA page_count", "") !=
	    STORE_OK ||
	    each_row(s, ints_row, &is, err, "PRAGMA page_size", "") !=
	    STORE_OK)
		return STORE_ERROR;
	out->users = (uint64_t)u;
	out->mailbox_messages = (uint64_t)m[0];
	out->mailbox_bytes = (uint64_t)m[1];
	out->queue_entries = (uint64_t)q[0];
	out->queue_bytes = (uint64_t)q[1];
	out->queue_held = (uint64_t)q[2];
	out->queue_retrying = (uint64_t)q[3];
	out->queue_domains = (uint64_t)q[4];
	out->queue_oldest = q[5];
	out->store_bytes = disk_bytes(s, pages, psize);
	return STORE_OK;
}

/* What PRAGMA integrity_check says: "ok", or its first findings. */
static int
integrity_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct store_health *h = arg;
	size_t n = strlen(h->problem);
	const char *t = col_text(stmt, 0);

	(void)err;
	if (strcmp(t, "ok") != 0 && n + 3 < sizeof(h->problem))
		(void)snprintf(h->problem + n, sizeof(h->problem) - n, "%s%s",
		    n > 0 ? "; " : "", t);
	return 0;
}

#define MISSING_MAX	16	/* missing body files looked at again */

/* The body files that rows name and that are not there. */
struct missing {
	struct sqlite_store *s;
	size_t n;
	struct body_name name[MISSING_MAX];
};

static int
body_absent(const struct sqlite_store *s, const char *name)
{
	char path[PATH_MAX];
	struct smimp_err err;
	struct stat sb;

	return body_path(s, name, path, &err) == 0 && lstat(path, &sb) != 0 &&
	    errno == ENOENT;
}

static int
body_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct missing *m = arg;
	const char *name = col_text(stmt, 0);

	(void)err;
	if (name_valid(name) && body_absent(m->s, name) && m->n < MISSING_MAX)
		memcpy(m->name[m->n++].s, name, NAME_LEN + 1);
	return 0;
}

/*
 * Body files that rows name but that are gone.  A running server
 * unlinks a file once the row that named it is committed away: a name
 * found missing counts only if a row still names it when looked at
 * again, after the scan.
 */
static int
bodies_check(struct sqlite_store *s, struct store_health *h,
    struct smimp_err *err)
{
	struct missing m;
	int64_t named;
	size_t i, gone = 0;
	const char *first = NULL;

	memset(&m, 0, sizeof(m));
	m.s = s;
	if (each_row(s, body_row, &m, err, "SELECT body FROM mailbox WHERE "
	    "body IS NOT NULL UNION ALL SELECT body FROM outbound WHERE body "
	    "IS NOT NULL", "") != STORE_OK)
		return STORE_ERROR;
	for (i = 0; i < m.n; i++) {
		struct ints in = { &named, 1 };

		named = 0;
		if (each_row(s, ints_row, &in, err, "SELECT (SELECT count(*) "
		    "FROM mailbox WHERE body = ?1) + (SELECT count(*) FROM "
		    "outbound WHERE body = ?1)", "t", m.name[i].s) != STORE_OK)
			return STORE_ERROR;
		if (named > 0 && body_absent(s, m.name[i].s)) {
			first = first != NULL ? first : m.name[i].s;
			gone++;
		}
	}
	if (gone > 0 && h->problem[0] == '\0')
		(void)snprintf(h->problem, sizeof(h->problem), "%zu%s body "
		    "file%s missing, as bodies/%.2s/%s", gone, m.n ==
		    MISSING_MAX ? " or more" : "", gone == 1 ? "" : "s", first,
		    first);
	return STORE_OK;
}

static int
sq_check(struct store *st, struct store_health *h, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	struct ints iv = { &h->version, 1 };

	if (each_row(s, ints_row, &iv, err, "PRAGMA user_version", "") !=
	    STORE_OK ||
	    each_row(s, integrity_row, h, err, "PRAGMA integrity_check(8)",
	    "") != STORE_OK)
		return STORE_ERROR;
	h->integrity = 1;
	return bodies_check(s, h, err);
}

/* ---- consent policies ---- */

#define HOUR_S		3600

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
policy_newer(struct sqlite_store *s, const struct policy_put_args *a,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc, ret = STORE_OK;

	stmt = stmt_get(s->db, err, "SELECT date, text FROM policies WHERE "
	    "address = ?", "t", a->p->address);
	if (stmt == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		int64_t date = sqlite3_column_int64(stmt, 0);
		const void *old = sqlite3_column_blob(stmt, 1);
		size_t old_len = (size_t)sqlite3_column_bytes(stmt, 1);

		if (date == a->p->date && old_len == a->len && old != NULL &&
		    memcmp(old, a->text, a->len) == 0)
			ret = 1;
		else if (date >= a->p->date)
			ret = STORE_EXISTS;
	} else if (rc != SQLITE_DONE) {
		ret = db_fail(s->db, err, "select");
	}
	stmt_release(stmt);
	return ret;
}

static int
policy_entries_put(struct sqlite_store *s, const char *address,
    const unsigned char (*list)[POLICY_ENTRY_SIZE], size_t n, int kind,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sql_exec(s->db, err, "INSERT INTO policy_entries (address, "
		    "hash, kind) VALUES (?, ?, ?)", "tbi", address, list[i],
		    POLICY_ENTRY_SIZE, (int64_t)kind) != 0)
			return -1;
	return 0;
}

static int
policy_put_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct policy_put_args *a = arg;
	const struct policy *p = a->p;
	int64_t one;
	int r;

	r = sql_first(s->db, err, &one, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = ?", "t", p->address);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	r = policy_newer(s, a, err);
	if (r != STORE_OK)
		return r == 1 ? STORE_OK : r;
	if (sql_exec(s->db, err, "DELETE FROM policy_entries WHERE "
	    "address = ?", "t", p->address) != 0 ||
	    policy_entries_put(s, p->address, p->block, p->nblock,
	    STORE_LISTED_BLOCK, err) != 0 ||
	    policy_entries_put(s, p->address, p->allow, p->nallow,
	    STORE_LISTED_ALLOW, err) != 0 ||
	    sql_exec(s->db, err, "INSERT INTO policies (address, date, "
	    "unknown, bits, allowance, salt, text) VALUES (?, ?, ?, ?, ?, ?, ?) "
	    "ON CONFLICT (address) DO UPDATE SET date = excluded.date, "
	    "unknown = excluded.unknown, bits = excluded.bits, "
	    "allowance = excluded.allowance, salt = excluded.salt, "
	    "text = excluded.text", "tiiiibb", p->address, p->date,
	    (int64_t)p->unknown, (int64_t)p->bits, (int64_t)p->allowance,
	    p->salt, POLICY_SALT_SIZE, a->text, (int)a->len) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

static int
sq_policy_put(struct store *st, const struct policy *p,
    const unsigned char *text, size_t len, int64_t now,
    struct smimp_err *err)
{
	struct policy_put_args a = { p, text, len };

	return group_write(sq(st), policy_put_run, &a, now, err);
}

static int
sq_policy_get(struct store *st, const char *address, unsigned char **text,
    size_t *len, struct smimp_err *err)
{
	struct blob_out b = { text, len, 0 };

	*text = NULL;
	*len = 0;
	if (each_row(sq(st), blob_row, &b, err, "SELECT text FROM policies "
	    "WHERE address = ?", "t", address) != STORE_OK)
		return STORE_ERROR;
	return b.found ? STORE_OK : STORE_NOT_FOUND;
}

static int
sq_correspondent(struct store *st, const char *local, const char *domain,
    struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	sqlite3 *db = reader_get(s);
	int r;

	r = sql_first(db, err, NULL, NULL, 0, "SELECT 1 FROM correspondents "
	    "WHERE local = ? AND domain = ?", "tt", local, domain);
	reader_put(s, db);
	if (r < 0)
		return STORE_ERROR;
	return r == 1 ? STORE_OK : STORE_NOT_FOUND;
}

struct head_out {
	struct store_policy_head *h;
	int user;
};

static int
head_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct head_out *o = arg;
	struct store_policy_head *h = o->h;
	int64_t unknown;

	(void)err;
	o->user = 1;
	if (sqlite3_column_type(stmt, 0) == SQLITE_NULL ||
	    sqlite3_column_bytes(stmt, 5) != POLICY_SALT_SIZE)
		return 0;
	h->has_policy = 1;
	h->date = sqlite3_column_int64(stmt, 1);
	unknown = sqlite3_column_int64(stmt, 2);
	/* Stored by this code from a parsed statement; else: closed. */
	h->unknown = unknown >= POLICY_OPEN && unknown <= POLICY_CLOSED ?
	    (enum policy_unknown)unknown : POLICY_CLOSED;
	h->bits = (unsigned int)sqlite3_column_int64(stmt, 3);
	h->allowance = (uint32_t)sqlite3_column_int64(stmt, 4);
	memcpy(h->salt, sqlite3_column_blob(stmt, 5), POLICY_SALT_SIZE);
	return 0;
}

static int
sq_policy_head(struct store *st, const char *address,
    struct store_policy_head *h, struct smimp_err *err)
{
	struct head_out o = { h, 0 };

	memset(h, 0, sizeof(*h));
	if (each_row(sq(st), head_row, &o, err, "SELECT p.address, p.date, "
	    "p.unknown, p.bits, p.allowance, p.salt FROM users u LEFT JOIN "
	    "policies p ON p.address = u.address WHERE u.address = ?", "t",
	    address) != STORE_OK)
		return STORE_ERROR;
	return o.user ? STORE_OK : STORE_NOT_FOUND;
}

static int
sq_policy_match(struct store *st, const char *address,
    const unsigned char (*entries)[POLICY_ENTRY_SIZE], size_t n,
    int *listed, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	sqlite3 *db = reader_get(s);
	int64_t kind;
	size_t i;
	int r = 0;

	/* One read transaction for all: one snapshot, one lock taken. */
	if (stmt_run(db, "BEGIN") != 0)
		r = db_fail(db, err, "begin");
	for (i = 0; i < n && r >= 0; i++) {
		kind = STORE_UNLISTED;
		r = sql_first(db, err, &kind, NULL, 0, "SELECT kind FROM "
		    "policy_entries WHERE address = ? AND hash = ?", "tb",
		    address, entries[i], POLICY_ENTRY_SIZE);
		listed[i] = r == 1 && (kind == STORE_LISTED_BLOCK ||
		    kind == STORE_LISTED_ALLOW) ? (int)kind : STORE_UNLISTED;
	}
	/* Never back to the pool inside a transaction: a stale snapshot. */
	if (sqlite3_get_autocommit(db) == 0 && stmt_run(db, "COMMIT") != 0) {
		r = db_fail(db, err, "commit");
		(void)stmt_run(db, "ROLLBACK");
	}
	reader_put(s, db);
	return r < 0 ? STORE_ERROR : STORE_OK;
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
count_domain(struct sqlite_store *s, struct count_args *a,
    struct smimp_err *err)
{
	const struct store_consent_count *c = a->c;
	int64_t hour = a->now / HOUR_S, n = 0, until = 0;
	sqlite3_stmt *stmt;
	int rc;

	stmt = stmt_get(s->db, err, "SELECT hour, count, ignored_until FROM "
	    "consent_domains WHERE domain = ?", "t", c->domain);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(stmt, 0) == hour ?
		    sqlite3_column_int64(stmt, 1) : 0;
		until = sqlite3_column_int64(stmt, 2);
	}
	stmt_release(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(s->db, err, "select");
	if (!store_consent_domain_step(c, a->now, &n, &until, &a->retry))
		return 0;
	return sql_exec(s->db, err, "INSERT INTO consent_domains (domain, "
	    "hour, count, ignored_until) VALUES (?, ?, ?, ?) ON CONFLICT "
	    "(domain) DO UPDATE SET hour = excluded.hour, count = "
	    "excluded.count, ignored_until = excluded.ignored_until", "tiii",
	    c->domain, hour, n, until) == 0 ? 0 : -1;
}

/*
 * The recipient's allowance for today, one more unless used up or the
 * message (with a sender and an id) was counted today already.
 */
static int
count_allowance(struct sqlite_store *s, struct count_args *a,
    struct smimp_err *err)
{
	const struct store_consent_count *c = a->c;
	int64_t day = a->now / DAY_S, n = 0;
	int r;

	r = sql_first(s->db, err, &n, NULL, 0, "SELECT count FROM "
	    "consent_allowance WHERE recipient = ? AND day = ?", "ti",
	    c->recipient, day);
	if (r < 0)
		return -1;
	if (r == 0)
		n = 0;
	/* Counted today: taken, even once the allowance is used up. */
	if (c->sender != NULL && c->message_id != NULL) {
		r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM "
		    "consent_counted WHERE recipient = ? AND sender = ? AND "
		    "message_id = ? AND day = ?", "ttti", c->recipient,
		    c->sender, c->message_id, day);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (n >= c->allowance) {
		a->retry = (unsigned int)((day + 1) * DAY_S - a->now);
		return 0;
	}
	if (c->sender != NULL && c->message_id != NULL &&
	    sql_exec(s->db, err, "INSERT INTO consent_counted (recipient, "
	    "sender, message_id, day) VALUES (?, ?, ?, ?) ON CONFLICT "
	    "(recipient, sender, message_id) DO UPDATE SET day = "
	    "excluded.day", "ttti", c->recipient, c->sender, c->message_id,
	    day) != 0)
		return -1;
	return sql_exec(s->db, err, "INSERT INTO consent_allowance (recipient, "
	    "day, count) VALUES (?, ?, 1) ON CONFLICT (recipient) DO UPDATE "
	    "SET count = CASE WHEN day = excluded.day THEN count + 1 ELSE 1 "
	    "END, day = excluded.day", "ti", c->recipient, day) == 0 ? 0 : -1;
}

/*
 * Always STORE_OK when it could count: a refusal keeps its count.  A
 * message the recipient holds already is not counted again against
 * its allowance: it would not be stored again.
 */
static int
consent_count_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	struct count_args *a = arg;
	struct store_delivery d = { a->c->recipient, a->c->sender,
	    a->c->message_id, NULL };
	int known = 0;

	a->retry = 0;
	if (a->c->domain != NULL && count_domain(s, a, err) != 0)
		return STORE_ERROR;
	if (a->retry == 0 && a->c->allowance >= 0 && d.sender != NULL &&
	    d.message_id != NULL &&
	    (known = mailbox_known(s, &d, a->now, CHECK_ACKED, err)) < 0)
		return STORE_ERROR;
	if (a->retry == 0 && a->c->allowance >= 0 && !known &&
	    count_allowance(s, a, err) != 0)
		return STORE_ERROR;
	return STORE_OK;
}

static int
sq_consent_count(struct store *st, const struct store_consent_count *c,
    int64_t now, unsigned int *retry_after, struct smimp_err *err)
{
	struct count_args a = { c, now, 0 };
	int r;

	*retry_after = 0;
	r = group_write(sq(st), consent_count_run, &a, now, err);
	if (r != STORE_OK)
		return r;
	*retry_after = a.retry;
	return a.retry > 0 ? STORE_QUOTA : STORE_OK;
}

/* ---- one-time prekeys ---- */

static int
prekey_pool_size(sqlite3 *db, const char *address, const char *device,
    size_t *count, struct smimp_err *err)
{
	int64_t n = 0;

	if (sql_first(db, err, &n, NULL, 0, "SELECT count(*) FROM prekeys "
	    "WHERE address = ? AND device = ?", "tt", address, device) < 0)
		return -1;
	*count = (size_t)n;
	return 0;
}

struct prekey_add_args {
	const struct store_prekey_batch *b;
	size_t *count;
};

static int
prekey_add_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct prekey_add_args *a = arg;
	const struct store_prekey_batch *b = a->b;
	int64_t last = 0;
	size_t i;
	int r;

	r = sql_first(s->db, err, NULL, NULL, 0, "SELECT 1 FROM users WHERE "
	    "address = ?", "t", b->address);
	if (r <= 0)
		return r < 0 ? STORE_ERROR : STORE_NOT_FOUND;
	r = sql_first(s->db, err, &last, NULL, 0, "SELECT last_date FROM "
	    "prekey_pools WHERE address = ? AND device = ?", "tt", b->address,
	    b->device);
	if (r < 0 || prekey_pool_size(s->db, b->address, b->device, a->count,
	    err) != 0)
		return STORE_ERROR;
	r = store_prekey_batch_verdict(b, r == 1, last, *a->count);
	if (r != STORE_OK)
		return r;
	for (i = 0; i < b->n; i++) {
		r = sql_exec(s->db, err, "INSERT INTO prekeys (address, device, "
		    "id, key, date, signature) VALUES (?, ?, ?, ?, ?, ?)",
		    "tttbib", b->address, b->device, b->keys[i].id,
		    b->keys[i].key, 32, b->date, b->keys[i].sig, 64);
		if (r != 0)
			return r < 0 ? STORE_ERROR : STORE_EXISTS;
	}
	if (sql_exec(s->db, err, "INSERT INTO prekey_pools (address, device, "
	    "last_date) VALUES (?, ?, ?) ON CONFLICT (address, device) DO "
	    "UPDATE SET last_date = excluded.last_date", "tti", b->address,
	    b->device, b->date) != 0)
		return STORE_ERROR;
	*a->count += b->n;
	return STORE_OK;
}

static int
sq_prekey_add(struct store *st, const struct store_prekey_batch *b,
    size_t *count, struct smimp_err *err)
{
	struct prekey_add_args a = { b, count };

	return group_write(sq(st), prekey_add_run, &a, b->now, err);
}

static int
sq_prekey_count(struct store *st, const char *address, const char *device,
    size_t *count, struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	sqlite3 *db = reader_get(s);
	int r;

	r = prekey_pool_size(db, address, device, count, err);
	reader_put(s, db);
	return r != 0 ? STORE_ERROR : STORE_OK;
}

/*
 * One prekey of the pool of (address, device), removed: *state says.
 * The oldest batch's first (store_prekey_claim).
 */
static int
prekey_take(sqlite3 *db, const char *address, const char *device,
    struct store_prekey *k, int *state, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc, found = 0;

	stmt = stmt_get(db, err, "SELECT id, key, date, signature FROM "
	    "prekeys WHERE address = ? AND device = ? ORDER BY date, id LIMIT 1",
	    "tt", address, device);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(stmt, 1) == 32 &&
	    sqlite3_column_bytes(stmt, 3) == 64) {
		col_copy(stmt, 0, k->id, sizeof(k->id));
		memcpy(k->key, sqlite3_column_blob(stmt, 1), 32);
		k->date = sqlite3_column_int64(stmt, 2);
		memcpy(k->sig, sqlite3_column_blob(stmt, 3), 64);
		found = 1;
	}
	stmt_release(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, err, "select");
	if (found) {
		*state = STORE_PREKEY_TAKEN;
		return sql_exec(db, err, "DELETE FROM prekeys WHERE address = ? "
		    "AND device = ? AND id = ?", "ttt", address, device,
		    k->id) == 0 ? 0 : -1;
	}
	rc = sql_first(db, err, NULL, NULL, 0, "SELECT 1 FROM prekey_pools "
	    "WHERE address = ? AND device = ?", "tt", address, device);
	*state = rc == 1 ? STORE_PREKEY_EMPTY : STORE_PREKEY_NONE;
	return rc < 0 ? -1 : 0;
}

struct prekey_claim_args {
	const char *address;
	const char *const *devices;
	size_t n;
	struct store_prekey *keys;
	int *states;
};

static int
prekey_claim_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct prekey_claim_args *a = arg;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (prekey_take(s->db, a->address, a->devices[i], &a->keys[i],
		    &a->states[i], err) != 0)
			return STORE_ERROR;
	return STORE_OK;
}

static int
sq_prekey_claim(struct store *st, const char *address,
    const char *const *devices, size_t n, struct store_prekey *keys,
    int *states, int64_t now, struct smimp_err *err)
{
	struct prekey_claim_args a = { address, devices, n, keys, states };

	return group_write(sq(st), prekey_claim_run, &a, now, err);
}

struct prekey_drop_args {
	const char *address, *device;
	int64_t through;
};

static int
prekey_drop_run(struct sqlite_store *s, void *arg, struct smimp_err *err)
{
	const struct prekey_drop_args *a = arg;

	return sql_exec(s->db, err, "DELETE FROM prekeys WHERE address = ? AND "
	    "device = ? AND date <= ?", "tti", a->address, a->device,
	    a->through) == 0 ? STORE_OK : STORE_ERROR;
}

static int
sq_prekey_drop(struct store *st, const char *address, const char *device,
    int64_t through, int64_t now, struct smimp_err *err)
{
	struct prekey_drop_args a = { address, device, through };

	return group_write(sq(st), prekey_drop_run, &a, now, err);
}

/* ---- the server key ---- */

/*
 * One process opens the store, and its key is the domain's: nothing
 * to record (store_server_key).
 */
static int
sq_server_key(struct store *st, const unsigned char *pk,
    unsigned char recorded[32], struct smimp_err *err)
{
	(void)st;
	(void)err;
	if (pk == NULL)
		return STORE_NOT_FOUND;
	memmove(recorded, pk, 32);
	return STORE_OK;
}

/* ---- the schema and its versions ---- */

/*
 * Version 0: the schema before versions were counted (bodies as blobs
 * in the rows).  A new store starts from it too, so that every store
 * reaches the current version by the same steps.
 */
static const char schema_v0[] =
    "CREATE TABLE IF NOT EXISTS users ("
    " address TEXT PRIMARY KEY,"
    " log BLOB NOT NULL,"
    " created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE IF NOT EXISTS invites ("
    " hash BLOB PRIMARY KEY, address TEXT NOT NULL,"
    " expires INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nonces ("
    " signer TEXT NOT NULL, nonce TEXT NOT NULL, expires INTEGER NOT NULL,"
    " PRIMARY KEY (signer, nonce));"
    "CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);"
    "CREATE TABLE IF NOT EXISTS mailbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " recipient TEXT NOT NULL, sender TEXT NOT NULL,"
    " message_id TEXT NOT NULL, data BLOB NOT NULL,"
    " received INTEGER NOT NULL DEFAULT (strftime('%s','now')),"
    " UNIQUE (recipient, message_id));"
    "CREATE TABLE IF NOT EXISTS outbound ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " domain TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,"
    " all_recipients TEXT NOT NULL, message_id TEXT NOT NULL,"
    " data BLOB NOT NULL, stamp TEXT NOT NULL, stamp_date TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, first_try INTEGER NOT NULL,"
    " next_try INTEGER NOT NULL,"
    " UNIQUE (domain, sender, message_id));"
    "CREATE INDEX IF NOT EXISTS outbound_next ON outbound (next_try);";

/*
 * Version 1: bodies in files (the rows name them), mailbox copies
 * unique by (recipient, sender, message id) under random public ids
 * with an arrival sequence of their own, tombstones of acknowledged
 * messages, relay leases, and what the quotas count.
 */
static const char schema_v1_tables[] =
    "CREATE TABLE mailbox_v1 ("
    " seq INTEGER PRIMARY KEY,"
    " id INTEGER NOT NULL UNIQUE,"
    " recipient TEXT NOT NULL, sender TEXT NOT NULL,"
    " message_id TEXT NOT NULL, body TEXT NOT NULL UNIQUE,"
    " size INTEGER NOT NULL, received INTEGER NOT NULL,"
    " UNIQUE (recipient, sender, message_id));"
    "CREATE TABLE outbound_v1 ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " domain TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,"
    " all_recipients TEXT NOT NULL, message_id TEXT NOT NULL,"
    " body TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
    " stamp TEXT NOT NULL, stamp_date TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, first_try INTEGER NOT NULL,"
    " next_try INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER,"
    " UNIQUE (domain, sender, message_id));";

static const char schema_v1_finish[] =
    "DROP TABLE mailbox;"
    "ALTER TABLE mailbox_v1 RENAME TO mailbox;"
    "DROP TABLE outbound;"
    "ALTER TABLE outbound_v1 RENAME TO outbound;"
    "CREATE INDEX mailbox_order ON mailbox (recipient, seq);"
    "CREATE INDEX outbound_due ON outbound (next_try);"
    "CREATE INDEX outbound_domain ON outbound (domain, id);"
    "CREATE INDEX outbound_lease ON outbound (lease_until);"
    "CREATE TABLE tombstones ("
    " recipient TEXT NOT NULL, sender TEXT NOT NULL,"
    " message_id TEXT NOT NULL, acked INTEGER NOT NULL,"
    " PRIMARY KEY (recipient, sender, message_id)) WITHOUT ROWID;"
    "CREATE INDEX tombstones_acked ON tombstones (acked);"
    "CREATE TABLE correspondents ("
    " local TEXT NOT NULL, domain TEXT NOT NULL,"
    " PRIMARY KEY (local, domain)) WITHOUT ROWID;"
    "CREATE TABLE stranger_bytes ("
    " domain TEXT NOT NULL, day INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " PRIMARY KEY (domain, day)) WITHOUT ROWID;"
    "CREATE TABLE mailbox_usage ("
    " recipient TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE queue_usage ("
    " sender TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE trash (name TEXT NOT NULL);"
    "INSERT INTO mailbox_usage SELECT recipient, sum(size) FROM mailbox"
    " GROUP BY recipient;"
    "INSERT INTO queue_usage SELECT sender, sum(size) FROM outbound"
    " GROUP BY sender;";

/*
 * The counters follow the rows in every transaction; made again with
 * each new mailbox or outbound table (dropping a table drops its
 * triggers).
 */
#define MAILBOX_TRIGGERS \
    "CREATE TRIGGER mailbox_added AFTER INSERT ON mailbox BEGIN" \
    " INSERT INTO mailbox_usage (recipient, bytes)" \
    " VALUES (new.recipient, new.size) ON CONFLICT (recipient)" \
    " DO UPDATE SET bytes = bytes + excluded.bytes; END;" \
    "CREATE TRIGGER mailbox_removed AFTER DELETE ON mailbox BEGIN" \
    " UPDATE mailbox_usage SET bytes = bytes - old.size" \
    " WHERE recipient = old.recipient;" \
    " DELETE FROM mailbox_usage WHERE recipient = old.recipient" \
    " AND bytes <= 0; END;"
#define OUTBOUND_ADDED \
    "CREATE TRIGGER outbound_added AFTER INSERT ON outbound BEGIN" \
    " INSERT INTO queue_usage (sender, bytes)" \
    " VALUES (new.sender, new.size) ON CONFLICT (sender)" \
    " DO UPDATE SET bytes = bytes + excluded.bytes; END;"
#define OUTBOUND_REMOVED(more) \
    "CREATE TRIGGER outbound_removed AFTER DELETE ON outbound BEGIN" \
    " UPDATE queue_usage SET bytes = bytes - old.size" \
    " WHERE sender = old.sender;" \
    " DELETE FROM queue_usage WHERE sender = old.sender" \
    " AND bytes <= 0;" more " END;"

static const char usage_triggers[] =
    MAILBOX_TRIGGERS OUTBOUND_ADDED OUTBOUND_REMOVED("");

/*
 * Version 2: a body is either a file (body names it) or, when small and
 * given in memory, a blob in the row (data), never both.  Rows keep
 * their file bodies; the tables are made anew because SQLite cannot
 * drop the NOT NULL of a column in place.
 */
static const char schema_v2[] =
    "CREATE TABLE mailbox_v2 ("
    " seq INTEGER PRIMARY KEY,"
    " id INTEGER NOT NULL UNIQUE,"
    " recipient TEXT NOT NULL, sender TEXT NOT NULL,"
    " message_id TEXT NOT NULL, body TEXT UNIQUE, data BLOB,"
    " size INTEGER NOT NULL, received INTEGER NOT NULL,"
    " CHECK ((body IS NULL) <> (data IS NULL)),"
    " UNIQUE (recipient, sender, message_id));"
    "INSERT INTO mailbox_v2 (seq, id, recipient, sender, message_id, body,"
    " size, received) SELECT seq, id, recipient, sender, message_id, body,"
    " size, received FROM mailbox;"
    "CREATE TABLE outbound_v2 ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " domain TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,"
    " all_recipients TEXT NOT NULL, message_id TEXT NOT NULL,"
    " body TEXT UNIQUE, data BLOB, size INTEGER NOT NULL,"
    " stamp TEXT NOT NULL, stamp_date TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, first_try INTEGER NOT NULL,"
    " next_try INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER,"
    " CHECK ((body IS NULL) <> (data IS NULL)),"
    " UNIQUE (domain, sender, message_id));"
    "INSERT INTO outbound_v2 (id, domain, sender, recipients,"
    " all_recipients, message_id, body, size, stamp, stamp_date, attempts,"
    " first_try, next_try, lease_owner, lease_until) SELECT id, domain,"
    " sender, recipients, all_recipients, message_id, body, size, stamp,"
    " stamp_date, attempts, first_try, next_try, lease_owner, lease_until"
    " FROM outbound;"
    "DROP TABLE mailbox;"
    "ALTER TABLE mailbox_v2 RENAME TO mailbox;"
    "DROP TABLE outbound;"
    "ALTER TABLE outbound_v2 RENAME TO outbound;"
    "CREATE INDEX mailbox_order ON mailbox (recipient, seq);"
    "CREATE INDEX outbound_due ON outbound (next_try);"
    "CREATE INDEX outbound_domain ON outbound (domain, id);"
    "CREATE INDEX outbound_lease ON outbound (lease_until);";

/*
 * Version 3: a queued entry's inline body moves to a table of its own,
 * so that claiming, retrying and leasing an entry rewrite a short row
 * and not the body with it (SQLite writes a row whole).  The row takes
 * its body along when it goes.
 */
#define OUTBOUND_INDEXES \
    "CREATE INDEX outbound_due ON outbound (next_try);" \
    "CREATE INDEX outbound_domain ON outbound (domain, id);" \
    "CREATE INDEX outbound_lease ON outbound (lease_until);"

static const char schema_v3[] =
    "CREATE TABLE outbound_v3 ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " domain TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,"
    " all_recipients TEXT NOT NULL, message_id TEXT NOT NULL,"
    " body TEXT UNIQUE, size INTEGER NOT NULL,"
    " stamp TEXT NOT NULL, stamp_date TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, first_try INTEGER NOT NULL,"
    " next_try INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER,"
    " UNIQUE (domain, sender, message_id));"
    "CREATE TABLE outbound_data ("
    " id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "INSERT INTO outbound_v3 (id, domain, sender, recipients,"
    " all_recipients, message_id, body, size, stamp, stamp_date, attempts,"
    " first_try, next_try, lease_owner, lease_until) SELECT id, domain,"
    " sender, recipients, all_recipients, message_id, body, size, stamp,"
    " stamp_date, attempts, first_try, next_try, lease_owner, lease_until"
    " FROM outbound;"
    "INSERT INTO outbound_data (id, data) SELECT id, data FROM outbound"
    " WHERE data IS NOT NULL;"
    "DROP TABLE outbound;"
    "ALTER TABLE outbound_v3 RENAME TO outbound;"
    OUTBOUND_INDEXES
    OUTBOUND_ADDED
    OUTBOUND_REMOVED(" DELETE FROM outbound_data WHERE id = old.id;");

/* fsync every bodies/XX directory. */
static int
bodies_sync(struct sqlite_store *s, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < 256; i++) {
		/* fsync_parent_dir syncs the directory of this (absent) name */
		if ((size_t)snprintf(path, sizeof(path), "%s/%02x/x", s->bodies,
		    i) >= sizeof(path) || fsync_parent_dir(path, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * Copy a version-0 table's rows into its version-1 table, each blob
 * (column blobcol of sel) into a new body file.  ins takes the columns
 * of sel in order, the body's name in place of the blob, then its size,
 * then (with_id) a fresh random id.  The files are synced; their
 * directories are left to the caller.
 */
static int
migrate_rows(struct sqlite_store *s, const char *sel, const char *ins,
    int blobcol, int with_id, struct smimp_err *err)
{
	sqlite3_stmt *from = NULL, *to = NULL;
	struct store_body b;
	struct body_name name;
	char prefix[3];
	unsigned char r;
	uint64_t size;
	int rc, c, ncols, tries, ret = -1;

	from = stmt_new(s->db, err, sel, "");
	to = from == NULL ? NULL : stmt_new(s->db, err, ins, "");
	if (to == NULL)
		goto out;
	ncols = sqlite3_column_count(from);
	while ((rc = sqlite3_step(from)) == SQLITE_ROW) {
		memset(&b, 0, sizeof(b));
		b.data = sqlite3_column_blob(from, blobcol);
		b.len = (size_t)sqlite3_column_bytes(from, blobcol);
		randombytes_buf(&r, 1);
		sodium_bin2hex(prefix, sizeof(prefix), &r, 1);
		if (body_place(s, &b, NULL, prefix, &name, &size, err) != 0)
			goto out;
		for (tries = 0; tries < NAME_TRIES; tries++) {
			for (c = 0; c < ncols; c++)
				if ((c == blobcol ? sqlite3_bind_text(to, c + 1,
				    name.s, -1, SQLITE_STATIC) :
				    sqlite3_bind_value(to, c + 1,
				    sqlite3_column_value(from, c))) != SQLITE_OK)
					goto bind;
			if (sqlite3_bind_int64(to, ncols + 1,
			    (int64_t)size) != SQLITE_OK || (with_id &&
			    sqlite3_bind_int64(to, ncols + 2,
			    store_random_id()) != SQLITE_OK))
				goto bind;
			rc = sqlite3_step(to);
			(void)sqlite3_reset(to);
			if (rc != SQLITE_CONSTRAINT || !with_id)
				break;
		}
		if (rc != SQLITE_DONE) {
			db_fail(s->db, err, "migrate");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(s->db, err, "migrate");
		goto out;
	}
	ret = 0;
	goto out;
bind:
	db_fail(s->db, err, "migrate");
out:
	sqlite3_finalize(to);
	sqlite3_finalize(from);
	return ret;
}

/*
 * 0 -> 1, inside the caller's transaction.  A body file is written and
 * synced before the commit that references it; if the transaction
 * does not commit, the files are orphans, removed by the next open.
 */
static int
migrate_v1(struct sqlite_store *s, struct smimp_err *err)
{
	if (exec_sql(s->db, schema_v0) != 0 ||
	    exec_sql(s->db, schema_v1_tables) != 0)
		return db_fail(s->db, err, "schema");
	if (migrate_rows(s, "SELECT id, recipient, sender, message_id, data, "
	    "received FROM mailbox ORDER BY id", "INSERT INTO mailbox_v1 "
	    "(seq, recipient, sender, message_id, body, received, size, id) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", 4, 1, err) != 0 ||
	    migrate_rows(s, "SELECT id, domain, sender, recipients, "
	    "all_recipients, message_id, data, stamp, stamp_date, attempts, "
	    "first_try, next_try FROM outbound ORDER BY id", "INSERT INTO "
	    "outbound_v1 (id, domain, sender, recipients, all_recipients, "
	    "message_id, body, stamp, stamp_date, attempts, first_try, "
	    "next_try, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    6, 0, err) != 0 || bodies_sync(s, err) != 0)
		return -1;
	if (exec_sql(s->db, schema_v1_finish) != 0 ||
	    exec_sql(s->db, usage_triggers) != 0)
		return db_fail(s->db, err, "schema");
	return 0;
}

/*
 * 1 -> 2, inside the caller's transaction: the rows move to tables
 * whose body may be inline; the files stay as they are.  The usage
 * counters are unchanged: the same rows, the same sizes.
 */
static int
migrate_v2(struct sqlite_store *s, struct smimp_err *err)
{
	if (exec_sql(s->db, schema_v2) != 0 ||
	    exec_sql(s->db, usage_triggers) != 0)
		return db_fail(s->db, err, "schema");
	return 0;
}

/* A step that is SQL only, inside the caller's transaction. */
static int
schema_exec(struct sqlite_store *s, const char *sql, struct smimp_err *err)
{
	return exec_sql(s->db, sql) != 0 ? db_fail(s->db, err, "schema") : 0;
}

/* 2 -> 3, inside the caller's transaction: see schema_v3. */
static int
migrate_v3(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, schema_v3, err);
}

/*
 * Consent: each user's policy statement with what deciding needs of it,
 * its entries indexed by (address, entry) so that a delivery looks up
 * two or four entries instead of parsing the statement, and the
 * counters of unknown senders (per recipient per day, per sending
 * domain per hour), shared by every node.
 */
static const char schema_consent[] =
    "CREATE TABLE policies ("
    " address TEXT PRIMARY KEY, date INTEGER NOT NULL,"
    " unknown INTEGER NOT NULL, bits INTEGER NOT NULL,"
    " allowance INTEGER NOT NULL, salt BLOB NOT NULL, text BLOB NOT NULL);"
    "CREATE TABLE policy_entries ("
    " address TEXT NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL,"
    " PRIMARY KEY (address, hash)) WITHOUT ROWID;"
    "CREATE TABLE consent_domains ("
    " domain TEXT PRIMARY KEY, hour INTEGER NOT NULL,"
    " count INTEGER NOT NULL, ignored_until INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE consent_allowance ("
    " recipient TEXT PRIMARY KEY, day INTEGER NOT NULL,"
    " count INTEGER NOT NULL) WITHOUT ROWID;";

static int
migrate_consent(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, schema_consent, err);
}

/*
 * 4 -> 5, inside the caller's transaction: a queued entry carries the
 * consent headers of its submission to the recipients' domain, the
 * proofs of work for its recipients and the introductions ("" none).
 */
static int
migrate_carried(struct sqlite_store *s, struct smimp_err *err)
{
	return exec_sql(s->db, "ALTER TABLE outbound ADD COLUMN work TEXT "
	    "NOT NULL DEFAULT '';" "ALTER TABLE outbound ADD COLUMN "
	    "introduction TEXT NOT NULL DEFAULT '';") != 0 ?
	    db_fail(s->db, err, "schema") : 0;
}

/*
 * 5 -> 6: a queued entry names the device whose key made its stamp
 * ("" the identity key), which the relay tells the recipients' domain.
 */
static int
migrate_stamp_device(struct sqlite_store *s, struct smimp_err *err)
{
	return exec_sql(s->db, "ALTER TABLE outbound ADD COLUMN stamp_device "
	    "TEXT NOT NULL DEFAULT '';") != 0 ? db_fail(s->db, err,
	    "schema") : 0;
}

/*
 * 6 -> 7: one copy of a message, a delivery state per receiving
 * device of its owner.  The identity key's state is the row's
 * identity_pending (so that a user without devices writes no more rows
 * than before); each device's is a row of mailbox_pending, which lists
 * in arrival order.  first_ack starts the retention; sent marks the
 * sender's own copy.  user_devices holds each user's receiving devices
 * as the caller last gave them; devices_synced = 0 marks the accounts
 * from before, whose devices the server gives at its next start.
 * Existing messages are pending for the identity key only.
 */
static const char schema_devices[] =
    "ALTER TABLE mailbox ADD COLUMN identity_pending INTEGER NOT NULL"
    " DEFAULT 1;"
    "ALTER TABLE mailbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailbox ADD COLUMN first_ack INTEGER;"
    "DROP INDEX mailbox_order;"
    "CREATE INDEX mailbox_order ON mailbox (recipient, identity_pending,"
    " seq);"
    "CREATE INDEX mailbox_retained ON mailbox (first_ack)"
    " WHERE first_ack IS NOT NULL;"
    "CREATE TABLE mailbox_pending ("
    " recipient TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (recipient, device, seq)) WITHOUT ROWID;"
    "CREATE INDEX mailbox_pending_seq ON mailbox_pending (seq);"
    "CREATE TABLE user_devices ("
    " address TEXT NOT NULL, device TEXT NOT NULL, key BLOB NOT NULL,"
    " PRIMARY KEY (address, device)) WITHOUT ROWID;"
    "ALTER TABLE users ADD COLUMN devices_synced INTEGER NOT NULL"
    " DEFAULT 0;"
    "CREATE INDEX users_unsynced ON users (address)"
    " WHERE devices_synced = 0;";

static int
migrate_devices(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, schema_devices, err);
}

/*
 * 7 -> 8: the administrator may hold a queued entry (the relay claims
 * none that is held) or ask for an attempt now (retry_now), and sees
 * why its last attempt failed.
 */
static int
migrate_admin(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, "ALTER TABLE outbound ADD COLUMN held INTEGER "
	    "NOT NULL DEFAULT 0;" "ALTER TABLE outbound ADD COLUMN retry_now "
	    "INTEGER NOT NULL DEFAULT 0;" "ALTER TABLE outbound ADD COLUMN "
	    "last_error TEXT NOT NULL DEFAULT '';", err);
}

/*
 * 8 -> 9: what became of each sent message at each domain, kept for its
 * sender (doc/PROTOCOL.md 8.14): delivered with a receipt, or bounced;
 * and the queue read by message for the same question.
 */
static int
migrate_receipts(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, "CREATE TABLE sent_states ("
	    " sender TEXT NOT NULL, message_id TEXT NOT NULL,"
	    " domain TEXT NOT NULL, state INTEGER NOT NULL,"
	    " recipients TEXT NOT NULL, detail TEXT NOT NULL,"
	    " at INTEGER NOT NULL,"
	    " PRIMARY KEY (sender, message_id, domain)) WITHOUT ROWID;"
	    "CREATE INDEX sent_states_at ON sent_states (at);"
	    "CREATE INDEX outbound_sender ON outbound (sender, message_id);",
	    err);
}

/*
 * 9 -> 10: one-time prekeys, a pool per (user, receiving device: "" the
 * identity key), each handed out once; prekey_pools keeps the date of
 * the last batch a pool took, so that an older one is refused.
 */
static const char schema_prekeys[] =
    "CREATE TABLE prekeys ("
    " address TEXT NOT NULL, device TEXT NOT NULL, id TEXT NOT NULL,"
    " key BLOB NOT NULL, date INTEGER NOT NULL, signature BLOB NOT NULL,"
    " PRIMARY KEY (address, device, id)) WITHOUT ROWID;"
    "CREATE TABLE prekey_pools ("
    " address TEXT NOT NULL, device TEXT NOT NULL,"
    " last_date INTEGER NOT NULL,"
    " PRIMARY KEY (address, device)) WITHOUT ROWID;";

static int
migrate_prekeys(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, schema_prekeys, err);
}

/*
 * 10 -> 11: the messages counted today against each recipient's
 * allowance, so that a message is counted once however often it comes
 * before it is stored (copies checked at once, a retry after 429).
 */
static const char schema_counted[] =
    "CREATE TABLE consent_counted ("
    " recipient TEXT NOT NULL, sender TEXT NOT NULL,"
    " message_id TEXT NOT NULL, day INTEGER NOT NULL,"
    " PRIMARY KEY (recipient, sender, message_id)) WITHOUT ROWID;"
    "CREATE INDEX consent_counted_day ON consent_counted (day);";

static int
migrate_counted(struct sqlite_store *s, struct smimp_err *err)
{
	return schema_exec(s, schema_counted, err);
}

/* migrations[v] takes a store from version v to v + 1. */
static int (*const migrations[])(struct sqlite_store *, struct smimp_err *) = {
	migrate_v1,
	migrate_v2,
	migrate_v3,
	migrate_consent,
	migrate_carried,
	migrate_stamp_device,
	migrate_devices,
	migrate_admin,
	migrate_receipts,
	migrate_prekeys,
	migrate_counted,
};

#define SCHEMA_VERSION	((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

/* Each step in a transaction of its own: a crash leaves one version. */
static int
migrate(struct sqlite_store *s, const char *path, int64_t from,
    struct smimp_err *err)
{
	char sql[64], why[SMIMP_ERR_MSG];
	int64_t v;

	for (v = from; v < SCHEMA_VERSION; v++) {
		smimp_err_clear(err);
		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    (int)v + 1);
		if (exec_sql(s->db, "BEGIN IMMEDIATE") != 0) {
			db_fail(s->db, err, "begin");
			goto fail;
		}
		if (migrations[v](s, err) != 0 || exec_sql(s->db, sql) != 0 ||
		    exec_sql(s->db, "COMMIT") != 0) {
			if (err->msg[0] == '\0')
				db_fail(s->db, err, "commit");
			(void)exec_sql(s->db, "ROLLBACK");
			goto fail;
		}
	}
	return 0;
fail:
	(void)snprintf(why, sizeof(why), "%s", err->msg);
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot migrate the store "
	    "'%s' from schema version %d: %s", path, (int)v, why);
}

/* ---- opening ---- */

static int
db_open(const char *path, sqlite3 **db, const char *setup,
    struct smimp_err *err)
{
	*db = NULL;
	/*
	 * Each connection is used by one thread at a time (the pool, the
	 * commit leader), so SQLite's own locking is not needed.
	 */
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(*db, setup, NULL, NULL, NULL) != SQLITE_OK)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot open the "
		    "store '%s': %s", path, *db != NULL ?
		    sqlite3_errmsg(*db) : "out of memory");
	return 0;
}

/* A directory of bodies/ being swept: sub is its name. */
struct sweeping {
	struct sqlite_store *s;
	const char *sub;
};

/* Keep a body file that a row names (its directory agreeing). */
static int
referenced(void *arg, const char *name)
{
	struct sqlite_store *s = ((struct sweeping *)arg)->s;
	const char *sub = ((struct sweeping *)arg)->sub;
	int rc;

	if (s->sweep == NULL || !name_valid(name) || name[0] != sub[0] ||
	    name[1] != sub[1])
		return 0;
	if (sqlite3_reset(s->sweep) != SQLITE_OK ||
	    sqlite3_bind_text(s->sweep, 1, name, -1,
	    SQLITE_TRANSIENT) != SQLITE_OK)
		return 1;	/* cannot tell: keep it */
	rc = sqlite3_step(s->sweep);
	return rc != SQLITE_DONE;
}

/*
 * Remove the body files no row names: left by a crash between placing
 * them and the commit, or between a commit and the unlink.  Before any
 * version 1 there were no body files: all are orphans then.
 */
static int
sweep_orphans(struct sqlite_store *s, int64_t version, struct smimp_err *err)
{
	char path[PATH_MAX], sub[3];
	struct sweeping sw = { s, sub };
	unsigned int i;
	int ret = -1;

	if (version >= 1) {
		s->sweep = stmt_new(s->db, err, "SELECT 1 FROM mailbox WHERE "
		    "body = ?1 UNION ALL SELECT 1 FROM outbound WHERE "
		    "body = ?1 LIMIT 1", "");
		if (s->sweep == NULL)
			return -1;
	}
	for (i = 0; i < 256; i++) {
		(void)snprintf(sub, sizeof(sub), "%02x", i);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", s->bodies,
		    sub) >= sizeof(path) || store_dir_empty(path, referenced,
		    &sw, err) != 0)
			goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s->sweep);
	s->sweep = NULL;
	return ret;
}

/* DIR/bodies/00..ff and DIR/spool, each 0700, DIR's owner's, synced. */
static int
make_dirs(struct sqlite_store *s, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned int i;

	if (mkdir_p(s->spool, 0700, err) != 0 ||
	    store_give(s->dir, s->spool, err) != 0 ||
	    mkdir_p(s->bodies, 0700, err) != 0 ||
	    store_give(s->dir, s->bodies, err) != 0)
		return -1;
	for (i = 0; i < 256; i++)
		if ((size_t)snprintf(path, sizeof(path), "%s/%02x", s->bodies,
		    i) >= sizeof(path) || mkdir_p(path, 0700, err) != 0 ||
		    store_give(s->dir, path, err) != 0)
			return -1;
	return fsync_parent_dir(path, err) != 0 ||
	    fsync_parent_dir(s->bodies, err) != 0 ||
	    fsync_parent_dir(s->spool, err) != 0 ? -1 : 0;
}

static void
sq_close(struct store *st)
{
	struct sqlite_store *s = sq(st);
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < 1 + READERS; i++)
		if (s->caches[i].db != NULL)
			cache_drop(&s->caches[i]);
	for (i = 0; i < READERS; i++)
		if (s->readers[i] != NULL)
			(void)sqlite3_close(s->readers[i]);
	if (s->db != NULL)
		(void)sqlite3_close(s->db);
	if (s->locks) {
		pthread_cond_destroy(&s->reader_free);
		pthread_mutex_destroy(&s->readers_mu);
		pthread_mutex_destroy(&s->mu);
	}
	/* Closing the file gives up the lock. */
	if (s->lock_fd >= 0)
		(void)close(s->lock_fd);
	free(s);
}

/* DIR's paths, checked for length. */
static int
set_paths(struct sqlite_store *s, const char *dir, char *db,
    struct smimp_err *err)
{
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s", dir) >=
	    sizeof(s->dir) ||
	    (size_t)snprintf(s->bodies, sizeof(s->bodies), "%s/bodies", dir) >=
	    sizeof(s->bodies) ||
	    (size_t)snprintf(s->spool, sizeof(s->spool), "%s/spool", dir) >=
	    sizeof(s->spool) ||
	    (size_t)snprintf(db, PATH_MAX, "%s/smimpd.db", dir) >= PATH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store directory "
		    "path too long");
	return 0;
}

/*
 * The database file made 0600 before SQLite makes it (and its WAL, for
 * the database's owner when it runs as root), in dir.
 */
static int
db_create(const char *dir, const char *path, struct smimp_err *err)
{
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open the "
		    "store '%s'", path);
	(void)close(fd);
	return store_give(dir, path, err);
}

/* The database file is there: an earlier open made the store. */
static int
sq_exists(const char *dir)
{
	char path[PATH_MAX];
	struct stat sb;

	if ((size_t)snprintf(path, sizeof(path), "%s/smimpd.db", dir) >=
	    sizeof(path))
		return 1;	/* the open says what is wrong */
	return lstat(path, &sb) == 0 || errno != ENOENT;
}

/* The store is DIR itself: local is not needed. */
static struct store *
sq_open(const char *dir, const char *local, struct smimp_err *err)
{
	struct sqlite_store *s;
	char path[PATH_MAX];
	int64_t version = 0;
	int alone, i;

	(void)local;
	/* No global lock around every allocation for statistics. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_threadsafe() == 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "SQLite is built without "
		    "thread support");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	s->base.ops = &store_sqlite_ops;
	s->lock_fd = -1;
	if (pthread_mutex_init(&s->mu, NULL) != 0 ||
	    pthread_mutex_init(&s->readers_mu, NULL) != 0 ||
	    pthread_cond_init(&s->reader_free, NULL) != 0) {
		free(s);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up locks");
		return NULL;
	}
	s->locks = 1;
	if (set_paths(s, dir, path, err) != 0 ||
	    mkdir_p(s->dir, 0700, err) != 0)
		goto fail;
	alone = store_lock_dir(s->dir, &s->lock_fd, err);
	if (alone < 0 || db_create(s->dir, path, err) != 0 ||
	    db_open(path, &s->db, "PRAGMA synchronous=FULL;"
	    "PRAGMA secure_delete=FAST;" "PRAGMA foreign_keys=ON;", err) != 0)
		goto fail;
	if (sql_first(s->db, err, &version, NULL, 0, "PRAGMA user_version",
	    "") != 1)
		goto fail;
	/* Refused before anything in it changes, WAL mode included. */
	if (version > SCHEMA_VERSION) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the store '%s' has schema "
		    "version %lld; this smimpd knows versions up to %lld", path,
		    (long long)version, (long long)SCHEMA_VERSION);
		goto fail;
	}
	if (make_dirs(s, err) != 0)
		goto fail;
	if (exec_sql(s->db, "PRAGMA journal_mode=WAL") != 0) {
		db_fail(s->db, err, "WAL");
		goto fail;
	}
	if (alone && (store_dir_empty(s->spool, NULL, NULL, err) != 0 ||
	    sweep_orphans(s, version, err) != 0))
		goto fail;
	if (version < SCHEMA_VERSION && migrate(s, path, version, err) != 0)
		goto fail;
	/*
	 * The trash's names were orphans: swept with them.  Alone with the
	 * store, every lease is a dead process's: its entries are free now
	 * rather than when the lease runs out.
	 */
	if (alone && (exec_sql(s->db, "DELETE FROM trash") != 0 ||
	    exec_sql(s->db, "UPDATE outbound SET lease_owner = NULL, "
	    "lease_until = NULL WHERE lease_owner IS NOT NULL") != 0)) {
		db_fail(s->db, err, "open");
		goto fail;
	}
	if (alone && store_lock_shared(s->lock_fd, dir, err) != 0)
		goto fail;
	/* The writer's list of messages about to leave (doomed_remove). */
	if (exec_sql(s->db, "PRAGMA temp_store=MEMORY;" "CREATE TEMP TABLE "
	    "doomed (seq INTEGER PRIMARY KEY)") != 0) {
		db_fail(s->db, err, "open");
		goto fail;
	}
	for (i = 0; i < READERS; i++) {
		if (db_open(path, &s->readers[i], "PRAGMA query_only=1;",
		    err) != 0)
			goto fail;
		s->free_readers[s->nfree++] = s->readers[i];
		cache_add(&s->caches[1 + i], s->readers[i]);
	}
	cache_add(&s->caches[0], s->db);
	return &s->base;
fail:
	sq_close(&s->base);
	return NULL;
}

static const char *
sq_spool_dir(struct store *st)
{
	return sq(st)->spool;
}

/* ---- backup ---- */

/* Link body name aside into stage/xx/name; *n counts them. */
static int
stage_one(struct sqlite_store *s, const char *stage, const char *name,
    uint64_t *n, struct smimp_err *err)
{
	char from[PATH_MAX], sub[PATH_MAX], to[PATH_MAX];

	if (body_path(s, name, from, err) != 0)
		return -1;
	if ((size_t)snprintf(sub, sizeof(sub), "%s/%.2s", stage, name) >=
	    sizeof(sub) || (size_t)snprintf(to, sizeof(to), "%s/%s", sub,
	    name) >= sizeof(to))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path too "
		    "long");
	if (mkdir(sub, 0700) != 0 && errno != EEXIST)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make '%s'",
		    sub);
	if (link(from, to) != 0)
		return errno == ENOENT ? smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "store: a row names the body bodies/%.2s/%s, which is "
		    "missing ('smimpd check' says more)", name, name) :
		    smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot link '%s'",
		    from);
	(*n)++;
	return 0;
}

/*
 * Each file under stage/xx/ done with: copied to out/xx/ (synced, each
 * directory too) when out is given, else unlinked with its directory.
 */
static int
stage_walk(const char *stage, const char *out, struct smimp_err *err)
{
	char sub[PATH_MAX], osub[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	struct dirent *e, *f;
	DIR *d, *dd;
	int ret = 0;

	d = opendir(stage);
	if (d == NULL)
		return out == NULL ? 0 : smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot open '%s'", stage);
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strlen(e->d_name) != 2)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", stage,
		    e->d_name) >= sizeof(sub) || (size_t)snprintf(osub,
		    sizeof(osub), "%s/%s", out != NULL ? out : "", e->d_name) >=
		    sizeof(osub)) {
			ret = smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path "
			    "too long");
			break;
		}
		if (out != NULL && mkdir(osub, 0700) != 0) {
			ret = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make "
			    "'%s'", osub);
			break;
		}
		dd = opendir(sub);
		while (dd != NULL && ret == 0 && (f = readdir(dd)) != NULL) {
			if (!name_valid(f->d_name))
				continue;
			if ((size_t)snprintf(from, sizeof(from), "%s/%s", sub,
			    f->d_name) >= sizeof(from) || (size_t)snprintf(to,
			    sizeof(to), "%s/%s", osub, f->d_name) >=
			    sizeof(to)) {
				ret = smimp_err_set(err, SMIMP_EXIT_FAIL,
				    "store: path too long");
				break;
			}
			if (out == NULL)
				(void)unlink(from);
			else if (file_copy_new(from, to, err) != 0)
				ret = -1;
		}
		if (dd != NULL)
			(void)closedir(dd);
		if (out == NULL)
			(void)rmdir(sub);
		else if (ret == 0)
			ret = fsync_dir(osub, err);
	}
	(void)closedir(d);
	if (out == NULL)
		(void)rmdir(stage);
	return ret == 0 && out != NULL ? fsync_dir(out, err) : ret;
}

/*
 * Hold the writers off (a write transaction) while a read transaction
 * begins and the bodies its rows name are linked aside (the same file
 * system, so links, not copies): a body that a writer unlinks later
 * lives on in its link.  Then the writers go on, and the database is
 * copied as that read transaction sees it, the linked bodies after it.
 */
static int
sq_backup(struct store *st, const char *dir, uint64_t *bodies,
    struct smimp_err *err)
{
	struct sqlite_store *s = sq(st);
	char db[PATH_MAX], out_db[PATH_MAX], out_bodies[PATH_MAX];
	char stage[PATH_MAX];
	sqlite3 *w = NULL, *r = NULL, *out = NULL;
	sqlite3_backup *bk;
	sqlite3_stmt *stmt = NULL;
	const unsigned char *t;
	int rc, ret = STORE_ERROR, staged = 0, fd;

	if ((size_t)snprintf(db, sizeof(db), "%s/smimpd.db", s->dir) >=
	    sizeof(db) || (size_t)snprintf(out_db, sizeof(out_db),
	    "%s/smimpd.db", dir) >= sizeof(out_db) ||
	    (size_t)snprintf(out_bodies, sizeof(out_bodies), "%s/bodies",
	    dir) >= sizeof(out_bodies) || (size_t)snprintf(stage,
	    sizeof(stage), "%s/backup.XXXXXX", s->dir) >= sizeof(stage))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path too "
		    "long");
	if (mkdtemp(stage) == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make a "
		    "directory in '%s'", s->dir);
	staged = 1;
	if (db_open(db, &w, "", err) != 0 || db_open(db, &r,
	    "PRAGMA query_only=1;", err) != 0)
		goto out;
	if (sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(r, "BEGIN; SELECT count(*) FROM mailbox", NULL, NULL,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r, "SELECT body FROM mailbox WHERE body IS NOT "
	    "NULL UNION SELECT body FROM outbound WHERE body IS NOT NULL", -1,
	    &stmt, NULL) != SQLITE_OK) {
		db_fail(sqlite3_errcode(w) != SQLITE_OK ? w : r, err, "backup");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		t = sqlite3_column_text(stmt, 0);
		if (t != NULL && name_valid((const char *)t) &&
		    stage_one(s, stage, (const char *)t, bodies, err) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		db_fail(r, err, "select");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	/* The writers go on; the read transaction keeps its moment. */
	(void)sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(w);
	w = NULL;
	if (sqlite3_open_v2(out_db, &out, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    (bk = sqlite3_backup_init(out, "main", r, "main")) == NULL) {
		db_fail(out, err, "backup");
		goto out;
	}
	rc = sqlite3_backup_step(bk, -1);
	if (sqlite3_backup_finish(bk) != SQLITE_OK || rc != SQLITE_DONE) {
		db_fail(out, err, "backup");
		goto out;
	}
	(void)sqlite3_exec(r, "COMMIT", NULL, NULL, NULL);
	rc = sqlite3_close(out);
	out = NULL;
	if (rc != SQLITE_OK) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot write '%s'", out_db);
		goto out;
	}
	fd = open(out_db, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot sync '%s'", out_db);
		if (fd >= 0)
			(void)close(fd);
		goto out;
	}
	(void)close(fd);
	if (mkdir(out_bodies, 0700) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make '%s'",
		    out_bodies);
		goto out;
	}
	if (stage_walk(stage, out_bodies, err) != 0 || fsync_dir(dir, err) != 0)
		goto out;
	ret = STORE_OK;
out:
	sqlite3_finalize(stmt);
	if (w != NULL) {
		(void)sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(w);
	}
	if (out != NULL)
		sqlite3_close(out);
	if (r != NULL)
		sqlite3_close(r);
	if (staged)
		(void)stage_walk(stage, NULL, err);
	return ret;
}

const struct store_ops store_sqlite_ops = {
	.exists = sq_exists,
	.open = sq_open,
	.close = sq_close,
	.spool_dir = sq_spool_dir,
	.user_add = sq_user_add,
	.user_get = sq_user_get,
	.user_log_update = sq_user_log_update,
	.user_del = sq_user_del,
	.user_list = sq_user_list,
	.user_list_unsynced = sq_user_list_unsynced,
	.invite_add = sq_invite_add,
	.invite_check = sq_invite_check,
	.invite_redeem = sq_invite_redeem,
	.invite_list = sq_invite_list,
	.nonce_claim = sq_nonce_claim,
	.submit = sq_submit,
	.deliver = sq_deliver,
	.mailbox_list = sq_mailbox_list,
	.mailbox_open = sq_mailbox_open,
	.mailbox_ack = sq_mailbox_ack,
	.outbound_claim = sq_outbound_claim,
	.outbound_open = sq_outbound_open,
	.outbound_done = sq_outbound_done,
	.outbound_renew = sq_outbound_renew,
	.outbound_retry = sq_outbound_retry,
	.outbound_bounce = sq_outbound_bounce,
	.outbound_count = sq_outbound_count,
	.outbound_stats = sq_outbound_stats,
	.outbound_list = sq_outbound_list,
	.outbound_admin = sq_outbound_admin,
	.outbound_take = sq_outbound_take,
	.stats = sq_stats,
	.check = sq_check,
	.backup = sq_backup,
	.policy_put = sq_policy_put,
	.policy_get = sq_policy_get,
	.policy_head = sq_policy_head,
	.correspondent = sq_correspondent,
	.policy_match = sq_policy_match,
	.consent_count = sq_consent_count,
	.sent_put = sq_sent_put,
	.sent_list = sq_sent_list,
	.sent_expire = sq_sent_expire,
	.prekey_add = sq_prekey_add,
	.prekey_count = sq_prekey_count,
	.prekey_claim = sq_prekey_claim,
	.prekey_drop = sq_prekey_drop,
	.server_key = sq_server_key,
};
