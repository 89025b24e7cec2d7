/*
 * consent.c - the consent decision (see consent.h).
 *
 * Every decision costs the same before it is taken: one read of the
 * recipient's policy head (its salt and settings; none for an address
 * without an account, which then gets a policy of nobody's), four
 * entries hashed (the sender, its domain, the introducer or a
 * stand-in, and its domain), and four point lookups in the recipient's
 * entries.  Only what is decided then differs; of the refusals, none
 * does more.
 */
#include <stdio.h>
#include <string.h>

#include "consent.h"
#include "policy.h"
#include "server.h"
#include "sites.h"
#include "banned.h"

/* Who is hashed where nobody is named, so that the work stays the same. */
#define NOBODY	"nobody@consent.invalid"

struct look {
	struct store_policy_head h;
	int absent;			/* no account */
	enum policy_class sender, introducer;
};

/*
 * The entries of who (an address, or a bare domain) and of its domain:
 * the two that classify it.
 */
static void
entries_of(const unsigned char salt[POLICY_SALT_SIZE], const char *who,
    unsigned char out[2][POLICY_ENTRY_SIZE])
{
	char dom[ADDRESS_DOMAIN_MAX + 2];
	const char *at;

	if (who == NULL)
		who = NOBODY;
	at = strchr(who, '@');
	(void)snprintf(dom, sizeof(dom), "@%s", at != NULL ? at + 1 : who);
	policy_entry(salt, at != NULL ? who : dom, out[0]);
	policy_entry(salt, dom, out[1]);
}

/* As policy_classify: the address's own entry first, then its domain's. */
static enum policy_class
class_of(const int listed[2])
{
	int i;

	for (i = 0; i < 2; i++) {
		if (listed[i] == STORE_LISTED_BLOCK)
			return POLICY_BLOCKED;
		if (listed[i] == STORE_LISTED_ALLOW)
			return POLICY_ALLOWED;
	}
	return POLICY_UNKNOWN;
}

/* What recipient's policy says of who and intro: 0, or -1 (the store). */
static int
look_up(struct server *srv, const char *recipient, const char *who,
    const char *intro, struct look *l, struct smimp_err *err)
{
	unsigned char e[4][POLICY_ENTRY_SIZE];
	int listed[4], r;

	memset(l, 0, sizeof(*l));
	r = store_policy_head(srv->store, recipient, &l->h, err);
	if (r == STORE_ERROR)
		return -1;
	if (r != STORE_OK) {
		memset(&l->h, 0, sizeof(l->h));
		l->h.unknown = POLICY_CLOSED;
		l->absent = 1;
	}
	entries_of(l->h.salt, who, e);
	entries_of(l->h.salt, intro, e + 2);
	/* An absent recipient's lookups go to an address nobody has. */
	if (store_policy_match(srv->store, l->absent ? "" : recipient, e, 4,
	    listed, err) != STORE_OK)
		return -1;
	l->sender = class_of(listed);
	l->introducer = intro != NULL ? class_of(listed + 2) : POLICY_UNKNOWN;
	return 0;
}

/* Does an unknown sender bring what the policy asks of one? */
static int
satisfied(const struct look *l, const struct consent_ask *a)
{
	int introduced = a->introducer != NULL &&
	    l->introducer == POLICY_ALLOWED;

	switch (l->h.unknown) {
	case POLICY_OPEN:
		return 1;
	case POLICY_POW:
		return a->work_bits >= l->h.bits || introduced;
	case POLICY_INTRODUCTION:
		return introduced;
	default:
		return 0;
	}
}

/*
 * An unknown sender that may come in, counted against the recipient's
 * allowance and, for another domain's sender, that domain's cap (this
 * domain's own users are limited by rate-sender).
 */
static enum consent_verdict
count(struct server *srv, const struct look *l, const struct consent_ask *a,
    int64_t now, unsigned int *retry_after, struct smimp_err *err)
{
	const char *dom = address_domain(a->sender);
	char site[ADDRESS_DOMAIN_MAX + 1];
	struct store_consent_count c;
	int r;

	/* Per site: a domain's subdomains are its own to make up. */
	site_of(dom, site);
	memset(&c, 0, sizeof(c));
	c.recipient = a->recipient;
	c.sender = a->sender;
	c.message_id = a->message_id;
	c.allowance = (int64_t)l->h.allowance;
	c.domain = strcmp(dom, srv->cfg.domain) != 0 ? site : NULL;
	c.domain_cap = LIVE(srv->cfg.unknown_per_domain);
	c.ignore_secs = LIVE(srv->cfg.unknown_ignore);
	r = store_consent_count(srv->store, &c, now, retry_after, err);
	if (r == STORE_QUOTA)
		return CONSENT_LATER;
	return r == STORE_OK ? CONSENT_ACCEPT : CONSENT_ERROR;
}

