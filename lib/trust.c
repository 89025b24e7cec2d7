/*
 * trust.c - the trust store: $SMIMP_HOME/trust, one text file.
 *
 *	smimp-trust/1
 *
 *	name: alice@example.org
 *	tier: trusted
 *	added: 2026-11-24T22:00:00Z
 *	fingerprint: ABCD-EFGH-...
 *	verified: yes
 *	log: <base64 of the identity log>
 *	checked: 2026-11-25T09:00:00Z
 *
 *	name: @example.net
 *	tier: blocked
 *	added: 2026-11-24T22:00:00Z
 *
 * Entries are separated by one empty line; an address may carry a
 * pinned identity log (fingerprint, verified, log, and optionally when
 * it was last checked against its domain's directory), a domain never
 * does.  A store written before "checked" existed reads as it always
 * did: its entries count as checked when they were added.  Changes happen under an exclusive flock on trust.lock and
 * replace the file atomically, so two commands never lose an update.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "trust.h"
#include "util.h"
#include "banned.h"

#define TRUST_MAGIC	"smimp-trust/1\n"
#define TRUST_MAX_LINE	(2 * IDLOG_MAX_BYTES)

/*
 * The entries by name, so that finding one, and telling a duplicate
 * while loading, takes constant time: a scan of every entry made loading
 * a large store quadratic, and every lookup linear.  Open addressing
 * over entry indexes, at most half full, hashed with a random key so
 * that no store can be written to pile its names into one run.
 */
struct trust_names {
	uint32_t *slot;		/* entry index + 1; 0 is empty */
	size_t mask;
	unsigned char key[crypto_shorthash_KEYBYTES];
};

static const char *const tier_names[] = {
	"unknown", "blocked", "known", "trusted"
};

const char *
trust_tier_name(enum trust_tier tier)
{
	return (size_t)tier < 4 ? tier_names[tier] : "unknown";
}

int
trust_tier_parse(const char *s, enum trust_tier *tier)
{
	int i;

	for (i = TIER_BLOCKED; i <= TIER_TRUSTED; i++) {
		if (strcmp(s, tier_names[i]) == 0) {
			*tier = (enum trust_tier)i;
			return 0;
		}
	}
	return -1;
}

static void
entry_release(struct trust_entry *e)
{
	if (e->has_log)
		idlog_release(&e->log);
	memset(e, 0, sizeof(*e));
}

void
trust_release(struct trust_store *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		entry_release(&ts->entries[i]);
	free(ts->entries);
	if (ts->names != NULL)
		free(ts->names->slot);
	free(ts->names);
	ts->entries = NULL;
	ts->names = NULL;
	ts->n = ts->cap = 0;
}

/* A normalized "user@domain" or "@domain". */
static int
name_normalize(const char *in, char out[ADDRESS_MAX + 2],
    struct smimp_err *err)
{
	if (in[0] == '@') {
		out[0] = '@';
		return domain_normalize(in + 1, out + 1, err);
	}
	return address_normalize(in, out, err);
}

static int
corrupt(struct smimp_err *err, const char *path, size_t line,
    const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s:%zu: %s", path, line,
	    what);
}

static size_t
line_of(const char *buf, size_t pos)
{
	size_t i, n = 1;

	for (i = 0; i < pos; i++)
		if (buf[i] == '\n')
			n++;
	return n;
}

/* Parse one entry's fields starting at *pos. */
static int
entry_parse(struct trust_store *ts, const char *buf, size_t len, size_t *pos,
    struct trust_entry *e, struct smimp_err *err)
{
	struct kv_line kv;
	struct smimp_err lerr;
	char tmp[ADDRESS_MAX + 2];
	unsigned char fp[FINGERPRINT_SIZE], *raw = NULL;
	size_t rawlen;
	int r;

#define FIELD(name) (kv_next(buf, len, pos, TRUST_MAX_LINE, &kv) == 1 && \
	kv_is(&kv, name))
