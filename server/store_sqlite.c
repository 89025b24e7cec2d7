/*
 * store_sqlite.c - the embedded store: SQLite in WAL mode with
 * synchronous=FULL, so that a commit is on disk when it returns.
 *
 * Writes go through one writer connection in group commits: a caller
 * queues its operation, and whichever caller finds no commit under way
 * runs every queued operation in one transaction (each inside its own
 * savepoint, so that one failure undoes only itself), commits once and
 * wakes the others.  Under load many requests share one fsync; alone,
 * a request pays exactly one.  Reads use a small pool of connections
 * of their own, which in WAL mode see only committed data and never
 * wait for the writer.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "exitcode.h"
#include "fileio.h"
#include "store.h"
#include "util.h"
#include "banned.h"

#define BUSY_TIMEOUT_MS	5000
#define READERS		8
#define NONCE_SWEEP_S	10	/* forget expired nonces this often */

struct write_op {
	int (*run)(sqlite3 *db, void *arg, struct smimp_err *err);
	void *arg;
	int ret;
	int done;
	struct smimp_err err;
	struct write_op *next;
};

struct store {
	sqlite3 *db;			/* the writer */
	pthread_mutex_t mu;		/* the write queue */
	pthread_cond_t committed;	/* a group commit finished */
	pthread_mutex_t readers_mu;	/* the reader pool */
	pthread_cond_t reader_free;
	struct write_op *queued;	/* newest first */
	int committing;
	int64_t next_sweep;
	sqlite3 *readers[READERS];
	int nfree;
	sqlite3 *free_readers[READERS];
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA foreign_keys=ON;"
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

static int
db_fail(sqlite3 *db, struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: %s: %s", what,
	    sqlite3_errmsg(db));
}

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

struct store *
store_open(const char *datadir, struct smimp_err *err)
{
	struct store *st;
	char path[PATH_MAX];
	int i;

	if (mkdir_p(datadir, 0700, err) != 0)
		return NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/smimpd.db", datadir) >=
	    sizeof(path)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "data directory path too "
		    "long");
		return NULL;
	}
	/* No global lock around every allocation for statistics. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_threadsafe() == 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "SQLite is built without "
		    "thread support");
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&st->mu, NULL) != 0 ||
	    pthread_mutex_init(&st->readers_mu, NULL) != 0 ||
	    pthread_cond_init(&st->committed, NULL) != 0 ||
	    pthread_cond_init(&st->reader_free, NULL) != 0) {
		free(st);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot set up locks");
		return NULL;
	}
	if (db_open(path, &st->db, schema, err) != 0)
		goto fail;
	for (i = 0; i < READERS; i++) {
		if (db_open(path, &st->readers[i], "PRAGMA query_only=1;",
		    err) != 0)
			goto fail;
		st->free_readers[st->nfree++] = st->readers[i];
	}
	return st;
fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < READERS; i++)
		if (st->readers[i] != NULL)
			(void)sqlite3_close(st->readers[i]);
	if (st->db != NULL)
		(void)sqlite3_close(st->db);
	pthread_cond_destroy(&st->reader_free);
	pthread_cond_destroy(&st->committed);
	pthread_mutex_destroy(&st->readers_mu);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ---- reads: a connection from the pool ---- */

static sqlite3 *
reader_get(struct store *st)
{
	sqlite3 *db;

	pthread_mutex_lock(&st->readers_mu);
	while (st->nfree == 0)
		pthread_cond_wait(&st->reader_free, &st->readers_mu);
	db = st->free_readers[--st->nfree];
	pthread_mutex_unlock(&st->readers_mu);
	return db;
}

static void
reader_put(struct store *st, sqlite3 *db)
{
	pthread_mutex_lock(&st->readers_mu);
	st->free_readers[st->nfree++] = db;
	pthread_cond_signal(&st->reader_free);
	pthread_mutex_unlock(&st->readers_mu);
}

static sqlite3_stmt *
prepare(sqlite3 *db, const char *sql, struct smimp_err *err)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_fail(db, err, "prepare");
		return NULL;
	}
	return stmt;
}

static int
bind_text(sqlite3_stmt *stmt, int i, const char *v)
{
	return sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC) == SQLITE_OK ?
	    0 : -1;
}

