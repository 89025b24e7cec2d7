/*
 * clientconf.c - a client's settings for reaching servers, from its
 * flags, the environment and the config file (see clientconf.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clientconf.h"
#include "exitcode.h"
#include "fileio.h"
#include "util.h"
#include "banned.h"

/* An environment variable, unset when empty. */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

void
clientconf_from_env(struct remote_opts *o)
{
	if (o->resolve == NULL)
		o->resolve = env("SMIMP_RESOLVE");
	if (o->cacert == NULL)
		o->cacert = env("SMIMP_CACERT");
	if (o->allow_http == NULL)
		o->allow_http = env("SMIMP_ALLOW_HTTP");
}

/* One "name value" line of the config file into c's own buffers. */
static int
config_line(struct clientconf *c, const char *path, size_t lineno,
    char *line, struct smimp_err *err)
{
	char *value, *end;
	char *dst;
	const char **field;
	size_t cap;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	value = line + strcspn(line, " \t");
	if (*value != '\0')
		*value++ = '\0';
	while (*value == ' ' || *value == '\t')
		value++;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	if (strcmp(line, "resolve") == 0) {
		field = &c->remote.resolve;
		dst = c->file_resolve;
		cap = sizeof(c->file_resolve);
	} else if (strcmp(line, "cacert") == 0) {
		field = &c->remote.cacert;
		dst = c->file_cacert;
		cap = sizeof(c->file_cacert);
	} else if (strcmp(line, "allow-http") == 0) {
		field = &c->remote.allow_http;
		dst = c->file_allow_http;
		cap = sizeof(c->file_allow_http);
	} else if (strcmp(line, "refresh-interval") == 0) {
		field = &c->refresh_interval;
		dst = c->file_refresh_interval;
		cap = sizeof(c->file_refresh_interval);
	} else if (strcmp(line, "identity") == 0) {
		return 0;	/* the default identity: keys.c reads it */
	} else
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: unknown "
		    "setting '%.40s'", path, lineno, line);
	if (*value == '\0')
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: %s needs "
		    "a value", path, lineno, line);
	if (strlen(value) >= cap)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s:%zu: %s is too "
		    "long", path, lineno, line);
	if (*field != NULL && *field != dst)
		return 0;	/* a flag or the environment said otherwise */
	memcpy(dst, value, strlen(value) + 1);
	*field = dst;
	return 0;
}

/* The refresh interval, from whichever source set it, in seconds. */
static int
refresh_finish(struct clientconf *c, const char *cfg, struct smimp_err *err)
{
	c->refresh_secs = CLIENTCONF_REFRESH_DEFAULT;
	if (c->refresh_interval == NULL ||
	    duration_parse(c->refresh_interval, CLIENTCONF_REFRESH_MAX,
	    &c->refresh_secs) == 0)
		return 0;
	return smimp_err_set(err, SMIMP_EXIT_USAGE, "%s: invalid refresh "
	    "interval '%.40s': seconds, or a number with s, m, h or d, up to "
	    "366 days", c->refresh_interval == c->file_refresh_interval ?
	    cfg : "SMIMP_REFRESH_INTERVAL", c->refresh_interval);
}

int
clientconf_parse(struct clientconf *c, const char *path, char *text,
    size_t len, struct smimp_err *err)
{
	char *line, *next;
	size_t lineno = 0;
	int ret = 0;

	/* Checked again: text need not come from client_config_read. */
	if (text_nul_check(path, text, len, err) != 0)
		return -1;
	for (line = text; line != NULL && ret == 0; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		ret = config_line(c, path, lineno, line, err);
	}
	return ret != 0 ? ret : refresh_finish(c, path, err);
}

int
clientconf_load(struct clientconf *c, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned char *buf;
	size_t len;
	int r;

	clientconf_from_env(&c->remote);
	if (c->refresh_interval == NULL)
		c->refresh_interval = env("SMIMP_REFRESH_INTERVAL");
	r = client_config_read(path, sizeof(path), &buf, &len, err);
	if (r <= 0)
		return r < 0 ? -1 : refresh_finish(c, path, err);
	r = clientconf_parse(c, path, (char *)buf, len, err);
	free(buf);
	return r;
}
