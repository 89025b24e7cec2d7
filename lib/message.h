/*
 * message.h - sealing and opening smimp messages: a signed envelope
 * (doc/PROTOCOL.md, smimp-message(5)) inside an age v1 file.
 *
 * Both directions stream in 64 KiB chunks in constant memory and spread
 * the chunks over the available cores: each chunk is encrypted (or
 * decrypted) and hashed into the envelope's two-level body hash
 * independently.
 */
#ifndef SMIMP_MESSAGE_H
#define SMIMP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "age.h"
#include "err.h"
#include "idlog.h"
#include "introduction.h"
#include "keys.h"
#include "part.h"

#define MSG_MAX_RECIPIENTS	256		/* to and cc together */
#define MSG_MAX_SUBJECT		998
#define MSG_MAX_CONTENT_TYPE	200
#define MSG_MAX_HEADER		(64 * 1024)	/* envelope header */
/*
 * The age stanzas of a message at most: each recipient's encryption key
 * and those of its receiving devices, and the same for the sender (and
 * the sealing device's own), every key once.  age.c reads no header with
 * more (AGE_MAX_STANZAS); a sealer refuses to write one.
 */
#define MSG_MAX_STANZAS		1024
#define MSG_TYPE_MAX		64
/* The type of an identity notice (doc/PROTOCOL.md, 4.4; notice.h). */
#define MSG_TYPE_NOTICE		"identity-notice"

/*
 * A one-time prekey (prekey.h) that a recipient's key is sealed to in
 * its place, as the recipient's server handed it out and its owner
 * signed it; id "" for none: the key itself.
 */
struct msg_prekey {
	char id[AGE_PREKEY_ID_LEN + 1];
	unsigned char key[32];
};

struct msg_recipient {
	char address[ADDRESS_MAX + 1];
	unsigned char fingerprint[FINGERPRINT_SIZE];
	unsigned char encryption_key[32];
	/*
	 * The encryption keys of its live devices that receive (scope full
	 * or receive): a sealer encrypts to each of them too.  None in a
	 * recipient read from an envelope.
	 */
	unsigned char device_keys[IDLOG_MAX_DEVICES][32];
	size_t ndevice_keys;
	int cc;
	/*
	 * For a sealer: the one-time prekeys to seal to instead of those
	 * keys (prekeys[0] for encryption_key, prekeys[1 + j] for
	 * device_keys[j]), or NULL for none; forward_secret when each key
	 * has one, which the envelope then says (doc/PROTOCOL.md, 10.4).
	 * For a reader: forward_secret as the envelope says.
	 */
	const struct msg_prekey *prekeys;
	int forward_secret;
};

struct seal_params {
	/*
	 * The identity key, or a device's key (sender->is_device): then the
	 * device, live in sender_log with scope full or send, signs, and
	 * the envelope names it (from-device).
	 */
	const struct secret_key *sender;
	const struct idlog *sender_log;
	const struct msg_recipient *rcpts;
	size_t nrcpts;
	const char *type;		/* email, short-message, x-<name> */
	const char *subject;		/* or NULL */
	const char *content_type;	/* or NULL for the type's default */
	const char *thread_id;		/* or NULL: a new thread */
	const char *in_reply_to;	/* or NULL */
	int armor;
	const char *out_name;		/* in write errors; NULL: "the output" */
	int64_t date;			/* 0: now */
	/*
	 * Introductions of the sender to some of the recipients, at most
	 * one each, carried in the envelope (doc/PROTOCOL.md, 4.2).
	 */
	const struct introduction *intros;
	size_t nintros;
	/*
	 * Attachments (doc/PROTOCOL.md, 4.5), at most PART_MAX: each is
	 * read from its fd, exactly its size in bytes, before the body.
	 */
	const struct msg_part *parts;
	size_t nparts;
	/*
	 * Leave the plaintext unpadded, as before padding existed
	 * (doc/PROTOCOL.md 9): for tests and vectors of that format only.
	 * The stanzas are padded either way.
	 */
	int no_padding;
};

/*
 * Drop from r[0..n) each recipient that an earlier one repeats (the
 * same address and key): a second stanza and a second "to" line would
 * say nothing more.  The one kept is "to" if either was.  from[k] gets
 * the index before of the k-th kept.  Returns how many remain.
 */
size_t msg_recipients_unique(struct msg_recipient *r, size_t n,
    size_t *from);

/*
 * Refuse (SMIMP_EXIT_BADMSG, naming address) an encryption key of low
 * order, whose every shared secret is all zero: what is sealed to it
 * anyone can open.
 */