static char *
col_strdup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return strdup(t != NULL ? (const char *)t : "");
}

static void
col_copy(sqlite3_stmt *stmt, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	(void)snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

/* ---- writes: group commits on the writer ---- */

static int
exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Forget nonces whose window has passed; at most every few seconds. */
static void
sweep_nonces(struct store *st)
{
	sqlite3_stmt *stmt;
	int64_t now = time_now();

	if (now < st->next_sweep)
		return;
	st->next_sweep = now + NONCE_SWEEP_S;
	if (sqlite3_prepare_v2(st->db, "DELETE FROM nonces WHERE expires < ?",
	    -1, &stmt, NULL) != SQLITE_OK)
		return;
	if (sqlite3_bind_int64(stmt, 1, now) == SQLITE_OK)
		(void)sqlite3_step(stmt);
	sqlite3_finalize(stmt);
}

/* Run a batch (oldest first) in one transaction; the caller commits. */
static int
run_batch(struct store *st, struct write_op *batch)
{
	struct write_op *op;

	if (exec_sql(st->db, "BEGIN IMMEDIATE") != 0)
		return -1;
	sweep_nonces(st);
	for (op = batch; op != NULL; op = op->next) {
		if (exec_sql(st->db, "SAVEPOINT op") != 0) {
			op->ret = db_fail(st->db, &op->err, "savepoint");
			continue;
		}
		op->ret = op->run(st->db, op->arg, &op->err);
		if (op->ret < 0)
			(void)exec_sql(st->db, "ROLLBACK TO op");
		(void)exec_sql(st->db, "RELEASE op");
	}
	if (exec_sql(st->db, "COMMIT") != 0) {
		(void)exec_sql(st->db, "ROLLBACK");
		return -1;
	}
	return 0;
}

/* The queue, oldest first. */
static struct write_op *
take_queue(struct store *st)
{
	struct write_op *op = st->queued, *prev = NULL, *next;

	st->queued = NULL;
	for (; op != NULL; op = next) {
		next = op->next;
		op->next = prev;
		prev = op;
	}
	return prev;
}

/*
 * Run op->run in a transaction and return once it is committed (or
 * failed).  Returns what run returned, -1 if the commit failed.
 */
static int
group_write(struct store *st, int (*run)(sqlite3 *, void *,
    struct smimp_err *), void *arg, struct smimp_err *err)
{
	struct write_op me, *batch, *op;
	struct smimp_err cerr;
	int failed;

	memset(&me, 0, sizeof(me));
	me.run = run;
	me.arg = arg;
	pthread_mutex_lock(&st->mu);
	me.next = st->queued;
	st->queued = &me;
	while (!me.done) {
		if (st->committing) {
			pthread_cond_wait(&st->committed, &st->mu);
			continue;
		}
		st->committing = 1;
		batch = take_queue(st);
		pthread_mutex_unlock(&st->mu);
		failed = run_batch(st, batch);
		if (failed)
			db_fail(st->db, &cerr, "commit");
		pthread_mutex_lock(&st->mu);
		for (op = batch; op != NULL; op = op->next) {
			if (failed) {
				op->ret = -1;
				op->err = cerr;
			}
			op->done = 1;
		}
		st->committing = 0;
		pthread_cond_broadcast(&st->committed);
	}
	pthread_mutex_unlock(&st->mu);
	if (me.ret < 0 && err != NULL)
		*err = me.err;
	return me.ret;
}

/* One statement with its parameters bound by bind; SQLITE_DONE or not. */
static int
step_once(sqlite3 *db, const char *sql,
    int (*bind)(sqlite3_stmt *, const void *), const void *arg, int *rc,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt = prepare(db, sql, err);

	if (stmt == NULL)
		return -1;
	if (bind(stmt, arg) != 0) {
		sqlite3_finalize(stmt);
		return db_fail(db, err, "bind");
	}
	*rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return 0;
}

/* ---- accounts ---- */

struct user_args {
	const char *address;
	const unsigned char *log;
	size_t len;
};

static int
bind_user(sqlite3_stmt *stmt, const void *arg)
{
	const struct user_args *a = arg;

	if (bind_text(stmt, 1, a->address) != 0)
		return -1;
	if (a->log != NULL && sqlite3_bind_blob(stmt, 2, a->log, (int)a->len,
	    SQLITE_STATIC) != SQLITE_OK)
		return -1;
	return 0;
}

static int
user_add(sqlite3 *db, void *arg, struct smimp_err *err)
{
	const struct user_args *a = arg;
	int rc = SQLITE_ERROR;

	if (step_once(db, "INSERT INTO users (address, log) VALUES (?, ?)",
	    bind_user, a, &rc, err) != 0)
		return -1;
	if (rc == SQLITE_CONSTRAINT)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s already has an "
		    "account", a->address);
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "insert");
}

