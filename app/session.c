/*
 * One session after the upgrade: admission and the repeat-connect policy,
 * received messages, the single path every server-side close takes
 * (session_close), the client's close and its answer, and the session's end.
 * Output goes through app/output.c. Work per session is O(1).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "frame.h"
#include "log.h"
#include "ops.h"
#include "output.h"
#include "util.h"

/* A session told to close gets this long to flush its close frame and hear the client's before it is cut. */
#define WSG_CLOSE_FLUSH_MS 5000

int session_queue(struct session *s, struct outmsg *msg)
{
	const struct wsg_config *config = s->server->config;

	if (session_has_close(s))
		return -1;
	if (output_pending(s) + msg->len > config->max_queued_bytes) {
		s->server->metrics.slow_consumers++;
		outq_clear(&s->out.queue); /* its memory goes now, not when the peer finally reads */
		session_close(s, WSG_CLOSE_SLOW_CONSUMER, NULL);
		return -1;
	}
	if (outq_push(&s->out.queue, msg))
		return -1;
	output_mark(s);
	return 0;
}

static void admit(struct session *s)
{
	struct wsg_server *server = s->server;
	struct registry_entry *existing = registry_find(&server->registry, s->user, s->device);

	if (existing) {
		if (server->config->on_repeat == WSG_REPEAT_REJECT_NEW) {
			server->metrics.handshakes[HANDSHAKE_REPEAT_CONNECT]++;
			session_close(s, WSG_CLOSE_REPEAT_CONNECT, NULL);
			return;
		}
		/* out of the registry now, so the key is free at once; it closes on its next writeable */
		struct session *old = session_of_entry(existing);
		registry_remove(&server->registry, existing);
		session_close(old, WSG_CLOSE_REPLACED, NULL);
	}
	if (util_random_hex(s->id, WSG_SESSION_ID_LEN / 2)) {
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
		return;
	}
	/* in a cluster the claim in Redis decides; session_admit follows its answer (app/cluster.c) */
	if (!cluster_claim(s))
		session_admit(s);
}

void session_admit(struct session *s)
{
	struct wsg_server *server = s->server;

	if (registry_add(&server->registry, &s->entry)) {
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
		return;
	}
	s->is_admitted = true;
	heartbeat_start(&server->wheel, &s->hb, &server->heartbeat, s->opened_ms);
	ops_session_admitted(s); /* its token's expiry */
	server->metrics.handshakes[HANDSHAKE_ADMITTED]++;
	if (server->app->on_open && server->app->on_open(s)) {
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
		return;
	}
	log_event(LOG_INFO, "session_open", "session=%s user=%s device=%s peer=%s%s%s", s->id, s->user,
		  *s->device ? s->device : "-", session_peer(s), *session_via(s) ? " via=" : "", session_via(s));
}

void session_established(struct session *s)
{
	s->opened_ms = util_now_ms();
	s->is_established = true;
	s->server->live_sessions++;
	if (s->refusal_outcome != HANDSHAKE_ADMITTED) {
		s->server->metrics.handshakes[s->refusal_outcome]++;
		session_close(s, s->close_code, s->close_reason);
		return;
	}
	admit(s);
}

