/*
 * age-vectors - run the age v1 test vectors (C2SP CCTV) through the
 * project's age layer.  Usage: age-vectors DIR.  Prints a line per
 * failure and ends with "N passed, N failed, N skipped".
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "age.h"
#include "exitcode.h"
#include "fileio.h"

#define MAX_IDS		8
#define MAX_FILE	(64 * 1024 * 1024)

struct vector {
	char expect[32];
	char payload[65];
	char *identities[MAX_IDS];
	size_t nids;
	char *passphrases[MAX_IDS];
	size_t npass;
	int armored;
	int compressed;
	int unknown_key;
	unsigned char *body;
	size_t body_len;
};

static int
inflate_body(struct vector *v)
{
	size_t cap = 32 * 1024 * 1024;
	unsigned char *out = malloc(cap);
	uLongf len = cap;

	if (out == NULL)
		return -1;
	if (uncompress(out, &len, v->body, v->body_len) != Z_OK) {
		free(out);
		return -1;
	}
	v->body = out;
	v->body_len = len;
	return 0;
}

static int
parse_vector(unsigned char *buf, size_t len, struct vector *v)
{
	char *p = (char *)buf, *end = (char *)buf + len;

	memset(v, 0, sizeof(*v));
	while (p < end && *p != '\n') {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;

		if (nl == NULL)
			return -1;
		*nl = '\0';
		colon = strstr(p, ": ");
		if (colon == NULL)
			return -1;
		*colon = '\0';
		colon += 2;
		if (strcmp(p, "expect") == 0)
			snprintf(v->expect, sizeof(v->expect), "%s", colon);
		else if (strcmp(p, "payload") == 0)
			snprintf(v->payload, sizeof(v->payload), "%s", colon);
		else if (strcmp(p, "identity") == 0 && v->nids < MAX_IDS)
			v->identities[v->nids++] = colon;
		else if (strcmp(p, "passphrase") == 0 && v->npass < MAX_IDS)
			v->passphrases[v->npass++] = colon;
		else if (strcmp(p, "armored") == 0)
			v->armored = strcmp(colon, "yes") == 0;
		else if (strcmp(p, "compressed") == 0)
			v->compressed = strcmp(colon, "zlib") == 0;
		else if (strcmp(p, "file key") != 0 &&
		    strcmp(p, "comment") != 0)
			v->unknown_key = 1;
		p = nl + 1;
	}
	if (p >= end)
		return -1;
	v->body = (unsigned char *)p + 1;
	v->body_len = (size_t)(end - p - 1);
	if (v->compressed)
		return inflate_body(v);
	return 0;
}

static const char *
class_name(int detail)
{
	switch (detail) {
	case AGE_FAIL_NONE: return "success";
	case AGE_FAIL_ARMOR: return "armor failure";
	case AGE_FAIL_HEADER: return "header failure";
	case AGE_FAIL_NO_MATCH: return "no match";
	case AGE_FAIL_HMAC: return "HMAC failure";
	case AGE_FAIL_PAYLOAD: return "payload failure";
	default: return "I/O failure";
	}
}

/* Decrypt v's body; returns the failure class, hex SHA-256 in hash. */
static int
run_vector(const struct vector *v, char hash[65])
{
	struct age_identity ids[2 * MAX_IDS];
	unsigned char sks[MAX_IDS][32], buf[65536], digest[32];
	crypto_hash_sha256_state sha;
	struct age_decryptor *d = NULL;
	struct smimp_err err;
	struct age_in *in = NULL;
	size_t n = 0, i, got;
	int cls = AGE_FAIL_NONE;
	FILE *tmp;

	crypto_hash_sha256_init(&sha);
	memset(&err, 0, sizeof(err));
	for (i = 0; i < v->nids; i++) {
		if (age_identity_decode(v->identities[i], sks[i]) != 0)
			continue;
		ids[n].type = AGE_ID_X25519;
		ids[n].x25519_secret = sks[i];
		n++;
	}
	for (i = 0; i < v->npass; i++) {
		ids[n].type = AGE_ID_SCRYPT;
		ids[n].passphrase = v->passphrases[i];
		ids[n].passphrase_len = strlen(v->passphrases[i]);
		n++;
	}
	tmp = tmpfile();
	if (tmp == NULL || fwrite(v->body, 1, v->body_len, tmp) != v->body_len
	    || fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0)
		return AGE_FAIL_IO;
	in = v->armored ? age_in_open_fd_armored(fileno(tmp), &err) :
	    age_in_open_fd(fileno(tmp), &err);
	if (in == NULL) {
		cls = err.detail;
		goto out;
	}
	d = age_decrypt_begin(in, ids, n, &err);
	if (d == NULL) {
		cls = err.detail;
		goto out;
	}
	for (;;) {
		if (age_decrypt_read(d, buf, sizeof(buf), &got, &err) != 0) {
			cls = err.detail;
			break;
		}
		if (got == 0)
			break;
		crypto_hash_sha256_update(&sha, buf, got);
	}
out:
	crypto_hash_sha256_final(&sha, digest);
	sodium_bin2hex(hash, 65, digest, sizeof(digest));
	age_decrypt_free(d);
	age_in_free(in);
	fclose(tmp);
	return cls;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/vectors/age";
	char *names[512], path[4096], hash[65];
	size_t nnames = 0, i, passed = 0, failed = 0, skipped = 0;
	struct dirent *de;
	DIR *dp;

	if (sodium_init() < 0)
		return 1;
	dp = opendir(dir);
	if (dp == NULL) {
		fprintf(stderr, "age-vectors: cannot open '%s': %s\n", dir,
		    strerror(errno));
		return 1;
	}
	while ((de = readdir(dp)) != NULL && nnames < 512)
		if (de->d_name[0] != '.' && strchr(de->d_name, '.') == NULL)
			names[nnames++] = strdup(de->d_name);
	closedir(dp);
	qsort(names, nnames, sizeof(names[0]), cmp_names);
	for (i = 0; i < nnames; i++) {
		struct smimp_err err;
		unsigned char *raw;
		struct vector v;
		size_t len, k;
		int cls, pq = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (file_read_all(path, MAX_FILE, &raw, &len, &err) != 0 ||
		    parse_vector(raw, len, &v) != 0) {
			printf("FAIL %s: cannot read the vector\n", names[i]);
			failed++;
			continue;
		}
		for (k = 0; k < v.nids; k++)
			if (strncmp(v.identities[k], "AGE-SECRET-KEY-PQ-1",
			    19) == 0)
				pq = 1;
		if (pq || v.unknown_key) {
			printf("skip %s: %s\n", names[i], pq ?
			    "ML-KEM-768+X25519 identities are not supported" :
			    "unknown header key");
			skipped++;
			goto next;
		}
		cls = run_vector(&v, hash);
		if (strcmp(class_name(cls), v.expect) != 0) {
			printf("FAIL %s: expected %s, got %s\n", names[i],
			    v.expect, class_name(cls));
			failed++;
		} else if (v.payload[0] != '\0' && strcmp(hash, v.payload)) {
			printf("FAIL %s: payload hash %s, expected %s\n",
			    names[i], hash, v.payload);
			failed++;
		} else {
			passed++;
		}
	next:
		if (v.compressed)
			free(v.body);
		free(raw);
		free(names[i]);
	}
	printf("%zu passed, %zu failed, %zu skipped\n", passed, failed,
	    skipped);
	return failed == 0 && passed > 0 ? 0 : 1;
}
