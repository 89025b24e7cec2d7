/*
 * carry.c - the consent headers a message carries (see carry.h).
 */
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "carry.h"
#include "util.h"
#include "work.h"
#include "banned.h"

int
carry_introduction_ok(const char *v)
{
	size_t n = strlen(v), i;
	int item = 0;

	if (n == 0 || n > INTRO_LIST_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = v[i];

		if (c == ',') {
			if (item == 0)
				return 0;
			item = 0;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_') {
			item++;
		} else
			return 0;
	}
	return item > 0;
}

/*
 * The list made in sb, NUL-ended, into *out (malloc'd; left NULL when
 * the list is empty): 0, or -1 when memory runs out.
 */
static int
list_out(struct sbuf *sb, char **out)
{
	if (sb->len == 0)
		return 0;
	if (sbuf_add(sb, "", 1) != 0) {
		sbuf_release(sb);
		return -1;
	}
	*out = sb->buf;
	return 0;
}

int
carry_introduction_for_domain(const char *v, const char *domain,
    char **out)
{
	struct introduction in;
	struct smimp_err err;
	size_t len = strlen(v), pos = 0, start, n;
	struct sbuf sb;
	int r;

	*out = NULL;
	sbuf_init(&sb, INTRO_LIST_MAX + 1);
	for (;;) {
		start = pos;
		r = introduction_next(v, len, &pos, &in, &err);
		if (r == 0 || pos == start)
			break;
		/* The item's own bytes, without the comma after it. */
		n = pos - start - (v[pos - 1] == ',');
		if (r < 0 || strcmp(address_domain(in.to), domain) != 0)
			continue;
		if (sbuf_addf(&sb, "%s%.*s", sb.len > 0 ? "," : "", (int)n,
		    v + start) != 0) {
			sbuf_release(&sb);
			return -1;
		}
	}
	return list_out(&sb, out);
}

struct rcpt_list {
	const char (*rcpts)[ADDRESS_MAX + 1];
	size_t n;
};

static int
is_rcpt(const char *address, void *arg)
{
	const struct rcpt_list *l = arg;

	return address_listed(l->rcpts, l->n, address);
}

int
carry_work_ok(const char *v, const char (*rcpts)[ADDRESS_MAX + 1],
    size_t n)
{
	struct rcpt_list l = { rcpts, n };

	return work_header_check(v, is_rcpt, &l) == 0;
}

static int
in_list(const char *address, void *arg)
{
	return list_has(arg, address);
}

int
carry_work_ok_in(const char *v, const char *list)
{
	return work_header_check(v, in_list, (void *)list) == 0;
}

int
carry_work_for_domain(const char *v, const char *domain, char **out)
{
	char addr[ADDRESS_MAX + 1];
	unsigned char nonce[WORK_NONCE_LEN];
	const char *pos = v;
	struct sbuf sb;

	*out = NULL;
	sbuf_init(&sb, WORK_HEADER_MAX + 1);
	while (work_header_next(&pos, addr, nonce) == 1) {
		if (strcmp(address_domain(addr), domain) != 0)
			continue;
		if (work_header_add(&sb, addr, nonce) != 0) {
			sbuf_release(&sb);
			return -1;
		}
	}
	return list_out(&sb, out);
}

unsigned int
carry_work_bits(const char *v, const unsigned char sh[32],
    const char *recipient)
{
	unsigned char nonce[WORK_NONCE_LEN];
	struct work_prefix p;

	if (v == NULL || work_header_find(v, recipient, nonce) != 1)
		return 0;
	work_prefix_init(&p, sh, recipient);
	return work_value(&p, nonce);
}
