/*
 * clientconf.h - where a client's settings for reaching servers come
 * from, the first that says wins: its flags, the environment
 * (SMIMP_RESOLVE, SMIMP_CACERT, SMIMP_ALLOW_HTTP,
 * SMIMP_REFRESH_INTERVAL), then the config file ($SMIMP_CONFIG, else
 * $SMIMP_HOME/config if it exists; format: smimp-config(5)).  The HTTP
 * client (remote.h) takes the result and reads no file or variable
 * itself.
 */
#ifndef SMIMP_CLIENTCONF_H
#define SMIMP_CLIENTCONF_H

#include <stdint.h>

#include "err.h"
#include "remote.h"

/* How long a pinned identity's check against its directory holds. */
#define CLIENTCONF_REFRESH_DEFAULT	(24 * 3600)	/* seconds */
#define CLIENTCONF_REFRESH_MAX		(366 * 24 * 3600)

struct clientconf {
	struct remote_opts remote;	/* for remote_new; flags set first */
	/*
	 * How long since a pinned recipient was last checked against its
	 * directory before smimp-seal checks it again: the setting as
	 * given (seconds, or a number with s, m, h or d), and in seconds
	 * once loaded (CLIENTCONF_REFRESH_DEFAULT when unset).
	 */
	const char *refresh_interval;
	int64_t refresh_secs;
	/* what the config file said, pointed to by the fields above */
	char file_resolve[1024];
	char file_cacert[4096];
	char file_allow_http[1024];
	char file_refresh_interval[32];
};

/* Fill o's unset fields from SMIMP_RESOLVE, SMIMP_CACERT, SMIMP_ALLOW_HTTP. */
void clientconf_from_env(struct remote_opts *o);
/*
 * Fill c's unset fields from the environment, then from the config
 * file: lines of "resolve DOMAIN=HOST:PORT,...", "cacert FILE",
 * "allow-http DOMAIN,...", "refresh-interval DURATION", blank lines and
 * # comments.  c must outlive every remote made from c->remote.  A
 * duration that does not parse fails with SMIMP_EXIT_USAGE.
 */
int clientconf_load(struct clientconf *c, struct smimp_err *err);
/*
 * The config file's text (len bytes and a NUL after them, cut into
 * lines in place) into c, as clientconf_load reads it; path names the
 * file in errors.  A NUL byte in it fails (SMIMP_EXIT_USAGE).  The
 * settings point into c's own buffers, not into text.
 */
int clientconf_parse(struct clientconf *c, const char *path, char *text,
    size_t len, struct smimp_err *err);

#endif
