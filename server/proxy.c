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
 * balancer sends its header with its first packet; this thread waits
 * for each at most PROXY_HEADER_MS, up to PROXY_PENDING_MAX at once,
 * and reads them as they come.
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

#define PROXY_HEADER_MS		1000
#define PROXY_PENDING_MAX	64	/* balancers' headers awaited at once */

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
 * A listed balancer's connection whose header is on its way: read as
 * its bytes come, beside the others, so that one that is slow to send
 * holds up nobody else's.
 */
struct pending {
	int fd;			/* -1: a free slot */
	struct sockaddr_storage ss;
	socklen_t len;
	int64_t deadline;	/* ms, time_mono_us() / 1000 */
	size_t have;
	unsigned char buf[PROXY_HEADER_MAX];
};

static struct pending pending[PROXY_PENDING_MAX];

/*
 * Read what p's header still needs, to its last byte and no further
 * (what follows is the client's): 1 when it is whole (in *src), 0 when
 * more is to come, -1 when it is not valid or the connection ended.
 */
static int
advance(struct pending *p, struct proxy_source *src)
{
	size_t used, want;
	ssize_t n;

	for (;;) {
		switch (proxy_header_parse(p->buf, p->have, &used, src)) {
		case PROXY_OK:
			return 1;
		case PROXY_BAD:
			return -1;
		case PROXY_MORE:
			break;
		}
		want = next_want(p->buf, p->have);
		if (want == 0 || p->have + want > sizeof(p->buf))
			return -1;
		n = recv(p->fd, p->buf + p->have, want, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		p->have += (size_t)n;
	}
}

/* p given up on: closed, said, its slot free. */
static void
drop(struct pending *p)
{
	char name[SOURCE_STRLEN];

	(void)source_name((struct sockaddr *)&p->ss, name);
	log_info("proxy %s: no valid PROXY header (in %d ms at most): "
	    "connection closed", name, PROXY_HEADER_MS);
	(void)close(p->fd);
	p->fd = -1;
}

/* p's header read whole: the connection goes on as the client's. */
static void
hand_over(struct server *srv, struct pending *p,
    const struct proxy_source *src)
{
	if (src->addr.ss_family != AF_UNSPEC) {
		p->ss = src->addr;
		p->len = src->addrlen;
	}
	(void)http_adopt(srv, p->fd, (struct sockaddr *)&p->ss, p->len);
	p->fd = -1;
}

static struct pending *
free_slot(void)
{
	size_t i;

	for (i = 0; i < PROXY_PENDING_MAX; i++)
		if (pending[i].fd < 0)
			return &pending[i];
	return NULL;
}

/*
 * Accept one connection: a listed balancer's waits for its header in
 * slot, anyone else's is handed over as it came.
 */
static void
take_one(struct server *srv, struct pending *slot)
{
	struct proxy_source src;
	int fd;

	slot->len = sizeof(slot->ss);
	fd = accept(srv->listen_fd, (struct sockaddr *)&slot->ss, &slot->len);
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
	if (!config_is_proxy(&srv->cfg, (struct sockaddr *)&slot->ss)) {
		(void)http_adopt(srv, fd, (struct sockaddr *)&slot->ss,
		    slot->len);
		return;
	}
	slot->fd = fd;
	slot->have = 0;
	slot->deadline = time_mono_us() / 1000 + PROXY_HEADER_MS;
	/* Its header may have come with the connection. */
	switch (advance(slot, &src)) {
	case 1:
		hand_over(srv, slot, &src);
		break;
	case -1:
		drop(slot);
		break;
	default:
		break;
	}
}

/* The headers that came, those out of time, on each pending one. */
static void
serve_pending(struct server *srv, const struct pollfd *p, size_t np)
{
	struct proxy_source src;
	int64_t now = time_mono_us() / 1000;
	size_t i, j;
	int r;

	for (i = 0; i < np; i++) {
		if (p[i].revents == 0)
			continue;
		for (j = 0; j < PROXY_PENDING_MAX; j++)
			if (pending[j].fd == p[i].fd)
				break;
		if (j == PROXY_PENDING_MAX)
			continue;
		r = advance(&pending[j], &src);
		if (r > 0)
			hand_over(srv, &pending[j], &src);
		else if (r < 0)
			drop(&pending[j]);
	}
	for (j = 0; j < PROXY_PENDING_MAX; j++)
		if (pending[j].fd >= 0 && pending[j].deadline <= now)
			drop(&pending[j]);
}

static void *
accept_main(void *arg)
{
	struct server *srv = arg;
	struct pollfd p[2 + PROXY_PENDING_MAX];
	struct pending *slot;
	int64_t now, soonest;
	size_t i, np;
	int timeout;

	for (i = 0; i < PROXY_PENDING_MAX; i++)
		pending[i].fd = -1;
	for (;;) {
		/* With every slot taken, new ones wait in the backlog. */
		slot = free_slot();
		p[0].fd = slot != NULL ? srv->listen_fd : -1;
		p[0].events = POLLIN;
		p[1].fd = wake[0];
		p[1].events = POLLIN;
		np = 2;
		soonest = -1;
		for (i = 0; i < PROXY_PENDING_MAX; i++) {
			if (pending[i].fd < 0)
				continue;
			p[np].fd = pending[i].fd;
			p[np++].events = POLLIN;
			if (soonest < 0 || pending[i].deadline < soonest)
				soonest = pending[i].deadline;
		}
		now = time_mono_us() / 1000;
		timeout = soonest < 0 ? -1 : soonest <= now ? 0 :
		    (int)(soonest - now);
		for (i = 0; i < np; i++)
			p[i].revents = 0;
		if (poll(p, np, timeout) < 0) {
			if (errno != EINTR)
				(void)poll(NULL, 0, 100);
			continue;
		}
		if (p[1].revents != 0)
			break;
		serve_pending(srv, p + 2, np - 2);
		/* Listened to only with a slot free (which stays free). */
		if (p[0].revents != 0)
			take_one(srv, slot);
	}
	for (i = 0; i < PROXY_PENDING_MAX; i++)
		if (pending[i].fd >= 0) {
			(void)close(pending[i].fd);
			pending[i].fd = -1;
		}
	return NULL;
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
