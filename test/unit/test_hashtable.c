/* hashtable: intrusive chains, growth, removal anywhere in a chain. */
#include "hashtable.h"

#include <stdlib.h>

#include "check.h"

struct item {
	int value;
	struct ht_node node;
};

static size_t chain_length(const struct hashtable *t, uint64_t hash)
{
	size_t n = 0;

	for (struct ht_node *node = ht_chain(t, hash); node; node = node->next)
		n += node->hash == hash;
	return n;
}

static void test_insert_find_remove(void)
{
	struct hashtable t;
	struct item a = { 1, { 0 } }, b = { 2, { 0 } }, c = { 3, { 0 } };

	if (!CHECK_EQ_INT(ht_init(&t, 4), 0))
		return;
	CHECK_EQ_INT(t.bucket_count, 16);
	ht_insert(&t, &a.node, 5);
	ht_insert(&t, &b.node, 5 + 16); /* same bucket, other hash */
	ht_insert(&t, &c.node, 5);
	CHECK_EQ_INT(t.count, 3);
	CHECK_EQ_INT(chain_length(&t, 5), 2);
	ht_remove(&t, &c.node); /* the head of the chain */
	ht_remove(&t, &a.node); /* the tail */
	CHECK_EQ_INT(chain_length(&t, 5), 0);
	CHECK_EQ_INT(chain_length(&t, 21), 1);
	ht_remove(&t, &a.node); /* not linked any more: no effect */
	CHECK_EQ_INT(t.count, 1);
	ht_free(&t);
}

static void test_growth_keeps_every_node(void)
{
	enum { N = 10000 };
	struct hashtable t;
	struct item *items = calloc(N, sizeof(*items));

	if (!CHECK(items != NULL) || !CHECK_EQ_INT(ht_init(&t, 0), 0)) {
		free(items);
		return;
	}
	for (int i = 0; i < N; i++)
		ht_insert(&t, &items[i].node, (uint64_t)i * 0x9e3779b97f4a7c15ULL);
	CHECK(t.bucket_count >= N);
	size_t found = 0;
	for (int i = 0; i < N; i++)
		found += chain_length(&t, (uint64_t)i * 0x9e3779b97f4a7c15ULL) == 1;
	CHECK_EQ_INT(found, N);
	ht_free(&t);
	free(items);
}

int main(void)
{
	RUN(test_insert_find_remove);
	RUN(test_growth_keeps_every_node);
	return check_summary();
}
