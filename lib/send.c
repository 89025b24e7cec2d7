/*
 * send.c - submit sealed messages to the sender's home server: the
 * recipients and id read back from the message, a delivery stamp for
 * other domains, one signed request each.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "exitcode.h"
#include "fileio.h"
#include "outfile.h"
#include "reqsig.h"
#include "send.h"
#include "stamp.h"
#include "banned.h"

static int
home_base(struct remote *r, const struct identity *id, char *base,
    size_t cap, struct smimp_err *err)
{
	return remote_base(r, address_domain(id->sk.address), base, cap, err);
}

void
submission_release(struct submission *s)
{
	free(s->data);
	free(s->stamps);
	free(s->work);
	free(s->introduction);
	memset(s, 0, sizeof(*s));
}

/*
 * The introductions the opened message carries in its envelope, as a
 * Smimp-Introduction value in *value (malloc'd): each statement in
 * unpadded base64url, joined by commas (doc/PROTOCOL.md 8.10); NULL
 * when there are none.  The envelope holds them to INTRO_LIST_MAX.
 */
static int
send_introductions(const struct msg_meta *meta, char **value,
    struct smimp_err *err)
{
	struct sbuf sb;
	size_t i;
	int r = 0;

	*value = NULL;
	if (meta->nintros == 0)
		return 0;
	sbuf_init(&sb, INTRO_LIST_MAX + 1);
	for (i = 0; i < meta->nintros && r == 0; i++)
		r = (i > 0 && sbuf_add(&sb, ",", 1) != 0) ||
		    introduction_encode(&meta->intros[i], &sb) != 0;
	if (r == 0 && sbuf_add(&sb, "", 1) == 0) {
		*value = sb.buf;
		return 0;
	}
	sbuf_release(&sb);
	return smimp_err_set(err, SMIMP_EXIT_FAIL, "introductions of more "
	    "than %d bytes", INTRO_LIST_MAX);
}

int
send_prepare(const struct identity *id, int fd, struct submission *s,
    struct smimp_err *err)
{
	struct msg_meta meta;
	size_t i, off = 0;
	int tmp, ret = -1;

	memset(s, 0, sizeof(*s));
	if (fd_read_all(fd, "the message", REMOTE_MAX_BODY, &s->data, &s->len,
	    err) != 0)
		return -1;
	/* Read it back as its sender: recipients and message id. */
	tmp = spool_open(err);
	if (tmp < 0)
		goto out;
	if (fd_write_all(tmp, s->data, s->len) != 0 ||
	    lseek(tmp, 0, SEEK_SET) != 0) {
		close(tmp);
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "cannot spool");
		goto out;
	}
	ret = message_open_sent(&id->sk, tmp, &meta, err);
	close(tmp);
	if (ret != 0)
		goto out;
	ret = -1;
	for (i = 0; i < meta.nrcpts; i++) {
		int n = snprintf(s->to + off, sizeof(s->to) - off, "%s%s",
		    i > 0 ? ", " : "", meta.rcpts[i].address);

		if (n < 0 || (size_t)n >= sizeof(s->to) - off) {
			smimp_err_set(err, SMIMP_EXIT_FAIL, "too many "
			    "recipients");
			goto meta;
		}
		off += (size_t)n;
	}
	(void)snprintf(s->message_id, sizeof(s->message_id), "%s",
	    meta.message_id);
	if (send_introductions(&meta, &s->introduction, err) != 0)
		goto meta;
	ret = 0;
meta:
	msg_meta_release(&meta);
out:
	if (ret != 0)
		submission_release(s);
	return ret;
}

/* Is address one of the list "a@x, b@y"? */
static int
list_holds(const char *list, const char *address)
{
	size_t n = strlen(address);
	const char *p;

	for (p = list; *p != '\0'; p += 2) {
		if (strncmp(p, address, n) == 0 &&
		    (p[n] == '\0' || p[n] == ','))
			return 1;
		p = strchr(p, ',');
		if (p == NULL)
			break;
	}
	return 0;
}

int
send_restrict(struct submission *s, const char *only, struct smimp_err *err)
{
	char one[ADDRESS_MAX + 1];
	const char *p, *end;
	size_t len;

	if (only[0] == '\0' || strlen(only) >= sizeof(s->to))
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "bad recipient "
		    "list for %s", s->message_id);
	for (p = only; *p != '\0'; p = *end == ',' ? end + 2 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == 0 || len > ADDRESS_MAX || (*end == ',' &&
		    end[1] != ' '))
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "bad "
			    "recipient list for %s", s->message_id);
		memcpy(one, p, len);
		one[len] = '\0';
		if (!list_holds(s->to, one))
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s is no "
			    "recipient of %s", one, s->message_id);
	}
	memmove(s->to, only, strlen(only) + 1);
	return 0;
}

