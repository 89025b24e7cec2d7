/*
 * smimp - the front door: `smimp CMD ARGS` runs smimp-CMD, looked up
 * beside this program first, then on PATH, like git.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "banned.h"

static const char *const commands[] = {
	"keygen", "seal", "open", "send", "fetch", "trust", "revoke", NULL
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: smimp COMMAND [ARGS...]\n       smimp --version\n"
	    "commands:");
	for (i = 0; commands[i] != NULL; i++)
		fprintf(f, " %s", commands[i]);
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

int
main(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX], name[80];
	const char *cmd;
	ssize_t n;
	char *slash;

	progname = "smimp";
	if (argc < 2)
		return usage(stderr), SMIMP_EXIT_USAGE;
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
		return usage(stdout), SMIMP_EXIT_OK;
	if (strcmp(cmd, "--version") == 0)
		return print_version();
	if (strcmp(cmd, "help") == 0) {
		static char help_opt[] = "--help";

		if (argc < 3)
			return usage(stdout), SMIMP_EXIT_OK;
		/* smimp help CMD runs smimp-CMD --help. */
		cmd = argv[2];
		argv[2] = help_opt;
		argv[3 < argc ? 3 : argc] = NULL;
	}
	if (!valid_command(cmd))
		return usage_error("'%s' is not a command", cmd);
	(void)snprintf(name, sizeof(name), "smimp-%s", cmd);
	argv[1] = name;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", self,
			    name) < sizeof(path) && access(path, X_OK) == 0) {
				execv(path, argv + 1);
				warnx_("cannot run '%s': %s", path,
				    strerror(errno));
				return SMIMP_EXIT_FAIL;
			}
		}
	}
	execvp(name, argv + 1);
	if (errno == ENOENT)
		return usage_error("'%s' is not a command", cmd);
	warnx_("cannot run '%s': %s", name, strerror(errno));
	return SMIMP_EXIT_FAIL;
}