int msg_encryption_key_check(const char *address,
    const unsigned char key[32], struct smimp_err *err);

/*
 * Seal in_fd to out_fd.  message_id (if not NULL) gets the new id.
 * Nothing is written when a recipient's (or the sender's own)
 * encryption key is refused.
 */
int message_seal(const struct seal_params *p, int in_fd, int out_fd,
    char *message_id, size_t message_id_cap, struct smimp_err *err);

/* What a verified envelope says. */
struct msg_meta {
	char type[MSG_TYPE_MAX + 1];
	char from[ADDRESS_MAX + 1];
	/* The device of from that signed it (from-device); "" for none. */
	char from_device[IDDEV_NAME_MAX + 1];
	/* The key the signature verified under: identity's or device's. */
	unsigned char signing_key[32];
	struct idlog sender;		/* the identity log carried inside */
	struct msg_recipient *rcpts;	/* to and cc, in order */
	size_t nrcpts;
	int64_t date;
	char message_id[256];
	char thread_id[256];
	char in_reply_to[256];
	char subject[MSG_MAX_SUBJECT + 1];
	char content_type[256];
	uint64_t body_len;
	/* The parts, in order, as the header names them; their bytes. */
	struct msg_part *parts;
	size_t nparts;
	uint64_t parts_len;
	char *header_text;		/* the verified header block, printable */
	size_t header_len;
	int own;			/* signed by the reader's own identity */
	/* The introductions it carries: well formed, not yet verified. */
	struct introduction *intros;
	size_t nintros;
	/*
	 * Who introduced the sender to the reader, once the reader's trust
	 * store says so (trust_introducer); empty when nobody did.
	 */
	char introducer[ADDRESS_MAX + 1];
	/*
	 * Padded (the header's padding line, doc/PROTOCOL.md 9), and how
	 * many zero bytes the padding was; 0 and 0 for a message from
	 * before padding.
	 */
	int padded;
	uint64_t padding_len;
	/*
	 * Forward secrecy (doc/PROTOCOL.md, 10.4): the one-time prekey of
	 * the reader's that opened it ("" for none: a long-term key, or a
	 * kept plain envelope); whether the envelope says it was sealed to
	 * the reader's one-time prekeys; whether it was read as a plain
	 * envelope kept once opened (plain), not an age file.
	 */
	char prekey_id[AGE_PREKEY_ID_LEN + 1];
	int forward_secret;
	int plain;
};

/*
 * Open in_fd with me's encryption key, or a one-time prekey of
 * me->prekeys that its header names; or read it as a plain envelope
 * (H || B || S, no age around it: what a reader keeps of a message
 * sealed to a one-time prekey), checked all the same.  The body goes to body_fd (a
 * private spool file the caller releases only on success; -1 to discard);
 * attachments are verified and dropped (parts.h keeps them).
 * Checks decryption, the signature, and that me is among the recipients
 * (a message re-encrypted to someone else fails), or else that me
 * signed it (a sent copy: meta->own is set, also for a note to self).
 * mine, me's own identity log (or NULL when not at hand), must be the
 * identity beside me's address in every to and cc, and the one of a
 * message from me's address.  Errors: SMIMP_EXIT_BADMSG for anything
 * wrong with the message; SMIMP_EXIT_KEYCHANGED when it names me's
 * address with another identity, as recipient or as sender.  The
 * sender's state is not judged here: a message whose log says revoked
 * opens, once its signature verifies, and the caller refuses it
 * (trust_sender_state), so that a forgery is always called one.
 */
struct trust_store;
/* ts (or NULL): sender logs pinned there need not be verified again. */
int message_open(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int body_fd, const struct trust_store *ts,
    struct msg_meta *meta, struct smimp_err *err);

/*
 * Where message_open_sink puts the plaintext as it decrypts it, part by
 * part (in the header's order, each begun, given its bytes in chunks,
 * and ended, an empty one too), then the body.  Nothing it is given is
 * verified yet: the signature comes last.  A sink keeps it where
 * nobody sees it until message_open_sink returned 0 and the caller
 * judged the sender (parts.h does so).  A callback left NULL drops
 * what it would get; one that fails stops the opening.  part points
 * into meta->parts; index is its place there.
 */
struct msg_sink {
	int (*part_begin)(void *arg, size_t index,
	    const struct msg_part *part, struct smimp_err *err);
	int (*part_data)(void *arg, size_t index, const unsigned char *buf,
	    size_t len, struct smimp_err *err);
	int (*part_end)(void *arg, size_t index, struct smimp_err *err);
	int (*body_data)(void *arg, const unsigned char *buf, size_t len,
	    struct smimp_err *err);
	void *arg;
	/*
	 * Or NULL.  Else, when the input can be read a second time (see
	 * message_replay_check), what a second pass needs to write the
	 * body without a spool is kept there.
	 */
	struct msg_replay *replay;
};