#define BAD(what) corrupt(err, ts->path, line_of(buf, *pos), what)
	memset(e, 0, sizeof(*e));
	if (!FIELD("name") || kv_value_copy(&kv, tmp, sizeof(tmp)) != 0 ||
	    name_normalize(tmp, e->name, &lerr) != 0 ||
	    strcmp(tmp, e->name) != 0)
		return BAD("bad or missing name");
	if (!FIELD("tier") || kv_value_copy(&kv, tmp, sizeof(tmp)) != 0 ||
	    trust_tier_parse(tmp, &e->tier) != 0)
		return BAD("bad or missing tier");
	if (!FIELD("added") ||
	    time_parse(kv.value, kv.value_len, &e->added) != 0)
		return BAD("bad or missing added");
	if (*pos >= len || buf[*pos] == '\n')
		return 0;
	if (e->name[0] == '@')
		return BAD("a domain has no fingerprint");
	if (!FIELD("fingerprint") || kv_value_copy(&kv, tmp, sizeof(tmp)) ||
	    fingerprint_parse(tmp, fp) != 0)
		return BAD("bad fingerprint");
	if (!FIELD("verified") || (kv.value_len != 2 && kv.value_len != 3))
		return BAD("bad verified");
	if (memcmp(kv.value, "yes", kv.value_len) == 0)
		e->verified = 1;
	else if (memcmp(kv.value, "no", kv.value_len) != 0)
		return BAD("bad verified");
	if (!FIELD("log"))
		return BAD("missing log");
	raw = malloc(kv.value_len + 1);
	if (raw == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	r = b64_decode_public(kv.value, kv.value_len, raw, kv.value_len,
	    &rawlen);
	if (r == 0)
		/* Verified when pinned; the store is ours, mode 0600. */
		r = idlog_parse_verified(&e->log, raw, rawlen, &lerr);
	free(raw);
	if (r != 0)
		return BAD("bad identity log");
	e->has_log = 1;
	if (strcmp(e->log.address, e->name) != 0 ||
	    memcmp(e->log.fingerprint, fp, FINGERPRINT_SIZE) != 0)
		return BAD("the log does not match the entry");
	if (*pos >= len || buf[*pos] == '\n')
		return 0;
	if (!FIELD("checked") ||
	    time_parse(kv.value, kv.value_len, &e->checked) != 0)
		return BAD("bad checked");
	return 0;
#undef FIELD
#undef BAD
}

/* The slot that holds name, or the empty one where it would go. */
static size_t
names_slot(const struct trust_store *ts, const char *name)
{
	const struct trust_names *set = ts->names;
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t x = 0;
	size_t k, j;

	(void)crypto_shorthash(h, (const unsigned char *)name, strlen(name),
	    set->key);
	for (k = 0; k < sizeof(x); k++)
		x = x << 8 | h[k];
	for (j = (size_t)x & set->mask; set->slot[j] != 0;
	    j = (j + 1) & set->mask)
		if (strcmp(ts->entries[set->slot[j] - 1].name, name) == 0)
			break;
	return j;
}

/* Index the entries again, in a table of size slots (a power of 2). */
static int
names_rebuild(struct trust_store *ts, size_t size)
{
	struct trust_names *set = ts->names;
	uint32_t *slot;
	size_t i;

	if (set == NULL) {
		set = calloc(1, sizeof(*set));
		if (set == NULL)
			return -1;
		randombytes_buf(set->key, sizeof(set->key));
		ts->names = set;
	}
	slot = calloc(size, sizeof(*slot));
	if (slot == NULL)
		return -1;
	free(set->slot);
	set->slot = slot;
	set->mask = size - 1;
	for (i = 0; i < ts->n; i++)
		set->slot[names_slot(ts, ts->entries[i].name)] =
		    (uint32_t)i + 1;
	return 0;
}

/*
 * Room for one more entry, at ts->entries[ts->n], and for its name in
 * the index; both grow by doubling, so that n entries cost O(n).
 */
