/* registry: the (user, device) hash table of sessions and its oldest-first list. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* A stand-in for a session: the entry lives inside it, as in the server. */
struct fake_session {
	char user[32];
	char device[32];
	struct registry_entry entry;
};

static void fake_init(struct fake_session *s, const char *user, const char *device)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->user, sizeof(s->user), "%s", user);
	snprintf(s->device, sizeof(s->device), "%s", device);
	s->entry.user = s->user;
	s->entry.device = s->device;
}

static void test_empty_registry(void)
{
	struct registry reg;

	if (!CHECK_EQ_INT(registry_init(&reg, 0), 0))
		return;
	CHECK_EQ_INT(registry_count(&reg), 0);
	CHECK(registry_first(&reg) == NULL);
	CHECK(registry_find(&reg, "alice", "") == NULL);
	registry_free(&reg);
}

static void test_add_find_remove(void)
{
	struct registry reg;
	struct fake_session a, b;

	if (!CHECK_EQ_INT(registry_init(&reg, 4), 0))
		return;
	fake_init(&a, "alice", "phone");
	fake_init(&b, "alice", "");
	CHECK_EQ_INT(registry_add(&reg, &a.entry), 0);
	CHECK_EQ_INT(registry_add(&reg, &b.entry), 0);
	CHECK_EQ_INT(registry_count(&reg), 2);
	CHECK(a.entry.is_registered);

	CHECK(registry_find(&reg, "alice", "phone") == &a.entry);
	CHECK(registry_find(&reg, "alice", "") == &b.entry);
	CHECK(registry_find(&reg, "alice", "laptop") == NULL);
	CHECK(registry_find(&reg, "bob", "phone") == NULL);
	CHECK(registry_find(&reg, "Alice", "phone") == NULL);

	registry_remove(&reg, &a.entry);
	CHECK(!a.entry.is_registered);
	CHECK_EQ_INT(registry_count(&reg), 1);
	CHECK(registry_find(&reg, "alice", "phone") == NULL);
	CHECK(registry_find(&reg, "alice", "") == &b.entry);

	registry_remove(&reg, &b.entry);
	CHECK_EQ_INT(registry_count(&reg), 0);
	CHECK(registry_first(&reg) == NULL);
	registry_free(&reg);
}

static void test_duplicate_key_is_rejected(void)
{
	struct registry reg;
	struct fake_session first, second;

	if (!CHECK_EQ_INT(registry_init(&reg, 4), 0))
		return;
	fake_init(&first, "alice", "phone");
	fake_init(&second, "alice", "phone");
	CHECK_EQ_INT(registry_add(&reg, &first.entry), 0);
	CHECK_EQ_INT(registry_add(&reg, &second.entry), -1);
	CHECK(!second.entry.is_registered);
	CHECK_EQ_INT(registry_count(&reg), 1);
	CHECK(registry_find(&reg, "alice", "phone") == &first.entry);

	/* the key is free again once the first session leaves */
	registry_remove(&reg, &first.entry);
	CHECK_EQ_INT(registry_add(&reg, &second.entry), 0);
	CHECK(registry_find(&reg, "alice", "phone") == &second.entry);
	registry_free(&reg);
}

static void test_adding_the_same_entry_twice_is_rejected(void)
{
	struct registry reg;
	struct fake_session a;

	if (!CHECK_EQ_INT(registry_init(&reg, 4), 0))
		return;
	fake_init(&a, "alice", "phone");
	CHECK_EQ_INT(registry_add(&reg, &a.entry), 0);
	CHECK_EQ_INT(registry_add(&reg, &a.entry), -1);
	CHECK_EQ_INT(registry_count(&reg), 1);
	registry_remove(&reg, &a.entry);
	registry_remove(&reg, &a.entry); /* a second remove is harmless */
	CHECK_EQ_INT(registry_count(&reg), 0);
	registry_free(&reg);
}

