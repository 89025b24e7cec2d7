/*
 * lookup.c - identities from their own domain's directory (see
 * lookup.h).
 */
#include <stdio.h>
#include <string.h>

#include "clientconf.h"
#include "exitcode.h"
#include "identity.h"
#include "lookup.h"
#include "util.h"
#include "banned.h"

/* A lookup answered otherwise than 200, as an error about address. */
static int
lookup_failed(const struct remote_reply *rep, const char *address,
    const char *domain, const struct signer *who, struct smimp_err *err)
{
	err->detail = (int)rep->status;
	if (rep->status == 404)
		return smimp_err_set(err, SMIMP_EXIT_FAIL, "%s: not found in "
		    "the directory of %s (HTTP 404)", address, domain);
	return smimp_err_set(err, rep->status >= 500 || rep->status == 429 ?
	    SMIMP_EXIT_TEMPFAIL : SMIMP_EXIT_FAIL, "%s: the directory of %s "
	    "refused the lookup signed by %s (HTTP %ld%s%.100s)", address,
	    domain, who->name, rep->status, rep->error[0] != '\0' ? ": " :
	    "", rep->error);
}

int
lookup_directory(struct remote *r, const char *address,
    const struct signer *who, struct idlog *log, struct smimp_err *err)
{
	const char *domain = address_domain(address);
	struct remote_reply rep;
	char base[512], path[400];
	int ret;

	err->detail = 0;
	(void)snprintf(path, sizeof(path), "/v1/users/%s/log", address);
	if (remote_base(r, domain, base, sizeof(base), err) != 0 ||
	    remote_request(r, "GET", domain, base, path, NULL, 0, who,
	    NULL, IDLOG_MAX_BYTES, &rep, err) != 0)
		return -1;
	if (rep.status != 200) {
		ret = lookup_failed(&rep, address, domain, who, err);
		remote_reply_release(&rep);
		return ret;
	}
	ret = idlog_parse(log, (unsigned char *)rep.body.buf, rep.body.len,
	    err);
	remote_reply_release(&rep);
	if (ret == 0 && strcmp(log->address, address) != 0) {
		/* Said before the log, and the address in it, is released. */
		ret = smimp_err_set(err, SMIMP_EXIT_BADMSG, "the directory of "
		    "%s answered for %s with the identity of %s", domain,
		    address, log->address);
		idlog_release(log);
	}
	return ret;
}

int
lookup_identity(const struct remote_opts *o, const char *address,
    const struct signer *who, struct idlog *log, struct smimp_err *err)
{
	char addr[ADDRESS_MAX + 1];
	struct remote *r;
	int ret;

	if (address_normalize(address, addr, err) != 0)
		return -1;
	r = remote_new(o, err);
	if (r == NULL)
		return -1;
	ret = lookup_directory(r, addr, who, log, err);
	remote_free(r);
	return ret;
}

int
lookup_refresh(struct remote *r, const char *home, const char *address,
    const struct signer *who, struct refresh_result *res,
    struct smimp_err *err)
{
	memset(res, 0, sizeof(*res));
	if (lookup_directory(r, address, who, &res->log, err) != 0)
		return -1;
	if (trust_follow(home, &res->log, &res->was, &res->how, err) != 0) {
		idlog_release(&res->log);
		return -1;
	}
	idlog_changes_followed(&res->log, res->was, &res->how, &res->changes);
	return 0;
}

/* Look arg up and pin it on first use: the recipient r. */
void
lookup_session_init(struct lookup_session *s)
{
	memset(s, 0, sizeof(*s));
}

int
lookup_session_conf(struct lookup_session *s, struct smimp_err *err)
{
	if (s->loaded)
		return 0;
	if (clientconf_load(&s->conf, err) != 0)
		return -1;
	s->loaded = 1;
	return 0;
}

struct remote *
lookup_session_remote(struct lookup_session *s, struct smimp_err *err)
{
	if (s->rem == NULL && lookup_session_conf(s, err) == 0)
		s->rem = remote_new(&s->conf.remote, err);
	return s->rem;
}

const char *
lookup_session_down(const struct lookup_session *s, const char *address)
{
	const char *d = address_domain(address);
	size_t i;

	for (i = 0; i < s->ndown && i < LOOKUP_DOWN_MAX; i++)
		if (strcmp(s->down[i], d) == 0)
			return s->down_why[i];
	return NULL;
}

void
lookup_session_failed(struct lookup_session *s, const char *address,
    const struct smimp_err *err)
{
	const char *d = address_domain(address);
	size_t i = s->ndown % LOOKUP_DOWN_MAX;

	/* An answer, even a refusal, says the server is there. */
	if (err->code != SMIMP_EXIT_TEMPFAIL || err->detail != 0 ||
	    strlen(d) > ADDRESS_DOMAIN_MAX || lookup_session_down(s, address))
		return;
	memcpy(s->down[i], d, strlen(d) + 1);
	memcpy(s->down_why[i], err->msg, sizeof(s->down_why[i]));
	s->ndown++;
}