static int
entries_reserve(struct trust_store *ts, struct smimp_err *err)
{
	struct trust_entry *ne;
	size_t cap, size;

	if (ts->n == ts->cap) {
		cap = ts->cap > 0 ? 2 * ts->cap : 64;
		ne = realloc(ts->entries, cap * sizeof(*ne));
		if (ne == NULL)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "out of memory");
		ts->entries = ne;
		ts->cap = cap;
	}
	size = ts->names != NULL ? ts->names->mask + 1 : 0;
	if (2 * (ts->n + 1) > size) {
		size = size > 0 ? 2 * size : 128;
		if (names_rebuild(ts, size) != 0)
			return smimp_err_sys(err, SMIMP_EXIT_FAIL,
			    "out of memory");
	}
	return 0;
}

/* Count ts->entries[ts->n] in; 0 if its name was there already. */
static int
names_add(struct trust_store *ts)
{
	size_t j = names_slot(ts, ts->entries[ts->n].name);

	if (ts->names->slot[j] != 0)
		return 0;
	ts->names->slot[j] = (uint32_t)ts->n + 1;
	ts->n++;
	return 1;
}

static int
store_parse(struct trust_store *ts, const char *buf, size_t len,
    struct smimp_err *err)
{
	size_t pos = strlen(TRUST_MAGIC);

	if (len < pos || memcmp(buf, TRUST_MAGIC, pos) != 0)
		return corrupt(err, ts->path, 1, "not a smimp trust store");
	while (pos < len) {
		if (buf[pos] != '\n')
			return corrupt(err, ts->path, line_of(buf, pos),
			    "expected an empty line between entries");
		pos++;
		if (ts->n == TRUST_MAX_ENTRIES)
			return corrupt(err, ts->path, line_of(buf, pos),
			    "too many entries");
		if (entries_reserve(ts, err) != 0)
			return -1;
		if (entry_parse(ts, buf, len, &pos, &ts->entries[ts->n],
		    err) != 0) {
			entry_release(&ts->entries[ts->n]);
			return -1;
		}
		if (!names_add(ts)) {
			entry_release(&ts->entries[ts->n]);
			return corrupt(err, ts->path, line_of(buf, pos),
			    "duplicate entry");
		}
	}
	return 0;
}

