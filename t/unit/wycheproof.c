/*
 * wycheproof - run the Wycheproof vectors through the primitives exactly
 * as smimp calls them: its HKDF, HMAC-SHA-256 through the init/update/
 * final interface, X25519 through crypto_scalarmult (an all-zero shared
 * secret is refused, as age requires; age_x25519_public_usable must
 * agree), Ed25519 verification, and the
 * two ChaCha20-Poly1305 AEADs.  Usage: wycheproof DIR.
 *
 * "acceptable" cases: X25519 must refuse every ZeroSharedSecret case and
 * compute the expected secret for every other one (doc/WYCHEPROOF.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "age.h"

#define MAX_FLAGS 64

struct tally {
	size_t passed, failed;
	char flag[MAX_FLAGS][48];
	size_t flag_n[MAX_FLAGS];
	size_t nflags;
};

static struct tally total;

/* Hex field of a test, decoded into malloc'd memory. */
static unsigned char *
hex(json_t *t, const char *key, size_t *len)
{
	const char *s = json_string_value(json_object_get(t, key));
	size_t slen = s != NULL ? strlen(s) : 0;
	unsigned char *out = malloc(slen / 2 + 1);

	*len = 0;
	if (out == NULL || s == NULL || sodium_hex2bin(out, slen / 2 + 1, s,
	    slen, NULL, len, NULL) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void
count_flags(struct tally *ty, json_t *t)
{
	json_t *flags = json_object_get(t, "flags"), *f;
	size_t i, k;

	json_array_foreach(flags, i, f) {
		const char *name = json_string_value(f);

		for (k = 0; k < ty->nflags; k++)
			if (strcmp(ty->flag[k], name) == 0)
				break;
		if (k == ty->nflags && ty->nflags < MAX_FLAGS)
			snprintf(ty->flag[ty->nflags++], 48, "%s", name);
		if (k < MAX_FLAGS)
			ty->flag_n[k]++;
	}
}

static int
has_flag(json_t *t, const char *flag)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(t, "flags"), i, f)
		if (strcmp(json_string_value(f), flag) == 0)
			return 1;
	return 0;
}

/* What smimp must do with a case: 1 accept, 0 reject. */
static int
expected(json_t *t, int acceptable_means)
{
	const char *r = json_string_value(json_object_get(t, "result"));

	if (strcmp(r, "valid") == 0)
		return 1;
	if (strcmp(r, "invalid") == 0)
		return 0;
	return acceptable_means;
}

static int
x25519_case(json_t *g, json_t *t)
{
	size_t pl, sl, xl;
	unsigned char *pub = hex(t, "public", &pl), *priv = hex(t, "private",
	    &sl), *shared = hex(t, "shared", &xl), out[32];
	int ok, want = expected(t, !has_flag(t, "ZeroSharedSecret"));

	(void)g;
	ok = pl == 32 && sl == 32 && crypto_scalarmult(out, priv, pub) == 0 &&
	    xl == 32 && memcmp(out, shared, 32) == 0;
	/*
	 * What a sealer asks before it wraps a key: usable exactly when
	 * the multiplication does not give all zeros (every such case is
	 * a point of low order, whatever the private key).
	 */
	if (pl == 32 && sl == 32 && age_x25519_public_usable(pub) !=
	    (crypto_scalarmult(out, priv, pub) == 0))
		ok = !want;
	free(pub);
	free(priv);
	free(shared);
	return ok == want;
}

static int
ed25519_case(json_t *g, json_t *t)
{
	size_t kl, ml, sl;
	json_t *pk = json_object_get(g, "publicKey");
	unsigned char *key = hex(pk, "pk", &kl), *msg = hex(t, "msg", &ml),
	    *sig = hex(t, "sig", &sl);
	int ok = kl == 32 && sl == 64 &&
	    crypto_sign_verify_detached(sig, msg, ml, key) == 0;
	int want = expected(t, 0);

	free(key);
	free(msg);
	free(sig);
	return ok == want;
}

static int
hkdf_case(json_t *g, json_t *t)
{
	size_t il, sl, nl, ol, size = (size_t)json_integer_value(
	    json_object_get(t, "size"));
	unsigned char *ikm = hex(t, "ikm", &il), *salt = hex(t, "salt", &sl),
	    *info = hex(t, "info", &nl), *okm = hex(t, "okm", &ol);
	unsigned char *out = malloc(size + 1);
	int ok = out != NULL && hkdf_sha256(out, size, ikm, il, salt, sl,
	    info, nl) == 0 && ol == size && memcmp(out, okm, size) == 0;
	int want = expected(t, 0);

	(void)g;
	free(ikm);
	free(salt);
	free(info);
	free(okm);
	free(out);
	return ok == want;
}

