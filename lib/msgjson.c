/*
 * msgjson.c - a verified message as one JSON object, for scripts.
 *
 * The metadata is built with jansson; the body, of any size, is streamed
 * after it in fixed chunks (escaped, or in base64), so that --json takes
 * constant memory.  Its output is ASCII: no byte of it can drive a
 * terminal.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "message.h"
#include "util.h"
#include "vis.h"
#include "banned.h"

/* Body bytes read at a time; a multiple of 3, for base64. */
#define JSON_CHUNK	(3 * 16 * 1024)
#define JSON_OUT_CAP	VIS_OUT_MAX(JSON_CHUNK)

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

/* An attachment's name and type; nothing for a kind not known. */
static int
part_json(json_t *o, const struct msg_part *p)
{
	if (!p->known)
		return 0;
	return json_object_set_new(o, "name", json_string(p->name)) != 0 ||
	    json_object_set_new(o, "type", json_string(p->type)) != 0 ?
	    -1 : 0;
}

/*
 * The parts: kind and size, and for an attachment its name, type and,
 * once extracted, the path it was written to.
 */
static json_t *
parts_json(const struct msg_meta *meta)
{
	json_t *arr = json_array(), *o;
	size_t i;

	for (i = 0; arr != NULL && i < meta->nparts; i++) {
		const struct msg_part *p = &meta->parts[i];

		o = json_pack("{s:s}", "kind", p->kind);
		if (o != NULL && (part_json(o, p) != 0 ||
		    json_object_set_new(o, "size", json_integer(
		    (json_int_t)p->size)) != 0 || (p->path != NULL &&
		    json_object_set_new(o, "path", json_string(p->path)) != 0))) {
			json_decref(o);
			o = NULL;
		}
		if (json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The metadata without the body, as compact ASCII JSON (malloc'd). */
static char *
meta_text(const struct msg_meta *meta, const char *tier,
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
	if ((meta->in_reply_to[0] != '\0' && json_object_set_new(obj,
	    "in_reply_to", json_string(meta->in_reply_to)) != 0) ||
	    (meta->introducer[0] != '\0' && json_object_set_new(obj,
	    "introducer", json_string(meta->introducer)) != 0) ||
	    (meta->from_device[0] != '\0' && json_object_set_new(obj,
	    "from_device", json_string(meta->from_device)) != 0) ||
	    (meta->nparts > 0 && json_object_set_new(obj, "parts",
	    parts_json(meta)) != 0) ||
	    (meta->forward_secret && json_object_set_new(obj,
	    "forward_secret", json_true()) != 0)) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
		goto out;
	}
	out = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (out == NULL)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
out:
	json_decref(obj);
	return out;
}

/* Where the object goes: a descriptor, and its name for errors. */
struct json_out {
	int fd;
	const char *name;
};

static int
put(const struct json_out *o, const void *buf, size_t len,
    struct smimp_err *err)
{
	if (fd_write_all(o->fd, buf, len) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot write %s",
		    o->name);
	return 0;
}

static int
read_chunk(int fd, unsigned char *buf, size_t *got, struct smimp_err *err)
{
	if (fd_read_full(fd, buf, JSON_CHUNK, got) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot read the body");
	return 0;
}

/*
 * One pass over the body as the inside of a JSON string: written to
 * o, or only checked when o is NULL.  *utf8 says whether the
 * body is all UTF-8, which a JSON string needs.
 */
static int
utf8_pass(int body_fd, const struct json_out *o, unsigned char *in,
    char *out, int *utf8, struct smimp_err *err)
{
	struct vis v;
	size_t got, n;

	vis_init(&v, VIS_JSON);
	if (lseek(body_fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot read the body");
	do {
		if (read_chunk(body_fd, in, &got, err) != 0)
			return -1;
		n = got > 0 ? vis_feed(&v, in, got, out) : vis_finish(&v, out);
		if (o == NULL && v.bad > 0)
			break;
		if (o != NULL && put(o, out, n, err) != 0)
			return -1;
	} while (got > 0);
	*utf8 = v.bad == 0;
	/* Only a spool that someone else wrote to could fail now. */
	if (!*utf8 && o != NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "the body changed while it was read");
	return 0;
}

static int
base64_pass(int body_fd, const struct json_out *o, unsigned char *in,
    char *out, struct smimp_err *err)
{
	size_t got;

	if (lseek(body_fd, 0, SEEK_SET) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot read the body");
	for (;;) {
		if (read_chunk(body_fd, in, &got, err) != 0)
			return -1;
		if (got == 0)
			return 0;
		/* Full chunks are a multiple of 3: padding only at the end. */
		sodium_bin2base64(out, JSON_OUT_CAP, in, got,
		    sodium_base64_VARIANT_ORIGINAL);
		if (put(o, out, strlen(out), err) != 0)
			return -1;
	}
}

/* "body" and "body_encoding", streamed; the body as UTF-8 if it is. */
static int
write_body(int body_fd, const struct json_out *o, struct smimp_err *err)
{
	unsigned char *in = NULL;
	char *out = NULL;
	const char *end;
	int utf8, ret = -1;

	in = malloc(JSON_CHUNK);
	out = malloc(JSON_OUT_CAP);
	if (in == NULL || out == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	/* Two passes over the private spool: is it UTF-8, then write it. */
	if (utf8_pass(body_fd, NULL, in, out, &utf8, err) != 0 ||
	    put(o, ",\"body\":\"", 9, err) != 0)
		goto out;
	if (!utf8 && base64_pass(body_fd, o, in, out, err) != 0)
		goto out;
	if (utf8 && utf8_pass(body_fd, o, in, out, &utf8, err) != 0)
		goto out;
	end = utf8 ? "\",\"body_encoding\":\"utf-8\"" :
	    "\",\"body_encoding\":\"base64\"";
	if (put(o, end, strlen(end), err) != 0)
		goto out;
	ret = 0;
out:
	free(in);
	free(out);
	return ret;
}

int
msg_meta_json_write(const struct msg_meta *meta, const char *tier,
    int body_fd, int out_fd, const char *out_name, struct smimp_err *err)
{
	const struct json_out o = { out_fd, out_name };
	char *head;
	size_t len;
	int ret = -1;

	head = meta_text(meta, tier, err);
	if (head == NULL)
		return -1;
	/* The object without its closing brace, which comes after the body. */
	len = strlen(head);
	if (len < 2 || head[len - 1] != '}') {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build JSON");
		goto out;
	}
	if (put(&o, head, len - 1, err) != 0 ||
	    (body_fd >= 0 && write_body(body_fd, &o, err) != 0) ||
	    put(&o, "}\n", 2, err) != 0)
		goto out;
	ret = 0;
out:
	free(head);
	return ret;
}
