/*
 * revoke.c - extend one's own identity log, replace the key files,
 * publish the new records (see revoke.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "identity.h"
#include "idlog.h"
#include "lookup.h"
#include "revoke.h"
#include "util.h"
#include "banned.h"

/* err->detail of a publication whose outcome is unknown. */
#define PUBLISH_UNKNOWN	(-75)

/*
 * Does the home server (at base) serve exactly log now?  Asked as the
 * key in force once log is there (reader): a server that took log
 * answers it (a revoked identity may still read its own log), one that
 * did not refuses a key it does not know yet, and that is a no too.
 * 1 yes, 0 no, -1 when no answer says (none came, or a 5xx or 429).
 */
static int
server_has(struct remote *r, const char *base, const struct idlog *log,
    const struct signer *reader)
{
	struct remote_reply rep;
	struct smimp_err err;
	char path[400];
	int same;

	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", log->address);
	if (remote_request(r, "GET", address_domain(log->address), base, path,
	    NULL, 0, reader, NULL, IDLOG_MAX_BYTES, &rep, &err) != 0)
		return -1;
	if (rep.status >= 500 || rep.status == 429)
		same = -1;
	else
		same = rep.status == 200 && rep.body.len == log->raw_len &&
		    memcmp(rep.body.buf, log->raw, log->raw_len) == 0;
	remote_reply_release(&rep);
	return same;
}

/*
 * The answer to a publication was lost (why in err), and the server
 * could not be asked whether it took the record: it may have, and then
 * only the staged files hold the key it knows (staged_kept).
 */
static void
publish_unknown(struct smimp_err *err)
{
	err->code = SMIMP_EXIT_TEMPFAIL;
	err->detail = PUBLISH_UNKNOWN;
}

/*
 * POST the records of log from index from on to the home server, signed
 * by secret under the name signer (the address, or recovery:ADDRESS): the
 * key that the log the server holds names.  An answer that was lost is
 * made up for by reading the log back; when that cannot be done either,
 * -1 with err->detail PUBLISH_UNKNOWN.
 */
static int
publish(const struct remote_opts *o, const struct idlog *log, size_t from,
    const char *signer, const unsigned char *secret, const char *pub_path,
    const struct signer *reader, struct smimp_err *err)
{
	const char *domain = address_domain(log->address);
	const unsigned char *start = log->recs[from].raw;
	struct remote_reply rep;
	struct remote *r;
	struct signer me;
	char base[512], path[ADDRESS_MAX + 32];
	int has, ret = -1;

	r = remote_new(o, err);
	if (r == NULL)
		return -1;
	if (remote_base(r, domain, base, sizeof(base), err) != 0)
		goto out;
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", log->address);
	signer_secret(&me, signer, secret);
	if (remote_request(r, "POST", domain, base, path, start,
	    log->raw_len - (size_t)(start - log->raw), &me, NULL,
	    REMOTE_MAX_STATUS, &rep, err) != 0) {
		has = server_has(r, base, log, reader);
		if (has > 0)
			ret = 0;
		else if (has < 0)
			publish_unknown(err);
		goto out;
	}
	has = rep.status == 200 ? 1 : server_has(r, base, log, reader);
	if (has > 0)
		ret = 0;
	else if (has < 0 && rep.status >= 500) {
		remote_reply_fail(&rep, "publishing the new record", err);
		publish_unknown(err);
	} else if (rep.status == 409)
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
 * contacts, signed by sk, the key in force after it.
 */
static int
notify(const struct revoke_params *p, const struct secret_key *sk,
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
	np.sk = sk;
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

/*
 * May the device of req join log?  Its address, keys never a device's
 * (nor the identity's), its name free, room for it.
 */
static int
device_fits(const struct idlog *log, const struct enroll_request *req,
    struct smimp_err *err)
{
	const struct iddevice *d;
	char when[TIME_STRLEN];
	size_t i;

	if (strcmp(req->address, log->address) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the enrollment "
		    "request is for %s, not %s: nothing added", req->address,
		    log->address);
	for (i = 0; i < log->ndevices; i++)
		if (memcmp(log->devices[i].signing_key, req->signing_key,
		    32) == 0 || memcmp(log->devices[i].encryption_key,
		    req->encryption_key, 32) == 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the keys "
			    "of the enrollment request are those of the device "
			    "%s, added before: a device's keys never come back",
			    log->devices[i].name);
	if (memcmp(req->signing_key, log->identity_key, 32) == 0 ||
	    memcmp(req->signing_key, log->recovery_key, 32) == 0 ||
	    memcmp(req->encryption_key, log->encryption_key, 32) == 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the enrollment "
		    "request names a key of the identity itself");
	d = idlog_device(log, req->device);
	if (d != NULL) {
		time_format(d->added, when);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the device %s of "
		    "%s is in the log already (added %s): remove it first, or "
		    "make the request under another name", req->device,
		    log->address, when);
	}
	if (log->nlive == IDLOG_MAX_DEVICES)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s has %d devices, "
		    "the most a log may have: remove one first", log->address,
		    IDLOG_MAX_DEVICES);
	return 0;
}