/* Is any address in the list "a@x, b@y" of a domain other than own? */
static int
other_domains(const char *list, const char *own)
{
	size_t n = strlen(own);
	const char *at;

	for (at = strchr(list, '@'); at != NULL; at = strchr(at + 1, '@'))
		if (strncmp(at + 1, own, n) != 0 ||
		    (at[1 + n] != '\0' && at[1 + n] != ','))
			return 1;
	return 0;
}

/* "Name: value", malloc'd; NULL out of memory. */
static char *
header_new(const char *name, const char *value)
{
	size_t n = strlen(name) + 2 + strlen(value) + 1;
	char *h = malloc(n);

	if (h != NULL)
		(void)snprintf(h, n, "%s: %s", name, value);
	return h;
}

/*
 * Stamp s now (doc/PROTOCOL.md 8.3): a stamp for each recipient domain,
 * naming that domain's recipients only, into *out as a Smimp-Stamps
 * value (malloc'd), and its date.  The sender's own domain gets one
 * only when own (its recipients' proofs of work bind it).
 */
static int
stamp_now(const struct identity *id, const struct submission *s, int own,
    char **out, char date[TIME_STRLEN], struct smimp_err *err)
{
	const char *mine = address_domain(id->sk.address);
	char (*doms)[ADDRESS_DOMAIN_MAX + 1], sorted[8192];
	char stamp[STAMP_STRLEN];
	unsigned char hash[32];
	struct sbuf sb;
	size_t n, i;
	int ret = -1;

	*out = NULL;
	doms = calloc(MSG_MAX_RECIPIENTS, sizeof(*doms));
	if (doms == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	time_format(time_now(), date);
	reqsig_body_hash(hash, s->data, s->len);
	n = stamp_domains(s->to, doms, MSG_MAX_RECIPIENTS);
	sbuf_init(&sb, STAMPS_MAX + 1);
	for (i = 0; i < n; i++) {
		if (!own && strcmp(doms[i], mine) == 0)
			continue;
		if (stamp_recipients_at(s->to, doms[i], sorted,
		    sizeof(sorted)) != 0 || stamp_sign(stamp, id->sk.address,
		    sorted, s->message_id, hash, date, id->sk.identity_secret,
		    err) != 0 || stamps_add(&sb, doms[i], stamp) != 0)
			goto out;
	}
	if (sb.len > 0) {
		if (sbuf_add(&sb, "", 1) != 0)
			goto out;
		*out = sb.buf;
		sbuf_init(&sb, 0);
	}
	ret = 0;
out:
	sbuf_release(&sb);
	free(doms);
	return ret == 0 ? 0 : smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot "
	    "stamp the message");
}

/*
 * SH for rcpt (what its proof of work binds, work.h): the hash of the
 * stamp of its domain, as stamp_now made it at date for the message of
 * that hash.
 */
static int
stamp_hash_for(const struct identity *id, const struct submission *s,
    const char *rcpt, const unsigned char hash[32], const char *date,
    unsigned char sh[32], struct smimp_err *err)
{
	char sorted[8192];

	if (stamp_recipients_at(s->to, address_domain(rcpt), sorted,
	    sizeof(sorted)) != 0 || stamp_hash(sh, id->sk.address, sorted,
	    s->message_id, hash, date) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "cannot stamp the "
		    "message");
	return 0;
}

