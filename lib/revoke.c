/*
 * revoke.c - extend one's own identity log, replace the key files,
 * publish the new records (see revoke.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "identity.h"
#include "idlog.h"
#include "revoke.h"
#include "util.h"
#include "banned.h"

/* Does the home server (at base) serve exactly log now? */
static int
server_has(struct remote *r, const char *base, const struct idlog *log)
{
	struct remote_reply rep;
	struct smimp_err err;
	char path[400];
	int same;

	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", log->address);
	if (remote_request(r, "GET", address_domain(log->address), base, path,
	    NULL, 0, NULL, NULL, IDLOG_MAX_BYTES, &rep, &err) != 0)
		return 0;
	same = rep.status == 200 && rep.body.len == log->raw_len &&
	    memcmp(rep.body.buf, log->raw, log->raw_len) == 0;
	remote_reply_release(&rep);
	return same;
}

/*
 * POST the records log has beyond old to the home server, signed by
 * secret: the identity key that old, the log the server holds, names.
 * An answer that was lost is made up for by reading the log back.
 */
static int
publish(const struct remote_opts *o, const struct idlog *old,
    const struct idlog *log, const unsigned char *secret,
    const char *pub_path, struct smimp_err *err)
{
	const char *domain = address_domain(log->address);
	struct remote_reply rep;
	struct remote *r;
	struct signer me;
	char base[512], path[400];
	int ret = -1;

	r = remote_new(o, err);
	if (r == NULL)
		return -1;
	if (remote_base(r, domain, base, sizeof(base), err) != 0)
		goto out;
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", log->address);
	signer_secret(&me, log->address, secret);
	if (remote_request(r, "POST", domain, base, path,
	    log->raw + old->raw_len, log->raw_len - old->raw_len, &me, NULL,
	    REMOTE_MAX_STATUS, &rep, err) != 0) {
		if (server_has(r, base, log))
			ret = 0;
		goto out;
	}
	if (rep.status == 200 || server_has(r, base, log))
		ret = 0;
	else if (rep.status == 409)
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity log "
		    "%s serves for %s changed elsewhere: it does not end where "
		    "'%s' does (HTTP 409%s%.100s)", domain, log->address,
		    pub_path, rep.error[0] != '\0' ? ": " : "", rep.error);
	else
		remote_reply_fail(&rep, "publishing the new record", err);
	remote_reply_release(&rep);
out:
	remote_free(r);
	return ret;
}

/* The new log to path, or to standard output for "-". */
static int
write_log(const char *path, const struct idlog *log, struct smimp_err *err)
{
	if (strcmp(path, "-") == 0)
		return fd_write_all(STDOUT_FILENO, log->raw, log->raw_len) == 0 ?
		    0 : smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write the "
		    "new log to standard output");
	return file_write_atomic(path, log->raw, log->raw_len, 0644, 1, err);
}

/*
 * Rename a staged file into place and sync the directory; on failure the
 * staged file stays, and the message says where.
 */
static int
put_in_place(const char *tmp, const char *path, const char *what,
    struct smimp_err *err)
{
	char why[SMIMP_ERR_MSG];

	if (file_check_regular(path, err) != 0) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the new %s is in "
		    "'%s': %.150s", what, tmp, why);
	}
	if (rename(tmp, path) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "the new %s is in "
		    "'%s': cannot rename it onto '%s'", what, tmp, path);
	return fsync_parent_dir(path, err);
}

/*
 * Send notice of the change (log's records from first on) to the
 * contacts, signed by id's key, the one in force after it.
 */
static int
notify(const struct revoke_params *p, const struct identity *id,
    const struct idlog *log, size_t first, struct revoke_result *res,
    struct smimp_err *err)
{
	struct notice_params np;
	char home[PATH_MAX];

	if (smimp_home(home, sizeof(home), err) != 0)
		return -1;
	memset(&np, 0, sizeof(np));
	np.remote = p->remote;
	np.home = home;
	np.sk = &id->sk;
	np.log = log;
	np.first = first;
	return notice_send(&np, &res->notices, err);
}

/*
 * A revocation that was not published after its notices went out: the
 * contacts told hold a revocation their servers will not see, so say
 * so.  Revoking again revokes for them too (their clients refuse the
 * identity either way).
 */
static void
notified_anyway(const struct revoke_result *res, struct smimp_err *err)
{
	char why[SMIMP_ERR_MSG];

	if (res->notices.n == res->notices.failed)
		return;
	memcpy(why, err->msg, sizeof(why));
	smimp_err_set(err, err->code, "%.180s (notice of the revocation "
	    "went to %zu contacts)", why, res->notices.n -
	    res->notices.failed);
}

