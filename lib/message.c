/*
 * message.c - seal and open, streaming over a small pool of threads.
 *
 * The age plaintext is H || B || S (envelope.h).  Every full 64 KiB
 * chunk is encrypted (or decrypted) and hashed into its leaf by a
 * worker; the main thread reads, writes and keeps order.  Batches of
 * BATCH_CHUNKS chunks move through a ring of NSLOTS slots, so reading
 * the next batch and writing the last one overlap with the crypto.
 * Memory stays at NSLOTS batches whatever the input size.
 *
 * Only the tail (the last partial chunk and the signature) is handled
 * by the main thread alone: the signature is known only after the last
 * leaf, and on open the signature may straddle the last two chunks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "age.h"
#include "envelope.h"
#include "exitcode.h"
#include "fileio.h"
#include "message.h"
#include "padding.h"
#include "prekeystore.h"
#include "banned.h"

#define BATCH_CHUNKS	8
#define NSLOTS		3
#define MAX_WORKERS	16

/* What the workers do to a chunk. */
#define PL_SEAL		0	/* hash, then encrypt */
#define PL_OPEN		1	/* decrypt, then hash */
#define PL_PLAIN	2	/* hash only: a plain envelope */
#define PL_DECRYPT	3	/* decrypt only: a second pass */

enum slot_state { SLOT_FREE, SLOT_FILLED, SLOT_DONE };

struct slot {
	unsigned char *pt;	/* BATCH_CHUNKS * AGE_CHUNK_SIZE */
	unsigned char *ct;	/* BATCH_CHUNKS * AGE_CT_CHUNK_SIZE */
	size_t ct_lens[BATCH_CHUNKS];
	unsigned char leaves[BATCH_CHUNKS][ENV_LEAF_SIZE];
	int bad[BATCH_CHUNKS];
	size_t n;		/* chunks to process */
	uint64_t counter;	/* STREAM counter of the first */
	int last;		/* open: holds the stream's last chunk */
	size_t claimed, done;
	enum slot_state state;
	size_t touched;		/* plaintext bytes ever written, to wipe */
};

struct pipeline {
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	pthread_cond_t done_cv;
	pthread_t threads[MAX_WORKERS];
	size_t nthreads;
	int stop;
	int decrypt;
	const unsigned char *key;
	struct slot slots[NSLOTS];
	uint64_t work_seq;	/* batch number workers are on */
	uint64_t fill_seq;	/* batches handed over so far */
	int locks;		/* how many of mu, work_cv, done_cv exist */
	/*
	 * Opening a file: each worker reads its own chunks from fd, the
	 * payload starting at fd_off (else fd is -1, the chunks read).
	 */
	int fd;
	uint64_t fd_off;
};

/* What s->bad[i] says when a chunk could not be read (else 1: forged). */
#define BAD_IO		2	/* the read failed */
#define BAD_SHORT	3	/* the file ended early: it changed */

