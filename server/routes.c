/*
 * routes.c - every endpoint smimpd serves, in one table: a name (the
 * endpoint label of the metrics, from this table and never from the
 * request, so that labels stay few), method, path (under the base path
 * unless ROUTE_ROOT), who must have signed, what body it takes, and the
 * handler.  doc/PROTOCOL.md section 8.4 and smimpd(8) describe each.
 */
#include <stddef.h>

#include "http.h"
#include "metrics.h"
#include "server.h"

const struct route routes[] = {
	{ "discovery", "GET", "/.well-known/smimp.txt", ROUTE_ROOT, AUTH_NONE,
	    BODY_NONE, directory_discovery },
	{ "version", "GET", "/version", 0, AUTH_NONE, BODY_NONE,
	    directory_version },
	{ "meta", "GET", "/v1/meta", 0, AUTH_NONE, BODY_NONE, directory_meta },
	/* Before the prefix routes of /v1/users/, which would take them. */
	{ "policy_get", "GET", "/v1/users/*/policy", ROUTE_DEVICE_ANY,
	    AUTH_USER, BODY_NONE, policy_get },
	{ "policy_post", "POST", "/v1/users/*/policy", ROUTE_PER_SENDER,
	    AUTH_USER, BODY_LARGE, policy_post },
	{ "prekeys_count", "GET", "/v1/users/*/prekeys", ROUTE_DEVICE_RECEIVE,
	    AUTH_USER, BODY_NONE, prekeys_count },
	{ "prekeys_upload", "POST", "/v1/users/*/prekeys",
	    ROUTE_DEVICE_RECEIVE, AUTH_USER, BODY_SMALL, prekeys_upload },
	{ "prekeys_claim", "POST", "/v1/users/*/prekeys/claim",
	    ROUTE_DEVICE_ANY | ROUTE_OWN_RATE, AUTH_ANY, BODY_NONE,
	    prekeys_claim },
	{ "user_get", "GET", "/v1/users/", ROUTE_PREFIX | ROUTE_DEVICE_ANY,
	    AUTH_ANY, BODY_NONE, directory_user },
	{ "user_append", "POST", "/v1/users/", ROUTE_PREFIX | ROUTE_PER_SENDER,
	    AUTH_OWNER, BODY_SMALL, directory_append },
	{ "register", "POST", "/v1/register", 0, AUTH_INVITE, BODY_SMALL,
	    accounts_register },
	{ "submit", "POST", "/v1/messages", ROUTE_NONCE_LATER |
	    ROUTE_PER_SENDER | ROUTE_DEVICE_SEND, AUTH_USER, BODY_FILE,
	    submission_post },
	{ "mailbox_list", "GET", "/v1/mailbox", ROUTE_DEVICE_RECEIVE,
	    AUTH_USER, BODY_NONE, mailbox_list },
	{ "mailbox_ack", "POST", "/v1/mailbox/ack", ROUTE_DEVICE_RECEIVE,
	    AUTH_USER, BODY_SMALL, mailbox_ack },
	{ "mailbox_get", "GET", "/v1/mailbox/", ROUTE_PREFIX |
	    ROUTE_DEVICE_RECEIVE, AUTH_USER, BODY_NONE, mailbox_get },
	{ "mailbox_delete", "DELETE", "/v1/mailbox/", ROUTE_PREFIX |
	    ROUTE_DEVICE_RECEIVE, AUTH_USER, BODY_NONE, mailbox_delete },
	{ "deliver", "POST", "/v1/deliver", ROUTE_NONCE_LATER, AUTH_SERVER,
	    BODY_FILE, inbound_deliver },
	{ "deliver_batch", "POST", "/v1/deliver-batch", ROUTE_NONCE_LATER,
	    AUTH_SERVER, BODY_FILE, inbound_deliver_batch },
	{ "message_status", "GET", "/v1/messages/", ROUTE_PREFIX |
	    ROUTE_DEVICE_SEND | ROUTE_PER_STATUS, AUTH_USER, BODY_NONE,
	    status_get },
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

/* Each route has its own row of counters. */
_Static_assert(sizeof(routes) / sizeof(routes[0]) <= METRICS_ROUTES_MAX,
    "more routes than METRICS_ROUTES_MAX");
