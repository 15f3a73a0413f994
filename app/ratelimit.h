/*
 * Per-session message rate limit: a token bucket refilled at rate per second
 * up to burst. Pure arithmetic on a millisecond clock, O(1) per message.
 */
#ifndef WSGATE_RATELIMIT_H
#define WSGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	double tokens;
	uint64_t last_ms;
	unsigned strikes; /* messages refused since the last one allowed */
};

void ratelimit_init(struct ratelimit *rl, unsigned burst, uint64_t now_ms);
/* Takes one token; false (and a strike) when the bucket is empty. */
bool ratelimit_allow(struct ratelimit *rl, unsigned rate, unsigned burst, uint64_t now_ms);

#endif
