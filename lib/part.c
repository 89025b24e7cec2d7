/*
 * part.c - a part's header line and the rules for its fields (part.h).
 */
#include <string.h>
#include <strings.h>

#include "part.h"
#include "banned.h"

const char *
part_name_problem(const char *s, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > PART_NAME_MAX)
		return "is longer than 200 bytes";
	if (!text_value_ok(s, len))
		return "holds a control or bidirectional character, or is "
		    "not UTF-8";
	if (memchr(s, '/', len) != NULL || memchr(s, '\\', len) != NULL)
		return "holds a '/' or '\\'";
	/* ".", "..", and files that hide themselves or configure a shell. */
	if (s[0] == '.')
		return "starts with a dot";
	/* What would read as an option to the commands run on it. */
	if (s[0] == '-')
		return "starts with '-'";
	if (s[0] == ' ' || s[len - 1] == ' ')
		return "starts or ends with a space";
	return NULL;
}

/* An RFC 6838 restricted name, in lower case: 1 to 127 bytes. */
static size_t
restricted_name(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < 127; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i == 0 || strchr("!#$&-^_.+", c) == NULL)
			break;
	}
	return i;
}

/* A parameter value: an RFC 2045 token (no tspecial, no space). */
static size_t
token(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] > 0x7e ||
		    strchr("()<>@,;:\\\"/[]?=", s[i]) != NULL)
			break;
	return i;
}

int
part_type_valid(const char *s, size_t len)
{
	size_t i = 0, n;

	if (len == 0 || len > PART_TYPE_MAX)
		return 0;
	n = restricted_name(s, len);
	if (n == 0 || n == len || s[n] != '/')
		return 0;
	i = n + 1;
	n = restricted_name(s + i, len - i);
	if (n == 0)
		return 0;
	for (i += n; i < len; i += n) {
		if (s[i++] != ';')
			return 0;
		for (n = 0; i + n < len && ((s[i + n] >= 'a' &&
		    s[i + n] <= 'z') || (s[i + n] >= '0' && s[i + n] <= '9') ||
		    s[i + n] == '-'); n++)
			;
		if (n == 0 || i + n == len || s[i + n] != '=')
			return 0;
		i += n + 1;
		n = token(s + i, len - i);
		if (n == 0)
			return 0;
	}
	return 1;
}

int
part_kind_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PART_KIND_MAX || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 1; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static const struct {
	const char *ext, *type;
} types[] = {
	{ "txt", "text/plain" }, { "log", "text/plain" },
	{ "md", "text/markdown" }, { "csv", "text/csv" },
	{ "html", "text/html" }, { "htm", "text/html" },
	{ "ics", "text/calendar" }, { "diff", "text/x-diff" },
	{ "patch", "text/x-diff" }, { "json", "application/json" },
	{ "xml", "application/xml" }, { "yaml", "application/yaml" },
	{ "yml", "application/yaml" }, { "pdf", "application/pdf" },
	{ "zip", "application/zip" }, { "gz", "application/gzip" },
	{ "tar", "application/x-tar" }, { "png", "image/png" },
	{ "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "gif", "image/gif" }, { "svg", "image/svg+xml" },
	{ "webp", "image/webp" }, { "mp3", "audio/mpeg" },
	{ "ogg", "audio/ogg" }, { "wav", "audio/wav" },
	{ "mp4", "video/mp4" }, { "webm", "video/webm" },
	{ "docx", "application/vnd.openxmlformats-officedocument."
	    "wordprocessingml.document" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument."
	    "spreadsheetml.sheet" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
};

const char *
part_type_guess(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot != NULL && dot != name)
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

const char *
part_ext_guess(const char *type, const char *sub)
{
	size_t i, n = strlen(type);

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strncasecmp(types[i].type, type, n) == 0 &&
		    types[i].type[n] == '/' &&
		    strcasecmp(types[i].type + n + 1, sub) == 0)
			return types[i].ext;
	return NULL;
}

/* Copy s[0..len) into out (cap bytes with the NUL); it fits. */
static void
copy(char *out, const char *s, size_t len)
{
	memcpy(out, s, len);
	out[len] = '\0';
}

int
part_line_parse(const char *v, size_t len, struct msg_part *p,
    const char **why)
{
	const char *end = v + len, *sp;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	*why = "has a bad kind";
	sp = memchr(v, ' ', len);
	if (sp == NULL || !part_kind_valid(v, (size_t)(sp - v)))
		return -1;
	copy(p->kind, v, (size_t)(sp - v));
	v = sp + 1;
	sp = memchr(v, ' ', (size_t)(end - v));
	*why = "has a bad size";
	if (parse_u64(v, (size_t)((sp != NULL ? sp : end) - v),
	    &p->size) != 0 || p->size > PART_SIZE_MAX)
		return -1;
	p->known = strcmp(p->kind, PART_ATTACHMENT) == 0;
	/* Another kind's own fields are its own: any text, or none. */
	if (!p->known) {
		*why = "ends with a space";
		if (sp != NULL && sp + 1 == end)
			return -1;
		*why = "has fields that are not header text";
		return sp == NULL || text_value_ok(sp + 1,
		    (size_t)(end - sp - 1)) ? 0 : -1;
	}
	*why = "has a bad type";
	v = sp != NULL ? sp + 1 : end;
	sp = memchr(v, ' ', (size_t)(end - v));
	if (sp == NULL || !part_type_valid(v, (size_t)(sp - v)))
		return -1;
	copy(p->type, v, (size_t)(sp - v));
	v = sp + 1;
	*why = part_name_problem(v, (size_t)(end - v));
	if (*why != NULL)
		return -2;
	copy(p->name, v, (size_t)(end - v));
	return 0;
}

int
part_line_add(struct sbuf *sb, const struct msg_part *p)
{
	return sbuf_addf(sb, "part: %s %llu %s %s\n", p->kind,
	    (unsigned long long)p->size, p->type, p->name);
}
