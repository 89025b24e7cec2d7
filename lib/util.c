#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "util.h"
#include "banned.h"

void
sbuf_init(struct sbuf *sb, size_t max)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->max = max;
}

void
sbuf_release(struct sbuf *sb)
{
	free(sb->buf);
	sbuf_init(sb, sb->max);
}

static int
sbuf_grow(struct sbuf *sb, size_t extra)
{
	size_t need, ncap;
	char *nbuf;

	if (extra > sb->max || sb->len > sb->max - extra)
		return -1;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	ncap = sb->cap ? sb->cap : 256;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(sb->buf, ncap);
	if (nbuf == NULL)
		return -1;
	sb->buf = nbuf;
	sb->cap = ncap;
	return 0;
}

int
sbuf_add(struct sbuf *sb, const void *data, size_t len)
{
	if (sbuf_grow(sb, len) != 0)
		return -1;
	if (len > 0)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int
sbuf_addf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbuf_grow(sb, (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

int
sbuf_add_b64(struct sbuf *sb, const unsigned char *data, size_t len)
{
	size_t enc = sodium_base64_encoded_len(len,
	    sodium_base64_VARIANT_ORIGINAL);

	if (sbuf_grow(sb, enc) != 0)
		return -1;
	sodium_bin2base64(sb->buf + sb->len, enc, data, len,
	    sodium_base64_VARIANT_ORIGINAL);
	sb->len += enc - 1;
	return 0;
}

/*
 * Does s hold a byte past ASCII?  libsodium 1.0.18 reads every such
 * byte as '/' where char is signed (x86), so that "AAA\xff" decodes as
 * "AAA/": a second spelling of the same bytes, and of a signature, that
 * a signed text would not cover (a record's hash would change, its
 * signature still verify).  Refused before decoding.
 */
int
b64_has_high_byte(const char *s, size_t slen)
{
	unsigned char high = 0;
	size_t i;

	for (i = 0; i < slen; i++)
		high |= (unsigned char)s[i];
	return (high & 0x80) != 0;
}

int
b64_decode(const char *s, size_t slen, unsigned char *out, size_t cap,
    size_t *out_len)
{
	const char *end = NULL;

	if (b64_has_high_byte(s, slen))
		return -1;
	if (sodium_base642bin(out, cap, s, slen, NULL, out_len, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	if (end != s + slen)
		return -1;
	return 0;
}

int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* sodium_base642bin's loop, with b64_value for its arithmetic. */
int
b64_decode_public(const char *s, size_t slen, unsigned char *out,
    size_t cap, size_t *out_len)
{
	unsigned int acc = 0;
	size_t acc_len = 0, pos, n = 0, pad;
	int d;

	for (pos = 0; pos < slen; pos++) {
		d = b64_value(s[pos]);
		if (d < 0)
			break;
		acc = (acc << 6) + (unsigned int)d;
		acc_len += 6;
		if (acc_len >= 8) {
			acc_len -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char)(acc >> acc_len);
		}
	}
	/*
	 * Refused: a character left over, bits set past the last byte, or
	 * not exactly the "=" that complete the last group, then the end.
	 */
	if (acc_len > 4 || (acc & ((1u << acc_len) - 1)) != 0)
		return -1;
	for (pad = acc_len / 2; pad > 0; pad--, pos++)
		if (pos == slen || s[pos] != '=')
			return -1;
	if (pos != slen)
		return -1;
	*out_len = n;
	return 0;
}

int
b64_decode_exact(const char *s, size_t slen, unsigned char *out,
    size_t out_len)
{
	size_t got;

	if (b64_decode(s, slen, out, out_len, &got) != 0 || got != out_len)
		return -1;
	return 0;
}

/*
 * Dates in UTC by arithmetic (the proleptic Gregorian calendar): the C
 * library's gmtime_r and timegm would read the time zone database on
 * their first call, some 20 microseconds of every command's start.
 */

/* Days since 1970-01-01 of y-m-d (m 1 to 12). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* The y-m-d of days since 1970-01-01. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/*
 * As strftime's "%Y-%m-%dT%H:%M:%SZ" of gmtime_r: the year unpadded,
 * and 1970-01-01T00:00:00Z for a time whose text would not fit.
 */
void
time_format(int64_t t, char out[TIME_STRLEN])
{
	int64_t y, days, secs;
	int m, d, n = -1;

	/* 2^40 s is some 35,000 years: too long a year either way. */
	if (t > -((int64_t)1 << 40) && t < ((int64_t)1 << 40)) {
		days = t / 86400 - (t % 86400 < 0);
		secs = t - days * 86400;
		civil_from_days(days, &y, &m, &d);
		n = snprintf(out, TIME_STRLEN, "%lld-%02d-%02dT%02d:%02d:%02dZ",
		    (long long)y, m, d, (int)(secs / 3600),
		    (int)(secs / 60 % 60), (int)(secs % 60));
	}
	if (n < 0 || n >= TIME_STRLEN)
		(void)snprintf(out, TIME_STRLEN, "1970-01-01T00:00:00Z");
}

static int
digits(const char *s, size_t n, int *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* Days in month m (1 to 12) of year y. */
static int
month_days(int y, int m)
{
	static const int len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return len[m - 1] + (m == 2 && y % 4 == 0 && (y % 100 != 0 ||
	    y % 400 == 0));
}

/*
 * Exactly the text time_format makes, so that a time has one spelling:
 * a year of four digits from 1000, every field within its range.
 */
int
time_parse(const char *s, size_t len, int64_t *t)
{
	int y, mo, d, h, mi, se;

	if (len != TIME_STRLEN - 1 || s[4] != '-' || s[7] != '-' ||
	    s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) ||
	    digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
	    digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return -1;
	if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) ||
	    h > 23 || mi > 59 || se > 59)
		return -1;
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

int64_t
time_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
time_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t
time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
time_after_ms(clockid_t clock, int64_t ms, struct timespec *at)
{
	(void)clock_gettime(clock, at);
	at->tv_sec += (time_t)(ms / 1000);
	at->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at->tv_nsec >= 1000000000L) {
		at->tv_sec++;
		at->tv_nsec -= 1000000000L;
	}
}

int
kv_next(const char *buf, size_t len, size_t *pos, size_t max_line,
    struct kv_line *kv)
{
	size_t start = *pos, i, colon = 0;
	const char *nl;

	if (start >= len)
		return 0;
	nl = memchr(buf + start, '\n', len - start);
	if (nl == NULL || (size_t)(nl - (buf + start)) > max_line)
		return -1;
	for (i = start; buf + i < nl; i++) {
		unsigned char c = (unsigned char)buf[i];

		/* UTF-8 passes; callers check values that must be ASCII. */
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == ':' && colon == 0)
			colon = i;
	}
	if (colon == 0 || colon == start || buf + colon + 1 >= nl ||
	    buf[colon + 1] != ' ')
		return -1;
	kv->name = buf + start;
	kv->name_len = colon - start;
	kv->value = buf + colon + 2;
	kv->value_len = (size_t)(nl - (buf + colon + 2));
	kv->start = start;
	*pos = (size_t)(nl - buf) + 1;
	return 1;
}

int
kv_is(const struct kv_line *kv, const char *name)
{
	return strlen(name) == kv->name_len &&
	    memcmp(kv->name, name, kv->name_len) == 0;
}

int
kv_value_copy(const struct kv_line *kv, char *out, size_t cap)
{
	if (kv->value_len >= cap)
		return -1;
	memcpy(out, kv->value, kv->value_len);
	out[kv->value_len] = '\0';
	return 0;
}

int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
duration_parse(const char *s, int64_t max, int64_t *secs)
{
	static const struct { char suffix; uint64_t unit; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	size_t len = strlen(s), i;
	uint64_t n, unit = 1;

	for (i = 0; len > 1 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (s[len - 1] == units[i].suffix) {
			unit = units[i].unit;
			len--;
			break;
		}
	}
	if (max < 0 || parse_u64(s, len, &n) != 0 || n > (uint64_t)max / unit)
		return -1;
	*secs = (int64_t)(n * unit);
	return 0;
}

int
message_id_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= MESSAGE_ID_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "._@+=:-") == n;
}

int
printable_ascii(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0' ||
		    p[n] == ' ' || p[n] == '='))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

int
utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c;
	size_t n, k;
	uint32_t v;

	if (len == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else {
		return -1;
	}
	for (k = 1; k < n; k++) {
		if (k == len)
			return 0;
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	return (int)n;
}

int
codepoint_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int
codepoint_hidden(uint32_t cp)
{
	return codepoint_unsafe(cp) || cp == 0x2028 || cp == 0x2029 ||
	    cp == 0x200e || cp == 0x200f || cp == 0x061c || cp == 0x200b ||
	    (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) ||
	    cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	    (cp >= 0xe0000 && cp <= 0xe007f);
}

int
text_value_ok(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;
	int n;

	while (i < len) {
		n = utf8_next(u + i, len - i, &cp);
		if (n <= 0 || codepoint_unsafe(cp) || cp == 0x2028 ||
		    cp == 0x2029)
			return 0;
		i += (size_t)n;
	}
	return 1;
}

int
text_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}
