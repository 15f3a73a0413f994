/*
 * SipHash-1-3, keyed per process, for every hash table whose keys clients
 * choose (users, devices, channels): a flood of colliding names cannot
 * turn O(1) lookups into scans.
 */
#include "hash.h"

#include <string.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                       \
	do {                                                                                                           \
		v0 += v1;                                                                                              \
		v1 = ROTL(v1, 13);                                                                                     \
		v1 ^= v0;                                                                                              \
		v0 = ROTL(v0, 32);                                                                                     \
		v2 += v3;                                                                                              \
		v3 = ROTL(v3, 16);                                                                                     \
		v3 ^= v2;                                                                                              \
		v0 += v3;                                                                                              \
		v3 = ROTL(v3, 21);                                                                                     \
		v3 ^= v0;                                                                                              \
		v2 += v1;                                                                                              \
		v1 = ROTL(v1, 17);                                                                                     \
		v1 ^= v2;                                                                                              \
		v2 = ROTL(v2, 32);                                                                                     \
	} while (0)

void siphash_init(struct siphash *s, const uint64_t key[2])
{
	s->v0 = 0x736f6d6570736575ULL ^ key[0];
	s->v1 = 0x646f72616e646f6dULL ^ key[1];
	s->v2 = 0x6c7967656e657261ULL ^ key[0];
	s->v3 = 0x7465646279746573ULL ^ key[1];
	s->pending = 0;
	s->total = 0;
}

static void siphash_compress(struct siphash *s, uint64_t m)
{
	uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;

	v3 ^= m;
	SIPROUND;
	v0 ^= m;
	s->v0 = v0;
	s->v1 = v1;
	s->v2 = v2;
	s->v3 = v3;
}

void siphash_update(struct siphash *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		s->pending |= (uint64_t)p[i] << (8 * (s->total & 7));
		s->total++;
		if (!(s->total & 7)) {
			siphash_compress(s, s->pending);
			s->pending = 0;
		}
	}
}

uint64_t siphash_final(struct siphash *s)
{
	uint64_t b = s->pending | ((uint64_t)(s->total & 0xff) << 56);
	uint64_t v0, v1, v2, v3;

	siphash_compress(s, b);
	v0 = s->v0;
	v1 = s->v1;
	v2 = s->v2 ^ 0xff;
	v3 = s->v3;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

int siphash_random_key(uint64_t key[2])
{
	return getrandom(key, 2 * sizeof(uint64_t), 0) == (ssize_t)(2 * sizeof(uint64_t)) ? 0 : -1;
}

uint64_t siphash_string(const uint64_t key[2], const char *s)
{
	struct siphash h;

	siphash_init(&h, key);
	siphash_update(&h, s, strlen(s));
	return siphash_final(&h);
}
