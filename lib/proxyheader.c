/* proxyheader.c - the PROXY protocol header, versions 1 and 2. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxyheader.h"
#include "banned.h"

#define V1_MAX		107
#define V2_FIXED	16

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Does buf[0..len) begin want, as far as it goes? */
static int
starts(const unsigned char *buf, size_t len, const void *want, size_t wlen)
{
	return memcmp(buf, want, len < wlen ? len : wlen) == 0;
}

/* The next space-ended field of a version 1 line at *p: its length. */
static size_t
field(const char *line, size_t *p, char *out, size_t cap)
{
	size_t n = strcspn(line + *p, " ");

	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, line + *p, n);
	out[n] = '\0';
	*p += n + (line[*p + n] == ' ' ? 1 : 0);
	return n;
}

/* A port: 1 to 5 digits, no leading zero, at most 65535. */
static int
port_valid(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5 || (i == 1 && s[0] == '0'))
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return 0;
	*port = (uint16_t)v;
	return 1;
}

/* "TCP4 SRC DST SPORT DPORT" or "TCP6 ...", NUL-ended, into src. */
static int
v1_addresses(const char *line, struct proxy_source *src)
{
	char proto[8], a[48], b[48], sp[8], dp[8];
	unsigned char dst[16];
	uint16_t sport, dport;
	size_t p = 0;
	int six;

	if (field(line, &p, proto, sizeof(proto)) == 0 ||
	    field(line, &p, a, sizeof(a)) == 0 ||
	    field(line, &p, b, sizeof(b)) == 0 ||
	    field(line, &p, sp, sizeof(sp)) == 0 ||
	    field(line, &p, dp, sizeof(dp)) == 0 || line[p] != '\0' ||
	    line[p - 1] == ' ')
		return -1;
	if (strcmp(proto, "TCP4") != 0 && strcmp(proto, "TCP6") != 0)
		return -1;
	six = proto[3] == '6';
	if (!port_valid(sp, &sport) || !port_valid(dp, &dport) ||
	    inet_pton(six ? AF_INET6 : AF_INET, b, dst) != 1)
		return -1;
	if (six) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(sport);
		src->addrlen = sizeof(*s6);
		return inet_pton(AF_INET6, a, &s6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&src->addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(sport);
		src->addrlen = sizeof(*s4);
		return inet_pton(AF_INET, a, &s4->sin_addr) == 1 ? 0 : -1;
	}
}

static enum proxy_result
parse_v1(const unsigned char *buf, size_t len, size_t *used,
    struct proxy_source *src)
{
	static const char head[] = "PROXY ";
	char line[V1_MAX + 1];
	const unsigned char *cr;
	size_t n, i;

	if (!starts(buf, len, head, sizeof(head) - 1))
		return PROXY_BAD;
	cr = memchr(buf, '\r', len < V1_MAX ? len : V1_MAX);
	if (cr == NULL)
		return len < V1_MAX ? PROXY_MORE : PROXY_BAD;
	n = (size_t)(cr - buf);
	if (n + 1 == len)
		return PROXY_MORE;
	if (buf[n + 1] != '\n' || n < sizeof(head) - 1)
		return PROXY_BAD;
	for (i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return PROXY_BAD;
	memcpy(line, buf + sizeof(head) - 1, n - (sizeof(head) - 1));
	line[n - (sizeof(head) - 1)] = '\0';
	*used = n + 2;
	/* UNKNOWN: the proxy could not say; what follows it is ignored. */
	if (strcmp(line, "UNKNOWN") == 0 || strncmp(line, "UNKNOWN ", 8) == 0)
		return PROXY_OK;
	return v1_addresses(line, src) == 0 ? PROXY_OK : PROXY_BAD;
}

static enum proxy_result
parse_v2(const unsigned char *buf, size_t len, size_t *used,
    struct proxy_source *src)
{
	const unsigned char *a;
	size_t body;

	if (!starts(buf, len, v2_sig, sizeof(v2_sig)))
		return PROXY_BAD;
	if (len < V2_FIXED)
		return PROXY_MORE;
	body = (size_t)buf[14] << 8 | buf[15];
	/* Version 2; the command LOCAL (0) or PROXY (1). */
	if ((buf[12] & 0xf0) != 0x20 || (buf[12] & 0x0f) > 1 ||
	    V2_FIXED + body > PROXY_HEADER_MAX)
		return PROXY_BAD;
	if (len < V2_FIXED + body)
		return PROXY_MORE;
	*used = V2_FIXED + body;
	a = buf + V2_FIXED;
	if ((buf[12] & 0x0f) == 0)
		return PROXY_OK;	/* LOCAL: the proxy's own */
	if (buf[13] == 0x11) {		/* TCP over IPv4 */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&src->addr;

		if (body < 12)
			return PROXY_BAD;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&s4->sin_port, a + 8, 2);
		src->addrlen = sizeof(*s4);
	} else if (buf[13] == 0x21) {	/* TCP over IPv6 */
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src->addr;

		if (body < 36)
			return PROXY_BAD;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		memcpy(&s6->sin6_port, a + 32, 2);
		src->addrlen = sizeof(*s6);
	} else if (buf[13] != 0x00) {
		return PROXY_BAD;	/* UDP, a UNIX socket: not ours */
	}
	return PROXY_OK;
}

enum proxy_result
proxy_header_parse(const unsigned char *buf, size_t len, size_t *used,
    struct proxy_source *src)
{
	memset(src, 0, sizeof(*src));
	src->addr.ss_family = AF_UNSPEC;
	*used = 0;
	if (len == 0)
		return PROXY_MORE;
	if (buf[0] == 'P')
		return parse_v1(buf, len, used, src);
	if (buf[0] == v2_sig[0])
		return parse_v2(buf, len, used, src);
	return PROXY_BAD;
}
