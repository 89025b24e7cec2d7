/*
 * devices - the limits and rules of device records, enrollment requests,
 * their codes and device key files (doc/PROTOCOL.md 2 "Devices", 3
 * "Device keys and enrollment"), through the library.
 *
 *	devices DIR	checks, writing scratch files in DIR
 *	devices request KEY EXPIRES
 *			the enrollment request of the device key file KEY,
 *			expiring at EXPIRES (seconds since the epoch), on
 *			standard output: what smimp-keygen --device would
 *			write at another time (an expired request)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enroll.h"
#include "exitcode.h"
#include "fileio.h"
#include "idlog.h"
#include "keys.h"
#include "util.h"

#include "check.h"

#define NOW	1767225600	/* 2026-01-01T00:00:00Z */

static unsigned char id_pk[32], id_sk[64], rec_pk[32], rec_sk[64];
static unsigned char enc_pk[32];

/* A device-add of name with keys from seed byte b, by the identity. */
static int
add(struct idlog *log, const char *name, unsigned int b,
    struct smimp_err *err)
{
	unsigned char seed[32], pk[32], sk[64], enc[32];
	struct idrec_new r;

	memset(seed, (int)(b & 0xff), 32);
	seed[0] = (unsigned char)(b >> 8);
	seed[1] = 0xd0;
	crypto_sign_seed_keypair(pk, sk, seed);
	crypto_scalarmult_base(enc, seed);
	memset(&r, 0, sizeof(r));
	r.type = IDREC_DEVICE_ADD;
	r.date = NOW;
	r.device = name;
	r.scope = IDDEV_SEND;
	r.device_signing_key = pk;
	r.device_encryption_key = enc;
	return idlog_append(log, &r, id_sk, err);
}

static int
del(struct idlog *log, const char *name, struct smimp_err *err)
{
	struct idrec_new r;

	memset(&r, 0, sizeof(r));
	r.type = IDREC_DEVICE_REMOVE;
	r.date = NOW;
	r.device = name;
	return idlog_append(log, &r, id_sk, err);
}

static void
names(void)
{
	check(iddev_name_valid("a") && iddev_name_valid("ci-runner-2") &&
	    iddev_name_valid("0") && iddev_name_valid(
	    "abcdefghijklmnopqrstuvwxyz012345"), "device names of 1 to 32 "
	    "characters of a-z 0-9 -");
	check(!iddev_name_valid("") && !iddev_name_valid(
	    "abcdefghijklmnopqrstuvwxyz0123456") && !iddev_name_valid("-a") &&
	    !iddev_name_valid("Phone") && !iddev_name_valid("a_b") &&
	    !iddev_name_valid("a b") && !iddev_name_valid("caf\xc3\xa9"),
	    "no empty name, none of 33, no leading '-', no upper case, '_', "
	    "space or UTF-8");
}

/* 64 live devices; the 65th refused; one removed makes room. */
static void
limits(void)
{
	struct smimp_err err;
	struct idlog log;
	char name[16];
	unsigned int i;
	int ok = 1, r;

	if (idlog_genesis(&log, "alice@example.org", id_sk, enc_pk, rec_pk,
	    NOW, &err) != 0) {
		check(0, "genesis");
		return;
	}
	for (i = 0; i < IDLOG_MAX_DEVICES && ok; i++) {
		(void)snprintf(name, sizeof(name), "d%u", i);
		ok = add(&log, name, i, &err) == 0;
	}
	check(ok && log.nlive == 64, "64 devices live at once");
	r = add(&log, "d64", 64, &err);
	check(r != 0 && log.nlive == 64 && strcmp(err.msg, "identity record "
	    "65: more than 64 devices") == 0, "a 65th live device: refused");
	check(del(&log, "d3", &err) == 0 && add(&log, "d64", 64, &err) == 0 &&
	    log.nlive == 64 && log.ndevices == 65, "one removed, another may "
	    "come: 64 live, 65 known");
	r = add(&log, "d3", 3, &err);
	check(r != 0 && strstr(err.msg, "were those of device 'd3' before") !=
	    NULL, "a removed device's keys, under its own name: refused");
	r = del(&log, "Upper", &err);
	check(r != 0 && err.code == SMIMP_EXIT_USAGE, "the writer refuses a "
	    "device name of the wrong form");
	idlog_release(&log);
}

