/*
 * proc.h - the state a command's process starts in, made safe before it
 * opens a file or holds a secret.  Commands call these first thing
 * (cmd/cmd.h cmd_start).
 */
#ifndef SMIMP_PROC_H
#define SMIMP_PROC_H

#include "err.h"

/*
 * Make descriptors 0, 1 and 2 valid, opening /dev/null on each one that
 * is closed.  Otherwise the first file a command opens becomes standard
 * output or standard error, and a message meant for the user lands in
 * it (`smimp-open -o OUT <m.age 2>&-` wrote its sender line into OUT).
 * Each is opened the wrong way round (0 for writing, 1 and 2 for
 * reading), so that using it still fails as on a closed descriptor.
 */
int proc_std_fds(struct smimp_err *err);

/*
 * No core dump, and no ptrace or /proc/PID/mem for other processes of
 * the same user: a dump would write secret keys, passphrases and
 * plaintext to disk.  Sets RLIMIT_CORE to 0 and, on Linux,
 * PR_SET_DUMPABLE to 0.
 */
int proc_no_core(struct smimp_err *err);

#endif