static void test_split_point_makes_distinct_keys(void)
{
	struct registry reg;
	struct fake_session ab_c, a_bc, abc_;

	if (!CHECK_EQ_INT(registry_init(&reg, 4), 0))
		return;
	fake_init(&ab_c, "ab", "c");
	fake_init(&a_bc, "a", "bc");
	fake_init(&abc_, "abc", "");
	CHECK_EQ_INT(registry_add(&reg, &ab_c.entry), 0);
	CHECK_EQ_INT(registry_add(&reg, &a_bc.entry), 0);
	CHECK_EQ_INT(registry_add(&reg, &abc_.entry), 0);
	CHECK_EQ_INT(registry_count(&reg), 3);
	CHECK(registry_find(&reg, "ab", "c") == &ab_c.entry);
	CHECK(registry_find(&reg, "a", "bc") == &a_bc.entry);
	CHECK(registry_find(&reg, "abc", "") == &abc_.entry);
	CHECK(registry_find(&reg, "", "abc") == NULL);
	/* not only distinct keys but distinct hashes: the split point is part of what is hashed */
	CHECK(ab_c.entry.node.hash != a_bc.entry.node.hash);
	CHECK(ab_c.entry.node.hash != abc_.entry.node.hash);
	CHECK(a_bc.entry.node.hash != abc_.entry.node.hash);
	registry_free(&reg);
}