/* A worker's read of chunk i of s from the file, whole. */
static int
chunk_read(struct pipeline *pl, struct slot *s, size_t i)
{
	unsigned char *ct = s->ct + i * AGE_CT_CHUNK_SIZE;
	uint64_t off = pl->fd_off + (s->counter + i) * AGE_CT_CHUNK_SIZE;
	size_t got = 0;
	ssize_t r;

	while (got < s->ct_lens[i]) {
		r = pread(pl->fd, ct + got, s->ct_lens[i] - got,
		    (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? BAD_IO : BAD_SHORT;
		got += (size_t)r;
	}
	return 0;
}

static void
chunk_work(struct pipeline *pl, struct slot *s, size_t i)
{
	unsigned char *pt = s->pt + i * AGE_CHUNK_SIZE;
	unsigned char *ct = s->ct + i * AGE_CT_CHUNK_SIZE;

	if (pl->fd >= 0 && (s->bad[i] = chunk_read(pl, s, i)) != 0)
		return;

	if (pl->decrypt == PL_PLAIN) {
		s->bad[i] = 0;
		env_leaf(s->leaves[i], pt, s->ct_lens[i] - AGE_TAG_SIZE);
	} else if (pl->decrypt == PL_DECRYPT) {
		s->bad[i] = age_chunk_open(pl->key, s->counter + i,
		    s->last && i == s->n - 1, ct, s->ct_lens[i], pt) != 0;
	} else if (pl->decrypt == PL_OPEN) {
		size_t len = s->ct_lens[i] - AGE_TAG_SIZE;

		s->bad[i] = age_chunk_open(pl->key, s->counter + i,
		    s->last && i == s->n - 1, ct, s->ct_lens[i], pt) != 0;
		if (!s->bad[i])
			env_leaf(s->leaves[i], pt, len);
	} else {
		env_leaf(s->leaves[i], pt, AGE_CHUNK_SIZE);
		age_chunk_seal(pl->key, s->counter + i, 0, pt, AGE_CHUNK_SIZE,
		    ct);
	}
}

static void *
worker(void *arg)
{
	struct pipeline *pl = arg;

	pthread_mutex_lock(&pl->mu);
	for (;;) {
		struct slot *s;
		size_t i;

		if (pl->stop)
			break;
		if (pl->work_seq == pl->fill_seq) {
			pthread_cond_wait(&pl->work_cv, &pl->mu);
			continue;
		}
		s = &pl->slots[pl->work_seq % NSLOTS];
		if (s->claimed == s->n) {
			pl->work_seq++;
			continue;
		}
		i = s->claimed++;
		pthread_mutex_unlock(&pl->mu);
		chunk_work(pl, s, i);
		pthread_mutex_lock(&pl->mu);
		if (++s->done == s->n) {
			s->state = SLOT_DONE;
			pthread_cond_broadcast(&pl->done_cv);
		}
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

static int
pipeline_init(struct pipeline *pl, int decrypt, const unsigned char *key,
    struct smimp_err *err)
{
	size_t i;

	memset(pl, 0, sizeof(*pl));
	pl->decrypt = decrypt;
	pl->key = key;
	pl->fd = -1;
	/* The locks first: pipeline_release destroys only what was made. */
	if (pthread_mutex_init(&pl->mu, NULL) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot set up threads");
	pl->locks = 1;
	if (pthread_cond_init(&pl->work_cv, NULL) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot set up threads");
	pl->locks = 2;
	if (pthread_cond_init(&pl->done_cv, NULL) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "cannot set up threads");
	pl->locks = 3;
	for (i = 0; i < NSLOTS; i++) {
		pl->slots[i].pt = malloc(BATCH_CHUNKS * AGE_CHUNK_SIZE);
		pl->slots[i].ct = malloc(BATCH_CHUNKS * AGE_CT_CHUNK_SIZE);
		if (pl->slots[i].pt == NULL || pl->slots[i].ct == NULL)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "out of memory");
	}
	return 0;
}

/* Threads start with the first full batch: small messages need none. */
static void
pipeline_start_threads(struct pipeline *pl)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = ncpu < 1 ? 1 : (size_t)ncpu, i;

	if (pl->nthreads > 0)
		return;
	if (want > MAX_WORKERS)
		want = MAX_WORKERS;
	for (i = 0; i < want; i++) {
		if (pthread_create(&pl->threads[i], NULL, worker, pl) != 0)
			break;
		pl->nthreads++;
	}
}

static void
pipeline_release(struct pipeline *pl)
{
	size_t i;

	if (pl->nthreads > 0) {
		pthread_mutex_lock(&pl->mu);
		pl->stop = 1;
		pthread_cond_broadcast(&pl->work_cv);
		pthread_mutex_unlock(&pl->mu);
		for (i = 0; i < pl->nthreads; i++)
			pthread_join(pl->threads[i], NULL);
	}
	if (pl->locks > 0)
		pthread_mutex_destroy(&pl->mu);
	if (pl->locks > 1)
		pthread_cond_destroy(&pl->work_cv);
	if (pl->locks > 2)
		pthread_cond_destroy(&pl->done_cv);
	for (i = 0; i < NSLOTS; i++) {
		if (pl->slots[i].pt != NULL) {
			/* Wipe what held plaintext; untouched pages stay so. */
			sodium_memzero(pl->slots[i].pt, pl->slots[i].touched);
			free(pl->slots[i].pt);
		}
		free(pl->slots[i].ct);
	}
}

/* Hand a slot to the workers, or do it here when there are none. */
static void
pipeline_submit(struct pipeline *pl, struct slot *s, int use_threads)
{
	size_t i;

	s->claimed = 0;
	s->done = 0;
	if (s->n == 0) {
		/* Workers skip it: nothing to claim. */
		pthread_mutex_lock(&pl->mu);
		s->state = SLOT_DONE;
		pl->fill_seq++;
		pthread_mutex_unlock(&pl->mu);
		return;
	}
	if (use_threads)
		pipeline_start_threads(pl);
	if (pl->nthreads == 0) {
		for (i = 0; i < s->n; i++)
			chunk_work(pl, s, i);
		s->claimed = s->done = s->n;
		s->state = SLOT_DONE;
		pl->fill_seq++;
		pl->work_seq = pl->fill_seq;
		return;
	}
	pthread_mutex_lock(&pl->mu);
	s->state = SLOT_FILLED;
	pl->fill_seq++;
	pthread_cond_broadcast(&pl->work_cv);
	pthread_mutex_unlock(&pl->mu);
}

static void
pipeline_wait(struct pipeline *pl, struct slot *s)
{
	pthread_mutex_lock(&pl->mu);
	while (s->state != SLOT_DONE)
		pthread_cond_wait(&pl->done_cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
}

/* Read until len bytes or EOF. */
static int
read_full(int fd, unsigned char *buf, size_t len, size_t *got,
    struct smimp_err *err)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, buf + *got, len - *got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "cannot read the input");
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/* ---- seal ---- */

/*
 * What a sealer reads after the header: each part's bytes from its fd,
 * exactly its size (one that shrank or grew since the header was
 * written is refused: the header is signed with that size), then the
 * body from in_fd until it ends.
 */
struct seal_input {
	const struct msg_part *parts;
	size_t nparts, cur;
	uint64_t left;		/* bytes of part cur still to read */
	int in_fd;
	/*
	 * Then, unless the message is unpadded, the padding and its
	 * length (padding.h), once the body's end says how long H || B
	 * is: content counts its bytes until then.
	 */
	int pad, body_done;
	uint64_t content;
	struct pad_tail tail;
};

/* Part cur was read whole: it must end there. */
static int
part_ended(const struct msg_part *p, struct smimp_err *err)
{
	unsigned char extra;
	size_t n;

	if (fd_read_full(p->fd, &extra, 1, &n) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "attachment '%s'", p->name);
	if (n != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the attachment "
		    "'%s' grew while it was sealed", p->name);
	return 0;
}

/* What follows H: the parts, then the body; short only at the body's end. */
static int
content_read(struct seal_input *in, unsigned char *buf, size_t len,
    size_t *got, struct smimp_err *err)
{
	size_t want, n;

	*got = 0;
	while (*got < len && in->cur < in->nparts) {
		const struct msg_part *p = &in->parts[in->cur];

		if (in->left == 0) {
			if (part_ended(p, err) != 0)
				return -1;
			if (++in->cur < in->nparts)
				in->left = in->parts[in->cur].size;
			continue;
		}
		want = len - *got < in->left ? len - *got : (size_t)in->left;
		if (fd_read_full(p->fd, buf + *got, want, &n) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read "
			    "the attachment '%s'", p->name);
		if (n < want)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "the "
			    "attachment '%s' shrank while it was sealed",
			    p->name);
		*got += n;
		in->left -= n;
	}
	if (*got == len)
		return 0;
	if (read_full(in->in_fd, buf + *got, len - *got, &n, err) != 0)
		return -1;
	*got += n;
	return 0;
}

/* What comes after H: the content, then (padded) P || T. */
static int
input_read(struct seal_input *in, unsigned char *buf, size_t len,
    size_t *got, struct smimp_err *err)
{
	*got = 0;
	if (!in->body_done) {
		if (content_read(in, buf, len, got, err) != 0)
			return -1;
		in->content += *got;
		if (*got == len)
			return 0;
		/* The body ended: the bucket is known (S's 64 bytes too). */
		in->body_done = 1;
		if (in->pad && pad_tail_begin(&in->tail, in->content +
		    ENV_SIG_SIZE, err) != 0)
			return -1;
	}
	if (in->pad)
		*got += pad_tail_read(&in->tail, buf + *got, len - *got);
	return 0;
}

struct sealer {
	struct pipeline pl;
	struct age_out *out;
	struct env_root root;
	uint64_t signed_len;	/* bytes of H || B so far */
	uint64_t flushed;	/* batches written */
};

static int
seal_flush(struct sealer *se, struct smimp_err *err)
{
	struct slot *s = &se->pl.slots[se->flushed % NSLOTS];
	size_t i;

	pipeline_wait(&se->pl, s);
	for (i = 0; i < s->n; i++)
		env_root_add(&se->root, s->leaves[i]);
	if (s->n > 0 && age_out_write(se->out, s->ct,
	    s->n * AGE_CT_CHUNK_SIZE, err) != 0)
		return -1;
	s->state = SLOT_FREE;
	se->flushed++;
	return 0;
}

/* The tail: the last partial chunk of H || B, then the signature. */
static int
seal_tail(struct sealer *se, const struct seal_params *p,
    const unsigned char *rest, size_t rest_len, uint64_t counter,
    struct smimp_err *err)
{
	unsigned char *pt = se->pl.slots[0].pt;	/* all slots are flushed */
	unsigned char *ct = se->pl.slots[0].ct;
	unsigned char leaf[ENV_LEAF_SIZE], root[32];
	size_t total = rest_len + ENV_SIG_SIZE, first;

	if (rest_len > 0) {
		env_leaf(leaf, rest, rest_len);
		env_root_add(&se->root, leaf);
	}
	env_root_final(&se->root, se->signed_len, root);
	if (rest != pt)
		memmove(pt, rest, rest_len);
	if (total > se->pl.slots[0].touched)
		se->pl.slots[0].touched = total;
	env_sign(pt + rest_len, root, p->sender->identity_secret);
	/* A full chunk cannot be last when more follows it. */
	first = total > AGE_CHUNK_SIZE ? AGE_CHUNK_SIZE : total;
	age_chunk_seal(se->pl.key, counter, first == total, pt, first, ct);
	if (first < total)
		age_chunk_seal(se->pl.key, counter + 1, 1, pt + first,
		    total - first, ct + AGE_CT_CHUNK_SIZE);
	return age_out_write(se->out, ct, total + AGE_TAG_SIZE *
	    (first < total ? 2 : 1), err);
}

static int
seal_stream(struct sealer *se, const struct seal_params *p, int in_fd,
    const struct sbuf *hdr, struct smimp_err *err)
{
	struct seal_input in = { p->parts, p->nparts, 0,
	    p->nparts > 0 ? p->parts[0].size : 0, in_fd, !p->no_padding, 0,
	    hdr->len, { 0, { 0 }, 0 } };
	uint64_t counter = 0, filled = 0;
	size_t have, got, full;
	int eof = 0;

	while (!eof) {
		struct slot *s = &se->pl.slots[filled % NSLOTS];

		if (filled - se->flushed == NSLOTS && seal_flush(se, err) != 0)
			return -1;
		have = 0;
		if (filled == 0) {
			memcpy(s->pt, hdr->buf, hdr->len);
			have = hdr->len;
		}
		if (input_read(&in, s->pt + have,
		    BATCH_CHUNKS * AGE_CHUNK_SIZE - have, &got, err) != 0)
			return -1;
		have += got;
		if (have > s->touched)
			s->touched = have;
		eof = have < BATCH_CHUNKS * AGE_CHUNK_SIZE;
		full = have / AGE_CHUNK_SIZE;
		s->n = full;
		s->counter = counter;
		s->last = 0;
		counter += full;
		se->signed_len += have;
		pipeline_submit(&se->pl, s, !eof);
		filled++;
		if (eof) {
			while (se->flushed < filled)
				if (seal_flush(se, err) != 0)
					return -1;
			return seal_tail(se, p, s->pt + full * AGE_CHUNK_SIZE,
			    have - full * AGE_CHUNK_SIZE, counter, err);
		}
	}
	return 0;
}

size_t
msg_recipients_unique(struct msg_recipient *r, size_t n, size_t *from)
{
	size_t i, j, k = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; j < k; j++)
			if (strcmp(r[j].address, r[i].address) == 0 &&
			    memcmp(r[j].fingerprint, r[i].fingerprint,
			    sizeof(r[i].fingerprint)) == 0)
				break;
		if (j < k) {
			r[j].cc = r[j].cc && r[i].cc;
			continue;
		}
		if (k != i)
			r[k] = r[i];
		from[k++] = i;
	}
	return k;
}

int
msg_encryption_key_check(const char *address, const unsigned char key[32],
    struct smimp_err *err)
{
	if (age_x25519_public_usable(key))
		return 0;
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the encryption key of "
	    "%s is of low order (anyone could open what is sealed to it): "
	    "refusing it", address);
}

