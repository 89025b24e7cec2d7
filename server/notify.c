/*
 * notify.c - systemd's notification protocol, without libsystemd: one
 * datagram of NAME=VALUE lines to the Unix socket that NOTIFY_SOCKET
 * names (a path, or "@name" in the abstract namespace).  A service
 * manager that did not ask gets nothing; one that cannot be told is no
 * reason to stop serving, so failures are ignored.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "util.h"
#include "banned.h"

void
notify_state(const char *fmt, ...)
{
	const char *where = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	char msg[512];
	size_t n;
	va_list ap;
	int fd, len;

	if (where == NULL || (where[0] != '/' && where[0] != '@'))
		return;
	n = strlen(where);
	if (n >= sizeof(sa.sun_path))
		return;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, where, n);
	if (where[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract: no NUL at the end */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0)
		return;
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	(void)sendto(fd, msg, (size_t)len, MSG_NOSIGNAL,
	    (const struct sockaddr *)&sa, (socklen_t)(offsetof(struct
	    sockaddr_un, sun_path) + n + (where[0] == '@' ? 0 : 1)));
	(void)close(fd);
}

void
notify_reloading(void)
{
	notify_state("RELOADING=1\nMONOTONIC_USEC=%lld",
	    (long long)time_mono_us());
}
