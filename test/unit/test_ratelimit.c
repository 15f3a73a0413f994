/* ratelimit: token bucket arithmetic and strikes. */
#include "ratelimit.h"

#include "check.h"

static void test_burst_then_refusals(void)
{
	struct ratelimit rl;
	int allowed = 0;

	ratelimit_init(&rl, 10, 1000);
	for (int i = 0; i < 15; i++)
		allowed += ratelimit_allow(&rl, 5, 10, 1000);
	CHECK_EQ_INT(allowed, 10);
	CHECK_EQ_INT(rl.strikes, 5);
}

static void test_refill_at_rate(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 2, 0);
	CHECK(ratelimit_allow(&rl, 5, 2, 0));
	CHECK(ratelimit_allow(&rl, 5, 2, 0));
	CHECK(!ratelimit_allow(&rl, 5, 2, 0));
	CHECK(!ratelimit_allow(&rl, 5, 2, 100)); /* half a token at 5/s */
	CHECK(ratelimit_allow(&rl, 5, 2, 200));	 /* one token */
	CHECK_EQ_INT(rl.strikes, 0);		 /* an allowed message clears strikes */
	CHECK(ratelimit_allow(&rl, 5, 2, 10000));
	CHECK(ratelimit_allow(&rl, 5, 2, 10000));
	CHECK(!ratelimit_allow(&rl, 5, 2, 10000)); /* refill stops at burst */
}

static void test_clock_going_back_does_not_mint_tokens(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1, 5000);
	CHECK(ratelimit_allow(&rl, 1, 1, 5000));
	CHECK(!ratelimit_allow(&rl, 1, 1, 4000));
}

int main(void)
{
	RUN(test_burst_then_refusals);
	RUN(test_refill_at_rate);
	RUN(test_clock_going_back_does_not_mint_tokens);
	return check_summary();
}
