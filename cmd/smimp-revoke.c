/*
 * smimp-revoke - take a key back.  Email cannot: a stolen key or
 * password keeps speaking for its owner.  Here the owner extends the
 * identity log that everyone checks: --rotate hands over to a new
 * identity key (and encryption key), --encryption replaces the
 * encryption key alone, --reason revokes the identity for good, and
 * --recover, signed by the recovery key when the identity key is lost
 * or stolen, installs a new identity key and cuts back whatever a thief
 * appended.  The key file and the log beside it are replaced once the
 * home server has the new record (or, with --no-publish, at once, for
 * delivery by hand).  --notify tells every trusted and known contact,
 * with a signed notice that carries the new log.  --add-device signs a
 * new device into the log from its enrollment request, once the person
 * at the keyboard has compared the request's code with the one the
 * device shows; --remove-device takes a lost or retired device out.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "fileio.h"
#include "idlog.h"
#include "revoke.h"
#include "cmd.h"
#include "banned.h"

struct revoke_opts {
	const char *identity;
	const char *passphrase_file;
	const char *reason;
	const char *write;
	const char *recover, *address, *prefix;
	const char *add_device, *remove_device, *scope, *code;
	size_t keep;
	int rotate, encryption, no_publish, notify, json;
	struct clientconf conf;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-revoke [-i IDENTITY] --rotate | --encryption | "
	    "--reason TEXT\n"
	    "       smimp-revoke [-i IDENTITY] --add-device FILE.request "
	    "[--scope full|send|receive]\n"
	    "                    [--code CODE]\n"
	    "       smimp-revoke [-i IDENTITY] --remove-device NAME\n"
	    "       smimp-revoke --recover FILE.recovery [-u ADDRESS] "
	    "[-o PREFIX] [--keep N]\n"
	    "                    [--notify | --no-publish] [-w FILE] [--json] "
	    "[--passphrase-file FILE]\n"
	    "                    [--resolve DOMAIN=HOST:PORT] [--cacert FILE] "
	    "[--allow-http DOMAIN]\n");
}

static int
parse_args(int argc, char **argv, struct revoke_opts *o)
{
	enum { OPT_ROTATE = 256, OPT_ENCRYPTION, OPT_REASON, OPT_NO_PUBLISH,
		OPT_NOTIFY, OPT_JSON, OPT_PASSFILE, OPT_VERSION, OPT_RECOVER,
		OPT_KEEP, OPT_ADD_DEVICE, OPT_REMOVE_DEVICE, OPT_SCOPE,
		OPT_CODE };
	static const struct option longopts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "rotate", no_argument, NULL, OPT_ROTATE },
		{ "encryption", no_argument, NULL, OPT_ENCRYPTION },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "recover", required_argument, NULL, OPT_RECOVER },
		{ "user", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "add-device", required_argument, NULL, OPT_ADD_DEVICE },
		{ "remove-device", required_argument, NULL, OPT_REMOVE_DEVICE },
		{ "scope", required_argument, NULL, OPT_SCOPE },
		{ "code", required_argument, NULL, OPT_CODE },
		{ "no-publish", no_argument, NULL, OPT_NO_PUBLISH },
		{ "notify", no_argument, NULL, OPT_NOTIFY },
		{ "write", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		REMOTE_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "i:w:u:o:h";
	enum iddev_scope scope;
	uint64_t n;
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, shortopts, longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'i': o->identity = optarg; break;
		case 'u': o->address = optarg; break;
		case 'o': o->prefix = optarg; break;
		case OPT_RECOVER: o->recover = optarg; break;
		case OPT_ADD_DEVICE: o->add_device = optarg; break;
		case OPT_REMOVE_DEVICE: o->remove_device = optarg; break;
		case OPT_SCOPE: o->scope = optarg; break;
		case OPT_CODE: o->code = optarg; break;
		case OPT_KEEP:
			if (parse_u64(optarg, strlen(optarg), &n) != 0 ||
			    n == 0 || n > IDLOG_MAX_RECORDS)
				return usage_error("--keep needs a number of "
				    "records from 1 to %d", IDLOG_MAX_RECORDS);
			o->keep = (size_t)n;
			break;
		case 'w': o->write = optarg; break;
		case OPT_ROTATE: o->rotate = 1; break;
		case OPT_ENCRYPTION: o->encryption = 1; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_NO_PUBLISH: o->no_publish = 1; break;
		case OPT_NOTIFY: o->notify = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->rotate + o->encryption + (o->reason != NULL) +
	    (o->recover != NULL) + (o->add_device != NULL) +
	    (o->remove_device != NULL) != 1)
		return usage_error("one of --rotate, --encryption, --reason, "
		    "--recover, --add-device and --remove-device is needed");
	if (o->add_device == NULL && (o->scope != NULL || o->code != NULL))
		return usage_error("--scope and --code go with --add-device");
	if (o->scope != NULL && iddev_scope_parse(o->scope, &scope) != 0)
		return usage_error("--scope is full, send or receive, not '%s'",
		    o->scope);
	if (o->remove_device != NULL && !iddev_name_valid(o->remove_device))
		return usage_error("'%s' is no device name: 1 to %d characters "
		    "of a-z, 0-9 and '-', not starting with '-'",
		    o->remove_device, IDDEV_NAME_MAX);
	if (o->recover == NULL && (o->address != NULL || o->prefix != NULL ||
	    o->keep != 0))
		return usage_error("-u, -o and --keep go with --recover");
	if (o->recover != NULL && o->identity != NULL)
		return usage_error("--recover makes a new key: name it with -o "
		    "PREFIX, not -i");
	if (o->write != NULL && o->write[0] == '\0')
		return usage_error("-w names a file (- for standard output): "
		    "not an empty name");
	if (o->json && o->write != NULL && strcmp(o->write, "-") == 0)
		return usage_error("--json and -w - both write to standard "
		    "output");
	if (o->reason != NULL && !idlog_reason_valid(o->reason))
		return usage_error("the reason must be 1 to %d characters of "
		    "printable ASCII", IDREC_REASON_MAX);
	if (o->notify && o->no_publish)
		return usage_error("--notify and --no-publish exclude each "
		    "other: notices go through the home server, which must "
		    "know the change first");
	if (o->no_publish)
		return 0;
	return remote_options_finish(&o->conf);
}

/*
 * "notified" and "notify_failed": the contacts told, each with its
 * notice's message id, and those not, each with the reason.
 */
