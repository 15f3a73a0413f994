/*
 * The session registry: who is connected, keyed by (user, device), and
 * every session of a user. Intrusive hash tables (the entry lives inside the
 * session), so add, find and remove are O(1) on average and nothing here ever
 * walks every session for one lookup. Keys are hashed with a per-process random SipHash key against
 * collision floods from chosen device ids.
 */
#ifndef WSGATE_REGISTRY_H
#define WSGATE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashtable.h"

struct registry_user;

struct registry_entry {
	const char *user;   /* owned by the session that embeds the entry */
	const char *device; /* "" when the client named no device */
	struct ht_node node;
	struct registry_entry *prev, *next; /* every registered session, oldest first */
	struct registry_user *owner;	    /* every session of this user */
	struct registry_entry *user_prev, *user_next;
	bool is_registered;
};

/* One per connected user, for "every session of bob" without a walk. */
struct registry_user {
	char *name;
	struct ht_node node;
	struct registry_entry *first;
	size_t count;
};

struct registry {
	struct hashtable sessions; /* entries by (user, device) */
	struct hashtable users;	   /* registry_user by name */
	struct registry_entry *first, *last;
	uint64_t key[2];
};

int registry_init(struct registry *reg, size_t expected);
void registry_free(struct registry *reg);

struct registry_entry *registry_find(const struct registry *reg, const char *user, const char *device);

/* Adds entry; returns -1 when (user, device) is already registered or memory ran out. */
int registry_add(struct registry *reg, struct registry_entry *entry);
void registry_remove(struct registry *reg, struct registry_entry *entry);

static inline size_t registry_count(const struct registry *reg)
{
	return reg->sessions.count;
}

/* The sessions of one user (then entry->user_next), NULL when none. */
struct registry_entry *registry_first_of_user(const struct registry *reg, const char *user);

/* Iteration for whole-server events (shutdown, listings), never for one session's work. */
static inline struct registry_entry *registry_first(const struct registry *reg)
{
	return reg->first;
}

#endif
