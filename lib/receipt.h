/*
 * receipt.h - delivery receipts (doc/PROTOCOL.md 8.14): what the server
 * of a domain signs with its server key when it takes a message for
 * its users, so that the sender holds proof of delivery that no one
 * else can make.
 *
 *	smimp-receipt/1 LF
 *	domain: DOMAIN LF		the domain whose server key signs
 *	from: ADDRESS LF		the sender
 *	message-id: ID LF
 *	hash: HEX LF			BLAKE2b-256 of the sealed message
 *	recipients: ADDRESS[,ADDRESS...] LF	of DOMAIN, sorted
 *	date: DATE LF			when the server took it
 *	signature: base64(Ed25519 over "smimp/1 receipt" NUL || the
 *	           lines above) LF
 *
 * A reader takes exactly this: every line once, in this order, each
 * value in its one canonical spelling, nothing after the signature.
 */
#ifndef SMIMP_RECEIPT_H
#define SMIMP_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "signer.h"
#include "util.h"

#define RECEIPT_MAGIC		"smimp-receipt/1\n"
/* A recipient list of 8 KiB at most, and the rest. */
#define RECEIPT_LIST_MAX	8191
#define RECEIPT_MAX		(12 * 1024)

struct receipt {
	char domain[ADDRESS_DOMAIN_MAX + 1];
	char from[ADDRESS_MAX + 1];
	char message_id[MESSAGE_ID_MAX + 1];
	unsigned char hash[32];
	char recipients[RECEIPT_LIST_MAX + 1];
	char date[TIME_STRLEN];
	int64_t when;			/* date, in Unix seconds */
	unsigned char sig[64];
	size_t signed_len;		/* the bytes sig covers */
};

/*
 * The receipt of domain for the message (from, message id, hash) that
 * it took for recipients (comma-separated, normalized, of domain; any
 * order), dated date, signed by signer, into sb.
 */
int receipt_build(struct sbuf *sb, const char *domain, const char *from,
    const char *message_id, const unsigned char hash[32],
    const char *recipients, const char *date, const struct signer *signer,
    struct smimp_err *err);
/*
 * The same without its signature: every line through the date, for
 * receipt_sign to sign later (this server keeps its own receipts so,
 * and signs one when its sender asks for it).
 */
int receipt_build_unsigned(struct sbuf *sb, const char *domain,
    const char *from, const char *message_id, const unsigned char hash[32],
    const char *recipients, const char *date, struct smimp_err *err);
/*
 * Sign the lines sb holds from start (receipt_build_unsigned's) and add
 * the signature line.  Signatures are deterministic: the same lines
 * under the same key make the same receipt whenever they are signed.
 */
int receipt_sign(struct sbuf *sb, size_t start, const struct signer *signer,
    struct smimp_err *err);
/* Is text a receipt's lines without the signature line? */
int receipt_is_unsigned(const char *text);
/* Read a receipt, strictly; its signature is receipt_verify's. */
int receipt_parse(struct receipt *r, const char *text, size_t len,
    struct smimp_err *err);
/* Does r (parsed from text) verify under pub?  0, or -1 with why. */
int receipt_verify(const struct receipt *r, const char *text,
    const unsigned char pub[32], struct smimp_err *err);
/*
 * Is r a receipt for this delivery: of domain, for the message (from,
 * message id, and hash unless NULL), naming recipients of asked only
 * and every one of asked at domain (comma-separated; NULL any)?  0, or
 * -1 saying what differs.
 */
int receipt_check(const struct receipt *r, const char *domain,
    const char *from, const char *message_id, const unsigned char *hash,
    const char *asked, struct smimp_err *err);

#endif
