/*
 * sources.c - a client's source (an IPv4 address, an IPv6 /64) and the
 * connections open from each, in a hash table that holds only sources
 * with a connection open: it grows with them, never past the server's
 * connections.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sources.h"
#include "banned.h"

#define KEY_LEN		17	/* a family byte, then 16 address bytes */
#define FIRST_SLOTS	256

struct source_slot {
	unsigned char key[KEY_LEN];
	unsigned int n;		/* connections open; 0 marks a free slot */
};

struct sources {
	pthread_mutex_t mu;
	/* Keys are hashed with a secret of the process: nobody outside can
	   pick sources that pile up on one probe sequence. */
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	struct source_slot *slots;
	size_t cap;		/* a power of two */
	size_t used;
};

/*
 * The IPv4 address a holds, into v4, if a is one of the forms that
 * carry one (1): IPv4-mapped (::ffff:0:0/96); a NAT64 or SIIT
 * translator's well-known prefix (64:ff9b::/96, RFC 6052), whose /64
 * is every IPv4 client it serves; 6to4 (2002::/16), which gives one
 * IPv4 address 65,536 /64s; Teredo (2001::/32), the client's address
 * inverted in the last four bytes, its /64 every client of a server.
 */
static int
embedded_v4(const unsigned char a[16], unsigned char v4[4])
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	int i;

	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
		memcpy(v4, a + 12, 4);
		return 1;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		memcpy(v4, a + 2, 4);
		return 1;
	}
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
		for (i = 0; i < 4; i++)
			v4[i] = (unsigned char)~a[12 + i];
		return 1;
	}
	return 0;
}

/*
 * sa's source as a key: 4, then the IPv4-mapped address of the IPv4
 * address it is or carries; or 6, then the /64.
 */
static int
source_key(const struct sockaddr *sa, unsigned char key[KEY_LEN])
{
	const unsigned char *a;

	memset(key, 0, KEY_LEN);
	if (sa == NULL)
		return -1;
	key[11] = key[12] = 0xff;
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 13, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (embedded_v4(a, key + 13)) {
		key[0] = 4;
		return 0;
	}
	memset(key, 0, KEY_LEN);
	key[0] = 6;
	memcpy(key + 1, a, 8);
	return 0;
}

int
source_name(const struct sockaddr *sa, char out[SOURCE_STRLEN])
{
	unsigned char key[KEY_LEN];
	size_t len;

	if (source_key(sa, key) != 0) {
		(void)snprintf(out, SOURCE_STRLEN, "?");
		return -1;
	}
	if (key[0] == 4)
		return inet_ntop(AF_INET, key + 13, out, SOURCE_STRLEN) != NULL ?
		    0 : -1;
	if (inet_ntop(AF_INET6, key + 1, out, SOURCE_STRLEN - 4) == NULL)
		return -1;
	len = strlen(out);
	(void)snprintf(out + len, SOURCE_STRLEN - len, "/64");
	return 0;
}

struct sources *
sources_new(void)
{
	struct sources *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cap = FIRST_SLOTS;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	if (s->slots == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->slots);
		free(s);
		return NULL;
	}
	crypto_shorthash_keygen(s->hash_key);
	return s;
}

void
sources_free(struct sources *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->slots);
	free(s);
}

static size_t
home(const struct sources *s, const unsigned char key[KEY_LEN])
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v = 0;
	size_t i;

	(void)crypto_shorthash(h, key, KEY_LEN, s->hash_key);
	for (i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	return (size_t)(v & (s->cap - 1));
}

/* key's slot, or the free one where it would go (linear probing). */
static struct source_slot *
find(const struct sources *s, const unsigned char key[KEY_LEN])
{
	size_t i = home(s, key);

	while (s->slots[i].n != 0 && memcmp(s->slots[i].key, key,
	    KEY_LEN) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

/* Twice the slots, once half are used: probes stay short. */
static int
grow(struct sources *s)
{
	struct source_slot *old = s->slots;
	size_t oldcap = s->cap, i;

	s->slots = calloc(oldcap * 2, sizeof(*s->slots));
	if (s->slots == NULL) {
		s->slots = old;
		return -1;
	}
	s->cap = oldcap * 2;
	for (i = 0; i < oldcap; i++)
		if (old[i].n != 0)
			*find(s, old[i].key) = old[i];
	free(old);
	return 0;
}

/*
 * Empty slot i, and move up the entries after it that probing would no
 * longer find (deletion without tombstones).
 */
static void
release(struct sources *s, size_t i)
{
	size_t j = i, h;

	s->slots[i].n = 0;
	for (;;) {
		j = (j + 1) & (s->cap - 1);
		if (s->slots[j].n == 0)
			return;
		h = home(s, s->slots[j].key);
		/* Does j's home lie cyclically in (i, j]?  Then it stays. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		s->slots[i] = s->slots[j];
		s->slots[j].n = 0;
		i = j;
	}
}

unsigned int
sources_count(struct sources *s, const struct sockaddr *sa)
{
	unsigned char key[KEY_LEN];
	unsigned int n;

	if (source_key(sa, key) != 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	n = find(s, key)->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int
sources_admit(struct sources *s, const struct sockaddr *sa,
    unsigned int limit)
{
	return sources_count(s, sa) < limit;
}

/* One more connection from sa's source (delta 1), or one fewer (-1). */
static void
adjust(struct sources *s, const struct sockaddr *sa, int delta)
{
	unsigned char key[KEY_LEN];
	struct source_slot *slot;

	if (source_key(sa, key) != 0)
		return;
	pthread_mutex_lock(&s->mu);
	slot = find(s, key);
	if (delta < 0 && slot->n == 1) {
		release(s, (size_t)(slot - s->slots));
		s->used--;
	} else if (delta < 0 && slot->n > 1)
		slot->n--;
	else if (delta > 0 && slot->n > 0)
		slot->n++;
	else if (delta > 0) {
		if ((s->used + 1) * 2 > s->cap && grow(s) == 0)
			slot = find(s, key);
		/* Out of memory and three quarters full: left uncounted. */
		if ((s->used + 1) * 4 <= s->cap * 3) {
			memcpy(slot->key, key, KEY_LEN);
			slot->n = 1;
			s->used++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void
sources_opened(struct sources *s, const struct sockaddr *sa)
{
	adjust(s, sa, 1);
}

void
sources_closed(struct sources *s, const struct sockaddr *sa)
{
	adjust(s, sa, -1);
}
