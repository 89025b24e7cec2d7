/*
 * timecheck - lib/util.c's dates by arithmetic against the C library's
 * gmtime_r, strftime and timegm, which they replace: the same text for
 * every time (out of range ones included), and the same times accepted,
 * and refused, for every text of the shape (and mutations of it).
 * Deterministic: the cases come from a fixed generator.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "xorshift.h"

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint64_t
next(void)
{
	return xorshift_next(&state);
}

static void
ref_format(int64_t t, char out[TIME_STRLEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, TIME_STRLEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(out, TIME_STRLEN, "1970-01-01T00:00:00Z");
}

/* The former time_parse: timegm, then the text made again must match. */
static int
ref_parse(const char *s, size_t len, int64_t *t)
{
	static const int off[6] = { 0, 5, 8, 11, 14, 17 };
	char back[TIME_STRLEN];
	struct tm tm;
	int v[6], k, i;
	time_t tt;

	if (len != TIME_STRLEN - 1 || s[4] != '-' || s[7] != '-' ||
	    s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -1;
	for (k = 0; k < 6; k++)
		for (v[k] = 0, i = 0; i < (k == 0 ? 4 : 2); i++) {
			if (s[off[k] + i] < '0' || s[off[k] + i] > '9')
				return -1;
			v[k] = v[k] * 10 + (s[off[k] + i] - '0');
		}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	tt = timegm(&tm);
	if (tt == (time_t)-1)
		return -1;
	ref_format((int64_t)tt, back);
	if (memcmp(back, s, len) != 0)
		return -1;
	*t = (int64_t)tt;
	return 0;
}

static size_t passed, failed;

static void
format_case(int64_t t)
{
	char a[TIME_STRLEN], b[TIME_STRLEN];

	time_format(t, a);
	ref_format(t, b);
	if (strcmp(a, b) == 0) {
		passed++;
	} else if (failed++ < 10) {
		printf("FAIL format %lld: '%s', the C library '%s'\n",
		    (long long)t, a, b);
	}
}

static void
parse_case(const char *s)
{
	int64_t t1 = 0, t2 = 0;
	int r1 = time_parse(s, strlen(s), &t1);
	int r2 = ref_parse(s, strlen(s), &t2);

	if (r1 == r2 && (r1 != 0 || t1 == t2)) {
		passed++;
	} else if (failed++ < 10) {
		printf("FAIL parse '%s': %d %lld, the C library %d %lld\n", s,
		    r1, (long long)t1, r2, (long long)t2);
	}
}

int
main(void)
{
	static const int64_t edges[] = { 0, -1, 1, 86399, 86400, -86400,
	    -86401, 951782400, 951868800, 253402300799LL, 253402300800LL,
	    -30610224000LL, -30610224001LL, -62135596800LL, -62135596801LL,
	    -62167219200LL, -62167219201LL, (int64_t)1 << 40,
	    -((int64_t)1 << 40), ((int64_t)1 << 40) - 1, INT64_MAX, INT64_MIN,
	    INT64_MIN + 1, -100000000000LL, -1000000000000LL };
	static const char alphabet[] = "0123456789-T:Z x";
	char s[32];
	size_t i;
	int64_t t;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		format_case(edges[i]);
	for (i = 0; i < 200000; i++) {
		t = (int64_t)next();
		format_case(t >> (next() % 64));
		/* Years 1000 to 9999, where every parsed time lies. */
		format_case((int64_t)(next() % 284012524800ULL) -
		    30610224000LL);
	}
	for (i = 0; i < 200000; i++) {
		int y = (int)(next() % 10000), mo = (int)(next() % 14);
		int d = (int)(next() % 33), h = (int)(next() % 26);
		int mi = (int)(next() % 62), se = (int)(next() % 62);

		if (i % 3 == 0) {
			y = 1000 + (int)(next() % 9000);
			mo = 1 + (int)(next() % 12);
			d = 1 + (int)(next() % 31);
		}
		(void)snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    y, mo, d, h, mi, se);
		if (i % 7 == 0)
			s[next() % 20] = alphabet[next() % 16];
		parse_case(s);
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed != 0;
}
