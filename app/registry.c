/*
 * Registry of live sessions by (user, device). Chained buckets that double at
 * load factor 1; the chain entries are the sessions themselves, so the registry
 * allocates only its bucket array.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

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
	reg->user_buckets = calloc(n, sizeof(*reg->user_buckets));
	if (!reg->buckets || !reg->user_buckets) {
		registry_free(reg);
		return -1;
	}
	reg->bucket_count = n;
	reg->user_bucket_count = n;
	if (siphash_random_key(reg->key))
		return -1;
	return 0;
}

void registry_free(struct registry *reg)
{
	for (size_t i = 0; i < reg->user_bucket_count; i++) {
		struct registry_user *u = reg->user_buckets[i], *next;
		for (; u; u = next) {
			next = u->bucket_next;
			free(u->name);
			free(u);
		}
	}
	free(reg->user_buckets);
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

static struct registry_user *find_user(const struct registry *reg, const char *user, uint64_t hash)
{
	for (struct registry_user *u = reg->user_buckets[hash & (reg->user_bucket_count - 1)]; u; u = u->bucket_next)
		if (u->hash == hash && !strcmp(u->name, user))
			return u;
	return NULL;
}

struct registry_entry *registry_first_of_user(const struct registry *reg, const char *user)
{
	struct registry_user *u = find_user(reg, user, siphash_string(reg->key, user));

	return u ? u->first : NULL;
}

static int grow_users(struct registry *reg)
{
	size_t count = reg->user_bucket_count * 2;
	struct registry_user **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -1;
	for (size_t i = 0; i < reg->user_bucket_count; i++) {
		struct registry_user *u = reg->user_buckets[i], *next;
		for (; u; u = next) {
			next = u->bucket_next;
			u->bucket_next = buckets[u->hash & (count - 1)];
			buckets[u->hash & (count - 1)] = u;
		}
	}
	free(reg->user_buckets);
	reg->user_buckets = buckets;
	reg->user_bucket_count = count;
	return 0;
}

/* The user's node, made on their first session. */
static struct registry_user *attach_user(struct registry *reg, const char *user)
{
	uint64_t hash = siphash_string(reg->key, user);
	struct registry_user *u = find_user(reg, user, hash);

	if (u)
		return u;
	if (reg->user_count >= reg->user_bucket_count && grow_users(reg))
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u || !(u->name = strdup(user))) {
		free(u);
		return NULL;
	}
	u->hash = hash;
	u->bucket_next = reg->user_buckets[hash & (reg->user_bucket_count - 1)];
	reg->user_buckets[hash & (reg->user_bucket_count - 1)] = u;
	reg->user_count++;
	return u;
}

static void detach_user(struct registry *reg, struct registry_entry *entry)
{
	struct registry_user *u = entry->owner;

	if (entry->user_prev)
		entry->user_prev->user_next = entry->user_next;
	else
		u->first = entry->user_next;
	if (entry->user_next)
		entry->user_next->user_prev = entry->user_prev;
	entry->user_prev = entry->user_next = NULL;
	entry->owner = NULL;
	if (--u->count)
		return;
	struct registry_user **link = &reg->user_buckets[u->hash & (reg->user_bucket_count - 1)];
	while (*link != u)
		link = &(*link)->bucket_next;
	*link = u->bucket_next;
	reg->user_count--;
	free(u->name);
	free(u);
}

int registry_add(struct registry *reg, struct registry_entry *entry)
{
	struct registry_user *u;

	if (entry->is_registered || registry_find(reg, entry->user, entry->device))
		return -1;
	if (reg->count >= reg->bucket_count && grow(reg))
		return -1;
	u = attach_user(reg, entry->user);
	if (!u)
		return -1;
	entry->owner = u;
	entry->user_prev = NULL;
	entry->user_next = u->first;
	if (u->first)
		u->first->user_prev = entry;
	u->first = entry;
	u->count++;
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

	detach_user(reg, entry);
	entry->prev = entry->next = entry->bucket_next = NULL;
	entry->is_registered = false;
	reg->count--;
}