static void test_growth_keeps_every_entry_findable(void)
{
	enum { N = 100000 };
	struct registry reg;
	struct fake_session *s = calloc(N, sizeof(*s));
	char user[32], device[32];
	size_t missing = 0, wrong = 0;

	if (!CHECK(s != NULL))
		return;
	if (!CHECK_EQ_INT(registry_init(&reg, 0), 0)) {
		free(s);
		return;
	}
	CHECK_EQ_INT(reg.sessions.bucket_count, 16);
	for (int i = 0; i < N; i++) {
		snprintf(user, sizeof(user), "user%d", i / 10);
		snprintf(device, sizeof(device), "dev%d", i % 10);
		fake_init(&s[i], user, device);
		if (registry_add(&reg, &s[i].entry))
			wrong++;
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK_EQ_INT(registry_count(&reg), N);
	CHECK(reg.sessions.bucket_count >= N);
	for (int i = 0; i < N; i++) {
		struct registry_entry *e = registry_find(&reg, s[i].user, s[i].device);
		if (!e)
			missing++;
		else if (e != &s[i].entry)
			wrong++;
	}
	CHECK_EQ_INT(missing, 0);
	CHECK_EQ_INT(wrong, 0);
	CHECK(registry_find(&reg, "user10000", "dev0") == NULL);
	CHECK(registry_find(&reg, "user1", "dev10") == NULL);

	/* remove every other one: the rest stay findable, the removed are gone */
	for (int i = 0; i < N; i += 2)
		registry_remove(&reg, &s[i].entry);
	CHECK_EQ_INT(registry_count(&reg), N / 2);
	missing = wrong = 0;
	for (int i = 0; i < N; i++) {
		struct registry_entry *e = registry_find(&reg, s[i].user, s[i].device);
		if (i % 2 == 0 && e)
			wrong++;
		if (i % 2 == 1 && e != &s[i].entry)
			missing++;
	}
	CHECK_EQ_INT(missing, 0);
	CHECK_EQ_INT(wrong, 0);
	registry_free(&reg);
	free(s);
}

/* The entries of bucket b, in chain order; returns how many. */
static size_t chain_of(const struct registry *reg, size_t b, struct registry_entry **out, size_t max)
{
	size_t len = 0;

	for (struct ht_node *n = reg->sessions.buckets[b]; n && len < max; n = n->next)
		out[len++] = (struct registry_entry *)((char *)n - offsetof(struct registry_entry, node));
	return len;
}

/*
 * Fills s[0..n) with keys that share one bucket of a 16-bucket registry
 * (found by trying keys and keeping those that land with the first).
 */
static size_t fill_one_bucket(struct registry *reg, struct fake_session *s, size_t n, size_t *bucket)
{
	size_t kept = 0;
	char device[16];

	for (int i = 0; i < 100000 && kept < n; i++) {
		snprintf(device, sizeof(device), "d%d", i);
		fake_init(&s[kept], "u", device);
		if (registry_add(reg, &s[kept].entry))
			return kept;
		size_t b = s[kept].entry.node.hash & (reg->sessions.bucket_count - 1);
		if (kept == 0)
			*bucket = b;
		if (b == *bucket)
			kept++;
		else
			registry_remove(reg, &s[kept].entry);
	}
	return kept;
}

static void test_removal_from_the_middle_of_a_chain(void)
{
	struct registry reg;
	struct fake_session s[5];
	struct registry_entry *chain[8];
	size_t bucket = 0;

	if (!CHECK_EQ_INT(registry_init(&reg, 16), 0))
		return;
	if (!CHECK_EQ_INT(fill_one_bucket(&reg, s, 5, &bucket), 5) || !CHECK_EQ_INT(reg.sessions.bucket_count, 16)) {
		registry_free(&reg);
		return;
	}
	CHECK_EQ_INT(chain_of(&reg, bucket, chain, 8), 5);

	struct registry_entry *middle = chain[2], *head = chain[0], *tail = chain[4];
	registry_remove(&reg, middle);
	CHECK_EQ_INT(chain_of(&reg, bucket, chain, 8), 4);
	CHECK(registry_find(&reg, middle->user, middle->device) == NULL);
	registry_remove(&reg, head);
	registry_remove(&reg, tail);
	CHECK_EQ_INT(chain_of(&reg, bucket, chain, 8), 2);
	CHECK(registry_find(&reg, head->user, head->device) == NULL);
	CHECK(registry_find(&reg, tail->user, tail->device) == NULL);
	CHECK_EQ_INT(registry_count(&reg), 2);
	size_t found = 0;
	for (int i = 0; i < 5; i++)
		if (registry_find(&reg, s[i].user, s[i].device) == &s[i].entry)
			found++;
	CHECK_EQ_INT(found, 2);
	registry_free(&reg);
}

static void test_iteration_is_oldest_first(void)
{
	struct registry reg;
	struct fake_session s[5];
	const char *names[] = { "a", "b", "c", "d", "e" };
	char order[8];
	size_t n;

	if (!CHECK_EQ_INT(registry_init(&reg, 0), 0))
		return;
	for (int i = 0; i < 5; i++) {
		fake_init(&s[i], names[i], "dev");
		CHECK_EQ_INT(registry_add(&reg, &s[i].entry), 0);
	}

#define ORDER()                                                                                                        \
	do {                                                                                                           \
		n = 0;                                                                                                 \
		for (struct registry_entry *e = registry_first(&reg); e && n < 7; e = e->next)                         \
			order[n++] = e->user[0];                                                                       \
		order[n] = '\0';                                                                                       \
	} while (0)

	ORDER();
	CHECK_EQ_STR(order, "abcde");
	registry_remove(&reg, &s[2].entry); /* middle */
	ORDER();
	CHECK_EQ_STR(order, "abde");
	registry_remove(&reg, &s[0].entry); /* oldest */
	ORDER();
	CHECK_EQ_STR(order, "bde");
	registry_remove(&reg, &s[4].entry); /* newest */
	ORDER();
	CHECK_EQ_STR(order, "bd");
	CHECK_EQ_INT(registry_add(&reg, &s[0].entry), 0); /* back in as the newest */
	ORDER();
	CHECK_EQ_STR(order, "bda");
	CHECK_EQ_INT(registry_count(&reg), 3);
	CHECK(reg.last == &s[0].entry);
	CHECK(registry_first(&reg)->prev == NULL);
#undef ORDER
	registry_free(&reg);
}

static void test_count_follows_adds_and_removes(void)
{
	struct registry reg;
	struct fake_session s[40];
	char device[16];

	if (!CHECK_EQ_INT(registry_init(&reg, 0), 0))
		return;
	for (int i = 0; i < 40; i++) {
		snprintf(device, sizeof(device), "%d", i);
		fake_init(&s[i], "bob", device);
		registry_add(&reg, &s[i].entry);
	}
	CHECK_EQ_INT(registry_count(&reg), 40);
	for (int i = 0; i < 40; i += 4)
		registry_remove(&reg, &s[i].entry);
	CHECK_EQ_INT(registry_count(&reg), 30);
	size_t walked = 0;
	for (struct registry_entry *e = registry_first(&reg); e; e = e->next)
		walked++;
	CHECK_EQ_INT(walked, 30);
	registry_free(&reg);
}

int main(void)
{
	RUN(test_empty_registry);
	RUN(test_add_find_remove);
	RUN(test_duplicate_key_is_rejected);
	RUN(test_adding_the_same_entry_twice_is_rejected);
	RUN(test_split_point_makes_distinct_keys);
	RUN(test_growth_keeps_every_entry_findable);
	RUN(test_removal_from_the_middle_of_a_chain);
	RUN(test_iteration_is_oldest_first);
	RUN(test_count_follows_adds_and_removes);
	return check_summary();
}
