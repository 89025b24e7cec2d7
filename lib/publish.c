/*
 * publish.c - publish one's consent policy, remember its settings, and
 * read it back (see publish.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "publish.h"
#include "util.h"
#include "banned.h"

#define SETTINGS_FILE	"policy"
#define SETTINGS_MAX	(256 * 1024)
#define SETTINGS_LINE	(PATH_MAX + 512)

static int
settings_path(const char *home, char path[PATH_MAX], struct smimp_err *err)
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", home, SETTINGS_FILE) >=
	    PATH_MAX)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "path too long");
	return 0;
}

/* The settings file's text (NUL-terminated, malloc'd), or NULL if none. */
static int
settings_read(const char *home, char **text, struct smimp_err *err)
{
	char path[PATH_MAX];
	unsigned char *buf;
	size_t len;

	*text = NULL;
	if (settings_path(home, path, err) != 0)
		return -1;
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (file_read_all(path, SETTINGS_MAX, &buf, &len, err) != 0)
		return -1;
	if (strlen((char *)buf) != len) {
		free(buf);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' is not a text "
		    "file", path);
	}
	*text = (char *)buf;
	return 0;
}

static void
settings_defaults(struct publish_settings *s, const char *address)
{
	memset(s, 0, sizeof(*s));
	(void)snprintf(s->address, sizeof(s->address), "%s", address);
	s->unknown = POLICY_OPEN;
	s->allowance = PUBLISH_ALLOWANCE_DEFAULT;
}

/* One line, "ADDRESS UNKNOWN ALLOWANCE DATE KEYFILE", into s. */
static int
settings_parse(char *line, struct publish_settings *s)
{
	char *f[4], *p = line;
	uint64_t n;
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < 4; i++) {
		f[i] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			return -1;
		*p++ = '\0';
	}
	if ((size_t)snprintf(s->address, sizeof(s->address), "%s", f[0]) >=
	    sizeof(s->address) ||
	    policy_unknown_parse(f[1], &s->unknown, &s->bits) != 0 ||
	    parse_u64(f[2], strlen(f[2]), &n) != 0 ||
	    n > POLICY_ALLOWANCE_MAX ||
	    time_parse(f[3], strlen(f[3]), &s->date) != 0 || *p == '\0' ||
	    (size_t)snprintf(s->key_path, sizeof(s->key_path), "%s", p) >=
	    sizeof(s->key_path))
		return -1;
	s->allowance = (uint32_t)n;
	return 0;
}

/*
 * Call fn for each line of the settings file, with its parsed settings;
 * fn returning non-zero stops.  A malformed line fails.
 */
static int
settings_each(const char *home, int (*fn)(const struct publish_settings *,
    void *), void *arg, struct smimp_err *err)
{
	struct publish_settings s;
	char *text, *line, *next;
	size_t lineno = 0;
	int ret = 0;

	if (settings_read(home, &text, err) != 0)
		return -1;
	for (line = text; line != NULL && *line != '\0' && ret == 0;
	    line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (settings_parse(line, &s) != 0) {
			ret = smimp_err_set(err, SMIMP_EXIT_FAIL, "%s/%s:%zu: "
			    "malformed line", home, SETTINGS_FILE, lineno);
			break;
		}
		ret = fn(&s, arg) != 0 ? 1 : 0;
	}
	free(text);
	return ret < 0 ? -1 : 0;
}

struct find_arg {
	const char *address;
	struct publish_settings *out;
	int found;
};

static int
find_one(const struct publish_settings *s, void *arg)
{
	struct find_arg *a = arg;

	if (strcmp(s->address, a->address) != 0)
		return 0;
	*a->out = *s;
	a->found = 1;
	return 1;
}

int
publish_settings_get(const char *home, const char *address,
    struct publish_settings *s, struct smimp_err *err)
{
	struct find_arg a = { address, s, 0 };

	settings_defaults(s, address);
	if (settings_each(home, find_one, &a, err) != 0)
		return -1;
	if (!a.found)
		settings_defaults(s, address);
	return a.found;
}

static int
any_one(const struct publish_settings *s, void *arg)
{
	(void)s;
	*(int *)arg = 1;
	return 1;
}

int
publish_settings_any(const char *home, struct smimp_err *err)
{
	int any = 0;

	if (settings_each(home, any_one, &any, err) != 0)
		return -1;
	return any;
}

