/*
 * store_sqlite.c - the embedded store: SQLite in WAL mode with
 * synchronous=FULL, so that a commit is on disk when it returns.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "exitcode.h"
#include "fileio.h"
#include "store.h"
#include "banned.h"

#define BUSY_TIMEOUT_MS	5000

struct store {
	sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS users ("
    " address TEXT PRIMARY KEY,"
    " log BLOB NOT NULL,"
    " created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE IF NOT EXISTS nonces ("
    " signer TEXT NOT NULL, nonce TEXT NOT NULL, expires INTEGER NOT NULL,"
    " PRIMARY KEY (signer, nonce));"
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
    " UNIQUE (domain, sender, message_id));";

static int
db_fail(struct store *st, struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: %s: %s", what,
	    sqlite3_errmsg(st->db));
}

struct store *
store_open(const char *datadir, struct smimp_err *err)
{
	struct store *st;
	char path[PATH_MAX];

	if (mkdir_p(datadir, 0700, err) != 0)
		return NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/smimpd.db", datadir) >=
	    sizeof(path)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "data directory path too "
		    "long");
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot open the store "
		    "'%s': %s", path, st->db != NULL ?
		    sqlite3_errmsg(st->db) : "out of memory");
		store_close(st);
		return NULL;
	}
	return st;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->db != NULL)
		(void)sqlite3_close(st->db);
	free(st);
}

static sqlite3_stmt *
prepare(struct store *st, const char *sql, struct smimp_err *err)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_fail(st, err, "prepare");
		return NULL;
	}
	return stmt;
}

int
store_user_add(struct store *st, const char *address,
    const unsigned char *log, size_t log_len, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = prepare(st, "INSERT INTO users (address, log) VALUES (?, ?)",
	    err);
	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_blob(stmt, 2, log, (int)log_len,
	    SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_CONSTRAINT)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s already has an "
		    "account", address);
	if (rc != SQLITE_DONE)
		return db_fail(st, err, "insert");
	return 0;
}

/*
 * The one blob a query selects, bound to text (and an id unless id < 0):
 * 1 found (malloc'd into *data), 0 not found, -1 error.
 */
static int
select_blob(struct store *st, const char *sql, const char *text, int64_t id,
    unsigned char **data, size_t *len, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc, ret = -1;

	stmt = prepare(st, sql, err);
	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (id >= 0 && sqlite3_bind_int64(stmt, 2, id) != SQLITE_OK)) {
		db_fail(st, err, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(st, err, "select");
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
	return ret;
}

int
store_user_get(struct store *st, const char *address, unsigned char **log,
    size_t *log_len, struct smimp_err *err)
{
	return select_blob(st, "SELECT log FROM users WHERE address = ?",
	    address, -1, log, log_len, err);
}

int
store_user_del(struct store *st, const char *address, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = prepare(st, "DELETE FROM users WHERE address = ?", err);
	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC) !=
	    SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(st, err, "delete");
	return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

int
store_user_list(struct store *st,
    int (*fn)(const char *, const unsigned char *, size_t, void *),
    void *arg, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc, ret = -1;

	stmt = prepare(st, "SELECT address, log FROM users ORDER BY address",
	    err);
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn((const char *)sqlite3_column_text(stmt, 0),
		    sqlite3_column_blob(stmt, 1),
		    (size_t)sqlite3_column_bytes(stmt, 1), arg) != 0) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "listing stopped");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(st, err, "select");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

static int
bind_text(sqlite3_stmt *stmt, int i, const char *v)
{
	return sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC) == SQLITE_OK ?
	    0 : -1;
}

int
store_nonce_claim(struct store *st, const char *signer, const char *nonce,
    int64_t expires, struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	/* Forget nonces whose window has passed, then claim this one. */
	stmt = prepare(st, "DELETE FROM nonces WHERE expires < ?", err);
	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_int64(stmt, 1, expires - 2 * 300) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_DONE) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "nonce cleanup");
	}
	sqlite3_finalize(stmt);
	stmt = prepare(st, "INSERT INTO nonces (signer, nonce, expires) "
	    "VALUES (?, ?, ?)", err);
	if (stmt == NULL)
		return -1;
	if (bind_text(stmt, 1, signer) || bind_text(stmt, 2, nonce) ||
	    sqlite3_bind_int64(stmt, 3, expires) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_CONSTRAINT)
		return 0;
	if (rc != SQLITE_DONE)
		return db_fail(st, err, "nonce");
	return 1;
}

