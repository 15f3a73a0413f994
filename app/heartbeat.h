/*
 * Heartbeat scheduling on a hashed timing wheel. One periodic tick advances the
 * wheel; arming, re-arming and cancelling a session's deadline are O(1), and a
 * received frame only stores a timestamp, so liveness costs the same with ten
 * sessions or a million. lws's own timers sort on insert (O(n)): not used here.
 */
#ifndef WSGATE_HEARTBEAT_H
#define WSGATE_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A deadline on the wheel; zeroed, it is not armed. */
struct hb_timer {
	struct hb_timer *prev, *next; /* NULL when not armed */
	uint64_t deadline_ms;
};

static inline bool hb_timer_is_armed(const struct hb_timer *t)
{
	return t->next != NULL;
}

struct hb_wheel {
	struct hb_timer *slots; /* sentinel heads of circular lists */
	size_t slot_count;	/* a power of two */
	unsigned tick_ms;
	uint64_t current_tick; /* every slot up to this tick has been processed */
	size_t armed_count;
};

int hb_wheel_init(struct hb_wheel *wheel, unsigned tick_ms, size_t slot_count, uint64_t now_ms);
void hb_wheel_free(struct hb_wheel *wheel);

/* Arms (or moves) timer to fire at the first tick at or after deadline_ms. */
void hb_wheel_arm(struct hb_wheel *wheel, struct hb_timer *timer, uint64_t deadline_ms);
void hb_wheel_cancel(struct hb_wheel *wheel, struct hb_timer *timer);

/*
 * Changes the tick (a reload that changes the heartbeat policy), keeping every
 * armed timer and its deadline: O(slots + armed), a whole-server event.
 */
void hb_wheel_retick(struct hb_wheel *wheel, unsigned tick_ms, uint64_t now_ms);

typedef void (*hb_fire_fn)(struct hb_timer *timer, void *ctx);

/*
 * Processes every tick up to now_ms and fires, once each, the timers whose
 * tick has come (a deadline between ticks fires at the tick after it, never
 * early). A timer is disarmed before its callback, which may re-arm it.
 * Returns how many fired.
 */
size_t hb_wheel_advance(struct hb_wheel *wheel, uint64_t now_ms, hb_fire_fn fire, void *ctx);

/* The tick for a heartbeat policy: fine enough to detect a dead peer within ~1% late. */
unsigned hb_tick_ms_for(unsigned interval_ms, unsigned timeout_ms);

/* One session's liveness, driven by the wheel. */
struct hb_session {
	struct hb_timer timer;
	uint64_t last_rx_ms;
	uint64_t ping_sent_ms;
	bool is_awaiting_pong;
};

enum hb_action {
	HB_REARMED,   /* the peer was heard from in time; nothing to send */
	HB_SEND_PING, /* idle for interval_ms: send a ping now */
	HB_TIMED_OUT, /* no answer within timeout_ms of the ping: close 4100 */
};

struct hb_policy {
	unsigned interval_ms;
	unsigned timeout_ms;
};

void heartbeat_start(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p, uint64_t now_ms);

/* Any frame from the peer: O(1), no timer work. */
static inline void heartbeat_seen(struct hb_session *s, uint64_t now_ms)
{
	s->last_rx_ms = now_ms;
}

/*
 * A pong: when it answers our ping, the next ping is due interval_ms from
 * now, not when the ping's timeout would have expired. O(1).
 */
void heartbeat_pong(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p, uint64_t now_ms);

/* Decides what a due session needs and re-arms its timer unless it timed out. */
enum hb_action heartbeat_on_due(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p,
				uint64_t now_ms);

#endif