/*
 * May p->sender seal under p->sender_log: the identity key in force, or
 * a device live there with scope full or send.
 */
static int
sender_check(const struct seal_params *p, struct smimp_err *err)
{
	const struct secret_key *sk = p->sender;
	const struct idlog *log = p->sender_log;
	char why[SMIMP_ERR_MSG];

	if (!sk->is_device) {
		if (sodium_memcmp(log->identity_key, sk->identity_public,
		    32) != 0)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "the secret "
			    "key does not match the identity of %s",
			    log->address);
		return 0;
	}
	if (strcmp(sk->address, log->address) != 0 ||
	    idlog_sending_device(log, sk->device, sk->identity_public,
	    err) == NULL) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the device %s of "
		    "%s may not seal: %.180s", sk->device, sk->address,
		    strcmp(sk->address, log->address) != 0 ? "another "
		    "identity's log" : why);
	}
	return 0;
}

/* What a sealer may write, a reader (age.c) reads: the same bound. */
_Static_assert(MSG_MAX_STANZAS == AGE_MAX_STANZAS,
    "a sealer must not write more stanzas than age.c reads");
/* Padded to a power of two, the keys a sealer takes stay within it. */
_Static_assert((MSG_MAX_STANZAS & (MSG_MAX_STANZAS - 1)) == 0,
    "the bound on stanzas must be a power of two");

/*
 * The keys a message is sealed to, each once, in at most
 * MSG_MAX_STANZAS stanzas (a one-time prekey's takes two: its
 * smimp-prekey stanza, then its X25519 stanza).
 */
struct stanza_keys {
	struct age_recipient *k;
	size_t n;
	size_t stanzas;
};

/* key, or the one-time prekey pk in its place when there is one. */
static int
stanza_add(struct stanza_keys *sk, const char *address,
    const unsigned char key[32], const struct msg_prekey *pk,
    struct smimp_err *err)
{
	int prekey = pk != NULL && pk->id[0] != '\0';
	size_t i;

	if (prekey)
		key = pk->key;
	if (msg_encryption_key_check(address, key, err) != 0)
		return -1;
	for (i = 0; i < sk->n; i++)
		if (memcmp(sk->k[i].x25519_public, key, 32) == 0)
			return 0;
	if (sk->stanzas + 1 + prekey > MSG_MAX_STANZAS)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many keys to "
		    "seal to: the recipients' and their devices', and the "
		    "sender's, come to more than %d", MSG_MAX_STANZAS);
	memcpy(sk->k[sk->n].x25519_public, key, 32);
	if (prekey)
		memcpy(sk->k[sk->n].prekey_id, pk->id, sizeof(pk->id));
	sk->n++;
	sk->stanzas += 1 + prekey;
	return 0;
}

/*
 * The prekey of r's key number i (0 its encryption key, 1 + j its
 * device j's), or NULL.  A recipient said to be forward-secret must
 * have one for each.
 */
static const struct msg_prekey *
prekey_of(const struct msg_recipient *r, size_t i)
{
	return r->prekeys != NULL && r->prekeys[i].id[0] != '\0' ?
	    &r->prekeys[i] : NULL;
}

static int
forward_secret_check(const struct msg_recipient *r, struct smimp_err *err)
{
	size_t i;

	for (i = 0; r->forward_secret && i <= r->ndevice_keys; i++)
		if (prekey_of(r, i) == NULL)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is not "
			    "forward-secret: a key of it has no one-time "
			    "prekey", r->address);
	return 0;
}

/*
 * Every recipient's encryption key and its receiving devices' keys;
 * then the sender's (not a "to": smimp-send reads the recipients and
 * message id back, and a sent copy stays legible on every device of
 * the sender), its receiving devices' and, for a device, its own.
 */
/*
 * Room for the keys stanza_keys may take, padded: each recipient's and
 * its devices', the sender's, its devices' and its own; within
 * MSG_MAX_STANZAS, past which stanza_add refuses.  Not MSG_MAX_STANZAS
 * whatever the count: 50 KiB to clear for the two keys of most seals.
 */
static size_t
stanza_room(const struct seal_params *p)
{
	size_t i, n = 2 + IDLOG_MAX_DEVICES;

	for (i = 0; i < p->nrcpts && n < MSG_MAX_STANZAS; i++)
		n += 1 + (p->rcpts[i].ndevice_keys < IDLOG_MAX_DEVICES ?
		    p->rcpts[i].ndevice_keys : IDLOG_MAX_DEVICES);
	n = pad_stanza_count(n);
	return n < MSG_MAX_STANZAS ? n : MSG_MAX_STANZAS;
}

static int
stanza_keys(const struct seal_params *p, struct stanza_keys *sk,
    struct smimp_err *err)
{
	unsigned char own[IDLOG_MAX_DEVICES][32];
	const char *from = p->sender_log->address;
	char dev[ADDRESS_MAX + 32];
	size_t i, j, n;

	sk->n = sk->stanzas = 0;
	sk->k = calloc(stanza_room(p), sizeof(*sk->k));
	if (sk->k == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < p->nrcpts; i++) {
		const struct msg_recipient *r = &p->rcpts[i];

		if (forward_secret_check(r, err) != 0 ||
		    stanza_add(sk, r->address, r->encryption_key,
		    prekey_of(r, 0), err) != 0)
			return -1;
		(void)snprintf(dev, sizeof(dev), "a device of %s", r->address);
		for (j = 0; j < r->ndevice_keys && j < IDLOG_MAX_DEVICES; j++)
			if (stanza_add(sk, dev, r->device_keys[j],
			    prekey_of(r, 1 + j), err) != 0)
				return -1;
	}
	/* The sender's own copy: its long-term keys, never a prekey. */
	if (stanza_add(sk, from, p->sender_log->encryption_key, NULL,
	    err) != 0)
		return -1;
	n = idlog_receiving_keys(p->sender_log, own);
	(void)snprintf(dev, sizeof(dev), "a device of %s", from);
	for (j = 0; j < n; j++)
		if (stanza_add(sk, dev, own[j], NULL, err) != 0)
			return -1;
	if (p->sender->is_device && p->sender->has_encryption_public &&
	    stanza_add(sk, from, p->sender->encryption_public, NULL,
	    err) != 0)
		return -1;
	return 0;
}

