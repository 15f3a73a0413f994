/*
 * Registry of live sessions by (user, device). Chained buckets that double at
 * load factor 1; the chain entries are the sessions themselves, so the registry
 * allocates only its bucket array.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

/* SipHash-1-3 over a byte stream fed in pieces (user, a separator, device). */
struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t pending;
	size_t total;
};

static void siphash_init(struct siphash *s, const uint64_t key[2])
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

static void siphash_update(struct siphash *s, const void *data, size_t len)
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

static uint64_t siphash_final(struct siphash *s)
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

static uint64_t key_hash(const struct registry *reg, const char *user, const char *device)
{
	struct siphash s;

	siphash_init(&s, reg->key);
	/* the NUL keeps ("ab", "c") and ("a", "bc") apart */
	siphash_update(&s, user, strlen(user) + 1);
	siphash_update(&s, device, strlen(device));
	return siphash_final(&s);
}

int registry_init(struct registry *reg, size_t expected)
{
	size_t n = 16;

	memset(reg, 0, sizeof(*reg));
	while (n < expected)
		n <<= 1;
	reg->buckets = calloc(n, sizeof(*reg->buckets));
	if (!reg->buckets)
		return -1;
	reg->bucket_count = n;
	if (getrandom(reg->key, sizeof(reg->key), 0) != (ssize_t)sizeof(reg->key))
		return -1;
	return 0;
}

void registry_free(struct registry *reg)
{
	free(reg->buckets);
	memset(reg, 0, sizeof(*reg));
}

static bool entry_matches(const struct registry_entry *e, uint64_t hash, const char *user, const char *device)
{
	return e->hash == hash && !strcmp(e->user, user) && !strcmp(e->device, device);
}

struct registry_entry *registry_find(const struct registry *reg, const char *user, const char *device)
{
	uint64_t hash = key_hash(reg, user, device);

	for (struct registry_entry *e = reg->buckets[hash & (reg->bucket_count - 1)]; e; e = e->bucket_next)
		if (entry_matches(e, hash, user, device))
			return e;
	return NULL;
}

/* Doubling keeps chains short; its O(n) cost is spread over the n adds before it. */
static int grow(struct registry *reg)
{
	size_t count = reg->bucket_count * 2;
	struct registry_entry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -1;
	for (size_t i = 0; i < reg->bucket_count; i++) {
		struct registry_entry *e = reg->buckets[i], *next;
		for (; e; e = next) {
			next = e->bucket_next;
			size_t b = e->hash & (count - 1);
			e->bucket_next = buckets[b];
			buckets[b] = e;
		}
	}
	free(reg->buckets);
	reg->buckets = buckets;
	reg->bucket_count = count;
	return 0;
}

int registry_add(struct registry *reg, struct registry_entry *entry)
{
	if (entry->is_registered || registry_find(reg, entry->user, entry->device))
		return -1;
	if (reg->count >= reg->bucket_count && grow(reg))
		return -1;
	entry->hash = key_hash(reg, entry->user, entry->device);
	size_t b = entry->hash & (reg->bucket_count - 1);
	entry->bucket_next = reg->buckets[b];
	reg->buckets[b] = entry;

	entry->next = NULL;
	entry->prev = reg->last;
	if (reg->last)
		reg->last->next = entry;
	else
		reg->first = entry;
	reg->last = entry;

	entry->is_registered = true;
	reg->count++;
	return 0;
}

void registry_remove(struct registry *reg, struct registry_entry *entry)
{
	if (!entry->is_registered)
		return;
	struct registry_entry **link = &reg->buckets[entry->hash & (reg->bucket_count - 1)];
	while (*link != entry)
		link = &(*link)->bucket_next;
	*link = entry->bucket_next;

	if (entry->prev)
		entry->prev->next = entry->next;
	else
		reg->first = entry->next;
	if (entry->next)
		entry->next->prev = entry->prev;
	else
		reg->last = entry->prev;

	entry->prev = entry->next = entry->bucket_next = NULL;
	entry->is_registered = false;
	reg->count--;
}
