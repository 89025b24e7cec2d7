#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "identity.h"
#include "banned.h"

static int
pub_path_for(const char *keypath, char *out, size_t cap)
{
	size_t len = strlen(keypath);
	int n;

	if (len > 4 && strcmp(keypath + len - 4, ".key") == 0)
		n = snprintf(out, cap, "%.*s.pub", (int)(len - 4), keypath);
	else
		n = snprintf(out, cap, "%s.pub", keypath);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
load(struct identity *id, const char *keypath,
    const struct passphrase_source *src, int need_log, char **pass,
    size_t *pass_len, struct smimp_err *err)
{
	char defpath[PATH_MAX];

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
	/*
	 * A device's key speaks for its identity only under the device's
	 * record and scope, which no command checks yet: refused as the
	 * identity key it is not.
	 */
	if (id->sk.is_device) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is the key of the "
		    "device %s of %s, not an identity key", keypath,
		    id->sk.device, id->sk.address);
		goto fail;
	}
	if (need_log == IDENTITY_LOG_NONE)
		return 0;
	if (access(id->pub_path, F_OK) != 0 && errno == ENOENT) {
		if (need_log == IDENTITY_LOG_IF_PRESENT)
			return 0;
		smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity log for the "
		    "key '%s': '%s' does not exist (the log is read beside "
		    "the key, as smimp-keygen wrote it)", keypath,
		    id->pub_path);
		goto fail;
	}
	/*
	 * Our own log is not verified again: it must name our identity key
	 * (checked below), and every recipient verifies it anyway.
	 */
	if (idlog_read_file_verified(&id->log, id->pub_path, err) != 0)
		goto fail;
	id->has_log = 1;
	if (strcmp(id->log.address, id->sk.address) != 0 ||
	    sodium_memcmp(id->log.identity_key, id->sk.identity_public,
	    32) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' does not belong to "
		    "the key '%s'", id->pub_path, keypath);
		goto fail;
	}
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
	return load(id, keypath, src, need_log, NULL, NULL, err);
}

int
identity_load_keep(struct identity *id, const char *keypath,
    const struct passphrase_source *src, char **pass, size_t *pass_len,
    struct smimp_err *err)
{
	return load(id, keypath, src, 1, pass, pass_len, err);
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
