/*
 * clockshift.so - a wrong clock, for the suites: loaded with
 * LD_PRELOAD, it moves what time(2), gettimeofday(2) and
 * clock_gettime(2) of CLOCK_REALTIME say by CLOCKSHIFT_SECONDS (signed;
 * unset or 0: no change), as a machine whose clock is off would.  The
 * monotonic clocks stay as they are.
 *
 * Built on its own (no sanitizer: it only stands between the program
 * and the C library), by the Makefile, into BUILD/t/clockshift.so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);

static time_t
shift(void)
{
	const char *v = getenv("CLOCKSHIFT_SECONDS");

	return v != NULL ? (time_t)strtoll(v, NULL, 10) : 0;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int r;

	if (real_clock_gettime == NULL)
		real_clock_gettime = (int (*)(clockid_t, struct timespec *))
		    dlsym(RTLD_NEXT, "clock_gettime");
	r = real_clock_gettime(id, ts);
	if (r == 0 && (id == CLOCK_REALTIME ||
	    id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += shift();
	return r;
}

time_t
time(time_t *t)
{
	struct timespec ts;
	time_t now;

	now = clock_gettime(CLOCK_REALTIME, &ts) == 0 ? ts.tv_sec : -1;
	if (t != NULL)
		*t = now;
	return now;
}

int
gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}
