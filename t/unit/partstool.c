/*
 * partstool - the library's API for messages with parts (lib/parts.h)
 * driven as the commands that turn mail into messages and back will
 * drive it, for t/0510-attachments.bats.
 *
 *	partstool seal KEY PUB RCPT [NAME=FILE[=TYPE] | +FILE | ~FILE]...
 *	    < BODY > MESSAGE
 *		seal BODY from the identity KEY (log PUB) to the .pub
 *		RCPT with each FILE opened and handed over as a
 *		descriptor named NAME (parts_add_fd): a pipe, such as
 *		the /dev/fd/N of a process substitution, is spooled
 *		first; TYPE, or the one its name suggests.  +FILE and
 *		~FILE make FILE a byte longer or shorter there, after
 *		it was added and before it is sealed
 *	partstool open KEY < MESSAGE
 *		open it (parts_open, spooled in TMPDIR) and, once it
 *		verified, hand the body and each attachment to callbacks
 *		(parts_each): a line each, "body TYPE SIZE SHA256" or
 *		"part NAME TYPE SIZE SHA256", then "largest chunk N";
 *		nothing but an error when it does not verify
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "message.h"
#include "outfile.h"
#include "parts.h"

#include "sealpair.h"

static int
fail(const char *what, const struct smimp_err *err)
{
	fprintf(stderr, "partstool: %s%s%s\n", what, err != NULL ? ": " : "",
	    err != NULL ? err->msg : "");
	return err != NULL && err->code != 0 ? err->code : 1;
}

/* FILE one byte longer (+) or shorter (~). */
static int
change_size(const char *arg, struct smimp_err *err)
{
	struct stat st;
	int fd = open(arg + 1, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0 || (arg[0] == '+' ?
	    write(fd, "x", 1) != 1 : ftruncate(fd, st.st_size - 1) != 0)) {
		if (fd >= 0)
			close(fd);
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot change '%s'",
		    arg + 1);
	}
	close(fd);
	return 0;
}

/* NAME=FILE[=TYPE]: FILE opened, handed to the list with its name. */
static int
add_arg(struct parts_list *l, char *arg, struct smimp_err *err)
{
	char *file = strchr(arg, '='), *type;
	int fd;

	if (arg[0] == '+' || arg[0] == '~')
		return change_size(arg, err);
	if (file == NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "not NAME=FILE");
	*file++ = '\0';
	type = strchr(file, '=');
	if (type != NULL)
		*type++ = '\0';
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    file);
	return parts_add_fd(l, fd, arg, type, err);
}

static int
seal(char **argv, int argc)
{
	static struct parts_list parts;
	static struct sealpair sp;
	struct smimp_err err;
	int i, ret;

	memset(&err, 0, sizeof(err));
	parts_list_init(&parts);
	if (sealpair_load(&sp, argv[0], argv[1], argv[2], &err) != 0)
		return fail("cannot load the identities", &err);
	for (i = 3; i < argc; i++)
		if (add_arg(&parts, argv[i], &err) != 0)
			return fail("cannot add a part", &err);
	sp.p.parts = parts.p;
	sp.p.nparts = parts.n;
	ret = message_seal(&sp.p, STDIN_FILENO, STDOUT_FILENO, NULL, 0, &err);
	parts_list_release(&parts);
	sealpair_release(&sp);
	return ret != 0 ? fail("cannot seal", &err) : 0;
}

/* What a reader callback sees of one part: its line when it ends. */
struct seen {
	crypto_hash_sha256_state h;
	char head[PART_NAME_MAX + PART_TYPE_MAX + 16];
	unsigned long long size;
	size_t largest;
};

static int
on_begin(void *arg, const struct msg_part *part, struct smimp_err *err)
{
	struct seen *s = arg;

	(void)err;
	crypto_hash_sha256_init(&s->h);
	s->size = 0;
	if (part == NULL)
		(void)snprintf(s->head, sizeof(s->head), "body");
	else
		(void)snprintf(s->head, sizeof(s->head), "part %s %s",
		    part->name, part->type);
	return 0;
}

static int
on_data(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	struct seen *s = arg;

	(void)err;
	crypto_hash_sha256_update(&s->h, buf, len);
	s->size += len;
	if (len > s->largest)
		s->largest = len;
	return 0;
}

static int
on_end(void *arg, struct smimp_err *err)
{
	struct seen *s = arg;
	unsigned char sum[32];
	char hex[65];

	(void)err;
	crypto_hash_sha256_final(&s->h, sum);
	sodium_bin2hex(hex, sizeof(hex), sum, sizeof(sum));
	printf("%s %llu %s\n", s->head, s->size, hex);
	return 0;
}

static int
open_msg(const char *key)
{
	struct passphrase_source src = { NULL, 0 };
	struct parts_spool sp;
	struct msg_meta meta;
	struct secret_key sk;
	struct smimp_err err;
	struct seen seen;
	struct parts_reader r = { on_begin, on_data, on_end, &seen };
	int body, ret;

	memset(&err, 0, sizeof(err));
	memset(&seen, 0, sizeof(seen));
	if (secret_key_load(&sk, key, &src, &err) != 0)
		return fail("cannot load the key", &err);
	body = spool_open(&err);
	if (body < 0)
		return fail("cannot spool", &err);
	parts_spool_init(&sp, -1, body, 1);
	ret = parts_open(&sk, NULL, STDIN_FILENO, -1, NULL, &sp, &meta, &err);
	if (ret == 0) {
		printf("type %s\n", meta.content_type);
		ret = parts_each(&sp, &meta, &r, &err);
		printf("largest chunk %zu\n", seen.largest);
		msg_meta_release(&meta);
	}
	parts_spool_release(&sp);
	close(body);
	secret_key_release(&sk);
	return ret != 0 ? fail("cannot open", &err) : 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc >= 5 && strcmp(argv[1], "seal") == 0)
		return seal(argv + 2, argc - 2);
	if (argc == 3 && strcmp(argv[1], "open") == 0)
		return open_msg(argv[2]);
	fprintf(stderr, "usage: partstool seal KEY PUB RCPT "
	    "[NAME=FILE[=TYPE] | +FILE | ~FILE]... < BODY\n"
	    "       partstool open KEY < MESSAGE\n");
	return 2;
}