int
revoke_device_request(const char *keypath, const char *path, int64_t now,
    struct enroll_request *req, struct smimp_err *err)
{
	char pub[PATH_MAX];
	struct idlog log;
	int ret = -1;

	if (enroll_request_read(req, path, err) != 0 ||
	    enroll_request_current(req, now, err) != 0 ||
	    identity_pub_path(keypath, pub, sizeof(pub), err) != 0 ||
	    idlog_read_file_verified(&log, pub, err) != 0)
		return -1;
	if (log.revoked)
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity of %s "
		    "is revoked: nothing may follow", log.address);
	else
		ret = device_fits(&log, req, err);
	idlog_release(&log);
	return ret;
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
	case REVOKE_ADD_DEVICE:
		/* The request may have expired while its code was asked. */
		if (enroll_request_current(p->request, rec.date, err) != 0 ||
		    device_fits(log, p->request, err) != 0)
			return -1;
		rec.type = IDREC_DEVICE_ADD;
		rec.device = p->request->device;
		rec.scope = p->scope;
		rec.device_signing_key = p->request->signing_key;
		rec.device_encryption_key = p->request->encryption_key;
		return idlog_append(log, &rec, old_secret, err);
	case REVOKE_REMOVE_DEVICE:
		if (idlog_device(log, p->device) == NULL)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "no device "
			    "'%s' in the log of %s", p->device, log->address);
		rec.type = IDREC_DEVICE_REMOVE;
		rec.device = p->device;
		return idlog_append(log, &rec, old_secret, err);
	case REVOKE_RECOVER:
		break;		/* recover_run */
	}
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "unknown change");
}

/*
 * Where the staged files are, after err's message, for one whose
 * publication's outcome is unknown: if the server took the record,
 * they are the identity's key and log now.
 */
static void
staged_kept(const char *domain, const char *key_tmp, const char *pub_tmp,
    struct smimp_err *err)
{
	char why[SMIMP_ERR_MSG];

	memcpy(why, err->msg, sizeof(why));
	if (key_tmp[0] != '\0')
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "the new key is in "
		    "'%s' and the new log in '%s': %s may have taken them, "
		    "its answer lost (%s)", key_tmp, pub_tmp, domain, why);
	else
		smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "the new log is in "
		    "'%s': %s may have taken it, its answer lost (%s)",
		    pub_tmp, domain, why);
	err->detail = PUBLISH_UNKNOWN;
}

/* What a change writes and publishes, once the new log is made. */
struct change {
	struct secret_key *sk;		/* the new key, or NULL: unchanged */
	const char *key_path, *pub_path;
	const char *pass;		/* the key file's passphrase, or NULL */
	size_t pass_len;
	const struct idlog *log;	/* the new log */
	size_t from;			/* its first record the server lacks */
	const char *signer;		/* who signs the publication */
	const unsigned char *secret;	/* with this key */
	const struct secret_key *speaker;	/* in force after the change:
						   signs the notices */
};

/*
 * Stage the new key and log beside the old ones, write the log where -w
 * says, publish, and only then rename the staged files into place.
 * When the publication's outcome is unknown, the staged files stay.
 */
static int
commit_staged(const struct revoke_params *p, const struct change *c,
    struct revoke_result *res, struct smimp_err *err)
{
	char key_tmp[PATH_MAX], pub_tmp[PATH_MAX];
	struct signer reader;
	int ret = -1;

