/* heartbeat: the timing wheel, the tick policy, and the per-session liveness state machine. */
#include "heartbeat.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- the wheel ---- */

struct probe {
	struct hb_timer timer;
	int fired;
	uint64_t fired_at; /* the now_ms of the advance that fired it, last time */
};

struct recorder {
	struct hb_wheel *wheel;
	uint64_t now;
	size_t calls;
	uint64_t rearm_after; /* when non-zero, the callback re-arms at now + rearm_after */
};

static void record_fire(struct hb_timer *timer, void *ctx)
{
	struct recorder *r = ctx;
	struct probe *p = container_of(timer, struct probe, timer);

	CHECK(!hb_timer_is_armed(timer)); /* disarmed before its callback */
	p->fired++;
	p->fired_at = r->now;
	r->calls++;
	if (r->rearm_after)
		hb_wheel_arm(r->wheel, timer, r->now + r->rearm_after);
}

static size_t advance_to(struct recorder *r, uint64_t now)
{
	r->now = now;
	return hb_wheel_advance(r->wheel, now, record_fire, r);
}

static void test_wheel_rounds_slots_to_a_power_of_two(void)
{
	struct hb_wheel w;

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 100, 0), 0))
		return;
	CHECK_EQ_INT(w.slot_count, 128);
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

static void test_arm_and_cancel(void)
{
	struct hb_wheel w;
	struct probe a = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	hb_wheel_arm(&w, &a.timer, 100);
	CHECK(hb_timer_is_armed(&a.timer));
	CHECK_EQ_INT(a.timer.deadline_ms, 100);
	CHECK_EQ_INT(w.armed_count, 1);

	hb_wheel_cancel(&w, &a.timer);
	CHECK(!hb_timer_is_armed(&a.timer));
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_cancel(&w, &a.timer); /* cancelling a disarmed timer is harmless */
	CHECK_EQ_INT(w.armed_count, 0);

	CHECK_EQ_INT(advance_to(&r, 1000), 0);
	CHECK_EQ_INT(a.fired, 0);
	hb_wheel_free(&w);
}

static void test_rearm_moves_the_timer(void)
{
	struct hb_wheel w;
	struct probe a = { 0 }, b = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	/* earlier */
	hb_wheel_arm(&w, &a.timer, 100);
	hb_wheel_arm(&w, &a.timer, 50);
	CHECK_EQ_INT(w.armed_count, 1);
	CHECK_EQ_INT(advance_to(&r, 40), 0);
	CHECK_EQ_INT(advance_to(&r, 50), 1);
	CHECK_EQ_INT(a.fired_at, 50);
	CHECK_EQ_INT(advance_to(&r, 200), 0);
	CHECK_EQ_INT(a.fired, 1);

	/* later */
	hb_wheel_arm(&w, &b.timer, 250);
	hb_wheel_arm(&w, &b.timer, 320);
	CHECK_EQ_INT(w.armed_count, 1);
	CHECK_EQ_INT(advance_to(&r, 310), 0);
	CHECK_EQ_INT(advance_to(&r, 320), 1);
	CHECK_EQ_INT(b.fired, 1);
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

static void test_advance_fires_exactly_the_due_timers_once(void)
{
	enum { N = 15 };
	struct hb_wheel w;
	struct probe p[N];
	struct recorder r = { .wheel = &w };

	memset(p, 0, sizeof(p));
	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	for (int i = 0; i < N; i++)
		hb_wheel_arm(&w, &p[i].timer, 10 * (uint64_t)(i + 1)); /* 10, 20, ... 150 */
	CHECK_EQ_INT(w.armed_count, N);

	CHECK_EQ_INT(advance_to(&r, 55), 5);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(p[i].fired, i < 5 ? 1 : 0);
	CHECK_EQ_INT(advance_to(&r, 55), 0); /* nothing twice */
	CHECK_EQ_INT(advance_to(&r, 100), 5);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(p[i].fired, i < 10 ? 1 : 0);
	CHECK_EQ_INT(advance_to(&r, 150), 5);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(p[i].fired, 1);
		CHECK(!hb_timer_is_armed(&p[i].timer));
	}
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

static void test_advance_tick_by_tick_fires_each_on_its_tick(void)
{
	enum { N = 40 };
	struct hb_wheel w;
	struct probe p[N];
	struct recorder r = { .wheel = &w };

	memset(p, 0, sizeof(p));
	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 8, 1000), 0))
		return;
	for (int i = 0; i < N; i++)
		hb_wheel_arm(&w, &p[i].timer, 1000 + 10 * (uint64_t)(i + 1));
	for (uint64_t now = 1000; now <= 1000 + 10 * N + 50; now += 10)
		advance_to(&r, now);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(p[i].fired, 1);
		CHECK_EQ_INT(p[i].fired_at, 1000 + 10 * (i + 1));
	}
	hb_wheel_free(&w);
}