int
store_user_add(struct store *st, const char *address,
    const unsigned char *log, size_t log_len, struct smimp_err *err)
{
	struct user_args a = { address, log, log_len };

	if (log_len > INT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "identity too "
		    "large");
	return group_write(st, user_add, &a, err);
}

static int
user_del(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "DELETE FROM users WHERE address = ?", bind_user,
	    arg, &rc, err) != 0)
		return -1;
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "delete");
	return sqlite3_changes(db) > 0 ? 1 : 0;
}

int
store_user_del(struct store *st, const char *address, struct smimp_err *err)
{
	struct user_args a = { address, NULL, 0 };

	return group_write(st, user_del, &a, err);
}

/*
 * The one blob a query selects, bound to text (and an id unless id < 0):
 * 1 found (malloc'd into *data), 0 not found, -1 error.
 */
static int
select_blob(struct store *st, const char *sql, const char *text, int64_t id,
    unsigned char **data, size_t *len, struct smimp_err *err)
{
	sqlite3 *db = reader_get(st);
	sqlite3_stmt *stmt;
	int rc = SQLITE_ERROR, ret = -1;

	stmt = prepare(db, sql, err);
	if (stmt == NULL)
		goto out;
	if (bind_text(stmt, 1, text) != 0 ||
	    (id >= 0 && sqlite3_bind_int64(stmt, 2, id) != SQLITE_OK)) {
		db_fail(db, err, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(db, err, "select");
		goto out;
	}
	*len = (size_t)sqlite3_column_bytes(stmt, 0);
	*data = malloc(*len + 1);
	if (*data == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (*len > 0)
		memcpy(*data, sqlite3_column_blob(stmt, 0), *len);
	ret = 1;
out:
	sqlite3_finalize(stmt);
	reader_put(st, db);
	return ret;
}

int
store_user_get(struct store *st, const char *address, unsigned char **log,
    size_t *log_len, struct smimp_err *err)
{
	return select_blob(st, "SELECT log FROM users WHERE address = ?",
	    address, -1, log, log_len, err);
}

/*
 * Run a query on a reader connection: bind (unless NULL) binds its
 * parameters, row takes each row.  A row that returns non-zero stops
 * the query as a failure, with err set by row.
 */
static int
each_row(struct store *st, const char *sql,
    int (*bind)(sqlite3_stmt *, const void *), const void *bargs,
    int (*row)(sqlite3_stmt *, void *, struct smimp_err *), void *arg,
    struct smimp_err *err)
{
	sqlite3 *db = reader_get(st);
	sqlite3_stmt *stmt;
	int rc = SQLITE_ERROR, ret = -1;

	stmt = prepare(db, sql, err);
	if (stmt == NULL)
		goto out;
	if (bind != NULL && bind(stmt, bargs) != 0) {
		db_fail(db, err, "bind");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		if (row(stmt, arg, err) != 0)
			goto out;
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "select");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	reader_put(st, db);
	return ret;
}

static int
stopped(struct smimp_err *err)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "listing stopped");
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
	    u->arg) != 0 ? stopped(err) : 0;
}

int
store_user_list(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	struct user_each u = { fn, arg };

	return each_row(st, "SELECT address, log FROM users ORDER BY address",
	    NULL, NULL, user_row, &u, err);
}

/* ---- invitations ---- */

struct invite_args {
	const unsigned char *hash;
	const char *address;
	int64_t when;		/* expiry to store, or now to check */
	struct user_args user;
};

