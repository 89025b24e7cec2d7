/*
 * store_common.c - what every back end of the store does alike: the
 * checks of what callers hand in, random mailbox ids, inline bodies as
 * file descriptors, the lock on a store's local directory, and the
 * arithmetic of the consent counters (store_backend.h).
 */
/* memfd_create(2): an inline body is read back through a file descriptor */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "store_backend.h"
#include "util.h"
#include "banned.h"

#define ID_MAX		((INT64_C(1) << 53) - 1)

int
store_log_check(const struct store_log *log, struct smimp_err *err)
{
	size_t i, n;
	int bad;

	bad = log == NULL || log->raw == NULL || log->len == 0 ||
	    log->len > INT_MAX || log->ndevices > STORE_DEVICES_MAX ||
	    (log->ndevices > 0 && log->devices == NULL);
	for (i = 0; !bad && i < log->ndevices; i++) {
		n = log->devices[i].name != NULL ?
		    strlen(log->devices[i].name) : 0;
		bad = n == 0 || n > STORE_DEVICE_NAME_MAX;
	}
	return bad ? smimp_err_set(err, SMIMP_EXIT_FAIL, "store: an identity "
	    "too large, or a device without a name or with too long a "
	    "one") : 0;
}

int
store_log_names(const struct store_log *log, const char *name,
    const void *key, size_t keylen)
{
	size_t i;

	for (i = 0; i < log->ndevices; i++)
		if (strcmp(log->devices[i].name, name) == 0 && keylen == 32 &&
		    memcmp(log->devices[i].key, key, 32) == 0)
			return 1;
	return 0;
}

void
store_gone_note(struct store_gone_devices *g, const struct store_log *log,
    const char *name, const void *key, size_t keylen)
{
	if (name == NULL || store_log_names(log, name, key, keylen))
		return;
	if (g->n < STORE_DEVICES_MAX)
		(void)snprintf(g->name[g->n++], sizeof(g->name[0]), "%s", name);
	else
		g->over++;
}

int
store_gone_check(const struct store_gone_devices *g, const char *address,
    struct smimp_err *err)
{
	return g->over > 0 ? smimp_err_set(err, SMIMP_EXIT_FAIL, "store: more "
	    "devices stored for %s than there may be", address) : 0;
}

const char *
store_domain_of(const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (at != NULL)
		return at + 1;
	return strncmp(sender, "server:", 7) == 0 ? sender + 7 : sender;
}

int64_t
store_random_id(void)
{
	uint64_t v;

	do {
		randombytes_buf(&v, sizeof(v));
		v &= (uint64_t)ID_MAX;
	} while (v == 0);
	return (int64_t)v;
}

void
store_committed(struct store *st, int64_t started)
{
	if (st->commit_fn != NULL)
		st->commit_fn(st->commit_arg, time_mono_us() - started);
}

void
store_outbounds_release(struct outbound *obs, size_t *n)
{
	while (*n > 0)
		outbound_release(&obs[--*n]);
}

int
store_stopped(struct smimp_err *err)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "listing stopped");
}

int
store_too_long(const char *s, size_t cap)
{
	return s == NULL || strlen(s) >= cap;
}

const char *
store_device_key(const char *device)
{
	return device != NULL ? device : "";
}

const char *
store_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

int
store_delivery_check(const struct store_delivery *d, struct smimp_err *err)
{
	if (store_too_long(d->recipient, ADDRESS_MAX + 1) ||
	    store_too_long(d->sender,
	    sizeof(((struct mailbox_entry *)0)->sender)) ||
	    store_too_long(d->message_id,
	    sizeof(((struct mailbox_entry *)0)->message_id)) ||
	    d->body == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a delivery "
		    "with a missing or over-long field");
	return 0;
}

int
store_deliver_check(const struct store_nonce *nonce,
    const struct store_delivery *d, size_t n, int *results,
    struct smimp_err *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		results[i] = STORE_ERROR;
		if (store_delivery_check(&d[i], err) != 0)
			return -1;
	}
	if (nonce != NULL && (nonce->signer == NULL || nonce->nonce == NULL ||
	    store_too_long(nonce->signer, ADDRESS_MAX + 8)))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a nonce "
		    "without its signer");
	return 0;
}

int
store_submission_check(const struct store_submission *sub,
    struct smimp_err *err)
{
	const struct outbound *ob = NULL;
	size_t i;
	int bad;

