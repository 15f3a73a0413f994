/*
 * history: the memory store's ring (size, ttl, growth, a missed seq, stats),
 * the router's channel lifetime with a history (kept without subscribers,
 * expiry on the wheel, a new epoch per incarnation, recovery decisions), the
 * config keys history / history_channels, and the subscribe "since" request
 * and ack. Leaks show under ASan.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "history.h"
#include "message.h"
#include "router.h"
#include "util.h"

static struct outmsg *msg_of(uint64_t seq)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "m%llu", (unsigned long long)seq);

	return outmsg_new(text, (size_t)n);
}

struct collected {
	uint64_t seqs[64];
	size_t count;
};

static int collect(struct outmsg *msg, uint64_t seq, void *ctx)
{
	struct collected *c = ctx;
	char want[32];
	int n = snprintf(want, sizeof(want), "m%llu", (unsigned long long)seq);

	CHECK(msg->payload_len == (size_t)n && !memcmp(outmsg_payload(msg), want, (size_t)n));
	c->seqs[c->count++] = seq;
	return 0;
}

/* Appends seqs first..last at now_ms; the store keeps its own reference. */
static void append_range(struct history *h, uint64_t first, uint64_t last, uint64_t now_ms)
{
	for (uint64_t seq = first; seq <= last; seq++) {
		struct outmsg *m = msg_of(seq);
		CHECK_EQ_INT(history_append(h, seq, m, now_ms), 0);
		outmsg_unref(m);
	}
}

static void test_ring_keeps_the_last_size_messages(void)
{
	struct history_stats stats = { 0 };
	struct history_limits limits = { 10, 1000 };
	struct history *h = history_memory_new(&limits, &stats);
	struct collected got = { { 0 }, 0 };

	if (!CHECK(h != NULL))
		return;
	CHECK_EQ_INT(history_oldest(h, 0), 0);
	CHECK_EQ_INT(history_expires_ms(h), 0);
	append_range(h, 1, 25, 100);
	CHECK_EQ_INT(stats.entries, 10);
	CHECK_EQ_INT(stats.stores, 1);
	CHECK_EQ_INT(history_oldest(h, 100), 16);
	CHECK_EQ_INT(history_expires_ms(h), 1100);
	CHECK_EQ_INT(history_since(h, 20, 100, collect, &got), 5);
	CHECK_EQ_INT(got.count, 5);
	CHECK_EQ_INT(got.seqs[0], 21);
	CHECK_EQ_INT(got.seqs[4], 25);
	got.count = 0;
	CHECK_EQ_INT(history_since(h, 3, 4, collect, &got), 4); /* older than kept: from the oldest, limited */
	CHECK_EQ_INT(got.seqs[0], 16);
	CHECK_EQ_INT(got.seqs[3], 19);
	CHECK_EQ_INT(history_since(h, 25, 100, collect, &got), 0);
	CHECK_EQ_INT(history_since(h, 99, 100, collect, &got), 0);
	history_free(h);
	CHECK_EQ_INT(stats.entries, 0);
	CHECK_EQ_INT(stats.bytes, 0);
	CHECK_EQ_INT(stats.stores, 0);
}

static void test_ring_holds_the_shared_buffer_not_a_copy(void)
{
	struct history_stats stats = { 0 };
	struct history_limits limits = { 2, 1000 };
	struct history *h = history_memory_new(&limits, &stats);
	struct outmsg *m = msg_of(1);

	if (!CHECK(h != NULL) || !CHECK(m != NULL))
		return;
	CHECK_EQ_INT(history_append(h, 1, m, 0), 0);
	CHECK_EQ_INT(m->refs, 2);
	CHECK(stats.bytes >= history_memory_entry_bytes(m));
	append_range(h, 2, 3, 0); /* pushes 1 out: its reference goes */
	CHECK_EQ_INT(m->refs, 1);
	outmsg_unref(m);
	history_free(h);
}