static int
bind_invite(sqlite3_stmt *stmt, const void *arg)
{
	const struct invite_args *a = arg;

	return sqlite3_bind_blob(stmt, 1, a->hash, INVITE_HASH_SIZE,
	    SQLITE_STATIC) != SQLITE_OK || bind_text(stmt, 2, a->address) ||
	    sqlite3_bind_int64(stmt, 3, a->when) != SQLITE_OK ? -1 : 0;
}

static int
invite_add(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "INSERT INTO invites (hash, address, expires) "
	    "VALUES (?, ?, ?)", bind_invite, arg, &rc, err) != 0)
		return -1;
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "invite");
}

int
store_invite_add(struct store *st, const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, int64_t expires, struct smimp_err *err)
{
	struct invite_args a = { hash, address, expires, { NULL, NULL, 0 } };

	return group_write(st, invite_add, &a, err);
}

static int
invite_redeem(sqlite3 *db, void *arg, struct smimp_err *err)
{
	struct invite_args *a = arg;
	int rc = SQLITE_ERROR;

	/* Expired invitations go whenever one is redeemed. */
	if (exec_sql(db, "DELETE FROM invites WHERE expires < "
	    "strftime('%s','now')") != 0)
		return db_fail(db, err, "invite cleanup");
	if (step_once(db, "DELETE FROM invites WHERE hash = ? AND "
	    "address = ? AND expires >= ?", bind_invite, a, &rc, err) != 0)
		return -1;
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "invite");
	if (sqlite3_changes(db) == 0)
		return 0;
	if (step_once(db, "INSERT INTO users (address, log) VALUES (?, ?)",
	    bind_user, &a->user, &rc, err) != 0)
		return -1;
	if (rc == SQLITE_CONSTRAINT) {
		/* Keep the invitation: nothing was registered. */
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s already has an "
		    "account", a->address);
		return -2;
	}
	return rc == SQLITE_DONE ? 1 : db_fail(db, err, "insert");
}

int
store_invite_redeem(struct store *st,
    const unsigned char hash[INVITE_HASH_SIZE],
    const char *address, const unsigned char *log, size_t len, int64_t now,
    struct smimp_err *err)
{
	struct invite_args a = { hash, address, now, { address, log, len } };
	int r;

	if (len > INT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "identity too "
		    "large");
	r = group_write(st, invite_redeem, &a, err);
	return r == -2 ? 2 : r;
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
	    sqlite3_column_int64(stmt, 1), v->arg) != 0 ? stopped(err) : 0;
}

int
store_invite_list(struct store *st,
    int (*fn)(const char *, int64_t, void *), void *arg,
    struct smimp_err *err)
{
	struct invite_each v = { fn, arg };

	return each_row(st, "SELECT address, expires FROM invites "
	    "ORDER BY address, expires", NULL, NULL, invite_row, &v, err);
}

/* ---- nonces ---- */

struct nonce_args {
	const char *signer, *nonce;
	int64_t expires;
};

static int
bind_nonce(sqlite3_stmt *stmt, const void *arg)
{
	const struct nonce_args *a = arg;

	return bind_text(stmt, 1, a->signer) || bind_text(stmt, 2, a->nonce) ||
	    sqlite3_bind_int64(stmt, 3, a->expires) != SQLITE_OK ? -1 : 0;
}

static int
nonce_claim(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "INSERT INTO nonces (signer, nonce, expires) "
	    "VALUES (?, ?, ?)", bind_nonce, arg, &rc, err) != 0)
		return -1;
	if (rc == SQLITE_CONSTRAINT)
		return 0;
	return rc == SQLITE_DONE ? 1 : db_fail(db, err, "nonce");
}

int
store_nonce_claim(struct store *st, const char *signer, const char *nonce,
    int64_t expires, struct smimp_err *err)
{
	struct nonce_args a = { signer, nonce, expires };

	return group_write(st, nonce_claim, &a, err);
}

/* ---- mailboxes ---- */

struct deliver_args {
	const char *recipient, *sender, *message_id;
	const unsigned char *data;
	size_t len;
};

