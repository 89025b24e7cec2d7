/*
 * policytool - consent policies (lib/policy.h) for the tests.
 *
 *	policytool vectors DIR		check DIR/policy.txt and
 *					DIR/policy.statement, the vector of
 *					doc/PROTOCOL.md 8.8
 *	policytool vectors --generate DIR	write them
 *	policytool make KEY DATE UNKNOWN ALLOWANCE [block:NAME|allow:NAME...]
 *					a statement signed by KEY (a .key
 *					file without passphrase) on stdout;
 *					"@FILE" stands for the lines of FILE
 *	policytool parse FILE [PUB]	"ok: B blocked, A allowed", verified
 *					under the identity key of PUB when
 *					given, or the error (exit 1)
 *	policytool classify FILE ADDRESS	blocked, allowed or unknown
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fileio.h"
#include "idlog.h"
#include "keys.h"
#include "policy.h"
#include "util.h"

#include "check.h"

#define NAMES_MAX	(POLICY_MAX_ENTRIES + 8)

/* The vector: bob's identity key (seed 11*32), salt 00 01 .. 0f. */
static const char *const v_block[] = { "mallory@example.com",
    "@spam.example" };
static const char *const v_allow[] = { "alice@example.org",
    "@example.net" };
static const struct { const char *who, *class; } v_classes[] = {
	{ "mallory@example.com", "blocked" },
	{ "eve@spam.example", "blocked" },
	{ "alice@example.org", "allowed" },
	{ "dave@example.net", "allowed" },
	{ "carol@example.com", "unknown" },
};
#define V_DATE		"2026-11-26T20:00:00Z"
#define V_ADDRESS	"bob@example.net"

static const char *
class_name(enum policy_class c)
{
	return c == POLICY_BLOCKED ? "blocked" : c == POLICY_ALLOWED ?
	    "allowed" : "unknown";
}

/* The vector's statement, and its entries as text. */
static int
vector_make(struct sbuf *statement, struct sbuf *txt)
{
	unsigned char seed[32], pk[32], sk[64], salt[POLICY_SALT_SIZE];
	unsigned char e[POLICY_ENTRY_SIZE];
	char hex[POLICY_ENTRY_SIZE * 2 + 1], saltx[POLICY_SALT_SIZE * 2 + 1];
	struct policy_names names = { v_block, 2, v_allow, 2 };
	struct smimp_err err;
	struct signer me;
	struct policy p;
	int64_t date;
	size_t i;
	int r;

	memset(seed, 0x11, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	for (i = 0; i < POLICY_SALT_SIZE; i++)
		salt[i] = (unsigned char)i;
	sodium_bin2hex(saltx, sizeof(saltx), salt, sizeof(salt));
	(void)time_parse(V_DATE, strlen(V_DATE), &date);
	(void)sbuf_addf(txt, "identity-seed: 11*32\naddress: %s\ndate: %s\n"
	    "unknown: pow:22\nallowance: 100\nsalt: %s\n", V_ADDRESS, V_DATE,
	    saltx);
	for (i = 0; i < 2; i++) {
		policy_entry(salt, v_block[i], e);
		sodium_bin2hex(hex, sizeof(hex), e, sizeof(e));
		(void)sbuf_addf(txt, "block %s: %s\n", v_block[i], hex);
	}
	for (i = 0; i < 2; i++) {
		policy_entry(salt, v_allow[i], e);
		sodium_bin2hex(hex, sizeof(hex), e, sizeof(e));
		(void)sbuf_addf(txt, "allow %s: %s\n", v_allow[i], hex);
	}
	for (i = 0; i < sizeof(v_classes) / sizeof(v_classes[0]); i++)
		(void)sbuf_addf(txt, "class %s: %s\n", v_classes[i].who,
		    v_classes[i].class);
	signer_secret(&me, V_ADDRESS, sk);
	r = policy_build(&p, V_ADDRESS, date, POLICY_POW, 22, 100, &names,
	    salt, &err) == 0 && policy_write(&p, &me, statement, &err) == 0 ?
	    0 : -1;
	policy_release(&p);
	sodium_memzero(sk, sizeof(sk));
	return r;
}

static int
file_is(const char *dir, const char *name, const struct sbuf *want)
{
	char path[4096];
	unsigned char *got;
	struct smimp_err err;
	size_t len;
	int same;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, POLICY_MAX_BYTES, &got, &len, &err) != 0)
		return 0;
	same = len == want->len && memcmp(got, want->buf, len) == 0;
	free(got);
	return same;
}