static void test_ring_drops_what_expired(void)
{
	struct history_stats stats = { 0 };
	struct history_limits limits = { 100, 1000 };
	struct history *h = history_memory_new(&limits, &stats);

	if (!CHECK(h != NULL))
		return;
	append_range(h, 1, 3, 0);
	append_range(h, 4, 5, 500);
	CHECK_EQ_INT(history_oldest(h, 999), 1);
	CHECK_EQ_INT(history_oldest(h, 1000), 4); /* 1-3 are ttl_ms old */
	CHECK_EQ_INT(stats.entries, 2);
	CHECK_EQ_INT(history_expires_ms(h), 1500);
	CHECK_EQ_INT(history_oldest(h, 1500), 0);
	CHECK_EQ_INT(stats.entries, 0);
	history_free(h);
}

static void test_a_missed_seq_starts_the_ring_over(void)
{
	struct history_stats stats = { 0 };
	struct history_limits limits = { 100, 1000 };
	struct history *h = history_memory_new(&limits, &stats);

	if (!CHECK(h != NULL))
		return;
	append_range(h, 1, 5, 0);
	append_range(h, 7, 8, 0);
	CHECK_EQ_INT(history_oldest(h, 0), 7);
	CHECK_EQ_INT(stats.entries, 2);
	history_free(h);
}

static void test_channel_with_history_outlives_its_subscribers(void)
{
	struct router r;
	struct subscription_list a = { 0 };
	struct history_limits limits = { 100, 200 }, off = { 0, 200 };
	uint64_t now = util_now_ms();
	bool is_oom;
	int owner;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	/* no subscriber, history off: nothing to number */
	CHECK(router_open(&r, "quiet", &off, &is_oom) == NULL && !is_oom);
	/* no subscriber, history on: numbered and kept */
	struct channel *c = router_open(&r, "news", &limits, &is_oom);
	if (!CHECK(c != NULL))
		goto out;
	char epoch[ROUTER_EPOCH_LEN + 1];
	memcpy(epoch, c->epoch, sizeof(epoch));
	CHECK_EQ_INT(strlen(epoch), ROUTER_EPOCH_LEN);
	struct outmsg *m = msg_of(1);
	CHECK_EQ_INT(router_record(&r, c, m, now), 0);
	outmsg_unref(m);
	CHECK_EQ_INT(c->seq, 1);
	CHECK(hb_timer_is_armed(&c->expiry));
	CHECK_EQ_INT(r.history.entries, 1);
	/* a subscriber comes and goes: the channel stays, same epoch and seq */
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner, "news"), 0);
	router_unsubscribe_all(&r, &a);
	c = router_find(&r, "news");
	if (!CHECK(c != NULL))
		goto out;
	CHECK_EQ_INT(c->seq, 1);
	CHECK_EQ_STR(c->epoch, epoch);
	CHECK(router_can_recover(c, epoch, 0, now));
	CHECK(router_can_recover(c, epoch, 1, now));
	CHECK(!router_can_recover(c, epoch, 2, now));		   /* ahead of the channel */
	CHECK(!router_can_recover(c, "0123456789abcdef", 0, now)); /* another incarnation */
	/* before its ttl it stays; after it, the wheel frees it */
	router_expire(&r, now + 100);
	CHECK(router_find(&r, "news") != NULL);
	router_expire(&r, now + 200 + 2 * ROUTER_EXPIRY_TICK_MS);
	CHECK(router_find(&r, "news") == NULL);
	CHECK_EQ_INT(r.history.entries, 0);
	CHECK_EQ_INT(r.history.stores, 0);
	/* starting again: seq 0, a new epoch */
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner, "news"), 0);
	c = router_find(&r, "news");
	if (CHECK(c != NULL)) {
		CHECK_EQ_INT(c->seq, 0);
		CHECK(strcmp(c->epoch, epoch) != 0);
		CHECK(!router_can_recover(c, epoch, 1, now));
		CHECK(router_can_recover(c, c->epoch, 0, now));
	}
	router_unsubscribe_all(&r, &a);
out:
	router_free(&r);
}

