/*
 * deadline.c - every connection has a deadline: from the moment it
 * opens (or its last reply went out) its next request's headers must be
 * in within header-timeout, and the whole request (headers, body and
 * reply) must be done within request-timeout.  libmicrohttpd only knows
 * an idle timeout, which a client trickling one byte at a time never
 * trips, so a thread looks at the deadlines once a second and shuts
 * down the sockets of connections past theirs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "banned.h"

struct watched {
	int fd;
	struct sockaddr_storage peer;	/* to be sure fd is still ours */
	socklen_t peer_len;
	int64_t deadline;		/* monotonic seconds; 0: none */
	int cut;
	struct watched *prev, *next;
};

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv = PTHREAD_COND_INITIALIZER;
static struct watched *watch_list;
static int watch_stop;

void
conn_watch_notify(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_ConnectionNotificationCode code)
{
	const struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct watched *w;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		w = calloc(1, sizeof(*w));
		*ctx = w;
		if (w == NULL || ci == NULL)
			return;
		w->fd = ci->connect_fd;
		w->peer_len = sizeof(w->peer);
		if (getpeername(w->fd, (struct sockaddr *)&w->peer,
		    &w->peer_len) != 0)
			w->peer_len = 0;
		w->deadline = time_mono() + LIVE(srv->cfg.header_timeout);
		pthread_mutex_lock(&watch_mu);
		w->next = watch_list;
		if (watch_list != NULL)
			watch_list->prev = w;
		watch_list = w;
		pthread_mutex_unlock(&watch_mu);
		return;
	}
	w = *ctx;
	*ctx = NULL;
	if (w == NULL)
		return;
	pthread_mutex_lock(&watch_mu);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else if (watch_list == w)
		watch_list = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&watch_mu);
	free(w);
}

static void
set_deadline(struct MHD_Connection *c, int64_t deadline)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct watched *w = ci != NULL ? ci->socket_context : NULL;

	if (w == NULL)
		return;
	pthread_mutex_lock(&watch_mu);
	w->deadline = deadline;
	pthread_mutex_unlock(&watch_mu);
}

void
conn_watch_request(struct MHD_Connection *c, int64_t deadline)
{
	set_deadline(c, deadline);
}

void
conn_watch_idle(struct MHD_Connection *c, unsigned int secs)
{
	set_deadline(c, time_mono() + secs);
}

/* Is fd still the connection w watched? */
static int
same_peer(const struct watched *w)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);

	return w->peer_len != 0 && getpeername(w->fd, (struct sockaddr *)&peer,
	    &len) == 0 && len == w->peer_len &&
	    memcmp(&peer, &w->peer, len) == 0;
}

static void *
watch_main(void *arg)
{
	struct timespec tick;
	struct watched *w;
	int64_t now;

	(void)arg;
	pthread_mutex_lock(&watch_mu);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_sec++;
		(void)pthread_cond_timedwait(&watch_cv, &watch_mu, &tick);
		now = time_mono();
		if (watch_stop) {
			pthread_mutex_unlock(&watch_mu);
			return NULL;
		}
		for (w = watch_list; w != NULL; w = w->next)
			if (!w->cut && w->deadline != 0 && now > w->deadline &&
			    same_peer(w)) {
				(void)shutdown(w->fd, SHUT_RDWR);
				w->cut = 1;
			}
	}
}

int
conn_watch_start(struct server *srv)
{
	watch_stop = 0;
	if (pthread_create(&srv->watch_thread, NULL, watch_main, srv) != 0)
		return -1;
	srv->watch_running = 1;
	return 0;
}

void
conn_watch_stop(struct server *srv)
{
	if (!srv->watch_running)
		return;
	pthread_mutex_lock(&watch_mu);
	watch_stop = 1;
	pthread_cond_signal(&watch_cv);
	pthread_mutex_unlock(&watch_mu);
	pthread_join(srv->watch_thread, NULL);
	srv->watch_running = 0;
}
