#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "banned.h"

/*
 * One header line (NUL-terminated, without its LF) into it: 0, or -1
 * if malformed, unknown, or given before.
 */
static int
header_line(char *line, size_t len, struct batch_item *it, uint64_t *n,
    int *have_len)
{
	static const char *const names[] = { "From", "To", "Stamp-To",
	    "Message-Id", "Stamp", "Stamp-Date", "Stamp-Device", "Work",
	    "Introduction" };
	const char **slots[] = { &it->from, &it->to, &it->all, &it->mid,
	    &it->stamp, &it->sdate, &it->stamp_device, &it->work, &it->intro };
	char *colon, *val;
	size_t i;

	if (memchr(line, '\0', len) != NULL)
		return -1;
	colon = strstr(line, ": ");
	if (colon == NULL)
		return -1;
	*colon = '\0';
	val = colon + 2;
	if (strcmp(line, "Length") == 0) {
		if (*have_len)
			return -1;
		*have_len = parse_u64(val, strlen(val), n) == 0;
		return 0;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(line, names[i]) == 0) {
			if (*slots[i] != NULL)
				return -1;
			*slots[i] = val;
			return 0;
		}
	return -1;
}

/* One item from *pos: 1 found, 0 at the end, -1 malformed. */
static int
next_item(char *buf, size_t len, size_t *pos, struct batch_item *it)
{
	char *line, *nl;
	uint64_t n = 0;
	int have_len = 0;

	memset(it, 0, sizeof(*it));
	if (*pos == len)
		return 0;
	for (;;) {
		line = buf + *pos;
		nl = memchr(line, '\n', len - *pos);
		if (nl == NULL)
			return -1;
		*nl = '\0';
		*pos = (size_t)(nl - buf) + 1;
		if (line == nl)
			break;		/* the blank line */
		if (header_line(line, (size_t)(nl - line), it, &n,
		    &have_len) != 0)
			return -1;
	}
	if (!have_len || n >= len - *pos || buf[*pos + n] != '\n')
		return -1;
	it->body = (const unsigned char *)buf + *pos;
	it->len = (size_t)n;
	*pos += (size_t)n + 1;
	return 1;
}

int
batch_parse(char *buf, size_t len, struct batch_item *items, size_t cap)
{
	size_t pos = sizeof(BATCH_MAGIC) - 1, n = 0;
	int r = 0;

	if (len < pos || memcmp(buf, BATCH_MAGIC, pos) != 0)
		return -1;
	while (n < cap && (r = next_item(buf, len, &pos, &items[n])) == 1)
		n++;
	if (r < 0 || pos != len)
		return -1;	/* malformed, or more than cap */
	return (int)n;
}

static int
optional_line(struct sbuf *sb, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return 0;
	return sbuf_addf(sb, "%s: %s\n", name, value);
}

int
batch_add(struct sbuf *sb, const struct batch_item *it)
{
	if (sb->len == 0 && sbuf_add(sb, BATCH_MAGIC,
	    sizeof(BATCH_MAGIC) - 1) != 0)
		return -1;
	if (sbuf_addf(sb, "From: %s\nTo: %s\nStamp-To: %s\nMessage-Id: %s\n"
	    "Stamp: %s\nStamp-Date: %s\nLength: %zu\n", it->from, it->to,
	    it->all, it->mid, it->stamp, it->sdate, it->len) != 0)
		return -1;
	/* The optional lines go before the blank line that ends them. */
	if (optional_line(sb, "Stamp-Device", it->stamp_device) != 0 ||
	    optional_line(sb, "Work", it->work) != 0 ||
	    optional_line(sb, "Introduction", it->intro) != 0 ||
	    sbuf_add(sb, "\n", 1) != 0 || sbuf_add(sb, it->body, it->len) != 0 ||
	    sbuf_add(sb, "\n", 1) != 0)
		return -1;
	return 0;
}

/* ---- reading a batch from a file, in constant memory ---- */

static int
reader_fill(struct batch_reader *br)
{
	ssize_t n;

	if (br->pos < br->len)
		return 1;
	if (br->mem != NULL) {
		n = (ssize_t)(br->mem_len - br->mem_pos < sizeof(br->buf) ?
		    br->mem_len - br->mem_pos : sizeof(br->buf));
		memcpy(br->buf, br->mem + br->mem_pos, (size_t)n);
		br->mem_pos += (size_t)n;
	} else {
		do
			n = read(br->fd, br->buf, sizeof(br->buf));
		while (n < 0 && errno == EINTR);
	}
	if (n < 0)
		return -1;
	br->pos = 0;
	br->len = (size_t)n;
	return n > 0;
}

/* The next line, LF cut, into br->head at *off: its length, or -1. */
static int
reader_line(struct batch_reader *br, size_t *off, size_t *len)
{
	size_t start = *off;
	int r;

	for (;;) {
		if ((r = reader_fill(br)) <= 0)
			return -1;
		if (br->buf[br->pos] == '\n') {
			br->pos++;
			br->head[*off] = '\0';
			*len = *off - start;
			(*off)++;
			return 0;
		}
		if (*off + 1 >= sizeof(br->head))
			return -1;
		br->head[(*off)++] = br->buf[br->pos++];
	}
}

/* The magic line first. */
static int
reader_magic(struct batch_reader *br)
{
	size_t off = 0, len;

	if (reader_line(br, &off, &len) != 0 ||
	    len != sizeof(BATCH_MAGIC) - 2 ||
	    memcmp(br->head, BATCH_MAGIC, len) != 0)
		return -1;
	return 0;
}

int
batch_reader_start_mem(struct batch_reader *br, const void *data,
    size_t len)
{
	memset(br, 0, sizeof(*br));
	br->fd = -1;
	br->mem = data;
	br->mem_len = len;
	return reader_magic(br);
}

int
batch_reader_start(struct batch_reader *br, int fd)
{
	memset(br, 0, sizeof(*br));
	br->fd = fd;
	return reader_magic(br);
}

int
batch_reader_next(struct batch_reader *br, struct batch_item *it,
    uint64_t *body_len)
{
	size_t off = 0, len, line;
	int have_len = 0, r;

	memset(it, 0, sizeof(*it));
	if ((r = reader_fill(br)) <= 0)
		return r;	/* 0: the end, after a whole item */
	for (;;) {
		line = off;
		if (reader_line(br, &off, &len) != 0)
			return -1;
		if (len == 0)
			break;
		if (header_line(br->head + line, len, it, body_len,
		    &have_len) != 0)
			return -1;
	}
	return have_len ? 1 : -1;
}

int
batch_reader_body(struct batch_reader *br, uint64_t len,
    int (*fn)(const void *data, size_t len, void *arg), void *arg)
{
	size_t n;

	while (len > 0) {
		if (reader_fill(br) <= 0)
			return -1;
		n = br->len - br->pos;
		if (n > len)
			n = (size_t)len;
		if (fn(br->buf + br->pos, n, arg) != 0)
			return -1;
		br->pos += n;
		len -= n;
	}
	if (reader_fill(br) <= 0 || br->buf[br->pos] != '\n')
		return -1;
	br->pos++;
	return 0;
}
