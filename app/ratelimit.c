/* Token bucket. Strikes count refusals in a row, for the close on persistent abuse. */
#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, unsigned burst, uint64_t now_ms)
{
	rl->tokens = burst;
	rl->last_ms = now_ms;
	rl->strikes = 0;
}

bool ratelimit_allow(struct ratelimit *rl, unsigned rate, unsigned burst, uint64_t now_ms)
{
	if (now_ms > rl->last_ms) {
		rl->tokens += (double)(now_ms - rl->last_ms) * rate / 1000.0;
		if (rl->tokens > burst)
			rl->tokens = burst;
		rl->last_ms = now_ms;
	}
	if (rl->tokens >= 1.0) {
		rl->tokens -= 1.0;
		rl->strikes = 0;
		return true;
	}
	rl->strikes++;
	return false;
}
