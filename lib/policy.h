/*
 * policy.h - consent policies: what a user tells their own server about
 * who may reach their mailbox, signed by the user's identity key.
 *
 *	smimp-policy/1 LF
 *	address: ADDRESS LF
 *	date: DATE LF
 *	unknown: open | pow:BITS | introduction | closed LF
 *	allowance: N LF
 *	salt: unpadded base64url of 16 random bytes LF
 *	block: 32 lowercase hex LF	(zero or more, sorted, unique)
 *	allow: 32 lowercase hex LF	(zero or more, sorted, unique)
 *	signature: base64(Ed25519 over "smimp/1 policy" NUL || the
 *	           lines above) LF
 *
 * The lists hold entries, not names: an entry is the first 16 bytes of
 * BLAKE2b-256 keyed with the salt of "smimp/1 policy-entry" NUL NAME,
 * NAME a normalized address or "@" and a normalized domain.  A server
 * can tell whether a sender it is handed is listed, but cannot read the
 * lists; a new salt at every publication keeps two of them from being
 * compared.  doc/PROTOCOL.md, "Consent policies", has the rest.
 */
#ifndef SMIMP_POLICY_H
#define SMIMP_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "signer.h"
#include "util.h"
#include "work.h"

#define POLICY_MAGIC		"smimp-policy/1\n"
#define POLICY_ENTRY_SIZE	16
#define POLICY_SALT_SIZE	16
#define POLICY_MAX_ENTRIES	50000	/* block and allow together */
#define POLICY_ALLOWANCE_MAX	1000000
/* A statement's size at most: its fields, then every entry's line. */
#define POLICY_MAX_BYTES	(4096 + POLICY_MAX_ENTRIES * 40)

enum policy_unknown {
	POLICY_OPEN,		/* unknown senders need nothing */
	POLICY_POW,		/* proof of work of bits */
	POLICY_INTRODUCTION,	/* an introduction by an allowed contact */
	POLICY_CLOSED		/* no unknown sender gets in */
};

/* What a policy says of a sender (policy_classify). */
enum policy_class {
	POLICY_UNKNOWN,
	POLICY_ALLOWED,
	POLICY_BLOCKED
};

struct policy {
	char address[ADDRESS_MAX + 1];
	int64_t date;
	enum policy_unknown unknown;
	unsigned int bits;		/* POLICY_POW: 1 to WORK_MAX_BITS */
	uint32_t allowance;		/* unknown senders' messages a day */
	unsigned char salt[POLICY_SALT_SIZE];
	unsigned char (*block)[POLICY_ENTRY_SIZE];	/* sorted, malloc'd */
	size_t nblock;
	unsigned char (*allow)[POLICY_ENTRY_SIZE];	/* sorted, malloc'd */
	size_t nallow;
	/* Once parsed: the signature, and how many bytes it covers. */
	unsigned char sig[64];
	size_t signed_len;
};

/* Names to list: normalized addresses, or "@" and a normalized domain. */
struct policy_names {
	const char *const *block;
	size_t nblock;
	const char *const *allow;
	size_t nallow;
};

/* The entry of name under salt. */
void policy_entry(const unsigned char salt[POLICY_SALT_SIZE],
    const char *name, unsigned char out[POLICY_ENTRY_SIZE]);

/*
 * "open", "pow:BITS", "pow" (WORK_DEFAULT_BITS), "introduction" or
 * "closed" into *u and *bits (0 unless pow); -1 for anything else.
 */
int policy_unknown_parse(const char *s, enum policy_unknown *u,
    unsigned int *bits);
/* The form a statement writes: "open", "pow:22", ... (out: 16 bytes). */
void policy_unknown_format(enum policy_unknown u, unsigned int bits,
    char out[16]);

/*
 * A new policy for address, dated date, with the entries of names (a
 * name listed twice counts once; one both blocked and allowed is
 * refused, SMIMP_EXIT_USAGE), under salt, or a fresh random one when
 * salt is NULL.  Released with policy_release, also on failure.
 */
int policy_build(struct policy *p, const char *address, int64_t date,
    enum policy_unknown unknown, unsigned int bits, uint32_t allowance,
    const struct policy_names *names,
    const unsigned char salt[POLICY_SALT_SIZE], struct smimp_err *err);
/* p as a statement signed by signer, into out (sbuf_init'd by the caller). */
int policy_write(const struct policy *p, const struct signer *signer,
    struct sbuf *out, struct smimp_err *err);
/*
 * Parse a statement, strictly: every field in order and well formed,
 * the address normalized, at most POLICY_MAX_ENTRIES entries in all,
 * each list sorted without repeats and no entry in both, nothing after
 * the signature.  The signature is not checked (policy_verify).  Fails
 * with SMIMP_EXIT_BADMSG; p is released with policy_release, also on
 * failure.
 */
int policy_parse(struct policy *p, const unsigned char *data, size_t len,
    struct smimp_err *err);
/* Does the parsed p (from data) carry a signature by pub?  0 or -1. */
int policy_verify(const struct policy *p, const unsigned char *data,
    const unsigned char pub[32], struct smimp_err *err);
/*
 * The sender's class: its own entry blocked or allowed, else its
 * domain's, else unknown.  sender is a normalized address.
 */
enum policy_class policy_classify(const struct policy *p,
    const char *sender);
/* Is entry in the sorted list? */
int policy_listed(const unsigned char (*list)[POLICY_ENTRY_SIZE], size_t n,
    const unsigned char entry[POLICY_ENTRY_SIZE]);
void policy_release(struct policy *p);

#endif