int
trust_load(struct trust_store *ts, const char *home, struct smimp_err *err)
{
	unsigned char *buf = NULL;
	size_t len;
	int ret;

	memset(ts, 0, sizeof(*ts));
	if ((size_t)snprintf(ts->home, sizeof(ts->home), "%s", home) >=
	    sizeof(ts->home) ||
	    (size_t)snprintf(ts->path, sizeof(ts->path), "%s/trust", home) >=
	    sizeof(ts->path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	if (access(ts->path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (file_read_checked(ts->path, FILE_NOFOLLOW | FILE_OWNED,
	    TRUST_MAX_BYTES, &buf, &len, err) != 0) {
		if (err->code == SMIMP_EXIT_BADMSG)
			err->code = SMIMP_EXIT_FAIL;
		return -1;
	}
	ret = store_parse(ts, (const char *)buf, len, err);
	free(buf);
	if (ret != 0)
		trust_release(ts);
	return ret;
}

const struct trust_entry *
trust_find(const struct trust_store *ts, const char *name)
{
	uint32_t i;

	if (ts->names == NULL)
		return NULL;
	i = ts->names->slot[names_slot(ts, name)];
	return i != 0 ? &ts->entries[i - 1] : NULL;
}

enum trust_tier
trust_tier_for(const struct trust_store *ts, const char *address,
    const struct trust_entry **pinned)
{
	const struct trust_entry *e = trust_find(ts, address), *d;
	char dom[ADDRESS_MAX + 2];

	*pinned = e;
	if (e != NULL)
		return e->tier;
	(void)snprintf(dom, sizeof(dom), "@%s", address_domain(address));
	d = trust_find(ts, dom);
	return d != NULL ? d->tier : TIER_UNKNOWN;
}

/* The refusal of a message signed under records a recovery voided. */
static int
voided(const char *address, int64_t at, struct smimp_err *err)
{
	char when[TIME_STRLEN];

	time_format(at, when);
	return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the message from %s "
	    "is signed under identity records that a recovery on %s made "
	    "void (its key may have been stolen): nothing written", address,
	    when);
}

/*
 * Of two logs of one identity, the one that follows the other (extends
 * it, or recovers it), or NULL when they fork.
 */
static const struct idlog *
later_log(const struct idlog *a, const struct idlog *b)
{
	struct idlog_follow how;
	struct smimp_err ignored;

	if (idlog_check_follows(a, b, &how, &ignored) == 0)
		return a;
	if (idlog_check_follows(b, a, &how, &ignored) == 0)
		return b;
	return NULL;
}

int
trust_sender_tier(const struct trust_store *ts, const char *address,
    const struct idlog *log, int own, enum trust_tier *tier,
    struct smimp_err *err)
{
	const struct trust_entry *e;
	char pinned[FINGERPRINT_STRLEN], got[FINGERPRINT_STRLEN];

	if (own) {
		/* message_open checked that our own identity signed it. */
		*tier = TIER_TRUSTED;
		return 0;
	}
	*tier = trust_tier_for(ts, address, &e);
	/*
	 * A tier speaks for the identity pinned for the address; without
	 * one, any self-made log could claim the address and take the
	 * tier of the address or of its domain.  Only a block holds.
	 */
	if (e == NULL || !e->has_log) {
		if (*tier != TIER_BLOCKED)
			*tier = TIER_UNKNOWN;
		return 0;
	}
	if (sodium_memcmp(e->log.fingerprint, log->fingerprint,
	    FINGERPRINT_SIZE) == 0) {
		int64_t at;

		if (idlog_voided_by(&e->log, log, &at))
			return voided(address, at, err);
		/* Same genesis: one log must follow the other. */
		if (later_log(log, &e->log) != NULL)
			return 0;
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "log of %s in the message forks from the pinned one",
		    address);
	}
	fingerprint_format(e->log.fingerprint, pinned);
	fingerprint_format(log->fingerprint, got);
	return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "%s is pinned to "
	    "fingerprint %s but the message is signed by %s", address,
	    pinned, got);
}

/* The refusal of a message from the revoked identity of log. */
static int
sender_revoked(const struct idlog *log, struct smimp_err *err)
{
	char when[TIME_STRLEN];

	time_format(log->revoked_at, when);
	return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity of %s "
	    "was revoked on %s (\"%s\"): nothing written", log->address, when,
	    log->reason);
}

int
trust_sender_state(const struct trust_store *ts, const char *address,
    const struct idlog *log, int64_t sealed, const char *device,
    const unsigned char *device_key, char *note, size_t cap,
    struct smimp_err *err)
{
	const struct trust_entry *e = trust_find(ts, address);
	const struct idrec *r;
	const char *how;
	char when[TIME_STRLEN];

	note[0] = '\0';
	/* The message's own log, verified, may say so itself. */
	if (log->revoked)
		return sender_revoked(log, err);
	/* Else only a pinned log that knows more than the message's can. */
	if (e == NULL || !e->has_log || e->log.n <= log->n ||
	    !idlog_extends(&e->log, log))
		return 0;
	if (e->log.revoked)
		return sender_revoked(&e->log, err);
	/*
	 * A device's signature stands while the device is live: a removed
	 * one (perhaps stolen) speaks for nobody, whatever the date it
	 * wrote.  A new identity key leaves the devices as they are.
	 */
	if (device != NULL && device[0] != '\0')
		return idlog_sending_device(&e->log, device, device_key,
		    err) != NULL ? 0 : -1;
	r = idlog_key_replaced_after(&e->log, log->n);
	if (r == NULL)
		return 0;
	time_format(r->date, when);
	how = r->type == IDREC_RECOVER ? "replaced by a recovery" : "rotated";
	/* A retired key speaks only for what it signed before. */
	if (sealed > r->date)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the message "
		    "from %s is signed by a key that was %s on %s, before it "
		    "was sealed: nothing written", address, how, when);
	(void)snprintf(note, cap, "the key that signed this message has "
	    "since been %s (on %s)%s", how, when, r->type == IDREC_RECOVER ?
	    ": it may have been stolen, and the date is its signer's word" :
	    "");
	return 0;
}