static void test_deadline_between_ticks_fires_on_the_next_tick(void)
{
	struct hb_wheel w;
	struct probe a = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	hb_wheel_arm(&w, &a.timer, 15); /* "the first tick at or after deadline_ms": 20 */
	CHECK_EQ_INT(advance_to(&r, 10), 0);
	CHECK_EQ_INT(advance_to(&r, 20), 1);
	CHECK_EQ_INT(a.fired, 1);
	hb_wheel_free(&w);
}

static void test_deadline_beyond_one_revolution_fires_only_when_due(void)
{
	struct hb_wheel w;
	struct probe far = { 0 }, near = { 0 }, same_slot = { 0 };
	struct recorder r = { .wheel = &w };

	/* 8 slots of 10 ms: one revolution is 80 ms */
	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 8, 0), 0))
		return;
	hb_wheel_arm(&w, &near.timer, 10);
	hb_wheel_arm(&w, &same_slot.timer, 90); /* the same slot as 10, one revolution on */
	hb_wheel_arm(&w, &far.timer, 1000);	/* 12.5 revolutions on */
	uint64_t far_fired_early_at = 0;
	for (uint64_t now = 10; now < 1000; now += 10) {
		advance_to(&r, now);
		CHECK_EQ_INT(near.fired, 1);
		CHECK_EQ_INT(same_slot.fired, now >= 90 ? 1 : 0);
		if (far.fired && !far_fired_early_at)
			far_fired_early_at = now;
	}
	CHECK_EQ_INT(far_fired_early_at, 0);
	CHECK(hb_timer_is_armed(&far.timer));
	CHECK_EQ_INT(advance_to(&r, 1000), 1);
	CHECK_EQ_INT(far.fired, 1);
	CHECK_EQ_INT(far.fired_at, 1000);
	CHECK_EQ_INT(near.fired, 1);
	CHECK_EQ_INT(same_slot.fired, 1);
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

static void test_deadline_beyond_one_revolution_in_one_jump(void)
{
	struct hb_wheel w;
	struct probe far = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 8, 0), 0))
		return;
	hb_wheel_arm(&w, &far.timer, 500);
	CHECK_EQ_INT(advance_to(&r, 490), 0); /* a jump of more than a revolution, not yet due */
	CHECK(hb_timer_is_armed(&far.timer));
	CHECK_EQ_INT(advance_to(&r, 500), 1);
	hb_wheel_free(&w);
}

static void test_timer_rearmed_from_its_own_callback(void)
{
	struct hb_wheel w;
	struct probe a = { 0 };
	struct recorder r = { .wheel = &w, .rearm_after = 100 };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	hb_wheel_arm(&w, &a.timer, 100);
	for (uint64_t now = 10; now <= 1000; now += 10) {
		size_t fired = advance_to(&r, now);
		CHECK_EQ_INT(fired, now % 100 == 0 ? 1 : 0);
	}
	CHECK_EQ_INT(a.fired, 10);
	CHECK(hb_timer_is_armed(&a.timer));
	CHECK_EQ_INT(a.timer.deadline_ms, 1100);
	CHECK_EQ_INT(w.armed_count, 1);

	/* a jump far ahead: it fires once, and is re-armed past the new now */
	CHECK_EQ_INT(advance_to(&r, 5000), 1);
	CHECK_EQ_INT(a.fired, 11);
	CHECK_EQ_INT(a.timer.deadline_ms, 5100);
	CHECK_EQ_INT(advance_to(&r, 5100), 1);
	hb_wheel_free(&w);
}

