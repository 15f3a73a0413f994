/*
 * Corked output on libwebsockets. Frames are built by wsgate (app/frame.c)
 * and handed to lws raw: lws_write(LWS_WRITE_HTTP) on an established ws
 * connection goes straight to lws_issue_raw without framing. lws_issue_raw
 * keeps whatever the kernel did not take in its own buffer, appends any later
 * write behind it and asks for WRITEABLE itself; so wsgate never writes while
 * lws holds bytes (lws_partial_buffered), which keeps frames whole and in
 * order with the pongs lws sends by itself, and bounds what lws copies to one
 * write. No lws_send_pipe_choked (a poll() per call) on this path.
 */
#include "output.h"

#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "server.h"
#include "session.h"

/*
 * One write gathers up to this much. Small frames are copied in; a frame
 * bigger than half of it is written from its shared buffer as it is. lws
 * would cut a write above the protocol's tx_packet_size and copy the rest.
 */
#define OUTPUT_BATCH_MAX (64 * 1024)

_Static_assert(LWS_PRE <= OUTQ_HEADROOM, "outq headroom must hold what lws writes in front");

static unsigned char batch[LWS_PRE + OUTPUT_BATCH_MAX];

void output_mark(struct session *s)
{
	struct session_output *out = &s->out;
	struct wsg_server *server = s->server;

	if (out->is_dirty)
		return;
	out->is_dirty = true;
	out->dirty_prev = NULL;
	out->dirty_next = server->dirty_first;
	if (server->dirty_first)
		server->dirty_first->out.dirty_prev = s;
	server->dirty_first = s;
}

static void unmark(struct session *s)
{
	struct session_output *out = &s->out;

	if (!out->is_dirty)
		return;
	if (out->dirty_prev)
		out->dirty_prev->out.dirty_next = out->dirty_next;
	else
		s->server->dirty_first = out->dirty_next;
	if (out->dirty_next)
		out->dirty_next->out.dirty_prev = out->dirty_prev;
	out->is_dirty = false;
	out->dirty_prev = out->dirty_next = NULL;
}

void output_forget(struct session *s)
{
	unmark(s);
	outq_clear(&s->out.queue);
}

size_t output_pending(const struct session *s)
{
	return s->out.queue.bytes + s->out.in_lws;
}

/*
 * Stop reading a client whose replies pile up past half the queue limit, and
 * read again below a quarter; a client that reads nothing meets 4109 first.
 * A session waiting for the client's close always reads.
 */
static void adjust_rx(struct session *s)
{
	size_t limit = s->server->config->max_queued_bytes, pending = output_pending(s);
	bool pause = s->close_state == CLOSE_NONE && pending > limit / 2;

	if (pause == s->out.is_rx_paused || (!pause && pending > limit / 4 && s->close_state == CLOSE_NONE))
		return;
	s->out.is_rx_paused = pause;
	lws_rx_flow_control(s->wsi, pause ? 0 : 1);
}

/* The socket failed under lws: nothing more goes out (choked for good); lws closes it from its loop. */
static void drop(struct session *s)
{
	s->out.is_choked = true;
	outq_clear(&s->out.queue);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void set_cork(struct session *s, int on)
{
	int fd = lws_get_socket_fd(s->wsi);

	if (fd >= 0 && !setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)))
		s->out.is_corked = on;
}

void output_cork(struct session *s)
{
	set_cork(s, 1);
}

void output_limit_kernel_share(struct session *s, unsigned bytes)
{
	int fd = lws_get_socket_fd(s->wsi), value = (int)bytes;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value, sizeof(value));
}

static int write_raw(struct session *s, unsigned char *buf, size_t len)
{
	if (lws_write(s->wsi, buf, len, LWS_WRITE_HTTP) < 0) {
		drop(s);
		return -1;
	}
	if (lws_partial_buffered(s->wsi)) {
		s->out.is_choked = true;
		s->out.in_lws = (unsigned)len;
	}
	if (s->out.is_corked)
		set_cork(s, 0); /* what is held goes now, with this */
	return 0;
}

int output_write_now(struct session *s, const unsigned char *frame, size_t len)
{
	memcpy(batch + LWS_PRE, frame, len);
	return write_raw(s, batch + LWS_PRE, len);
}

static void count_out(struct session *s, const struct outmsg *msg)
{
	s->server->metrics.messages_out++;
	s->server->metrics.bytes_out += msg->payload_len;
}

/* Appends the close frame once the queue is empty; then only the client's close can come. */
static size_t add_close(struct session *s, unsigned char *p)
{
	if (s->close_state != CLOSE_DECIDED || outq_peek(&s->out.queue))
		return 0;
	s->close_state = CLOSE_SENT;
	return frame_write_close(p, s->close_code, s->close_reason, s->close_reason_len);
}

static void flush(struct session *s)
{
	struct session_output *out = &s->out;
	unsigned char *start = batch + LWS_PRE;
	struct outmsg *msg;

	while (!out->is_choked && s->close_state <= CLOSE_DECIDED) {
		size_t n = 0;

		if (out->is_ping_due && s->close_state == CLOSE_NONE)
			n += frame_write_ping(start, s->hb.ping_sent_ms);
		out->is_ping_due = false;
		msg = outq_peek(&out->queue);
		if (msg && !n && msg->len > OUTPUT_BATCH_MAX / 2) {
			/* big: straight from the shared buffer, no copy */
			count_out(s, msg);
			msg = outmsg_ref(msg);
			outq_pop(&out->queue);
			int rc = write_raw(s, msg->frame, msg->len);
			outmsg_unref(msg);
			if (rc)
				return;
			continue;
		}
		for (; msg && n + msg->len <= OUTPUT_BATCH_MAX - 2 - FRAME_CONTROL_MAX; msg = outq_peek(&out->queue)) {
			memcpy(start + n, msg->frame, msg->len);
			n += msg->len;
			count_out(s, msg);
			outq_pop(&out->queue);
		}
		n += add_close(s, start + n);
		if (!n || write_raw(s, start, n))
			break;
	}
	if (s->close_state == CLOSE_SENT && s->is_close_final)
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC); /* lws flushes, then ends TCP */
	adjust_rx(s);
}

void output_flush_all(struct wsg_server *server)
{
	struct session *s;

	while ((s = server->dirty_first)) {
		unmark(s);
		flush(s);
	}
}

void output_writeable(struct session *s)
{
	s->out.is_choked = false;
	s->out.in_lws = 0;
	if (lws_partial_buffered(s->wsi)) {
		/* a pong lws wrote itself may still be on its way */
		s->out.is_choked = true;
		lws_callback_on_writable(s->wsi);
		return;
	}
	flush(s);
}