int
trust_may_release(enum trust_tier tier, const char *sender,
    int accept_unknown, struct smimp_err *err)
{
	if (tier == TIER_BLOCKED)
		return smimp_err_set(err, SMIMP_EXIT_UNTRUSTED, "%s is "
		    "blocked: nothing written", sender);
	if (tier == TIER_UNKNOWN && !accept_unknown)
		return smimp_err_set(err, SMIMP_EXIT_UNTRUSTED, "%s is not in "
		    "the trust store: nothing written (check the fingerprint, "
		    "then smimp-trust add --from-message, or use "
		    "--accept-unknown)", sender);
	return 0;
}

const char *
trust_introducer(const struct trust_store *ts, const struct introduction *in,
    size_t n, const char *sender, const char *reader, int64_t now)
{
	const struct trust_entry *e;
	struct smimp_err ignore;
	enum trust_tier tier;
	size_t i;

	for (i = 0; i < n; i++) {
		if (introduction_check(&in[i], sender, reader, now,
		    &ignore) != 0)
			continue;
		/* As for a sender: a tier speaks for a pinned identity. */
		tier = trust_tier_for(ts, in[i].introducer, &e);
		if ((tier == TIER_TRUSTED || tier == TIER_KNOWN) && e != NULL &&
		    e->has_log && !e->log.revoked &&
		    introduction_verify(&in[i], e->log.identity_key))
			return in[i].introducer;
	}
	return NULL;
}

int
trust_recipient(const struct trust_store *ts, const char *address,
    const struct idlog **log, struct smimp_err *err)
{
	const struct trust_entry *e;
	enum trust_tier tier = trust_tier_for(ts, address, &e);

	if (tier == TIER_BLOCKED)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is blocked in "
		    "the trust store", address);
	/* SMIMP_EXIT_UNTRUSTED here: the caller may look it up. */
	if (e == NULL || !e->has_log)
		return smimp_err_set(err, SMIMP_EXIT_UNTRUSTED, "no identity "
		    "pinned for %s: add it with smimp-trust add FILE.pub",
		    address);
	if (e->log.revoked)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED,
		    "the identity of %s is revoked", address);
	*log = &e->log;
	return 0;
}

int
trust_recipient_log(const struct trust_store *ts, const struct idlog *log,
    const char *source, const struct idlog **use, struct smimp_err *err)
{
	const struct trust_entry *e;
	char pinned[FINGERPRINT_STRLEN], got[FINGERPRINT_STRLEN];

	if (trust_tier_for(ts, log->address, &e) == TIER_BLOCKED)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is blocked in "
		    "the trust store", log->address);
	*use = log;
	if (e != NULL && e->has_log) {
		if (sodium_memcmp(e->log.fingerprint, log->fingerprint,
		    FINGERPRINT_SIZE) != 0) {
			fingerprint_format(e->log.fingerprint, pinned);
			fingerprint_format(log->fingerprint, got);
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "%s is "
			    "pinned to fingerprint %s but '%.100s' holds %s",
			    log->address, pinned, source, got);
		}
		/* Same genesis: the later log says which key is current. */
		*use = later_log(&e->log, log);
		if (*use == NULL)
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the "
			    "identity log of %s in '%.100s' forks from the "
			    "pinned one", log->address, source);
	}
	if ((*use)->revoked)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s is revoked", log->address);
	return 0;
}

static int
store_serialize(const struct trust_store *ts, struct sbuf *sb)
{
	char when[TIME_STRLEN], fp[FINGERPRINT_STRLEN];
	size_t i;

	if (sbuf_add(sb, TRUST_MAGIC, strlen(TRUST_MAGIC)) != 0)
		return -1;
	for (i = 0; i < ts->n; i++) {
		const struct trust_entry *e = &ts->entries[i];

		time_format(e->added, when);
		if (sbuf_addf(sb, "\nname: %s\ntier: %s\nadded: %s\n", e->name,
		    trust_tier_name(e->tier), when) != 0)
			return -1;
		if (!e->has_log)
			continue;
		fingerprint_format(e->log.fingerprint, fp);
		if (sbuf_addf(sb, "fingerprint: %s\nverified: %s\nlog: ", fp,
		    e->verified ? "yes" : "no") != 0 ||
		    sbuf_add_b64(sb, e->log.raw, e->log.raw_len) != 0 ||
		    sbuf_add(sb, "\n", 1) != 0)
			return -1;
		if (e->checked == 0)
			continue;
		time_format(e->checked, when);
		if (sbuf_addf(sb, "checked: %s\n", when) != 0)
			return -1;
	}
	return 0;
}