/* The close reason as the session's own copy of text (a client's, or one not in the table). */
static void keep_reason(struct session *s, const void *text, size_t len)
{
	char *copy = malloc(len + 1);

	s->is_reason_owned = copy != NULL;
	if (!copy) {
		s->close_reason = "";
		s->close_reason_len = 0;
		return;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	s->close_reason = copy;
	s->close_reason_len = (uint8_t)len;
}

static void drop_reason(struct session *s)
{
	if (s->is_reason_owned)
		free((char *)s->close_reason);
	s->is_reason_owned = false;
	s->close_reason = NULL;
}

void session_close(struct session *s, int code, const char *reason)
{
	const struct wsg_close_info *info = closecode_find(code);

	if (session_has_close(s))
		return;
	s->close_state = CLOSE_DECIDED;
	s->closed_by = CLOSED_BY_SERVER;
	/* waiting for the close handshake of a peer that is gone or not reading only costs time */
	s->is_close_final = code == WSG_CLOSE_HEARTBEAT_TIMEOUT || code == WSG_CLOSE_SLOW_CONSUMER;
	s->token = NULL; /* past every permission check; a reload frees the entries of the config it replaces */
	s->close_code = code;
	if (!reason || (info && !strcmp(reason, info->reason)))
		s->close_reason = info ? info->reason : "";
	else
		keep_reason(s, reason, strlen(reason));
	s->close_reason_len = (uint8_t)closecode_reason_len(s->close_reason, strlen(s->close_reason));
	/* out of the registry now: its (user, device) is free for a reconnect at once */
	registry_remove(&s->server->registry, &s->entry);
	output_mark(s);
	/*
	 * A peer that stopped reading never takes its close frame: the session's
	 * wheel timer now holds the deadline to cut it (lws_set_timeout would
	 * cost a sorted insert per session when thousands close at once).
	 */
	hb_wheel_arm(&s->server->wheel, &s->hb.timer, util_now_ms() + WSG_CLOSE_FLUSH_MS);
}

static void handle_message(struct session *s, const unsigned char *data, size_t len, bool is_binary)
{
	if (!is_binary && !util_is_valid_utf8(data, len))
		session_close(s, WSG_CLOSE_INVALID_UTF8, NULL);
	else if (s->server->app->on_message(s, data, len, is_binary))
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
}

void session_receive(struct session *s, const void *in, size_t len, bool is_first, bool is_final, bool is_binary)
{
	size_t max = s->server->config->max_message_bytes;

	heartbeat_seen(&s->hb, util_now_ms());
	if (session_has_close(s))
		return; /* its close is on the way, after what it was sent */
	if (is_binary && !s->server->app->accepts_binary)
		return session_close(s, WSG_CLOSE_UNSUPPORTED_DATA, NULL);
	if (is_first && is_final && !s->rx) {
		if (len > max)
			return session_close(s, WSG_CLOSE_MESSAGE_TOO_BIG, NULL);
		return handle_message(s, in, len, is_binary); /* the common case: no copy */
	}
	if (is_first && s->rx)
		s->rx->len = s->rx->utf8_state = 0;
	size_t have = s->rx ? s->rx->len : 0;
	if (have + len > max)
		return session_close(s, WSG_CLOSE_MESSAGE_TOO_BIG, NULL);
	if (!s->rx || have + len > s->rx->cap) {
		size_t cap = s->rx ? s->rx->cap : 1024;
		while (cap < have + len)
			cap *= 2;
		if (cap > max)
			cap = max;
		struct rx_message *rx = realloc(s->rx, sizeof(*rx) + cap);
		if (!rx)
			return session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
		if (!s->rx)
			rx->utf8_state = 0;
		rx->len = have;
		rx->cap = cap;
		s->rx = rx;
	}
	/* RFC 6455 8.1: fail at the first invalid byte, not when the message ends */
	if (!is_binary && !util_utf8_feed(&s->rx->utf8_state, in, len, is_final))
		return session_close(s, WSG_CLOSE_INVALID_UTF8, NULL);
	memcpy(s->rx->data + have, in, len);
	s->rx->len += len;
	if (!is_final)
		return;
	struct rx_message *rx = s->rx;
	s->rx = NULL; /* idle sessions should not keep a big message's buffer */
	if (s->server->app->on_message(s, rx->data, rx->len, is_binary))
		session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL);
	free(rx);
}

void session_pong(struct session *s)
{
	/* a closing session's timer holds its flush deadline: leave it */
	if (session_has_close(s) || !s->is_admitted)
		return;
	heartbeat_pong(&s->server->wheel, &s->hb, &s->server->heartbeat, util_now_ms());
}

/*
 * The answer to a client's close (RFC 6455 5.5.1, 7.4): its own code and
 * reason when they are valid, 1002 for a one-byte payload or a code nobody
 * may send (RFC 6455 7.4; lws turns some of those, not all, into 1002 first),
 * 1007 for a reason that is not UTF-8.
 */
static size_t close_answer(unsigned char *frame, const unsigned char *payload, size_t len)
{
	static const char protocol_error[] = "protocol error", invalid_utf8[] = "invalid UTF-8";

	if (!len)
		return frame_write_close(frame, 0, NULL, 0);
	if (len == 1 || !closecode_is_sendable((payload[0] << 8) | payload[1]))
		return frame_write_close(frame, WSG_CLOSE_PROTOCOL_ERROR, protocol_error, sizeof(protocol_error) - 1);
	if (!util_is_valid_utf8(payload + 2, len - 2))
		return frame_write_close(frame, WSG_CLOSE_INVALID_UTF8, invalid_utf8, sizeof(invalid_utf8) - 1);
	return frame_write_close(frame, (payload[0] << 8) | payload[1], (const char *)payload + 2, len - 2);
}

