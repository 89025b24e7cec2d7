#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "exitcode.h"
#include "stamp.h"
#include "banned.h"

#define STAMP_CONTEXT	"smimp/1 delivery-stamp"
#define STAMP_MAX	16384

static int
stamp_bytes(struct sbuf *sb, const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date)
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), hash, 32);
	return sbuf_add(sb, STAMP_CONTEXT, sizeof(STAMP_CONTEXT)) ||
	    sbuf_addf(sb, "%s\n%s\n%s\n%s\n%s", from, to, message_id, hex,
	    date) ? -1 : 0;
}

int
stamp_hash(unsigned char sh[32], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date)
{
	struct sbuf sb;
	int ret = -1;

	sbuf_init(&sb, STAMP_MAX);
	if (stamp_bytes(&sb, from, to, message_id, hash, date) == 0) {
		crypto_generichash(sh, 32, (unsigned char *)sb.buf, sb.len,
		    NULL, 0);
		ret = 0;
	}
	sbuf_release(&sb);
	return ret;
}

int
stamp_sign(char out[STAMP_STRLEN], const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char secret[64], struct smimp_err *err)
{
	unsigned char sig[64];
	struct sbuf sb;

	sbuf_init(&sb, STAMP_MAX);
	if (stamp_bytes(&sb, from, to, message_id, hash, date) != 0) {
		sbuf_release(&sb);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "stamp too long");
	}
	crypto_sign_detached(sig, NULL, (unsigned char *)sb.buf, sb.len,
	    secret);
	sbuf_release(&sb);
	sodium_bin2base64(out, STAMP_STRLEN, sig, sizeof(sig),
	    sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int
stamp_verify(const char *stamp, const char *from, const char *to,
    const char *message_id, const unsigned char hash[32], const char *date,
    const unsigned char pub[32], struct smimp_err *err)
{
	unsigned char sig[64];
	struct sbuf sb;
	int ok;

	if (b64_decode_exact(stamp, strlen(stamp), sig, 64) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed stamp");
	sbuf_init(&sb, STAMP_MAX);
	ok = stamp_bytes(&sb, from, to, message_id, hash, date) == 0 &&
	    crypto_sign_verify_detached(sig, (unsigned char *)sb.buf, sb.len,
	    pub) == 0;
	sbuf_release(&sb);
	return ok ? 0 : smimp_err_set(err, SMIMP_EXIT_BADMSG,
	    "delivery stamp does not verify");
}

int
stamp_date_check(const char *date, int64_t now, int64_t max_age,
    struct smimp_err *err)
{
	int64_t when;

	if (time_parse(date, strlen(date), &when) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed stamp "
		    "date");
	if (when > now + STAMP_SKEW || when < now - max_age)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "stamp date out "
		    "of range");
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
stamp_recipients(const char *list, char *out, size_t cap)
{
	char *copy, *p, *items[256];
	size_t n = 0, i, off = 0;

	copy = strdup(list);
	if (copy == NULL)
		return -1;
	for (p = copy; p != NULL && *p != '\0';) {
		char *comma = strchr(p, ',');

		if (comma != NULL)
			*comma = '\0';
		while (*p == ' ')
			p++;
		if (*p != '\0') {
			if (n == 256) {
				free(copy);
				return -1;
			}
			items[n++] = p;
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	qsort(items, n, sizeof(items[0]), cmp_str);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		size_t l = strlen(items[i]);

		if (off + l + 2 > cap) {
			free(copy);
			return -1;
		}
		if (i > 0)
			out[off++] = ',';
		memcpy(out + off, items[i], l + 1);
		off += l;
	}
	free(copy);
	return 0;
}
