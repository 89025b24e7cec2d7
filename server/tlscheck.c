/*
 * tlscheck.c - certificates as smimpd check sees them (GnuTLS, which
 * libmicrohttpd serves with anyway): this server's chain and key files,
 * and another server's TLS as a client meets it.  Each finding is said
 * plainly: which certificate, what is wrong with it, until when.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>

#include "admin.h"
#include "util.h"
#include "banned.h"

#define CHAIN_MAX	16	/* certificates looked at in a chain */
#define NAMES_MAX	200	/* bytes of a certificate's names, said */
#define TLS_TIMEOUT_MS	10000	/* to connect; for the handshake */

static void
say(struct tls_report *r, enum check_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(struct tls_report *r, enum check_status st, const char *fmt, ...)
{
	va_list ap;

	r->status = st;
	va_start(ap, fmt);
	(void)vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

/* The names a certificate is for (its DNS and IP alternative names). */
static void
cert_names(gnutls_x509_crt_t c, char *out, size_t cap)
{
	char name[256], ip[INET6_ADDRSTRLEN];
	size_t len, used = 0;
	unsigned int crit, i;
	int type;

	out[0] = '\0';
	for (i = 0; used + 1 < cap; i++) {
		len = sizeof(name) - 1;
		type = gnutls_x509_crt_get_subject_alt_name(c, i, name, &len,
		    &crit);
		if (type < 0)
			break;
		if (type == GNUTLS_SAN_DNSNAME)
			name[len < sizeof(name) ? len : sizeof(name) - 1] =
			    '\0';
		else if (type == GNUTLS_SAN_IPADDRESS && (len == 4 ||
		    len == 16) && inet_ntop(len == 4 ? AF_INET : AF_INET6,
		    name, ip, sizeof(ip)) != NULL)
			(void)snprintf(name, sizeof(name), "%s", ip);
		else
			continue;
		used += (size_t)snprintf(out + used, cap - used, "%s%s",
		    used > 0 ? ", " : "", name);
	}
	if (out[0] == '\0')
		(void)snprintf(out, cap, "no name");
}

/* A certificate's subject or issuer, as text ("CN=..., O=..."). */
static void
cert_dn(gnutls_x509_crt_t c, int issuer, char *out, size_t cap)
{
	gnutls_datum_t d = { NULL, 0 };
	int r = issuer ? gnutls_x509_crt_get_issuer_dn3(c, &d, 0) :
	    gnutls_x509_crt_get_dn3(c, &d, 0);

	(void)snprintf(out, cap, "%.*s", r == 0 ? (int)d.size : 1,
	    r == 0 ? (const char *)d.data : "?");
	gnutls_free(d.data);
}

static json_t *
cert_json(gnutls_x509_crt_t c)
{
	char subject[256], issuer[256], names[NAMES_MAX];

	cert_dn(c, 0, subject, sizeof(subject));
	cert_dn(c, 1, issuer, sizeof(issuer));
	cert_names(c, names, sizeof(names));
	return json_pack("{s:s,s:s,s:s,s:o,s:o}", "subject", subject,
	    "issuer", issuer, "names", names, "not_before",
	    admin_json_date((int64_t)gnutls_x509_crt_get_activation_time(c)),
	    "not_after",
	    admin_json_date((int64_t)gnutls_x509_crt_get_expiration_time(c)));
}

/* The chain, for --json. */
static json_t *
chain_json(gnutls_x509_crt_t *chain, unsigned int n)
{
	json_t *a = json_array();
	unsigned int i;

	for (i = 0; a != NULL && i < n; i++)
		(void)json_array_append_new(a, cert_json(chain[i]));
	return a;
}

/*
 * Expiry: 0 fine, with the leaf's end; else a failure or a warning
 * said in r.  which names the chain for the words ("'cert.pem'").
 */
static int
chain_dates(gnutls_x509_crt_t *chain, unsigned int n, const char *which,
    int64_t now, struct tls_report *r)
{
	char when[TIME_STRLEN], dn[256];
	int64_t end, start;
	unsigned int i;

	for (i = 0; i < n; i++) {
		end = (int64_t)gnutls_x509_crt_get_expiration_time(chain[i]);
		start = (int64_t)gnutls_x509_crt_get_activation_time(chain[i]);
		cert_dn(chain[i], 0, dn, sizeof(dn));
		if (end < now) {
			time_format(end, when);
			say(r, CHECK_FAIL, "%s: %s (%s) expired on %s", which,
			    i == 0 ? "the certificate" : "a certificate of its "
			    "chain", dn, when);
			return -1;
		}
		if (start > now) {
			time_format(start, when);
			say(r, CHECK_FAIL, "%s: %s (%s) is not valid before %s "
			    "(is this machine's clock right?)", which, i == 0 ?
			    "the certificate" : "a certificate of its chain",
			    dn, when);
			return -1;
		}
	}
	end = (int64_t)gnutls_x509_crt_get_expiration_time(chain[0]);
	if (end - now < CHECK_EXPIRY_WARN_DAYS * 86400) {
		time_format(end, when);
		say(r, CHECK_WARN, "%s: the certificate expires in %lld day%s, "
		    "on %s: renew it", which, (long long)((end - now) / 86400),
		    (end - now) / 86400 == 1 ? "" : "s", when);
		return 1;
	}
	return 0;
}

/* "valid until DATE (N days)", for a certificate that is fine. */
static void
until_text(gnutls_x509_crt_t c, int64_t now, char *out, size_t cap)
{
	char when[TIME_STRLEN];
	int64_t end = (int64_t)gnutls_x509_crt_get_expiration_time(c);

	time_format(end, when);
	(void)snprintf(out, cap, "valid until %s (%lld days)", when,
	    (long long)((end - now) / 86400));
}

/* Is the key the public half of the first certificate's? */
static int
key_matches(gnutls_x509_crt_t cert, gnutls_x509_privkey_t key)
{
	unsigned char a[64], b[64];
	size_t la = sizeof(a), lb = sizeof(b);

	return gnutls_x509_crt_get_key_id(cert, 0, a, &la) == 0 &&
	    gnutls_x509_privkey_get_key_id(key, 0, b, &lb) == 0 &&
	    la == lb && memcmp(a, b, la) == 0;
}

/* The private key file, parsed; its bytes wiped once read. */
static gnutls_x509_privkey_t
key_load(const char *path, struct tls_report *r)
{
	gnutls_datum_t d = { NULL, 0 };
	gnutls_x509_privkey_t key = NULL;

	if (gnutls_load_file(path, &d) < 0) {
		say(r, CHECK_FAIL, "cannot read the key '%s': %s", path,
		    strerror(errno));
		return NULL;
	}
	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL,
	    0) < 0) {
		say(r, CHECK_FAIL, "'%s' is no private key (PEM, without a "
		    "passphrase)", path);
		gnutls_x509_privkey_deinit(key);
		key = NULL;
	}
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	return key;
}

