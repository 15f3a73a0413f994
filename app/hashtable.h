/*
 * An intrusive chained hash table: the node lives inside the item, so the
 * table allocates only its bucket array. Buckets double at load factor 1, an
 * O(n) step spread over the n inserts before it. Callers hash (hash.h) and
 * compare keys themselves while walking a bucket.
 */
#ifndef WSGATE_HASHTABLE_H
#define WSGATE_HASHTABLE_H

#include <stddef.h>
#include <stdint.h>

struct ht_node {
	struct ht_node *next;
	uint64_t hash;
};

struct hashtable {
	struct ht_node **buckets;
	size_t bucket_count; /* a power of two */
	size_t count;
};

int ht_init(struct hashtable *t, size_t expected);
/* Frees the bucket array; the items are the caller's. */
void ht_free(struct hashtable *t);
/* Hands every node to release (which may free its item), then frees the buckets. */
void ht_free_all(struct hashtable *t, void (*release)(struct ht_node *n));

/* The chain that holds every node with this hash. */
static inline struct ht_node *ht_chain(const struct hashtable *t, uint64_t hash)
{
	return t->buckets[hash & (t->bucket_count - 1)];
}

/* Links n under hash. Never fails: when growing is out of memory the chains just get longer. */
void ht_insert(struct hashtable *t, struct ht_node *n, uint64_t hash);
void ht_remove(struct hashtable *t, struct ht_node *n);

#endif
