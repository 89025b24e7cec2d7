/*
 * smimp-keygen - make an identity for user@domain: an Ed25519 identity
 * key, an X25519 encryption key and an offline recovery key.  Writes
 * PREFIX.key and PREFIX.recovery (secret, 0600, passphrase-encrypted)
 * and PREFIX.pub (the genesis record of the identity log).  Also prints
 * fingerprints and exports the encryption key in age's formats.  With
 * --device, makes a new device's keys instead, and the enrollment
 * request that the holder of the identity key signs into the log
 * (smimp-revoke --add-device), so that the identity key never has to be
 * copied onto the device.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "enroll.h"
#include "fileio.h"
#include "identity.h"
#include "idlog.h"
#include "keys.h"
#include "send.h"
#include "util.h"
#include "cmd.h"
#include "banned.h"

enum keygen_mode { MODE_GENERATE, MODE_FINGERPRINT, MODE_EXPORT_AGE,
	MODE_EXPORT_RECIPIENT, MODE_REDEEM, MODE_DEVICE };

struct keygen_opts {
	enum keygen_mode mode;
	int modes;
	const char *address;
	const char *prefix;
	const char *identity;
	const char *pubfile;
	int no_passphrase;
	const char *passphrase_file;
	const char *token_file;		/* --redeem -, --redeem-file */
	const char *device;		/* --device NAME */
	struct clientconf conf;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimp-keygen -u ADDRESS [-o PREFIX] [--no-passphrase | "
	    "--passphrase-file FILE]\n"
	    "       smimp-keygen --device NAME -u ADDRESS [-o PREFIX] "
	    "[--no-passphrase | --passphrase-file FILE]\n"
	    "       smimp-keygen [-u ADDRESS [-o PREFIX] | -i FILE.key] "
	    "--redeem - | --redeem-file FILE\n"
	    "       smimp-keygen --fingerprint FILE.pub\n"
	    "       smimp-keygen --export-age [-i FILE.key] "
	    "[--passphrase-file FILE]\n"
	    "       smimp-keygen --export-age-recipient [-i FILE.key | "
	    "FILE.pub]\n");
}

