/*
 * Channels and subscriptions. A channel exists while it has subscribers and
 * numbers its messages (seq) so clients can see a gap. Subscriptions are
 * linked into both their channel and their session, so a publish walks only
 * the channel's subscribers and a session's exit walks only its own
 * subscriptions. Pure: the owner of a subscription is an opaque pointer.
 */
#ifndef WSGATE_ROUTER_H
#define WSGATE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashtable.h"

struct channel;

struct subscription {
	struct channel *channel;
	void *owner;
	struct subscription *channel_prev, *channel_next;
	struct subscription *owner_next;
};

/* A session's subscriptions. */
struct subscription_list {
	struct subscription *first;
	size_t count;
};

struct channel {
	char *name;
	struct ht_node node;
	uint64_t seq; /* of the last message published */
	struct subscription *first;
	size_t count;
};

struct router {
	struct hashtable channels;
	uint64_t key[2];
};

int router_init(struct router *router);
/* Frees the channels; every subscription list must be empty by now. */
void router_free(struct router *router);

struct channel *router_find(const struct router *router, const char *name);

bool router_is_subscribed(const struct router *router, const struct subscription_list *list, const char *name);

/* 0 subscribed, 1 already subscribed, -1 out of memory. */
int router_subscribe(struct router *router, struct subscription_list *list, void *owner, const char *name);
/* 0 unsubscribed, 1 was not subscribed. */
int router_unsubscribe(struct router *router, struct subscription_list *list, const char *name);
void router_unsubscribe_all(struct router *router, struct subscription_list *list);

#endif