static int
bind_deliver(sqlite3_stmt *stmt, const void *arg)
{
	const struct deliver_args *a = arg;

	return bind_text(stmt, 1, a->recipient) ||
	    bind_text(stmt, 2, a->sender) ||
	    bind_text(stmt, 3, a->message_id) ||
	    sqlite3_bind_blob(stmt, 4, a->data, (int)a->len, SQLITE_STATIC) !=
	    SQLITE_OK ? -1 : 0;
}

static int
deliver(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "INSERT OR IGNORE INTO mailbox (recipient, sender, "
	    "message_id, data) VALUES (?, ?, ?, ?)", bind_deliver, arg, &rc,
	    err) != 0)
		return -1;
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "deliver");
}

int
store_deliver(struct store *st, const char *recipient, const char *sender,
    const char *message_id, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	struct deliver_args a = { recipient, sender, message_id, data, len };

	if (len > INT_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "message too large");
	return group_write(st, deliver, &a, err);
}

struct many_args {
	const struct store_delivery *d;
	size_t n;
};

static int
deliver_many(sqlite3 *db, void *arg, struct smimp_err *err)
{
	const struct many_args *m = arg;
	struct deliver_args a;
	size_t i;

	for (i = 0; i < m->n; i++) {
		a.recipient = m->d[i].recipient;
		a.sender = m->d[i].sender;
		a.message_id = m->d[i].message_id;
		a.data = m->d[i].data;
		a.len = m->d[i].len;
		if (deliver(db, &a, err) != 0)
			return -1;
	}
	return 0;
}

int
store_deliver_many(struct store *st, const struct store_delivery *d,
    size_t n, struct smimp_err *err)
{
	struct many_args m = { d, n };
	size_t i;

	for (i = 0; i < n; i++)
		if (d[i].len > INT_MAX)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "message too "
			    "large");
	return n == 0 ? 0 : group_write(st, deliver_many, &m, err);
}

struct mailbox_each {
	int (*fn)(const struct mailbox_entry *, void *);
	void *arg;
};

static int
bind_owner_page(sqlite3_stmt *stmt, const void *owner)
{
	return bind_text(stmt, 1, owner) != 0 ||
	    sqlite3_bind_int(stmt, 2, MAILBOX_PAGE) != SQLITE_OK ? -1 : 0;
}

static int
mailbox_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct mailbox_each *m = arg;
	struct mailbox_entry e;

	memset(&e, 0, sizeof(e));
	e.id = sqlite3_column_int64(stmt, 0);
	col_copy(stmt, 1, e.sender, sizeof(e.sender));
	col_copy(stmt, 2, e.message_id, sizeof(e.message_id));
	e.size = (size_t)sqlite3_column_int64(stmt, 3);
	e.received = sqlite3_column_int64(stmt, 4);
	return m->fn(&e, m->arg) != 0 ? stopped(err) : 0;
}

int
store_mailbox_list(struct store *st, const char *owner,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err)
{
	struct mailbox_each m = { fn, arg };

	return each_row(st, "SELECT id, sender, message_id, length(data), "
	    "received FROM mailbox WHERE recipient = ? ORDER BY id LIMIT ?",
	    bind_owner_page, owner, mailbox_row, &m, err);
}

int
store_mailbox_get(struct store *st, const char *owner, int64_t id,
    unsigned char **data, size_t *len, struct smimp_err *err)
{
	return select_blob(st, "SELECT data FROM mailbox WHERE recipient = ? "
	    "AND id = ?", owner, id, data, len, err);
}

struct ack_args {
	const char *owner;
	int64_t id;
};

static int
bind_ack(sqlite3_stmt *stmt, const void *arg)
{
	const struct ack_args *a = arg;

	return bind_text(stmt, 1, a->owner) ||
	    sqlite3_bind_int64(stmt, 2, a->id) != SQLITE_OK ? -1 : 0;
}

static int
mailbox_ack(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "DELETE FROM mailbox WHERE recipient = ? AND id = ?",
	    bind_ack, arg, &rc, err) != 0)
		return -1;
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "ack");
	return sqlite3_changes(db) > 0 ? 1 : 0;
}

int
store_mailbox_ack(struct store *st, const char *owner, int64_t id,
    struct smimp_err *err)
{
	struct ack_args a = { owner, id };

