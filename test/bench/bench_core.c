/*
 * In-process benchmark of the per-session structures: registry lookups and
 * heartbeat wheel re-arms and ticks at growing session counts. It prints
 * nanoseconds per operation; flat numbers from 1k to 1M sessions are the
 * evidence that no per-session work scans all sessions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heartbeat.h"
#include "registry.h"

struct fake_session {
	struct registry_entry entry;
	struct hb_session hb;
	char user[24];
	char device[24];
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void count_fire(struct hb_timer *t, void *ctx)
{
	(void)t;
	(*(size_t *)ctx)++;
}

static int run(size_t n)
{
	struct fake_session *s = calloc(n, sizeof(*s));
	struct registry reg;
	struct hb_wheel wheel;
	struct hb_policy policy = { 25000, 10000 };
	size_t fired = 0, found = 0;
	double t0, t1, t2, t3, t4;

	if (!s || registry_init(&reg, 16) || hb_wheel_init(&wheel, 100, 1024, 0))
		return -1;
	for (size_t i = 0; i < n; i++) {
		snprintf(s[i].user, sizeof(s[i].user), "u%zu", i);
		snprintf(s[i].device, sizeof(s[i].device), "d%zu", i % 7);
		s[i].entry.user = s[i].user;
		s[i].entry.device = s[i].device;
	}
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		if (registry_add(&reg, &s[i].entry))
			return -1;
	t1 = now_ns();
	for (size_t i = 0; i < n; i++)
		found += registry_find(&reg, s[(i * 7919) % n].user, s[(i * 7919) % n].device) != NULL;
	t2 = now_ns();
	/* spread the sessions' deadlines over one interval, as real arrivals do */
	for (size_t i = 0; i < n; i++)
		heartbeat_start(&wheel, &s[i].hb, &policy, (uint64_t)(i % 25000));
	t3 = now_ns();
	/* one full interval of 100 ms ticks: every session comes due once */
	for (uint64_t ms = 100; ms <= 25000 + 25000; ms += 100)
		hb_wheel_advance(&wheel, ms, count_fire, &fired);
	t4 = now_ns();
	printf("sessions=%-8zu registry_add_ns=%6.1f registry_find_ns=%6.1f wheel_arm_ns=%6.1f "
	       "wheel_due_ns_per_session=%6.1f found=%zu fired=%zu\n",
	       n, (t1 - t0) / (double)n, (t2 - t1) / (double)n, (t3 - t2) / (double)n, (t4 - t3) / (double)n, found,
	       fired);
	for (size_t i = 0; i < n; i++)
		registry_remove(&reg, &s[i].entry);
	registry_free(&reg);
	hb_wheel_free(&wheel);
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;

	for (size_t n = 1000; n <= max; n *= 10)
		if (run(n))
			return 1;
	return 0;
}