static int
hmac_case(json_t *g, json_t *t)
{
	size_t kl, ml, tl, tag_bytes = (size_t)json_integer_value(
	    json_object_get(g, "tagSize")) / 8;
	unsigned char *key = hex(t, "key", &kl), *msg = hex(t, "msg", &ml),
	    *tag = hex(t, "tag", &tl), mac[32];
	crypto_auth_hmacsha256_state st;
	int ok, want = expected(t, 0);

	crypto_auth_hmacsha256_init(&st, key, kl);
	crypto_auth_hmacsha256_update(&st, msg, ml);
	crypto_auth_hmacsha256_final(&st, mac);
	ok = tl == tag_bytes && tag_bytes <= 32 &&
	    sodium_memcmp(mac, tag, tag_bytes) == 0;
	free(key);
	free(msg);
	free(tag);
	return ok == want;
}

static int
aead_case(json_t *g, json_t *t, int xchacha)
{
	size_t kl, il, al, ml, cl, tl;
	unsigned char *key = hex(t, "key", &kl), *iv = hex(t, "iv", &il),
	    *aad = hex(t, "aad", &al), *msg = hex(t, "msg", &ml),
	    *ct = hex(t, "ct", &cl), *tag = hex(t, "tag", &tl);
	unsigned char *in = malloc(cl + tl + 1), *out = malloc(cl + tl + 1);
	size_t want_iv = xchacha ? 24 : 12;
	unsigned long long outlen = 0;
	int ok = 0, want = expected(t, 0), r;

	(void)g;
	if (in != NULL && out != NULL && kl == 32 && il == want_iv &&
	    tl == 16) {
		memcpy(in, ct, cl);
		memcpy(in + cl, tag, tl);
		r = xchacha ?
		    crypto_aead_xchacha20poly1305_ietf_decrypt(out, &outlen,
		    NULL, in, cl + tl, aad, al, iv, key) :
		    crypto_aead_chacha20poly1305_ietf_decrypt(out, &outlen,
		    NULL, in, cl + tl, aad, al, iv, key);
		ok = r == 0 && outlen == ml && memcmp(out, msg, ml) == 0;
		/* A valid case must also encrypt to exactly ct || tag. */
		if (ok && want) {
			r = xchacha ?
			    crypto_aead_xchacha20poly1305_ietf_encrypt(out,
			    &outlen, msg, ml, aad, al, NULL, iv, key) :
			    crypto_aead_chacha20poly1305_ietf_encrypt(out,
			    &outlen, msg, ml, aad, al, NULL, iv, key);
			ok = r == 0 && outlen == cl + tl &&
			    memcmp(out, in, cl + tl) == 0;
		}
	}
	free(key);
	free(iv);
	free(aad);
	free(msg);
	free(ct);
	free(tag);
	free(in);
	free(out);
	return ok == want;
}

static int
chacha_case(json_t *g, json_t *t)
{
	return aead_case(g, t, 0);
}

static int
xchacha_case(json_t *g, json_t *t)
{
	return aead_case(g, t, 1);
}

static const struct suite {
	const char *file;
	int (*run)(json_t *, json_t *);
} suites[] = {
	{ "x25519_test.json", x25519_case },
	{ "ed25519_test.json", ed25519_case },
	{ "hkdf_sha256_test.json", hkdf_case },
	{ "hmac_sha256_test.json", hmac_case },
	{ "chacha20_poly1305_test.json", chacha_case },
	{ "xchacha20_poly1305_test.json", xchacha_case },
};

static int
run_suite(const char *dir, const struct suite *s)
{
	char path[4096];
	json_error_t jerr;
	json_t *root, *g, *t;
	struct tally ty;
	size_t gi, ti, k;

	memset(&ty, 0, sizeof(ty));
	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		printf("FAIL %s: cannot load: %s\n", s->file, jerr.text);
		total.failed++;
		return -1;
	}
	json_array_foreach(json_object_get(root, "testGroups"), gi, g) {
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			count_flags(&ty, t);
			if (s->run(g, t)) {
				ty.passed++;
			} else {
				ty.failed++;
				printf("FAIL %s tcId %lld (%s)\n", s->file,
				    (long long)json_integer_value(
				    json_object_get(t, "tcId")),
				    json_string_value(json_object_get(t,
				    "result")));
			}
		}
	}
	printf("%s: %zu passed, %zu failed; flags:", s->file, ty.passed,
	    ty.failed);
	for (k = 0; k < ty.nflags; k++)
		printf(" %s=%zu", ty.flag[k], ty.flag_n[k]);
	printf("\n");
	total.passed += ty.passed;
	total.failed += ty.failed;
	json_decref(root);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/vectors/wycheproof";
	size_t i;

	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		(void)run_suite(dir, &suites[i]);
	printf("%zu passed, %zu failed, 0 skipped\n", total.passed,
	    total.failed);
	return total.failed == 0 && total.passed > 0 ? 0 : 1;
}