static void test_long_stall_fires_everything_due(void)
{
	enum { N = 100 };
	struct hb_wheel w;
	struct probe p[N], later = { 0 };
	struct recorder r = { .wheel = &w };

	memset(p, 0, sizeof(p));
	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	for (int i = 0; i < N; i++)
		hb_wheel_arm(&w, &p[i].timer, 7 * (uint64_t)(i + 1)); /* 7 .. 700 ms, many revolutions */
	hb_wheel_arm(&w, &later.timer, 200000);

	CHECK_EQ_INT(advance_to(&r, 100000), N);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(p[i].fired, 1);
	CHECK_EQ_INT(later.fired, 0);
	CHECK_EQ_INT(w.armed_count, 1);
	CHECK_EQ_INT(advance_to(&r, 199990), 0);
	CHECK_EQ_INT(advance_to(&r, 200000), 1);
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

static void test_deadline_already_past_fires_on_the_next_tick(void)
{
	struct hb_wheel w;
	struct probe a = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 0), 0))
		return;
	advance_to(&r, 100);
	hb_wheel_arm(&w, &a.timer, 30);
	CHECK_EQ_INT(advance_to(&r, 100), 0);
	CHECK_EQ_INT(advance_to(&r, 110), 1);
	hb_wheel_free(&w);
}

static void test_clock_going_backwards_fires_nothing(void)
{
	struct hb_wheel w;
	struct probe a = { 0 };
	struct recorder r = { .wheel = &w };

	if (!CHECK_EQ_INT(hb_wheel_init(&w, 10, 16, 1000), 0))
		return;
	hb_wheel_arm(&w, &a.timer, 1050);
	CHECK_EQ_INT(advance_to(&r, 500), 0);
	CHECK_EQ_INT(advance_to(&r, 1050), 1);
	hb_wheel_free(&w);
}

static void test_tick_for_policy_bounds(void)
{
	CHECK_EQ_INT(hb_tick_ms_for(25000, 10000), 50); /* the default policy */
	CHECK_EQ_INT(hb_tick_ms_for(1000, 500), 50);	/* a tenth of the shorter */
	CHECK_EQ_INT(hb_tick_ms_for(500, 1000), 50);
	CHECK_EQ_INT(hb_tick_ms_for(100, 100), 10); /* never below 10 ms */
	CHECK_EQ_INT(hb_tick_ms_for(100, 600000), 10);
	CHECK_EQ_INT(hb_tick_ms_for(0, 0), 10);
	CHECK_EQ_INT(hb_tick_ms_for(3600000, 600000), 50); /* never above 50 ms */
	for (unsigned interval = 100; interval <= 3600000; interval *= 3)
		for (unsigned timeout = 100; timeout <= 600000; timeout *= 3) {
			unsigned tick = hb_tick_ms_for(interval, timeout);
			CHECK(tick >= 10 && tick <= 50);
		}
}

/* ---- the heartbeat state machine ---- */

struct peer {
	struct hb_session hb;
	int pings, rearms, timeouts;
	uint64_t last_ping_at, timed_out_at;
};

struct driver {
	struct hb_wheel wheel;
	struct hb_policy policy;
	uint64_t now;
};

static void on_due(struct hb_timer *timer, void *ctx)
{
	struct driver *d = ctx;
	struct peer *p = container_of(timer, struct peer, hb.timer);

	switch (heartbeat_on_due(&d->wheel, &p->hb, &d->policy, d->now)) {
	case HB_REARMED:
		p->rearms++;
		break;
	case HB_SEND_PING:
		p->pings++;
		p->last_ping_at = d->now;
		break;
	case HB_TIMED_OUT:
		p->timeouts++;
		p->timed_out_at = d->now;
		break;
	}
}

/* Advances tick by tick (as the server's periodic tick does) up to now. */
static void run_until(struct driver *d, uint64_t now)
{
	uint64_t tick = d->wheel.tick_ms;

	for (uint64_t t = (d->now / tick + 1) * tick; t <= now; t += tick) {
		d->now = t;
		hb_wheel_advance(&d->wheel, t, on_due, d);
	}
	d->now = now;
}