typedef int (*trust_change_fn)(struct trust_store *, const void *,
    struct smimp_err *);

/* Lock, reload, change, write back atomically, unlock. */
static int
trust_update(const char *home, trust_change_fn change, const void *arg,
    struct smimp_err *err)
{
	struct trust_store ts;
	struct sbuf sb;
	char lock[PATH_MAX];
	int fd, ret = -1;

	memset(&ts, 0, sizeof(ts));
	sbuf_init(&sb, TRUST_MAX_BYTES);
	if (mkdir_p(home, 0700, err) != 0)
		return -1;
	if ((size_t)snprintf(lock, sizeof(lock), "%s/trust.lock", home) >=
	    sizeof(lock))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	fd = file_lock_open(lock, "the trust store", err);
	if (fd < 0)
		return -1;
	if (trust_load(&ts, home, err) != 0 || change(&ts, arg, err) != 0)
		goto out;
	if (store_serialize(&ts, &sb) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the trust store is too "
		    "large");
		goto out;
	}
	ret = file_write_atomic(ts.path, sb.buf, sb.len, 0600, 1, err);
out:
	trust_release(&ts);
	sbuf_release(&sb);
	close(fd);	/* releases the lock */
	return ret;
}

/* A new entry for name, which trust_find did not find. */
static struct trust_entry *
entry_add(struct trust_store *ts, const char *name, struct smimp_err *err)
{
	struct trust_entry *ne;

	if (ts->n == TRUST_MAX_ENTRIES) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "the trust store is full");
		return NULL;
	}
	if (entries_reserve(ts, err) != 0)
		return NULL;
	ne = &ts->entries[ts->n];
	memset(ne, 0, sizeof(*ne));
	(void)snprintf(ne->name, sizeof(ne->name), "%s", name);
	ne->added = time_now();
	(void)names_add(ts);
	return ne;
}

struct pin_args {
	const struct idlog *log;
	enum trust_tier tier;		/* TIER_UNKNOWN: none given */
	int replace;
	int looked_up;
	enum trust_tier *pinned;	/* the entry's tier after, or NULL */
};

static int
pin_change(struct trust_store *ts, const void *arg, struct smimp_err *err)
{
	const struct pin_args *a = arg;
	struct trust_entry *e = (struct trust_entry *)trust_find(ts,
	    a->log->address);
	char old[FINGERPRINT_STRLEN], new[FINGERPRINT_STRLEN];
	/* No tier given: a new entry's is known; a pinned one keeps its. */
	enum trust_tier tier = a->tier != TIER_UNKNOWN ? a->tier :
	    e != NULL ? e->tier : TIER_KNOWN;

	if (e == NULL) {
		e = entry_add(ts, a->log->address, err);
		if (e == NULL)
			return -1;
	} else if (e->has_log) {
		int same = memcmp(e->log.fingerprint, a->log->fingerprint,
		    FINGERPRINT_SIZE) == 0;

		if (same && !a->replace) {
			const struct idlog *later = later_log(a->log, &e->log);

			/*
			 * An older copy: ours stays.  From a file that is
			 * the past; from the directory, a truncation, which
			 * may hide a rotation or a revocation: refused.
			 */
			if (later == &e->log && a->looked_up) {
				struct idlog_follow how;

				return idlog_check_follows(a->log, &e->log,
				    &how, err);
			}
			if (later == &e->log)
				goto tier;
			if (later == NULL)
				return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED,
				    "the identity log of %s forks from the "
				    "pinned one", e->name);
		}
		if (!same && !a->replace) {
			fingerprint_format(e->log.fingerprint, old);
			fingerprint_format(a->log->fingerprint, new);
			return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED,
			    "%s is pinned to fingerprint %s, not %s (use "
			    "--replace after checking the new one)", e->name,
			    old, new);
		}
		if (!same) {
			/* Another identity: no person, no lookup saw it. */
			e->verified = 0;
			e->checked = 0;
			if (a->tier == TIER_UNKNOWN)
				tier = TIER_KNOWN;
		}
		idlog_release(&e->log);
		e->has_log = 0;
	}
	if (idlog_copy(&e->log, a->log, err) != 0)
		return -1;
	e->has_log = 1;