/* Submit s once; *status gets the answer's status (0: none came). */
static int
submit_once(struct remote *r, const struct identity *id,
    const struct submission *s, long *status, struct smimp_err *err)
{
	struct remote_reply rep;
	char base[512], to_h[8300], mid_h[300], date_h[64];
	char *work_h = NULL, *intro_h = NULL, *stamps_h = NULL;
	char dev_h[IDDEV_NAME_MAX + 32];
	char *stamps = NULL, date[TIME_STRLEN] = "";
	const char *extra[8];
	struct signer me;
	size_t n = 0;
	int ret = -1;

	*status = 0;
	/*
	 * The delivery stamps: what other domains check before accepting.
	 * Messages that stay in the sender's domain need none, unless a
	 * proof of work was made for one (and with it the stamps).
	 */
	if (s->stamped) {
		memcpy(date, s->stamp_date, sizeof(date));
	} else if (other_domains(s->to, address_domain(id->sk.address)) &&
	    stamp_now(id, s, 0, &stamps, date, err) != 0)
		return -1;
	(void)snprintf(to_h, sizeof(to_h), "Smimp-To: %s", s->to);
	(void)snprintf(mid_h, sizeof(mid_h), "Smimp-Message-Id: %s",
	    s->message_id);
	extra[n++] = to_h;
	extra[n++] = mid_h;
	if (s->stamped ? s->stamps != NULL : stamps != NULL) {
		stamps_h = header_new("Smimp-Stamps", s->stamped ? s->stamps :
		    stamps);
		if (stamps_h == NULL) {
			smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
			goto out;
		}
		(void)snprintf(date_h, sizeof(date_h), "Smimp-Stamp-Date: %s",
		    date);
		extra[n++] = stamps_h;
		extra[n++] = date_h;
		/* A device's stamp: checked under that device's key. */
		if (id->sk.is_device) {
			(void)snprintf(dev_h, sizeof(dev_h),
			    "Smimp-Stamp-Device: %s", id->sk.device);
			extra[n++] = dev_h;
		}
	}
	if ((s->work != NULL &&
	    (work_h = header_new("Smimp-Work", s->work)) == NULL) ||
	    (s->introduction != NULL && (intro_h =
	    header_new("Smimp-Introduction", s->introduction)) == NULL)) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (work_h != NULL)
		extra[n++] = work_h;
	if (intro_h != NULL)
		extra[n++] = intro_h;
	extra[n] = NULL;
	identity_signer(id, &me);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/messages", s->data, s->len, &me, extra, REMOTE_MAX_STATUS,
	    &rep, err) != 0)
		goto out;
	*status = rep.status;
	if (rep.status == 201 || rep.status == 200)
		ret = 0;
	else
		remote_reply_fail(&rep, s->message_id, err);
	remote_reply_release(&rep);
out:
	free(stamps_h);
	free(stamps);
	free(work_h);
	free(intro_h);
	return ret;
}

int
send_submit(struct remote *r, const struct identity *id,
    const struct submission *s, struct smimp_err *err)
{
	long status;

	return submit_once(r, id, s, &status, err);
}

int
send_max_work_parse(const char *s, unsigned int *secs)
{
	uint64_t v;

	if (parse_u64(s, strlen(s), &v) != 0 || v < 1 ||
	    v > SEND_MAX_WORK_MAX)
		return -1;
	*secs = (unsigned int)v;
	return 0;
}

int
send_requirement(struct remote *r, const struct identity *id,
    const char *address, struct work_requirement *req,
    struct smimp_err *err)
{
	const char *domain = address_domain(address);
	struct remote_reply rep;
	char base[512], path[400];
	struct signer me;
	int ret = 0;

	memset(req, 0, sizeof(*req));
	/* Signed: the answer is for this requester (allowed, or not). */
	identity_signer(id, &me);
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", address);
	if (remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, "GET", domain, base, path, NULL, 0, &me, NULL,
	    IDLOG_MAX_BYTES, &rep, err) != 0)
		return -1;
	/* Not found (or blocking this sender): its server will say so. */
	if (rep.status != 200 && rep.status != 404)
		ret = remote_reply_fail(&rep, address, err);
	else if (rep.status == 200 && rep.requires[0] != '\0' &&
	    work_requires_parse(rep.requires, req) != 0)
		ret = smimp_err_set(err, SMIMP_EXIT_BADMSG, "the directory of "
		    "%s answered a malformed requirement for %s", domain,
		    address);
	remote_reply_release(&rep);
	return ret;
}

/* ---- proofs of work for the recipients that require them ---- */

/* What each recipient requires, in the order of s->to. */
struct needs {
	size_t n;
	char addr[MSG_MAX_RECIPIENTS][ADDRESS_MAX + 1];
	struct work_requirement req[MSG_MAX_RECIPIENTS];
	char why[MSG_MAX_RECIPIENTS][160];	/* could not be learned */
};

