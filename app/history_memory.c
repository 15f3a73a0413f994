/*
 * The memory history: a ring of (seq, time, buffer) per channel. Seqs in the
 * ring are consecutive, so the entry for a seq is found by subtraction. The
 * ring starts small and doubles up to the channel's size, so a quiet channel
 * costs a few slots, not size of them.
 */
#include <stdlib.h>
#include <string.h>

#include "history.h"

#define RING_FIRST_CAP 4

struct slot {
	struct outmsg *msg;
	uint64_t seq;
	uint64_t ts_ms;
};

struct memory_history {
	struct history base;
	struct slot *slots;
	size_t cap, head, count; /* head: the oldest */
};

#define MEMORY_OF(h) ((struct memory_history *)(h))

size_t history_memory_entry_bytes(const struct outmsg *msg)
{
	return sizeof(*msg) + OUTQ_HEADROOM + msg->len;
}

static struct slot *at(struct memory_history *m, size_t i)
{
	return &m->slots[(m->head + i) & (m->cap - 1)];
}

static void drop_oldest(struct memory_history *m)
{
	struct slot *s = at(m, 0);

	m->base.stats->entries--;
	m->base.stats->bytes -= history_memory_entry_bytes(s->msg);
	outmsg_unref(s->msg);
	s->msg = NULL;
	m->head = (m->head + 1) & (m->cap - 1);
	m->count--;
}

static void drop_expired(struct memory_history *m, uint64_t now_ms)
{
	while (m->count && at(m, 0)->ts_ms + m->base.limits.ttl_ms <= now_ms)
		drop_oldest(m);
}

/* Doubles the ring (cap stays a power of two), unwrapping it. */
static int grow(struct memory_history *m)
{
	size_t cap = m->cap ? m->cap * 2 : RING_FIRST_CAP;
	struct slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < m->count; i++)
		slots[i] = *at(m, i);
	free(m->slots);
	m->base.stats->bytes += (cap - m->cap) * sizeof(*slots);
	m->slots = slots;
	m->cap = cap;
	m->head = 0;
	return 0;
}

static int memory_append(struct history *h, uint64_t seq, struct outmsg *msg, uint64_t now_ms)
{
	struct memory_history *m = MEMORY_OF(h);

	drop_expired(m, now_ms);
	if (m->count && at(m, m->count - 1)->seq + 1 != seq)
		while (m->count)
			drop_oldest(m); /* a seq was missed: what is kept no longer joins up */
	if (m->count == h->limits.size)
		drop_oldest(m);
	if (m->count == m->cap && grow(m))
		return -1;
	struct slot *s = at(m, m->count++);
	s->msg = outmsg_ref(msg);
	s->seq = seq;
	s->ts_ms = now_ms;
	h->stats->entries++;
	h->stats->bytes += history_memory_entry_bytes(msg);
	return 0;
}

static uint64_t memory_oldest(struct history *h, uint64_t now_ms)
{
	struct memory_history *m = MEMORY_OF(h);

	drop_expired(m, now_ms);
	return m->count ? at(m, 0)->seq : 0;
}

static size_t memory_since(struct history *h, uint64_t seq, size_t limit, history_fn fn, void *ctx)
{
	struct memory_history *m = MEMORY_OF(h);
	size_t i = 0, n = 0;

	if (!m->count || seq >= at(m, m->count - 1)->seq)
		return 0;
	if (seq >= at(m, 0)->seq)
		i = (size_t)(seq - at(m, 0)->seq) + 1;
	for (; i < m->count && n < limit; i++) {
		struct slot *s = at(m, i);
		n++;
		if (fn(s->msg, s->seq, ctx))
			break;
	}
	return n;
}

static uint64_t memory_expires_ms(const struct history *h)
{
	const struct memory_history *m = (const struct memory_history *)h;

	if (!m->count)
		return 0;
	return m->slots[(m->head + m->count - 1) & (m->cap - 1)].ts_ms + h->limits.ttl_ms;
}

static void memory_free(struct history *h)
{
	struct memory_history *m = MEMORY_OF(h);

	while (m->count)
		drop_oldest(m);
	h->stats->bytes -= m->cap * sizeof(*m->slots) + sizeof(*m);
	h->stats->stores--;
	free(m->slots);
	free(m);
}

static const struct history_ops memory_ops = {
	.append = memory_append,
	.oldest = memory_oldest,
	.since = memory_since,
	.expires_ms = memory_expires_ms,
	.free = memory_free,
};

struct history *history_memory_new(const struct history_limits *limits, struct history_stats *stats)
{
	struct memory_history *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->base.ops = &memory_ops;
	m->base.limits = *limits;
	m->base.stats = stats;
	stats->stores++;
	stats->bytes += sizeof(*m);
	return &m->base;
}
