#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "exitcode.h"

/* How much of a message that does not fit is kept from its end. */
#define ERR_TAIL	100

/* Whether s[i] continues a UTF-8 sequence (a cut must not fall there). */
static int
continues(const char *s, size_t i)
{
	return ((unsigned char)s[i] & 0xc0) == 0x80;
}

/*
 * Put s (n bytes) in err->msg.  One that does not fit loses its middle,
 * not its end: the end says why ("...: No such file or directory"),
 * and the middle is most often a long path.
 */
static void
err_fit(struct smimp_err *err, const char *s, size_t n)
{
	size_t cap = sizeof(err->msg) - 1, head, tail;

	if (n <= cap) {
		memcpy(err->msg, s, n);
		err->msg[n] = '\0';
		return;
	}
	head = cap - 3 - ERR_TAIL;
	tail = n - ERR_TAIL;
	while (head > 0 && continues(s, head))
		head--;
	while (tail < n && continues(s, tail))
		tail++;
	memcpy(err->msg, s, head);
	memcpy(err->msg + head, "...", 3);
	memcpy(err->msg + head + 3, s + tail, n - tail);
	err->msg[head + 3 + n - tail] = '\0';
}

/* Format the message, with suffix (or NULL) after it, into err->msg. */
static void
err_format(struct smimp_err *err, const char *suffix, const char *fmt,
    va_list ap)
{
	char small[1024], *full = small;
	size_t slen = suffix != NULL ? strlen(suffix) : 0, len;
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0) {
		va_end(again);
		(void)snprintf(err->msg, sizeof(err->msg), "%s", fmt);
		return;
	}
	len = (size_t)n;
	if (len + slen >= sizeof(small)) {
		full = malloc(len + slen + 1);
		if (full != NULL)
			(void)vsnprintf(full, len + 1, fmt, again);
		else {
			full = small;	/* cut at the end instead */
			len = strlen(small);
			if (len + slen >= sizeof(small))
				len = sizeof(small) - 1 - slen;
		}
	}
	va_end(again);
	if (slen > 0)
		memcpy(full + len, suffix, slen);
	err_fit(err, full, len + slen);
	if (full != small)
		free(full);
}

int
smimp_err_set(struct smimp_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	err_format(err, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int
smimp_err_sys(struct smimp_err *err, int code, const char *fmt, ...)
{
	int saved = errno;
	char why[160];
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	(void)snprintf(why, sizeof(why), ": %s", strerror(saved));
	va_start(ap, fmt);
	err_format(err, why, fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

void
smimp_err_clear(struct smimp_err *err)
{
	err->code = SMIMP_EXIT_OK;
	err->msg[0] = '\0';
}