static int
parse_args(int argc, char **argv, struct keygen_opts *o)
{
	enum { OPT_NOPASS = 256, OPT_PASSFILE, OPT_FP, OPT_AGE, OPT_RCPT,
		OPT_REDEEM, OPT_REDEEM_FILE, OPT_VERSION, OPT_DEVICE };
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "output", required_argument, NULL, 'o' },
		{ "identity", required_argument, NULL, 'i' },
		{ "no-passphrase", no_argument, NULL, OPT_NOPASS },
		{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
		{ "fingerprint", required_argument, NULL, OPT_FP },
		{ "export-age", no_argument, NULL, OPT_AGE },
		{ "export-age-recipient", no_argument, NULL, OPT_RCPT },
		{ "redeem", required_argument, NULL, OPT_REDEEM },
		{ "redeem-file", required_argument, NULL, OPT_REDEEM_FILE },
		{ "device", required_argument, NULL, OPT_DEVICE },
		REMOTE_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static const char shortopts[] = "u:o:i:h";
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'u': o->address = optarg; break;
		case 'o': o->prefix = optarg; break;
		case 'i': o->identity = optarg; break;
		case OPT_NOPASS: o->no_passphrase = 1; break;
		case OPT_PASSFILE: o->passphrase_file = optarg; break;
		case OPT_FP:
			o->mode = MODE_FINGERPRINT;
			o->pubfile = optarg;
			o->modes++;
			break;
		case OPT_AGE: o->mode = MODE_EXPORT_AGE; o->modes++; break;
		case OPT_RCPT: o->mode = MODE_EXPORT_RECIPIENT; o->modes++;
			break;
		case OPT_DEVICE:
			if (!iddev_name_valid(optarg))
				return usage_error("'%s' is no device name: 1 "
				    "to %d characters of a-z, 0-9 and '-', not "
				    "starting with '-'", optarg,
				    IDDEV_NAME_MAX);
			o->device = optarg;
			break;
		case OPT_REDEEM:
		case OPT_REDEEM_FILE:
			/*
			 * No token on the command line: every user sees it
			 * in the process list, and redeems it first.  It is
			 * refused, not warned about, as a warning comes after
			 * the leak; the token is not quoted back.
			 */
			if (c == OPT_REDEEM && strcmp(optarg, "-") != 0)
				return usage_error("--redeem takes only '-': a "
				    "token on the command line is visible to "
				    "every user; use --redeem-file FILE or "
				    "standard input");
			if (o->token_file != NULL)
				return usage_error("--redeem and --redeem-file "
				    "exclude each other");
			o->token_file = optarg;
			break;
		case 'h': usage(stdout); exit(cmd_exit(SMIMP_EXIT_OK));
		case OPT_VERSION: exit(print_version());
		default:
			if (remote_option(c, optarg, &o->conf))
				break;
			return option_error(argv, shortopts, longopts);
		}
	}
	if (o->modes > 1)
		return usage_error("--fingerprint, --export-age and "
		    "--export-age-recipient exclude each other");
	if (o->device != NULL && (o->modes > 0 || o->token_file != NULL ||
	    o->identity != NULL))
		return usage_error("--device makes a new device's keys: no -i, "
		    "--redeem, --fingerprint or --export-age with it");
	if (o->device != NULL)
		o->mode = MODE_DEVICE;
	if (o->mode == MODE_EXPORT_RECIPIENT && optind < argc &&
	    o->identity == NULL)
		o->pubfile = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->no_passphrase && o->passphrase_file != NULL)
		return usage_error("--no-passphrase and --passphrase-file "
		    "exclude each other");
	if (o->token_file != NULL) {
		const char *pf = o->passphrase_file != NULL ?
		    o->passphrase_file : o->no_passphrase ? NULL :
		    getenv("SMIMP_PASSPHRASE_FILE");

		if (strcmp(o->token_file, "-") == 0 && pf != NULL &&
		    strcmp(pf, "-") == 0)
			return usage_error("the token and the passphrase "
			    "cannot both come from standard input");
		if (o->mode != MODE_GENERATE)
			return usage_error("--redeem goes with key generation "
			    "or an existing key, nothing else");
		if (o->address == NULL)
			o->mode = MODE_REDEEM;
		else if (o->identity != NULL)
			return usage_error("-i names an existing key: no -u "
			    "with it");
		if (remote_options_finish(&o->conf) != 0)
			return SMIMP_EXIT_USAGE;
	}
	if ((o->mode == MODE_GENERATE || o->mode == MODE_DEVICE) &&
	    o->address == NULL)
		return usage_error("an address is needed: -u ADDRESS");
	/* Taken and ignored, -i would seem to say which key is meant. */
	if (o->identity != NULL && o->mode == MODE_GENERATE)
		return usage_error("-i names an existing key: no -u with it");
	if (o->identity != NULL && o->mode == MODE_FINGERPRINT)
		return usage_error("--fingerprint reads FILE.pub: no -i with "
		    "it");
	if (o->mode != MODE_GENERATE && o->mode != MODE_DEVICE &&
	    (o->address || o->prefix))
		return usage_error("-u and -o only go with key generation");
	if (o->prefix != NULL && strcmp(o->prefix, "-") == 0)
		return usage_error("-o names the prefix of three files, so it "
		    "cannot be standard output");
	/* "" and "dir/" would make hidden files: .key, dir/.pub. */
	if (o->prefix != NULL && (o->prefix[0] == '\0' ||
	    o->prefix[strlen(o->prefix) - 1] == '/'))
		return usage_error("-o names the files' prefix, not an empty "
		    "name or a directory: '%s'", o->prefix);
	return 0;
}

struct keygen_paths {
	char key[PATH_MAX], pub[PATH_MAX], recovery[PATH_MAX];
};

