/*
 * status.h - where a sent message is (doc/PROTOCOL.md 8.14), as its
 * sender's home server says for each recipient domain: queued, taken
 * there with that domain's signed receipt, or bounced.  Each receipt
 * is checked here, under the server key the domain publishes (fetched
 * as a peer would, by discovery and /v1/meta): the home server's word
 * for it is not taken.  The work of smimp-send --status and --receipts.
 */
#ifndef SMIMP_STATUS_H
#define SMIMP_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "identity.h"
#include "receipt.h"
#include "remote.h"

/* An answer: up to 256 domains, each a receipt of 12 KiB at most. */
#define STATUS_ANSWER_MAX	(4 * 1024 * 1024)
#define STATUS_DOMAINS_MAX	256
#define STATUS_TEXT_MAX		512	/* an error or reason, as kept */

enum status_state {
	STATUS_MISSING = 0,	/* the server names no state for it */
	STATUS_QUEUED,
	STATUS_DELIVERED,
	STATUS_BOUNCED,
};

enum status_check {
	CHECK_NONE = 0,		/* no receipt (or not delivered) */
	CHECK_VERIFIED,		/* the domain's key signed it, for this */
	CHECK_FAILED,		/* it does not hold: why says */
	CHECK_UNREACHABLE,	/* the domain's key could not be fetched */
};

struct status_domain {
	char domain[ADDRESS_DOMAIN_MAX + 1];
	enum status_state state;
	char recipients[RECEIPT_LIST_MAX + 1];
	char date[TIME_STRLEN];		/* taken, bounced or queued */
	unsigned int attempts;		/* queued: the rest */
	char next_try[TIME_STRLEN];
	int held;
	char text[STATUS_TEXT_MAX];	/* queued: last error; bounced: why */
	char *receipt;			/* delivered: its text, or NULL */
	enum status_check check;
	char why[SMIMP_ERR_MSG];	/* CHECK_FAILED, CHECK_UNREACHABLE */
	struct receipt *r;		/* CHECK_VERIFIED: as read */
};

struct msg_status {
	char message_id[MESSAGE_ID_MAX + 1];
	size_t n;
	struct status_domain *d;	/* n of them, in domain order */
};
void msg_status_release(struct msg_status *st);

/*
 * Ask the home server of id where its message message_id is, in a
 * request signed by id: 0, or -1 (SMIMP_EXIT_FAIL "no message ..." for
 * one it does not know, or another user's; SMIMP_EXIT_TEMPFAIL for
 * 429 and 5xx; SMIMP_EXIT_BADMSG for an answer that is no status).
 */
int status_fetch(struct remote *r, const struct identity *id,
    const char *message_id, struct msg_status *st, struct smimp_err *err);

/*
 * The body of a home server's status answer (len bytes, JSON) for
 * message_id into st, which starts zeroed: each domain's row, its
 * receipt's text kept to check.  0, or -1 (SMIMP_EXIT_BADMSG) with st
 * released.  status_fetch's reading, on its own for the fuzz target.
 */
int status_parse(const char *body, size_t len, const char *message_id,
    struct msg_status *st, struct smimp_err *err);

/*
 * Check each receipt of st under its domain's server key (fetched over
 * r once per domain and run) and for this message: from id's address,
 * of hash unless NULL, naming recipients of to (the message's, "a@x,
 * b@y") unless NULL.  Each domain's check and why are set.
 */
void status_verify(struct remote *r, const struct identity *id,
    struct msg_status *st, const unsigned char *hash, const char *to);

/* A message sent, to wait on: what its receipts must say. */
struct status_wait {
	const char *message_id;
	unsigned char hash[32];
	const char *to;			/* its recipients, "a@x, b@y" */
	struct msg_status st;		/* the last answer */
	int final;			/* every domain delivered or bounced */
};

/*
 * Ask after each of the n messages, with backoff (1 s, then half as
 * long again each time, at most 15 s), until each one's every
 * recipient domain has taken it or bounced it, or timeout seconds
 * have passed; then check the receipts (status_verify).  0 when every
 * message is final, 1 at the timeout (w[i].final says which are not);
 * -1 when the server could not be asked (err), the last answers kept.
 */
int status_wait(struct remote *r, const struct identity *id,
    struct status_wait *w, size_t n, unsigned int timeout,
    struct smimp_err *err);

/* The domains of to ("a@x, b@y") that st names no final state for. */
size_t status_pending(const struct msg_status *st, const char *to,
    char (*out)[ADDRESS_DOMAIN_MAX + 1], size_t cap);

#endif