int
message_seal(const struct seal_params *p, int in_fd, int out_fd,
    char *message_id, size_t message_id_cap, struct smimp_err *err)
{
	struct stanza_keys keys = { NULL, 0, 0 };
	unsigned char key[AGE_PAYLOAD_KEY_SIZE];
	struct sealer se;
	struct sbuf hdr;
	int ret = -1;

	memset(&se, 0, sizeof(se));
	sbuf_init(&hdr, MSG_MAX_HEADER);
	if (sender_check(p, err) != 0)
		return -1;
	/* Only the notice of a revocation carries it (notice.h). */
	if (p->sender_log->revoked && strcmp(p->type, MSG_TYPE_NOTICE) != 0)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s is revoked: it seals nothing", p->sender_log->address);
	/* The age header shows a power of two, not who has how many keys. */
	if (env_header_build(&hdr, p, message_id, message_id_cap, err) != 0 ||
	    stanza_keys(p, &keys, err) != 0 ||
	    pad_stanzas(keys.k, &keys.n, MSG_MAX_STANZAS, err) != 0)
		goto out;
	if (pipeline_init(&se.pl, 0, key, err) != 0)
		goto out;
	env_root_init(&se.root);
	se.out = age_out_open_fd(out_fd, p->armor, err);
	if (se.out != NULL && p->out_name != NULL)
		age_out_name(se.out, p->out_name);
	if (se.out == NULL ||
	    age_encrypt_begin(se.out, keys.k, keys.n, key, err) != 0 ||
	    seal_stream(&se, p, in_fd, &hdr, err) != 0 ||
	    age_out_close(se.out, err) != 0)
		goto out;
	ret = 0;
out:
	pipeline_release(&se.pl);
	age_out_free(se.out);
	sodium_memzero(key, sizeof(key));
	free(keys.k);
	sbuf_release(&hdr);
	return ret;
}

/* ---- open ---- */

struct opener {
	struct pipeline pl;
	struct env_root root;
	struct msg_meta *meta;
	const struct trust_store *ts;
	const struct msg_sink *sink;	/* or NULL */
	/* Where the plaintext of B goes: part cur, begun or not, or body. */
	size_t cur;
	uint64_t left;
	int begun;
	size_t hlen;			/* 0 until the header is parsed */
	uint64_t pos;			/* plaintext bytes seen */
	uint64_t flushed;
	/* The last chunk's leaf waits: it may hold part of the signature. */
	int pending;
	unsigned char pending_leaf[ENV_LEAF_SIZE];
	const unsigned char *pending_pt;
	/*
	 * The last hold bytes seen are held back: they may be the
	 * signature (and, padded, T before it).
	 */
	unsigned char carry[PAD_TRAILER + ENV_SIG_SIZE];
	size_t carry_len, hold;
	/*
	 * Padded: the zero bytes that end what was seen, counted, not
	 * kept, and handed on only when a byte that is not zero follows
	 * them; those at the end are P's, as T says.
	 */
	uint64_t zeros;
	/* Where the whole payload goes, for a message a prekey opened. */
	int kept_fd;
};

/*
 * Hand bytes of B to the sink: to the parts in turn, each begun and
 * ended (an empty one too, once the bytes before it came), then to the
 * body.  With len 0, the parts that end here are ended.
 */
static int
deliver(struct opener *op, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	const struct msg_sink *sk = op->sink;
	const struct msg_meta *m = op->meta;
	size_t n;

	for (;;) {
		while (op->cur < m->nparts) {
			if (!op->begun) {
				op->begun = 1;
				op->left = m->parts[op->cur].size;
				if (sk != NULL && sk->part_begin != NULL &&
				    sk->part_begin(sk->arg, op->cur,
				    &m->parts[op->cur], err) != 0)
					return -1;
			}
			if (op->left > 0)
				break;
			if (sk != NULL && sk->part_end != NULL &&
			    sk->part_end(sk->arg, op->cur, err) != 0)
				return -1;
			op->cur++;
			op->begun = 0;
		}
		if (len == 0)
			return 0;
		if (op->cur == m->nparts)
			return sk != NULL && sk->body_data != NULL ?
			    sk->body_data(sk->arg, data, len, err) : 0;
		n = len < op->left ? len : (size_t)op->left;
		if (sk != NULL && sk->part_data != NULL &&
		    sk->part_data(sk->arg, op->cur, data, n, err) != 0)
			return -1;
		data += n;
		len -= n;
		op->left -= n;
	}
}

/* n zero bytes to deliver, in pieces. */
static int
deliver_zeros(struct opener *op, uint64_t n, struct smimp_err *err)
{
	static const unsigned char zero[AGE_CHUNK_SIZE];
	size_t k;

	for (; n > 0; n -= k) {
		k = n < sizeof(zero) ? (size_t)n : sizeof(zero);
		if (deliver(op, zero, k, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * Bytes of B || P on their way to deliver: padded, the zero bytes at
 * their end wait (counted) until something else follows, since they
 * may be P, whose length only T at the very end tells.
 */
static int
pass(struct opener *op, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	size_t n = len;

	if (!op->meta->padded)
		return deliver(op, data, len, err);
	while (n > 0 && data[n - 1] == 0)
		n--;
	if (n == 0) {
		op->zeros += len;
		return 0;
	}
	if (deliver_zeros(op, op->zeros, err) != 0 ||
	    deliver(op, data, n, err) != 0)
		return -1;
	op->zeros = len - n;
	return 0;
}

static int
emit(struct opener *op, const unsigned char *data, size_t len,
    struct smimp_err *err)
{
	size_t out, hold = op->hold;

	if (op->carry_len + len <= hold) {
		memcpy(op->carry + op->carry_len, data, len);
		op->carry_len += len;
		return 0;
	}
	out = op->carry_len + len - hold;
	/* Hand on what is certainly B: first from carry, then data. */
	if (out <= op->carry_len) {
		if (pass(op, op->carry, out, err) != 0)
			return -1;
		memmove(op->carry, op->carry + out, op->carry_len - out);
		op->carry_len -= out;
		memcpy(op->carry + op->carry_len, data, len);
		op->carry_len += len;
		return 0;
	}
	if (pass(op, op->carry, op->carry_len, err) != 0 ||
	    pass(op, data, out - op->carry_len, err) != 0)
		return -1;
	memcpy(op->carry, data + (out - op->carry_len), hold);
	op->carry_len = hold;
	return 0;
}

static int
feed_pending(struct opener *op)
{
	if (op->pending)
		env_root_add(&op->root, op->pending_leaf);
	op->pending = 0;
	return 0;
}

/* Why a chunk failed, as s->bad says. */
static int
chunk_failed(int bad, struct smimp_err *err)
{
	if (bad == BAD_IO)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "message");
	if (bad == BAD_SHORT)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the message "
		    "changed while it was opened");
	return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot decrypt: the "
	    "message is corrupted or truncated");
}

/* The final slot: fix up the leaves around the signature. */
static int
open_tail(struct opener *op, struct slot *s, struct smimp_err *err)
{
	size_t f = s->ct_lens[s->n - 1] - AGE_TAG_SIZE, i;
	const unsigned char *last_pt = s->pt + (s->n - 1) * AGE_CHUNK_SIZE;
	unsigned char leaf[ENV_LEAF_SIZE];

	if (s->n >= 2) {
		feed_pending(op);
		for (i = 0; i + 2 < s->n; i++)
			env_root_add(&op->root, s->leaves[i]);
		op->pending = 1;
		memcpy(op->pending_leaf, s->leaves[s->n - 2], ENV_LEAF_SIZE);
		op->pending_pt = s->pt + (s->n - 2) * AGE_CHUNK_SIZE;
	}
	if (f >= ENV_SIG_SIZE) {
		feed_pending(op);
		if (f > ENV_SIG_SIZE) {
			env_leaf(leaf, last_pt, f - ENV_SIG_SIZE);
			env_root_add(&op->root, leaf);
		}
		return 0;
	}
	if (!op->pending)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "malformed envelope: too short");
	env_leaf(leaf, op->pending_pt,
	    AGE_CHUNK_SIZE - (ENV_SIG_SIZE - f));
	env_root_add(&op->root, leaf);
	op->pending = 0;
	return 0;
}

