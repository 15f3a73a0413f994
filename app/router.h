/*
 * Channels and subscriptions. A channel numbers its messages (seq) so clients
 * can see a gap, and lives while it has subscribers or a history that has not
 * expired; each incarnation has a random epoch, so that a client can tell "no
 * gap" from "a different stream that restarted at 1". Subscriptions are
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
#include "heartbeat.h"
#include "history.h"

/* 16 hex characters: 64 random bits per incarnation. */
#define ROUTER_EPOCH_LEN 16

struct channel;
struct subscription_hold;

struct subscription {
	struct channel *channel;
	void *owner;
	struct subscription *channel_prev, *channel_next;
	struct subscription *owner_next;
	struct subscription_hold *hold; /* not NULL: its deliveries wait there (below) */
	/*
	 * Live deliveries up to this seq are already answered for (the subscribe's
	 * position or replay) though they may still be on their way from Redis: skipped,
	 * until a later one or a new epoch comes. 0: none.
	 */
	uint64_t answered_through;
};

/*
 * A subscription's deliveries held back while its subscribe waits for an
 * answer from elsewhere (the cluster's Redis: where the channel stands, and
 * what the client missed), so that the answer, the replay and the live ones
 * go out in order. Owned by whoever waits; the router only cuts the link when
 * the subscription goes (sub NULL: nobody is left to answer).
 */
struct subscription_hold {
	struct subscription *sub;
	struct outmsg **msgs;
	uint64_t *seqs;
	size_t count, capacity, bytes;
};

/* Keeps msg (a new reference) as seq. -1: out of memory. */
int subscription_hold_push(struct subscription_hold *hold, struct outmsg *msg, uint64_t seq);
/* Drops every held message. */
void subscription_hold_clear(struct subscription_hold *hold);

/* A session's subscriptions. */
struct subscription_list {
	struct subscription *first;
	size_t count;
};

struct channel {
	char *name;
	struct ht_node node;
	uint64_t seq; /* of the last message published */
	char epoch[ROUTER_EPOCH_LEN + 1];
	struct subscription *first;
	size_t count;
	struct history *history; /* NULL: none (history off for it, or nothing published yet) */
	bool is_history_off;	 /* its configured size is 0: publishes need not look it up again */
	struct hb_timer expiry;	 /* armed while it has no subscriber and its history is alive */
};

/* What an observer (the cluster: one Redis subscription per channel, presence) is told. */
enum router_event {
	ROUTER_CHANNEL_OPENED, /* it has a subscriber again (told after ROUTER_SUBSCRIBED) */
	ROUTER_CHANNEL_CLOSED, /* its last subscriber left (it may stay a while for its history) */
	ROUTER_SUBSCRIBED,
	ROUTER_UNSUBSCRIBED,
};
typedef void (*router_observer)(void *ctx, enum router_event event, const struct channel *c, void *owner);

struct router {
	struct hashtable channels;
	uint64_t key[2];
	/*
	 * Channels kept only by their history go when it expires: a timer each
	 * on this wheel, advanced by router_expire (O(1) when nothing is due),
	 * so nothing ever scans every channel.
	 */
	struct hb_wheel expiry;
	struct history_stats history;
	router_observer observer; /* NULL: none */
	void *observer_ctx;
};

/* The expiry wheel's resolution: a channel goes at most this late. */
#define ROUTER_EXPIRY_TICK_MS 50

int router_init(struct router *router);
/* Frees the channels; every subscription list must be empty by now. */
void router_free(struct router *router);

/* Frees the channels whose history expired by now_ms and that have no subscriber. */
void router_expire(struct router *router, uint64_t now_ms);

struct channel *router_find(const struct router *router, const char *name);

/* The list's subscription to name; NULL: none. */
struct subscription *router_subscription(const struct router *router, const struct subscription_list *list,
					 const char *name);
bool router_is_subscribed(const struct router *router, const struct subscription_list *list, const char *name);

/* 0 subscribed, 1 already subscribed, -1 out of memory. */
int router_subscribe(struct router *router, struct subscription_list *list, void *owner, const char *name);
/* 0 unsubscribed, 1 was not subscribed. */
int router_unsubscribe(struct router *router, struct subscription_list *list, const char *name);
void router_unsubscribe_all(struct router *router, struct subscription_list *list);

/*
 * The channel a publish numbers: the existing one, or a new one when limits
 * give it a history (a publish nobody hears is still kept). NULL when there is
 * nothing to number (no subscriber, no history) or out of memory (*is_oom).
 */
struct channel *router_open(struct router *router, const char *name, const struct history_limits *limits, bool *is_oom);
/*
 * Records msg as the channel's next message (seq + 1) and keeps it in its
 * history when it has one. -1: out of memory (seq unchanged).
 */
int router_record(struct router *router, struct channel *c, struct outmsg *msg, uint64_t now_ms);

/*
 * Whether a client that has everything of incarnation epoch up to seq can
 * get all it missed from the history at now_ms (or missed nothing).
 */
bool router_can_recover(struct channel *c, const char *epoch, uint64_t seq, uint64_t now_ms);

#endif
