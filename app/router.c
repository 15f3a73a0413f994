/*
 * Channel table (keyed SipHash, chained, doubling) and subscription links.
 * A channel is freed with its last subscriber, so names clients made up do
 * not accumulate.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define CHANNEL_OF(n) ((struct channel *)((char *)(n)-offsetof(struct channel, node)))

int router_init(struct router *router)
{
	memset(router, 0, sizeof(*router));
	if (ht_init(&router->channels, 64) || siphash_random_key(router->key)) {
		ht_free(&router->channels);
		return -1;
	}
	return 0;
}

static void free_channel(struct ht_node *n)
{
	free(CHANNEL_OF(n)->name);
	free(CHANNEL_OF(n));
}

void router_free(struct router *router)
{
	ht_free_all(&router->channels, free_channel);
}

static struct channel *find(const struct router *router, const char *name, uint64_t hash)
{
	for (struct ht_node *n = ht_chain(&router->channels, hash); n; n = n->next)
		if (n->hash == hash && !strcmp(CHANNEL_OF(n)->name, name))
			return CHANNEL_OF(n);
	return NULL;
}

struct channel *router_find(const struct router *router, const char *name)
{
	return find(router, name, siphash_string(router->key, name));
}

static struct channel *create(struct router *router, const char *name, uint64_t hash)
{
	struct channel *c = calloc(1, sizeof(*c));

	if (!c || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	ht_insert(&router->channels, &c->node, hash);
	return c;
}

static void destroy_if_empty(struct router *router, struct channel *c)
{
	if (c->count)
		return;
	ht_remove(&router->channels, &c->node);
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

bool router_is_subscribed(const struct router *router, const struct subscription_list *list, const char *name)
{
	struct channel *c = router_find(router, name);

	for (struct subscription *sub = c ? list->first : NULL; sub; sub = sub->owner_next)
		if (sub->channel == c)
			return true;
	return false;
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