static int
notices_json(json_t *j, const struct revoke_result *res)
{
	const struct notice_report *rep = &res->notices;
	json_t *sent = json_array(), *failed = json_array();
	size_t i;

	if (json_object_set_new(j, "notified", sent) != 0 ||
	    json_object_set_new(j, "notify_failed", failed) != 0)
		return -1;
	for (i = 0; i < rep->n; i++)
		if (json_array_append_new(rep->to[i].code == 0 ? sent : failed,
		    json_pack("{s:s,s:o}", "address", rep->to[i].address,
		    rep->to[i].code == 0 ? "message_id" : "error",
		    json_text(rep->to[i].code == 0 ? rep->to[i].message_id :
		    rep->to[i].error))) != 0)
			return -1;
	return 0;
}

/* The record type that the change wrote. */
static const char *
change_name(const struct revoke_opts *o)
{
	return o->rotate ? "rotate" : o->encryption ? "encryption-key" :
	    o->recover != NULL ? "recover" : o->add_device != NULL ?
	    "device-add" : o->remove_device != NULL ? "device-remove" :
	    "revoke";
}

/* What happened, as one JSON object. */
static void
say_json(const struct revoke_opts *o, const struct revoke_result *res)
{
	json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:s,s:b,s:b,s:s}", "address",
	    res->address, "change", change_name(o), "records",
	    (json_int_t)res->records, "voided", (json_int_t)res->voided,
	    "log", res->pub_path, "key_replaced", res->key_replaced,
	    "published", res->published, "domain",
	    address_domain(res->address));

	if (j != NULL && res->device[0] != '\0' && json_object_set_new(j,
	    "device", json_string(res->device)) != 0) {
		json_decref(j);
		j = NULL;
	}
	if (j != NULL && o->add_device != NULL && json_object_set_new(j,
	    "scope", json_string(o->scope != NULL ? o->scope : "full")) != 0) {
		json_decref(j);
		j = NULL;
	}
	if (j != NULL && o->notify && notices_json(j, res) != 0) {
		json_decref(j);
		j = NULL;
	}
	print_json(j);
}

/* What happened, in one line. */
static void
say_done(const struct revoke_opts *o, const struct revoke_result *res)
{
	FILE *f = o->write != NULL && strcmp(o->write, "-") == 0 ? stderr :
	    stdout;
	const char *what = o->rotate ? "identity key rotated, with a new "
	    "encryption key" : o->encryption ? "new encryption key" :
	    o->recover != NULL ? "recovered, with new identity and encryption "
	    "keys" : o->add_device != NULL ? "added, scope " :
	    o->remove_device != NULL ? "removed" : "identity revoked";

	if (res->device[0] != '\0')
		fprintf(f, "%s: device %s ", res->address, res->device);
	else
		fprintf(f, "%s: ", res->address);
	fprintf(f, "%s%s (%zu records in '%s'", what, o->add_device != NULL ?
	    (o->scope != NULL ? o->scope : "full") : "", res->records,
	    res->pub_path);
	if (res->voided > 0)
		fprintf(f, "; the %zu record%s after record %zu cut back, void",
		    res->voided, res->voided == 1 ? "" : "s",
		    res->records - 2);
	fprintf(f, ")");
	if (res->published)
		fprintf(f, ", published to %s\n",
		    address_domain(res->address));
	else
		fprintf(f, ", not published: give '%s' to the administrator of "
		    "%s\n", o->write != NULL && strcmp(o->write, "-") != 0 ?
		    o->write : res->pub_path, address_domain(res->address));
}

