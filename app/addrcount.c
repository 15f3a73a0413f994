/*
 * One node per address holding sessions; freed when its last session ends.
 */
#include "addrcount.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct addr_node {
	struct ht_node node;
	unsigned count;
	char addr[];
};

#define ADDR_OF(n) ((struct addr_node *)((char *)(n)-offsetof(struct addr_node, node)))

int addrcount_init(struct addrcount *ac)
{
	memset(ac, 0, sizeof(*ac));
	if (ht_init(&ac->table, 64) || siphash_random_key(ac->key)) {
		addrcount_free(ac);
		return -1;
	}
	return 0;
}

static void release(struct ht_node *n)
{
	free(ADDR_OF(n));
}

void addrcount_free(struct addrcount *ac)
{
	if (ac->table.buckets)
		ht_free_all(&ac->table, release);
	memset(&ac->table, 0, sizeof(ac->table));
}

static struct addr_node *find(const struct addrcount *ac, const char *addr, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&ac->table, hash); n; n = n->next)
		if (n->hash == hash && !strcmp(ADDR_OF(n)->addr, addr))
			return ADDR_OF(n);
	return NULL;
}

unsigned addrcount_get(const struct addrcount *ac, const char *addr)
{
	struct addr_node *a = find(ac, addr, siphash_string(ac->key, addr));

	return a ? a->count : 0;
}

int addrcount_add(struct addrcount *ac, const char *addr)
{
	uint64_t hash = siphash_string(ac->key, addr);
	struct addr_node *a = find(ac, addr, hash);

	if (!a) {
		size_t len = strlen(addr) + 1;
		a = malloc(sizeof(*a) + len);
		if (!a)
			return -1;
		a->count = 0;
		memcpy(a->addr, addr, len);
		ht_insert(&ac->table, &a->node, hash);
	}
	a->count++;
	return 0;
}

void addrcount_remove(struct addrcount *ac, const char *addr)
{
	struct addr_node *a = find(ac, addr, siphash_string(ac->key, addr));

	if (!a || --a->count)
		return;
	ht_remove(&ac->table, &a->node);
	free(a);
}
