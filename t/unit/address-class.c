/*
 * address-class - which addresses lib/remote.c lets a connection go to
 * for a domain the resolve map does not name: every range it refuses,
 * at both ends, and public neighbours that must stay reachable.  The
 * judgement is static in lib/remote.c, so this test is compiled with it.
 */
#include "../../lib/remote.c"

int
main(void)
{
	static const struct {
		const char *addr;
		int public;
	} cases[] = {
		{ "0.0.0.0", 0 }, { "0.255.255.255", 0 },
		{ "1.1.1.1", 1 }, { "9.255.255.255", 1 },
		{ "10.0.0.0", 0 }, { "10.255.255.255", 0 }, { "11.0.0.0", 1 },
		{ "100.63.255.255", 1 }, { "100.64.0.0", 0 },
		{ "100.127.255.255", 0 }, { "100.128.0.0", 1 },
		{ "126.255.255.255", 1 }, { "127.0.0.1", 0 },
		{ "127.255.255.255", 0 }, { "128.0.0.0", 1 },
		{ "169.254.0.1", 0 }, { "169.254.169.254", 0 },
		{ "169.255.0.0", 1 }, { "172.15.255.255", 1 },
		{ "172.16.0.0", 0 }, { "172.31.255.255", 0 },
		{ "172.32.0.0", 1 }, { "192.0.0.8", 0 }, { "192.0.1.1", 1 },
		{ "192.0.2.1", 0 }, { "192.88.99.1", 0 },
		{ "192.167.255.255", 1 }, { "192.168.1.1", 0 },
		{ "192.169.0.0", 1 }, { "198.17.255.255", 1 },
		{ "198.18.0.0", 0 }, { "198.19.255.255", 0 },
		{ "198.20.0.0", 1 }, { "198.51.100.7", 0 },
		{ "203.0.113.9", 0 }, { "223.255.255.255", 1 },
		{ "224.0.0.1", 0 }, { "239.255.255.255", 0 },
		{ "240.0.0.1", 0 }, { "255.255.255.255", 0 },
		{ "::", 0 }, { "::1", 0 }, { "::127.0.0.1", 0 },
		{ "::ffff:127.0.0.1", 0 }, { "::ffff:10.1.2.3", 0 },
		{ "::ffff:1.1.1.1", 1 }, { "64:ff9b::7f00:1", 0 },
		{ "64:ff9b::101:101", 1 }, { "64:ff9b:1::1", 0 },
		{ "100::1", 0 }, { "fc00::1", 0 }, { "fd12:3456::1", 0 },
		{ "fe80::1", 0 }, { "febf::1", 0 }, { "fec0::1", 0 },
		{ "ff02::1", 0 }, { "2001::1", 0 }, { "2001:1ff::1", 0 },
		{ "2001:200::1", 1 }, { "2001:db8::1", 0 },
		{ "2001:db9::1", 1 }, { "2002:7f00:1::", 0 },
		{ "2002:101:101::", 1 }, { "2606:4700::1111", 1 },
		{ "3fff::1", 0 }, { "3fff:1000::1", 1 }, { "4000::1", 0 },
	};
	unsigned char bytes[16];
	struct call c;
	size_t i, failed = 0;
	int family, got;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		family = strchr(cases[i].addr, ':') != NULL ? AF_INET6 :
		    AF_INET;
		if (inet_pton(family, cases[i].addr, bytes) != 1) {
			printf("FAIL %s: not an address\n", cases[i].addr);
			failed++;
			continue;
		}
		got = address_allowed(&c, family, bytes);
		if (got != cases[i].public) {
			printf("FAIL %s: %s\n", cases[i].addr, got ? "public" :
			    "refused");
			failed++;
		}
	}
	/* The resolve map's hosts may be anywhere. */
	c.any_address = 1;
	if (inet_pton(AF_INET, "127.0.0.1", bytes) != 1 ||
	    !address_allowed(&c, AF_INET, bytes)) {
		printf("FAIL 127.0.0.1 with the resolve map: refused\n");
		failed++;
	}
	printf("%zu passed, %zu failed\n", i + 1 - failed, failed);
	return failed > 0;
}