	return group_write(st, mailbox_ack, &a, err);
}

struct ack_many_args {
	const char *owner;
	const int64_t *ids;
	size_t n, acked;
};

static int
mailbox_ack_many(sqlite3 *db, void *arg, struct smimp_err *err)
{
	struct ack_many_args *m = arg;
	struct ack_args a = { m->owner, 0 };
	size_t i;
	int r;

	m->acked = 0;
	for (i = 0; i < m->n; i++) {
		a.id = m->ids[i];
		r = mailbox_ack(db, &a, err);
		if (r < 0)
			return -1;
		m->acked += (size_t)r;
	}
	return 0;
}

int
store_mailbox_ack_many(struct store *st, const char *owner,
    const int64_t *ids, size_t n, size_t *acked, struct smimp_err *err)
{
	struct ack_many_args m = { owner, ids, n, 0 };
	int r;

	*acked = 0;
	if (n == 0)
		return 0;
	r = group_write(st, mailbox_ack_many, &m, err);
	if (r == 0)
		*acked = m.acked;
	return r;
}

/* ---- the relay queue ---- */

void
outbound_release(struct outbound *ob)
{
	free(ob->recipients);
	free(ob->all);
	free(ob->data);
	memset(ob, 0, sizeof(*ob));
}

struct outbound_args {
	const struct outbound *ob;
	int64_t now;
};

static int
bind_outbound(sqlite3_stmt *stmt, const void *arg)
{
	const struct outbound_args *a = arg;
	const struct outbound *ob = a->ob;

	return bind_text(stmt, 1, ob->domain) ||
	    bind_text(stmt, 2, ob->sender) ||
	    bind_text(stmt, 3, ob->recipients) || bind_text(stmt, 4, ob->all) ||
	    bind_text(stmt, 5, ob->message_id) ||
	    sqlite3_bind_blob(stmt, 6, ob->data, (int)ob->len,
	    SQLITE_STATIC) != SQLITE_OK || bind_text(stmt, 7, ob->stamp) ||
	    bind_text(stmt, 8, ob->stamp_date) ||
	    sqlite3_bind_int64(stmt, 9, a->now) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 10, a->now) != SQLITE_OK ? -1 : 0;
}

static int
outbound_add(sqlite3 *db, void *arg, struct smimp_err *err)
{
	int rc = SQLITE_ERROR;

	if (step_once(db, "INSERT OR IGNORE INTO outbound (domain, sender, "
	    "recipients, all_recipients, message_id, data, stamp, stamp_date, "
	    "first_try, next_try) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    bind_outbound, arg, &rc, err) != 0)
		return -1;
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "queue");
}


/* Fill ob from a row of the outbound table; -1 out of memory. */
static int
outbound_row(sqlite3_stmt *stmt, struct outbound *ob)
{
	ob->id = sqlite3_column_int64(stmt, 0);
	col_copy(stmt, 1, ob->domain, sizeof(ob->domain));
	col_copy(stmt, 2, ob->sender, sizeof(ob->sender));
	ob->recipients = col_strdup(stmt, 3);
	ob->all = col_strdup(stmt, 4);
	col_copy(stmt, 5, ob->message_id, sizeof(ob->message_id));
	ob->len = (size_t)sqlite3_column_bytes(stmt, 6);
	ob->data = malloc(ob->len + 1);
	col_copy(stmt, 7, ob->stamp, sizeof(ob->stamp));
	col_copy(stmt, 8, ob->stamp_date, sizeof(ob->stamp_date));
	ob->attempts = (unsigned int)sqlite3_column_int(stmt, 9);
	ob->first_try = sqlite3_column_int64(stmt, 10);
	if (ob->recipients == NULL || ob->all == NULL || ob->data == NULL) {
		outbound_release(ob);
		return -1;
	}
	if (ob->len > 0)
		memcpy(ob->data, sqlite3_column_blob(stmt, 6), ob->len);
	return 0;
}

static int
submit(sqlite3 *db, void *arg, struct smimp_err *err)
{
	const struct store_submission *sub = arg;
	struct nonce_args na = { sub->signer, sub->nonce, sub->expires };
	struct outbound_args oa;
	struct many_args ma = { sub->d, sub->nd };
	size_t i;
	int r;

	r = nonce_claim(db, &na, err);
	if (r <= 0)
		return r;
	for (i = 0; i < sub->nobs; i++) {
		oa.ob = &sub->obs[i];
		oa.now = sub->now;
		if (outbound_add(db, &oa, err) != 0)
			return -1;
	}
	return deliver_many(db, &ma, err) != 0 ? -1 : 1;
}

int
store_submit(struct store *st, const struct store_submission *sub,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < sub->nd; i++)
		if (sub->d[i].len > INT_MAX)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "message too "
			    "large");
	for (i = 0; i < sub->nobs; i++)
		if (sub->obs[i].len > INT_MAX)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "message too "
			    "large");
	return group_write(st, submit, (void *)sub, err);
}

