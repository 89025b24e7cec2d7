/*
 * log.c - smimpd's log: one line on stderr per call, written with one
 * write(2) so that lines from many threads never mix, a timestamp and a
 * level.  Whatever comes from outside (URLs, other servers' error
 * texts) goes through log_escape first: no control character reaches
 * the log raw.
 *
 * With a log file, the file becomes stderr (dup2): a reopen (SIGHUP,
 * after logrotate moved the file) swaps it under every writer at once,
 * each line going whole to the old file or the new.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fileio.h"
#include "http.h"
#include "server.h"
#include "banned.h"

int log_verbose;

const char *
log_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (o + 8 >= cap) {
			(void)memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			(void)snprintf(out + o, cap - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}

static void
vlog(const char *level, const char *fmt, va_list ap, const char *syserr)
{
	char line[2048], msg[1536], safe[1800], when[TIME_STRLEN];
	int n;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	time_format(time_now(), when);
	/* The message itself may carry text from outside: escape it all. */
	n = snprintf(line, sizeof(line), "%s smimpd: %s%s%s%s\n", when, level,
	    log_escape(msg, safe, sizeof(safe)), syserr != NULL ? ": " : "",
	    syserr != NULL ? syserr : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)fd_write_all(STDERR_FILENO, line, (size_t)n);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap, strerror(e));
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!LIVE(log_verbose))
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap, NULL);
	va_end(ap);
}

void
log_store(const struct smimp_err *err, const char *what, ...)
{
	char head[512];
	va_list ap;

	if (err->code == SMIMP_EXIT_TEMPFAIL)
		return;
	va_start(ap, what);
	(void)vsnprintf(head, sizeof(head), what, ap);
	va_end(ap);
	log_warnx("%s: %s", head, err->msg);
}

#define LIBRARY_PER_SEC	10	/* libmicrohttpd's lines a second, at most */

void
log_library(void *cls, const char *fmt, va_list ap)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t second;
	static unsigned long said, held;
	unsigned long gone = 0;
	int64_t now = time_mono();
	char msg[1024];
	size_t len;
	int take;

	(void)cls;
	pthread_mutex_lock(&mu);
	if (now != second) {
		gone = held;
		second = now;
		said = held = 0;
	}
	take = said < LIBRARY_PER_SEC;
	if (take)
		said++;
	else
		held++;
	pthread_mutex_unlock(&mu);
	if (gone > 0)
		log_warnx("libmicrohttpd: %lu more lines not logged", gone);
	if (!take || vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}

/* Called by the store under its own lock: calls never overlap. */
void
log_outage(void *arg, const char *why)
{
	struct server *srv = arg;

	if (why != NULL) {
		srv->outage_since = time_mono();
		log_warnx("store unavailable: %s; answering 503 until it is "
		    "back", why);
	} else {
		log_info("store available again after %lld s",
		    (long long)(time_mono() - srv->outage_since));
	}
}

void
log_request(const struct exchange *x)
{
	if (LIVE(log_verbose))
		log_info("%s %s %u from %s signer %s%s (%llu bytes in)",
		    x->method, x->target, x->status, x->source,
		    x->signer_is_server ? "server:" : "",
		    x->signer[0] != '\0' ? x->signer : "-",
		    (unsigned long long)x->received);
	else
		log_info("%s %.200s %u", x->method, x->target, x->status);
}

int
log_open(const char *path, struct smimp_err *err)
{
	struct stat sb;
	int fd;

	/* Not blocked by a FIFO: it is refused with what is not a file. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC |
	    O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open the log "
		    "'%s'", path);
	/*
	 * One that another user made (in /tmp, say) would be read by him;
	 * one of root's is the administrator's choice.
	 */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (sb.st_uid != geteuid() && sb.st_uid != 0)) {
		(void)close(fd);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the log '%s' is not "
		    "a file of this user's", path);
	}
	if (dup2(fd, STDERR_FILENO) < 0) {
		(void)close(fd);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot log to "
		    "'%s'", path);
	}
	(void)close(fd);
	return 0;
}
