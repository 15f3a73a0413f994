/* addrcount: sessions per client address, counted up and down, forgotten at zero. */
#include "addrcount.h"

#include <stdio.h>

#include "check.h"

static void test_counts_per_address(void)
{
	struct addrcount ac;

	if (!CHECK_EQ_INT(addrcount_init(&ac), 0))
		return;
	CHECK_EQ_INT(addrcount_get(&ac, "127.0.0.1"), 0);
	CHECK_EQ_INT(addrcount_add(&ac, "127.0.0.1"), 0);
	CHECK_EQ_INT(addrcount_add(&ac, "127.0.0.1"), 0);
	CHECK_EQ_INT(addrcount_add(&ac, "::1"), 0);
	CHECK_EQ_INT(addrcount_get(&ac, "127.0.0.1"), 2);
	CHECK_EQ_INT(addrcount_get(&ac, "::1"), 1);
	CHECK_EQ_INT(addrcount_get(&ac, "127.0.0.2"), 0);
	addrcount_remove(&ac, "127.0.0.1");
	CHECK_EQ_INT(addrcount_get(&ac, "127.0.0.1"), 1);
	addrcount_remove(&ac, "127.0.0.1");
	CHECK_EQ_INT(addrcount_get(&ac, "127.0.0.1"), 0);
	CHECK_EQ_INT(ac.table.count, 1); /* forgotten at zero: only ::1 is left */
	addrcount_remove(&ac, "never-seen");
	addrcount_free(&ac);
}

static void test_many_addresses(void)
{
	struct addrcount ac;
	char addr[32];

	if (!CHECK_EQ_INT(addrcount_init(&ac), 0))
		return;
	for (int i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		CHECK_EQ_INT(addrcount_add(&ac, addr), 0);
	}
	CHECK_EQ_INT(ac.table.count, 20000);
	CHECK_EQ_INT(addrcount_get(&ac, "10.0.39.15"), 1);
	addrcount_free(&ac); /* leaves nothing behind for LeakSanitizer */
}

int main(void)
{
	RUN(test_counts_per_address);
	RUN(test_many_addresses);
	return check_summary();
}
