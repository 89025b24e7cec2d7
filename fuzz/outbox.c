/*
 * Fuzz the header of a queued outbox entry, as smimp-send --flush and
 * --list read it from $SMIMP_HOME/outbox (any process of the user's, or
 * a disk gone bad, may have written it): what parses is an entry a
 * flush can act on (an absolute key path, a message id, recipients, a
 * date, a length within a message's), and is written back to the very
 * same bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "outbox.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outbox_entry e;
	size_t len = size < OUTBOX_HEADER_MAX ? size : OUTBOX_HEADER_MAX;
	size_t hlen;
	struct sbuf sb;
	int64_t t;

	fuzz_init();
	memset(&e, 0, sizeof(e));
	if (outbox_header_parse((const char *)data, len, &e, &hlen) != 0)
		return 0;
	if (hlen > len || e.identity[0] != '/' ||
	    !message_id_valid(e.message_id) || e.to[0] == '\0' ||
	    time_parse(e.queued, strlen(e.queued), &t) != 0 ||
	    e.length > REMOTE_MAX_BODY)
		abort();
	sbuf_init(&sb, OUTBOX_HEADER_MAX);
	if (outbox_header_build(&sb, &e) != 0 || sb.len != hlen ||
	    memcmp(sb.buf, data, hlen) != 0)
		abort();
	sbuf_release(&sb);
	return 0;
}