/* interval 1000 ms, timeout 500 ms, a 10 ms tick, a peer started at 0 */
static bool driver_start(struct driver *d, struct peer *p)
{
	memset(d, 0, sizeof(*d));
	memset(p, 0, sizeof(*p));
	d->policy.interval_ms = 1000;
	d->policy.timeout_ms = 500;
	if (!CHECK_EQ_INT(hb_wheel_init(&d->wheel, 10, 64, 0), 0))
		return false;
	heartbeat_start(&d->wheel, &p->hb, &d->policy, 0);
	return true;
}

static void test_start_arms_for_the_interval(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	CHECK(hb_timer_is_armed(&p.hb.timer));
	CHECK_EQ_INT(p.hb.timer.deadline_ms, 1000);
	CHECK(!p.hb.is_awaiting_pong);
	hb_wheel_free(&d.wheel);
}

static void test_idle_peer_gets_a_ping_at_the_interval(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	run_until(&d, 990);
	CHECK_EQ_INT(p.pings, 0);
	run_until(&d, 1000);
	CHECK_EQ_INT(p.pings, 1);
	CHECK_EQ_INT(p.last_ping_at, 1000);
	CHECK(p.hb.is_awaiting_pong);
	CHECK_EQ_INT(p.hb.ping_sent_ms, 1000);
	CHECK(hb_timer_is_armed(&p.hb.timer));
	CHECK_EQ_INT(p.hb.timer.deadline_ms, 1500);
	hb_wheel_free(&d.wheel);
}

static void test_frame_after_the_ping_rearms(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	run_until(&d, 1200);
	CHECK_EQ_INT(p.pings, 1);
	heartbeat_seen(&p.hb, 1200); /* the pong */
	run_until(&d, 1500);
	CHECK_EQ_INT(p.timeouts, 0);
	CHECK_EQ_INT(p.rearms, 1);
	CHECK(!p.hb.is_awaiting_pong);
	CHECK(hb_timer_is_armed(&p.hb.timer));
	CHECK_EQ_INT(p.hb.timer.deadline_ms, 2200);
	run_until(&d, 2190);
	CHECK_EQ_INT(p.pings, 1);
	run_until(&d, 2200);
	CHECK_EQ_INT(p.pings, 2);
	CHECK_EQ_INT(p.last_ping_at, 2200);
	hb_wheel_free(&d.wheel);
}

static void test_frame_just_before_the_timeout_saves_the_session(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	run_until(&d, 1490);
	heartbeat_seen(&p.hb, 1499);
	run_until(&d, 1500);
	CHECK_EQ_INT(p.timeouts, 0);
	CHECK_EQ_INT(p.rearms, 1);
	hb_wheel_free(&d.wheel);
}

static void test_silent_peer_times_out_at_ping_plus_timeout(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	run_until(&d, 1490);
	CHECK_EQ_INT(p.pings, 1);
	CHECK_EQ_INT(p.timeouts, 0);
	run_until(&d, 1500);
	CHECK_EQ_INT(p.timeouts, 1);
	CHECK_EQ_INT(p.timed_out_at, 1500);
	CHECK(!hb_timer_is_armed(&p.hb.timer)); /* a timed-out session is not re-armed */
	CHECK_EQ_INT(d.wheel.armed_count, 0);
	run_until(&d, 10000);
	CHECK_EQ_INT(p.pings, 1);
	CHECK_EQ_INT(p.timeouts, 1);
	hb_wheel_free(&d.wheel);
}

static void test_frame_in_the_interval_pushes_the_ping_later(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	run_until(&d, 600);
	heartbeat_seen(&p.hb, 600); /* only a timestamp: the timer stays at 1000 */
	CHECK_EQ_INT(p.hb.timer.deadline_ms, 1000);
	run_until(&d, 1000);
	CHECK_EQ_INT(p.pings, 0);
	CHECK_EQ_INT(p.rearms, 1);
	CHECK_EQ_INT(p.hb.timer.deadline_ms, 1600);
	run_until(&d, 1590);
	CHECK_EQ_INT(p.pings, 0);
	run_until(&d, 1600);
	CHECK_EQ_INT(p.pings, 1);
	CHECK_EQ_INT(p.last_ping_at, 1600);
	hb_wheel_free(&d.wheel);
}