/* The chain file: *n certificates into chain (CHAIN_MAX at most). */
static int
chain_load(const char *path, gnutls_x509_crt_t *chain, unsigned int *n,
    struct tls_report *r)
{
	gnutls_datum_t d = { NULL, 0 };
	int got;

	*n = CHAIN_MAX;
	if (gnutls_load_file(path, &d) < 0) {
		say(r, CHECK_FAIL, "cannot read the certificate '%s': %s", path,
		    strerror(errno));
		return -1;
	}
	got = gnutls_x509_crt_list_import(chain, n, &d, GNUTLS_X509_FMT_PEM,
	    GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED |
	    GNUTLS_X509_CRT_LIST_IMPORT_FAIL_IF_EXCEED);
	gnutls_free(d.data);
	if (got == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
		say(r, CHECK_FAIL, "'%s': its certificates are out of order: "
		    "each must be issued by the one after it, the server's "
		    "own first", path);
		return -1;
	}
	if (got <= 0) {
		say(r, CHECK_FAIL, "'%s' holds no PEM certificate%s", path,
		    got == GNUTLS_E_SHORT_MEMORY_BUFFER ?
		    " chain of at most 16" : "");
		return -1;
	}
	*n = (unsigned int)got;
	return 0;
}

void
tls_check_files(const char *cert, const char *key, const char *host,
    int64_t now, struct tls_report *r)
{
	gnutls_x509_crt_t chain[CHAIN_MAX];
	gnutls_x509_privkey_t k = NULL;
	char names[NAMES_MAX], until[80], which[300];
	unsigned int n = 0, i;

	memset(r, 0, sizeof(*r));
	(void)snprintf(which, sizeof(which), "'%.280s'", cert);
	if (chain_load(cert, chain, &n, r) != 0)
		return;
	r->details = json_pack("{s:s,s:o}", "file", cert, "chain",
	    chain_json(chain, n));
	k = key_load(key, r);
	cert_names(chain[0], names, sizeof(names));
	if (k != NULL && !key_matches(chain[0], k))
		say(r, CHECK_FAIL, "the key '%s' is not the key of the "
		    "certificate '%s' (for %s)", key, cert, names);
	else if (k != NULL && host[0] != '\0' &&
	    gnutls_x509_crt_check_hostname2(chain[0],
	    host, 0) == 0)
		say(r, CHECK_FAIL, "'%s' is for %s, not for %s, the host of "
		    "the base URL", cert, names, host);
	else if (k != NULL && chain_dates(chain, n, which, now, r) == 0) {
		until_text(chain[0], now, until, sizeof(until));
		say(r, CHECK_OK, "'%s' for %s, %u certificate%s, key matches, "
		    "%s", cert, names, n, n == 1 ? "" : "s", until);
	}
	gnutls_x509_privkey_deinit(k);
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
}

