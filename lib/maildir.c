/*
 * maildir.c - filing messages into a Maildir durably (see maildir.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "maildir.h"
#include "banned.h"

/* The folders beside the inbox, in Maildir++'s naming. */
#define OTHER_FOLDER		".Other"
#define SENT_FOLDER		".Sent"
/* Bytes of the content hash that names a message. */
#define CONTENT_NAME_BYTES	16

/*
 * One folder's tmp/, new/ and cur/, each the user's and writable by no
 * one else: another user who could write there could plant or swap
 * messages, or read them.
 */
static int
make_folder(const char *dir, struct smimp_err *err)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    subs[i]) >= sizeof(path))
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "Maildir path too long");
		if (mkdir_p(path, 0700, err) != 0 ||
		    dir_check_owned(path, err) != 0)
			return -1;
	}
	return dir_check_owned(dir, err);
}

int
maildir_make(const char *dir, struct smimp_err *err)
{
	char other[PATH_MAX], sent[PATH_MAX];

	if ((size_t)snprintf(other, sizeof(other), "%s/%s", dir,
	    OTHER_FOLDER) >= sizeof(other) ||
	    (size_t)snprintf(sent, sizeof(sent), "%s/%s", dir,
	    SENT_FOLDER) >= sizeof(sent))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "Maildir path too long");
	return make_folder(dir, err) != 0 || make_folder(other, err) != 0 ||
	    make_folder(sent, err) != 0 ? -1 : 0;
}

int
maildir_make_sealed(const char *dir, struct smimp_err *err)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
	    MAILDIR_SEALED) >= sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "Maildir path too long");
	return mkdir_p(path, 0700, err) != 0 ||
	    dir_check_owned(path, err) != 0 ? -1 : 0;
}

void
maildir_name(const unsigned char *data, size_t len,
    char name[MAILDIR_NAME_SIZE])
{
	unsigned char h[CONTENT_NAME_BYTES];
	char hex[2 * CONTENT_NAME_BYTES + 1];

	(void)crypto_generichash(h, sizeof(h), data, len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	(void)snprintf(name, MAILDIR_NAME_SIZE, "%s.smimp", hex);
}

void
maildir_mime_name(const char *name, char out[MAILDIR_NAME_SIZE])
{
	const char *dot = strrchr(name, '.');
	int stem = dot != NULL ? (int)(dot - name) : (int)strlen(name);

	(void)snprintf(out, MAILDIR_NAME_SIZE, "%.*s.eml", stem, name);
}

/* The path of name in new/ of folder; -1 if too long. */
static int
new_path(const char *dir, enum maildir_folder folder, const char *name,
    char *path, size_t cap)
{
	return (size_t)snprintf(path, cap, "%s%s/new/%s", dir,
	    folder == MAILDIR_INBOX ? "" : folder == MAILDIR_OTHER ?
	    "/" OTHER_FOLDER : "/" SENT_FOLDER, name) < cap ? 0 : -1;
}

int
maildir_has(const char *dir, const char *name)
{
	static const enum maildir_folder all[] = { MAILDIR_INBOX,
	    MAILDIR_OTHER, MAILDIR_SENT };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++)
		if (new_path(dir, all[i], name, path, sizeof(path)) == 0 &&
		    access(path, F_OK) == 0)
			return 1;
	return 0;
}

int
maildir_has_sealed(const char *dir, const char *name)
{
	char path[PATH_MAX];

	return (size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir,
	    MAILDIR_SEALED, name) < sizeof(path) && access(path, F_OK) == 0;
}

/* Is name, or name with a reader's flags after it, in the directory? */
static int
dir_holds(const char *path, const char *name)
{
	size_t n = strlen(name);
	struct dirent *e;
	DIR *d = opendir(path);
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL)
		found = strncmp(e->d_name, name, n) == 0 &&
		    strchr(":!;", e->d_name[n]) != NULL;
	closedir(d);
	return found;
}

int
maildir_find(const char *dir, const char *name)
{
	static const char *const folders[] = { "", "/" OTHER_FOLDER,
	    "/" SENT_FOLDER };
	char path[PATH_MAX];
	size_t i;

	if (maildir_has(dir, name))
		return 1;
	for (i = 0; i < 3; i++)
		if ((size_t)snprintf(path, sizeof(path), "%s%s/cur", dir,
		    folders[i]) < sizeof(path) && dir_holds(path, name))
			return 1;
	return 0;
}

int
maildir_create(const char *dir, const char *name, char *tmp, size_t cap,
    struct smimp_err *err)
{
	int fd;

	if ((size_t)snprintf(tmp, cap, "%s/tmp/%s", dir, name) >= cap)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	/*
	 * The name comes from the content: a file left in tmp/ by a fetch
	 * that was killed is this same message, and is simply made anew.
	 * Made exclusively, so nothing else can stand in for it.
	 */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot create '%s'",
		    tmp);
	return fd;
}

int
maildir_spool(const char *dir, const char *name,
    const unsigned char *data, size_t len, char *tmp, size_t cap,
    struct smimp_err *err)
{
	int fd = maildir_create(dir, name, tmp, cap, err);

	if (fd < 0)
		return -1;
	if (fd_write_all(fd, data, len) != 0 || fsync(fd) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write '%s'", tmp);
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	return fd;
}

/* Rename tmp to dst (what failed, saying what), then sync its directory. */
static int
move_into(const char *tmp, const char *dst, const char *what,
    struct smimp_err *err)
{
	if (rename(tmp, dst) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot %s '%s'", what,
		    dst);
		(void)unlink(tmp);
		return -1;
	}
	return fsync_parent_dir(dst, err);
}

int
maildir_file(const char *dir, enum maildir_folder folder, const char *name,
    const char *tmp, struct smimp_err *err)
{
	char dst[PATH_MAX];

	if (new_path(dir, folder, name, dst, sizeof(dst)) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return move_into(tmp, dst, "file", err);
}

int
maildir_keep_sealed(const char *dir, const char *name, const char *tmp,
    struct smimp_err *err)
{
	char dst[PATH_MAX];

	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s/%s", dir,
	    MAILDIR_SEALED, name) >= sizeof(dst))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return move_into(tmp, dst, "keep", err);
}
