#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "identity.h"
#include "util.h"
#include "banned.h"

static int
pub_path_for(const char *keypath, char *out, size_t cap)
{
	return key_path_beside(keypath, "pub", out, cap);
}

/* What a device of that scope may do (doc/PROTOCOL.md, "Devices"). */
static int
scope_allows(enum iddev_scope scope, enum identity_act act)
{
	switch (act) {
	case IDACT_LOOKUP:
		return 1;
	case IDACT_SEAL:
	case IDACT_SEND:
		return iddev_scope_sends(scope);
	case IDACT_FETCH:
	case IDACT_OPEN:
		return iddev_scope_receives(scope);
	default:
		return 0;
	}
}

static const char *
act_verb(enum identity_act act)
{
	switch (act) {
	case IDACT_SEAL: return "seal";
	case IDACT_SEND: return "send";
	case IDACT_FETCH: return "fetch";
	case IDACT_OPEN: return "open";
	case IDACT_LOOKUP: return "look up";
	default: return "change the log";
	}
}

/* The device id's key is in log, live or removed, checked: or -1. */
static const struct iddevice *
device_in(const struct identity *id, const struct idlog *log,
    struct smimp_err *err)
{
	const struct secret_key *sk = &id->sk;
	const struct iddevice *d;
	char when[TIME_STRLEN];

	d = idlog_device_by_key(log, sk->identity_public);
	if (d == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the key of no "
		    "device in the identity log of %s: enroll it "
		    "(smimp-revoke --add-device where the identity key is), "
		    "then run smimp-fetch -i '%s'", id->key_path, log->address,
		    id->key_path);
		return NULL;
	}
	if (d->removed) {
		time_format(d->removed_at, when);
		smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the device %s of %s "
		    "was removed on %s: '%s' speaks for it no more", d->name,
		    log->address, when, id->key_path);
		return NULL;
	}
	/* A key file under another name, or with another encryption key. */
	if (strcmp(d->name, sk->device) != 0 || !sk->has_encryption_public ||
	    sodium_memcmp(d->encryption_key, sk->encryption_public, 32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' (the device %s of %s) "
		    "does not match the device %s its log names with its "
		    "signing key", id->key_path, sk->device, sk->address,
		    d->name);
		return NULL;
	}
	return d;
}

int
identity_may(const struct identity *id, const struct idlog *log,
    enum identity_act act, struct smimp_err *err)
{
	const struct secret_key *sk = &id->sk;
	const struct iddevice *d;

	if (!sk->is_device)
		return 0;
	if (act == IDACT_IDENTITY)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the key of "
		    "the device %s of %s, not an identity key", id->key_path,
		    sk->device, sk->address);
	if (log == NULL && id->has_log)
		log = &id->log;
	if (log == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity log "
		    "beside the device key '%s': '%s' does not exist (run "
		    "smimp-fetch -i '%s' to get it)", id->key_path,
		    id->pub_path, id->key_path);
	if (log->revoked)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s is revoked, with all its devices", log->address);
	d = device_in(id, log, err);
	if (d == NULL)
		return -1;
	if (!scope_allows(d->scope, act))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the key of "
		    "the device %s of %s, whose scope is %s: it cannot %s",
		    id->key_path, d->name, log->address,
		    iddev_scope_name(d->scope), act_verb(act));
	return 0;
}

void
identity_signer(const struct identity *id, struct signer *s)
{
	/* An identity put together by hand (a new one) has no signer set. */
	signer_secret(s, id->signer[0] != '\0' ? id->signer : id->sk.address,
	    id->sk.identity_secret);
}

/*
 * The log beside the key: an identity's must name its identity key, a
 * device's its address (whether it names the device is identity_may's
 * question).  Our own log is not verified again: every recipient
 * verifies it anyway, and a device checked it when it fetched it.
 */
static int
read_own_log(struct identity *id, const char *keypath, struct smimp_err *err)
{
	if (idlog_read_file_verified(&id->log, id->pub_path, err) != 0)
		return -1;
	id->has_log = 1;
	if (strcmp(id->log.address, id->sk.address) != 0 ||
	    (!id->sk.is_device && sodium_memcmp(id->log.identity_key,
	    id->sk.identity_public, 32) != 0))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' does not "
		    "belong to the key '%s'", id->pub_path, keypath);
	return 0;
}

/* A device's key for act: its log, and what the log lets it do. */
static int
load_device(struct identity *id, enum identity_act act, int present,
    struct smimp_err *err)
{
	int n;

	n = snprintf(id->signer, sizeof(id->signer), "device:%s:%s",
	    id->sk.device, id->sk.address);
	if (n < 0 || (size_t)n >= sizeof(id->signer))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "signer too long");
	if (secret_key_encryption_public(&id->sk) == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot derive the "
		    "encryption key of '%s'", id->key_path);
	if (present && read_own_log(id, id->key_path, err) != 0)
		return -1;
	/* fetch refreshes the log first; a lookup needs none. */
	if (act == IDACT_FETCH || act == IDACT_LOOKUP)
		return 0;
	return identity_may(id, NULL, act, err);
}

