/*
 * worktool - proof of work (lib/work.c) for the tests and the bench:
 *
 *	worktool check		the vectors of doc/PROTOCOL.md ("Proof of
 *				work"), what a proof is bound to, and the
 *				Smimp-Work and Smimp-Requires syntax; "ok
 *				NAME" or "FAIL NAME" per check, then a count
 *	worktool print		the vectors' values, as the document gives
 *	worktool bench RUNS	what a proof costs here: "name value" lines
 *				(bench/work.sh prints them)
 *	worktool prove KEY TO MID BODYFILE BITS RCPT...
 *				stamp a submission now as KEY's owner (a key
 *				without passphrase), each domain of TO its
 *				own stamp, and solve for each RCPT: prints
 *				the Smimp-Stamps, Smimp-Stamp-Date and
 *				Smimp-Work headers, for tests that submit
 *				by hand (signreq)
 *	worktool prove-at DATE KEY TO MID BODYFILE BITS RCPT...
 *				the same, the stamps dated DATE (a
 *				stamp's date: 2026-11-26T20:00:00Z)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "fileio.h"
#include "keys.h"
#include "reqsig.h"
#include "stamp.h"
#include "work.h"

#include "check.h"

/* The vectors' stamp: fixed fields, the body hash bytes 00 01 .. 1f. */
#define V_FROM	"alice@example.org"
#define V_TO	"bob@example.net,dave@example.net"
#define V_MID	"work-vector@example.org"
#define V_DATE	"2026-11-26T20:00:00Z"
#define V_NONCE	"0123456789abcdef"
#define V_BITS	16

/* The answers, as doc/PROTOCOL.md gives them. */
#define A_SH	"06d8dca0d3d8f72d05a2c8080aa3545cd9c1769b5f8ab691d50cf5891fcdbcca"
#define A_HASH	"df7b80b6bca47e2facdcc6b542ba1cd93ec013dfc8aa35ca807dcda23904fe81"
#define A_VALUE	0
#define A_BOB	"0000000000013985"
#define A_DAVE	"000000000001025d"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
body_hash(unsigned char h[32])
{
	int i;

	for (i = 0; i < 32; i++)
		h[i] = (unsigned char)i;
}

/* SH of the vectors' stamp with one field changed (NULL: as it is). */
static void
sh_of(unsigned char sh[32], const char *from, const char *mid,
    const char *date)
{
	unsigned char h[32];

	body_hash(h);
	if (stamp_hash(sh, from != NULL ? from : V_FROM, V_TO,
	    mid != NULL ? mid : V_MID, h, date != NULL ? date : V_DATE) != 0)
		abort();
}

static unsigned int
value_for(const unsigned char sh[32], const char *rcpt,
    const unsigned char nonce[8])
{
	struct work_prefix p;

	work_prefix_init(&p, sh, rcpt);
	return work_value(&p, nonce);
}

/* The full hash of the vector's try, for the document. */
static void
try_hash(const unsigned char sh[32], const char *rcpt,
    const unsigned char nonce[8], char hex[65])
{
	struct work_prefix p;
	unsigned char h[32];

	work_prefix_init(&p, sh, rcpt);
	(void)crypto_generichash_update(&p.st, nonce, 8);
	(void)crypto_generichash_final(&p.st, h, 32);
	sodium_bin2hex(hex, 65, h, 32);
}

static void
solve_hex(const unsigned char sh[32], const char *rcpt, char hex[17])
{
	struct work_prefix p;
	unsigned char nonce[8];

	work_prefix_init(&p, sh, rcpt);
	(void)work_solve(&p, V_BITS, NULL, NULL, nonce);
	sodium_bin2hex(hex, 17, nonce, 8);
}

static void
nonce_of(const char *hex, unsigned char nonce[8])
{
	if (sodium_hex2bin(nonce, 8, hex, 16, NULL, NULL, NULL) != 0)
		abort();
}

static int
print_vectors(void)
{
	unsigned char sh[32], nonce[8];
	char hex[65], bob[17], dave[17];

	sh_of(sh, NULL, NULL, NULL);
	sodium_bin2hex(hex, sizeof(hex), sh, 32);
	printf("SH: %s\n", hex);
	nonce_of(V_NONCE, nonce);
	try_hash(sh, "bob@example.net", nonce, hex);
	printf("bob@example.net, nonce %s: hash %s, value %u\n", V_NONCE,
	    hex, value_for(sh, "bob@example.net", nonce));
	solve_hex(sh, "bob@example.net", bob);
	solve_hex(sh, "dave@example.net", dave);
	nonce_of(bob, nonce);
	printf("first nonce of value %d or more: bob@example.net %s "
	    "(value %u), ", V_BITS, bob, value_for(sh, "bob@example.net",
	    nonce));
	nonce_of(dave, nonce);
	printf("dave@example.net %s (value %u)\n", dave,
	    value_for(sh, "dave@example.net", nonce));
	return 0;
}