/*
 * A recovery that brought back devices whose removal it cut back: one
 * line on stderr, since a device is removed when it is lost or stolen.
 */
static void
say_relived(const struct revoke_result *res)
{
	if (res->relived == 0)
		return;
	warnx_("warning: the recovery cut back the removal of the device %s"
	    "%s: %s live again; remove %s anew (--remove-device) if %s key "
	    "may have been stolen", res->relived_name, res->relived > 1 ?
	    " and others" : "", res->relived > 1 ? "they are" : "it is",
	    res->relived > 1 ? "them" : "it", res->relived > 1 ? "a" : "its");
}

/*
 * The contacts told, beside the line of say_done; one line on stderr
 * for each that was not.  SMIMP_EXIT_TEMPFAIL when one was not: the
 * change stands, and that contact learns of it when its client next
 * looks the address up.
 */
static int
say_notices(const struct revoke_opts *o, const struct revoke_result *res)
{
	const struct notice_report *rep = &res->notices;
	FILE *f = o->write != NULL && strcmp(o->write, "-") == 0 ? stderr :
	    stdout;
	size_t i;

	if (res->notice_err.code != 0)
		return report(&res->notice_err);
	for (i = 0; i < rep->n; i++)
		if (rep->to[i].code != 0)
			warnx_("cannot notify %s: %s", rep->to[i].address,
			    rep->to[i].error);
		else if (!o->json)
			fprintf(f, "%s: notice sent to %s\n", res->address,
			    rep->to[i].address);
	return rep->failed > 0 ? SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_OK;
}

/*
 * The code the device showed, read from the terminal with echo (it is
 * no secret: anyone with the request can work it out) into buf.
 */
static int
ask_code(const struct enroll_request *req, const char *scope, char *buf,
    size_t cap, struct smimp_err *err)
{
	char prompt[ADDRESS_MAX + IDDEV_NAME_MAX + 128];
	size_t n = 0;
	ssize_t r;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open the "
		    "terminal for the code");
	(void)snprintf(prompt, sizeof(prompt), "The device %s of %s asks to "
	    "be added, scope %s.\nCode the device shows: ", req->device,
	    req->address, scope);
	(void)fd_write_all(fd, prompt, strlen(prompt));
	for (;;) {
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || buf[n] == '\n')
			break;
		if (++n == cap - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	if (r < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "code");
	return 0;
}

/*
 * --add-device: the request checked against the identity's log, then
 * its code compared (--code, else asked on the terminal), all before
 * the identity key is read.  Into req.
 */
static int
check_request(const struct revoke_opts *o, struct enroll_request *req,
    struct smimp_err *err)
{
	char typed[128];
	const char *code = o->code;

	if (revoke_device_request(o->identity, o->add_device, time_now(),
	    req, err) != 0)
		return -1;
	if (code == NULL) {
		if (!isatty(STDIN_FILENO))
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "the code "
			    "the device shows is needed: stdin is not a "
			    "terminal, so give --code CODE");
		if (ask_code(req, o->scope != NULL ? o->scope : "full", typed,
		    sizeof(typed), err) != 0)
			return -1;
		code = typed;
	}
	return enroll_code_check(req, code, err);
}

static int
revoke_main(int argc, char **argv)
{
	struct passphrase_source src;
	struct enroll_request req;
	struct revoke_params p;
	struct revoke_result res;
	struct revoke_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-revoke") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.add_device != NULL && check_request(&o, &req, &err) != 0)
		return err.code == SMIMP_EXIT_USAGE ? usage_error("%s",
		    err.msg) : report(&err);
	src.file = o.passphrase_file;
	src.allow_prompt = isatty(0);
	memset(&p, 0, sizeof(p));
	p.kind = o.rotate ? REVOKE_ROTATE : o.encryption ? REVOKE_ENCRYPTION :
	    o.recover != NULL ? REVOKE_RECOVER : o.add_device != NULL ?
	    REVOKE_ADD_DEVICE : o.remove_device != NULL ?
	    REVOKE_REMOVE_DEVICE : REVOKE_REVOKE;
	p.request = &req;
	p.scope = IDDEV_FULL;
	if (o.scope != NULL)
		(void)iddev_scope_parse(o.scope, &p.scope);
	p.device = o.remove_device;
	p.recovery_path = o.recover;
	p.address = o.address;
	p.prefix = o.prefix;
	p.keep = o.keep;
	p.keypath = o.identity;
	p.src = &src;
	p.reason = o.reason;
	p.publish = !o.no_publish;
	p.remote = &o.conf.remote;
	p.write_log = o.write;
	p.notify = o.notify;
	if (revoke_run(&p, &res, &err) != 0) {
		notice_report_release(&res.notices);
		return report(&err);
	}
	if (o.json)
		say_json(&o, &res);
	else
		say_done(&o, &res);
	say_relived(&res);
	rc = say_notices(&o, &res);
	notice_report_release(&res.notices);
	return rc;
}

int
main(int argc, char **argv)
{
	return cmd_exit(revoke_main(argc, argv));
}
