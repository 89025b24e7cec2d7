/*
 * queue.c - smimpd queue: the relay queue as the administrator sees and
 * steers it, on the store directly, while smimpd runs or not (the
 * store takes concurrent writers, and the relay claims entries with
 * leases: whatever this changes, the workers see at their next claim).
 *
 *	smimpd queue list		every entry, oldest first
 *	smimpd queue show ID		one entry, all it holds
 *	smimpd queue hold ID		never claimed until released
 *	smimpd queue release ID		claimed again when due
 *	smimpd queue retry ID		due now (and released)
 *	smimpd queue delete ID		gone, with a bounce notice to
 *					its sender unless --no-bounce
 *
 * The sender was told the message is queued: an entry deleted without
 * a word would be lost in silence, so a delete bounces as the relay
 * does when it gives up, in the same transaction that removes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "admin.h"
#include "exitcode.h"
#include "server.h"
#include "util.h"
#include "vis.h"
#include "banned.h"

/* How long the administrator's claim on an entry to delete holds. */
#define TAKE_LEASE_S	60

struct lister {
	int json;
	int64_t now;
	size_t n;
	struct smimp_err *err;
};

static const char *
entry_state(const struct store_queue_entry *e, int64_t now)
{
	if (e->held)
		return "held";
	if (e->lease_until > now)
		return "sending";
	return e->next_try <= now ? "due" : "waiting";
}

/* The recipients as a JSON array (they are stored comma-separated). */
static json_t *
recipients_json(const char *list)
{
	json_t *a = json_array();
	const char *p = list, *end;

	while (a != NULL && *p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if (end > p && json_array_append_new(a,
		    json_stringn(p, (size_t)(end - p))) != 0) {
			json_decref(a);
			return NULL;
		}
		p = *end != '\0' ? end + 1 : end;
	}
	return a;
}

static json_t *
entry_json(const struct store_queue_entry *e, int64_t now)
{
	return json_pack("{s:I,s:s,s:b,s:s,s:s,s:o,s:s,s:I,s:o,s:I,s:I,s:o,"
	    "s:o,s:o}", "id", (json_int_t)e->id, "state", entry_state(e, now),
	    "held", e->held, "sender", e->sender, "domain", e->domain,
	    "recipients", recipients_json(e->recipients), "message_id",
	    e->message_id, "size", (json_int_t)e->size, "queued",
	    admin_json_date(e->first_try), "age", (json_int_t)(now -
	    e->first_try), "attempts", (json_int_t)e->attempts,
	    "next_attempt", admin_json_date(e->next_try), "last_error",
	    e->last_error[0] != '\0' ? json_string(e->last_error) :
	    json_null(), "lease_until", e->lease_until > now ?
	    admin_json_date(e->lease_until) : json_null());
}

/* When the next attempt is, for people: "-" held, "now", "in 3m". */
static void
next_text(const struct store_queue_entry *e, int64_t now, char *out,
    size_t cap)
{
	char d[32];

	if (e->held)
		(void)snprintf(out, cap, "-");
	else if (e->next_try <= now || e->lease_until > now)
		(void)snprintf(out, cap, "now");
	else {
		admin_duration(e->next_try - now, d, sizeof(d));
		(void)snprintf(out, cap, "in %s", d);
	}
}

/* One line an entry, and the reason its last attempt failed below it. */
static int
list_one(const struct store_queue_entry *e, void *arg)
{
	struct lister *l = arg;
	char age[32], next[40], why[STORE_REASON_MAX + 1];

	if (l->json) {
		if (l->n++ > 0)
			putchar(',');
		return admin_json_put(entry_json(e, l->now), l->err);
	}
	if (l->n++ == 0)
		printf("%-8s %-7s %7s %5s %8s %10s  %s\n", "ID", "STATE",
		    "AGE", "TRIES", "NEXT", "SIZE", "FROM -> DOMAIN");
	admin_duration(l->now - e->first_try, age, sizeof(age));
	next_text(e, l->now, next, sizeof(next));
	printf("%-8lld %-7s %7s %5u %8s %10llu  %s -> %s\n",
	    (long long)e->id, entry_state(e, l->now), age, e->attempts, next,
	    (unsigned long long)e->size, e->sender, e->domain);
	if (e->last_error[0] != '\0') {
		/* The store escaped it; once more costs nothing. */
		vis_line(e->last_error, why, sizeof(why));
		printf("%8s last error: %s\n", "", why);
	}
	return 0;
}

