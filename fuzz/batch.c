/*
 * Fuzz the batch framing (POST /v1/deliver-batch bodies): whatever
 * parses must encode back to bytes that parse to the same items, and
 * the streaming reader the server uses must find the same items.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz.h"

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/* An optional line: absent and empty are one (neither is written). */
static int
same_opt(const char *a, const char *b)
{
	return same(a != NULL && a[0] != '\0' ? a : NULL,
	    b != NULL && b[0] != '\0' ? b : NULL);
}

static int
count(const void *d, size_t len, void *arg)
{
	(void)d;
	*(uint64_t *)arg += len;
	return 0;
}

/* Items the streaming reader finds in data, their lengths in lens. */
static int
read_all(const uint8_t *data, size_t size, uint64_t *lens, int cap)
{
	struct batch_reader *br = malloc(sizeof(*br));
	struct batch_item it;
	uint64_t len, got;
	int n = 0, r = -1;

	if (br == NULL || batch_reader_start_mem(br, data, size) != 0)
		goto out;
	while ((r = batch_reader_next(br, &it, &len)) == 1) {
		got = 0;
		if (n == cap || batch_reader_body(br, len, count, &got) != 0 ||
		    got != len) {
			r = -1;
			break;
		}
		lens[n++] = len;
	}
out:
	free(br);
	return r == 0 ? n : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct batch_item items[BATCH_MAX], again[BATCH_MAX];
	uint64_t lens[BATCH_MAX];
	struct sbuf sb;
	char *buf;
	int n, m, i;

	fuzz_init();
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	if (size > 0)
		memcpy(buf, data, size);
	n = batch_parse(buf, size, items, BATCH_MAX);
	if (n <= 0)
		goto out;
	if (read_all(data, size, lens, BATCH_MAX) != n)
		abort();
	for (i = 0; i < n; i++)
		if (lens[i] != items[i].len)
			abort();
	sbuf_init(&sb, 1 << 24);
	for (i = 0; i < n; i++) {
		/* Only complete items can be encoded. */
		if (items[i].from == NULL || items[i].to == NULL ||
		    items[i].all == NULL || items[i].mid == NULL ||
		    items[i].stamp == NULL || items[i].sdate == NULL)
			goto done;
		if (batch_add(&sb, &items[i]) != 0)
			abort();
	}
	m = batch_parse(sb.buf, sb.len, again, BATCH_MAX);
	if (m != n)
		abort();
	for (i = 0; i < n; i++)
		if (!same(items[i].from, again[i].from) ||
		    !same(items[i].mid, again[i].mid) ||
		    !same(items[i].stamp, again[i].stamp) ||
		    !same_opt(items[i].work, again[i].work) ||
		    !same_opt(items[i].intro, again[i].intro) ||
		    items[i].len != again[i].len ||
		    memcmp(items[i].body, again[i].body, items[i].len) != 0)
			abort();
done:
	sbuf_release(&sb);
out:
	free(buf);
	return 0;
}