static int
open_flush(struct opener *op, struct smimp_err *err)
{
	struct slot *s = &op->pl.slots[op->flushed % NSLOTS];
	size_t i, skip;

	pipeline_wait(&op->pl, s);
	op->flushed++;
	s->state = SLOT_FREE;
	for (i = 0; i < s->n; i++)
		if (s->bad[i])
			return chunk_failed(s->bad[i], err);
	if (op->hlen == 0) {
		size_t avail = 0;

		for (i = 0; i < s->n; i++)
			avail += s->ct_lens[i] - AGE_TAG_SIZE;
		/* Chunks are contiguous in pt; all but the last are full. */
		if (env_header_parse(s->pt, avail, &op->hlen, op->meta,
		    op->ts, err) != 0)
			return -1;
		op->hold = ENV_SIG_SIZE + (op->meta->padded ? PAD_TRAILER : 0);
	}
	if (s->last) {
		if (open_tail(op, s, err) != 0)
			return -1;
	} else if (s->n > 0) {
		feed_pending(op);
		for (i = 0; i + 1 < s->n; i++)
			env_root_add(&op->root, s->leaves[i]);
		op->pending = 1;
		memcpy(op->pending_leaf, s->leaves[s->n - 1], ENV_LEAF_SIZE);
		op->pending_pt = s->pt + (s->n - 1) * AGE_CHUNK_SIZE;
	}
	for (i = 0; i < s->n; i++) {
		const unsigned char *pt = s->pt + i * AGE_CHUNK_SIZE;
		size_t len = s->ct_lens[i] - AGE_TAG_SIZE;

		if (op->kept_fd >= 0 && fd_write_all(op->kept_fd, pt, len) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot keep "
			    "the plain envelope");
		skip = 0;
		if (op->pos < op->hlen)
			skip = op->hlen - op->pos < len ?
			    (size_t)(op->hlen - op->pos) : len;
		op->pos += len;
		if (emit(op, pt + skip, len - skip, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * The key S must verify under: the identity key of the sender log, or,
 * for a message a device signed (from-device), that device's signing
 * key, the device live in the sender log with scope full or send.
 * Anything else is refused as a revoked key's signature would be.
 */
static int
signing_key(struct msg_meta *meta, struct smimp_err *err)
{
	const struct iddevice *d;

	if (meta->from_device[0] == '\0') {
		memcpy(meta->signing_key, meta->sender.identity_key, 32);
		return 0;
	}
	d = idlog_sending_device(&meta->sender, meta->from_device, NULL, err);
	if (d == NULL)
		return -1;
	memcpy(meta->signing_key, d->signing_key, 32);
	return 0;
}

/*
 * A padded message's P and T, once its signature verified: P's length
 * (T) no more than what follows H, every byte of P zero, and the whole
 * plaintext the bucket of what it holds besides P, neither more nor
 * less (doc/PROTOCOL.md 9).
 */
static int
padding_check(struct opener *op, struct smimp_err *err)
{
	uint64_t plen;

	if (!op->meta->padded)
		return 0;
	plen = pad_trailer_get(op->carry);
	if (plen > op->pos - op->hlen - op->hold)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: the padding is longer than the message");
	if (plen > op->zeros)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: a padding byte is not zero");
	if (pad_bucket(op->pos - plen) != op->pos)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: padded to %llu bytes, not to its bucket",
		    (unsigned long long)op->pos);
	op->meta->padding_len = plen;
	return 0;
}

static int
open_verify(struct opener *op, struct smimp_err *err)
{
	unsigned char root[32];
	uint64_t blen;

	if (op->hlen == 0 || op->pos < op->hlen + op->hold ||
	    op->carry_len != op->hold)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "malformed envelope: too short");
	env_root_final(&op->root, op->pos - ENV_SIG_SIZE, root);
	if (signing_key(op->meta, err) != 0)
		return -1;
	if (env_verify(op->carry + op->hold - ENV_SIG_SIZE, root,
	    op->meta->signing_key) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "bad signature: the message from %s was altered or "
		    "forged", op->meta->from);
	if (padding_check(op, err) != 0)
		return -1;
	blen = op->pos - op->hlen - op->hold - op->meta->padding_len;
	if (blen < op->meta->parts_len)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: the parts run past the end of the message");
	op->meta->body_len = blen - op->meta->parts_len;
	/*
	 * The zeros that were B's, not P's; then the parts that end with
	 * B: an empty body after them, or empty.
	 */
	if (deliver_zeros(op, op->zeros - op->meta->padding_len, err) != 0 ||
	    deliver(op, NULL, 0, err) != 0)
		return -1;
	return 0;
}

/*
 * Is address among the recipients?  Every to or cc naming it must carry
 * mine's fingerprint (when mine is known): a message that lists our
 * address beside another identity was sealed for someone else, or sent
 * to a key that is not ours, and fails with SMIMP_EXIT_KEYCHANGED.
 */
static int
addressed_to(const struct msg_meta *meta, const char *address,
    const struct idlog *mine, int *yes, struct smimp_err *err)
{
	char ours[FINGERPRINT_STRLEN], got[FINGERPRINT_STRLEN];
	size_t i;

	*yes = 0;
	for (i = 0; i < meta->nrcpts; i++) {
		if (strcmp(meta->rcpts[i].address, address) != 0)
			continue;
		if (mine != NULL && sodium_memcmp(meta->rcpts[i].fingerprint,
		    mine->fingerprint, FINGERPRINT_SIZE) != 0) {
			fingerprint_format(mine->fingerprint, ours);
			fingerprint_format(meta->rcpts[i].fingerprint, got);
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the "
			    "message from %s lists %s with fingerprint %s, "
			    "not this identity's %s", meta->from, address,
			    got, ours);
		}
		*yes = 1;
	}
	return 0;
}

/*
 * Was the message signed by our own identity?  With our log, its
 * sender log must share our genesis and be one we extend (or equal);
 * without it, its current key must be our identity key.  A message
 * that claims our address under another identity fails with
 * SMIMP_EXIT_KEYCHANGED, as for an address pinned to another key.
 */
static int
signed_by_me(const struct msg_meta *meta, const struct secret_key *me,
    const struct idlog *mine, int *yes, struct smimp_err *err)
{
	char ours[FINGERPRINT_STRLEN], got[FINGERPRINT_STRLEN];
	char when[TIME_STRLEN];
	const struct idrec *r;

	*yes = 0;
	if (strcmp(meta->from, me->address) != 0)
		return 0;
	if (mine == NULL) {
		*yes = sodium_memcmp(meta->sender.identity_key,
		    me->identity_public, 32) == 0 ||
		    sodium_memcmp(meta->signing_key, me->identity_public,
		    32) == 0;
		return 0;
	}
	if (sodium_memcmp(meta->sender.fingerprint, mine->fingerprint,
	    FINGERPRINT_SIZE) != 0) {
		fingerprint_format(mine->fingerprint, ours);
		fingerprint_format(meta->sender.fingerprint, got);
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the message "
		    "claims to be from %s (this identity, fingerprint %s) but "
		    "is signed by %s", meta->from, ours, got);
	}
	/*
	 * A device's own log may lag behind what another device sealed;
	 * the identity key's never does, as only it writes the log.
	 */
	if (!idlog_extends(mine, &meta->sender) && (!me->is_device ||
	    !idlog_extends(&meta->sender, mine)))
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "log of %s in the message forks from this identity's own",
		    meta->from);
	/* Our log may know that the device that signed it was removed. */
	if (meta->from_device[0] != '\0' && mine->n > meta->sender.n &&
	    idlog_sending_device(mine, meta->from_device, meta->signing_key,
	    err) == NULL)
		return -1;
	/*
	 * Or that the identity key that signed it was replaced before it
	 * was sealed: a copy of the old key speaks for us no more than
	 * for anyone's reader (trust_sender_state).
	 */
	if (meta->from_device[0] == '\0' && mine->n > meta->sender.n &&
	    (r = idlog_key_replaced_after(mine, meta->sender.n)) != NULL &&
	    meta->date > r->date) {
		time_format(r->date, when);
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the message "
		    "from %s is signed by a key that was %s on %s, before it "
		    "was sealed: nothing written", meta->from,
		    r->type == IDREC_RECOVER ? "replaced by a recovery" :
		    "rotated", when);
	}
	*yes = 1;
	return 0;
}