static void test_a_subscriber_keeps_the_channel_past_its_ttl(void)
{
	struct router r;
	struct subscription_list a = { 0 };
	struct history_limits limits = { 100, 100 };
	uint64_t now = util_now_ms();
	bool is_oom;
	int owner;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	struct channel *c = router_open(&r, "news", &limits, &is_oom);
	struct outmsg *m = msg_of(1);
	if (CHECK(c != NULL))
		router_record(&r, c, m, now);
	outmsg_unref(m);
	CHECK_EQ_INT(router_subscribe(&r, &a, &owner, "news"), 0);
	router_expire(&r, now + 1000);
	c = router_find(&r, "news");
	if (CHECK(c != NULL)) {
		CHECK_EQ_INT(c->seq, 1);
		CHECK(!router_can_recover(c, c->epoch, 0, now + 1000)); /* its one message expired */
	}
	router_unsubscribe_all(&r, &a); /* nothing alive: freed at once */
	CHECK(router_find(&r, "news") == NULL);
	router_free(&r);
}

static void test_router_free_with_histories_leaks_nothing(void)
{
	struct router r;
	struct history_limits limits = { 3, 60000 };
	char name[32];
	bool is_oom;

	if (!CHECK_EQ_INT(router_init(&r), 0))
		return;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "c.%d", i);
		struct channel *c = router_open(&r, name, &limits, &is_oom);
		for (int j = 0; c && j < 5; j++) {
			struct outmsg *m = msg_of(c->seq + 1);
			router_record(&r, c, m, util_now_ms());
			outmsg_unref(m);
		}
	}
	CHECK_EQ_INT(r.history.entries, 300);
	CHECK_EQ_INT(r.history.stores, 100);
	router_free(&r);
}

/* ---- config: history, history_channels ---- */

static struct wsg_config *load(const char *text, char *err, size_t errlen)
{
	char path[] = "/tmp/wsgate-history-XXXXXX";
	struct wsg_config *c = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	if (write(fd, text, strlen(text)) == (ssize_t)strlen(text))
		config_load(path, &c, err, errlen);
	close(fd);
	unlink(path);
	return c;
}

#define ONE_TOKEN "tokens = ( { token = \"s3cret\"; user = \"alice\"; } );\n"

static void test_config_defaults_and_overrides(void)
{
	char err[1024] = "";
	struct wsg_config *c = load(ONE_TOKEN, err, sizeof(err));

	if (!CHECK(c != NULL))
		return;
	CHECK_EQ_INT(c->history.size, 100);
	CHECK_EQ_INT(c->history.ttl_ms, 300000);
	CHECK_EQ_INT(config_history_limits(c, "news").size, 100);
	config_free(c);
	c = load(ONE_TOKEN "history = { size = 50; ttl_ms = 1000; };\n"
			   "history_channels = (\n"
			   "  { channel = \"chat.**\"; size = 1000; },\n"
			   "  { channel = \"chat.quiet\"; size = 1; },\n"
			   "  { channel = \"ticks.*\"; size = 0; ttl_ms = 5000; }\n"
			   ");\n",
		 err, sizeof(err));
	if (!CHECK(c != NULL)) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	struct wsg_history_limits l = config_history_limits(c, "chat.room.1");
	CHECK_EQ_INT(l.size, 1000);
	CHECK_EQ_INT(l.ttl_ms, 1000);					 /* left out: the default's */
	CHECK_EQ_INT(config_history_limits(c, "chat.quiet").size, 1000); /* the first match wins */
	l = config_history_limits(c, "ticks.eur");
	CHECK_EQ_INT(l.size, 0);
	CHECK_EQ_INT(l.ttl_ms, 5000);
	l = config_history_limits(c, "news");
	CHECK_EQ_INT(l.size, 50);
	CHECK_EQ_INT(l.ttl_ms, 1000);
	config_free(c);
}

static void expect_error(const char *text, const char *suffix)
{
	char err[1024] = "";
	struct wsg_config *c = load(text, err, sizeof(err));

	CHECK(c == NULL);
	config_free(c);
	const char *line = strchr(err, ':'); /* after the file's name: "LINE: message" */
	if (!CHECK(line != NULL))
		return;
	CHECK_EQ_STR(line + 1, suffix);
}

