#include <string.h>

#include "batch.h"
#include "banned.h"

/* One item from *pos: 1 found, 0 at the end, -1 malformed. */
static int
next_item(char *buf, size_t len, size_t *pos, struct batch_item *it)
{
	char *line, *nl, *colon, *val;
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
		if (memchr(line, '\0', (size_t)(nl - line)) != NULL)
			return -1;
		colon = strstr(line, ": ");
		if (colon == NULL)
			return -1;
		*colon = '\0';
		val = colon + 2;
		if (strcmp(line, "From") == 0)
			it->from = val;
		else if (strcmp(line, "To") == 0)
			it->to = val;
		else if (strcmp(line, "Stamp-To") == 0)
			it->all = val;
		else if (strcmp(line, "Message-Id") == 0)
			it->mid = val;
		else if (strcmp(line, "Stamp") == 0)
			it->stamp = val;
		else if (strcmp(line, "Stamp-Date") == 0)
			it->sdate = val;
		else if (strcmp(line, "Length") == 0)
			have_len = parse_u64(val, strlen(val), &n) == 0;
		else
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

int
batch_add(struct sbuf *sb, const struct batch_item *it)
{
	if (sb->len == 0 && sbuf_add(sb, BATCH_MAGIC,
	    sizeof(BATCH_MAGIC) - 1) != 0)
		return -1;
	if (sbuf_addf(sb, "From: %s\nTo: %s\nStamp-To: %s\nMessage-Id: %s\n"
	    "Stamp: %s\nStamp-Date: %s\nLength: %zu\n\n", it->from, it->to,
	    it->all, it->mid, it->stamp, it->sdate, it->len) != 0 ||
	    sbuf_add(sb, it->body, it->len) != 0 || sbuf_add(sb, "\n", 1) != 0)
		return -1;
	return 0;
}