/* What the library says of the committed statement, as the vector does. */
static void
vector_read_back(const char *dir)
{
	unsigned char seed[32], pk[32], sk[64], *data;
	char path[4096], what[128];
	struct smimp_err err;
	struct policy p;
	size_t len, i;
	int ok;

	memset(seed, 0x11, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	(void)snprintf(path, sizeof(path), "%s/policy.statement", dir);
	if (file_read_all(path, POLICY_MAX_BYTES, &data, &len, &err) != 0) {
		check(0, "policy.statement: readable");
		return;
	}
	ok = policy_parse(&p, data, len, &err) == 0;
	check(ok, "policy.statement: parses");
	check(ok && policy_verify(&p, data, pk, &err) == 0,
	    "policy.statement: verifies under bob's identity key");
	for (i = 0; ok && i < sizeof(v_classes) / sizeof(v_classes[0]); i++) {
		(void)snprintf(what, sizeof(what), "policy.statement: %s is %s",
		    v_classes[i].who, v_classes[i].class);
		check(strcmp(class_name(policy_classify(&p, v_classes[i].who)),
		    v_classes[i].class) == 0, what);
	}
	/* One bit changed anywhere signed: refused. */
	data[len / 2] ^= 1;
	policy_release(&p);
	check(policy_parse(&p, data, len, &err) != 0 ||
	    policy_verify(&p, data, pk, &err) != 0,
	    "policy.statement: a flipped bit is refused");
	policy_release(&p);
	free(data);
}

static int
vectors(int argc, char **argv)
{
	struct sbuf st, txt;
	struct smimp_err err;
	char path[4096];
	int gen = argc > 2 && strcmp(argv[2], "--generate") == 0;
	const char *dir = argv[gen ? 3 : 2];

	sbuf_init(&st, POLICY_MAX_BYTES);
	sbuf_init(&txt, 1 << 16);
	if (vector_make(&st, &txt) != 0) {
		fprintf(stderr, "policytool: cannot make the vector\n");
		return 1;
	}
	if (gen) {
		(void)snprintf(path, sizeof(path), "%s/policy.txt", dir);
		if (file_write_atomic(path, txt.buf, txt.len, 0644, 1,
		    &err) != 0)
			return 1;
		(void)snprintf(path, sizeof(path), "%s/policy.statement", dir);
		return file_write_atomic(path, st.buf, st.len, 0644, 1,
		    &err) != 0;
	}
	check(file_is(dir, "policy.txt", &txt), "policy.txt: the entries "
	    "and classes the library computes");
	check(file_is(dir, "policy.statement", &st), "policy.statement: the "
	    "bytes the writer makes");
	vector_read_back(dir);
	(void)check_summary();
	sbuf_release(&st);
	sbuf_release(&txt);
	return failed == 0 && passed > 0 ? 0 : 1;
}

/* One "block:NAME" or "allow:NAME" into names. */
static void
add_name(struct policy_names *names, const char **block, const char **allow,
    const char *arg)
{
	if (names->nblock + names->nallow == NAMES_MAX)
		return;
	if (strncmp(arg, "block:", 6) == 0)
		block[names->nblock++] = arg + 6;
	else
		allow[names->nallow++] = arg + 6;
}

/* The lines of FILE as names; its text stays for them to point into. */
static int
add_file(struct policy_names *names, const char **block, const char **allow,
    const char *path)
{
	unsigned char *text;
	struct smimp_err err;
	char *line, *next;
	size_t len;

	if (file_read_all(path, 64 << 20, &text, &len, &err) != 0)
		return -1;
	for (line = (char *)text; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next == NULL)
			next = line + strlen(line);
		else
			*next++ = '\0';
		add_name(names, block, allow, line);
	}
	return 0;
}

