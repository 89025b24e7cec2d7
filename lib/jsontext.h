/*
 * jsontext.h - another's words as a JSON string.
 *
 * jansson refuses a string that is not UTF-8, and whatever held it
 * (an answer, a line of --json) then goes missing whole.  The words
 * of another server, or a message cut short inside a character to fit
 * its buffer, need not be UTF-8: they go in escaped (vis.h) instead.
 */
#ifndef SMIMP_JSONTEXT_H
#define SMIMP_JSONTEXT_H

#include <jansson.h>

/* s as a JSON string: as it is when UTF-8, else escaped into at most
   VIS_OUT_MAX(1024) bytes; NULL for s NULL, or out of memory. */
json_t *json_text(const char *s);

#endif
