/*
 * part.h - one part of a message besides its body (an attachment): its
 * line in the envelope header and the rules for its kind, size, media
 * type and name (doc/PROTOCOL.md, 4.5).  A sealer and a reader check
 * the same rules, so that every name a reader accepts is one it may
 * write into a directory as it is.
 */
#ifndef SMIMP_PART_H
#define SMIMP_PART_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define PART_MAX	64	/* parts in one message */
/* Bytes of a name: room under NAME_MAX (255) for " (999)" and more. */
#define PART_NAME_MAX	200
#define PART_TYPE_MAX	200	/* bytes of a media type */
#define PART_KIND_MAX	32
/* Bytes of one part: 64 of them still add up to far less than 2^63. */
#define PART_SIZE_MAX	(UINT64_C(1) << 50)
/* The one kind this version reads; others are verified and left out. */
#define PART_ATTACHMENT	"attachment"

struct msg_part {
	char kind[PART_KIND_MAX + 1];
	int known;			/* an attachment: this version reads it */
	char type[PART_TYPE_MAX + 1];	/* "" for a kind not known */
	char name[PART_NAME_MAX + 1];	/* "" for a kind not known */
	uint64_t size;
	uint64_t offset;		/* of its first byte in the body B */
	int fd;				/* sealing: its bytes come from here */
	char *path;			/* opened: where it was written, or NULL */
};

/*
 * Why s[0..len) cannot be a part's name ("starts with a dot", ...), or
 * NULL when it can: 1 to PART_NAME_MAX bytes of header text
 * (text_value_ok: UTF-8, no control character), no '/' or '\', not
 * starting with '.', '-' or a space, not ending with a space.
 */
const char *part_name_problem(const char *s, size_t len);
/*
 * A media type as a part carries it: "type/subtype" in lower case
 * (RFC 6838 restricted names), then any ";attribute=value" parameters,
 * no space anywhere, 1 to PART_TYPE_MAX bytes.
 */
int part_type_valid(const char *s, size_t len);
/* A kind: 1 to PART_KIND_MAX of a-z 0-9 -, starting with a letter. */
int part_kind_valid(const char *s, size_t len);
/*
 * The media type for a file name, by its extension, from a small table
 * (case ignored); application/octet-stream for any other.
 */
const char *part_type_guess(const char *name);
/*
 * The other way: the extension that table gives the media type
 * TYPE/SUB (its first, as "jpg" for image/jpeg), or NULL.
 */
const char *part_ext_guess(const char *type, const char *sub);

/*
 * Parse the value of a "part" header line into p (fd -1, path NULL);
 * -1 with *why saying what is wrong with the line ("has a bad size"),
 * -2 with *why saying what is wrong with its name ("starts with a
 * dot").
 */
int part_line_parse(const char *value, size_t len, struct msg_part *p,
    const char **why);
/* Append "part: KIND SIZE TYPE NAME\n" for an attachment. */
int part_line_add(struct sbuf *sb, const struct msg_part *p);

#endif
