/*
 * enroll.c - a device's enrollment request, its code, and the files
 * smimp-keygen --device writes (see enroll.h).
 *
 *	smimp-device-request/1
 *	address: bob@example.net
 *	device: phone
 *	device-signing-key: <base64 Ed25519 public key>
 *	device-encryption-key: <base64 X25519 public key>
 *	expires: 2026-01-01T00:10:00Z
 *	signature: <base64 Ed25519 over ENROLL_SIG_CONTEXT, NUL, the above>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enroll.h"
#include "exitcode.h"
#include "fileio.h"
#include "signer.h"
#include "util.h"
#include "banned.h"

#define ENROLL_MAGIC		"smimp-device-request/1\n"
#define ENROLL_SIG_CONTEXT	"smimp/1 device-request"	/* plus NUL */
#define ENROLL_CODE_CONTEXT	"smimp/1 device-code"		/* plus NUL */
#define ENROLL_LINE_MAX		512

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* The device's secret key signs the request's lines. */
static int
request_sign(unsigned char sig[64], const unsigned char *body, size_t len,
    const unsigned char sk[64])
{
	struct signer s;

	signer_secret(&s, "", sk);
	return signer_sign_in_context(&s, ENROLL_SIG_CONTEXT, body, len, sig);
}

int
enroll_request_make(struct enroll_request *req, struct secret_key *sk,
    int64_t expires, struct smimp_err *err)
{
	const unsigned char *enc = secret_key_encryption_public(sk);
	unsigned char sig[64];
	char when[TIME_STRLEN];
	struct sbuf sb;
	int ret = -1;

	memset(req, 0, sizeof(*req));
	if (!sk->is_device || enc == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "an enrollment "
		    "request is made with a device's key");
	time_format(expires, when);
	sbuf_init(&sb, ENROLL_MAX_BYTES);
	if (sbuf_addf(&sb, "%saddress: %s\ndevice: %s\ndevice-signing-key: ",
	    ENROLL_MAGIC, sk->address, sk->device) != 0 ||
	    sbuf_add_b64(&sb, sk->identity_public, 32) != 0 ||
	    sbuf_add(&sb, "\ndevice-encryption-key: ", 24) != 0 ||
	    sbuf_add_b64(&sb, enc, 32) != 0 ||
	    sbuf_addf(&sb, "\nexpires: %s\n", when) != 0 ||
	    request_sign(sig, (unsigned char *)sb.buf, sb.len,
	    sk->identity_secret) != 0 ||
	    sbuf_add(&sb, "signature: ", 11) != 0 ||
	    sbuf_add_b64(&sb, sig, 64) != 0 || sbuf_add(&sb, "\n", 1) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot build the "
		    "enrollment request");
		goto out;
	}
	ret = enroll_request_parse(req, (unsigned char *)sb.buf, sb.len, err);
out:
	sbuf_release(&sb);
	return ret;
}

static int
field(const char *buf, size_t len, size_t *pos, const char *name,
    struct kv_line *kv)
{
	return kv_next(buf, len, pos, ENROLL_LINE_MAX, kv) == 1 &&
	    kv_is(kv, name) ? 0 : -1;
}

static int
key_field(const char *buf, size_t len, size_t *pos, const char *name,
    unsigned char *out, size_t out_len)
{
	struct kv_line kv;

	return field(buf, len, pos, name, &kv) == 0 &&
	    b64_decode_exact(kv.value, kv.value_len, out, out_len) == 0 ?
	    0 : -1;
}

static int
bad(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed enrollment "
	    "request: %s", what);
}

