/*
 * Fuzz the identity record and log parser, verifying signatures and
 * not (as for the trust store's logs): without signatures the mutations
 * reach the rules past them, such as the devices', whose state must
 * then hold together.
 */
#include <stdlib.h>

#include "idlog.h"
#include "fuzz.h"

/* nlive counts the devices not removed, and never passes the cap. */
static void
devices_hold(const struct idlog *log)
{
	size_t i, live = 0;

	for (i = 0; i < log->ndevices; i++)
		if (!log->devices[i].removed) {
			live++;
			if (idlog_device(log, log->devices[i].name) !=
			    &log->devices[i])
				abort();
		}
	if (live != log->nlive || live > IDLOG_MAX_DEVICES ||
	    log->ndevices > log->n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smimp_err err;
	struct idlog log;

	fuzz_init();
	if (idlog_parse(&log, data, size, &err) == 0) {
		devices_hold(&log);
		idlog_release(&log);
	}
	if (idlog_parse_verified(&log, data, size, &err) == 0) {
		devices_hold(&log);
		idlog_release(&log);
	}
	return 0;
}
