/*
 * Fuzz what smimp-sendmail reads (lib/mailmsg, lib/mime, lib/rfc5322,
 * lib/mimecode): a message as it comes on standard input, with and
 * without -t; whatever parses has a body that is UTF-8, attachments
 * with names that are safe, and a subject on one line.
 */
#include <string.h>

#include "fuzz.h"
#include "mailmsg.h"
#include "mimecode.h"

static int
attachment(void *arg, const char *name, const char *type,
    const unsigned char *data, size_t len, struct smimp_err *err)
{
	(void)arg;
	(void)data;
	(void)len;
	(void)err;
	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL ||
	    strlen(name) > MIME_NAME_MAX || strlen(type) > MIME_TYPE_MAX)
		abort();
	return 0;
}

static void
one(const char *raw, size_t len, int from_headers)
{
	static const struct mime_sink sink = { attachment, NULL };
	struct rfc5322_addrs args;
	struct mailmsg_opts o;
	struct smimp_err err;
	struct mailmsg m;

	memset(&args, 0, sizeof(args));
	smimp_err_clear(&err);
	(void)rfc5322_addresses("ops@example.net", "arg", &args, &err);
	o.from_headers = from_headers;
	o.args = &args;
	o.sink = &sink;
	if (mailmsg_parse(raw, len, &o, &m, &err) == 0) {
		if (!mime_utf8_valid((unsigned char *)m.body.buf, m.body.len,
		    NULL) || strchr(m.subject, '\n') != NULL)
			abort();
	}
	mailmsg_release(&m);
	rfc5322_addrs_release(&args);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw;
	size_t len;
	int fd;
	struct smimp_err err;

	fuzz_init();
	fd = fuzz_fd(data, size);
	if (fd < 0)
		return 0;
	if (rfc5322_read(fd, size > 0 && data[0] & 1, 1 << 20, &raw, &len,
	    &err) == 0) {
		one(raw, len, 1);
		one(raw, len, 0);
		free(raw);
	}
	close(fd);
	return 0;
}