/* A record whose device line or scope line is changed: refused. */
static void
fields(void)
{
	static const struct { const char *from, *to, *why; } cases[] = {
		{ "device: ci\n", "device: Ci\n", "bad or missing device" },
		{ "device: ci\n", "device: -ci\n", "bad or missing device" },
		{ "scope: send\n", "scope: all\n", "bad or missing scope" },
		{ "scope: send\n", "scope: send \n", "bad or missing scope" },
		{ "scope: send\n", "", "bad or missing scope" },
		{ "device: ci\n", "", "bad or missing device" },
	};
	struct smimp_err err;
	struct idlog log, bad;
	struct sbuf sb;
	char what[128];
	size_t i;

	if (idlog_genesis(&log, "alice@example.org", id_sk, enc_pk, rec_pk,
	    NOW, &err) != 0 || add(&log, "ci", 1, &err) != 0) {
		check(0, "device log");
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strstr((const char *)log.recs[1].raw,
		    cases[i].from);
		size_t off = (size_t)((const unsigned char *)at - log.raw);
		int r;

		sbuf_init(&sb, 1 << 16);
		(void)sbuf_add(&sb, log.raw, off);
		(void)sbuf_add(&sb, cases[i].to, strlen(cases[i].to));
		(void)sbuf_add(&sb, at + strlen(cases[i].from), log.raw_len -
		    off - strlen(cases[i].from));
		r = idlog_parse(&bad, (unsigned char *)sb.buf, sb.len, &err);
		(void)snprintf(what, sizeof(what), "'%.*s' as '%.*s': %s",
		    (int)strlen(cases[i].from) - 1, cases[i].from,
		    (int)(strlen(cases[i].to) > 0 ? strlen(cases[i].to) - 1 :
		    0), cases[i].to, cases[i].why);
		check(r != 0 && strstr(err.msg, cases[i].why) != NULL, what);
		if (r == 0)
			idlog_release(&bad);
		sbuf_release(&sb);
	}
	idlog_release(&log);
}