static int
show_one(const struct store_queue_entry *e, void *arg)
{
	struct lister *l = arg;
	char when[TIME_STRLEN], d[32], why[STORE_REASON_MAX + 1];

	l->n++;
	if (l->json)
		return admin_json_line(entry_json(e, l->now), l->err);
	printf("id: %lld\n", (long long)e->id);
	printf("state: %s\n", entry_state(e, l->now));
	printf("sender: %s\n", e->sender);
	printf("domain: %s\n", e->domain);
	printf("recipients: %s\n", e->recipients);
	printf("message-id: %s\n", e->message_id);
	printf("size: %llu\n", (unsigned long long)e->size);
	time_format(e->first_try, when);
	admin_duration(l->now - e->first_try, d, sizeof(d));
	printf("queued: %s (%s ago)\n", when, d);
	printf("attempts: %u\n", e->attempts);
	time_format(e->next_try, when);
	printf("next-attempt: %s%s\n", when, e->held ? " (held)" : "");
	if (e->last_error[0] != '\0') {
		vis_line(e->last_error, why, sizeof(why));
		printf("last-error: %s\n", why);
	}
	if (e->lease_until > l->now) {
		time_format(e->lease_until, when);
		printf("lease: %s until %s\n", e->lease_owner, when);
	}
	return 0;
}

static int
queue_list(struct store *st, int json, struct smimp_err *err)
{
	struct lister l = { json, time_now(), 0, err };

	if (json)
		putchar('[');
	if (store_outbound_list(st, 0, list_one, &l, err) != STORE_OK)
		return -1;
	if (json)
		printf("]\n");
	else if (l.n == 0)
		printf("the queue is empty\n");
	return 0;
}

static int
entry_missing(int r, int64_t id, struct smimp_err *err)
{
	if (r == STORE_NOT_FOUND)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no queue entry "
		    "%lld", (long long)id);
	if (r == STORE_EXISTS)
		return smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "queue entry "
		    "%lld is being delivered right now: try again in a moment",
		    (long long)id);
	return -1;
}

static int
queue_show(struct store *st, int64_t id, int json, struct smimp_err *err)
{
	struct lister l = { json, time_now(), 0, err };
	int r;

	r = store_outbound_list(st, id, show_one, &l, err);
	return r == STORE_OK ? 0 : entry_missing(r, id, err);
}

/*
 * A deletion without a bounce notice, recorded for the sender to see
 * where its message went (doc/PROTOCOL.md 8.14); a relay_give_up
 * records its own.
 */
static int
deleted_record(struct server *srv, const struct outbound *ob,
    struct smimp_err *err)
{
	struct store_sent rec;

	memset(&rec, 0, sizeof(rec));
	rec.sender = ob->sender;
	rec.message_id = ob->message_id;
	rec.domain = ob->domain;
	rec.state = STORE_SENT_BOUNCED;
	rec.recipients = ob->recipients;
	rec.text = "deleted from the queue by the administrator, without a "
	    "bounce notice";
	rec.at = time_now();
	return store_sent_put(srv->store, &rec, 1, err);
}

/*
 * Delete: claimed first, as a worker claims, so that no attempt is
 * under way; then removed, with the bounce notice in the same
 * transaction unless asked not to.  Left claimed by a failure, the
 * entry comes back when the claim runs out.
 */
static int
queue_delete(struct server *srv, int64_t id, int bounce, int json,
    struct smimp_err *err)
{
	struct outbound ob;
	unsigned char rnd[8];
	char owner[64], hex[17];
	int64_t now = time_now();
	int r;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	(void)snprintf(owner, sizeof(owner), "admin:%s", hex);
	r = store_outbound_take(srv->store, id, owner, now, now + TAKE_LEASE_S,
	    &ob, err);
	if (r != STORE_OK)
		return entry_missing(r, id, err);
	if (bounce)
		r = relay_give_up(srv, owner, &ob, "deleted from the queue by "
		    "the administrator", err);
	else if ((r = store_outbound_done(srv->store, owner, &ob.id, 1,
	    err)) == STORE_OK)
		r = deleted_record(srv, &ob, err);
	if (r == STORE_OK && json)
		r = admin_json_line(json_pack("{s:I,s:b,s:s,s:o}", "id",
		    (json_int_t)id, "deleted", 1, "message_id", ob.message_id,
		    "bounce", bounce ? json_string(ob.sender) : json_null()),
		    err);
	else if (r == STORE_OK)
		printf(bounce ? "%lld: deleted; a bounce notice went to %s\n" :
		    "%lld: deleted, no bounce notice for %s\n", (long long)id,
		    ob.sender);
	else if (r == STORE_NOT_FOUND)
		r = entry_missing(STORE_EXISTS, id, err);
	outbound_release(&ob);
	return r == STORE_OK ? 0 : -1;
}