	key_tmp[0] = pub_tmp[0] = '\0';
	signer_secret(&reader, c->speaker->address,
	    c->speaker->identity_secret);
	/* -w identity.key for identity.pub would put the log in its place. */
	if (p->write_log != NULL && strcmp(p->write_log, "-") != 0 &&
	    secret_key_file_at(p->write_log))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' holds a "
		    "secret key: -w writes the new log, which would replace "
		    "it; nothing changed", p->write_log);
	/* Everything new is safe on disk before anything is published. */
	if (c->sk != NULL && secret_key_stage(c->sk, c->key_path, c->pass,
	    c->pass_len, key_tmp, sizeof(key_tmp), err) != 0) {
		key_tmp[0] = '\0';
		goto out;
	}
	if (file_stage(c->pub_path, c->log->raw, c->log->raw_len, 0644,
	    pub_tmp, sizeof(pub_tmp), err) != 0) {
		pub_tmp[0] = '\0';
		goto out;
	}
	if (p->write_log != NULL && write_log(p->write_log, c->log, err) != 0)
		goto out;
	/* A revoked identity sends nothing: its notices go first. */
	if (p->notify && p->kind == REVOKE_REVOKE && notify(p, c->speaker,
	    c->log, c->from, res, err) != 0)
		goto out;
	if (p->publish) {
		err->detail = 0;
		if (publish(p->remote, c->log, c->from, c->signer, c->secret,
		    c->pub_path, &reader, err) != 0) {
			if (err->detail == PUBLISH_UNKNOWN) {
				staged_kept(address_domain(
				    c->log->address), key_tmp, pub_tmp, err);
				notified_anyway(res, err);
				goto kept;
			}
			notified_anyway(res, err);
			goto out;
		}
		res->published = 1;
	}
	/* The secret first: it is what nothing else could give back. */
	if (key_tmp[0] != '\0') {
		if (put_in_place(key_tmp, c->key_path, "key", err) != 0)
			goto kept;
		key_tmp[0] = '\0';
	}
	if (put_in_place(pub_tmp, c->pub_path, "log", err) != 0)
		goto kept;
	pub_tmp[0] = '\0';
	ret = 0;
	goto out;
kept:
	/* Published, or written: what was staged must stay. */
	key_tmp[0] = pub_tmp[0] = '\0';
out:
	if (key_tmp[0] != '\0')
		(void)unlink(key_tmp);
	if (pub_tmp[0] != '\0')
		(void)unlink(pub_tmp);
	return ret;
}

/*
 * commit_staged with signals waiting, from the first staged file to the
 * last rename: once the home server has the record, it knows only the
 * staged key, and a command stopped by an interrupt before the renames
 * would leave behind a key and log that no longer speak for the
 * identity (only SIGKILL, which nothing can catch, may still).  Then
 * the notices of a change that stands.
 */
static int
commit_change(const struct revoke_params *p, const struct change *c,
    struct revoke_result *res, struct smimp_err *err)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = commit_staged(p, c, res, err);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* The change stands whatever becomes of its notices. */
	if (ret == 0 && p->notify && p->kind != REVOKE_REVOKE)
		(void)notify(p, c->speaker, c->log, c->from, res,
		    &res->notice_err);
	return ret;
}

static int recover_run(const struct revoke_params *p,
    struct revoke_result *res, struct smimp_err *err);

int
revoke_run(const struct revoke_params *p, struct revoke_result *res,
    struct smimp_err *err)
{
	unsigned char *old_secret = NULL;
	struct change c;
	struct identity id;
	struct idlog log;
	char *pass = NULL;
	size_t pass_len = 0;
	int ret = -1, have_log = 0;

	memset(res, 0, sizeof(*res));
	if (p->kind == REVOKE_RECOVER)
		return recover_run(p, res, err);
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
	res->key_replaced = p->kind == REVOKE_ROTATE ||
	    p->kind == REVOKE_ENCRYPTION;
	if (p->kind == REVOKE_ADD_DEVICE || p->kind == REVOKE_REMOVE_DEVICE)
		(void)snprintf(res->device, sizeof(res->device), "%s",
		    p->kind == REVOKE_ADD_DEVICE ? p->request->device :
		    p->device);
	memset(&c, 0, sizeof(c));
	c.sk = res->key_replaced ? &id.sk : NULL;
	c.key_path = id.key_path;
	c.pub_path = id.pub_path;
	c.pass = pass;
	c.pass_len = pass_len;
	c.log = &log;
	c.from = id.log.n;
	c.signer = log.address;
	c.secret = old_secret;
	c.speaker = &id.sk;
	ret = commit_change(p, &c, res, err);
out:
	if (old_secret != NULL)
		sodium_free(old_secret);
	if (have_log)
		idlog_release(&log);
	passphrase_free(pass, pass_len);
	identity_release(&id);
	return ret;
}