/*
 * Where an opener's chunks come from: an age file's payload, to
 * decrypt (d), or a plain envelope read from in in chunks of the same
 * size, one byte read ahead to know the last.
 */
struct chunk_source {
	struct age_decryptor *d;	/* NULL: plain */
	struct age_in *in;
	int ahead;			/* next holds a byte read ahead */
	unsigned char next;
	uint64_t counter;
	/*
	 * An age file the workers read themselves (pipeline fd): its
	 * payload's bytes, and the next chunk to hand out.
	 */
	int positional;
	uint64_t total, next_chunk;
};

/*
 * The chunks of a batch by their place in the file: as age_decryptor
 * would read them (a full last chunk when the payload ends at a chunk's
 * end), the reading left to the workers.
 */
static int
positional_chunks(struct chunk_source *src, struct slot *s, int *last,
    struct smimp_err *err)
{
	uint64_t chunks = src->total == 0 ? 1 :
	    (src->total + AGE_CT_CHUNK_SIZE - 1) / AGE_CT_CHUNK_SIZE;
	uint64_t k, left;

	for (s->n = 0; s->n < BATCH_CHUNKS && src->next_chunk < chunks;
	    s->n++) {
		k = src->next_chunk++;
		left = src->total - k * AGE_CT_CHUNK_SIZE;
		s->ct_lens[s->n] = left < AGE_CT_CHUNK_SIZE ? (size_t)left :
		    AGE_CT_CHUNK_SIZE;
		if (s->ct_lens[s->n] < AGE_TAG_SIZE)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot "
			    "decrypt: %s", src->total == 0 ? "no payload" :
			    "truncated payload");
	}
	*last = src->next_chunk == chunks;
	return 0;
}

/*
 * Let the workers read the payload of in_fd themselves, from where it
 * starts: a regular file, not armored (start: where in_fd was when in
 * was opened on it).
 */
static void
positional_begin(struct chunk_source *src, struct pipeline *pl, int in_fd,
    off_t start)
{
	struct stat sb;
	uint64_t off;

	if (src->d == NULL || start < 0 || age_in_offset(src->in, &off) != 0 ||
	    fstat(in_fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size < (uint64_t)start + off)
		return;
	src->positional = 1;
	src->total = (uint64_t)sb.st_size - (uint64_t)start - off;
	pl->fd = in_fd;
	pl->fd_off = (uint64_t)start + off;
	(void)posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

static int
plain_chunks(struct chunk_source *src, unsigned char *pt, size_t *lens,
    size_t *count, int *last, struct smimp_err *err)
{
	size_t got = 0, have;

	for (*count = 0, *last = 0; *count < BATCH_CHUNKS && !*last;
	    (*count)++) {
		unsigned char *p = pt + *count * AGE_CHUNK_SIZE;

		have = 0;
		if (src->ahead)
			p[have++] = src->next;
		if (age_in_read(src->in, p + have, AGE_CHUNK_SIZE - have, &got,
		    err) != 0)
			return -1;
		have += got;
		got = 0;
		if (have == AGE_CHUNK_SIZE && age_in_read(src->in, &src->next, 1,
		    &got, err) != 0)
			return -1;
		src->ahead = got == 1;
		*last = !src->ahead;
		lens[*count] = have + AGE_TAG_SIZE;
	}
	src->counter += *count;
	return 0;
}

static int
source_read(struct chunk_source *src, struct slot *s, int *last,
    struct smimp_err *err)
{
	if (src->d == NULL)
		return plain_chunks(src, s->pt, s->ct_lens, &s->n, last, err);
	if (src->positional)
		return positional_chunks(src, s, last, err);
	return age_decryptor_read_chunks(src->d, s->ct, BATCH_CHUNKS,
	    s->ct_lens, &s->n, last, err);
}

/*
 * The bytes of s->pt its chunks write, to be wiped: all of each chunk
 * but the last, which may be short (a 1 KiB message's is: wiping a
 * whole 64 KiB chunk would touch 15 pages for nothing).
 */
static size_t
slot_extent(const struct slot *s)
{
	size_t last;

	if (s->n == 0)
		return 0;
	last = s->ct_lens[s->n - 1] > AGE_TAG_SIZE ?
	    s->ct_lens[s->n - 1] - AGE_TAG_SIZE : 0;
	if (last > AGE_CHUNK_SIZE)
		last = AGE_CHUNK_SIZE;
	return (s->n - 1) * AGE_CHUNK_SIZE + last;
}

static int
open_stream(struct opener *op, struct chunk_source *src,
    struct smimp_err *err)
{
	uint64_t filled = 0;
	int last = 0;

	while (!last) {
		struct slot *s = &op->pl.slots[filled % NSLOTS];
		uint64_t counter = src->positional ? src->next_chunk :
		    src->d != NULL ? age_decryptor_counter(src->d) :
		    src->counter;

		if (filled - op->flushed == NSLOTS && open_flush(op, err) != 0)
			return -1;
		if (source_read(src, s, &last, err) != 0)
			return -1;
		if (s->n == 0 && !last)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "cannot decrypt: the message is truncated");
		s->counter = counter;
		s->last = last;
		if (slot_extent(s) > s->touched)
			s->touched = slot_extent(s);
		pipeline_submit(&op->pl, s, !last);
		filled++;
	}
	while (op->flushed < filled)
		if (open_flush(op, err) != 0)
			return -1;
	return 0;
}

/* prekey_find for age.c: a secret of the reader's prekey store. */
static const unsigned char *
find_prekey(const void *arg, const char *id)
{
	return prekey_store_find(arg, id);
}

/*
 * What opens an age file for me: its one-time prekeys first (a message
 * sealed to one names it, and one try settles it), then the current
 * encryption key, then those it replaced, so that a message sealed to
 * an encryption key before a new one was published still opens.
 */
static size_t
reader_ids(const struct secret_key *me,
    struct age_identity ids[2 + KEY_RETIRED_MAX])
{
	size_t i, n = 0, nretired = me->nretired < KEY_RETIRED_MAX ?
	    me->nretired : KEY_RETIRED_MAX;

	memset(ids, 0, (2 + KEY_RETIRED_MAX) * sizeof(*ids));
	if (me->prekeys != NULL && me->prekeys->n > 0) {
		ids[n].type = AGE_ID_PREKEYS;
		ids[n].prekey_find = find_prekey;
		ids[n++].prekey_arg = me->prekeys;
	}
	for (i = 0; i <= nretired; i++) {
		ids[n].type = AGE_ID_X25519;
		ids[n++].x25519_secret = i == 0 ? me->encryption_secret :
		    me->retired + 32 * (i - 1);
	}
	return n;
}

/*
 * The chunks of in: decrypted with what me holds, or, for a plain
 * envelope (what a reader keeps of a message sealed to a prekey), as
 * they are.  The pipeline set up for them.
 */
static int
open_source(const struct secret_key *me, struct age_in *in,
    struct chunk_source *src, struct pipeline *pl, struct smimp_err *err)
{
	struct age_identity ids[2 + KEY_RETIRED_MAX];
	char msg[SMIMP_ERR_MSG];

	memset(src, 0, sizeof(*src));
	src->in = in;
	if (age_in_starts_with(in, ENV_MAGIC, strlen(ENV_MAGIC)))
		return pipeline_init(pl, PL_PLAIN, NULL, err);
	src->d = age_decrypt_begin(in, ids, reader_ids(me, ids), err);
	if (src->d == NULL) {
		memcpy(msg, err->msg, sizeof(msg));
		if (err->detail == AGE_FAIL_NO_MATCH)
			smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot decrypt: "
			    "the message is not encrypted to %s", me->address);
		else if (err->detail == AGE_FAIL_NO_PREKEY)
			smimp_err_set(err, SMIMP_EXIT_BADMSG, "cannot decrypt: "
			    "the message is not encrypted to %s, or to a "
			    "one-time prekey it still holds (the secret of "
			    "one goes once a message sealed to it is opened)",
			    me->address);
		else if (err->code == SMIMP_EXIT_BADMSG)
			smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "cannot decrypt: %s", msg);
		return -1;
	}
	return pipeline_init(pl, PL_OPEN, age_decryptor_payload_key(src->d),
	    err);
}

