/*
 * vis.h - text that others wrote, made safe to show on a terminal.
 *
 * A message body, a header or a file name can hold bytes that a
 * terminal obeys instead of showing: escape sequences that move the
 * cursor, clear lines or rewrite the title, carriage returns that
 * overwrite a line, bidirectional overrides that reorder it.  vis
 * turns each of them into visible text, in the manner of vis(3):
 *
 *	\t \n \r	tab, newline, carriage return (unless VIS_LINES)
 *	\xHH		another C0 control, DEL, a byte that is not UTF-8
 *	\uHHHH		a C1 control, a bidirectional override or isolate,
 *			a line or paragraph separator, a directional mark,
 *			a character that shows as nothing
 *	\UHHHHHHHH	a tag character (past U+FFFF)
 *
 * (codepoint_hidden() in util.h says which).  Every other character,
 * backslashes included, passes as it is: the result is for reading,
 * not for decoding back.
 *
 * With VIS_JSON it is the inside of a JSON string instead, in ASCII:
 * quotes, backslashes, every control and every non-ASCII character
 * escaped (\uHHHH, a surrogate pair past U+FFFF).  JSON cannot hold a
 * byte that is not UTF-8: bad counts them, and such output is invalid.
 *
 * Streams go through in chunks: a UTF-8 sequence cut at the end of one
 * chunk waits for the next.
 */
#ifndef SMIMP_VIS_H
#define SMIMP_VIS_H

#include <stddef.h>

#define VIS_LINES	1	/* newlines and tabs pass (a body) */
#define VIS_JSON	2	/* the inside of a JSON string */

struct vis {
	unsigned char part[4];	/* the start of a cut UTF-8 sequence */
	size_t npart;
	int flags;
	size_t bad;		/* bytes that were not UTF-8 */
};

/* Room that vis_feed needs for len bytes (vis_finish: for 0). */
#define VIS_OUT_MAX(len)	(6 * ((size_t)(len) + 4))

void vis_init(struct vis *v, int flags);
/* Escape in[0..len) into out (VIS_OUT_MAX(len) bytes); the bytes out. */
size_t vis_feed(struct vis *v, const void *in, size_t len, char *out);
/* The end of the stream: a cut sequence left over goes out as \xHH. */
size_t vis_finish(struct vis *v, char *out);

/*
 * One line of text (an error message, say) escaped into out, cap bytes
 * with the NUL; cut short, at a whole character, if it does not fit.
 */
void vis_line(const char *s, char *out, size_t cap);

#endif