void
lookup_session_release(struct lookup_session *s)
{
	remote_free(s->rem);
	memset(s, 0, sizeof(*s));
}

static int
pin_first_use(const char *home, const char *arg, const struct signer *who,
    struct lookup_session *s, struct msg_recipient *r,
    struct smimp_err *err)
{
	struct remote *rem;
	struct idlog log;
	char addr[ADDRESS_MAX + 1], why[SMIMP_ERR_MSG];
	int ret = -1;

	if (address_normalize(arg, addr, err) != 0)
		return -1;
	rem = lookup_session_remote(s, err);
	if (rem == NULL)
		return -1;
	if (lookup_session_down(s, addr) != NULL ?
	    smimp_err_set(err, SMIMP_EXIT_TEMPFAIL, "%s",
	    lookup_session_down(s, addr)) != 0 :
	    lookup_directory(rem, addr, who, &log, err) != 0) {
		lookup_session_failed(s, addr, err);
		memcpy(why, err->msg, sizeof(why));
		smimp_err_set(err, err->code, "no identity pinned for %s, and "
		    "the lookup failed: %.150s", addr, why);
	} else {
		/* Refused before it is pinned: nothing is written for it. */
		ret = msg_encryption_key_check(log.address,
		    log.encryption_key, err) != 0 ? -1 :
		    trust_pin_first_use(home, &log, err);
		if (ret == 0)
			recipient_from_log(r, &log);
		idlog_release(&log);
	}
	return ret;
}

/*
 * The pinned recipient addr, when its last check against its directory
 * is a refresh interval old or more: followed there now, and r set, with
 * l->refreshed.  Else nothing is set (not pinned, blocked, not due, or
 * the directory could not be asked: l->warning), and the pin stands.
 */
static int
refresh_if_due(const char *home, const struct trust_store *ts,
    const char *addr, const struct signer *who, struct lookup_session *s,
    struct msg_recipient *r, struct recipient_lookup *l,
    struct smimp_err *err)
{
	const struct trust_entry *e;
	struct smimp_err why;
	struct remote *rem;
	char when[TIME_STRLEN];
	int ret;

	if (trust_tier_for(ts, addr, &e) == TIER_BLOCKED || e == NULL ||
	    !e->has_log)
		return 0;
	if (lookup_session_conf(s, err) != 0)
		return -1;
	if (!trust_check_due(ts, addr, s->conf.refresh_secs, time_now()))
		return 0;
	rem = lookup_session_remote(s, err);
	if (rem == NULL)
		return -1;
	smimp_err_clear(&why);
	if (lookup_session_down(s, addr) != NULL) {
		smimp_err_set(&why, SMIMP_EXIT_TEMPFAIL, "%s",
		    lookup_session_down(s, addr));
		ret = -1;
	} else {
		ret = lookup_refresh(rem, home, addr, who, &l->res, &why);
		if (ret != 0)
			lookup_session_failed(s, addr, &why);
	}
	if (ret != 0) {
		/* Refused loudly: what the directory serves is not the pin's. */
		if (why.code == SMIMP_EXIT_KEYCHANGED) {
			*err = why;
			return -1;
		}
		/* Offline, or the directory cannot say: the pin holds. */
		if (snprintf(l->warning, sizeof(l->warning), "cannot check %s "
		    "in its directory, sealing to the pinned identity: %.150s",
		    addr, why.msg) >= (int)sizeof(l->warning))
			l->warning[sizeof(l->warning) - 1] = '\0';	/* cut */
		return 0;
	}
	l->refreshed = 1;
	if (l->res.log.revoked) {
		time_format(l->res.log.revoked_at, when);
		return smimp_err_set(err, SMIMP_EXIT_KEYCHANGED, "the identity "
		    "of %s was revoked on %s (\"%s\"): nothing written", addr,
		    when, l->res.log.reason);
	}
	recipient_from_log(r, &l->res.log);
	return 0;
}

void
recipient_lookup_release(struct recipient_lookup *l)
{
	if (l->refreshed)
		idlog_release(&l->res.log);
	l->refreshed = 0;
}

int
lookup_recipient(const char *home, const struct trust_store *ts,
    const char *arg, int as_file, const struct signer *who,
    struct lookup_session *s, struct msg_recipient *r,
    struct recipient_lookup *l, struct smimp_err *err)
{
	char addr[ADDRESS_MAX + 1];
	struct smimp_err ignore;

	memset(l, 0, sizeof(*l));
	/* A file names its key: nothing to look up. */
	if (!as_file && !recipient_is_file(arg) &&
	    address_normalize(arg, addr, &ignore) == 0) {
		if (refresh_if_due(home, ts, addr, who, s, r, l, err) != 0)
			return -1;
		if (l->refreshed)
			return 0;
	}
	if (recipient_resolve(arg, as_file, ts, r, err) == 0)
		return 0;
	/* Only an address that nothing is pinned for is looked up. */
	if (err->code != SMIMP_EXIT_UNTRUSTED ||
	    pin_first_use(home, arg, who, s, r, err) != 0)
		return -1;
	l->pinned_now = 1;
	return 0;
}
