/* outq: reference-counted, framed outbound messages and the per-session FIFO. Leaks show under ASan. */
#include "outq.h"

#include <string.h>

#include "check.h"

static int count_items(const struct outq *q)
{
	int n = 0;

	for (const struct outq_item *item = q->head; item; item = item->next)
		n++;
	return n;
}

static void test_new_message_is_a_text_frame_after_the_headroom(void)
{
	char payload[] = "{\"type\":\"pong\"}";
	struct outmsg *m = outmsg_new(payload, strlen(payload));

	if (!CHECK(m != NULL))
		return;
	CHECK_EQ_INT(m->refs, 1);
	CHECK_EQ_INT(m->payload_len, strlen(payload));
	CHECK_EQ_INT(m->len, strlen(payload) + 2);
	CHECK(m->frame == m->buf + OUTQ_HEADROOM);
	CHECK_EQ_INT(m->frame[0], 0x81); /* FIN, text */
	CHECK_EQ_INT(m->frame[1], (int)strlen(payload));
	CHECK(outmsg_payload(m) == m->frame + 2);
	CHECK(memcmp(outmsg_payload(m), payload, m->payload_len) == 0);
	payload[0] = 'X'; /* a copy, not a reference to the caller's buffer */
	CHECK_EQ_INT(outmsg_payload(m)[0], '{');
	outmsg_unref(m);
}

static void test_empty_message(void)
{
	struct outmsg *m = outmsg_new("", 0);

	if (!CHECK(m != NULL))
		return;
	CHECK_EQ_INT(m->len, 2);
	CHECK_EQ_INT(m->payload_len, 0);
	CHECK_EQ_INT(m->frame[1], 0);
	outmsg_unref(m);
}

static void test_long_payloads_get_extended_lengths(void)
{
	static char big[70000];
	struct outmsg *m = outmsg_new(big, 200), *n = outmsg_new(big, sizeof(big));

	if (!CHECK(m != NULL && n != NULL))
		goto out;
	CHECK_EQ_INT(m->len, 200 + 4);
	CHECK_EQ_INT(m->frame[1], 126);
	CHECK_EQ_INT((m->frame[2] << 8) | m->frame[3], 200);
	CHECK_EQ_INT(n->len, sizeof(big) + 10);
	CHECK_EQ_INT(n->frame[1], 127);
	CHECK_EQ_INT((n->frame[7] << 16) | (n->frame[8] << 8) | n->frame[9], (int)sizeof(big));
	CHECK(outmsg_payload(n) == n->frame + 10);
out:
	outmsg_unref(m);
	outmsg_unref(n);
}

static void test_ref_and_unref_count(void)
{
	struct outmsg *m = outmsg_new("abc", 3);

	if (!CHECK(m != NULL))
		return;
	CHECK(outmsg_ref(m) == m);
	CHECK_EQ_INT(m->refs, 2);
	outmsg_unref(m);
	CHECK_EQ_INT(m->refs, 1);
	outmsg_unref(m); /* freed: ASan would flag any later use */
	outmsg_unref(NULL);
}

static void test_empty_queue(void)
{
	struct outq q = { 0 };

	CHECK(outq_peek(&q) == NULL);
	outq_pop(&q); /* harmless */
	outq_clear(&q);
	CHECK_EQ_INT(count_items(&q), 0);
	CHECK_EQ_INT(q.bytes, 0);
	CHECK(q.head == NULL && q.tail == NULL);
}

static void test_queue_is_fifo_with_count_and_bytes(void)
{
	struct outq q = { 0 };
	struct outmsg *a = outmsg_new("one", 3), *b = outmsg_new("three", 5), *c = outmsg_new("xy", 2);

	if (!CHECK(a && b && c))
		return;
	CHECK_EQ_INT(outq_push(&q, a), 0);
	CHECK_EQ_INT(outq_push(&q, b), 0);
	CHECK_EQ_INT(outq_push(&q, c), 0);
	CHECK_EQ_INT(count_items(&q), 3);
	CHECK_EQ_INT(q.bytes, 10 + 3 * 2);
	CHECK_EQ_INT(a->refs, 2); /* the queue's reference and ours */

	CHECK(outq_peek(&q) == a);
	CHECK(outq_peek(&q) == a); /* peek does not remove */
	outq_pop(&q);
	CHECK_EQ_INT(a->refs, 1);
	CHECK(outq_peek(&q) == b);
	CHECK_EQ_INT(count_items(&q), 2);
	CHECK_EQ_INT(q.bytes, 7 + 2 * 2);
	outq_pop(&q);
	CHECK(outq_peek(&q) == c);
	outq_pop(&q);
	CHECK(outq_peek(&q) == NULL);
	CHECK_EQ_INT(count_items(&q), 0);
	CHECK_EQ_INT(q.bytes, 0);
	CHECK(q.head == NULL && q.tail == NULL);

	/* the queue works again after draining */
	CHECK_EQ_INT(outq_push(&q, b), 0);
	CHECK(outq_peek(&q) == b);
	outq_clear(&q);

	outmsg_unref(a);
	outmsg_unref(b);
	outmsg_unref(c);
}

static void test_one_message_shared_by_many_queues(void)
{
	enum { N = 50 };
	struct outq q[N];
	struct outmsg *m = outmsg_new("fan-out", 7);

	if (!CHECK(m != NULL))
		return;
	memset(q, 0, sizeof(q));
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(outq_push(&q[i], m), 0);
	CHECK_EQ_INT(m->refs, N + 1);
	outmsg_unref(m); /* the sender lets go; the queues keep it alive */
	CHECK_EQ_INT(m->refs, N);
	for (int i = 0; i < N; i++) {
		CHECK(memcmp(outmsg_payload(outq_peek(&q[i])), "fan-out", 7) == 0);
		outq_pop(&q[i]);
	}
	/* the last pop freed it; LeakSanitizer checks nothing was left */
}

static void test_clear_drops_every_reference(void)
{
	struct outq q = { 0 };
	struct outmsg *keep = outmsg_new("keep", 4);

	if (!CHECK(keep != NULL))
		return;
	for (int i = 0; i < 10; i++) {
		struct outmsg *m = outmsg_new("tmp", 3);
		if (!CHECK(m != NULL))
			break;
		outq_push(&q, m);
		outmsg_unref(m);
		outq_push(&q, keep);
	}
	CHECK_EQ_INT(count_items(&q), 20);
	CHECK_EQ_INT(q.bytes, 70 + 20 * 2);
	CHECK_EQ_INT(keep->refs, 11);
	outq_clear(&q);
	CHECK_EQ_INT(count_items(&q), 0);
	CHECK_EQ_INT(q.bytes, 0);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ_INT(keep->refs, 1);
	outmsg_unref(keep);
}

int main(void)
{
	RUN(test_new_message_is_a_text_frame_after_the_headroom);
	RUN(test_empty_message);
	RUN(test_long_payloads_get_extended_lengths);
	RUN(test_ref_and_unref_count);
	RUN(test_empty_queue);
	RUN(test_queue_is_fifo_with_count_and_bytes);
	RUN(test_one_message_shared_by_many_queues);
	RUN(test_clear_drops_every_reference);
	return check_summary();
}