static void test_config_errors_name_the_key_and_line(void)
{
	expect_error(ONE_TOKEN "history = { size = 100001; };\n",
		     "2: key 'history.size' must be an integer between 0 and 100000, not 100001");
	expect_error(ONE_TOKEN "history = { ttl_ms = 99; };\n",
		     "2: key 'history.ttl_ms' must be an integer between 100 and 604800000, not 99");
	expect_error(ONE_TOKEN "history = { sise = 1; };\n", "2: unknown key 'history.sise'");
	expect_error(ONE_TOKEN "history = 5;\n", "2: key 'history' must be a group { ... }");
	expect_error(ONE_TOKEN "history_channels = ( { channel = \"a..b\"; } );\n",
		     "2: key 'history_channels.[0].channel' must be a channel name or glob: dot-separated segments "
		     "of A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest");
	expect_error(ONE_TOKEN "history_channels = (\n { channel = \"a\"; },\n { size = 3; }\n);\n",
		     "4: key 'history_channels.[1].channel' must be a channel name or glob: dot-separated segments "
		     "of A-Z a-z 0-9 _ - @ :, \"*\" for one segment, a final \"**\" for the rest");
	expect_error(ONE_TOKEN "history_channels = ( { channel = \"a\"; ttl = 3; } );\n",
		     "2: unknown key 'history_channels.[0].ttl'");
	expect_error(ONE_TOKEN "history_channels = ( { channel = \"a\"; size = -1; } );\n",
		     "2: key 'history_channels.[0].size' must be an integer between 0 and 100000, not -1");
	expect_error(ONE_TOKEN "history_channels = [ \"a\" ];\n",
		     "2: key 'history_channels' must be a list ( { channel = \"chat.**\"; size = 1000; }, ... )");
}

/* ---- message: subscribe with since, its ack ---- */

static void test_subscribe_since_is_parsed(void)
{
	struct request req;
	const char *text = "{\"type\":\"subscribe\",\"channel\":\"news\",\"since\":{\"epoch\":\"0a1b\",\"seq\":41}}";

	CHECK_EQ_INT(message_parse(text, strlen(text), &req), 0);
	CHECK_EQ_INT(req.type, REQUEST_SUBSCRIBE);
	CHECK(req.has_since);
	CHECK_EQ_STR(req.since_epoch, "0a1b");
	CHECK_EQ_INT(req.since_seq, 41);
	message_request_free(&req);
	text = "{\"type\":\"subscribe\",\"channel\":\"news\"}";
	CHECK_EQ_INT(message_parse(text, strlen(text), &req), 0);
	CHECK(!req.has_since);
	message_request_free(&req);
	text = "{\"type\":\"subscribe\",\"channel\":\"news\",\"since\":{\"epoch\":\"e\",\"seq\":-1}}";
	CHECK_EQ_INT(message_parse(text, strlen(text), &req), 0);
	CHECK_EQ_INT(req.type, REQUEST_INVALID);
	CHECK_EQ_STR(req.error_code, "bad_request");
	message_request_free(&req);
}

static void test_subscribe_ack_carries_the_position(void)
{
	size_t len = 0;
	json_t *id = json_integer(7);
	char *text = message_subscribe_ack(id, "00ff", 41, -1, &len);

	CHECK_EQ_STR(text, "{\"type\":\"ack\",\"id\":7,\"epoch\":\"00ff\",\"seq\":41}");
	CHECK_EQ_INT(len, text ? strlen(text) : 0);
	free(text);
	text = message_subscribe_ack(NULL, "00ff", 0, 1, &len);
	CHECK_EQ_STR(text, "{\"type\":\"ack\",\"epoch\":\"00ff\",\"seq\":0,\"recovered\":true}");
	free(text);
	text = message_subscribe_ack(NULL, "00ff", 3, 0, &len);
	CHECK_EQ_STR(text, "{\"type\":\"ack\",\"epoch\":\"00ff\",\"seq\":3,\"recovered\":false}");
	free(text);
	json_decref(id);
}

int main(void)
{
	RUN(test_ring_keeps_the_last_size_messages);
	RUN(test_ring_holds_the_shared_buffer_not_a_copy);
	RUN(test_ring_drops_what_expired);
	RUN(test_a_missed_seq_starts_the_ring_over);
	RUN(test_channel_with_history_outlives_its_subscribers);
	RUN(test_a_subscriber_keeps_the_channel_past_its_ttl);
	RUN(test_router_free_with_histories_leaks_nothing);
	RUN(test_config_defaults_and_overrides);
	RUN(test_config_errors_name_the_key_and_line);
	RUN(test_subscribe_since_is_parsed);
	RUN(test_subscribe_ack_carries_the_position);
	return check_summary();
}
