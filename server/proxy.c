/*
 * proxy.c - connections through load balancers (proxy-from).
 *
 * A balancer that passes TCP on (haproxy in mode tcp, or one ending TLS
 * before a plain-http smimpd) makes every client look like the
 * balancer: the connections per address, the limits on failures and
 * the log would all count one client.  A balancer listed in proxy-from
 * begins each connection with a PROXY protocol header saying whose it
 * is (haproxy's send-proxy or send-proxy-v2); this thread accepts the
 * connections, reads that header from each listed balancer's, and hands
 * the connection to the HTTP daemon with the client's address.
 *
 * Nobody else can claim an address so: a connection from anywhere else
 * is handed over as it came, and a header it sends is a bad request.  A
 * listed balancer's connection without a valid header is closed.  The
 * balancer sends its header with its first packet; this one thread
 * waits for it at most PROXY_HEADER_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exitcode.h"
#include "http.h"
#include "proxy.h"
#include "proxyheader.h"
#include "server.h"
#include "sources.h"
#include "util.h"
#include "banned.h"

#define PROXY_HEADER_MS	1000

static pthread_t accept_thread;
static int accept_running;
static int wake[2] = { -1, -1 };

/* How many more bytes the header may need, never past its end. */
static size_t
next_want(const unsigned char *buf, size_t have)
{
	if (have == 0 || buf[0] == 'P')
		return 1;	/* version 1 ends at its CRLF */
	if (have < 16)
		return 16 - have;
	return 16 + ((size_t)buf[14] << 8 | buf[15]) - have;
}

/*
 * The header that fd begins with, read to its last byte and no
 * further (what follows is the client's): 0, or -1 when it is not
 * there whole in time or not valid.
 */
static int
read_header(int fd, struct proxy_source *src)
{
	unsigned char buf[PROXY_HEADER_MAX];
	struct pollfd p = { fd, POLLIN, 0 };
	int64_t end = time_mono_us() / 1000 + PROXY_HEADER_MS, left;
	size_t have = 0, used, want;
	ssize_t n;

	for (;;) {
		switch (proxy_header_parse(buf, have, &used, src)) {
		case PROXY_OK:
			return 0;
		case PROXY_BAD:
			return -1;
		case PROXY_MORE:
			break;
		}
		want = next_want(buf, have);
		if (want == 0 || have + want > sizeof(buf))
			return -1;
		left = end - time_mono_us() / 1000;
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		n = recv(fd, buf + have, want, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
}

/* Accept one connection and hand it over. */
static void
take_one(struct server *srv)
{
	struct sockaddr_storage ss;
	struct proxy_source src;
	char name[SOURCE_STRLEN];
	socklen_t len = sizeof(ss);
	int fd;

	fd = accept(srv->listen_fd, (struct sockaddr *)&ss, &len);
	if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		(void)close(fd);
		return;
	}
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("cannot accept a connection");
			(void)poll(NULL, 0, 100);	/* not a busy loop */
		}
		return;
	}
	if (config_is_proxy(&srv->cfg, (struct sockaddr *)&ss)) {
		if (read_header(fd, &src) != 0) {
			(void)source_name((struct sockaddr *)&ss, name);
			log_info("proxy %s: no valid PROXY header (in %d ms "
			    "at most): connection closed", name,
			    PROXY_HEADER_MS);
			(void)close(fd);
			return;
		}
		if (src.addr.ss_family != AF_UNSPEC) {
			ss = src.addr;
			len = src.addrlen;
		}
	}
	(void)http_adopt(srv, fd, (struct sockaddr *)&ss, len);
}

static void *
accept_main(void *arg)
{
	struct server *srv = arg;
	struct pollfd p[2] = {
		{ srv->listen_fd, POLLIN, 0 },
		{ wake[0], POLLIN, 0 },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno != EINTR)
				(void)poll(NULL, 0, 100);
			continue;
		}
		if (p[1].revents != 0)
			return NULL;
		if (p[0].revents != 0)
			take_one(srv);
	}
}

int
proxy_accept_start(struct server *srv, struct smimp_err *err)
{
	if (pipe(wake) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make a pipe");
	(void)fcntl(wake[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(wake[1], F_SETFD, FD_CLOEXEC);
	if (pthread_create(&accept_thread, NULL, accept_main, srv) != 0) {
		(void)close(wake[0]);
		(void)close(wake[1]);
		wake[0] = wake[1] = -1;
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot start a "
		    "thread");
	}
	accept_running = 1;
	return 0;
}

void
proxy_accept_stop(struct server *srv)
{
	if (accept_running) {
		while (write(wake[1], "x", 1) < 0 && errno == EINTR)
			continue;
		(void)pthread_join(accept_thread, NULL);
		accept_running = 0;
	}
	if (wake[0] >= 0) {
		(void)close(wake[0]);
		(void)close(wake[1]);
		wake[0] = wake[1] = -1;
	}
	if (srv->listen_fd >= 0) {
		(void)close(srv->listen_fd);
		srv->listen_fd = -1;
	}
}