struct save_arg {
	const struct publish_settings *s;
	struct sbuf sb;
	int bad;
};

static int
settings_line(struct sbuf *sb, const struct publish_settings *s)
{
	char unknown[16], date[TIME_STRLEN];

	policy_unknown_format(s->unknown, s->bits, unknown);
	time_format(s->date, date);
	return sbuf_addf(sb, "%s %s %u %s %s\n", s->address, unknown,
	    (unsigned int)s->allowance, date, s->key_path);
}

static int
keep_others(const struct publish_settings *s, void *arg)
{
	struct save_arg *a = arg;

	if (strcmp(s->address, a->s->address) != 0 &&
	    settings_line(&a->sb, s) != 0)
		a->bad = 1;
	return a->bad;
}

/* Remember s in place of what was remembered for its address. */
static int
settings_save(const char *home, const struct publish_settings *s,
    struct smimp_err *err)
{
	struct save_arg a;
	char path[PATH_MAX];
	int ret = -1;

	if (strpbrk(s->key_path, "\n") != NULL)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the key file's "
		    "name has a line break");
	memset(&a, 0, sizeof(a));
	a.s = s;
	sbuf_init(&a.sb, SETTINGS_MAX);
	if (settings_path(home, path, err) != 0 ||
	    settings_each(home, keep_others, &a, err) != 0)
		goto out;
	if (a.bad || settings_line(&a.sb, s) != 0) {
		smimp_err_set(err, SMIMP_EXIT_FAIL, "'%s' would be too large",
		    path);
		goto out;
	}
	if (mkdir_p(home, 0700, err) != 0)
		goto out;
	ret = file_write_atomic(path, a.sb.buf, a.sb.len, 0600, 1, err);
out:
	sbuf_release(&a.sb);
	return ret;
}

/* ---- the policy ---- */

/* The names the trust store allows and blocks, pointing into ts. */
static int
names_from(const struct trust_store *ts, const char ***block,
    const char ***allow, struct policy_names *n, struct smimp_err *err)
{
	size_t i;

	memset(n, 0, sizeof(*n));
	*block = calloc(ts->n + 1, sizeof(**block));
	*allow = calloc(ts->n + 1, sizeof(**allow));
	if (*block == NULL || *allow == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	for (i = 0; i < ts->n; i++) {
		if (ts->entries[i].tier == TIER_BLOCKED)
			(*block)[n->nblock++] = ts->entries[i].name;
		else if (ts->entries[i].tier == TIER_KNOWN ||
		    ts->entries[i].tier == TIER_TRUSTED)
			(*allow)[n->nallow++] = ts->entries[i].name;
	}
	n->block = *block;
	n->allow = *allow;
	return 0;
}

/* The signed statement of id's policy under s, dated date, into sb. */
static int
make_statement(const char *home, const struct identity *id,
    const struct publish_settings *s, int64_t date, struct sbuf *sb,
    struct publish_result *res, struct smimp_err *err)
{
	const char **block = NULL, **allow = NULL;
	struct policy_names names;
	struct trust_store ts;
	struct policy p;
	struct signer me;
	int ret = -1;

	memset(&p, 0, sizeof(p));
	if (trust_load(&ts, home, err) != 0)
		return -1;
	if (names_from(&ts, &block, &allow, &names, err) != 0 ||
	    policy_build(&p, id->log.address, date, s->unknown, s->bits,
	    s->allowance, &names, NULL, err) != 0)
		goto out;
	signer_secret(&me, id->log.address, id->sk.identity_secret);
	if (policy_write(&p, &me, sb, err) != 0)
		goto out;
	res->nblock = p.nblock;
	res->nallow = p.nallow;
	res->date = date;
	ret = 0;
out:
	policy_release(&p);
	free(block);
	free(allow);
	trust_release(&ts);
	return ret;
}

/* A request for id's policy to its home server, signed by id. */
static int
policy_request(const struct remote_opts *o, const struct identity *id,
    const char *method, const struct sbuf *body, size_t cap,
    struct remote_reply *rep, struct smimp_err *err)
{
	const char *domain = address_domain(id->log.address);
	struct remote *r;
	struct signer me;
	char base[512], path[ADDRESS_MAX + 32];
	int ret;

	r = remote_new(o, err);
	if (r == NULL)
		return -1;
	(void)snprintf(path, sizeof(path), "/v1/users/%s/policy",
	    id->log.address);
	signer_secret(&me, id->log.address, id->sk.identity_secret);
	ret = remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, method, domain, base, path, body != NULL ?
	    body->buf : NULL, body != NULL ? body->len : 0, &me, NULL, cap,
	    rep, err) != 0 ? -1 : 0;
	remote_free(r);
	return ret;
}