	bad = store_too_long(sub->signer, ADDRESS_MAX + 8) ||
	    sub->nonce == NULL ||
	    store_too_long(sub->sender, sizeof(ob->sender)) ||
	    store_too_long(sub->message_id, sizeof(ob->message_id)) ||
	    sub->body == NULL || (sub->nobs > 0 && (sub->all == NULL ||
	    store_too_long(sub->stamp, sizeof(ob->stamp)) ||
	    store_too_long(sub->stamp_date, sizeof(ob->stamp_date)) ||
	    (sub->stamp_device != NULL && store_too_long(sub->stamp_device,
	    sizeof(ob->stamp_device)))));
	for (i = 0; i < sub->nobs && !bad; i++)
		bad = store_too_long(sub->obs[i].domain, sizeof(ob->domain)) ||
		    sub->obs[i].recipients == NULL ||
		    (sub->obs[i].stamp != NULL &&
		    store_too_long(sub->obs[i].stamp, sizeof(ob->stamp)));
	for (i = 0; i < sub->nlocal && !bad; i++)
		bad = store_too_long(sub->local[i], ADDRESS_MAX + 1);
	if (!bad && sub->device != NULL)
		bad = store_too_long(sub->device, STORE_DEVICE_NAME_MAX + 1);
	return bad ? smimp_err_set(err, SMIMP_EXIT_FAIL, "store: a "
	    "submission with a missing or over-long field") : 0;
}

int
store_blob_fd(const void *data, size_t len, int *fd, uint64_t *outlen,
    struct smimp_err *err)
{
	int f;

	f = memfd_create("smimp-body", MFD_CLOEXEC);
	if (f < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make a "
		    "file in memory for a body");
	if ((len > 0 && fd_write_all(f, data, len) != 0) ||
	    lseek(f, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write a body "
		    "into memory");
		(void)close(f);
		return STORE_ERROR;
	}
	*fd = f;
	*outlen = len;
	return STORE_OK;
}

int
store_dir_empty(const char *path, int (*keep)(void *, const char *),
    void *arg, struct smimp_err *err)
{
	struct dirent *de;
	DIR *d;

	d = opendir(path);
	if (d == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read '%s'",
		    path);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (keep != NULL && keep(arg, de->d_name))
			continue;
		/* One that will not go is tried again at the next open. */
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	(void)closedir(d);
	return 0;
}

int
store_lock_shared(int fd, const char *path, struct smimp_err *err)
{
	while (flock(fd, LOCK_SH) != 0)
		if (errno != EINTR)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot lock "
			    "'%s'", path);
	return 0;
}

/*
 * DIR is the user's (or root's) and writable by no one else: another
 * user could swap the store, the server key or a body in it.  Root, who
 * runs the commands on the directory of the user smimpd runs as, may
 * use another user's.
 */
static int
dir_trusted(const char *dir, struct smimp_err *err)
{
	struct stat sb;

	if (stat(dir, &sb) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'",
		    dir);
	if (geteuid() != 0 && sb.st_uid != geteuid() && sb.st_uid != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' belongs to "
		    "uid %u, not to this user: refusing to use it", dir,
		    (unsigned)sb.st_uid);
	if ((sb.st_mode & 022) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is writable "
		    "by group or others (mode %03o); run chmod go-w '%s'",
		    dir, (unsigned)(sb.st_mode & 0777), dir);
	return 0;
}

int
store_give(const char *dir, const char *path, struct smimp_err *err)
{
	struct stat sb;

	if (geteuid() != 0)
		return 0;
	if (stat(dir, &sb) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot stat '%s'",
		    dir);
	if (sb.st_uid != 0 && lchown(path, sb.st_uid, sb.st_gid) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot give '%s' "
		    "to uid %u", path, (unsigned)sb.st_uid);
	return 0;
}

int
store_lock_dir(const char *dir, int *fd, struct smimp_err *err)
{
	char path[PATH_MAX];

	*fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/smimpd.lock", dir) >=
	    sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "store: path too "
		    "long");
	if (dir_trusted(dir, err) != 0)
		return -1;
	*fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot open '%s'",
		    path);
	if (store_give(dir, path, err) != 0)
		return -1;
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 1;
	if (errno != EWOULDBLOCK)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot lock '%s'",
		    path);
	return store_lock_shared(*fd, path, err);
}

int
store_consent_domain_step(const struct store_consent_count *c, int64_t now,
    int64_t *count, int64_t *until, unsigned int *retry)
{
	int64_t hour = now / STORE_HOUR_S;

	if (*until > now) {
		*retry = (unsigned int)(*until - now);
		return 0;
	}
	(*count)++;
	if (*count > (int64_t)c->domain_cap)
		*retry = (unsigned int)((hour + 1) * STORE_HOUR_S - now);
	if (*count > 2 * (int64_t)c->domain_cap) {
		*until = now + c->ignore_secs;
		*retry = c->ignore_secs;
		*count = 0;
	}
	return 1;
}

int
store_prekey_batch_verdict(const struct store_prekey_batch *b, int has_last,
    int64_t last, size_t count)
{
	if (has_last && last > b->date)
		return STORE_EXISTS;
	if (count + b->n > b->max)
		return STORE_QUOTA;
	return STORE_OK;
}

char *
store_body_text(const struct store_body *b)
{
	char *t = malloc(b->data != NULL ? b->len + 1 : 1);

	if (t == NULL)
		return NULL;
	if (b->data != NULL && b->len > 0)
		memcpy(t, b->data, b->len);
	t[b->data != NULL ? b->len : 0] = '\0';
	return t;
}
