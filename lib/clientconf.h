/*
 * clientconf.h - where a client's settings for reaching servers come
 * from, the first that says wins: its flags, the environment
 * (SMIMP_RESOLVE, SMIMP_CACERT, SMIMP_ALLOW_HTTP), then the config file
 * ($SMIMP_CONFIG, else $SMIMP_HOME/config if it exists; format:
 * smimp-config(5)).  The HTTP client (remote.h) takes the result and
 * reads no file or variable itself.
 */
#ifndef SMIMP_CLIENTCONF_H
#define SMIMP_CLIENTCONF_H

#include "err.h"
#include "remote.h"

struct clientconf {
	struct remote_opts remote;	/* for remote_new; flags set first */
	/* what the config file said, pointed to by remote's fields */
	char file_resolve[1024];
	char file_cacert[4096];
	char file_allow_http[1024];
};

/* Fill o's unset fields from SMIMP_RESOLVE, SMIMP_CACERT, SMIMP_ALLOW_HTTP. */
void clientconf_from_env(struct remote_opts *o);
/*
 * Fill c's unset fields from the environment, then from the config
 * file: lines of "resolve DOMAIN=HOST:PORT,...", "cacert FILE",
 * "allow-http DOMAIN,...", blank lines and # comments.  c must outlive
 * every remote made from c->remote.
 */
int clientconf_load(struct clientconf *c, struct smimp_err *err);

#endif
