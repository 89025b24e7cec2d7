/*
 * proc.h - the state a command's process starts in, made safe before it
 * opens a file.  Commands call this first thing (cmd/cmd.h cmd_start).
 */
#ifndef SMIMP_PROC_H
#define SMIMP_PROC_H

#include "err.h"

/*
 * Make descriptors 0, 1 and 2 valid, opening /dev/null on each one that
 * is closed.  Otherwise the first file a command opens becomes standard
 * output or standard error, and a message meant for the user lands in
 * it (`smimp-open -o OUT <m.age 2>&-` wrote its sender line into OUT).
 */
int proc_std_fds(struct smimp_err *err);

#endif
