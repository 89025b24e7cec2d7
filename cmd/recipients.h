/*
 * recipients.h - what smimp-seal and smimp-sendmail share: looking the
 * recipients up (pinned on first use, followed in their directory) and
 * saying what that did, taking their one-time prekeys, and publishing
 * the consent policy again once new recipients are known.  It prints, so it is a command's, not
 * lib/'s; include it after cmd.h.
 */
#ifndef SMIMP_CMD_RECIPIENTS_H
#define SMIMP_CMD_RECIPIENTS_H

#include <limits.h>

#include "fetch.h"
#include "identity.h"
#include "lookup.h"
#include "message.h"
#include "prekeys.h"
#include "publish.h"
#include "trust.h"

/*
 * What looking a recipient up did: pinned it on first use, followed it
 * to a newer log in its directory, or could not check it there.
 */
__attribute__((unused)) static void
say_lookup(const struct recipient_lookup *l, const struct msg_recipient *r)
{
	char fp[FINGERPRINT_STRLEN], what[SMIMP_ERR_MSG * 2];

	if (l->pinned_now) {
		fingerprint_format(r->fingerprint, fp);
		fprintf(stderr, "%s: pinned %s, fingerprint %s (first use: "
		    "check it with its owner)\n", progname, r->address, fp);
	}
	if (l->refreshed && l->res.changes.added > 0) {
		describe_follow(what, sizeof(what), &l->res.log, l->res.was,
		    &l->res.changes);
		warnx_("%s: %s", l->res.log.address, what);
	}
	if (l->warning[0] != '\0')
		warnx_("%s", l->warning);
}

/*
 * Resolve each of args[0..n) (a file when as_file[i], else an address;
 * as smimp-seal's -r) into rcpts[i], reporting each failure before
 * giving up; *pinned gets how many were pinned on first use.  The
 * lookups share s.
 */
__attribute__((unused)) static int
resolve_recipients(const char *const *args, const int *as_file, size_t n,
    const struct identity *id, struct lookup_session *s,
    struct msg_recipient *rcpts, size_t *pinned, struct smimp_err *err)
{
	struct signer who;
	struct recipient_lookup l;
	struct trust_store ts;
	char home[PATH_MAX];
	struct smimp_err one;
	size_t i;
	int failed = 0, ret;

	memset(&ts, 0, sizeof(ts));
	if (smimp_home(home, sizeof(home), err) != 0 ||
	    trust_load(&ts, home, err) != 0)
		return -1;
	/* The sender signs the lookups: directories answer no one else. */
	identity_signer(id, &who);
	for (i = 0; i < n; i++) {
		smimp_err_clear(&one);
		ret = lookup_recipient(home, &ts, args[i], as_file[i], &who, s,
		    &rcpts[i], &l, &one);
		/* Said also when it failed: a revocation was followed. */
		say_lookup(&l, &rcpts[i]);
		*pinned += l.pinned_now ? 1 : 0;
		recipient_lookup_release(&l);
		if (ret != 0) {
			if (failed++ > 0)
				report(err);
			*err = one;
		}
	}
	trust_release(&ts);
	return failed ? -1 : 0;
}

/*
 * A device's own log, fetched anew when due (fetch_device_log_due): a
 * device that only seals must stop sealing to one removed since.  The
 * directory out of reach is a warning.
 */
__attribute__((unused)) static int
own_log_due(struct identity *id, struct lookup_session *s,
    struct smimp_err *err)
{
	char warning[SMIMP_ERR_MSG * 2];

	if (fetch_device_log_due(s, id, warning, sizeof(warning), err) != 0)
		return -1;
	if (warning[0] != '\0')
		warnx_("%s", warning);
	return 0;
}

/*
 * Forward secrecy: a one-time prekey for each key of each of
 * rcpts[0..n) whose server hands them out (none for one read from a
 * file, by_file[i]), said when one could not be had where it should
 * have been (a pool run out, a rate limit).  claims[0..n) are to be
 * released, taken or not.
 */
__attribute__((unused)) static int
take_prekeys(const struct identity *id, struct lookup_session *s,
    struct msg_recipient *rcpts, const int *by_file, size_t n,
    struct prekeys_claim *claims, struct smimp_err *err)
{
	char home[PATH_MAX];
	struct signer who;
	size_t i;

	identity_signer(id, &who);
	if (smimp_home(home, sizeof(home), err) != 0 ||
	    prekeys_claim_recipients(home, &who, s, rcpts, by_file, n,
	    claims, err) != 0)
		return -1;
	for (i = 0; i < n; i++)
		if (claims[i].warning[0] != '\0')
			warnx_("%s", claims[i].warning);
	return 0;
}

/*
 * New recipients are known now: a policy published before is
 * published again, or a warning says why not (the message is sealed
 * either way).
 */
__attribute__((unused)) static void
republish(const struct identity *id, const struct passphrase_source *src)
{
	struct clientconf conf;
	struct smimp_err err;
	char home[PATH_MAX], warning[SMIMP_ERR_MSG * 2];

	memset(&conf, 0, sizeof(conf));
	smimp_err_clear(&err);
	if (smimp_home(home, sizeof(home), &err) != 0 ||
	    publish_settings_any(home, &err) <= 0 ||
	    clientconf_load(&conf, &err) != 0) {
		if (err.msg[0] != '\0')
			warnx_("warning: the policy is not published again: "
			    "%s", err.msg);
		return;
	}
	/* A policy speaks for the identity: its key alone signs one. */
	if (id->sk.is_device) {
		warnx_("warning: the policy is not published again: a "
		    "device's key publishes none (run smimp-trust publish "
		    "where the identity key is)");
		return;
	}
	if (publish_again(&conf.remote, home, id, src, warning,
	    sizeof(warning)) > 0)
		warnx_("policy published again: new recipients are known");
	if (warning[0] != '\0')
		warnx_("warning: %s", warning);
}

#endif
