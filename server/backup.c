/*
 * backup.c - smimpd backup DEST: a copy of the server's state, whole as
 * of one moment, taken while it serves, into a new directory that can
 * be served from as it is (--data DEST): the store (store_backup) and
 * the server key, whose loss would change the domain's key.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "exitcode.h"
#include "fileio.h"
#include "server.h"
#include "store.h"
#include "banned.h"

/* DATADIR/server.key, when there is one, copied to dest (synced). */
static int
copy_server_key(const char *datadir, const char *dest, int *copied,
    struct smimp_err *err)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat sb;
	int r;

	*copied = 0;
	if ((size_t)snprintf(from, sizeof(from), "%s/server.key", datadir) >=
	    sizeof(from) || (size_t)snprintf(to, sizeof(to), "%s/server.key",
	    dest) >= sizeof(to))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	if (lstat(from, &sb) != 0 && errno == ENOENT)
		return 0;	/* none yet: the server makes it */
	r = file_copy_new(from, to, err);
	if (r == 1)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' exists", to);
	*copied = r == 0;
	return r;
}

/* What a failed backup left in dest (made by us, new): removed. */
static void
remove_tree(const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *e;
	DIR *d;

	d = depth < 4 ? opendir(path) : NULL;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
		    e->d_name) >= sizeof(sub))
			continue;
		if (unlink(sub) != 0 && errno == EISDIR)
			remove_tree(sub, depth + 1);
	}
	if (d != NULL)
		(void)closedir(d);
	(void)rmdir(path);
}

int
backup_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	struct admin_args a;
	struct store *st;
	uint64_t bodies = 0;
	const char *dest;
	int r, key = 0;

	if (admin_args_parse("backup", args, nargs, ADMIN_JSON, 1, &a,
	    err) != 0)
		return -1;
	if (a.nwords != 1 || a.word[0][0] == '\0')
		return admin_usage(err, "backup: which directory? (smimpd "
		    "backup DEST)");
	dest = a.word[0];
	st = server_store_open(cfg, 0, err);
	if (st == NULL)
		return -1;
	/* A new directory: a backup never mixes with what was there. */
	if (mkdir(dest, 0700) != 0) {
		r = smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot make '%s'%s",
		    dest, errno == EEXIST ? " (a backup goes to a new "
		    "directory)" : "");
		store_close(st);
		return r;
	}
	r = store_backup(st, dest, &bodies, err);
	store_close(st);
	if (r == STORE_OK)
		r = copy_server_key(cfg->datadir, dest, &key, err) == 0 &&
		    fsync_parent_dir(dest, err) == 0 ? STORE_OK : STORE_ERROR;
	if (r != STORE_OK) {
		remove_tree(dest, 0);
		return -1;
	}
	if (a.flags & ADMIN_JSON)
		return admin_json_line(json_pack("{s:s,s:I,s:b}", "directory",
		    dest, "bodies", (json_int_t)bodies, "server_key", key), err);
	printf("backup in %s: the store, %llu message bod%s%s\n", dest,
	    (unsigned long long)bodies, bodies == 1 ? "y" : "ies",
	    key ? ", the server key" : " (no server key yet)");
	return 0;
}
