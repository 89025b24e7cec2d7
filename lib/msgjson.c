/* msgjson.c - a verified message as one JSON object, for scripts. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "message.h"
#include "util.h"
#include "banned.h"

static json_t *
recipients_json(const struct msg_meta *meta, int cc)
{
	json_t *arr = json_array();
	char fp[FINGERPRINT_STRLEN];
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < meta->nrcpts; i++) {
		if (meta->rcpts[i].cc != cc)
			continue;
		fingerprint_format(meta->rcpts[i].fingerprint, fp);
		if (json_array_append_new(arr, json_pack("{s:s,s:s}",
		    "address", meta->rcpts[i].address, "fingerprint", fp)) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static int
set_body(json_t *obj, int body_fd, uint64_t body_len, struct smimp_err *err)
{
	unsigned char *body = NULL;
	char *b64 = NULL;
	size_t len, b64len;
	json_t *s;
	int ret = -1;

	if (body_len > MSG_JSON_MAX_BODY)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the body is too "
		    "large for --json (over %d bytes): use -o", MSG_JSON_MAX_BODY);
	if (lseek(body_fd, 0, SEEK_SET) != 0 ||
	    fd_read_all(body_fd, "the body", MSG_JSON_MAX_BODY, &body, &len,
	    err) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the body");
	s = json_stringn(len > 0 ? (const char *)body : "", len);
	if (s != NULL) {
		if (json_object_set_new(obj, "body", s) != 0 ||
		    json_object_set_new(obj, "body_encoding",
		    json_string("utf-8")) != 0)
			goto nomem;
	} else {
		b64len = sodium_base64_encoded_len(len,
		    sodium_base64_VARIANT_ORIGINAL);
		b64 = malloc(b64len);
		if (b64 == NULL)
			goto nomem;
		sodium_bin2base64(b64, b64len, body, len,
		    sodium_base64_VARIANT_ORIGINAL);
		if (json_object_set_new(obj, "body", json_string(b64)) != 0 ||
		    json_object_set_new(obj, "body_encoding",
		    json_string("base64")) != 0)
			goto nomem;
	}
	ret = 0;
	goto out;
nomem:
	smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
out:
	free(body);
	free(b64);
	return ret;
}

char *
msg_meta_json(const struct msg_meta *meta, const char *tier, int body_fd,
    struct smimp_err *err)
{
	char fp[FINGERPRINT_STRLEN], when[TIME_STRLEN];
	json_t *obj;
	char *out = NULL;

	fingerprint_format(meta->sender.fingerprint, fp);
	time_format(meta->date, when);
	obj = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:I}",
	    "from", meta->from, "fingerprint", fp, "tier", tier,
	    "type", meta->type, "to", recipients_json(meta, 0),
	    "cc", recipients_json(meta, 1), "date", when,
	    "message_id", meta->message_id, "thread_id", meta->thread_id,
	    "subject", meta->subject, "content_type", meta->content_type,
	    "body_length", (json_int_t)meta->body_len);
	if (obj == NULL) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
		return NULL;
	}
	if (meta->in_reply_to[0] != '\0' && json_object_set_new(obj,
	    "in_reply_to", json_string(meta->in_reply_to)) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
		goto out;
	}
	if (body_fd >= 0 && set_body(obj, body_fd, meta->body_len, err) != 0)
		goto out;
	out = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (out == NULL)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
out:
	json_decref(obj);
	return out;
}
