/*
 * options.h - what getopt_long refused on a command line, as one line.
 *
 * Every command parses with opterr set to 0, so that getopt_long prints
 * nothing; on its '?' the command prints this line, with a pointer to
 * --help, and exits 2.  One line, not getopt's line and then the whole
 * usage: a script's log shows what was wrong, and nothing else.
 */
#ifndef SMIMP_OPTIONS_H
#define SMIMP_OPTIONS_H

#include <getopt.h>
#include <stddef.h>

/*
 * Into buf (at most size bytes, NUL-terminated): "unknown option
 * '--foo'", "option '--re' is ambiguous", "option '-i' needs an
 * argument" or "option '--help' takes no argument", for the '?' that
 * getopt_long just returned on argv with optstring and longopts.
 */
void option_refused(char *buf, size_t size, char *const argv[],
    const char *optstring, const struct option *longopts);

#endif