/* Is the reader's address one the envelope calls forward-secret? */
static int
forward_secret_to(const struct msg_meta *meta, const char *address)
{
	size_t i;

	for (i = 0; i < meta->nrcpts; i++)
		if (meta->rcpts[i].forward_secret &&
		    strcmp(meta->rcpts[i].address, address) == 0)
			return 1;
	return 0;
}

/* The message is me's: signed by me, or addressed to me (not as_sender). */
static int
whose(const struct secret_key *me, const struct idlog *mine, int as_sender,
    struct msg_meta *meta, struct smimp_err *err)
{
	int to_me = 0;

	if (as_sender) {
		if (strcmp(meta->from, me->address) != 0 ||
		    sodium_memcmp(meta->signing_key, me->identity_public,
		    32) != 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the message "
			    "was sealed by %s%s%s, not by %s%s%s", meta->from,
			    meta->from_device[0] != '\0' ? ", device " : "",
			    meta->from_device, me->address, me->is_device ?
			    ", device " : "", me->is_device ? me->device : "");
		return 0;
	}
	if (addressed_to(meta, me->address, mine, &to_me, err) != 0 ||
	    signed_by_me(meta, me, mine, &meta->own, err) != 0)
		return -1;
	/* Our own sent copy: we are its sender, not a recipient. */
	if (!to_me && !meta->own)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "the message from "
		    "%s was not addressed to %s: it was forwarded by someone "
		    "else", meta->from, me->address);
	meta->forward_secret = to_me && forward_secret_to(meta, me->address);
	return 0;
}

/*
 * A first pass of two (message.h): where the payload starts (where the
 * workers read it from) and its key, for message_replay.  Only for an
 * age file message_replay_check allowed, which the workers read.
 */
static int
replay_begin(const struct msg_sink *sink, const struct chunk_source *src,
    const struct pipeline *pl, struct smimp_err *err)
{
	struct msg_replay *rp = sink != NULL ? sink->replay : NULL;

	if (rp == NULL || !rp->usable || !src->positional)
		return 0;
	rp->key = sodium_malloc(AGE_PAYLOAD_KEY_SIZE);
	if (rp->key == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	memcpy(rp->key, age_decryptor_payload_key(src->d),
	    AGE_PAYLOAD_KEY_SIZE);
	rp->payload_off = pl->fd_off;
	return 0;
}

static int
open_message(const struct secret_key *me, const struct idlog *mine,
    int in_fd, const struct msg_sink *sink, const struct trust_store *ts,
    int as_sender, int kept_fd, struct msg_meta *meta,
    struct smimp_err *err)
{
	struct chunk_source src;
	struct opener op;
	struct age_in *in;
	char prekey[AGE_PREKEY_ID_LEN + 1] = "";
	int ret = -1;
	off_t start;

	memset(&op, 0, sizeof(op));
	memset(&src, 0, sizeof(src));
	memset(meta, 0, sizeof(*meta));
	op.meta = meta;
	op.ts = ts;
	op.sink = sink;
	op.kept_fd = -1;
	env_root_init(&op.root);
	start = lseek(in_fd, 0, SEEK_CUR);
	in = age_in_open_fd(in_fd, err);
	if (in == NULL)
		return -1;
	if (open_source(me, in, &src, &op.pl, err) != 0)
		goto out;
	positional_begin(&src, &op.pl, in_fd, start);
	if (src.d != NULL)
		memcpy(prekey, age_decryptor_prekey(src.d), sizeof(prekey));
	if (replay_begin(sink, &src, &op.pl, err) != 0)
		goto out;
	/* Only a message a prekey opened is kept as a plain envelope. */
	if (prekey[0] != '\0')
		op.kept_fd = kept_fd;
	if (open_stream(&op, &src, err) != 0 || open_verify(&op, err) != 0 ||
	    whose(me, mine, as_sender, meta, err) != 0)
		goto out;
	memcpy(meta->prekey_id, prekey, sizeof(prekey));
	meta->plain = src.d == NULL;
	if (sink != NULL && sink->replay != NULL &&
	    sink->replay->key != NULL) {
		sink->replay->plain_len = op.pos;
		sink->replay->hlen = op.hlen;
		sink->replay->kept = 1;
	}
	ret = 0;
out:
	pipeline_release(&op.pl);
	age_decrypt_free(src.d);
	age_in_free(in);
	if (ret != 0 && op.hlen != 0)
		msg_meta_release(meta);
	return ret;
}

int
message_open_sink(const struct secret_key *me, const struct idlog *mine,
    int in_fd, const struct msg_sink *sink, const struct trust_store *ts,
    struct msg_meta *meta, struct smimp_err *err)
{
	return open_message(me, mine, in_fd, sink, ts, 0, -1, meta, err);
}

static int
body_to_fd(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err)
{
	if (fd_write_all(*(const int *)arg, buf, len) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL,
		    "cannot write the body");
	return 0;
}

int
message_open(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int body_fd, const struct trust_store *ts,
    struct msg_meta *meta, struct smimp_err *err)
{
	struct msg_sink sink = { NULL, NULL, NULL, body_to_fd, &body_fd,
	    NULL };

	return open_message(me, mine, in_fd, body_fd >= 0 ? &sink : NULL,
	    ts, 0, -1, meta, err);
}

int
message_open_sent(const struct secret_key *me, int in_fd,
    struct msg_meta *meta, struct smimp_err *err)
{
	return open_message(me, NULL, in_fd, NULL, NULL, 1, -1, meta, err);
}

int
message_open_kept(const struct secret_key *me, const struct idlog *mine,
    int in_fd, int kept_fd, const struct msg_sink *sink,
    const struct trust_store *ts, struct msg_meta *meta,
    struct smimp_err *err)
{
	return open_message(me, mine, in_fd, sink, ts, 0, kept_fd, meta, err);
}

/* ---- a second pass ---- */

/* What says a file is the same: dev, ino, size, mtime, ctime. */
static int
replay_stat(int fd, long long st[7])
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return -1;
	st[0] = (long long)sb.st_dev;
	st[1] = (long long)sb.st_ino;
	st[2] = (long long)sb.st_size;
	st[3] = (long long)sb.st_mtim.tv_sec;
	st[4] = (long long)sb.st_mtim.tv_nsec;
	st[5] = (long long)sb.st_ctim.tv_sec;
	st[6] = (long long)sb.st_ctim.tv_nsec;
	return 0;
}

