/* router: channels, subscriptions and their lifetimes. Leaks show under ASan. */
#include "router.h"

#include <stdint.h>
#include <stdio.h>

#include "check.h"

static size_t subscribers(const struct router *r, const char *name)
{
	struct channel *c = router_find(r, name);

	return c ? c->count : 0;
}

static void test_subscribe_and_find(void)
{
	struct router r;
	struct subscription_list a = { 0 }, b = { 0 };
	int owner_a, owner_b;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner_a, "news"), 0);
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner_a, "news"), 1); /* already */
	CHECK_EQ_INT(router_subscribe(&r, &b, &owner_b, "news"), 0);
	CHECK_EQ_INT(subscribers(&r, "news"), 2);
	CHECK_EQ_INT(a.count, 1);
	struct channel *c = router_find(&r, "news");
	int seen_a = 0, seen_b = 0;
	for (struct subscription *s = c ? c->first : NULL; s; s = s->channel_next) {
		seen_a += s->owner == &owner_a;
		seen_b += s->owner == &owner_b;
	}
	CHECK_EQ_INT(seen_a, 1);
	CHECK_EQ_INT(seen_b, 1);
	CHECK(router_find(&r, "sport") == NULL);
	router_unsubscribe_all(&r, &a);
	router_unsubscribe_all(&r, &b);
	router_free(&r);
}

static void test_channel_goes_with_its_last_subscriber(void)
{
	struct router r;
	struct subscription_list a = { 0 }, b = { 0 };
	int owner;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	router_subscribe(&r, &a, &owner, "news");
	router_subscribe(&r, &b, &owner, "news");
	router_find(&r, "news")->seq = 41;
	CHECK_EQ_INT(router_unsubscribe(&r, &a, "news"), 0);
	CHECK_EQ_INT(router_unsubscribe(&r, &a, "news"), 1); /* not subscribed */
	CHECK_EQ_INT(subscribers(&r, "news"), 1);
	CHECK_EQ_INT(router_find(&r, "news")->seq, 41);
	CHECK_EQ_INT(router_unsubscribe(&r, &b, "news"), 0);
	CHECK(router_find(&r, "news") == NULL);
	CHECK_EQ_INT(r.channels.count, 0);
	router_free(&r);
}

static void test_unsubscribe_all_leaves_others(void)
{
	struct router r;
	struct subscription_list a = { 0 }, b = { 0 };
	int owner_a, owner_b;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	router_subscribe(&r, &a, &owner_a, "x");
	router_subscribe(&r, &a, &owner_a, "y");
	router_subscribe(&r, &b, &owner_b, "y");
	router_unsubscribe_all(&r, &a);
	CHECK_EQ_INT(a.count, 0);
	CHECK(a.first == NULL);
	CHECK(router_find(&r, "x") == NULL);
	CHECK_EQ_INT(subscribers(&r, "y"), 1);
	CHECK(router_find(&r, "y")->first->owner == &owner_b);
	router_unsubscribe_all(&r, &b);
	router_free(&r);
}

static void test_many_channels_grow_the_table(void)
{
	struct router r;
	struct subscription_list a = { 0 };
	char name[32];
	int owner;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "c.%d", i);
		router_subscribe(&r, &a, &owner, name);
	}
	CHECK_EQ_INT(r.channels.count, 5000);
	int found = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "c.%d", i);
		found += router_find(&r, name) != NULL;
	}
	CHECK_EQ_INT(found, 5000);
	router_unsubscribe_all(&r, &a);
	CHECK_EQ_INT(r.channels.count, 0);
	router_free(&r);
}

/* The observer (the cluster) hears of a channel's first and last subscriber, and of every (un)subscription. */
static char events[256];

static void observe(void *ctx, enum router_event event, const struct channel *c, void *owner)
{
	static const char *const names[] = { "open", "close", "sub", "unsub" };
	size_t n = strlen(events);

	(void)ctx;
	snprintf(events + n, sizeof(events) - n, "%s:%s:%s ", names[event], c->name, owner ? (const char *)owner : "-");
}

static void test_observer(void)
{
	struct router r;
	struct subscription_list a = { 0 }, b = { 0 };

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	r.observer = observe;
	events[0] = '\0';
	CHECK_EQ_INT(router_subscribe(&r, &a, "A", "news"), 0);
	CHECK_EQ_INT(router_subscribe(&r, &b, "B", "news"), 0);
	CHECK_EQ_INT(router_subscribe(&r, &b, "B", "news"), 1);
	CHECK_EQ_INT(router_unsubscribe(&r, &a, "news"), 0);
	router_unsubscribe_all(&r, &b);
	CHECK_EQ_STR(events, "sub:news:A open:news:- sub:news:B unsub:news:A unsub:news:B close:news:- ");
	router_free(&r);
}

/* A hold keeps references in order; the subscription's end cuts its link, the owner frees it. */
static void test_hold_outlives_its_subscription(void)
{
	struct router r;
	struct subscription_list a = { 0 };
	struct subscription_hold hold = { 0 };
	int owner;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner, "news"), 0);
	struct subscription *sub = router_subscription(&r, &a, "news");
	CHECK(sub != NULL && sub->owner == &owner);
	CHECK(router_subscription(&r, &a, "sport") == NULL);
	if (!sub)
		return;
	hold.sub = sub;
	sub->hold = &hold;
	struct outmsg *msg = outmsg_new("hello", 5);
	if (!CHECK(msg != NULL))
		return;
	for (uint64_t seq = 1; seq <= 20; seq++) /* grows past its first capacity */
		CHECK_EQ_INT(subscription_hold_push(&hold, msg, seq), 0);
	CHECK_EQ_INT(hold.count, 20);
	CHECK_EQ_INT(hold.seqs[19], 20);
	CHECK_EQ_INT(hold.bytes, 20 * msg->len);
	CHECK_EQ_INT(msg->refs, 21);
	CHECK_EQ_INT(router_unsubscribe(&r, &a, "news"), 0);
	CHECK(hold.sub == NULL); /* nobody is left to answer */
	subscription_hold_clear(&hold);
	CHECK_EQ_INT(hold.count, 0);
	CHECK_EQ_INT(msg->refs, 1);
	outmsg_unref(msg);
	router_free(&r);
}

int main(void)
{
	RUN(test_subscribe_and_find);
	RUN(test_channel_goes_with_its_last_subscriber);
	RUN(test_unsubscribe_all_leaves_others);
	RUN(test_many_channels_grow_the_table);
	RUN(test_observer);
	RUN(test_hold_outlives_its_subscription);
	return check_summary();
}