/*
 * Opening in two passes: the first decrypts, hashes and verifies and
 * writes nothing; once the caller has judged the sender, the second
 * decrypts the body again straight into the output, with no spool.
 * Only for an input that nobody but this user can change between the
 * passes: a regular file of at least MSG_REPLAY_MIN bytes, in binary
 * age (not armor), owned by the effective user and writable by no one
 * else, on which a read lease is held from the check to the end of the
 * second pass (fd_lease_read: no descriptor open for writing on it,
 * not even one opened before its mode changed, nor on a file system
 * whose server can change it unseen), and unchanged (size, times,
 * inode) all that time.  The second pass cannot tell a chunk the
 * sender sealed from one that another recipient, who holds the same
 * payload key, encrypted: only the lease says that nothing was written
 * since the first pass verified the signature.  Anything else is
 * spooled.
 *
 * Measured on two cores: up to 64 MiB the spool (written and read back
 * from the page cache, never the disk) is as fast or faster than a
 * second decryption; at 512 MiB they are even; at 1 GiB reading twice
 * takes 1.9 s against 2.2 to 2.6 s.  Above the floor nothing of the
 * plaintext goes to TMPDIR at all.
 */
#define MSG_REPLAY_MIN	(64 * 1024 * 1024)
struct msg_replay {
	int usable;		/* message_replay_check said yes */
	int kept;		/* the first pass kept what follows */
	uint64_t payload_off;	/* where the age payload starts */
	uint64_t plain_len;	/* bytes of the age payload's plaintext */
	uint64_t hlen;		/* of the envelope header */
	unsigned char *key;	/* the payload key, sodium_malloc */
	long long st[7];	/* dev, ino, size, mtime and ctime (s, ns) */
	int leased;		/* fd holds a read lease (fd_lease_read) */
	int fd;
};
/* May in_fd be read twice?  1 yes (rp set up), 0 no, -1 on an error. */
int message_replay_check(int in_fd, struct msg_replay *rp,
    struct smimp_err *err);
/*
 * The second pass: the body of the message meta describes, as
 * verified in the first, to out in pieces of at most AGE_CHUNK_SIZE
 * bytes.  Fails, writing nothing more, if the input changed or was
 * opened for writing (its lease broken) since the check; the lease
 * is let go at its end.
 */
int message_replay(struct msg_replay *rp, int in_fd,
    const struct msg_meta *meta,
    int (*out)(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err), void *arg, struct smimp_err *err);
void msg_replay_release(struct msg_replay *rp);

/* message_open, with the plaintext to sink (NULL: dropped). */
int message_open_sink(const struct secret_key *me, const struct idlog *mine,
    int in_fd, const struct msg_sink *sink, const struct trust_store *ts,
    struct msg_meta *meta, struct smimp_err *err);
/*
 * message_open_sink; and when a one-time prekey opened it
 * (meta->prekey_id), every byte of its age payload (the plain
 * envelope: H || B || S, padded H || B || P || T || S) written to
 * kept_fd as it decrypts: what a reader keeps once the prekey's secret
 * is gone.  Verified, as the rest, only when this returns 0: until
 * then kept_fd holds nothing to show.
 */
int message_open_kept(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int kept_fd, const struct msg_sink *sink,
    const struct trust_store *ts, struct msg_meta *meta,
    struct smimp_err *err);
/*
 * Open a message that me sealed (the sender is always an age recipient
 * of its own messages): verifies it and that me signed it; no body.
 */
int message_open_sent(const struct secret_key *me, int in_fd,
    struct msg_meta *meta, struct smimp_err *err);
void msg_meta_release(struct msg_meta *meta);

#endif

#ifndef SMIMP_MESSAGE_JSON
#define SMIMP_MESSAGE_JSON
/*
 * Write the metadata and the body (read from body_fd, from its start;
 * none when body_fd is -1) to out_fd as one JSON object and a newline,
 * in ASCII.  The body streams in fixed chunks, in constant memory for
 * any size; a body that is not UTF-8 is given in base64.  A write error
 * names out_name ("standard output", or a quoted path).
 */
int msg_meta_json_write(const struct msg_meta *meta, const char *tier,
    int body_fd, int out_fd, const char *out_name, struct smimp_err *err);
#endif
