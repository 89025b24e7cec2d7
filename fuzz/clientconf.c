/*
 * Fuzz the client config file reader (smimp-config(5)): whatever it
 * takes holds no NUL byte (which would hide the lines after it),
 * leaves each setting one bounded line in the config's own buffers,
 * never overrides what a flag said, and written back as "name value"
 * lines reads to the same settings.
 */
#include <string.h>

#include "clientconf.h"
#include "fuzz.h"

static void
line_ok(const char *v, const char *buf, size_t cap)
{
	if (v == NULL)
		return;
	if (v != buf || strlen(v) >= cap || v[0] == '\0' ||
	    strchr(v, '\n') != NULL || v[0] == ' ' || v[0] == '\t')
		abort();
}

static int
same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void
add(struct sbuf *sb, const char *name, const char *v)
{
	if (v != NULL && sbuf_addf(sb, "%s %s\n", name, v) != 0)
		abort();
}

static void
write_back(const struct clientconf *c)
{
	static struct clientconf d;
	struct smimp_err err;
	struct sbuf sb;

	sbuf_init(&sb, 1 << 16);
	add(&sb, "resolve", c->remote.resolve);
	add(&sb, "cacert", c->remote.cacert);
	add(&sb, "allow-http", c->remote.allow_http);
	add(&sb, "refresh-interval", c->refresh_interval);
	if (sbuf_add(&sb, "", 1) != 0)
		abort();
	memset(&d, 0, sizeof(d));
	if (clientconf_parse(&d, "again", sb.buf, sb.len - 1, &err) != 0 ||
	    !same(c->remote.resolve, d.remote.resolve) ||
	    !same(c->remote.cacert, d.remote.cacert) ||
	    !same(c->remote.allow_http, d.remote.allow_http) ||
	    !same(c->refresh_interval, d.refresh_interval) ||
	    c->refresh_secs != d.refresh_secs)
		abort();
	sbuf_release(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct clientconf c;
	struct smimp_err err;
	char *text, *copy;

	fuzz_init();
	if (size > 64 * 1024)
		return 0;
	text = fuzz_str(data, size);
	copy = fuzz_str(data, size);
	memset(&c, 0, sizeof(c));
	if (clientconf_parse(&c, "config", text, size, &err) == 0) {
		if (memchr(data, '\0', size) != NULL)
			abort();
		line_ok(c.remote.resolve, c.file_resolve,
		    sizeof(c.file_resolve));
		line_ok(c.remote.cacert, c.file_cacert, sizeof(c.file_cacert));
		line_ok(c.remote.allow_http, c.file_allow_http,
		    sizeof(c.file_allow_http));
		line_ok(c.refresh_interval, c.file_refresh_interval,
		    sizeof(c.file_refresh_interval));
		if (c.refresh_secs < 0 ||
		    c.refresh_secs > CLIENTCONF_REFRESH_MAX)
			abort();
		write_back(&c);
	}
	/* A flag's setting stands whatever the file says. */
	memset(&c, 0, sizeof(c));
	c.remote.resolve = "flag";
	if (clientconf_parse(&c, "config", copy, size, &err) == 0 &&
	    strcmp(c.remote.resolve, "flag") != 0)
		abort();
	free(copy);
	free(text);
	return 0;
}