/* PREFIX.ext, or the default identity's. */
static int
recover_path(const char *prefix, const char *ext, char *out, size_t cap,
    struct smimp_err *err)
{
	int n;

	if (prefix == NULL)
		return default_identity_path(out, cap, ext, err);
	n = snprintf(out, cap, "%s.%s", prefix, ext);
	if (n < 0 || (size_t)n >= cap)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "-o PREFIX is too "
		    "long");
	return 0;
}

/*
 * The log to recover: the home server's (looked up with the recovery
 * key), or without publishing the one at pub_path.  It must be rk's: its recovery key is rk's key.
 */
static int
recover_current(const struct revoke_params *p, const struct secret_key *rk,
    const char *pub_path, struct idlog *cur, struct smimp_err *err)
{
	char name[ADDRESS_MAX + 16];
	struct signer who;
	struct remote *r;
	int ret;

	if (p->publish) {
		r = remote_new(p->remote, err);
		if (r == NULL)
			return -1;
		/* The recovery key reads its own log, revoked or not. */
		(void)snprintf(name, sizeof(name), "recovery:%s", rk->address);
		signer_secret(&who, name, rk->identity_secret);
		ret = lookup_directory(r, rk->address, &who, cur, err);
		remote_free(r);
		if (ret != 0 && err->detail == 401)
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the "
			    "directory of %s serves no identity of %s with this "
			    "recovery key (it refused the lookup it signed)",
			    address_domain(rk->address), rk->address);
	} else {
		ret = idlog_read_file(cur, pub_path, err);
		if (ret == 0 && strcmp(cur->address, rk->address) != 0) {
			smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' holds the "
			    "identity of %s, not %s", pub_path, cur->address,
			    rk->address);
			idlog_release(cur);
			ret = -1;
		}
	}
	if (ret == 0 && sodium_memcmp(cur->recovery_key, rk->identity_public,
	    32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the recovery key "
		    "does not belong to the identity %s %s", p->publish ?
		    "the directory serves for" : "in the log of", rk->address);
		idlog_release(cur);
		ret = -1;
	}
	return ret;
}

/*
 * The devices live in log (a recovery of cur) that cur had removed,
 * with the same keys: a removal the recovery cut back, of a device that
 * may have been stolen, which its owner must be told of.
 */
static void
relived_devices(const struct idlog *cur, const struct idlog *log,
    struct revoke_result *res)
{
	const struct iddevice *d, *was;
	size_t i;

	for (i = 0; i < log->ndevices; i++) {
		d = &log->devices[i];
		was = idlog_device_by_key(cur, d->signing_key);
		if (d->removed || was == NULL || !was->removed)
			continue;
		if (res->relived++ == 0)
			memcpy(res->relived_name, d->name,
			    sizeof(res->relived_name));
	}
}

/*
 * How many records of cur the recovery keeps: p->keep; else those of
 * the log its owner last wrote (pub_path), when cur extends it; else all.
 */
static int
recover_keep(const struct revoke_params *p, const struct idlog *cur,
    const char *pub_path, size_t *keep, struct smimp_err *err)
{
	struct idlog_follow how;
	struct smimp_err ignored;
	struct idlog mine;

	*keep = cur->n;
	if (p->keep != 0) {
		if (p->keep > cur->n)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "--keep %zu: "
			    "the log of %s has %zu records", p->keep,
			    cur->address, cur->n);
		*keep = p->keep;
	} else if (p->publish && access(pub_path, F_OK) == 0 &&
	    idlog_read_file(&mine, pub_path, &ignored) == 0) {
		if (idlog_check_follows(cur, &mine, &how, &ignored) == 0 &&
		    !how.recovery)
			*keep = mine.n;
		idlog_release(&mine);
	}
	if (*keep == cur->n && cur->revoked)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the log of %s ends "
		    "in a revocation: say with --keep N how many of its %zu "
		    "records to keep", cur->address, cur->n);
	return 0;
}

/*
 * The new key: from the old key file at key_path when there is one, so
 * that its encryption secrets stay to open older messages; else new.
 */