/* A TCP connection to host:port within TLS_TIMEOUT_MS, or -1. */
static int
dial(const char *host, const char *port, char *why, size_t cap)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd p;
	struct timeval tv = { TLS_TIMEOUT_MS / 1000, 0 };
	socklen_t len = sizeof(int);
	int fd = -1, soerr = 0, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		(void)snprintf(why, cap, "%s", gai_strerror(r));
		return -1;
	}
	(void)snprintf(why, cap, "no address");
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		p.fd = fd;
		p.events = POLLOUT;
		if ((connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && poll(&p, 1, TLS_TIMEOUT_MS) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
		    soerr == 0)) && fcntl(fd, F_SETFL, 0) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)) == 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO,
		    &tv, sizeof(tv)) == 0)
			break;
		(void)snprintf(why, cap, "%s", strerror(soerr != 0 ? soerr :
		    errno == EINPROGRESS ? ETIMEDOUT : errno));
		(void)close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Why verification failed, in words, from GnuTLS's status bits. */
static void
verify_words(unsigned int status, gnutls_x509_crt_t leaf, const char *host,
    const char *cacert, char *out, size_t cap)
{
	char names[NAMES_MAX], issuer[256], when[TIME_STRLEN];
	gnutls_datum_t d = { NULL, 0 };
	size_t used = 0;

	cert_names(leaf, names, sizeof(names));
	cert_dn(leaf, 1, issuer, sizeof(issuer));
	out[0] = '\0';
#define ADD(...) do { if (used < cap) used += (size_t)snprintf(out + used, \
	cap - used, __VA_ARGS__); } while (0)
	if (status & GNUTLS_CERT_EXPIRED) {
		time_format((int64_t)gnutls_x509_crt_get_expiration_time(leaf),
		    when);
		ADD("the certificate (or one of its chain) has expired: it "
		    "ends %s", when);
	}
	if (status & GNUTLS_CERT_NOT_ACTIVATED)
		ADD("%sthe certificate (or one of its chain) is not valid yet",
		    used > 0 ? "; " : "");
	if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
		ADD("%sthe certificate is for %s, not for %s",
		    used > 0 ? "; " : "", names, host);
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		ADD("%sits issuer (%s) is not among the trusted authorities "
		    "(%s): a self-signed certificate, or a chain that lacks "
		    "its intermediate", used > 0 ? "; " : "", issuer,
		    cacert != NULL ? cacert : "the system's");
	if (used == 0 && gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &d, 0) == 0)
		ADD("%.*s", (int)d.size, (const char *)d.data);