int
store_deliver(struct store *st, const char *recipient, const char *sender,
    const char *message_id, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = prepare(st, "INSERT OR IGNORE INTO mailbox (recipient, sender, "
	    "message_id, data) VALUES (?, ?, ?, ?)", err);
	if (stmt == NULL)
		return -1;
	if (bind_text(stmt, 1, recipient) || bind_text(stmt, 2, sender) ||
	    bind_text(stmt, 3, message_id) || sqlite3_bind_blob(stmt, 4, data,
	    (int)len, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(st, err, "deliver");
	return 0;
}

int
store_mailbox_list(struct store *st, const char *owner,
    int (*fn)(const struct mailbox_entry *, void *), void *arg,
    struct smimp_err *err)
{
	struct mailbox_entry e;
	sqlite3_stmt *stmt;
	int rc, ret = -1;

	stmt = prepare(st, "SELECT id, sender, message_id, length(data), "
	    "received FROM mailbox WHERE recipient = ? ORDER BY id", err);
	if (stmt == NULL)
		return -1;
	if (bind_text(stmt, 1, owner) != 0) {
		db_fail(st, err, "bind");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(stmt, 0);
		(void)snprintf(e.sender, sizeof(e.sender), "%s",
		    (const char *)sqlite3_column_text(stmt, 1));
		(void)snprintf(e.message_id, sizeof(e.message_id), "%s",
		    (const char *)sqlite3_column_text(stmt, 2));
		e.size = (size_t)sqlite3_column_int64(stmt, 3);
		e.received = sqlite3_column_int64(stmt, 4);
		if (fn(&e, arg) != 0) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "listing stopped");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(st, err, "select");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

int
store_mailbox_get(struct store *st, const char *owner, int64_t id,
    unsigned char **data, size_t *len, struct smimp_err *err)
{
	return select_blob(st, "SELECT data FROM mailbox WHERE recipient = ? "
	    "AND id = ?", owner, id, data, len, err);
}

int
store_mailbox_ack(struct store *st, const char *owner, int64_t id,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = prepare(st, "DELETE FROM mailbox WHERE recipient = ? AND "
	    "id = ?", err);
	if (stmt == NULL)
		return -1;
	if (bind_text(stmt, 1, owner) != 0 ||
	    sqlite3_bind_int64(stmt, 2, id) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(st, err, "ack");
	return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

void
outbound_release(struct outbound *ob)
{
	free(ob->recipients);
	free(ob->all);
	free(ob->data);
	memset(ob, 0, sizeof(*ob));
}

int
store_outbound_add(struct store *st, const struct outbound *ob, int64_t now,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = prepare(st, "INSERT OR IGNORE INTO outbound (domain, sender, "
	    "recipients, all_recipients, message_id, data, stamp, stamp_date, "
	    "first_try, next_try) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (stmt == NULL)
		return -1;
	if (bind_text(stmt, 1, ob->domain) || bind_text(stmt, 2, ob->sender) ||
	    bind_text(stmt, 3, ob->recipients) || bind_text(stmt, 4, ob->all) ||
	    bind_text(stmt, 5, ob->message_id) ||
	    sqlite3_bind_blob(stmt, 6, ob->data, (int)ob->len,
	    SQLITE_STATIC) != SQLITE_OK || bind_text(stmt, 7, ob->stamp) ||
	    bind_text(stmt, 8, ob->stamp_date) ||
	    sqlite3_bind_int64(stmt, 9, now) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 10, now) != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : db_fail(st, err, "queue");
}

static char *
col_strdup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return strdup(t != NULL ? (const char *)t : "");
}

int
store_outbound_next(struct store *st, int64_t now, struct outbound *ob,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt;
	int rc, ret = -1;

	memset(ob, 0, sizeof(*ob));
	stmt = prepare(st, "SELECT id, domain, sender, recipients, "
	    "all_recipients, message_id, data, stamp, stamp_date, attempts, "
	    "first_try FROM outbound WHERE next_try <= ? ORDER BY next_try "
	    "LIMIT 1", err);
	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_int64(stmt, 1, now) != SQLITE_OK) {
		db_fail(st, err, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_fail(st, err, "select");
		goto out;
	}
	ob->id = sqlite3_column_int64(stmt, 0);
	(void)snprintf(ob->domain, sizeof(ob->domain), "%s",
	    (const char *)sqlite3_column_text(stmt, 1));
	(void)snprintf(ob->sender, sizeof(ob->sender), "%s",
	    (const char *)sqlite3_column_text(stmt, 2));
	ob->recipients = col_strdup(stmt, 3);
	ob->all = col_strdup(stmt, 4);
	(void)snprintf(ob->message_id, sizeof(ob->message_id), "%s",
	    (const char *)sqlite3_column_text(stmt, 5));
	ob->len = (size_t)sqlite3_column_bytes(stmt, 6);
	ob->data = malloc(ob->len + 1);
	(void)snprintf(ob->stamp, sizeof(ob->stamp), "%s",
	    (const char *)sqlite3_column_text(stmt, 7));
	(void)snprintf(ob->stamp_date, sizeof(ob->stamp_date), "%s",
	    (const char *)sqlite3_column_text(stmt, 8));
	ob->attempts = (unsigned int)sqlite3_column_int(stmt, 9);
	ob->first_try = sqlite3_column_int64(stmt, 10);
	if (ob->recipients == NULL || ob->all == NULL || ob->data == NULL) {
		outbound_release(ob);
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (ob->len > 0)
		memcpy(ob->data, sqlite3_column_blob(stmt, 6), ob->len);
	ret = 1;
out:
	sqlite3_finalize(stmt);
	return ret;
}

static int
exec_id(struct store *st, const char *sql, int64_t a, int64_t b,
    struct smimp_err *err)
{
	sqlite3_stmt *stmt = prepare(st, sql, err);
	int rc;

	if (stmt == NULL)
		return -1;
	if (sqlite3_bind_int64(stmt, 1, a) != SQLITE_OK ||
	    (b >= 0 && sqlite3_bind_int64(stmt, 2, b) != SQLITE_OK)) {
		sqlite3_finalize(stmt);
		return db_fail(st, err, "bind");
	}
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : db_fail(st, err, "update");
}

int
store_outbound_done(struct store *st, int64_t id, struct smimp_err *err)
{
	return exec_id(st, "DELETE FROM outbound WHERE id = ?", id, -1, err);
}

int
store_outbound_retry(struct store *st, int64_t id, int64_t next_try,
    struct smimp_err *err)
{
	return exec_id(st, "UPDATE outbound SET attempts = attempts + 1, "
	    "next_try = ?2 WHERE id = ?1", id, next_try, err);
}
