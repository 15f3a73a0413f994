/*
 * Channel table (keyed SipHash, chained, doubling) and subscription links.
 * A channel is freed with its last subscriber, so names clients made up do
 * not accumulate.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

int router_init(struct router *router)
{
	memset(router, 0, sizeof(*router));
	router->bucket_count = 64;
	router->buckets = calloc(router->bucket_count, sizeof(*router->buckets));
	if (!router->buckets || siphash_random_key(router->key)) {
		free(router->buckets);
		router->buckets = NULL;
		return -1;
	}
	return 0;
}

void router_free(struct router *router)
{
	for (size_t i = 0; router->buckets && i < router->bucket_count; i++) {
		struct channel *c = router->buckets[i], *next;
		for (; c; c = next) {
			next = c->bucket_next;
			free(c->name);
			free(c);
		}
	}
	free(router->buckets);
	router->buckets = NULL;
}

static struct channel *find(const struct router *router, const char *name, uint64_t hash)
{
	for (struct channel *c = router->buckets[hash & (router->bucket_count - 1)]; c; c = c->bucket_next)
		if (c->hash == hash && !strcmp(c->name, name))
			return c;
	return NULL;
}

struct channel *router_find(const struct router *router, const char *name)
{
	return find(router, name, siphash_string(router->key, name));
}

static int grow(struct router *router)
{
	size_t count = router->bucket_count * 2;
	struct channel **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -1;
	for (size_t i = 0; i < router->bucket_count; i++) {
		struct channel *c = router->buckets[i], *next;
		for (; c; c = next) {
			next = c->bucket_next;
			c->bucket_next = buckets[c->hash & (count - 1)];
			buckets[c->hash & (count - 1)] = c;
		}
	}
	free(router->buckets);
	router->buckets = buckets;
	router->bucket_count = count;
	return 0;
}

static struct channel *create(struct router *router, const char *name, uint64_t hash)
{
	struct channel *c;

	if (router->count >= router->bucket_count && grow(router))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	c->hash = hash;
	c->bucket_next = router->buckets[hash & (router->bucket_count - 1)];
	router->buckets[hash & (router->bucket_count - 1)] = c;
	router->count++;
	return c;
}

static void destroy_if_empty(struct router *router, struct channel *c)
{
	if (c->count)
		return;
	struct channel **link = &router->buckets[c->hash & (router->bucket_count - 1)];
	while (*link != c)
		link = &(*link)->bucket_next;
	*link = c->bucket_next;
	router->count--;
	free(c->name);
	free(c);
}

static struct subscription **find_in_list(struct subscription_list *list, const struct channel *c)
{
	struct subscription **link = &list->first;

	while (*link && (*link)->channel != c)
		link = &(*link)->owner_next;
	return link;
}

int router_subscribe(struct router *router, struct subscription_list *list, void *owner, const char *name)
{
	uint64_t hash = siphash_string(router->key, name);
	struct channel *c = find(router, name, hash);
	struct subscription *sub;

	if (c && *find_in_list(list, c))
		return 1;
	if (!c && !(c = create(router, name, hash)))
		return -1;
	sub = calloc(1, sizeof(*sub));
	if (!sub) {
		destroy_if_empty(router, c);
		return -1;
	}
	sub->channel = c;
	sub->owner = owner;
	sub->channel_next = c->first;
	if (c->first)
		c->first->channel_prev = sub;
	c->first = sub;
	c->count++;
	sub->owner_next = list->first;
	list->first = sub;
	list->count++;
	return 0;
}

static void unlink_subscription(struct router *router, struct subscription *sub)
{
	struct channel *c = sub->channel;

	if (sub->channel_prev)
		sub->channel_prev->channel_next = sub->channel_next;
	else
		c->first = sub->channel_next;
	if (sub->channel_next)
		sub->channel_next->channel_prev = sub->channel_prev;
	c->count--;
	destroy_if_empty(router, c);
	free(sub);
}

int router_unsubscribe(struct router *router, struct subscription_list *list, const char *name)
{
	struct channel *c = router_find(router, name);
	struct subscription **link, *sub;

	if (!c)
		return 1;
	link = find_in_list(list, c);
	if (!*link)
		return 1;
	sub = *link;
	*link = sub->owner_next;
	list->count--;
	unlink_subscription(router, sub);
	return 0;
}

void router_unsubscribe_all(struct router *router, struct subscription_list *list)
{
	while (list->first) {
		struct subscription *sub = list->first;
		list->first = sub->owner_next;
		unlink_subscription(router, sub);
	}
	list->count = 0;
}