/* A name taken, by anything: a dangling symbolic link too. */
static int
present(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static int
make_paths(const struct keygen_opts *o, struct keygen_paths *p,
    struct smimp_err *err)
{
	char home[PATH_MAX];
	const char *prefix = o->prefix;

	if (prefix == NULL) {
		if (smimp_home(home, sizeof(home), err) != 0 ||
		    mkdir_p(home, 0700, err) != 0)
			return -1;
		if (strlen(home) + 10 >= sizeof(home))
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "SMIMP_HOME is too long");
		memcpy(home + strlen(home), "/identity", 10);
		prefix = home;
	}
	if ((size_t)snprintf(p->key, sizeof(p->key), "%s.key", prefix) >=
	    sizeof(p->key) ||
	    (size_t)snprintf(p->pub, sizeof(p->pub), "%s.pub", prefix) >=
	    sizeof(p->pub) ||
	    (size_t)snprintf(p->recovery, sizeof(p->recovery), "%s.recovery",
	    prefix) >= sizeof(p->recovery))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "prefix too long");
	if (present(p->key) || present(p->pub) || present(p->recovery))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' already "
		    "exists: refusing to overwrite an identity",
		    present(p->key) ? p->key :
		    present(p->pub) ? p->pub : p->recovery);
	return 0;
}

/* Register id with its home server using the invitation token. */
static int
redeem(const struct keygen_opts *o, const char *token,
    const struct identity *id, struct smimp_err *err)
{
	struct remote *r;
	char fp[FINGERPRINT_STRLEN];
	int ret;

	r = remote_new(&o->conf.remote, err);
	if (r == NULL)
		return -1;
	ret = send_register(r, id, token, err);
	remote_free(r);
	if (ret != 0)
		return -1;
	fingerprint_format(id->log.fingerprint, fp);
	fprintf(stderr, "%s: registered %s with its server (%s)\n", progname,
	    id->sk.address, fp);
	return 0;
}

static int
redeem_existing(const struct keygen_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct identity id;
	char *token = NULL;
	int ret = -1;

	if (send_token_read(o->token_file, isatty(0), &token, err) != 0)
		return -1;
	if (identity_load(&id, o->identity, &src, 1, err) == 0) {
		ret = redeem(o, token, &id, err);
		identity_release(&id);
	}
	passphrase_free(token, 0);
	return ret;
}

/*
 * A home without an identity of its own takes the first one made for it
 * elsewhere as its default, so that commands run without -i (lookups
 * above all, which must be signed) find it.  Failing that is no failure
 * of keygen: it says so.
 */
static void
remember_default(const char *key)
{
	char abs[PATH_MAX];
	struct smimp_err err;
	int r;

	if (realpath(key, abs) == NULL)
		return;
	r = default_identity_record(abs, &err);
	if (r > 0)
		warnx_("%s is this home's default identity now (identity in "
		    "its config file)", abs);
	else if (r < 0)
		warnx_("warning: %s", err.msg);
}

/*
 * Signals wait while an identity's files are written (scrypt and the
 * fsyncs take seconds): they appear all together or, on an error, not
 * at all, and no temporary file beside them outlives the command.  A
 * signal that came meanwhile acts once they are whole; only SIGKILL,
 * which nothing can catch, may still cut them short.
 */
static void
signals_hold(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, old);
}