enum consent_verdict
consent_check(struct server *srv, const struct consent_ask *a, int64_t now,
    unsigned int *retry_after, struct smimp_err *err)
{
	struct look l;

	*retry_after = 0;
	if (look_up(srv, a->recipient, a->sender, a->introducer, &l,
	    err) != 0)
		return CONSENT_ERROR;
	if (l.absent)
		return CONSENT_ABSENT;
	if (strcmp(a->sender, a->recipient) == 0)
		return CONSENT_ACCEPT;
	if (l.sender == POLICY_BLOCKED)
		return CONSENT_ABSENT;
	/*
	 * No policy: everyone is unknown to the server, so neither the
	 * allowance nor the domain cap can tell strangers from friends.
	 */
	if (l.sender == POLICY_ALLOWED || !l.h.has_policy)
		return CONSENT_ACCEPT;
	if (!satisfied(&l, a))
		return CONSENT_ABSENT;
	return count(srv, &l, a, now, retry_after, err);
}

int
consent_introduction_counts(struct server *srv, const struct consent_ask *a,
    struct smimp_err *err)
{
	struct look l;

	if (look_up(srv, a->recipient, a->sender, a->introducer, &l,
	    err) != 0)
		return -1;
	if (l.absent || strcmp(a->sender, a->recipient) == 0 ||
	    l.sender == POLICY_BLOCKED || l.sender == POLICY_ALLOWED ||
	    !l.h.has_policy || l.introducer != POLICY_ALLOWED)
		return 0;
	return l.h.unknown == POLICY_INTRODUCTION ||
	    (l.h.unknown == POLICY_POW && a->work_bits < l.h.bits);
}

/*
 * Is a server (domain) that l blocks let in all the same?  When the
 * recipient wrote there, it learns nothing it was not told; when it
 * asks for a user she allows by name (l->introducer, the entries of
 * on_behalf), it serves someone she chose.  Asked of every server, of
 * an absent recipient as well (for nobody), so that the work is the
 * same whatever the answer.  1, 0, or -1 (the store).
 */
static int
server_let_in(struct server *srv, const char *recipient, const char *domain,
    const struct look *l, struct smimp_err *err)
{
	int r;

	r = store_correspondent(srv->store, l->absent ? "" : recipient,
	    domain, err);
	if (r == STORE_ERROR)
		return -1;
	return r == STORE_OK || l->introducer == POLICY_ALLOWED;
}

enum consent_verdict
consent_requirement(struct server *srv, const char *recipient,
    const char *requester, const char *on_behalf,
    char req[CONSENT_REQUIRES_MAX], struct smimp_err *err)
{
	int server = requester != NULL && strchr(requester, '@') == NULL;
	struct look l;
	int r;

	(void)snprintf(req, CONSENT_REQUIRES_MAX, "none");
	/* Only a server speaks for someone, and only for its own users. */
	if (!server || (on_behalf != NULL &&
	    strcmp(address_domain(on_behalf), requester) != 0))
		on_behalf = NULL;
	if (look_up(srv, recipient, requester, on_behalf, &l, err) != 0)
		return CONSENT_ERROR;
	if (server) {
		if ((r = server_let_in(srv, recipient, requester, &l, err)) < 0)
			return CONSENT_ERROR;
		if (r && l.sender == POLICY_BLOCKED)
			l.sender = POLICY_UNKNOWN;
	}
	if (l.absent)
		return CONSENT_ABSENT;
	/*
	 * The address asking for itself, as S is R for a message: a user
	 * who blocks her own domain still reads her own log.
	 */
	if (requester != NULL && strcmp(requester, recipient) == 0)
		return CONSENT_ACCEPT;
	if (requester != NULL && l.sender == POLICY_BLOCKED)
		return CONSENT_ABSENT;
	if (!l.h.has_policy || l.h.unknown == POLICY_OPEN ||
	    (requester != NULL && l.sender == POLICY_ALLOWED))
		return CONSENT_ACCEPT;
	policy_unknown_format(l.h.unknown, l.h.bits, req);
	return CONSENT_ACCEPT;
}