#undef ADD
	gnutls_free(d.data);
}

/* What the handshake brought: version, chain, verification, expiry. */
static void
peer_judge(gnutls_session_t s, const char *host, const char *cacert,
    int64_t now, struct tls_report *r)
{
	gnutls_x509_crt_t chain[CHAIN_MAX];
	const gnutls_datum_t *raw;
	unsigned int n = 0, got = 0, status = 0, i;
	const char *version = gnutls_protocol_get_name(
	    gnutls_protocol_get_version(s));
	char names[NAMES_MAX], until[80], why[CHECK_MSG_MAX - 100];

	raw = gnutls_certificate_get_peers(s, &n);
	for (i = 0; raw != NULL && i < n && i < CHAIN_MAX; i++) {
		if (gnutls_x509_crt_init(&chain[i]) < 0)
			break;
		if (gnutls_x509_crt_import(chain[i], &raw[i],
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(chain[i]);
			break;
		}
		got++;
	}
	if (got == 0) {
		say(r, CHECK_FAIL, "%s sent no certificate", host);
		return;
	}
	r->details = json_pack("{s:s,s:o}", "version", version != NULL ?
	    version : "?", "chain", chain_json(chain, got));
	cert_names(chain[0], names, sizeof(names));
	if (gnutls_certificate_verify_peers3(s, host, &status) < 0 ||
	    status != 0) {
		verify_words(status, chain[0], host, cacert, why, sizeof(why));
		say(r, CHECK_FAIL, "%s does not verify: %s", host, why);
	} else if (gnutls_protocol_get_version(s) < GNUTLS_TLS1_2) {
		say(r, CHECK_FAIL, "%s speaks %s: smimp needs TLS 1.2 or later",
		    host, version);
	} else if (chain_dates(chain, got, host, now, r) == 0) {
		until_text(chain[0], now, until, sizeof(until));
		say(r, CHECK_OK, "%s, %u certificate%s for %s, %s", version,
		    n, n == 1 ? "" : "s", names, until);
	}
	for (i = 0; i < got; i++)
		gnutls_x509_crt_deinit(chain[i]);
}

/* Is host an IP address (no name to send as SNI)? */
static int
is_address(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

void
tls_check_peer(const char *host, const char *port, const char *cacert,
    int64_t now, struct tls_report *r)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	char why[256];
	int fd, ret;

	memset(r, 0, sizeof(*r));
	fd = dial(host, port, why, sizeof(why));
	if (fd < 0) {
		say(r, CHECK_FAIL, "cannot connect to %s port %s: %s", host,
		    port, why);
		return;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    (cacert != NULL ? gnutls_certificate_set_x509_trust_file(cred,
	    cacert, GNUTLS_X509_FMT_PEM) :
	    gnutls_certificate_set_x509_system_trust(cred)) < 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    (!is_address(host) && gnutls_server_name_set(s, GNUTLS_NAME_DNS,
	    host, strlen(host)) < 0)) {
		say(r, CHECK_FAIL, "cannot set up TLS%s%s", cacert != NULL ?
		    " with the authorities in " : "", cacert != NULL ? cacert :
		    "");
		goto out;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, TLS_TIMEOUT_MS);
	do
		ret = gnutls_handshake(s);
	while (ret < 0 && gnutls_error_is_fatal(ret) == 0);
	if (ret < 0)
		say(r, CHECK_FAIL, "TLS handshake with %s port %s failed: %s "
		    "(is it TLS at all?)", host, port, gnutls_strerror(ret));
	else
		peer_judge(s, host, cacert, now, r);
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	(void)close(fd);
}
