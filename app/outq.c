/*
 * Outbound queue. Memory per queued message is one small list item; the
 * frame belongs to the shared, reference-counted outmsg.
 */
#include "outq.h"

#include <stdlib.h>
#include <string.h>

struct outmsg *outmsg_new_frame(enum frame_opcode opcode, const void *payload, size_t len)
{
	size_t header = frame_header_len(len);
	struct outmsg *msg = malloc(sizeof(*msg) + OUTQ_HEADROOM + header + len);

	if (!msg)
		return NULL;
	msg->refs = 1;
	msg->frame = msg->buf + OUTQ_HEADROOM;
	msg->len = frame_write_header(msg->frame, opcode, len) + len;
	msg->payload_len = len;
	if (len)
		memcpy(msg->frame + header, payload, len);
	return msg;
}

struct outmsg *outmsg_new(const void *payload, size_t len)
{
	return outmsg_new_frame(FRAME_TEXT, payload, len);
}

struct outmsg *outmsg_ref(struct outmsg *msg)
{
	msg->refs++;
	return msg;
}

void outmsg_unref(struct outmsg *msg)
{
	if (msg && !--msg->refs)
		free(msg);
}

int outq_push(struct outq *q, struct outmsg *msg)
{
	struct outq_item *item = malloc(sizeof(*item));

	if (!item)
		return -1;
	item->next = NULL;
	item->msg = outmsg_ref(msg);
	if (q->tail)
		q->tail->next = item;
	else
		q->head = item;
	q->tail = item;
	q->bytes += msg->len;
	return 0;
}

void outq_pop(struct outq *q)
{
	struct outq_item *item = q->head;

	if (!item)
		return;
	q->head = item->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= item->msg->len;
	outmsg_unref(item->msg);
	free(item);
}

void outq_clear(struct outq *q)
{
	while (q->head)
		outq_pop(q);
}
