/*
 * mailbox.c - {base}/v1/mailbox: the owner lists, downloads and
 * acknowledges its messages, each of its devices on its own (the
 * signing device is x->device, "" for the identity key): one sees and
 * acknowledges only what is pending for it.  Downloads stream from the
 * store's file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "server.h"
#include "banned.h"

#define MAILBOX_ID_MAX	((int64_t)1 << 53)

static int
list_entry(const struct mailbox_entry *e, void *arg)
{
	json_t *list = arg, *item;
	char when[TIME_STRLEN];

	time_format(e->received, when);
	item = json_pack("{s:I,s:s,s:s,s:I,s:s,s:b}", "id", (json_int_t)e->id,
	    "from", e->sender, "message_id", e->message_id, "size",
	    (json_int_t)e->size, "received", when, "sent", e->sent);
	return json_array_append_new(list, item);
}

void
mailbox_list(struct exchange *x)
{
	json_t *list = json_array();
	struct smimp_err err;

	if (list == NULL) {
		reply_error(x, 503, "out of memory");
		return;
	}
	if (store_mailbox_list(x->srv->store, x->signer, x->device, list_entry,
	    list, &err) != STORE_OK) {
		json_decref(list);
		reply_unavailable(x, &err);
		return;
	}
	reply_json(x, 200, list);
}

/* The mailbox id in x->rest; -1 (with a 404) if it is not one. */
static int
entry_id(struct exchange *x, int64_t *id)
{
	uint64_t v;

	if (parse_u64(x->rest, strlen(x->rest), &v) != 0 || v == 0 ||
	    v >= (uint64_t)MAILBOX_ID_MAX) {
		reply_error(x, 404, "no such message");
		return -1;
	}
	*id = (int64_t)v;
	return 0;
}

void
mailbox_get(struct exchange *x)
{
	struct smimp_err err;
	uint64_t len;
	int64_t id;
	int fd, r;

	if (entry_id(x, &id) != 0)
		return;
	r = store_mailbox_open(x->srv->store, x->signer, x->device, id, &fd,
	    &len, &err);
	if (r == STORE_OK)
		reply_fd(x, 200, "application/octet-stream", fd, len);
	else if (r == STORE_ERROR)
		reply_unavailable(x, &err);
	else
		reply_error(x, 404, "no such message");
}

void
mailbox_delete(struct exchange *x)
{
	struct smimp_err err;
	size_t acked = 0;
	int64_t id;

	if (entry_id(x, &id) != 0)
		return;
	if (store_mailbox_ack(x->srv->store, x->signer, x->device, &id, 1,
	    &acked, time_now(), &err) != STORE_OK)
		reply_unavailable(x, &err);
	else if (acked == 0)
		reply_error(x, 404, "no such message");
	else
		reply_bytes(x, 204, "text/plain", "", 0);
}

/*
 * POST {base}/v1/mailbox/ack: a JSON array of up to MAILBOX_PAGE
 * mailbox ids; ids that are not the owner's (or gone already) are
 * skipped.
 */
void
mailbox_ack(struct exchange *x)
{
	int64_t ids[MAILBOX_PAGE];
	json_t *list, *item;
	struct smimp_err err;
	size_t i, n = 0, acked = 0;

	list = json_loadb(x->small.len > 0 ? x->small.buf : "", x->small.len,
	    0, NULL);
	if (!json_is_array(list) || json_array_size(list) > MAILBOX_PAGE) {
		json_decref(list);
		reply_error(x, 400, "expected a JSON array of at most 1000 "
		    "mailbox ids");
		return;
	}
	json_array_foreach(list, i, item) {
		if (!json_is_integer(item) || json_integer_value(item) < 1) {
			json_decref(list);
			reply_error(x, 400, "mailbox ids are positive integers");
			return;
		}
		ids[n++] = (int64_t)json_integer_value(item);
	}
	json_decref(list);
	if (store_mailbox_ack(x->srv->store, x->signer, x->device, ids, n,
	    &acked, time_now(), &err) != STORE_OK) {
		reply_unavailable(x, &err);
		return;
	}
	reply_json(x, 200, json_pack("{s:I}", "acknowledged",
	    (json_int_t)acked));
}
