/*
 * Channel table (keyed SipHash, chained, doubling) and subscription links.
 * A channel is freed with its last subscriber unless its history is alive,
 * and then when that history expires (a timer on the router's wheel), so
 * names clients made up do not accumulate.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

#define CHANNEL_OF(n)	    ((struct channel *)((char *)(n)-offsetof(struct channel, node)))
#define CHANNEL_OF_TIMER(t) ((struct channel *)((char *)(t)-offsetof(struct channel, expiry)))

/* 1024 slots of 50 ms: a revolution of 51 s; a longer ttl stays in its slot for more rounds. */
#define EXPIRY_SLOTS 1024

int router_init(struct router *router)
{
	memset(router, 0, sizeof(*router));
	if (ht_init(&router->channels, 64) || siphash_random_key(router->key) ||
	    hb_wheel_init(&router->expiry, ROUTER_EXPIRY_TICK_MS, EXPIRY_SLOTS, util_now_ms())) {
		ht_free(&router->channels);
		return -1;
	}
	return 0;
}

static void free_channel_memory(struct channel *c)
{
	history_free(c->history);
	free(c->name);
	free(c);
}

static void free_channel(struct ht_node *n)
{
	free_channel_memory(CHANNEL_OF(n));
}

void router_free(struct router *router)
{
	ht_free_all(&router->channels, free_channel);
	hb_wheel_free(&router->expiry);
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

/* A new incarnation: seq 0, a fresh random epoch. */
static struct channel *create(struct router *router, const char *name, uint64_t hash)
{
	struct channel *c = calloc(1, sizeof(*c));

	if (!c || util_random_hex(c->epoch, ROUTER_EPOCH_LEN / 2) || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	ht_insert(&router->channels, &c->node, hash);
	return c;
}

static void notify(struct router *router, enum router_event event, const struct channel *c, void *owner)
{
	if (router->observer)
		router->observer(router->observer_ctx, event, c, owner);
}

static void destroy(struct router *router, struct channel *c)
{
	hb_wheel_cancel(&router->expiry, &c->expiry);
	ht_remove(&router->channels, &c->node);
	free_channel_memory(c);
}

/* A channel without subscribers: kept until its history expires, or freed now. */
static void destroy_if_empty(struct router *router, struct channel *c, uint64_t now_ms)
{
	uint64_t expires_ms = c->history ? history_expires_ms(c->history) : 0;

	if (c->count)
		return;
	if (expires_ms > now_ms)
		hb_wheel_arm(&router->expiry, &c->expiry, expires_ms);
	else
		destroy(router, c);
}

static void on_expiry(struct hb_timer *timer, void *ctx)
{
	struct channel *c = CHANNEL_OF_TIMER(timer);

	/* a subscriber came back: it arms the timer again when it leaves */
	if (!c->count)
		destroy_if_empty(ctx, c, timer->deadline_ms);
}

void router_expire(struct router *router, uint64_t now_ms)
{
	hb_wheel_advance(&router->expiry, now_ms, on_expiry, router);
}

static struct subscription **find_in_list(struct subscription_list *list, const struct channel *c)
{
	struct subscription **link = &list->first;

	while (*link && (*link)->channel != c)
		link = &(*link)->owner_next;
	return link;
}

struct subscription *router_subscription(const struct router *router, const struct subscription_list *list,
					 const char *name)
{
	struct channel *c = router_find(router, name);

	for (struct subscription *sub = c ? list->first : NULL; sub; sub = sub->owner_next)
		if (sub->channel == c)
			return sub;
	return NULL;
}

bool router_is_subscribed(const struct router *router, const struct subscription_list *list, const char *name)
{
	return router_subscription(router, list, name) != NULL;
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
		destroy_if_empty(router, c, util_now_ms());
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
	notify(router, ROUTER_SUBSCRIBED, c, owner);
	if (c->count == 1)
		notify(router, ROUTER_CHANNEL_OPENED, c, NULL);
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
	if (sub->hold)
		sub->hold->sub = NULL;
	notify(router, ROUTER_UNSUBSCRIBED, c, sub->owner);
	if (!c->count)
		notify(router, ROUTER_CHANNEL_CLOSED, c, NULL); /* it may stay for its history, unheard */
	destroy_if_empty(router, c, util_now_ms());
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

struct channel *router_open(struct router *router, const char *name, const struct history_limits *limits, bool *is_oom)
{
	uint64_t hash = siphash_string(router->key, name);
	struct channel *c = find(router, name, hash);

	*is_oom = false;
	if (!limits->size) {
		if (c)
			c->is_history_off = true;
		return c;
	}
	if (!c && !(c = create(router, name, hash))) {
		*is_oom = true;
		return NULL;
	}
	/* the limits when its history began: a reload applies to the next incarnation */
	if (!c->history && !(c->history = history_memory_new(limits, &router->history))) {
		*is_oom = true;
		if (!c->count)
			destroy(router, c);
		return NULL;
	}
	return c;
}

int router_record(struct router *router, struct channel *c, struct outmsg *msg, uint64_t now_ms)
{
	c->seq++;
	/* a message the history could not keep is still delivered; its next append starts it over */
	if (c->history)
		(void)history_append(c->history, c->seq, msg, now_ms);
	if (!c->count && !hb_timer_is_armed(&c->expiry))
		destroy_if_empty(router, c, now_ms);
	return 0;
}

bool router_can_recover(struct channel *c, const char *epoch, uint64_t seq, uint64_t now_ms)
{
	if (strcmp(epoch, c->epoch) || seq > c->seq)
		return false;
	if (seq == c->seq)
		return true; /* nothing missed */
	uint64_t oldest = c->history ? history_oldest(c->history, now_ms) : 0;
	return oldest && oldest <= seq + 1;
}

int subscription_hold_push(struct subscription_hold *hold, struct outmsg *msg, uint64_t seq)
{
	if (hold->count == hold->capacity) {
		size_t capacity = hold->capacity ? hold->capacity * 2 : 8;
		struct outmsg **msgs = realloc(hold->msgs, capacity * sizeof(struct outmsg *));
		if (msgs)
			hold->msgs = msgs;
		uint64_t *seqs = msgs ? realloc(hold->seqs, capacity * sizeof(*seqs)) : NULL;
		if (!seqs)
			return -1;
		hold->seqs = seqs;
		hold->capacity = capacity;
	}
	hold->msgs[hold->count] = outmsg_ref(msg);
	hold->seqs[hold->count++] = seq;
	hold->bytes += msg->len;
	return 0;
}

void subscription_hold_clear(struct subscription_hold *hold)
{
	for (size_t i = 0; i < hold->count; i++)
		outmsg_unref(hold->msgs[i]);
	free(hold->msgs);
	free(hold->seqs);
	hold->msgs = NULL;
	hold->seqs = NULL;
	hold->count = hold->capacity = hold->bytes = 0;
}
