/*
 * exitcode.h - the exit statuses of every smimp command, defined once.
 * A forgery never shares a code with a typo.
 */
#ifndef SMIMP_EXITCODE_H
#define SMIMP_EXITCODE_H

#define SMIMP_EXIT_OK		0	/* success */
#define SMIMP_EXIT_FAIL		1	/* any other failure */
#define SMIMP_EXIT_USAGE	2	/* bad command line */
#define SMIMP_EXIT_BADMSG	3	/* cannot decrypt, malformed, bad signature */
#define SMIMP_EXIT_UNTRUSTED	4	/* verified, sender unknown or blocked */
#define SMIMP_EXIT_KEYCHANGED	5	/* key revoked or not the pinned one */
#define SMIMP_EXIT_WORK		6	/* the proof of work a recipient
					   requires takes longer than allowed */
#define SMIMP_EXIT_TEMPFAIL	75	/* temporary failure, try again later */

#endif
