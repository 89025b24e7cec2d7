#include "jsontext.h"
#include "vis.h"

/* Room for text that is not UTF-8, escaped: an error message, not a body. */
#define JSONTEXT_MAX	1024

json_t *
json_text(const char *s)
{
	char safe[VIS_OUT_MAX(JSONTEXT_MAX)];
	json_t *j;

	if (s == NULL)
		return NULL;
	j = json_string(s);
	if (j != NULL)
		return j;
	vis_line(s, safe, sizeof(safe));
	return json_string(safe);
}
