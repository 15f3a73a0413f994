/*
 * A session's outbound queue of whole frames. Each message is framed once,
 * with room for the transport's header in front, and reference counted, so a
 * fan-out to many sessions shares one buffer instead of copying or framing it
 * per recipient.
 */
#ifndef WSGATE_OUTQ_H
#define WSGATE_OUTQ_H

#include <stddef.h>

#include "frame.h"

/* Room before a frame: libwebsockets wants LWS_PRE (16) writable bytes in front of what it sends. */
#define OUTQ_HEADROOM 16

struct outmsg {
	unsigned refs;
	size_t len;	    /* the whole frame: header and payload */
	size_t payload_len; /* what the application sent, for byte counters */
	unsigned char *frame;
	unsigned char buf[]; /* OUTQ_HEADROOM, up to FRAME_HEADER_MAX, then the payload */
};

struct outq_item {
	struct outq_item *next;
	struct outmsg *msg;
};

struct outq {
	struct outq_item *head, *tail;
	size_t bytes; /* framed bytes queued */
};

/* A new text frame holding a copy of payload, with one reference. */
struct outmsg *outmsg_new(const void *payload, size_t len);
struct outmsg *outmsg_new_frame(enum frame_opcode opcode, const void *payload, size_t len);
struct outmsg *outmsg_ref(struct outmsg *msg);
void outmsg_unref(struct outmsg *msg);

static inline unsigned char *outmsg_payload(struct outmsg *msg)
{
	return msg->frame + (msg->len - msg->payload_len);
}

/* Queues msg, taking a new reference to it. Returns -1 when out of memory. */
int outq_push(struct outq *q, struct outmsg *msg);

/* The oldest message, still queued; NULL when empty. */
static inline struct outmsg *outq_peek(const struct outq *q)
{
	return q->head ? q->head->msg : NULL;
}

/* Drops the oldest message and its reference. */
void outq_pop(struct outq *q);
void outq_clear(struct outq *q);

#endif
