/*
 * batch.h - the framing of POST {base}/v1/deliver-batch: several sealed
 * messages for one domain in one request body.
 *
 *	smimp-batch/1 LF
 *	then per message: header lines "Name: value" LF (From, To, Stamp-To,
 *	Message-Id, Stamp, Stamp-Date, Length, and Stamp-Device, Work and
 *	Introduction when there are any, in any order, no others), LF,
 *	Length bytes, LF.
 */
#ifndef SMIMP_BATCH_H
#define SMIMP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define BATCH_MAGIC	"smimp-batch/1\n"
#define BATCH_MAX	32		/* messages in one batch */

struct batch_item {
	const char *from, *to, *all, *mid, *stamp, *sdate;
	/* NULL (or "" to add) when none: */
	const char *stamp_device;	/* the device that stamped */
	const char *work, *intro;
	const unsigned char *body;
	size_t len;
};

/*
 * Parse a batch body in place (header lines are cut into strings; the
 * items point into buf).  Returns how many items, or -1 if the framing
 * is broken, an item lacks Length, or there are more than cap.
 */
int batch_parse(char *buf, size_t len, struct batch_item *items, size_t cap);

/* Append one item (after BATCH_MAGIC when sb is empty); -1 if it fails. */
int batch_add(struct sbuf *sb, const struct batch_item *it);

/*
 * A batch read from a file descriptor in constant memory: start checks
 * the magic line; next reads one item's header lines (its strings live
 * in the reader until the next call) and its body length: 1, 0 at the
 * end, -1 malformed; body passes the item's body to fn in pieces, then
 * checks the LF after it.
 */
/* Two recipient lists, the proofs of work and the introductions fit. */
#define BATCH_HEAD_MAX	(48 * 1024)
struct batch_reader {
	int fd;
	const char *mem;	/* or bytes in memory, instead of fd */
	size_t mem_len, mem_pos;
	size_t pos, len;
	char buf[16 * 1024];
	char head[BATCH_HEAD_MAX];
};
int batch_reader_start(struct batch_reader *br, int fd);
int batch_reader_start_mem(struct batch_reader *br, const void *data,
    size_t len);
int batch_reader_next(struct batch_reader *br, struct batch_item *it,
    uint64_t *body_len);
int batch_reader_body(struct batch_reader *br, uint64_t len,
    int (*fn)(const void *data, size_t len, void *arg), void *arg);

#endif
