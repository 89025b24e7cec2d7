/*
 * smimp - the front door: `smimp CMD ARGS` runs smimp-CMD, looked up
 * beside this program first, then on PATH, like git.  The usage lists
 * the commands that lookup finds, so that it never offers one that is
 * not there (an installation may leave commands out).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "banned.h"

/* The commands of smimp, in the order the usage shows them. */
static const char *const commands[] = {
	"keygen", "seal", "open", "send", "sendmail", "fetch", "trust",
	"revoke", NULL
};

/* An executable file, not a directory of that name. */
static int
runnable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/*
 * Where smimp-CMD (name) is: beside this program, else in a directory
 * of PATH (an empty entry is the current directory, as for execvp).
 * 0 with its path, or -1.
 */
static int
find_command(const char *name, char *path, size_t cap)
{
	char self[PATH_MAX];
	const char *p, *end;
	char *slash;
	ssize_t n;
	size_t len;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(path, cap, "%s/%s", self, name) <
			    cap && runnable(path))
				return 0;
		}
	}
	for (p = getenv("PATH"); p != NULL; p = *end != '\0' ? end + 1 :
	    NULL) {
		end = p + strcspn(p, ":");
		len = (size_t)(end - p);
		if (len == 0 && (size_t)snprintf(path, cap, "%s", name) < cap &&
		    runnable(path))
			return 0;
		if (len > 0 && (size_t)snprintf(path, cap, "%.*s/%s", (int)len,
		    p, name) < cap && runnable(path))
			return 0;
	}
	return -1;
}

static void
usage(FILE *f)
{
	char name[80], path[PATH_MAX];
	size_t i;

	fprintf(f, "usage: smimp COMMAND [ARGS...]\n       smimp --version\n"
	    "commands:");
	for (i = 0; commands[i] != NULL; i++) {
		(void)snprintf(name, sizeof(name), "smimp-%s", commands[i]);
		if (find_command(name, path, sizeof(path)) == 0)
			fprintf(f, " %s", commands[i]);
	}
	fprintf(f, "\n'smimp help COMMAND' shows a command's help\n");
}

static int
valid_command(const char *cmd)
{
	size_t i;

	for (i = 0; cmd[i] != '\0'; i++)
		if (!((cmd[i] >= 'a' && cmd[i] <= 'z') || cmd[i] == '-'))
			return 0;
	return i > 0 && i < 64;
}

static int
known_command(const char *cmd)
{
	size_t i;

	for (i = 0; commands[i] != NULL; i++)
		if (strcmp(commands[i], cmd) == 0)
			return 1;
	return 0;
}

static int
smimp_main(int argc, char **argv)
{
	enum { OPT_VERSION = 256 };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	/* Options before the command only: the rest are the command's. */
	static const char shortopts[] = "+h";
	char path[PATH_MAX], name[80];
	const char *cmd;
	int c;

	progname = "smimp";
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h': return usage(stdout), SMIMP_EXIT_OK;
		case OPT_VERSION: return print_version();
		default: return option_error(argv, shortopts, longopts);
		}
	}
	if (optind == argc)
		return usage_error("a command is needed");
	argv += optind;
	argc -= optind;
	cmd = argv[0];
	if (strcmp(cmd, "help") == 0) {
		static char help_opt[] = "--help";

		if (argc < 2)
			return usage(stdout), SMIMP_EXIT_OK;
		/* smimp help CMD runs smimp-CMD --help. */
		cmd = argv[1];
		argv[1] = help_opt;
		argv[2 < argc ? 2 : argc] = NULL;
	}
	if (!valid_command(cmd))
		return usage_error("'%s' is not a command", cmd);
	(void)snprintf(name, sizeof(name), "smimp-%s", cmd);
	argv[0] = name;
	if (find_command(name, path, sizeof(path)) != 0) {
		if (!known_command(cmd))
			return usage_error("'%s' is not a command", cmd);
		warnx_("'%s' is not installed: no %s beside smimp or on PATH",
		    cmd, name);
		return SMIMP_EXIT_USAGE;
	}
	execv(path, argv);
	warnx_("cannot run '%s': %s", path, strerror(errno));
	return SMIMP_EXIT_FAIL;
}

int
main(int argc, char **argv)
{
	return cmd_exit(smimp_main(argc, argv));
}