tier:
	e->tier = tier;
	if (a->pinned != NULL)
		*a->pinned = tier;
	if (a->looked_up)
		e->checked = time_now();
	return 0;
}

int
trust_pin(const char *home, const struct idlog *log, enum trust_tier tier,
    int replace, int looked_up, enum trust_tier *pinned,
    struct smimp_err *err)
{
	struct pin_args a = { log, tier, replace, looked_up, pinned };

	return trust_update(home, pin_change, &a, err);
}

int
trust_pin_first_use(const char *home, const struct idlog *log,
    struct smimp_err *err)
{
	/* Known, not trusted: no person has checked the fingerprint yet. */
	return trust_pin(home, log, TIER_KNOWN, 0, 1, NULL, err);
}

struct follow_args {
	const struct idlog *log;
	size_t *was;
	struct idlog_follow *how;
	int looked_up;		/* log is what the directory serves now */
	/*
	 * Followed from a message: when the pin in the store holds log
	 * already, *behind is set and the pin copied into *pinned.
	 */
	int *behind;
	struct idlog *pinned;
};

static int
follow_change(struct trust_store *ts, const void *arg, struct smimp_err *err)
{
	const struct follow_args *a = arg;
	struct trust_entry *e = (struct trust_entry *)trust_find(ts,
	    a->log->address);

	if (e == NULL || !e->has_log)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity pinned "
		    "for %s", a->log->address);
	/*
	 * Another command followed the sender further since this one read
	 * the store: the message's log is the sender's past, as it would
	 * have been had the store been read now.  A directory's log that
	 * the pin holds is still refused below, as truncated.
	 */
	if (a->behind != NULL && idlog_extends(&e->log, a->log)) {
		*a->was = e->log.n;
		if (idlog_copy(a->pinned, &e->log, err) != 0)
			return -1;
		*a->behind = 1;
		return 0;
	}
	if (idlog_check_follows(a->log, &e->log, a->how, err) != 0)
		return -1;
	*a->was = e->log.n;
	if (a->looked_up)
		e->checked = time_now();
	if (!a->how->recovery && a->log->raw_len == e->log.raw_len)
		return 0;
	idlog_release(&e->log);
	e->has_log = 0;
	if (idlog_copy(&e->log, a->log, err) != 0)
		return -1;
	e->has_log = 1;
	return 0;
}

int
trust_follow(const char *home, const struct idlog *log, size_t *was,
    struct idlog_follow *how, struct smimp_err *err)
{
	struct follow_args a = { log, was, how, 1, NULL, NULL };

	*was = 0;
	return trust_update(home, follow_change, &a, err);
}