static void
note(const struct send_consent *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(const struct send_consent *c, const char *fmt, ...)
{
	char msg[SMIMP_ERR_MSG];
	va_list ap;

	if (c->note == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->note(msg, c->arg);
}

/*
 * Learn what each recipient of to ("a@x, b@y") requires.  One that
 * cannot be learned counts as none (nd->why says why, for a note once
 * the message is sent: the recipient's server decides).  One that asks
 * for what this sender cannot give is told at once (when it differs
 * from was, the earlier answers, if any).
 */
static int
needs_learn(struct remote *r, const struct identity *id, const char *to,
    const struct needs *was, struct needs *nd, const struct send_consent *c,
    struct smimp_err *err)
{
	const char *p = to, *end;
	struct smimp_err why;
	size_t len;

	for (nd->n = 0; *p != '\0'; p = *end == ',' ? end + 2 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (nd->n == MSG_MAX_RECIPIENTS || len > ADDRESS_MAX)
			return smimp_err_set(err, SMIMP_EXIT_FAIL, "too many "
			    "recipients");
		memcpy(nd->addr[nd->n], p, len);
		nd->addr[nd->n][len] = '\0';
		smimp_err_clear(&why);
		nd->why[nd->n][0] = '\0';
		if (send_requirement(r, id, nd->addr[nd->n], &nd->req[nd->n],
		    &why) != 0)
			(void)snprintf(nd->why[nd->n], sizeof(nd->why[0]), "%.150s",
			    why.msg);
		else if ((was == NULL ||
		    was->req[nd->n].need != nd->req[nd->n].need) &&
		    (nd->req[nd->n].need == WORK_NEED_INTRODUCTION ||
		    nd->req[nd->n].need == WORK_NEED_CLOSED))
			note(c, "%s takes %s: sending anyway, its server "
			    "decides", nd->addr[nd->n],
			    nd->req[nd->n].need == WORK_NEED_CLOSED ? "no "
			    "messages from strangers" : "messages from "
			    "strangers only with an introduction");
		nd->n++;
	}
	return 0;
}

/*
 * Once the message is sent: the recipients whose requirement could not
 * be learned (were it not sent, its own error says more).
 */
static void
needs_unknown(const struct needs *nd, const struct send_consent *c)
{
	size_t i;

	for (i = 0; i < nd->n; i++)
		if (nd->why[i][0] != '\0')
			note(c, "could not learn what %s requires, sent without "
			    "a proof of work: %s", nd->addr[i], nd->why[i]);
}

static int
needs_changed(const struct needs *a, const struct needs *b)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (a->req[i].need != b->req[i].need ||
		    a->req[i].bits != b->req[i].bits)
			return 1;
	return 0;
}

static double
mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The search for one proof, stopped at the message's deadline. */
struct solving {
	const struct send_consent *c;
	struct send_progress p;
	double start, deadline;
};

static int
solving_step(uint64_t tries, void *arg)
{
	struct solving *w = arg;
	double t = mono_secs();

	w->p.tries = tries;
	w->p.secs = t - w->start;
	if (w->c->progress != NULL)
		w->c->progress(&w->p, w->c->arg);
	return t >= w->deadline;
}

/* The proof for recipient i of nd, appended to sb. */
static int
solve_one(const struct needs *nd, size_t i, const unsigned char sh[32],
    struct solving *w, struct sbuf *sb, struct smimp_err *err)
{
	unsigned char nonce[WORK_NONCE_LEN];
	struct work_prefix p;

	work_prefix_init(&p, sh, nd->addr[i]);
	memset(&w->p, 0, sizeof(w->p));
	w->p.recipient = nd->addr[i];
	w->p.bits = nd->req[i].bits;
	w->start = mono_secs();
	if (work_solve(&p, nd->req[i].bits, solving_step, w, nonce) != 0)
		return smimp_err_set(err, SMIMP_EXIT_WORK, "%s requires a "
		    "proof of work of %u bits, not found in the %u s allowed: "
		    "nothing sent", nd->addr[i], nd->req[i].bits,
		    w->c->max_work);
	w->p.done = 1;
	w->p.secs = mono_secs() - w->start;
	if (w->c->progress != NULL)
		w->c->progress(&w->p, w->c->arg);
	if (work_header_add(sb, nd->addr[i], nonce) != 0)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "too many proofs "
		    "of work");
	return 0;
}

/*
 * Stamp s anew and make the proofs nd requires into s->work (none:
 * s->work NULL, and s stamped only when other domains need it).  Each
 * proof binds the stamp of its recipient's domain.
 */
