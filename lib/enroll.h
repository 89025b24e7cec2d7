/*
 * enroll.h - enrolling a device: the request a new device makes (its
 * name, its public keys and a near expiry, signed by its own signing
 * key), the short code both sides show so that the person holding the
 * identity key can tell that the request is the one the device made,
 * and the device's key file and request written by smimp-keygen
 * --device.  Byte format: doc/PROTOCOL.md, section 3, "Device keys and
 * enrollment".
 *
 * A request proves only that its maker holds the device key it names;
 * what makes it the owner's device is the code, compared by a person.
 */
#ifndef SMIMP_ENROLL_H
#define SMIMP_ENROLL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "err.h"
#include "idlog.h"
#include "keys.h"

#define ENROLL_MAX_BYTES	1024	/* a request, as read */
#define ENROLL_LIFETIME		600	/* seconds from making to expiry */
/* An expiry further ahead than this is refused (clock skew allowed). */
#define ENROLL_MAX_AHEAD	900
#define ENROLL_CODE_CHARS	10	/* base32: 50 bits */
#define ENROLL_CODE_STRLEN	12	/* "ABCDE-FGHIJ" and NUL */
/* The "code: " line smimp-keygen --device prints after the request. */
#define ENROLL_CODE_LINE_MAX	64

struct enroll_request {
	char address[ADDRESS_MAX + 1];
	char device[IDDEV_NAME_MAX + 1];
	unsigned char signing_key[32];		/* Ed25519 */
	unsigned char encryption_key[32];	/* X25519 */
	int64_t expires;
	unsigned char raw[ENROLL_MAX_BYTES];	/* the request's bytes */
	size_t raw_len;
};

/*
 * Make the request of the device whose keys sk holds (a device key,
 * device_key_generate), expiring at expires.
 */
int enroll_request_make(struct enroll_request *req, struct secret_key *sk,
    int64_t expires, struct smimp_err *err);
/*
 * Parse a request strictly and verify its signature under the signing
 * key it names.  SMIMP_EXIT_BADMSG for anything else.  The expiry is
 * not checked: enroll_request_current.
 */
int enroll_request_parse(struct enroll_request *req, const unsigned char *buf,
    size_t len, struct smimp_err *err);
/*
 * The same from a file ("-": standard input); errors name the path.  The
 * file may hold what smimp-keygen --device prints: the request, an
 * empty line and one "code: " line, which is ignored (the code must
 * come from the person, never from the file).
 */
int enroll_request_read(struct enroll_request *req, const char *path,
    struct smimp_err *err);
/*
 * Is the request in force at now: not expired, and its expiry not more
 * than ENROLL_MAX_AHEAD ahead?  Else SMIMP_EXIT_BADMSG and why.
 */
int enroll_request_current(const struct enroll_request *req, int64_t now,
    struct smimp_err *err);

/* The request's code: "ABCDE-FGHIJ". */
void enroll_code(const struct enroll_request *req,
    char out[ENROLL_CODE_STRLEN]);
/*
 * Is s the request's code?  Any case, '-' and spaces ignored, 0, 1 and 8
 * read as O, I and B.  0 when
 * it is; SMIMP_EXIT_USAGE when s is no code at all (a typo of its
 * form); SMIMP_EXIT_BADMSG when it is another request's code.
 */
int enroll_code_check(const struct enroll_request *req, const char *s,
    struct smimp_err *err);

/* smimp-keygen --device: what to make, and what was made. */
struct enroll_params {
	const char *address;
	const char *device;
	const char *prefix;		/* NULL: the default identity's */
	const char *pass;		/* the key file's passphrase, or NULL */
	size_t pass_len;
	int64_t now;
};
struct enroll_result {
	char key_path[PATH_MAX];
	char request_path[PATH_MAX];
	struct enroll_request req;
	char code[ENROLL_CODE_STRLEN];
};
/*
 * Make a device's keys and its request: PREFIX.key (0600) and
 * PREFIX.request, neither of which may exist.  On failure neither is
 * left behind.
 */
int enroll_begin(const struct enroll_params *p, struct enroll_result *res,
    struct smimp_err *err);
/* Would enroll_begin write over anything?  The paths, checked first. */
int enroll_paths(const char *prefix, struct enroll_result *res,
    struct smimp_err *err);

#endif