/* log extended as p says; id's key changed to match. */
static int
extend(const struct revoke_params *p, struct identity *id,
    const unsigned char *old_secret, struct idlog *log,
    struct smimp_err *err)
{
	struct idrec_new rec;

	memset(&rec, 0, sizeof(rec));
	rec.date = time_now();
	switch (p->kind) {
	case REVOKE_ROTATE:
		/* The old key hands over to the new one, which then names
		 * its own encryption key. */
		if (secret_key_new_identity(&id->sk, err) != 0)
			return -1;
		rec.type = IDREC_ROTATE;
		rec.identity_key = id->sk.identity_public;
		if (idlog_append(log, &rec, old_secret, err) != 0)
			return -1;
		/* FALLTHROUGH */
	case REVOKE_ENCRYPTION:
		if (secret_key_new_encryption(&id->sk, err) != 0)
			return -1;
		rec.type = IDREC_ENCRYPTION_KEY;
		rec.identity_key = NULL;
		rec.encryption_key = secret_key_encryption_public(&id->sk);
		return idlog_append(log, &rec, id->sk.identity_secret, err);
	case REVOKE_REVOKE:
		rec.type = IDREC_REVOKE;
		rec.reason = p->reason;
		return idlog_append(log, &rec, old_secret, err);
	}
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "unknown change");
}

int
revoke_run(const struct revoke_params *p, struct revoke_result *res,
    struct smimp_err *err)
{
	unsigned char *old_secret = NULL;
	struct identity id;
	struct idlog log;
	char *pass = NULL, key_tmp[PATH_MAX], pub_tmp[PATH_MAX];
	size_t pass_len = 0;
	int ret = -1, have_log = 0;

	memset(res, 0, sizeof(*res));
	key_tmp[0] = pub_tmp[0] = '\0';
	if (identity_load_keep(&id, p->keypath, p->src, &pass, &pass_len,
	    err) != 0)
		return -1;
	(void)snprintf(res->address, sizeof(res->address), "%s",
	    id.sk.address);
	memcpy(res->key_path, id.key_path, sizeof(res->key_path));
	memcpy(res->pub_path, id.pub_path, sizeof(res->pub_path));
	if (id.log.revoked) {
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity of %s "
		    "is revoked already: nothing may follow", id.sk.address);
		goto out;
	}
	/* The key the home server knows now signs the change. */
	old_secret = sodium_malloc(64);
	if (old_secret == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	memcpy(old_secret, id.sk.identity_secret, 64);
	if (idlog_copy(&log, &id.log, err) != 0)
		goto out;
	have_log = 1;
	if (extend(p, &id, old_secret, &log, err) != 0)
		goto out;
	res->records = log.n;
	res->key_replaced = p->kind != REVOKE_REVOKE;
	/* Everything new is safe on disk before anything is published. */
	if (res->key_replaced && secret_key_stage(&id.sk, id.key_path, pass,
	    pass_len, key_tmp, sizeof(key_tmp), err) != 0) {
		key_tmp[0] = '\0';
		goto out;
	}
	if (file_stage(id.pub_path, log.raw, log.raw_len, 0644, pub_tmp,
	    sizeof(pub_tmp), err) != 0) {
		pub_tmp[0] = '\0';
		goto out;
	}
	if (p->write_log != NULL && write_log(p->write_log, &log, err) != 0)
		goto out;
	/* A revoked identity sends nothing: its notices go first. */
	if (p->notify && p->kind == REVOKE_REVOKE &&
	    notify(p, &id, &log, id.log.n, res, err) != 0)
		goto out;
	if (p->publish) {
		if (publish(p->remote, &id.log, &log, old_secret,
		    id.pub_path, err) != 0) {
			notified_anyway(res, err);
			goto out;
		}
		res->published = 1;
	}
	/* The secret first: it is what nothing else could give back. */
	if (key_tmp[0] != '\0') {
		if (put_in_place(key_tmp, id.key_path, "key", err) != 0)
			goto kept;
		key_tmp[0] = '\0';
	}
	if (put_in_place(pub_tmp, id.pub_path, "log", err) != 0)
		goto kept;
	pub_tmp[0] = '\0';
	ret = 0;
	/* The change stands whatever becomes of its notices. */
	if (p->notify && p->kind != REVOKE_REVOKE)
		(void)notify(p, &id, &log, id.log.n, res, &res->notice_err);
	goto out;
kept:
	/* Published, or written: what was staged must stay. */
	key_tmp[0] = pub_tmp[0] = '\0';
out:
	if (key_tmp[0] != '\0')
		(void)unlink(key_tmp);
	if (pub_tmp[0] != '\0')
		(void)unlink(pub_tmp);
	if (old_secret != NULL)
		sodium_free(old_secret);
	if (have_log)
		idlog_release(&log);
	passphrase_free(pass, pass_len);
	identity_release(&id);
	return ret;
}
