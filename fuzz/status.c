/*
 * Fuzz the reading of a home server's answer about a sent message
 * (GET /v1/messages/ID, smimp-send --status): the first line is the
 * message id asked for, the rest the answer.  What parses holds only
 * rows a reader can trust the shape of (a normalized domain, a known
 * state, dates as written, bounded texts); each receipt it carries is
 * read as status_verify reads it, and the domains still pending are
 * only those it names no final state for.
 */
#include <string.h>

#include "fuzz.h"
#include "stamp.h"
#include "status.h"

static void
row_ok(const struct status_domain *d)
{
	char norm[ADDRESS_DOMAIN_MAX + 1];
	struct smimp_err err;
	int64_t t;

	if (domain_normalize(d->domain, norm, &err) != 0 ||
	    strcmp(norm, d->domain) != 0 || d->state < STATUS_QUEUED ||
	    d->state > STATUS_BOUNCED ||
	    strlen(d->recipients) > RECEIPT_LIST_MAX ||
	    strlen(d->text) >= STATUS_TEXT_MAX ||
	    time_parse(d->date, strlen(d->date), &t) != 0 ||
	    (d->state == STATUS_QUEUED &&
	    time_parse(d->next_try, strlen(d->next_try), &t) != 0) ||
	    (d->receipt != NULL && (d->state != STATUS_DELIVERED ||
	    strlen(d->receipt) > RECEIPT_MAX)))
		abort();
}

/* A receipt as status_verify reads it, but for the signature. */
static void
receipt_read(const struct status_domain *d, const char *message_id,
    const char *to)
{
	struct receipt *r = malloc(sizeof(*r));
	struct smimp_err err;

	if (r == NULL)
		return;
	if (receipt_parse(r, d->receipt, strlen(d->receipt), &err) == 0)
		(void)receipt_check(r, d->domain, "alice@example.org",
		    message_id, NULL, to, &err);
	free(r);
}

static void
pending(const struct msg_status *st, const char *to)
{
	static char out[STATUS_DOMAINS_MAX][ADDRESS_DOMAIN_MAX + 1];
	size_t n, i, j;

	n = status_pending(st, to, out, STATUS_DOMAINS_MAX);
	for (i = 0; i < n && i < STATUS_DOMAINS_MAX; i++)
		for (j = 0; j < st->n; j++)
			if (strcmp(st->d[j].domain, out[i]) == 0 &&
			    (st->d[j].state == STATUS_DELIVERED ||
			    st->d[j].state == STATUS_BOUNCED))
				abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	char mid[MESSAGE_ID_MAX + 1];
	struct msg_status st;
	struct smimp_err err;
	struct sbuf to;
	size_t i, mlen;

	fuzz_init();
	if (nl == NULL || (mlen = (size_t)(nl - (const char *)data)) >
	    MESSAGE_ID_MAX)
		return 0;
	memcpy(mid, data, mlen);
	mid[mlen] = '\0';
	memset(&st, 0, sizeof(st));
	if (status_parse(nl + 1, size - mlen - 1, mid, &st, &err) != 0) {
		if (st.d != NULL || st.n != 0)
			abort();
		return 0;
	}
	if (st.n == 0 || st.n > STATUS_DOMAINS_MAX)
		abort();
	sbuf_init(&to, 1 << 20);
	for (i = 0; i < st.n; i++) {
		row_ok(&st.d[i]);
		if (sbuf_addf(&to, "%sx@%s", i > 0 ? ", " : "",
		    st.d[i].domain) != 0)
			abort();
	}
	for (i = 0; i < st.n; i++)
		if (st.d[i].receipt != NULL)
			receipt_read(&st.d[i], mid, to.buf);
	pending(&st, to.buf);
	sbuf_release(&to);
	msg_status_release(&st);
	return 0;
}