static int
recover_key(const struct revoke_params *p, const char *address,
    const char *key_path, struct secret_key *sk, char **pass,
    size_t *pass_len, struct smimp_err *err)
{
	char why[SMIMP_ERR_MSG];

	if (access(key_path, F_OK) != 0)
		return secret_key_generate(sk, address, err);
	if (secret_key_load_keep(sk, key_path, p->src, pass, pass_len,
	    err) != 0) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, err->code, "%.150s (the old key, "
		    "whose encryption secrets the new one keeps; move it away "
		    "or choose another -o PREFIX)", why);
	}
	if (sk->is_device) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the key of the "
		    "device %s of %s, not an identity key", key_path,
		    sk->device, sk->address);
		goto fail;
	}
	if (sk->is_recovery || strcmp(sk->address, address) != 0) {
		smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' is not a key of %s",
		    key_path, address);
		goto fail;
	}
	if (secret_key_new_identity(sk, err) != 0 ||
	    secret_key_new_encryption(sk, err) != 0)
		goto fail;
	return 0;
fail:
	secret_key_release(sk);
	passphrase_free(*pass, *pass_len);
	*pass = NULL;
	*pass_len = 0;
	return -1;
}

static int
recover_run(const struct revoke_params *p, struct revoke_result *res,
    struct smimp_err *err)
{
	struct secret_key rk, sk;
	struct idlog_follow how;
	struct idlog cur, log;
	struct idrec_new rec;
	struct change c;
	char *pass = NULL, *old_pass = NULL, signer[ADDRESS_MAX + 16];
	char addr[ADDRESS_MAX + 1];
	size_t pass_len = 0, old_pass_len = 0, keep;
	int ret = -1, have_sk = 0, have_cur = 0, have_log = 0;

	if (secret_key_load_keep(&rk, p->recovery_path, p->src, &pass,
	    &pass_len, err) != 0)
		return -1;
	if (!rk.is_recovery) {
		smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' is not a recovery "
		    "key", p->recovery_path);
		goto out;
	}
	if (p->address != NULL && (address_normalize(p->address, addr,
	    err) != 0 || strcmp(addr, rk.address) != 0)) {
		if (err->code != SMIMP_EXIT_USAGE)
			smimp_err_set(err, SMIMP_EXIT_USAGE, "'%s' is the "
			    "recovery key of %s, not %s", p->recovery_path,
			    rk.address, p->address);
		goto out;
	}
	(void)snprintf(res->address, sizeof(res->address), "%s", rk.address);
	if (recover_path(p->prefix, "key", res->key_path,
	    sizeof(res->key_path), err) != 0 || recover_path(p->prefix, "pub",
	    res->pub_path, sizeof(res->pub_path), err) != 0)
		goto out;
	if (recover_current(p, &rk, res->pub_path, &cur, err) != 0)
		goto out;
	have_cur = 1;
	if (recover_keep(p, &cur, res->pub_path, &keep, err) != 0 ||
	    recover_key(p, rk.address, res->key_path, &sk, &old_pass,
	    &old_pass_len, err) != 0)
		goto out;
	have_sk = 1;
	memset(&rec, 0, sizeof(rec));
	rec.type = IDREC_RECOVER;
	rec.by_recovery = 1;
	rec.keep = keep;
	rec.date = time_now();
	rec.identity_key = sk.identity_public;
	rec.encryption_key = secret_key_encryption_public(&sk);
	if (rec.encryption_key == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot derive the new "
		    "encryption key");
		goto out;
	}
	if (idlog_copy(&log, &cur, err) != 0)
		goto out;
	have_log = 1;
	if (idlog_append(&log, &rec, rk.identity_secret, err) != 0 ||
	    idlog_check_follows(&log, &cur, &how, err) != 0)
		goto out;
	res->records = log.n;
	res->voided = how.voided;
	res->key_replaced = 1;
	relived_devices(&cur, &log, res);
	(void)snprintf(signer, sizeof(signer), "recovery:%s", rk.address);
	memset(&c, 0, sizeof(c));
	c.sk = &sk;
	c.key_path = res->key_path;
	c.pub_path = res->pub_path;
	/* Under the old key's passphrase, else the recovery key's. */
	c.pass = old_pass != NULL ? old_pass : pass;
	c.pass_len = old_pass != NULL ? old_pass_len : pass_len;
	c.log = &log;
	c.from = keep;
	c.signer = signer;
	c.secret = rk.identity_secret;
	c.speaker = &sk;
	ret = commit_change(p, &c, res, err);
out:
	if (have_log)
		idlog_release(&log);
	if (have_cur)
		idlog_release(&cur);
	if (have_sk)
		secret_key_release(&sk);
	passphrase_free(old_pass, old_pass_len);
	passphrase_free(pass, pass_len);
	secret_key_release(&rk);
	return ret;
}
