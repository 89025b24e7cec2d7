/* proc.c - a command's process made safe before it does anything else. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "exitcode.h"
#include "proc.h"
#include "banned.h"

int
proc_std_fds(struct smimp_err *err)
{
	int fd, got;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/*
		 * The lowest free descriptor: fd, as those below are open.
		 * Open the wrong way round, so that reading standard input
		 * or writing standard output still fails (EBADF), as on
		 * the closed descriptor: an empty message is not sealed
		 * from it, nor is one written into nothing with exit 0.
		 */
		got = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
		if (got < 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot open /dev/null for descriptor %d", fd);
		if (got != fd) {
			close(got);
			return smimp_err_set(err, SMIMP_EXIT_FAIL,
			    "cannot open /dev/null as descriptor %d", fd);
		}
	}
	return 0;
}

int
proc_no_core(struct smimp_err *err)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot disable core dumps");
#ifdef __linux__
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot disable core dumps");
#endif
	return 0;
}