/* The lease let go: a writer that waits for it goes on. */
static void
replay_unlease(struct msg_replay *rp)
{
	if (rp->leased)
		fd_lease_release(rp->fd);
	rp->leased = 0;
}

int
message_replay_check(int in_fd, struct msg_replay *rp, struct smimp_err *err)
{
	static const char magic[] = AGE_VERSION_LINE "\n";
	char head[sizeof(magic) - 1];
	struct stat sb;
	off_t at;

	memset(rp, 0, sizeof(*rp));
	if (fstat(in_fd, &sb) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot read the "
		    "input");
	/* Only this user (or root) can change it between the passes. */
	if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return 0;
	at = lseek(in_fd, 0, SEEK_CUR);
	if (at < 0 || sb.st_size - at < MSG_REPLAY_MIN)
		return 0;
	if (pread(in_fd, head, sizeof(head), at) != (ssize_t)sizeof(head) ||
	    memcmp(head, magic, sizeof(head)) != 0)
		return 0;
	if (fd_lease_read(in_fd) != 0)
		return 0;
	if (replay_stat(in_fd, rp->st) != 0) {
		fd_lease_release(in_fd);
		return 0;
	}
	rp->leased = 1;
	rp->fd = in_fd;
	rp->usable = 1;
	return 1;
}

/*
 * Has the input changed, or been opened to be written, since
 * message_replay_check?
 */
static int
replay_same(int fd, const struct msg_replay *rp, struct smimp_err *err)
{
	long long now[7];

	if (!fd_lease_held(fd) || replay_stat(fd, now) != 0 ||
	    memcmp(now, rp->st, sizeof(now)) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the message "
		    "changed while it was opened");
	return 0;
}

/* What a second pass reads and writes: chunks first to last. */
struct replay_pass {
	struct pipeline pl;
	struct msg_replay *rp;
	uint64_t chunks;	/* of the whole payload */
	uint64_t next;		/* the next chunk to read */
	uint64_t end;		/* one past the last chunk with body bytes */
	uint64_t from, to;	/* the body's plaintext bytes */
	uint64_t flushed;
	int (*out)(void *, const unsigned char *, size_t,
	    struct smimp_err *);
	void *arg;
};

/* The next batch's chunks, by their place: the workers read them. */
static void
replay_read(struct replay_pass *rs, struct slot *s)
{
	uint64_t n = rs->end - rs->next, i, plen;

	if (n > BATCH_CHUNKS)
		n = BATCH_CHUNKS;
	for (i = 0; i < n; i++) {
		plen = rs->rp->plain_len - (rs->next + i) * AGE_CHUNK_SIZE;
		s->ct_lens[i] = (plen < AGE_CHUNK_SIZE ? (size_t)plen :
		    AGE_CHUNK_SIZE) + AGE_TAG_SIZE;
	}
	s->n = (size_t)n;
	s->counter = rs->next;
	s->last = rs->next + n == rs->chunks;
	if (s->n * AGE_CHUNK_SIZE > s->touched)
		s->touched = s->n * AGE_CHUNK_SIZE;
	rs->next += n;
}

/* A decrypted batch: the body bytes it holds, to out. */
static int
replay_flush(struct replay_pass *rs, struct smimp_err *err)
{
	struct slot *s = &rs->pl.slots[rs->flushed % NSLOTS];
	uint64_t first = s->counter * AGE_CHUNK_SIZE, a, b;
	size_t i;

	pipeline_wait(&rs->pl, s);
	rs->flushed++;
	s->state = SLOT_FREE;
	/*
	 * Read while nothing could write the file, or not out at all: any
	 * recipient can encrypt a chunk that decrypts as well as these.
	 */
	if (!fd_lease_held(rs->pl.fd))
		return chunk_failed(BAD_SHORT, err);
	for (i = 0; i < s->n; i++) {
		/* It verified before: a chunk that does not now, changed. */
		if (s->bad[i])
			return chunk_failed(s->bad[i] == 1 ? BAD_SHORT :
			    s->bad[i], err);
		a = first + i * AGE_CHUNK_SIZE;
		b = a + s->ct_lens[i] - AGE_TAG_SIZE;
		if (a < rs->from)
			a = rs->from;
		if (b > rs->to)
			b = rs->to;
		if (a < b && rs->out(rs->arg, s->pt + (a - first), b - a,
		    err) != 0)
			return -1;
	}
	return 0;
}

int
message_replay(struct msg_replay *rp, int in_fd, const struct msg_meta *meta,
    int (*out)(void *arg, const unsigned char *buf, size_t len,
    struct smimp_err *err), void *arg, struct smimp_err *err)
{
	struct replay_pass rs;
	uint64_t filled = 0;
	int ret = -1;

	if (!rp->kept)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no first pass to "
		    "follow");
	memset(&rs, 0, sizeof(rs));
	rs.rp = rp;
	rs.out = out;
	rs.arg = arg;
	rs.from = rp->hlen + meta->parts_len;
	rs.to = rs.from + meta->body_len;
	rs.chunks = (rp->plain_len + AGE_CHUNK_SIZE - 1) / AGE_CHUNK_SIZE;
	rs.next = rs.from / AGE_CHUNK_SIZE;
	rs.end = rs.to == rs.from ? rs.next : (rs.to - 1) / AGE_CHUNK_SIZE + 1;
	if (replay_same(in_fd, rp, err) != 0 ||
	    pipeline_init(&rs.pl, PL_DECRYPT, rp->key, err) != 0)
		goto out;
	rs.pl.fd = in_fd;
	rs.pl.fd_off = rp->payload_off;
	(void)posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (rs.next < rs.end) {
		struct slot *s = &rs.pl.slots[filled % NSLOTS];

		if (filled - rs.flushed == NSLOTS &&
		    replay_flush(&rs, err) != 0)
			goto out;
		replay_read(&rs, s);
		pipeline_submit(&rs.pl, s, rs.next < rs.end);
		filled++;
	}
	while (rs.flushed < filled)
		if (replay_flush(&rs, err) != 0)
			goto out;
	ret = replay_same(in_fd, rp, err);
out:
	pipeline_release(&rs.pl);
	replay_unlease(rp);
	return ret;
}

void
msg_replay_release(struct msg_replay *rp)
{
	if (rp->key != NULL)
		sodium_free(rp->key);
	rp->key = NULL;
	rp->kept = 0;
	replay_unlease(rp);
}