static void test_busy_peer_is_never_pinged(void)
{
	struct driver d;
	struct peer p;

	if (!driver_start(&d, &p))
		return;
	for (uint64_t t = 300; t <= 20000; t += 300) {
		run_until(&d, t);
		heartbeat_seen(&p.hb, t);
	}
	CHECK_EQ_INT(p.pings, 0);
	CHECK_EQ_INT(p.timeouts, 0);
	CHECK(p.rearms > 0 && p.rearms < 30); /* about one re-arm per interval, not one per frame (66) */
	hb_wheel_free(&d.wheel);
}

static void test_many_silent_peers_time_out_on_time(void)
{
	enum { N = 1000 };
	struct driver d;
	struct peer *peers = calloc(N, sizeof(*peers));
	int late_pings = 0, late_timeouts = 0, missing = 0;

	if (!CHECK(peers != NULL))
		return;
	memset(&d, 0, sizeof(d));
	d.policy.interval_ms = 1000;
	d.policy.timeout_ms = 500;
	unsigned tick = hb_tick_ms_for(d.policy.interval_ms, d.policy.timeout_ms);
	if (!CHECK_EQ_INT(hb_wheel_init(&d.wheel, tick, 256, 0), 0)) {
		free(peers);
		return;
	}
	/* one peer starting every millisecond */
	for (int i = 0; i < N; i++) {
		run_until(&d, (uint64_t)i);
		heartbeat_start(&d.wheel, &peers[i].hb, &d.policy, (uint64_t)i);
	}
	run_until(&d, 5000);
	for (int i = 0; i < N; i++) {
		struct peer *p = &peers[i];
		if (p->pings != 1 || p->timeouts != 1) {
			missing++;
			continue;
		}
		if (p->last_ping_at < (uint64_t)i + 1000 || p->last_ping_at >= (uint64_t)i + 1000 + tick)
			late_pings++;
		if (p->timed_out_at < p->last_ping_at + 500 || p->timed_out_at >= p->last_ping_at + 500 + tick)
			late_timeouts++;
	}
	CHECK_EQ_INT(missing, 0);
	CHECK_EQ_INT(late_pings, 0);
	CHECK_EQ_INT(late_timeouts, 0);
	CHECK_EQ_INT(d.wheel.armed_count, 0);
	hb_wheel_free(&d.wheel);
	free(peers);
}

static void test_pong_brings_the_next_ping_to_one_interval(void)
{
	struct hb_wheel wheel;
	struct hb_session s;
	struct hb_policy policy = { 500, 1000 };

	memset(&s, 0, sizeof(s));
	if (!CHECK_EQ_INT(hb_wheel_init(&wheel, 10, 64, 0), 0))
		return;
	heartbeat_start(&wheel, &s, &policy, 0);
	CHECK_EQ_INT(heartbeat_on_due(&wheel, &s, &policy, 500), HB_SEND_PING);
	CHECK_EQ_INT(s.timer.deadline_ms, 1500);
	heartbeat_pong(&wheel, &s, &policy, 520);
	CHECK(!s.is_awaiting_pong);
	CHECK_EQ_INT(s.timer.deadline_ms, 1020); /* one interval after the pong, not the timeout */
	CHECK_EQ_INT(heartbeat_on_due(&wheel, &s, &policy, 1020), HB_SEND_PING);
	heartbeat_pong(&wheel, &s, &policy, 1030);
	CHECK_EQ_INT(s.timer.deadline_ms, 1030 + 500);
	/* an unsolicited pong is liveness but moves no timer */
	heartbeat_pong(&wheel, &s, &policy, 1040);
	CHECK_EQ_INT(s.last_rx_ms, 1040);
	CHECK_EQ_INT(s.timer.deadline_ms, 1030 + 500);
	hb_wheel_cancel(&wheel, &s.timer);
	hb_wheel_free(&wheel);
}