struct due_each {
	struct outbound *obs;
	size_t cap, n;
};

struct due_args {
	int64_t now, after, cap;
};

static int
bind_due(sqlite3_stmt *stmt, const void *arg)
{
	const struct due_args *a = arg;

	return sqlite3_bind_int64(stmt, 1, a->now) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 2, a->after) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 3, a->cap) != SQLITE_OK ? -1 : 0;
}

static int
due_row(sqlite3_stmt *stmt, void *arg, struct smimp_err *err)
{
	struct due_each *d = arg;

	if (d->n == d->cap)
		return 0;	/* LIMIT says this cannot be */
	memset(&d->obs[d->n], 0, sizeof(d->obs[d->n]));
	if (outbound_row(stmt, &d->obs[d->n]) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	d->n++;
	return 0;
}

int
store_outbound_due(struct store *st, int64_t now, int64_t after,
    struct outbound *obs, size_t cap, size_t *n, struct smimp_err *err)
{
	struct due_args a = { now, after, (int64_t)cap };
	struct due_each d = { obs, cap, 0 };

	if (each_row(st, "SELECT id, domain, sender, recipients, "
	    "all_recipients, message_id, data, stamp, stamp_date, attempts, "
	    "first_try FROM outbound WHERE next_try <= ? AND id > ? "
	    "ORDER BY id LIMIT ?", bind_due, &a, due_row, &d, err) != 0) {
		while (d.n > 0)
			outbound_release(&obs[--d.n]);
		*n = 0;
		return -1;
	}
	*n = d.n;
	return 0;
}

struct id_args {
	const char *sql;
	int64_t a, b;
};

static int
bind_ids(sqlite3_stmt *stmt, const void *arg)
{
	const struct id_args *a = arg;

	return sqlite3_bind_int64(stmt, 1, a->a) != SQLITE_OK ||
	    (a->b >= 0 && sqlite3_bind_int64(stmt, 2, a->b) != SQLITE_OK) ?
	    -1 : 0;
}

static int
exec_ids(sqlite3 *db, void *arg, struct smimp_err *err)
{
	const struct id_args *a = arg;
	int rc = SQLITE_ERROR;

	if (step_once(db, a->sql, bind_ids, a, &rc, err) != 0)
		return -1;
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "update");
}

struct ids_args {
	const int64_t *ids;
	size_t n;
};

static int
outbound_done_many(sqlite3 *db, void *arg, struct smimp_err *err)
{
	const struct ids_args *m = arg;
	struct id_args a = { "DELETE FROM outbound WHERE id = ?", 0, -1 };
	size_t i;

	for (i = 0; i < m->n; i++) {
		a.a = m->ids[i];
		if (exec_ids(db, &a, err) != 0)
			return -1;
	}
	return 0;
}

int
store_outbound_done_many(struct store *st, const int64_t *ids, size_t n,
    struct smimp_err *err)
{
	struct ids_args m = { ids, n };

	return n == 0 ? 0 : group_write(st, outbound_done_many, &m, err);
}

int
store_outbound_retry(struct store *st, int64_t id, int64_t next_try,
    struct smimp_err *err)
{
	struct id_args a = { "UPDATE outbound SET attempts = attempts + 1, "
	    "next_try = ?2 WHERE id = ?1", id, next_try };

	return group_write(st, exec_ids, &a, err);
}