/* make: names as "block:NAME" or "allow:NAME", or "@FILE" of them. */
static int
make(int argc, char **argv)
{
	struct passphrase_source src = { NULL, 0 };
	static const char *block[NAMES_MAX], *allow[NAMES_MAX];
	struct policy_names names = { block, 0, allow, 0 };
	enum policy_unknown u;
	unsigned int bits;
	struct secret_key sk;
	struct smimp_err err;
	struct signer me;
	struct policy p;
	struct sbuf out;
	int64_t date;
	uint64_t allowance;
	int i;

	if (argc < 6 || secret_key_load(&sk, argv[2], &src, &err) != 0 ||
	    time_parse(argv[3], strlen(argv[3]), &date) != 0 ||
	    policy_unknown_parse(argv[4], &u, &bits) != 0 ||
	    parse_u64(argv[5], strlen(argv[5]), &allowance) != 0) {
		fprintf(stderr, "policytool: bad arguments\n");
		return 2;
	}
	for (i = 6; i < argc; i++) {
		if (argv[i][0] != '@')
			add_name(&names, block, allow, argv[i]);
		else if (add_file(&names, block, allow, argv[i] + 1) != 0)
			return 2;
	}
	sbuf_init(&out, POLICY_MAX_BYTES);
	signer_secret(&me, sk.address, sk.identity_secret);
	if (policy_build(&p, sk.address, date, u, bits, (uint32_t)allowance,
	    &names, NULL, &err) != 0 || policy_write(&p, &me, &out,
	    &err) != 0) {
		fprintf(stderr, "policytool: %s\n", err.msg);
		return 1;
	}
	fwrite(out.buf, 1, out.len, stdout);
	policy_release(&p);
	sbuf_release(&out);
	secret_key_release(&sk);
	return 0;
}

static int
parse(int argc, char **argv)
{
	unsigned char *data;
	struct smimp_err err;
	struct policy p;
	struct idlog log;
	size_t len;
	int r;

	if (argc < 3 || file_read_all(argv[2], POLICY_MAX_BYTES + 1, &data,
	    &len, &err) != 0)
		return 2;
	r = policy_parse(&p, data, len, &err);
	if (r == 0 && argc > 3) {
		if (idlog_read_file(&log, argv[3], &err) != 0)
			return 2;
		r = policy_verify(&p, data, log.identity_key, &err);
		idlog_release(&log);
	}
	if (r == 0)
		printf("ok: %zu blocked, %zu allowed\n", p.nblock, p.nallow);
	else
		printf("%s\n", err.msg);
	policy_release(&p);
	free(data);
	return r != 0;
}

static int
classify(const char *file, const char *address)
{
	unsigned char *data;
	struct smimp_err err;
	struct policy p;
	size_t len;
	int r;

	if (file_read_all(file, POLICY_MAX_BYTES + 1, &data, &len, &err) != 0)
		return 2;
	r = policy_parse(&p, data, len, &err);
	if (r == 0)
		printf("%s\n", class_name(policy_classify(&p, address)));
	else
		printf("%s\n", err.msg);
	policy_release(&p);
	free(data);
	return r != 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0 || argc < 3)
		return 2;
	if (strcmp(argv[1], "vectors") == 0)
		return vectors(argc, argv);
	if (strcmp(argv[1], "make") == 0)
		return make(argc, argv);
	if (strcmp(argv[1], "parse") == 0)
		return parse(argc, argv);
	if (strcmp(argv[1], "classify") == 0 && argc == 4)
		return classify(argv[2], argv[3]);
	fprintf(stderr, "policytool: unknown command\n");
	return 2;
}
