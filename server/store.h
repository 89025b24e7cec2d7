/*
 * store.h - smimpd's storage interface.  One small set of operations
 * behind which the embedded SQLite store (store_sqlite.c) sits; a
 * PostgreSQL back end implements the same.
 *
 * Every write returns only once it is on stable storage.
 */
#ifndef SMIMPD_STORE_H
#define SMIMPD_STORE_H

#include <stddef.h>

#include "err.h"

struct store;

/* Open (creating on first use) the store in the data directory. */
struct store *store_open(const char *datadir, struct smimp_err *err);
void store_close(struct store *st);

/* Accounts: an address of the server's domain and its identity log. */
int store_user_add(struct store *st, const char *address,
    const unsigned char *log, size_t log_len, struct smimp_err *err);
/* 1 found (log malloc'd into *log), 0 not found, -1 error. */
int store_user_get(struct store *st, const char *address,
    unsigned char **log, size_t *log_len, struct smimp_err *err);
/* 1 removed, 0 not found, -1 error. */
int store_user_del(struct store *st, const char *address,
    struct smimp_err *err);
/* Calls fn for each user in address order. */
int store_user_list(struct store *st,
    int (*fn)(const char *address, const unsigned char *log, size_t len,
    void *arg), void *arg, struct smimp_err *err);

#endif
