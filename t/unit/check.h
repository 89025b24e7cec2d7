/*
 * check.h - what the unit tools share: one line per check, "ok NAME"
 * or "FAIL NAME", counted, and a last line with the counts.  Included
 * by a tool's one .c file.
 */
#ifndef SMIMP_UNIT_CHECK_H
#define SMIMP_UNIT_CHECK_H

#include <stdio.h>

static int passed, failed;

static void
check(int ok, const char *name)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", name);
	if (ok)
		passed++;
	else
		failed++;
}

/* The last line; 0 when every check passed and there was one at least. */
static int
check_summary(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}

#endif