/* A request changed by one byte, or past its limits: refused. */
static void
requests(const char *dir)
{
	struct enroll_request req, got;
	struct secret_key sk, back;
	struct passphrase_source src = { NULL, 0 };
	struct smimp_err err;
	unsigned char buf[ENROLL_MAX_BYTES + 2];
	char code[ENROLL_CODE_STRLEN], lower[ENROLL_CODE_STRLEN];
	char path[4096];
	size_t i, flips = 0;

	if (device_key_generate(&sk, "bob@example.net", "phone", &err) != 0 ||
	    enroll_request_make(&req, &sk, NOW + ENROLL_LIFETIME, &err) != 0) {
		check(0, err.msg);
		return;
	}
	check(enroll_request_parse(&got, req.raw, req.raw_len, &err) == 0 &&
	    strcmp(got.device, "phone") == 0 && got.expires == NOW + 600 &&
	    memcmp(got.signing_key, sk.identity_public, 32) == 0,
	    "a request parses, and names the device's keys");
	for (i = 0; i < req.raw_len; i++) {
		memcpy(buf, req.raw, req.raw_len);
		buf[i] ^= 0x01;
		if (enroll_request_parse(&got, buf, req.raw_len, &err) == 0)
			flips++;
	}
	check(flips == 0, "every byte of a request flipped: refused");
	memcpy(buf, req.raw, req.raw_len);
	buf[req.raw_len] = '\n';
	check(enroll_request_parse(&got, buf, req.raw_len + 1, &err) != 0 &&
	    strstr(err.msg, "bytes after the signature") != NULL,
	    "an empty line after the signature: refused");
	memset(buf, 'a', sizeof(buf));
	check(enroll_request_parse(&got, buf, ENROLL_MAX_BYTES + 1, &err) !=
	    0 && strstr(err.msg, "too long") != NULL, "a request of 1025 "
	    "bytes: refused unread");
	check(enroll_request_current(&req, NOW, &err) == 0 &&
	    enroll_request_current(&req, NOW + 599, &err) == 0,
	    "in force for its 10 minutes");
	check(enroll_request_current(&req, NOW + 600, &err) != 0 &&
	    strstr(err.msg, "expired at 2026-01-01T00:10:00Z") != NULL,
	    "expired at its expiry");
	check(enroll_request_current(&req, NOW - 301, &err) != 0 &&
	    strstr(err.msg, "more than 15 minutes ahead") != NULL,
	    "an expiry more than 15 minutes ahead: refused");
	enroll_code(&req, code);
	for (i = 0; i < sizeof(code); i++)
		lower[i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ?
		    code[i] + 32 : code[i]);
	check(strlen(code) == 11 && code[5] == '-' &&
	    enroll_code_check(&req, code, &err) == 0 &&
	    enroll_code_check(&req, lower, &err) == 0, "the code, in "
	    "either case");
	lower[0] = lower[0] == 'a' ? 'b' : 'a';
	check(enroll_code_check(&req, lower, &err) != 0 &&
	    err.code == SMIMP_EXIT_BADMSG, "another code: refused (3)");
	check(enroll_code_check(&req, "ABCDE-FGHI", &err) != 0 &&
	    err.code == SMIMP_EXIT_USAGE && enroll_code_check(&req,
	    "ABCDE-FGHIJK", &err) != 0 && err.code == SMIMP_EXIT_USAGE &&
	    enroll_code_check(&req, "ABCDE-FGHI9", &err) != 0 &&
	    err.code == SMIMP_EXIT_USAGE, "no code at all (9, 11 "
	    "characters, a 9): a usage error");
	(void)snprintf(path, sizeof(path), "%s/phone.key", dir);
	check(secret_key_write(&sk, path, NULL, 0, &err) == 0 &&
	    secret_key_load(&back, path, &src, &err) == 0 && back.is_device &&
	    strcmp(back.device, "phone") == 0 &&
	    memcmp(back.identity_public, sk.identity_public, 32) == 0,
	    "a device key file written and read back");
	secret_key_release(&back);
	secret_key_release(&sk);
}

/* devices request KEY EXPIRES */
static int
request(const char *key, const char *expires)
{
	struct passphrase_source src = { NULL, 0 };
	struct enroll_request req;
	struct smimp_err err;
	struct secret_key sk;
	uint64_t at;
	int r;

	if (parse_u64(expires, strlen(expires), &at) != 0 ||
	    secret_key_load(&sk, key, &src, &err) != 0) {
		fprintf(stderr, "devices: cannot read '%s' or '%s'\n", key,
		    expires);
		return 1;
	}
	r = enroll_request_make(&req, &sk, (int64_t)at, &err);
	secret_key_release(&sk);
	if (r != 0 || fd_write_all(1, req.raw, req.raw_len) != 0) {
		fprintf(stderr, "devices: %s\n", r != 0 ? err.msg : "write");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned char seed[32], enc_sk[32];

	if (sodium_init() < 0)
		return 1;
	if (argc == 4 && strcmp(argv[1], "request") == 0)
		return request(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: devices DIR | request KEY EXPIRES\n");
		return 2;
	}
	memset(seed, 0x41, 32);
	crypto_sign_seed_keypair(id_pk, id_sk, seed);
	memset(seed, 0x43, 32);
	crypto_sign_seed_keypair(rec_pk, rec_sk, seed);
	memset(enc_sk, 0x42, 32);
	crypto_scalarmult_base(enc_pk, enc_sk);
	names();
	limits();
	fields();
	requests(argv[1]);
	return check_summary();
}
