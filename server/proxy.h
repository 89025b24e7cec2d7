/*
 * proxy.h - connections through load balancers (the proxy-from
 * setting): smimpd accepts them itself and reads the PROXY protocol
 * header each begins with, so that its limits and its log see clients,
 * not the balancer.
 */
#ifndef SMIMPD_PROXY_H
#define SMIMPD_PROXY_H

#include "err.h"

struct server;

/* Take srv->listen_fd and accept on it, in a thread of its own. */
int proxy_accept_start(struct server *srv, struct smimp_err *err);
/* Stop accepting, and close the listening socket. */
void proxy_accept_stop(struct server *srv);

#endif
