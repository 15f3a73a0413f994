/*
 * The write path. Everything a session is sent during one loop turn (replies,
 * deliveries, pings, its close frame) is appended to its queue of framed
 * messages, and the session goes on a list; once per loop turn, just before
 * the loop waits again, each listed session gets one write of all of it.
 * Only when the kernel takes less does a session wait for POLLOUT (lws keeps
 * the unsent rest and calls WRITEABLE when it is gone). Never walks sessions
 * that have nothing to send.
 */
#ifndef WSGATE_OUTPUT_H
#define WSGATE_OUTPUT_H

#include <stddef.h>

struct session;
struct wsg_server;

/* The session has something to send: flush it at the end of this loop turn. */
void output_mark(struct session *s);
/* The session is going away: off the list, its queue freed. */
void output_forget(struct session *s);

/* Once per loop turn: writes every marked session's output. */
void output_flush_all(struct wsg_server *server);

/* lws's WRITEABLE: what lws held has gone out, so the rest can follow. */
void output_writeable(struct session *s);

/*
 * Writes one frame at once, after anything lws still holds, bypassing the
 * queue (the answer to a client's close). Returns -1 when the socket is gone.
 */
int output_write_now(struct session *s, const unsigned char *frame, size_t len);

/*
 * Holds the socket's output in the kernel (TCP_CORK) until the session's
 * first write, so lws's 101 response and the welcome leave as one segment.
 */
void output_cork(struct session *s);

/*
 * Bounds what the kernel holds unsent for the session (TCP_NOTSENT_LOWAT):
 * past it the socket reports full and wsgate's own queue, with its 4109
 * limit, takes over, so a stalled reader cannot pin megabytes of kernel memory.
 */
void output_limit_kernel_share(struct session *s, unsigned bytes);

/* Bytes waiting: in the queue, and what lws may still hold of the last write. */
size_t output_pending(const struct session *s);

#endif
