/*
 * revoke.h - the work of smimp-revoke: one's own identity log extended
 * by a rotation of the identity key, a new encryption key, a
 * revocation, or a device added or removed; the key file and the log
 * beside it replaced; the new records published to the home server,
 * signed by the identity key the server knows now.
 *
 * Order, so that a failure at any step leaves a usable identity: the
 * new key file and log are written beside the old ones and synced, the
 * records are published, and only then are the new files renamed into
 * place.  A publication that fails changes nothing locally.
 *
 * With notify, the contacts in the trust store are sent an identity
 * notice (notice.h) signed by the key in force after the change: after
 * the change is published and in place, since servers refuse a key
 * they do not know yet; but before a revocation is published, since
 * servers refuse everything of a revoked identity.  A notice that
 * fails undoes nothing.
 */
#ifndef SMIMP_REVOKE_H
#define SMIMP_REVOKE_H

#include <limits.h>

#include "address.h"
#include "enroll.h"
#include "err.h"
#include "keys.h"
#include "notice.h"
#include "remote.h"

enum revoke_kind {
	REVOKE_ROTATE,		/* new identity and encryption keys */
	REVOKE_ENCRYPTION,	/* a new encryption key */
	REVOKE_REVOKE,		/* the identity is revoked for good */
	REVOKE_RECOVER,		/* a new identity key, by the recovery key */
	REVOKE_ADD_DEVICE,	/* a device-add for an enrollment request */
	REVOKE_REMOVE_DEVICE	/* a device-remove */
};

struct revoke_params {
	enum revoke_kind kind;
	const char *keypath;		/* NULL: the default identity */
	const struct passphrase_source *src;
	const char *reason;		/* REVOKE_REVOKE */
	/*
	 * REVOKE_ADD_DEVICE: the request, checked (revoke_device_request)
	 * and its code compared, and the scope to give the device.
	 * REVOKE_REMOVE_DEVICE: the device's name.
	 */
	const struct enroll_request *request;
	enum iddev_scope scope;
	const char *device;
	/*
	 * REVOKE_RECOVER: the recovery key file; the address it must be
	 * for, or NULL; where the new key and log go (PREFIX.key,
	 * PREFIX.pub; NULL: the default identity); how many records of the
	 * log to keep (0: those of the log at PREFIX.pub, the last its
	 * owner wrote, else all).
	 */
	const char *recovery_path;
	const char *address;
	const char *prefix;
	size_t keep;
	int publish;			/* to the home server */
	const struct remote_opts *remote;	/* with publish */
	/* Also write the new log here ("-": standard output), or NULL. */
	const char *write_log;
	int notify;			/* notice.h; with publish */
};

struct revoke_result {
	char address[ADDRESS_MAX + 1];
	char key_path[PATH_MAX];
	char pub_path[PATH_MAX];
	size_t records;			/* in the new log */
	size_t voided;			/* records a recovery cut back */
	char device[IDDEV_NAME_MAX + 1];	/* added or removed */
	int key_replaced;		/* the key file changed */
	/*
	 * A recovery's devices whose removal it cut back: live again,
	 * though a removed device may have been stolen.  How many, and
	 * the first one's name.
	 */
	size_t relived;
	char relived_name[IDDEV_NAME_MAX + 1];
	int published;
	/*
	 * With notify: what became of each notice (notice_report_release);
	 * notice_err, when its code is not 0, why none could be sent after
	 * the change was made.
	 */
	struct notice_report notices;
	struct smimp_err notice_err;
};

/*
 * Extend the identity at p->keypath as p->kind says; for REVOKE_RECOVER,
 * the identity whose recovery key is p->recovery_path, with its log
 * taken from the home server (or PREFIX.pub without publish).  Fails with
 * SMIMP_EXIT_KEYCHANGED for an identity already revoked, or when the
 * home server's log has records this one lacks; SMIMP_EXIT_TEMPFAIL when
 * the home server could not be reached (nothing changed).
 */
int revoke_run(const struct revoke_params *p, struct revoke_result *res,
    struct smimp_err *err);

/*
 * Read the enrollment request at path and check it against the log
 * beside the identity key at keypath (NULL: the default identity),
 * before the key is read or the code asked for: its signature
 * (SMIMP_EXIT_BADMSG), that it is in force at now (BADMSG), that it is
 * for the identity's address (BADMSG), that its keys were never a
 * device's (BADMSG), and that its name is free and there is room
 * (SMIMP_EXIT_FAIL).  SMIMP_EXIT_KEYCHANGED for a revoked identity.
 * revoke_run checks all of it again under the log it extends.
 */
int revoke_device_request(const char *keypath, const char *path,
    int64_t now, struct enroll_request *req, struct smimp_err *err);

#endif