static int
load(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, enum identity_act act,
    char **pass, size_t *pass_len, struct smimp_err *err)
{
	char defpath[PATH_MAX];
	int present;

	memset(id, 0, sizeof(*id));
	if (keypath == NULL) {
		if (default_identity_path(defpath, sizeof(defpath), "key",
		    err) != 0)
			return -1;
		if (access(defpath, F_OK) != 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "no identity: '%s' does not exist (run "
			    "smimp-keygen, or name a key with -i)", defpath);
		keypath = defpath;
	}
	if ((size_t)snprintf(id->key_path, sizeof(id->key_path), "%s",
	    keypath) >= sizeof(id->key_path) ||
	    pub_path_for(keypath, id->pub_path, sizeof(id->pub_path)) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if ((pass != NULL ? secret_key_load_keep(&id->sk, keypath, src, pass,
	    pass_len, err) : secret_key_load(&id->sk, keypath, src, err)) != 0)
		return -1;
	if (id->sk.is_recovery) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is a recovery key, "
		    "not an identity key", keypath);
		goto fail;
	}
	present = !(access(id->pub_path, F_OK) != 0 && errno == ENOENT);
	/* A device speaks for its identity only as its record says. */
	if (id->sk.is_device) {
		if ((act == IDACT_IDENTITY ? identity_may(id, NULL, act, err) :
		    load_device(id, act, present, err)) != 0)
			goto fail;
		return 0;
	}
	(void)snprintf(id->signer, sizeof(id->signer), "%s", id->sk.address);
	if (need_log == IDENTITY_LOG_NONE)
		return 0;
	if (!present) {
		if (need_log == IDENTITY_LOG_IF_PRESENT)
			return 0;
		smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity log for the "
		    "key '%s': '%s' does not exist (the log is read beside "
		    "the key, as smimp-keygen wrote it)", keypath,
		    id->pub_path);
		goto fail;
	}
	if (read_own_log(id, keypath, err) != 0)
		goto fail;
	return 0;
fail:
	identity_release(id);
	if (pass != NULL) {
		passphrase_free(*pass, *pass_len);
		*pass = NULL;
	}
	return -1;
}

int
identity_load(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, struct smimp_err *err)
{
	return load(id, keypath, src, need_log, IDACT_IDENTITY, NULL, NULL,
	    err);
}

int
identity_load_for(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, enum identity_act act,
    struct smimp_err *err)
{
	return load(id, keypath, src, need_log, act, NULL, NULL, err);
}

int
identity_load_keep(struct identity *id, const char *keypath,
    const struct passphrase_source *src, char **pass, size_t *pass_len,
    struct smimp_err *err)
{
	return load(id, keypath, src, 1, IDACT_IDENTITY, pass, pass_len, err);
}

int
identity_pub_path(const char *keypath, char *out, size_t cap,
    struct smimp_err *err)
{
	if (keypath == NULL)
		return default_identity_path(out, cap, "pub", err);
	if (pub_path_for(keypath, out, cap) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return 0;
}

void
identity_release(struct identity *id)
{
	secret_key_release(&id->sk);
	if (id->has_log)
		idlog_release(&id->log);
	memset(id, 0, sizeof(*id));
}

void
recipient_from_log(struct msg_recipient *r, const struct idlog *log)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->address, log->address, sizeof(r->address));
	memcpy(r->fingerprint, log->fingerprint, FINGERPRINT_SIZE);
	memcpy(r->encryption_key, log->encryption_key, 32);
	r->ndevice_keys = idlog_receiving_keys(log, r->device_keys);
}

/*
 * A file only when written as one: whatever sits in the current
 * directory under an address's name (a shared directory, a cloned
 * repository) must never stand in for the key pinned for it.
 */
int
recipient_is_file(const char *arg)
{
	size_t len = strlen(arg);

	return strchr(arg, '/') != NULL ||
	    (len > 4 && strcmp(arg + len - 4, ".pub") == 0);
}

int
recipient_resolve(const char *arg, int as_file, const struct trust_store *ts,
    struct msg_recipient *r, struct smimp_err *err)
{
	const struct idlog *pinned, *use;
	char addr[ADDRESS_MAX + 1];
	struct idlog log;
	int ret;

	if (as_file || recipient_is_file(arg)) {
		if (idlog_read_file(&log, arg, err) != 0)
			return -1;
		ret = trust_recipient_log(ts, &log, arg, &use, err);
		if (ret == 0)
			recipient_from_log(r, use);
		idlog_release(&log);
		return ret;
	}
	if (address_normalize(arg, addr, err) != 0 ||
	    trust_recipient(ts, addr, &pinned, err) != 0)
		return -1;
	recipient_from_log(r, pinned);
	return 0;
}
