/*
 * Registry of live sessions by (user, device), with a per-user list for
 * "every session of bob". Allocates only bucket arrays and one node per
 * connected user.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define ENTRY_OF(n) ((struct registry_entry *)((char *)(n)-offsetof(struct registry_entry, node)))
#define USER_OF(n)  ((struct registry_user *)((char *)(n)-offsetof(struct registry_user, node)))

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
	memset(reg, 0, sizeof(*reg));
	if (ht_init(&reg->sessions, expected) || ht_init(&reg->users, expected) || siphash_random_key(reg->key)) {
		registry_free(reg);
		return -1;
	}
	return 0;
}

static void free_user(struct ht_node *n)
{
	free(USER_OF(n)->name);
	free(USER_OF(n));
}

void registry_free(struct registry *reg)
{
	ht_free_all(&reg->users, free_user);
	ht_free(&reg->sessions);
	reg->first = reg->last = NULL;
}

struct registry_entry *registry_find(const struct registry *reg, const char *user, const char *device)
{
	uint64_t hash = key_hash(reg, user, device);

	for (struct ht_node *n = ht_chain(&reg->sessions, hash); n; n = n->next) {
		struct registry_entry *e = ENTRY_OF(n);
		if (n->hash == hash && !strcmp(e->user, user) && !strcmp(e->device, device))
			return e;
	}
	return NULL;
}

static struct registry_user *find_user(const struct registry *reg, const char *user, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&reg->users, hash); n; n = n->next)
		if (n->hash == hash && !strcmp(USER_OF(n)->name, user))
			return USER_OF(n);
	return NULL;
}

struct registry_entry *registry_first_of_user(const struct registry *reg, const char *user)
{
	struct registry_user *u = find_user(reg, user, siphash_string(reg->key, user));

	return u ? u->first : NULL;
}

/* The user's node, made on their first session. */
static struct registry_user *attach_user(struct registry *reg, const char *user)
{
	uint64_t hash = siphash_string(reg->key, user);
	struct registry_user *u = find_user(reg, user, hash);

	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u || !(u->name = strdup(user))) {
		free(u);
		return NULL;
	}
	ht_insert(&reg->users, &u->node, hash);
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
	ht_remove(&reg->users, &u->node);
	free(u->name);
	free(u);
}

int registry_add(struct registry *reg, struct registry_entry *entry)
{
	struct registry_user *u;

	if (entry->is_registered || registry_find(reg, entry->user, entry->device))
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

	ht_insert(&reg->sessions, &entry->node, key_hash(reg, entry->user, entry->device));
	entry->next = NULL;
	entry->prev = reg->last;
	if (reg->last)
		reg->last->next = entry;
	else
		reg->first = entry;
	reg->last = entry;
	entry->is_registered = true;
	return 0;
}

void registry_remove(struct registry *reg, struct registry_entry *entry)
{
	if (!entry->is_registered)
		return;
	ht_remove(&reg->sessions, &entry->node);
	if (entry->prev)
		entry->prev->next = entry->next;
	else
		reg->first = entry->next;
	if (entry->next)
		entry->next->prev = entry->prev;
	else
		reg->last = entry->prev;
	detach_user(reg, entry);
	entry->prev = entry->next = NULL;
	entry->is_registered = false;
}