int session_peer_closed(struct session *s, const unsigned char *payload, size_t len)
{
	unsigned char frame[FRAME_HEADER_MAX + FRAME_CONTROL_MAX];

	if (!s->server)
		return -1;
	switch (s->close_state) {
	case CLOSE_SENT:
	case CLOSE_BY_CLIENT:
		return -1; /* the answer to ours: the server ends TCP (RFC 6455 7.1.1) */
	case CLOSE_DECIDED:
		/* ours had not gone out yet: it answers theirs, without what was still queued */
		outq_clear(&s->out.queue);
		s->close_state = CLOSE_SENT;
		output_write_now(s, frame,
				 frame_write_close(frame, s->close_code, s->close_reason, s->close_reason_len));
		return -1;
	case CLOSE_NONE:
		break;
	}
	s->close_state = CLOSE_BY_CLIENT;
	s->closed_by = CLOSED_BY_CLIENT;
	s->token = NULL; /* as in session_close */
	registry_remove(&s->server->registry, &s->entry);
	outq_clear(&s->out.queue); /* no data frame may follow a close */
	if (len < 2) {
		s->close_code = 1005; /* RFC 6455 7.1.5: no status code was present */
	} else {
		s->close_code = (payload[0] << 8) | payload[1];
		keep_reason(s, payload + 2, len - 2 < WSG_CLOSE_REASON_MAX ? len - 2 : WSG_CLOSE_REASON_MAX);
	}
	output_write_now(s, frame, close_answer(frame, payload, len));
	return -1;
}

bool session_fail(struct lws *wsi, int code, const unsigned char *reason, size_t len)
{
	struct session *s = lws_wsi_user(wsi);
	unsigned char frame[FRAME_HEADER_MAX + FRAME_CONTROL_MAX];

	if (!s || s->wsi != wsi || !s->server || !s->is_established)
		return false;
	if (s->close_state == CLOSE_SENT || s->close_state == CLOSE_BY_CLIENT)
		return true; /* a close already went out: lws just ends TCP */
	len = closecode_reason_len((const char *)reason, len);
	outq_clear(&s->out.queue); /* failing: nothing more of it is sent */
	if (s->close_state == CLOSE_NONE) {
		s->closed_by = CLOSED_BY_SERVER;
		s->close_code = (uint16_t)code;
		keep_reason(s, reason, len);
		registry_remove(&s->server->registry, &s->entry);
	}
	s->close_state = CLOSE_SENT;
	output_write_now(s, frame, frame_write_close(frame, s->close_code, s->close_reason, s->close_reason_len));
	return true;
}

static const char *closed_by_name(enum session_closed_by by)
{
	switch (by) {
	case CLOSED_BY_SERVER:
		return "server";
	case CLOSED_BY_CLIENT:
		return "client";
	case CLOSED_BY_NONE:
		break;
	}
	return "network";
}

void session_end(struct session *s)
{
	struct wsg_server *server = s->server;
	uint64_t dur = util_now_ms() - s->opened_ms;
	char reason[300];

	if (s->is_counted_by_address && server) {
		addrcount_remove(&server->per_address, s->names ? session_peer(s) : "");
		s->is_counted_by_address = false;
	}
	/* lws reports CLOSED also when its own handshake failed after the filter */
	if (!server || !s->is_established) {
		free(s->names);
		s->names = NULL;
		drop_reason(s);
		return;
	}
	/* a drop without a close frame: logged as 1006, which is never sent on the wire */
	int code = s->closed_by == CLOSED_BY_NONE ? 1006 : s->close_code;
	log_quote(reason, sizeof(reason), s->close_reason ? s->close_reason : "", s->close_reason_len);
	hb_wheel_cancel(&server->wheel, &s->hb.timer);
	ops_session_end(s);
	registry_remove(&server->registry, &s->entry); /* first: no presence update for a session going away */
	if (s->is_admitted && server->app->on_close)
		server->app->on_close(s);
	cluster_session_end(s); /* its claim and presence in Redis */
	metrics_count_close(&server->metrics, code);
	if (s->is_admitted) {
		registry_remove(&server->registry, &s->entry);
		log_event(LOG_INFO, "session_close",
			  "session=%s user=%s device=%s peer=%s%s%s code=%d reason=%s by=%s dur_ms=%llu", s->id,
			  s->user, *s->device ? s->device : "-", session_peer(s), *session_via(s) ? " via=" : "",
			  session_via(s), code, reason, closed_by_name(s->closed_by), (unsigned long long)dur);
	} else {
		log_event(LOG_INFO, "session_refused",
			  "user=%s device=%s peer=%s%s%s code=%d reason=%s by=%s dur_ms=%llu", *s->user ? s->user : "-",
			  *s->device ? s->device : "-", session_peer(s), *session_via(s) ? " via=" : "", session_via(s),
			  code, reason, closed_by_name(s->closed_by), (unsigned long long)dur);
	}
	output_forget(s);
	free(s->names);
	s->names = NULL;
	drop_reason(s);
	free(s->rx);
	s->rx = NULL;
	server->live_sessions--;
	s->server = NULL;
}