/* POST the statement to the home server. */
static int
post(const struct remote_opts *o, const struct identity *id,
    const struct sbuf *sb, struct smimp_err *err)
{
	struct remote_reply rep;
	char why[SMIMP_ERR_MSG];
	int ret = -1;

	if (policy_request(o, id, "POST", sb, REMOTE_MAX_STATUS, &rep,
	    err) != 0) {
		memcpy(why, err->msg, sizeof(why));
		return smimp_err_set(err, err->code, "cannot publish the "
		    "policy of %s: %.200s", id->log.address, why);
	}
	if (rep.status == 200)
		ret = 0;
	else
		remote_reply_fail(&rep, "the home server refused the policy",
		    err);
	remote_reply_release(&rep);
	return ret;
}

/*
 * Take the lock of home's publications, policy.lock beside the
 * settings: from reading the last date to saving the settings, one
 * publication at a time.  Two at once would both read the store and
 * date their policies alike, and the server keeps only the first to
 * arrive (a later one of the same date is refused): what the other
 * changed in the trust store would not be in force.
 */
static int
policy_lock(const char *home, int *fd, struct smimp_err *err)
{
	char path[PATH_MAX];

	*fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.lock", home,
	    SETTINGS_FILE) >= sizeof(path))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "SMIMP_HOME is too long");
	if (mkdir_p(home, 0700, err) != 0)
		return -1;
	*fd = file_lock_open(path, "the policy", err);
	return *fd < 0 ? -1 : 0;
}

/* publish_policy, the lock held. */
static int
publish_locked(const struct remote_opts *o, const char *home,
    const struct identity *id, struct publish_settings *s,
    struct publish_result *res, struct smimp_err *err)
{
	char key[PATH_MAX];
	struct sbuf sb;
	int64_t date = time_now();
	int ret = -1;

	/* Each publication is later than the last, even within a second. */
	if (date <= s->date)
		date = s->date + 1;
	sbuf_init(&sb, POLICY_MAX_BYTES);
	if (make_statement(home, id, s, date, &sb, res, err) != 0 ||
	    post(o, id, &sb, err) != 0)
		goto out;
	s->date = date;
	if (realpath(id->key_path, key) == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot resolve '%s'",
		    id->key_path);
		goto out;
	}
	memcpy(s->key_path, key, sizeof(key));
	ret = settings_save(home, s, err);
out:
	sbuf_release(&sb);
	return ret;
}

/* Can id publish the policy of s->address? */
static int
may_publish(const struct identity *id, const struct publish_settings *s,
    struct smimp_err *err)
{
	if (!id->has_log || strcmp(s->address, id->log.address) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "no identity log "
		    "for %s", s->address);
	if (id->log.revoked)
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s is revoked: no policy is published for it",
		    s->address);
	return 0;
}

int
publish_policy(const struct remote_opts *o, const char *home,
    const struct identity *id, struct publish_settings *s,
    struct publish_result *res, struct smimp_err *err)
{
	struct publish_settings last;
	int fd, ret = -1;

	memset(res, 0, sizeof(*res));
	if (may_publish(id, s, err) != 0 || policy_lock(home, &fd, err) != 0)
		return -1;
	/* Dated after the last publication, whoever made it. */
	if (publish_settings_get(home, s->address, &last, err) < 0)
		goto out;
	if (last.date > s->date)
		s->date = last.date;
	ret = publish_locked(o, home, id, s, res, err);
out:
	close(fd);	/* releases the lock */
	return ret;
}

int
publish_fetch(const struct remote_opts *o, const struct identity *id,
    struct policy *p, struct smimp_err *err)
{
	const char *domain = address_domain(id->log.address);
	struct remote_reply rep;
	int ret = -1;