int
trust_follow_sender(struct trust_store *ts, const struct idlog *log,
    size_t *was, struct idlog_changes *changes, struct smimp_err *err)
{
	struct trust_entry *e = (struct trust_entry *)trust_find(ts,
	    log->address);
	struct idlog_follow how;
	struct idlog copy, pinned;
	int behind = 0;
	struct follow_args a = { log, was, &how, 0, &behind, &pinned };
	int64_t at;

	*was = 0;
	memset(changes, 0, sizeof(*changes));
	/*
	 * Only a pinned identity is followed, and only by a log of its
	 * own that the pin does not already hold: an older log (a prefix)
	 * is the sender's past, judged by trust_sender_state; another
	 * identity is refused by trust_sender_tier.  Whether the log may
	 * replace the pin is trust_follow's to decide.
	 */
	if (e == NULL || !e->has_log || sodium_memcmp(e->log.fingerprint,
	    log->fingerprint, FINGERPRINT_SIZE) != 0 ||
	    idlog_extends(&e->log, log))
		return 0;
	if (idlog_voided_by(&e->log, log, &at))
		return voided(log->address, at, err);
	if (idlog_copy(&copy, log, err) != 0)
		return -1;
	if (trust_update(ts->home, follow_change, &a, err) != 0) {
		if (behind)
			idlog_release(&pinned);
		idlog_release(&copy);
		*was = 0;
		return -1;
	}
	/* What is pinned on disk now, pinned in ts too. */
	idlog_release(&e->log);
	if (behind) {
		idlog_release(&copy);
		e->log = pinned;
		return 0;	/* nothing followed: no changes */
	}
	e->log = copy;
	idlog_changes_followed(log, *was, &how, changes);
	return 0;
}

int
trust_check_due(const struct trust_store *ts, const char *address,
    int64_t interval, int64_t now)
{
	const struct trust_entry *e = trust_find(ts, address);
	int64_t last;

	if (e == NULL || !e->has_log)
		return 0;
	last = e->checked != 0 ? e->checked : e->added;
	return now - last >= interval;
}

struct tier_args {
	const char *name;
	enum trust_tier tier;
};

static int
tier_change(struct trust_store *ts, const void *arg, struct smimp_err *err)
{
	const struct tier_args *a = arg;
	struct trust_entry *e = (struct trust_entry *)trust_find(ts, a->name);

	if (e == NULL) {
		e = entry_add(ts, a->name, err);
		if (e == NULL)
			return -1;
	}
	e->tier = a->tier;
	return 0;
}

int
trust_set_tier(const char *home, const char *name, enum trust_tier tier,
    struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 2];
	struct tier_args a = { norm, tier };

	if (name_normalize(name, norm, err) != 0)
		return -1;
	return trust_update(home, tier_change, &a, err);
}

static int
remove_change(struct trust_store *ts, const void *arg, struct smimp_err *err)
{
	struct trust_entry *e = (struct trust_entry *)trust_find(ts, arg);
	size_t i;

	if (e == NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is not in the "
		    "trust store", (const char *)arg);
	i = (size_t)(e - ts->entries);
	entry_release(e);
	memmove(e, e + 1, (ts->n - i - 1) * sizeof(*e));
	ts->n--;
	/* The entries after it moved: index them again. */
	if (names_rebuild(ts, ts->names->mask + 1) != 0)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	return 0;
}

int
trust_remove(const char *home, const char *name, struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 2];

	if (name_normalize(name, norm, err) != 0)
		return -1;
	return trust_update(home, remove_change, norm, err);
}

struct verify_args {
	const char *address;
	const unsigned char *fp;
};

static int
verify_change(struct trust_store *ts, const void *arg, struct smimp_err *err)
{
	const struct verify_args *a = arg;
	struct trust_entry *e = (struct trust_entry *)trust_find(ts,
	    a->address);
	char pinned[FINGERPRINT_STRLEN], given[FINGERPRINT_STRLEN];

	if (e == NULL || !e->has_log)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity pinned "
		    "for %s", a->address);
	if (sodium_memcmp(e->log.fingerprint, a->fp, FINGERPRINT_SIZE) != 0) {
		fingerprint_format(e->log.fingerprint, pinned);
		fingerprint_format(a->fp, given);
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "fingerprint "
		    "mismatch for %s: pinned %s, given %s", a->address, pinned,
		    given);
	}
	e->verified = 1;
	return 0;
}

int
trust_mark_verified(const char *home, const char *address,
    const unsigned char fp[FINGERPRINT_SIZE], struct smimp_err *err)
{
	char norm[ADDRESS_MAX + 1];
	struct verify_args a = { norm, fp };

	if (address_normalize(address, norm, err) != 0)
		return -1;
	return trust_update(home, verify_change, &a, err);
}
