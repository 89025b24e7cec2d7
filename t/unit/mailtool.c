/*
 * mailtool - an Internet message as smimp-sendmail reads it (lib/mailmsg,
 * lib/mime, lib/rfc5322), for t/1500-sendmail.bats:
 *
 *	mailtool [-t] [-i] [-d DIR] [RECIPIENT...] < MESSAGE
 *
 * prints a line "part: NAME TYPE BYTES" for each attachment as it is
 * found (written to DIR/NAME with -d), then "to: ...", "cc: ...",
 * "bcc: ..." (the addresses, comma and space between), "subject: ..."
 * (or "subject: (none)"), "in-reply-to: ..." and "thread: ..." when
 * the message answers one, then "body:" and the body as it would be
 * sealed.  With -t
 * the recipients come from the message, and a lone dot ends it unless
 * -i, as for smimp-sendmail.  A refusal: "mailtool: MESSAGE", exit 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "mailmsg.h"

static const char *dir;

static void
print_list(const char *name, const struct rfc5322_addrs *l)
{
	size_t i;

	printf("%s:", name);
	for (i = 0; i < l->n; i++)
		printf("%s %s", i > 0 ? "," : "", l->a[i]);
	printf("\n");
}

static int
attachment(void *arg, const char *name, const char *type,
    const unsigned char *data, size_t len, struct smimp_err *err)
{
	char path[4096];

	(void)arg;
	printf("part: %s %s %zu\n", name, type, len);
	if (dir == NULL)
		return 0;
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	return file_write_atomic(path, data, len, 0600, 0, err);
}

int
main(int argc, char **argv)
{
	struct mime_sink sink = { attachment, NULL };
	struct rfc5322_addrs args;
	struct mailmsg_opts o;
	struct smimp_err err;
	struct mailmsg m;
	char *raw;
	size_t len;
	int c, dots = 1, ret = 1;

	memset(&o, 0, sizeof(o));
	memset(&args, 0, sizeof(args));
	smimp_err_clear(&err);
	while ((c = getopt(argc, argv, "tid:")) != -1) {
		switch (c) {
		case 't': o.from_headers = 1; break;
		case 'i': dots = 0; break;
		case 'd': dir = optarg; break;
		default: return 2;
		}
	}
	for (; optind < argc; optind++)
		if (rfc5322_addresses(argv[optind], "argument", &args,
		    &err) != 0)
			goto fail;
	o.args = &args;
	o.sink = &sink;
	if (rfc5322_read(0, dots, MAILMSG_MAX_INPUT, &raw, &len, &err) != 0)
		goto fail;
	if (mailmsg_parse(raw, len, &o, &m, &err) == 0) {
		print_list("to", &m.to);
		print_list("cc", &m.cc);
		print_list("bcc", &m.bcc);
		printf("subject: %s\n", m.has_subject ? m.subject : "(none)");
		if (m.in_reply_to[0] != '\0')
			printf("in-reply-to: %s\nthread: %s\n", m.in_reply_to,
			    m.thread_id);
		printf("body:\n");
		if (m.body.len > 0)
			fwrite(m.body.buf, 1, m.body.len, stdout);
		ret = 0;
	}
	mailmsg_release(&m);
	free(raw);
	if (ret == 0)
		goto out;
fail:
	fprintf(stderr, "mailtool: %s\n", err.msg);
out:
	rfc5322_addrs_release(&args);
	return ret;
}