	memset(p, 0, sizeof(*p));
	if (policy_request(o, id, "GET", NULL, POLICY_MAX_BYTES, &rep,
	    err) != 0)
		return -1;
	if (rep.status == 404)
		smimp_err_set(err, SMIMP_EXIT_FAIL, "%s holds no policy for %s",
		    domain, id->log.address);
	else if (rep.status != 200)
		remote_reply_fail(&rep, "reading the policy", err);
	else if (policy_parse(p, (const unsigned char *)rep.body.buf,
	    rep.body.len, err) == 0 && policy_verify(p,
	    (const unsigned char *)rep.body.buf, id->log.identity_key,
	    err) == 0) {
		if (strcmp(p->address, id->log.address) == 0)
			ret = 0;
		else
			smimp_err_set(err, SMIMP_EXIT_BADMSG, "%s serves a "
			    "policy of %s for %s", domain, p->address,
			    id->log.address);
	}
	remote_reply_release(&rep);
	if (ret != 0)
		policy_release(p);
	return ret;
}

void
publish_names(const struct policy *p, const struct trust_store *ts,
    void (*fn)(const char *name, enum policy_class c, void *arg),
    void *arg, size_t *unmatched)
{
	unsigned char e[POLICY_ENTRY_SIZE];
	size_t i, matched = 0;

	for (i = 0; i < ts->n; i++) {
		policy_entry(p->salt, ts->entries[i].name, e);
		if (policy_listed(p->block, p->nblock, e)) {
			fn(ts->entries[i].name, POLICY_BLOCKED, arg);
			matched++;
		} else if (policy_listed(p->allow, p->nallow, e)) {
			fn(ts->entries[i].name, POLICY_ALLOWED, arg);
			matched++;
		}
	}
	*unmatched = p->nblock + p->nallow - matched;
}

/* ---- publishing again ---- */

struct again {
	const struct remote_opts *o;
	const char *home;
	const struct identity *id;
	const struct passphrase_source *src;
	char *warning;
	size_t cap;
	int published;
};

static void
warn_once(struct again *a, const char *address, const char *why)
{
	size_t len = strlen(a->warning);

	(void)snprintf(a->warning + len, a->cap - len, "%spolicy of %s not "
	    "published again: %s", len > 0 ? "; " : "", address, why);
}

/*
 * Publish again under the settings remembered for s->address as they
 * are once the lock is held (into s): a publication that changed them
 * meanwhile is not undone.
 */
static int
publish_fresh(const struct remote_opts *o, const char *home,
    const struct identity *id, struct publish_settings *s,
    struct publish_result *res, struct smimp_err *err)
{
	char address[ADDRESS_MAX + 1];
	int fd, ret = -1;

	memset(res, 0, sizeof(*res));
	if (may_publish(id, s, err) != 0 || policy_lock(home, &fd, err) != 0)
		return -1;
	memcpy(address, s->address, sizeof(address));
	if (publish_settings_get(home, address, s, err) < 0)
		goto out;
	ret = publish_locked(o, home, id, s, res, err);
out:
	close(fd);	/* releases the lock */
	return ret;
}

static int
again_one(const struct publish_settings *saved, void *arg)
{
	struct again *a = arg;
	struct publish_settings s = *saved;
	struct publish_result res;
	struct identity own;
	const struct identity *id = a->id;
	struct smimp_err err;

	smimp_err_clear(&err);
	if (id != NULL && strcmp(id->log.address, s.address) != 0)
		return 0;
	if (id == NULL) {
		if (identity_load(&own, s.key_path, a->src, IDENTITY_LOG_NEED,
		    &err) != 0) {
			warn_once(a, s.address, err.msg);
			return 0;
		}
		id = &own;
	}
	if (strcmp(id->log.address, s.address) != 0)
		smimp_err_set(&err, SMIMP_EXIT_FAIL, "'%s' is not its key",
		    s.key_path);
	else if (publish_fresh(a->o, a->home, id, &s, &res, &err) == 0)
		a->published++;
	if (err.msg[0] != '\0')
		warn_once(a, s.address, err.msg);
	if (id == &own)
		identity_release(&own);
	return 0;
}

int
publish_again(const struct remote_opts *o, const char *home,
    const struct identity *id, const struct passphrase_source *src,
    char *warning, size_t cap)
{
	struct again a = { o, home, id, src, warning, cap, 0 };
	struct smimp_err err;

	warning[0] = '\0';
	smimp_err_clear(&err);
	if (settings_each(home, again_one, &a, &err) != 0)
		warn_once(&a, "this identity", err.msg);
	return a.published;
}