static int
make_work(const struct identity *id, struct submission *s,
    const struct needs *nd, struct solving *w, struct smimp_err *err)
{
	unsigned char sh[32], hash[32];
	struct sbuf sb;
	size_t i;

	free(s->work);
	s->work = NULL;
	free(s->stamps);
	s->stamps = NULL;
	s->stamped = 0;
	for (i = 0; i < nd->n && nd->req[i].need != WORK_NEED_POW; i++)
		;
	if (i == nd->n)
		return 0;
	if (stamp_now(id, s, 1, &s->stamps, s->stamp_date, err) != 0)
		return -1;
	s->stamped = 1;
	reqsig_body_hash(hash, s->data, s->len);
	sbuf_init(&sb, WORK_HEADER_MAX + 1);
	for (; i < nd->n; i++)
		if (nd->req[i].need == WORK_NEED_POW &&
		    (stamp_hash_for(id, s, nd->addr[i], hash, s->stamp_date,
		    sh, err) != 0 || solve_one(nd, i, sh, w, &sb, err) != 0)) {
			sbuf_release(&sb);
			return -1;
		}
	if (sbuf_add(&sb, "", 1) != 0) {
		sbuf_release(&sb);
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "out of memory");
	}
	s->work = sb.buf;
	return 0;
}

int
send_submission(struct remote *r, const struct identity *id,
    struct submission *s, const struct send_consent *c,
    struct smimp_err *err)
{
	struct needs *nd = calloc(2, sizeof(*nd)), *used = nd;
	struct solving w;
	long status;
	int ret = -1;

	if (nd == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.deadline = mono_secs() + c->max_work;
	if (needs_learn(r, id, s->to, NULL, &nd[0], c, err) != 0 ||
	    make_work(id, s, &nd[0], &w, err) != 0)
		goto out;
	ret = submit_once(r, id, s, &status, err);
	if (ret == 0 || status != 404)
		goto out;
	/* The policy may have changed since it was looked up. */
	if (needs_learn(r, id, s->to, &nd[0], &nd[1], c, err) != 0 ||
	    !needs_changed(&nd[0], &nd[1]))
		goto out;
	used = &nd[1];
	ret = make_work(id, s, &nd[1], &w, err) != 0 ? -1 :
	    submit_once(r, id, s, &status, err);
out:
	if (ret == 0)
		needs_unknown(used, c);
	free(nd);
	return ret;
}

int
send_message(struct remote *r, const struct identity *id, int fd,
    const struct send_consent *c, struct send_result *res,
    struct smimp_err *err)
{
	struct send_consent none = { SEND_MAX_WORK_DEFAULT, NULL, NULL, NULL };
	struct submission s;
	int ret;

	if (c == NULL)
		c = &none;
	if (send_prepare(id, fd, &s, err) != 0)
		return -1;
	ret = send_submission(r, id, &s, c, err);
	if (ret == 0) {
		memcpy(res->message_id, s.message_id, sizeof(res->message_id));
		memcpy(res->to, s.to, sizeof(res->to));
		reqsig_body_hash(res->hash, s.data, s.len);
	}
	submission_release(&s);
	return ret;
}

/* A token as smimpd hands them out; never quoted back in an error. */
static int
token_check(const char *token, struct smimp_err *err)
{
	if (token[0] == '\0' || strlen(token) > SEND_TOKEN_MAX ||
	    strpbrk(token, "\r\n ") != NULL)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "malformed "
		    "invitation token");
	return 0;
}

int
send_token_read(const char *file, int allow_prompt, char **token,
    struct smimp_err *err)
{
	size_t len;

	if (strcmp(file, "-") == 0 && allow_prompt)
		file = NULL;
	if (secret_get(file, "Invitation token: ", "invitation token", token,
	    &len, err) != 0)
		return -1;
	if (token_check(*token, err) != 0) {
		passphrase_free(*token, len);
		*token = NULL;
		return -1;
	}
	return 0;
}

int
send_register(struct remote *r, const struct identity *id,
    const char *token, struct smimp_err *err)
{
	struct remote_reply rep;
	char base[512], tok_h[200];
	const char *extra[2] = { tok_h, NULL };
	struct signer me;
	int ret = -1;

	identity_signer(id, &me);
	if (!id->has_log)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "the identity's "
		    "log (its .pub file) is needed to register");
	if (token_check(token, err) != 0)
		return -1;
	(void)snprintf(tok_h, sizeof(tok_h), "Smimp-Invite: %s", token);
	if (home_base(r, id, base, sizeof(base), err) != 0 ||
	    remote_request(r, "POST", address_domain(id->sk.address), base,
	    "/v1/register", id->log.raw, id->log.raw_len, &me, extra,
	    REMOTE_MAX_STATUS, &rep, err) != 0)
		goto out;
	if (rep.status == 201)
		ret = 0;
	else
		remote_reply_fail(&rep, "registering", err);
	remote_reply_release(&rep);
out:
	sodium_memzero(tok_h, sizeof(tok_h));
	return ret;
}
