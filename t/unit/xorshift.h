/*
 * xorshift.h - a fixed generator for the unit tools that check many
 * cases: the same cases on every run, from the seed they start with.
 */
#ifndef SMIMP_UNIT_XORSHIFT_H
#define SMIMP_UNIT_XORSHIFT_H

#include <stdint.h>

/* xorshift64* of *state (never 0). */
static uint64_t
xorshift_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

#endif