int
enroll_request_parse(struct enroll_request *req, const unsigned char *buf,
    size_t len, struct smimp_err *err)
{
	const char *s = (const char *)buf;
	struct smimp_err aerr;
	struct kv_line kv;
	unsigned char sig[64];
	char addr[ADDRESS_MAX + 1];
	size_t pos = strlen(ENROLL_MAGIC), signed_len;

	memset(req, 0, sizeof(*req));
	if (len > ENROLL_MAX_BYTES)
		return bad(err, "too long");
	if (len < pos || memcmp(s, ENROLL_MAGIC, pos) != 0)
		return bad(err, "missing 'smimp-device-request/1' line");
	if (field(s, len, &pos, "address", &kv) != 0 ||
	    kv_value_copy(&kv, addr, sizeof(addr)) != 0 ||
	    address_normalize(addr, req->address, &aerr) != 0 ||
	    strcmp(addr, req->address) != 0)
		return bad(err, "bad or missing address");
	if (field(s, len, &pos, "device", &kv) != 0 ||
	    kv_value_copy(&kv, req->device, sizeof(req->device)) != 0 ||
	    !iddev_name_valid(req->device))
		return bad(err, "bad or missing device");
	if (key_field(s, len, &pos, "device-signing-key", req->signing_key,
	    32) != 0)
		return bad(err, "bad or missing device-signing-key");
	if (key_field(s, len, &pos, "device-encryption-key",
	    req->encryption_key, 32) != 0)
		return bad(err, "bad or missing device-encryption-key");
	if (field(s, len, &pos, "expires", &kv) != 0 ||
	    time_parse(kv.value, kv.value_len, &req->expires) != 0)
		return bad(err, "bad or missing expires");
	signed_len = pos;
	if (key_field(s, len, &pos, "signature", sig, 64) != 0)
		return bad(err, "bad or missing signature");
	if (pos != len)
		return bad(err, "bytes after the signature");
	if (signature_verify_in_context(ENROLL_SIG_CONTEXT, buf, signed_len,
	    sig, req->signing_key) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the enrollment "
		    "request of device %s of %s has a bad signature",
		    req->device, req->address);
	memcpy(req->raw, buf, len);
	req->raw_len = len;
	return 0;
}

/*
 * How much of buf is the request, as smimp-keygen --device prints it:
 * all of it, or all but an empty line and one "code: " line after it,
 * at most ENROLL_CODE_LINE_MAX bytes of printable ASCII.  The code line
 * is not read: the code must come from the person who saw it on the
 * device, never from the file.  -1 for a code line of another shape.
 */
static int
printed_request_len(const unsigned char *buf, size_t len, size_t *req_len)
{
	static const char sep[] = "\n\ncode: ";
	const unsigned char *p = NULL;
	const char *line;
	size_t i, line_len;

	*req_len = len;
	for (i = 0; p == NULL && i + strlen(sep) <= len; i++)
		if (memcmp(buf + i, sep, strlen(sep)) == 0)
			p = buf + i;
	if (p == NULL)
		return 0;	/* the request alone: its parser judges it */
	line = (const char *)p + 2;
	line_len = len - (size_t)(p + 2 - buf);
	if (line_len < 2 || line[line_len - 1] != '\n' ||
	    !printable_ascii(line, line_len - 1, ENROLL_CODE_LINE_MAX))
		return -1;
	*req_len = (size_t)(p + 1 - buf);
	return 0;
}

int
enroll_request_read(struct enroll_request *req, const char *path,
    struct smimp_err *err)
{
	unsigned char *buf = NULL;
	char msg[SMIMP_ERR_MSG];
	size_t len, req_len;
	int ret;

	memset(req, 0, sizeof(*req));
	if (file_read_all(path, ENROLL_MAX_BYTES + 2 + ENROLL_CODE_LINE_MAX +
	    1, &buf, &len, err) != 0)
		return -1;
	ret = printed_request_len(buf, len, &req_len) != 0 ?
	    bad(err, "after the request, an empty line and one 'code: ' "
	    "line at most") :
	    enroll_request_parse(req, buf, req_len, err);
	free(buf);
	if (ret != 0) {
		memcpy(msg, err->msg, sizeof(msg));
		smimp_err_set(err, err->code, "'%s': %.200s", path, msg);
	}
	return ret;
}

int
enroll_request_current(const struct enroll_request *req, int64_t now,
    struct smimp_err *err)
{
	char when[TIME_STRLEN];

	time_format(req->expires, when);
	if (req->expires <= now)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the enrollment "
		    "request of device %s expired at %s: make a new one with "
		    "smimp-keygen --device", req->device, when);
	if (req->expires - now > ENROLL_MAX_AHEAD)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the enrollment "
		    "request of device %s expires at %s, more than %d minutes "
		    "ahead: refused (is a clock wrong?)", req->device, when,
		    ENROLL_MAX_AHEAD / 60);
	return 0;
}

