/*
 * store_backend.h - what store.c and the back ends share, and callers
 * never see: the head of every back end's own store.
 */
#ifndef SMIMPD_STORE_BACKEND_H
#define SMIMPD_STORE_BACKEND_H

#include "store.h"

/*
 * The first member of each back end's struct, so that a struct store *
 * points at both.  store_open() sets limits after ops->open() returns
 * and before any other operation: nothing in opening depends on them.
 */
struct store {
	const struct store_ops *ops;
	struct store_limits limits;
};

#endif