static void
signals_release(const sigset_t *old)
{
	(void)pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int
generate(const struct keygen_opts *o, struct smimp_err *err)
{
	struct secret_key sk, rk;
	struct keygen_paths p;
	struct idlog log;
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	char addr[ADDRESS_MAX + 1], fp[FINGERPRINT_STRLEN];
	char *pass = NULL, *token = NULL;
	size_t pass_len = 0;
	sigset_t old;
	int ret = -1, wrote = 0, unregistered = 0, held = 0;

	memset(&sk, 0, sizeof(sk));
	memset(&rk, 0, sizeof(rk));
	memset(&log, 0, sizeof(log));
	if (address_normalize(o->address, addr, err) != 0 ||
	    make_paths(o, &p, err) != 0)
		goto out;
	/* The token before the keys: a bad one leaves nothing behind. */
	if (o->token_file != NULL &&
	    send_token_read(o->token_file, isatty(0), &token, err) != 0)
		goto out;
	if (!o->no_passphrase && passphrase_get(&src, "Passphrase for the "
	    "new key: ", 1, &pass, &pass_len, err) != 0)
		goto out;
	if (secret_key_generate(&sk, addr, err) != 0 ||
	    recovery_key_generate(&rk, addr, err) != 0 ||
	    idlog_genesis(&log, addr, sk.identity_secret, sk.encryption_public,
	    rk.identity_public, time_now(), err) != 0)
		goto out;
	signals_hold(&old);
	held = 1;
	if (secret_key_write(&rk, p.recovery, pass, pass_len, err) != 0)
		goto out;
	wrote = 1;
	if (secret_key_write(&sk, p.key, pass, pass_len, err) != 0)
		goto out;
	wrote = 2;
	if (file_write_atomic(p.pub, log.raw, log.raw_len, 0644, 0, err) != 0)
		goto out;
	signals_release(&old);
	held = 0;
	fingerprint_format(log.fingerprint, fp);
	warnx_("created %s: %s %s %s", addr, p.key, p.pub, p.recovery);
	warnx_("keep %s offline: it revokes and replaces lost keys",
	    p.recovery);
	printf("%s\n", fp);
	ret = 0;
	if (o->prefix != NULL)
		remember_default(p.key);
	if (token != NULL) {
		struct identity id;

		/* The keys stay: registering can be retried with --redeem. */
		memset(&id, 0, sizeof(id));
		id.sk = sk;
		id.log = log;
		id.has_log = 1;
		if (redeem(o, token, &id, err) != 0)
			unregistered = 1;
	}
out:
	if (ret != 0 && wrote >= 1)
		(void)unlink(p.recovery);
	if (ret != 0 && wrote >= 2)
		(void)unlink(p.key);
	if (held)
		signals_release(&old);
	passphrase_free(pass, pass_len);
	passphrase_free(token, 0);
	secret_key_release(&sk);
	secret_key_release(&rk);
	idlog_release(&log);
	return unregistered ? -1 : ret;
}

/*
 * The request as a QR code on the terminal, for a phone to read, when
 * qrencode is on PATH: through a pipe, so that nothing is on a command
 * line.  Whatever fails, the request was printed as text already.
 */
static void
show_qr(const struct enroll_request *req)
{
	static char *const argv[] = { "qrencode", "-t", "UTF8", "-m", "2",
	    NULL };
	extern char **environ;
	posix_spawn_file_actions_t fa;
	int fds[2], status, spawned;
	pid_t pid;

	if (!isatty(STDOUT_FILENO) || fflush(stdout) != 0 || pipe(fds) != 0)
		return;
	if (posix_spawn_file_actions_init(&fa) != 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	spawned = posix_spawn_file_actions_adddup2(&fa, fds[0],
	    STDIN_FILENO) == 0 && posix_spawn_file_actions_addclose(&fa,
	    fds[1]) == 0 && posix_spawnp(&pid, "qrencode", &fa, NULL, argv,
	    environ) == 0;
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (spawned) {
		/* A qrencode that quits early must not end this process. */
		(void)signal(SIGPIPE, SIG_IGN);
		(void)fd_write_all(fds[1], req->raw, req->raw_len);
	}
	close(fds[1]);
	while (spawned && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/*
 * --device: the device's key and request.  On standard output the
 * request, an empty line and its code, which smimp-revoke --add-device
 * reads as it is (ignoring the code line: the code must come from the
 * person who reads it here), then, on a terminal, a QR code of the
 * request.  Nothing on standard error.
 */
static int
device(const struct keygen_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct enroll_params p;
	struct enroll_result res;
	char when[TIME_STRLEN];
	char *pass = NULL;
	size_t pass_len = 0;
	sigset_t old;
	int r, ret = -1;

	memset(&p, 0, sizeof(p));
	/* Nothing to overwrite, before the passphrase is asked for. */
	if (enroll_paths(o->prefix, &res, err) != 0)
		return -1;
	if (!o->no_passphrase && passphrase_get(&src, "Passphrase for the "
	    "new key: ", 1, &pass, &pass_len, err) != 0)
		return -1;
	p.address = o->address;
	p.device = o->device;
	p.prefix = o->prefix;
	p.pass = pass;
	p.pass_len = pass_len;
	p.now = time_now();
	/* The key and the request: both or neither, as in generate. */
	signals_hold(&old);
	r = enroll_begin(&p, &res, err);
	signals_release(&old);
	if (r != 0)
		goto out;
	time_format(res.req.expires, when);
	if (fwrite(res.req.raw, 1, res.req.raw_len, stdout) !=
	    res.req.raw_len || printf("\ncode: %s (until %s)\n", res.code,
	    when) < 0 || stdout_check() != 0) {
		/*
		 * Said by stdout_check.  Without its code the request is
		 * of no use: neither file is kept, so that it can be run
		 * again as it was.
		 */
		(void)unlink(res.key_path);
		(void)unlink(res.request_path);
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s", "");
		goto out;
	}
	show_qr(&res.req);
	ret = 0;
out:
	passphrase_free(pass, pass_len);
	return ret;
}

static int
show_fingerprint(const char *pubfile, struct smimp_err *err)
{
	struct idlog log;
	char fp[FINGERPRINT_STRLEN];

	if (idlog_read_file(&log, pubfile, err) != 0)
		return -1;
	fingerprint_format(log.fingerprint, fp);
	printf("%s\n", fp);
	idlog_release(&log);
	return 0;
}

static int
export_age(const struct keygen_opts *o, struct smimp_err *err)
{
	struct passphrase_source src = { o->passphrase_file, isatty(0) };
	struct secret_key sk;
	struct idlog log;
	char path[PATH_MAX], out[AGE_IDENTITY_STRLEN + 1];
	const char *keyfile = o->identity;
	size_t n;
	int ret = -1;

	if (o->mode == MODE_EXPORT_RECIPIENT && o->pubfile != NULL) {
		if (idlog_read_file(&log, o->pubfile, err) != 0)
			return -1;
		ret = age_recipient_encode(log.encryption_key, out);
		idlog_release(&log);
		if (ret != 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "cannot encode the recipient");
		printf("%s\n", out);
		return 0;
	}
	if (keyfile == NULL) {
		if (default_identity_path(path, sizeof(path), "key", err) != 0)
			return -1;
		keyfile = path;
	}
	if (secret_key_load(&sk, keyfile, &src, err) != 0)
		return -1;
	if (sk.is_recovery) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is a recovery key, "
		    "not an identity key", keyfile);
		goto out;
	}
	if ((o->mode == MODE_EXPORT_AGE ?
	    age_identity_encode(sk.encryption_secret, out) :
	    secret_key_encryption_public(&sk) == NULL ||
	    age_recipient_encode(secret_key_encryption_public(&sk), out))
	    != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot encode the key");
		goto out;
	}
	/* Not through stdio, which would keep a copy in its buffer. */
	n = strlen(out);
	out[n] = '\n';
	if (fd_write_all(STDOUT_FILENO, out, n + 1) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot write to standard output");
		goto out;
	}
	ret = 0;
out:
	sodium_memzero(out, sizeof(out));
	secret_key_release(&sk);
	return ret;
}

static int
keygen_main(int argc, char **argv)
{
	struct keygen_opts o;
	struct smimp_err err;
	int rc;

	smimp_err_clear(&err);
	if (cmd_start("smimp-keygen") != 0)
		return SMIMP_EXIT_FAIL;
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	switch (o.mode) {
	case MODE_GENERATE: rc = generate(&o, &err); break;
	case MODE_FINGERPRINT: rc = show_fingerprint(o.pubfile, &err); break;
	case MODE_REDEEM: rc = redeem_existing(&o, &err); break;
	case MODE_DEVICE: rc = device(&o, &err); break;
	default: rc = export_age(&o, &err); break;
	}
	if (rc != 0)
		return err.msg[0] != '\0' ? report(&err) : SMIMP_EXIT_FAIL;
	return SMIMP_EXIT_OK;
}

int
main(int argc, char **argv)
{
	return cmd_exit(keygen_main(argc, argv));
}
