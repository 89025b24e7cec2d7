/*
 * directory.c - what anyone may ask: discovery, versions, the server's
 * metadata (its key and limits), and users' identity logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "http.h"
#include "server.h"
#include "banned.h"

/* GET /.well-known/smimp.txt: the base URL, one line. */
void
directory_discovery(struct exchange *x)
{
	char text[600];
	int n = snprintf(text, sizeof(text), "%s\n", x->srv->cfg.base_url);

	reply_bytes(x, 200, "text/plain; charset=utf-8", text, (size_t)n);
}

void
directory_version(struct exchange *x)
{
	reply_json(x, 200, json_pack("{s:[s],s:s}", "versions", "v1",
	    "software", "smimpd " SMIMP_VERSION));
}

void
directory_meta(struct exchange *x)
{
	char pk[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(pk, sizeof(pk), x->srv->server_pk, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	reply_json(x, 200, json_pack("{s:s,s:s,s:[s],s:{s:I}}", "domain",
	    x->srv->cfg.domain, "server_key", pk, "versions", "v1", "limits",
	    "max_message_bytes", (json_int_t)x->srv->cfg.max_message));
}

/* GET {base}/v1/users/ADDRESS/log: the identity log, to anyone. */
void
directory_user(struct exchange *x)
{
	char addr[ADDRESS_MAX + 1], raw[ADDRESS_MAX + 8];
	const char *slash = strchr(x->rest, '/');
	unsigned char *log = NULL;
	struct smimp_err err;
	size_t len;
	int r;

	if (slash == NULL || strcmp(slash, "/log") != 0 ||
	    (size_t)(slash - x->rest) >= sizeof(raw)) {
		reply_error(x, 404, "no such resource");
		return;
	}
	memcpy(raw, x->rest, (size_t)(slash - x->rest));
	raw[slash - x->rest] = '\0';
	if (address_normalize(raw, addr, &err) != 0) {
		reply_error(x, 400, "invalid address");
		return;
	}
	if (strcmp(address_domain(addr), x->srv->cfg.domain) != 0) {
		reply_error(x, 404, "not a user of this domain");
		return;
	}
	r = store_user_get(x->srv->store, addr, &log, &len, &err);
	if (r == STORE_ERROR)
		reply_unavailable(x, err.msg);
	else if (r != STORE_OK)
		reply_error(x, 404, "unknown user");
	else
		reply_bytes(x, 200, "text/plain; charset=utf-8", log, len);
	free(log);
}
