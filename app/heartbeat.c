/*
 * Timing wheel and the per-session heartbeat state machine. The wheel holds
 * absolute deadlines; an entry whose deadline lies more than one revolution
 * ahead simply stays in its slot until the wheel comes round to it again.
 */
#include "heartbeat.h"

#include <stdlib.h>

static void list_init(struct hb_timer *head)
{
	head->prev = head->next = head;
}

static void list_unlink(struct hb_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

static void list_append(struct hb_timer *head, struct hb_timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

int hb_wheel_init(struct hb_wheel *wheel, unsigned tick_ms, size_t slot_count, uint64_t now_ms)
{
	size_t n = 1;

	while (n < slot_count)
		n <<= 1;
	wheel->slots = calloc(n, sizeof(*wheel->slots));
	if (!wheel->slots)
		return -1;
	for (size_t i = 0; i < n; i++)
		list_init(&wheel->slots[i]);
	wheel->slot_count = n;
	wheel->tick_ms = tick_ms ? tick_ms : 1;
	wheel->current_tick = now_ms / wheel->tick_ms;
	wheel->armed_count = 0;
	return 0;
}

void hb_wheel_free(struct hb_wheel *wheel)
{
	free(wheel->slots);
	wheel->slots = NULL;
}

void hb_wheel_arm(struct hb_wheel *wheel, struct hb_timer *timer, uint64_t deadline_ms)
{
	uint64_t tick = (deadline_ms + wheel->tick_ms - 1) / wheel->tick_ms;

	if (hb_timer_is_armed(timer))
		list_unlink(timer);
	else
		wheel->armed_count++;
	/* a deadline already past fires on the next tick, never in a processed slot */
	if (tick <= wheel->current_tick)
		tick = wheel->current_tick + 1;
	timer->deadline_ms = deadline_ms;
	list_append(&wheel->slots[tick & (wheel->slot_count - 1)], timer);
}

void hb_wheel_cancel(struct hb_wheel *wheel, struct hb_timer *timer)
{
	if (!hb_timer_is_armed(timer))
		return;
	list_unlink(timer);
	wheel->armed_count--;
}

void hb_wheel_retick(struct hb_wheel *wheel, unsigned tick_ms, uint64_t now_ms)
{
	struct hb_timer pending;

	list_init(&pending);
	for (size_t i = 0; i < wheel->slot_count; i++) {
		struct hb_timer *slot = &wheel->slots[i];
		while (slot->next != slot) {
			struct hb_timer *t = slot->next;
			list_unlink(t);
			list_append(&pending, t);
		}
	}
	wheel->tick_ms = tick_ms ? tick_ms : 1;
	/* ticks before now were processed under the old tick: none is fired twice or skipped */
	wheel->current_tick = now_ms / wheel->tick_ms;
	wheel->armed_count = 0;
	while (pending.next != &pending) {
		struct hb_timer *t = pending.next;
		list_unlink(t); /* unlinked is unarmed: hb_wheel_arm counts it again */
		hb_wheel_arm(wheel, t, t->deadline_ms);
	}
}

size_t hb_wheel_advance(struct hb_wheel *wheel, uint64_t now_ms, hb_fire_fn fire, void *ctx)
{
	uint64_t now_tick = now_ms / wheel->tick_ms;
	uint64_t steps = now_tick > wheel->current_tick ? now_tick - wheel->current_tick : 0;
	size_t fired = 0;

	/* after a long stall one revolution visits every slot */
	if (steps > wheel->slot_count)
		steps = wheel->slot_count;
	for (uint64_t i = 0; i < steps; i++) {
		struct hb_timer pending, *slot;

		wheel->current_tick = now_tick - steps + i + 1;
		slot = &wheel->slots[wheel->current_tick & (wheel->slot_count - 1)];
		if (slot->next == slot)
			continue;
		/* detach the slot so callbacks that re-arm cannot loop us */
		pending.next = slot->next;
		pending.prev = slot->prev;
		pending.next->prev = &pending;
		pending.prev->next = &pending;
		list_init(slot);
		while (pending.next != &pending) {
			struct hb_timer *t = pending.next;
			list_unlink(t);
			if (t->deadline_ms > now_ms) {
				list_append(slot, t); /* due in a later revolution */
				continue;
			}
			wheel->armed_count--;
			fired++;
			fire(t, ctx);
		}
	}
	wheel->current_tick = now_tick;
	return fired;
}

unsigned hb_tick_ms_for(unsigned interval_ms, unsigned timeout_ms)
{
	unsigned shortest = interval_ms < timeout_ms ? interval_ms : timeout_ms;
	unsigned tick = shortest / 10;

	if (tick < 10)
		tick = 10;
	if (tick > 50)
		tick = 50;
	return tick;
}

void heartbeat_start(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p, uint64_t now_ms)
{
	s->last_rx_ms = now_ms;
	s->is_awaiting_pong = false;
	hb_wheel_arm(wheel, &s->timer, now_ms + p->interval_ms);
}

void heartbeat_pong(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p, uint64_t now_ms)
{
	s->last_rx_ms = now_ms;
	if (!s->is_awaiting_pong)
		return; /* unsolicited: liveness only, the timer already points at the next ping */
	s->is_awaiting_pong = false;
	hb_wheel_arm(wheel, &s->timer, now_ms + p->interval_ms);
}

enum hb_action heartbeat_on_due(struct hb_wheel *wheel, struct hb_session *s, const struct hb_policy *p,
				uint64_t now_ms)
{
	if (s->is_awaiting_pong) {
		if (s->last_rx_ms < s->ping_sent_ms)
			return HB_TIMED_OUT;
		s->is_awaiting_pong = false;
	}
	uint64_t idle_deadline = s->last_rx_ms + p->interval_ms;
	if (idle_deadline > now_ms) {
		hb_wheel_arm(wheel, &s->timer, idle_deadline);
		return HB_REARMED;
	}
	s->is_awaiting_pong = true;
	s->ping_sent_ms = now_ms;
	/*
	 * The verdict is due timeout_ms after the ping was due, not after the
	 * tick that noticed it, so a dead peer is found within interval +
	 * timeout + one tick. After a stall, the peer still gets half a timeout.
	 */
	uint64_t base = idle_deadline + p->timeout_ms / 2 >= now_ms ? idle_deadline : now_ms - p->timeout_ms / 2;
	hb_wheel_arm(wheel, &s->timer, base + p->timeout_ms);
	return HB_SEND_PING;
}