static void
check_vectors(void)
{
	unsigned char sh[32], other[32], nonce[8], cnonce[8];
	char hex[65], bob[17], dave[17];

	sh_of(sh, NULL, NULL, NULL);
	sodium_bin2hex(hex, sizeof(hex), sh, 32);
	check(strcmp(hex, A_SH) == 0, "vector: SH of the stamp's bytes");
	nonce_of(V_NONCE, nonce);
	try_hash(sh, "bob@example.net", nonce, hex);
	check(strcmp(hex, A_HASH) == 0, "vector: hash of prefix || nonce");
	check(value_for(sh, "bob@example.net", nonce) == A_VALUE,
	    "vector: value of the nonce");
	solve_hex(sh, "bob@example.net", bob);
	solve_hex(sh, "dave@example.net", dave);
	check(strcmp(bob, A_BOB) == 0, "vector: solved for bob");
	check(strcmp(dave, A_DAVE) == 0, "vector: solved for dave");

	/* What a proof is bound to: each change makes it worthless. */
	nonce_of(A_BOB, nonce);
	nonce_of(A_DAVE, cnonce);
	check(value_for(sh, "bob@example.net", nonce) >= V_BITS,
	    "bound: bob's proof holds for bob");
	check(value_for(sh, "dave@example.net", nonce) < V_BITS,
	    "bound: bob's proof does not hold for dave");
	check(value_for(sh, "bob@example.net", cnonce) < V_BITS,
	    "bound: dave's proof does not hold for bob");
	sh_of(other, NULL, "work-vector-2@example.org", NULL);
	check(value_for(other, "bob@example.net", nonce) < V_BITS,
	    "bound: not for another message id");
	sh_of(other, NULL, NULL, "2026-11-26T20:00:01Z");
	check(value_for(other, "bob@example.net", nonce) < V_BITS,
	    "bound: not for another date");
	sh_of(other, "dave@example.org", NULL, NULL);
	check(value_for(other, "bob@example.net", nonce) < V_BITS,
	    "bound: not for another sender");
}

static int
only_bob(const char *address, void *arg)
{
	(void)arg;
	return strcmp(address, "bob@example.net") == 0;
}

/* n proofs for user0@example.net .. into sb. */
static void
many_proofs(struct sbuf *sb, size_t n)
{
	unsigned char nonce[8] = { 0 };
	char addr[64];
	size_t i;

	for (i = 0; i < n; i++) {
		(void)snprintf(addr, sizeof(addr), "user%zu@example.net", i);
		if (work_header_add(sb, addr, nonce) != 0)
			abort();
	}
}

static void
check_header(void)
{
	static const char *const bad[] = {
		"", ",", "bob@example.net", "bob@example.net=",
		"=0123456789abcdef", "bob@example.net=0123456789abcde",
		"bob@example.net=0123456789abcdef0",
		"bob@example.net=0123456789ABCDEF",
		"Bob@example.net=0123456789abcdef",
		"bob#example.net=0123456789abcdef",
		"bob@example.net=0123456789abcdef,",
		",bob@example.net=0123456789abcdef",
		"bob@example.net=0123456789abcdef, carol@example.com="
		    "0123456789abcdef",
		" bob@example.net=0123456789abcdef",
		"bob@example.net =0123456789abcdef",
		"bob@example.net=0123456789abcdef,bob@example.net="
		    "fedcba9876543210",
		"bob@example.net=0123456789abcdef;carol@example.com="
		    "0123456789abcdef",
		"bob@example.net=0x23456789abcdef",
	};
	const char *good = "bob@example.net=0123456789abcdef,"
	    "carol@example.com=fedcba9876543210";
	unsigned char nonce[8], want[8];
	char name[128];
	struct sbuf sb;
	size_t i;

	check(work_header_check(good, NULL, NULL) == 0, "header: two proofs");
	nonce_of("fedcba9876543210", want);
	check(work_header_find(good, "carol@example.com", nonce) == 1 &&
	    memcmp(nonce, want, 8) == 0, "header: carol's proof found");
	check(work_header_find(good, "dave@example.com", nonce) == 0,
	    "header: none for dave");
	check(work_header_check(good, only_bob, NULL) != 0,
	    "header: a proof for someone not a recipient is refused");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(name, sizeof(name), "header: refused: \"%s\"",
		    bad[i]);
		check(work_header_check(bad[i], NULL, NULL) != 0, name);
	}
	sbuf_init(&sb, 1 << 20);
	many_proofs(&sb, WORK_MAX_PROOFS);
	check(work_header_check(sb.buf, NULL, NULL) == 0 &&
	    sb.len <= WORK_HEADER_MAX, "header: WORK_MAX_PROOFS proofs");
	many_proofs(&sb, 1);
	check(work_header_check(sb.buf, NULL, NULL) != 0,
	    "header: one more is refused");
	sbuf_release(&sb);
	sbuf_init(&sb, 1 << 20);
	(void)sbuf_addf(&sb, "%0*d@example.net=0123456789abcdef", 64, 0);
	while (sb.len <= WORK_HEADER_MAX)
		(void)sbuf_addf(&sb, ",%0*zu@example.net=0123456789abcdef", 64,
		    sb.len);
	check(work_header_check(sb.buf, NULL, NULL) != 0,
	    "header: over WORK_HEADER_MAX bytes is refused");
	sbuf_release(&sb);
}