static const struct {
	const char *word;
	enum store_queue_op op;
	const char *done;
} actions[] = {
	{ "hold", STORE_QUEUE_HOLD, "held" },
	{ "release", STORE_QUEUE_RELEASE, "released" },
	{ "retry", STORE_QUEUE_RETRY, "due now" },
};

/* hold, release, retry: the change, then the entry as it is now. */
static int
queue_act(struct store *st, size_t which, int64_t id, int json,
    struct smimp_err *err)
{
	int r;

	r = store_outbound_admin(st, id, actions[which].op, time_now(), err);
	if (r != STORE_OK)
		return entry_missing(r, id, err);
	if (!json) {
		printf("%lld: %s\n", (long long)id, actions[which].done);
		return 0;
	}
	return queue_show(st, id, 1, err);
}

/* An entry's id: a number from 1 on. */
static int
parse_id(const char *s, int64_t *id, struct smimp_err *err)
{
	uint64_t v;

	if (parse_u64(s, strlen(s), &v) != 0 || v == 0 || v > INT64_MAX)
		return admin_usage(err, "queue: '%.40s' is not an entry id", s);
	*id = (int64_t)v;
	return 0;
}

/* What a subcommand needs before the store is opened: its words. */
static int
queue_args(char **args, int nargs, struct smimpd_config *cfg,
    struct admin_args *a, int64_t *id, struct smimp_err *err)
{
	const char *w;

	if (admin_args_parse("queue", args, nargs, ADMIN_JSON |
	    ADMIN_NO_BOUNCE, 3, a, err) != 0)
		return -1;
	w = a->nwords > 0 ? a->word[0] : "";
	if (strcmp(w, "list") == 0 ? a->nwords != 1 :
	    strcmp(w, "show") == 0 || strcmp(w, "delete") == 0 ||
	    strcmp(w, "hold") == 0 || strcmp(w, "release") == 0 ||
	    strcmp(w, "retry") == 0 ? a->nwords != 2 : 1)
		return admin_usage(err, "usage: smimpd queue list | show ID | "
		    "hold ID | release ID | retry ID | delete ID");
	if ((a->flags & ADMIN_NO_BOUNCE) && strcmp(w, "delete") != 0)
		return admin_usage(err, "queue: --no-bounce is for delete");
	if (a->nwords == 2 && parse_id(a->word[1], id, err) != 0)
		return -1;
	if (strcmp(w, "delete") == 0 && !(a->flags & ADMIN_NO_BOUNCE) &&
	    cfg->domain[0] == '\0')
		return admin_usage(err, "queue delete signs its bounce notice "
		    "as the server of its domain: give --domain or the config "
		    "file");
	return 0;
}

int
queue_run(char **args, int nargs, struct smimpd_config *cfg,
    struct smimp_err *err)
{
	struct admin_args a;
	struct server srv;
	int64_t id = 0;
	int json, ret = -1;
	size_t i;

	if (queue_args(args, nargs, cfg, &a, &id, err) != 0)
		return -1;
	json = (a.flags & ADMIN_JSON) != 0;
	memset(&srv, 0, sizeof(srv));
	srv.cfg = *cfg;
	srv.store = server_store_open(cfg, 0, err);
	if (srv.store == NULL)
		return -1;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(a.word[0], actions[i].word) == 0)
			break;
	if (i < sizeof(actions) / sizeof(actions[0]))
		ret = queue_act(srv.store, i, id, json, err);
	else if (strcmp(a.word[0], "list") == 0)
		ret = queue_list(srv.store, json, err);
	else if (strcmp(a.word[0], "show") == 0)
		ret = queue_show(srv.store, id, json, err);
	else if (!(a.flags & ADMIN_NO_BOUNCE) && serverkey_load(&srv,
	    err) != 0)
		ret = -1;
	else
		ret = queue_delete(&srv, id, !(a.flags & ADMIN_NO_BOUNCE),
		    json, err);
	serverkey_release();
	store_close(srv.store);
	return ret;
}