static void test_timeout_counts_from_when_the_ping_was_due(void)
{
	struct hb_wheel wheel;
	struct hb_session s;
	struct hb_policy policy = { 1000, 1000 };

	memset(&s, 0, sizeof(s));
	if (!CHECK_EQ_INT(hb_wheel_init(&wheel, 50, 64, 0), 0))
		return;
	heartbeat_start(&wheel, &s, &policy, 0);
	/* the tick that notices the idle deadline comes 40 ms late */
	CHECK_EQ_INT(heartbeat_on_due(&wheel, &s, &policy, 1040), HB_SEND_PING);
	CHECK_EQ_INT(s.timer.deadline_ms, 2000); /* 1000 + 1000, not 1040 + 1000 */
	CHECK_EQ_INT(heartbeat_on_due(&wheel, &s, &policy, 2000), HB_TIMED_OUT);

	/* after a long stall the peer still gets half a timeout to answer */
	heartbeat_start(&wheel, &s, &policy, 10000);
	CHECK_EQ_INT(heartbeat_on_due(&wheel, &s, &policy, 14000), HB_SEND_PING);
	CHECK_EQ_INT(s.timer.deadline_ms, 14000 - 500 + 1000);
	hb_wheel_cancel(&wheel, &s.timer);
	hb_wheel_free(&wheel);
}

/* A retick keeps every armed timer: each fires once, at its deadline's tick under the new tick. */
static void test_retick_keeps_deadlines(void)
{
	struct hb_wheel w;
	struct probe p[5];
	struct recorder r = { &w, 0, 0, 0 };
	const uint64_t deadlines[5] = { 1040, 1100, 1555, 9000, 70000 };

	memset(p, 0, sizeof(p));
	if (!CHECK_EQ_INT(hb_wheel_init(&w, 50, 64, 1000), 0))
		return;
	for (int i = 0; i < 5; i++)
		hb_wheel_arm(&w, &p[i].timer, deadlines[i]);
	advance_to(&r, 1020);
	hb_wheel_retick(&w, 10, 1020);
	CHECK_EQ_INT(w.tick_ms, 10);
	CHECK_EQ_INT(w.armed_count, 5);
	advance_to(&r, 1039);
	CHECK_EQ_INT(p[0].fired, 0);
	advance_to(&r, 1040);
	CHECK_EQ_INT(p[0].fired, 1);
	advance_to(&r, 1560);
	CHECK_EQ_INT(p[1].fired, 1);
	CHECK_EQ_INT(p[2].fired, 1);
	CHECK_EQ_INT(p[2].fired_at, 1560);
	CHECK_EQ_INT(p[3].fired, 0);
	hb_wheel_retick(&w, 50, 1560);
	for (uint64_t now = 1600; now <= 71000; now += 50)
		advance_to(&r, now);
	CHECK_EQ_INT(p[3].fired, 1);
	CHECK_EQ_INT(p[3].fired_at, 9000);
	CHECK_EQ_INT(p[4].fired, 1);
	CHECK_EQ_INT(p[4].fired_at, 70000);
	CHECK_EQ_INT(r.calls, 5);
	CHECK_EQ_INT(w.armed_count, 0);
	hb_wheel_free(&w);
}

int main(void)
{
	RUN(test_retick_keeps_deadlines);
	RUN(test_timeout_counts_from_when_the_ping_was_due);
	RUN(test_pong_brings_the_next_ping_to_one_interval);
	RUN(test_wheel_rounds_slots_to_a_power_of_two);
	RUN(test_arm_and_cancel);
	RUN(test_rearm_moves_the_timer);
	RUN(test_advance_fires_exactly_the_due_timers_once);
	RUN(test_advance_tick_by_tick_fires_each_on_its_tick);
	RUN(test_deadline_between_ticks_fires_on_the_next_tick);
	RUN(test_deadline_beyond_one_revolution_fires_only_when_due);
	RUN(test_deadline_beyond_one_revolution_in_one_jump);
	RUN(test_timer_rearmed_from_its_own_callback);
	RUN(test_long_stall_fires_everything_due);
	RUN(test_deadline_already_past_fires_on_the_next_tick);
	RUN(test_clock_going_backwards_fires_nothing);
	RUN(test_tick_for_policy_bounds);
	RUN(test_start_arms_for_the_interval);
	RUN(test_idle_peer_gets_a_ping_at_the_interval);
	RUN(test_frame_after_the_ping_rearms);
	RUN(test_frame_just_before_the_timeout_saves_the_session);
	RUN(test_silent_peer_times_out_at_ping_plus_timeout);
	RUN(test_frame_in_the_interval_pushes_the_ping_later);
	RUN(test_busy_peer_is_never_pinged);
	RUN(test_many_silent_peers_time_out_on_time);
	return check_summary();
}