static void
check_requires(void)
{
	static const char *const good[] = { "none", "pow:1", "pow:22",
	    "pow:40", "introduction", "closed" };
	static const char *const bad[] = { "", "open", "pow:", "pow:0",
	    "pow:41", "pow:022", "pow:-1", "POW:3", " none", "none ",
	    "pow:22,introduction", "pow:99999999999999999999" };
	struct work_requirement req;
	char name[128], back[16];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)snprintf(name, sizeof(name), "requires: \"%s\" read and "
		    "written back", good[i]);
		back[0] = '\0';
		if (work_requires_parse(good[i], &req) == 0)
			work_requires_format(&req, back);
		check(strcmp(back, good[i]) == 0, name);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(name, sizeof(name), "requires: refused: \"%s\"",
		    bad[i]);
		check(work_requires_parse(bad[i], &req) != 0, name);
	}
}

/* ---- the bench ---- */

struct clock_stop {
	double until;
	uint64_t tries;
};

static int
past(uint64_t tries, void *arg)
{
	struct clock_stop *c = arg;

	c->tries = tries;
	return now() >= c->until;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Tries a second on one core, over about a second. */
static double
rate(void)
{
	struct clock_stop c = { 0, 0 };
	struct work_prefix p;
	unsigned char sh[32], nonce[8];
	double t0;

	randombytes_buf(sh, sizeof(sh));
	work_prefix_init(&p, sh, "bob@example.net");
	t0 = now();
	c.until = t0 + 1.0;
	/* No nonce has 256 zero bits: the clock stops it. */
	(void)work_solve(&p, 256, past, &c, nonce);
	return (double)c.tries / (now() - t0);
}

/* Seconds to solve at bits for a fresh stamp, runs times: the median. */
static double
solve_median(unsigned int bits, int runs, double *mean)
{
	struct work_prefix p;
	unsigned char sh[32], nonce[8];
	double *t, t0, sum = 0, med;
	int i;

	t = calloc((size_t)runs, sizeof(*t));
	if (t == NULL)
		abort();
	for (i = 0; i < runs; i++) {
		randombytes_buf(sh, sizeof(sh));
		work_prefix_init(&p, sh, "bob@example.net");
		t0 = now();
		(void)work_solve(&p, bits, NULL, NULL, nonce);
		t[i] = now() - t0;
		sum += t[i];
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	med = t[runs / 2];
	*mean = sum / runs;
	free(t);
	return med;
}

/*
 * Microseconds of what a server does per recipient: SH from the stamp's
 * fields (once per message, counted here per recipient, the worst
 * case) and the value of the given nonce.
 */
static double
verify_us(void)
{
	unsigned char sh[32], h[32], nonce[8] = { 0 };
	unsigned int sink = 0;
	struct work_prefix p;
	double t0;
	int i, n = 200000;

	body_hash(h);
	t0 = now();
	for (i = 0; i < n; i++) {
		nonce[7] = (unsigned char)i;
		if (stamp_hash(sh, V_FROM, V_TO, V_MID, h, V_DATE) != 0)
			abort();
		work_prefix_init(&p, sh, "bob@example.net");
		sink += work_value(&p, nonce);
	}
	t0 = now() - t0;
	if (sink == 12345678)
		printf("#\n");	/* keeps the loop */
	return t0 * 1e6 / n;
}

/* Milliseconds of one Argon2id evaluation at ops and mem, runs times. */
static double
argon2id_ms(unsigned long long ops, size_t mem, int runs)
{
	unsigned char out[32], salt[crypto_pwhash_SALTBYTES] = { 0 };
	const char *pw = "smimp/1 work challenge and nonce";
	double t0;
	int i;

	t0 = now();
	for (i = 0; i < runs; i++)
		if (crypto_pwhash(out, sizeof(out), pw, strlen(pw), salt, ops,
		    mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
			abort();
	return (now() - t0) * 1e3 / runs;
}

static int
bench(int runs)
{
	double mean, med, r;

	r = rate();
	printf("tries_per_second %.0f\n", r);
	med = solve_median(WORK_DEFAULT_BITS, runs, &mean);
	printf("default_bits %d\n", WORK_DEFAULT_BITS);
	printf("solve_median_s %.3f\n", med);
	printf("solve_mean_s %.3f\n", mean);
	printf("solve_expected_s %.3f\n", (double)(1u << WORK_DEFAULT_BITS) / r);
	printf("verify_us %.3f\n", verify_us());
	printf("argon2id_interactive_ms %.3f\n",
	    argon2id_ms(crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE, 5));
	printf("argon2id_interactive_mib %zu\n",
	    (size_t)crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE >> 20);
	printf("argon2id_min_ms %.3f\n",
	    argon2id_ms(crypto_pwhash_argon2id_OPSLIMIT_MIN,
	    crypto_pwhash_argon2id_MEMLIMIT_MIN, 200));
	printf("argon2id_min_kib %zu\n",
	    (size_t)crypto_pwhash_argon2id_MEMLIMIT_MIN >> 10);
	return 0;
}

/* ---- proofs for hand-made submissions ---- */

/*
 * The Smimp-Stamps value for every domain of to, stamped at when, onto
 * stamps.
 */
static void
stamp_all(const struct secret_key *sk, const char *to, const char *mid,
    const unsigned char hash[32], const char *when, struct sbuf *stamps)
{
	char doms[256][ADDRESS_DOMAIN_MAX + 1], sorted[8192];
	char stamp[STAMP_STRLEN];
	struct smimp_err err;
	size_t i, nd;

	nd = stamp_domains(to, doms, 256);
	for (i = 0; i < nd; i++)
		if (stamp_recipients_at(to, doms[i], sorted,
		    sizeof(sorted)) != 0 || stamp_sign(stamp, sk->address,
		    sorted, mid, hash, when, sk->identity_secret, &err) != 0 ||
		    stamps_add(stamps, doms[i], stamp) != 0)
			abort();
}

static int
prove(char **argv, int n, const char *at)
{
	struct passphrase_source src = { NULL, 0 };
	char sorted[8192], when[TIME_STRLEN];
	unsigned char hash[32], sh[32], *body = NULL, nonce[8];
	unsigned int bits = (unsigned int)atoi(argv[4]);
	struct work_prefix p;
	struct secret_key sk;
	struct smimp_err err;
	struct sbuf work, stamps;
	size_t len;
	int i;

	memset(&sk, 0, sizeof(sk));
	if (secret_key_load(&sk, argv[0], &src, &err) != 0 ||
	    file_read_all(argv[3], 1 << 26, &body, &len, &err) != 0) {
		fprintf(stderr, "worktool: %s\n", err.msg);
		return 1;
	}
	if (at != NULL)
		(void)snprintf(when, sizeof(when), "%s", at);
	else
		time_format(time_now(), when);
	reqsig_body_hash(hash, body, len);
	sbuf_init(&stamps, STAMPS_MAX + 1);
	stamp_all(&sk, argv[1], argv[2], hash, when, &stamps);
	sbuf_init(&work, WORK_HEADER_MAX + 1);
	for (i = 5; i < n; i++) {
		/* Each proof binds the stamp of its recipient's domain. */
		if (stamp_recipients_at(argv[1], address_domain(argv[i]),
		    sorted, sizeof(sorted)) != 0 || stamp_hash(sh, sk.address,
		    sorted, argv[2], hash, when) != 0)
			abort();
		work_prefix_init(&p, sh, argv[i]);
		(void)work_solve(&p, bits, NULL, NULL, nonce);
		if (work_header_add(&work, argv[i], nonce) != 0)
			abort();
	}
	printf("Smimp-Stamps: %.*s\nSmimp-Stamp-Date: %s\nSmimp-Work: %.*s\n",
	    (int)stamps.len, stamps.buf, when, (int)work.len, work.buf);
	sbuf_release(&work);
	sbuf_release(&stamps);
	free(body);
	secret_key_release(&sk);
	return 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc >= 8 && strcmp(argv[1], "prove") == 0)
		return prove(argv + 2, argc - 2, NULL);
	if (argc >= 9 && strcmp(argv[1], "prove-at") == 0)
		return prove(argv + 3, argc - 3, argv[2]);
	if (argc == 2 && strcmp(argv[1], "print") == 0)
		return print_vectors();
	if (argc == 3 && strcmp(argv[1], "bench") == 0 && atoi(argv[2]) > 0)
		return bench(atoi(argv[2]));
	if (argc != 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: worktool check | print | bench RUNS | "
		    "prove KEY TO MID BODYFILE BITS RCPT... | prove-at DATE "
		    "KEY TO MID BODYFILE BITS RCPT...\n");
		return 2;
	}
	check_vectors();
	check_header();
	check_requires();
	return check_summary();
}
