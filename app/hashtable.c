/* Intrusive chained hash table with doubling. */
#include "hashtable.h"

#include <stdlib.h>

int ht_init(struct hashtable *t, size_t expected)
{
	size_t n = 16;

	while (n < expected)
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets)); /* NOLINT(bugprone-sizeof-expression): pointers */
	t->bucket_count = t->buckets ? n : 0;
	t->count = 0;
	return t->buckets ? 0 : -1;
}

void ht_free(struct hashtable *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->bucket_count = t->count = 0;
}

void ht_free_all(struct hashtable *t, void (*release)(struct ht_node *n))
{
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct ht_node *n = t->buckets[i], *next;
		for (; n; n = next) {
			next = n->next;
			release(n);
		}
	}
	ht_free(t);
}

static void grow(struct hashtable *t)
{
	size_t count = t->bucket_count * 2;
	struct ht_node **buckets = calloc(count, sizeof(*buckets)); /* NOLINT(bugprone-sizeof-expression) */

	if (!buckets)
		return;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct ht_node *n = t->buckets[i], *next;
		for (; n; n = next) {
			next = n->next;
			n->next = buckets[n->hash & (count - 1)];
			buckets[n->hash & (count - 1)] = n;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->bucket_count = count;
}

void ht_insert(struct hashtable *t, struct ht_node *n, uint64_t hash)
{
	if (t->count >= t->bucket_count)
		grow(t);
	n->hash = hash;
	n->next = t->buckets[hash & (t->bucket_count - 1)];
	t->buckets[hash & (t->bucket_count - 1)] = n;
	t->count++;
}

void ht_remove(struct hashtable *t, struct ht_node *n)
{
	struct ht_node **link = &t->buckets[n->hash & (t->bucket_count - 1)];

	while (*link && *link != n)
		link = &(*link)->next;
	if (!*link)
		return;
	*link = n->next;
	n->next = NULL;
	t->count--;
}
