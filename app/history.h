/*
 * A channel's history: the deliveries it keeps for clients that come back,
 * bounded in count (size) and age (ttl_ms). Behind a small interface so that
 * a store a cluster shares (a Redis stream per channel) can stand in for the
 * memory one. The memory store keeps the very framed buffers the fan-out
 * queued (a reference each, never a copy): O(1) per publish, and a replay
 * writes the same bytes the live subscribers got. Never blocks, never walks
 * more than the entries it is asked for.
 */
#ifndef WSGATE_HISTORY_H
#define WSGATE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "outq.h"

/* A channel's bounds, copied out of the configuration when its history is made. */
struct history_limits {
	unsigned size;	 /* messages kept; 0: no history */
	unsigned ttl_ms; /* how long each is kept */
};

/* What every history of one router holds, for /metrics. */
struct history_stats {
	uint64_t entries;
	uint64_t bytes; /* the kept buffers (shared with the queues that still hold them) and the rings */
	uint64_t stores;
};

struct history;

/* Called oldest first; return non-zero to stop. */
typedef int (*history_fn)(struct outmsg *msg, uint64_t seq, void *ctx);

struct history_ops {
	/*
	 * Keeps msg (a new reference) as seq, the number after the last one kept
	 * (a store that missed one forgets what it had). Drops what is over the
	 * size or older than ttl_ms at now_ms. -1: out of memory, nothing kept.
	 */
	int (*append)(struct history *h, uint64_t seq, struct outmsg *msg, uint64_t now_ms);
	/*
	 * The oldest seq still kept at now_ms (dropping what expired), 0 when
	 * none is: a client that has everything up to N can recover when
	 * oldest <= N + 1.
	 */
	uint64_t (*oldest)(struct history *h, uint64_t now_ms);
	/* Calls fn on each kept message after seq, oldest first, at most limit; returns how many. */
	size_t (*since)(struct history *h, uint64_t seq, size_t limit, history_fn fn, void *ctx);
	/* When the newest kept message expires; 0 when it keeps none. */
	uint64_t (*expires_ms)(const struct history *h);
	void (*free)(struct history *h);
};

struct history {
	const struct history_ops *ops;
	struct history_limits limits;
	struct history_stats *stats; /* shared, updated by the store */
};

/* The in-process store: a ring per channel, grown by doubling up to limits->size. NULL: out of memory. */
struct history *history_memory_new(const struct history_limits *limits, struct history_stats *stats);

/* Bytes the memory store counts for one kept message (its buffer, allocator overhead aside). */
size_t history_memory_entry_bytes(const struct outmsg *msg);

static inline int history_append(struct history *h, uint64_t seq, struct outmsg *msg, uint64_t now_ms)
{
	return h->ops->append(h, seq, msg, now_ms);
}

static inline uint64_t history_oldest(struct history *h, uint64_t now_ms)
{
	return h->ops->oldest(h, now_ms);
}

static inline size_t history_since(struct history *h, uint64_t seq, size_t limit, history_fn fn, void *ctx)
{
	return h->ops->since(h, seq, limit, fn, ctx);
}

static inline uint64_t history_expires_ms(const struct history *h)
{
	return h->ops->expires_ms(h);
}

static inline void history_free(struct history *h)
{
	if (h)
		h->ops->free(h);
}

#endif
