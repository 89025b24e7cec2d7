/*
 * Fuzz the reading back of a mail reader's file (smimp-seal --reply):
 * whatever parses names an address as smimp writes it, ids servers
 * take, a subject that is header text, and at most 256 recipients.
 */
#include <string.h>

#include "fuzz.h"
#include "mime.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_head h;
	struct smimp_err err;
	char norm[ADDRESS_MAX + 1];
	size_t i;

	fuzz_init();
	if (mime_head_parse((const char *)data, size, &h, &err) != 0)
		return 0;
	if (address_normalize(h.sender, norm, &err) != 0 ||
	    strcmp(norm, h.sender) != 0 || !message_id_valid(h.message_id) ||
	    !message_id_valid(h.thread_id) ||
	    !text_value_ok(h.subject, strlen(h.subject)) ||
	    h.nrcpts > MSG_MAX_RECIPIENTS)
		abort();
	for (i = 0; i < h.nrcpts; i++)
		if (address_normalize(h.rcpts[i].address, norm, &err) != 0)
			abort();
	mime_head_release(&h);
	return 0;
}