/* The code's 10 characters, without the '-'. */
static void
code_chars(const struct enroll_request *req, char out[ENROLL_CODE_CHARS])
{
	crypto_generichash_state st;
	unsigned char h[32];
	uint64_t bits = 0;
	size_t i;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)
	    ENROLL_CODE_CONTEXT, sizeof(ENROLL_CODE_CONTEXT));
	crypto_generichash_update(&st, req->raw, req->raw_len);
	crypto_generichash_final(&st, h, sizeof(h));
	/* The first 50 bits of the hash, most significant first. */
	for (i = 0; i < 7; i++)
		bits = bits << 8 | h[i];
	bits >>= 6;
	for (i = 0; i < ENROLL_CODE_CHARS; i++)
		out[i] = b32[(bits >> (5 * (ENROLL_CODE_CHARS - 1 - i))) & 31];
}

void
enroll_code(const struct enroll_request *req, char out[ENROLL_CODE_STRLEN])
{
	char c[ENROLL_CODE_CHARS];

	code_chars(req, c);
	memcpy(out, c, 5);
	out[5] = '-';
	memcpy(out + 6, c + 5, 5);
	out[11] = '\0';
}

/* s as the code's characters, upper case: 0, or -1 when it is none. */
static int
code_read(const char *s, char got[ENROLL_CODE_CHARS])
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		int c = (unsigned char)*s;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		/* Digits the alphabet lacks, read for the letters they
		 * look like. */
		c = c == '0' ? 'O' : c == '1' ? 'I' : c == '8' ? 'B' : c;
		if (n == ENROLL_CODE_CHARS || strchr(b32, c) == NULL)
			return -1;
		got[n++] = (char)c;
	}
	return n == ENROLL_CODE_CHARS ? 0 : -1;
}

int
enroll_code_check(const struct enroll_request *req, const char *s,
    struct smimp_err *err)
{
	char want[ENROLL_CODE_CHARS], got[ENROLL_CODE_CHARS];

	if (code_read(s, got) != 0)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "a code is %d "
		    "characters of A-Z and 2-7, as smimp-keygen --device "
		    "shows it", ENROLL_CODE_CHARS);
	code_chars(req, want);
	if (sodium_memcmp(want, got, ENROLL_CODE_CHARS) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the code does "
		    "not match the enrollment request of device %s: it was "
		    "mistyped, or the request is not the one the device made; "
		    "nothing added", req->device);
	return 0;
}

int
enroll_paths(const char *prefix, struct enroll_result *res,
    struct smimp_err *err)
{
	char home[PATH_MAX];
	int a, b;

	if (prefix == NULL) {
		if (smimp_home(home, sizeof(home), err) != 0 ||
		    mkdir_p(home, 0700, err) != 0)
			return -1;
		a = snprintf(res->key_path, sizeof(res->key_path),
		    "%s/identity.key", home);
		b = snprintf(res->request_path, sizeof(res->request_path),
		    "%s/identity.request", home);
	} else {
		a = snprintf(res->key_path, sizeof(res->key_path), "%s.key",
		    prefix);
		b = snprintf(res->request_path, sizeof(res->request_path),
		    "%s.request", prefix);
	}
	if (a < 0 || (size_t)a >= sizeof(res->key_path) || b < 0 ||
	    (size_t)b >= sizeof(res->request_path))
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "the prefix is too "
		    "long");
	if (access(res->key_path, F_OK) == 0 ||
	    access(res->request_path, F_OK) == 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' already "
		    "exists: refusing to overwrite a key",
		    access(res->key_path, F_OK) == 0 ? res->key_path :
		    res->request_path);
	return 0;
}

int
enroll_begin(const struct enroll_params *p, struct enroll_result *res,
    struct smimp_err *err)
{
	struct secret_key sk;
	char addr[ADDRESS_MAX + 1];
	int ret = -1, wrote = 0;

	memset(res, 0, sizeof(*res));
	memset(&sk, 0, sizeof(sk));
	if (address_normalize(p->address, addr, err) != 0 ||
	    enroll_paths(p->prefix, res, err) != 0 ||
	    device_key_generate(&sk, addr, p->device, err) != 0 ||
	    enroll_request_make(&res->req, &sk, p->now + ENROLL_LIFETIME,
	    err) != 0)
		goto out;
	if (secret_key_write(&sk, res->key_path, p->pass, p->pass_len,
	    err) != 0)
		goto out;
	wrote = 1;
	if (file_write_atomic(res->request_path, res->req.raw,
	    res->req.raw_len, 0644, 0, err) != 0)
		goto out;
	enroll_code(&res->req, res->code);
	ret = 0;
out:
	if (ret != 0 && wrote)
		(void)unlink(res->key_path);
	secret_key_release(&sk);
	return ret;
}
