/*
 * Server lifecycle and session operations on libwebsockets: the handshake
 * verdict, admission and the repeat-connect policy, heartbeat ticks, the
 * single path every server-side close takes, and graceful shutdown. Output
 * goes through app/output.c. Work per session is O(1); only whole-server
 * events (shutdown) walk the sessions.
 */
#include "server.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "log.h"
#include "message.h"
#include "netaddr.h"
#include "ops.h"
#include "output.h"
#include "tls.h"
#include "protocols.h"
#include "util.h"

/*
 * lws allocates this per connection for received frames: most of an idle
 * session's memory at 4 KB. Data messages bigger than it arrive in pieces
 * that session_receive joins in a buffer of their own, freed after use. It
 * must hold a whole control frame (125 bytes): lws hands a ping or close
 * payload cut at this size on as if it were complete.
 */
#define WSG_RX_BUFFER_SIZE 128
/*
 * Largest single send: lws cuts a frame into pieces of this size and copies
 * the rest into the connection's own buffer, which for a shared fan-out
 * buffer would mean one copy per recipient. The kernel takes whole frames.
 */
#define WSG_TX_PACKET_SIZE (256 * 1024)
/* A session told to close gets this long to flush its close frame and hear the client's before it is cut. */
#define WSG_CLOSE_FLUSH_MS 5000

/*
 * One protocol for the whole listener. lws binds every new connection, and
 * every upgrade that names no subprotocol (wscat, most browsers), to the
 * vhost's first protocol, so the WebSocket protocol comes first and its
 * callback hands the HTTP-phase reasons (including HTTP_CONFIRM_UPGRADE, where
 * refusals happen) to protocols/protocol_http.c.
 */
static const struct lws_protocols server_protocols[] = {
	{ .name = WSG_PROTOCOL_WS,
	  .callback = protocol_ws_callback,
	  .per_session_data_size = sizeof(struct session),
	  .rx_buffer_size = WSG_RX_BUFFER_SIZE,
	  .tx_packet_size = WSG_TX_PACKET_SIZE },
	{ 0 } /* terminator */
};

static struct session *session_of_timer(struct hb_timer *t)
{
	return lws_container_of(t, struct session, hb.timer);
}

/* ---- handshake ---- */

struct handshake {
	/* one byte longer than the longest configured token, so a cut one never matches */
	char token[4096 + 2];
	char device[512];
	char origin[512];
	bool has_token, has_device, has_origin;
};

static void read_handshake(struct lws *wsi, struct handshake *hs)
{
	char arg[4200];
	const char *v;

	memset(hs, 0, sizeof(*hs));

	v = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));
	if (v) {
		hs->has_token = true;
		util_strlcpy(hs->token, v, sizeof(hs->token));
	} else if (lws_hdr_copy(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
		v = auth_bearer_token(arg);
		if (v) {
			hs->has_token = true;
			util_strlcpy(hs->token, v, sizeof(hs->token));
		}
	}
	v = lws_get_urlarg_by_name(wsi, "device=", arg, sizeof(arg));
	if (v) {
		hs->has_device = true;
		/* an over-long id is cut to a length that fails validation, never silently dropped */
		util_strlcpy(hs->device, v, sizeof(hs->device));
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
		hs->has_origin = true;
		if (lws_hdr_copy(wsi, hs->origin, sizeof(hs->origin), WSI_TOKEN_ORIGIN) < 0)
			util_strlcpy(hs->origin, "(too long)", sizeof(hs->origin));
	}
}

static void decide(struct wsg_server *server, const struct handshake *hs, const char *peer, struct auth_verdict *v)
{
	struct auth_request req = {
		.token = hs->has_token ? hs->token : NULL,
		.device = hs->has_device ? hs->device : NULL,
		.origin = hs->has_origin ? hs->origin : NULL,
		.now_ms = util_wall_ms(), /* token expiry */
	};
	const struct wsg_config *config = server->config;

	if (server->is_stopping) {
		auth_refuse(v, HANDSHAKE_SHUTTING_DOWN, WSG_CLOSE_SHUTDOWN, NULL);
		return;
	}
	if (ops_refuses_upgrades(server)) {
		auth_refuse(v, HANDSHAKE_DRAINING, WSG_CLOSE_AT_CAPACITY, "server draining");
		return;
	}
	auth_decide(config, &req, v);
	if (v->close_code)
		return;
	if (config->max_per_ip && addrcount_get(&server->per_address, peer) >= config->max_per_ip) {
		auth_refuse(v, HANDSHAKE_PER_ADDRESS_LIMIT, WSG_CLOSE_AT_CAPACITY,
			    "too many connections from this address");
		v->http_status = 429;
		return;
	}
	if (registry_count(&server->registry) < config->max_sessions)
		return;
	/* replacing an existing session does not need a new slot */
	if (config->on_repeat == WSG_REPEAT_REPLACE_OLD &&
	    registry_find(&server->registry, v->token->user, req.device ? req.device : ""))
		return;
	auth_refuse(v, HANDSHAKE_AT_CAPACITY, WSG_CLOSE_AT_CAPACITY, NULL);
}

static void client_address(const struct wsg_server *server, struct lws *wsi, char *out, size_t len, char *via,
			   size_t vialen);

void server_decide(struct wsg_server *server, struct lws *wsi, struct auth_verdict *verdict)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX];
	struct handshake hs;

	read_handshake(wsi, &hs);
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	decide(server, &hs, peer, verdict);
}

/*
 * The client's address: the TCP peer, or, when the peer is a trusted proxy,
 * the address it forwarded. via gets the proxy's address ("" when direct).
 */
static void client_address(const struct wsg_server *server, struct lws *wsi, char *out, size_t len, char *via,
			   size_t vialen)
{
	char peer[WSG_PEER_MAX], forwarded[1024] = "", real_ip[WSG_PEER_MAX] = "";
	const struct wsg_config *config = server->config;

	if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
		util_strlcpy(peer, "unknown", sizeof(peer));
	via[0] = '\0';
	if (config->trusted_proxy_count) {
		/* present but too long to read: believe no forwarded header, X-Real-IP neither */
		if (lws_hdr_copy(wsi, forwarded, sizeof(forwarded), WSI_TOKEN_X_FORWARDED_FOR) < 0) {
			util_strlcpy(out, peer, len);
			return;
		}
		/* a known token in Debian's lws (UNCOMMON_HEADERS), so not a custom header */
		if (lws_hdr_copy(wsi, real_ip, sizeof(real_ip), WSI_TOKEN_HTTP_X_REAL_IP) < 0)
			real_ip[0] = '\0';
	}
	if (netaddr_client_address(peer, forwarded, real_ip, config->trusted_proxies, config->trusted_proxy_count, out,
				   len))
		util_strlcpy(via, peer, vialen);
}

void server_log_refusal(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *v, const char *how)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX], reason[256];

	server->metrics.handshakes[v->outcome]++;
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	log_event(LOG_INFO, "handshake_refused", "peer=%s%s%s code=%d reason=%s %s", peer, *via ? " via=" : "", via,
		  v->close_code, log_quote(reason, sizeof(reason), v->reason, strlen(v->reason)), how);
}

/* ---- session lifecycle ---- */

/* "user\0device\0peer\0via\0" in one allocation: no field sized for the worst case. */
static int set_names(struct session *s, const char *user, const char *device, const char *peer, const char *via)
{
	size_t ul = strlen(user) + 1, dl = strlen(device) + 1, pl = strlen(peer) + 1, vl = strlen(via) + 1;
	char *p = malloc(ul + dl + pl + vl);

	if (!p)
		return -1;
	s->names = p;
	s->user = memcpy(p, user, ul);
	s->device = memcpy(p + ul, device, dl);
	memcpy(p + ul + dl, peer, pl);
	memcpy(p + ul + dl + pl, via, vl);
	s->entry.user = s->user;
	s->entry.device = s->device;
	return 0;
}

void server_session_begin(struct wsg_server *server, struct session *s, struct lws *wsi, struct auth_verdict *v)
{
	char peer[WSG_PEER_MAX], via[WSG_PEER_MAX];
	struct handshake hs;

	read_handshake(wsi, &hs);
	client_address(server, wsi, peer, sizeof(peer), via, sizeof(via));
	decide(server, &hs, peer, v);
	/* an upgrade is a GET: no request body can be pending here */
	memset(s, 0, sizeof(*s));
	if (v->close_code && server->config->reject == WSG_REJECT_HTTP)
		return; /* answered with an HTTP status: no session */
	s->wsi = wsi;
	s->server = server;
	s->close_code = (uint16_t)v->close_code;
	s->close_reason = v->reason;
	s->refusal_outcome = (uint8_t)v->outcome;
	s->token = v->token;
	if (!v->close_code && server->config->max_per_ip)
		s->is_counted_by_address = !addrcount_add(&server->per_address, peer);
	if (set_names(s, v->token ? v->token->user : "", v->token && hs.has_device ? hs.device : "", peer, via)) {
		static const char no_names[4] = ""; /* four empty strings */
		s->close_code = WSG_CLOSE_INTERNAL_ERROR;
		s->close_reason = NULL;
		s->refusal_outcome = HANDSHAKE_INTERNAL_ERROR;
		s->user = no_names;
		s->device = no_names + 1;
	}
	/* lws writes the 101 once this returns; the welcome (or the close) follows within the loop turn */
	output_cork(s);
	output_limit_kernel_share(s, server->config->send_buffer_bytes);
}

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

/* ---- heartbeat ---- */

static void on_heartbeat_due(struct hb_timer *timer, void *ctx)
{
	struct wsg_server *server = ctx;
	struct session *s = session_of_timer(timer);

	if (session_has_close(s)) {
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return;
	}
	switch (heartbeat_on_due(&server->wheel, &s->hb, &server->heartbeat, util_now_ms())) {
	case HB_REARMED:
		break;
	case HB_SEND_PING:
		s->out.is_ping_due = true;
		output_mark(s);
		break;
	case HB_TIMED_OUT:
		server->metrics.heartbeat_timeouts++;
		session_close(s, WSG_CLOSE_HEARTBEAT_TIMEOUT, NULL);
		break;
	}
}

static void stop_when_done(struct wsg_server *server)
{
	if (server->is_stopping && (!server->live_sessions || util_now_ms() >= server->stop_deadline_ms))
		ev_break(server->loop, EVBREAK_ALL);
}

static void on_tick(lws_sorted_usec_list_t *sul);

/* The next tick lands on the wheel's next tick boundary, so a due timer is never a whole tick late. */
static void schedule_tick(struct wsg_server *server)
{
	uint64_t now = util_now_ms(), next = (now / server->wheel.tick_ms + 1) * server->wheel.tick_ms;

	lws_sul_schedule(server->context, 0, &server->tick, on_tick, (lws_usec_t)(next - now) * LWS_US_PER_MS);
}

/*
 * glibc keeps the heap a burst of connections grew, so RSS stayed ~60% above
 * the baseline after 20,000 handshakes had come and gone. At most once a
 * second, after sessions fell by a tenth or many handshakes passed with no
 * more sessions than before, the free memory goes back to the system.
 */
static void trim_after_churn(struct wsg_server *server, uint64_t now)
{
	struct memory_trim *t = &server->trim;
	uint64_t handshakes = 0;

	if (server->live_sessions > t->peak_sessions)
		t->peak_sessions = server->live_sessions;
	if (now < t->last_ms + 1000)
		return;
	for (int i = 0; i < HANDSHAKE_OUTCOME_COUNT; i++)
		handshakes += server->metrics.handshakes[i];
	bool has_fallen = server->live_sessions + server->live_sessions / 10 < t->peak_sessions;
	bool has_churned = handshakes >= t->handshakes + 1000 && server->live_sessions <= t->sessions;
	if (has_fallen || has_churned)
		malloc_trim(0);
	if (has_fallen || has_churned || server->live_sessions > t->sessions) {
		t->last_ms = now;
		t->sessions = t->peak_sessions = server->live_sessions;
		t->handshakes = handshakes;
	}
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct wsg_server *server = lws_container_of(sul, struct wsg_server, tick);

	hb_wheel_advance(&server->wheel, util_now_ms(), on_heartbeat_due, server);
	trim_after_churn(server, util_now_ms());
	ops_tick(server); /* token expiries, drain */
	/* channels kept only by a history that has expired */
	router_expire(&server->router, util_now_ms());
	stop_when_done(server);
	schedule_tick(server);
}

/* ---- process ---- */

static void log_from_lws(int level, const char *line)
{
	char msg[512];
	size_t len = strlen(line);

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	log_event(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "msg=%s", log_quote(msg, sizeof(msg), line, len));
}

/*
 * No lws validity timers: lws's default policy re-inserts a per-connection
 * timer into one sorted list on every pong (O(sessions) each); our wheel
 * does that job in O(1).
 */
static const lws_retry_bo_t no_lws_validity_timer = { .secs_since_valid_hangup = 0 };

/* One vhost per listener; both serve the same protocol and share every session structure. */
static int create_listener(struct wsg_server *server, const char *address, int port, bool is_tls)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = is_tls ? "wss" : "ws";
	info.port = port;
	info.iface = address;
	info.protocols = server_protocols;
	info.retry_and_idle_policy = &no_lws_validity_timer;
	info.timeout_secs_ah_idle = (server->config->handshake_timeout_ms + 999) / 1000;
	if (!strchr(address, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (is_tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = server->config->tls_cert;
		info.ssl_private_key_filepath = server->config->tls_key;
		info.ssl_cipher_list = WSG_TLS12_CIPHERS;
		info.tls1_3_plus_cipher_list = WSG_TLS13_CIPHERS;
		info.ssl_options_set = tls_protocol_options();
		/* WebSocket upgrades are HTTP/1.1; do not offer h2 */
		info.alpn = "http/1.1";
	}
	/* ---- http.root: static files with lws's own mount (MIME types from lws's table) ---- */
	if (server->config->http_root) {
		util_strlcpy(server->www_root, server->config->http_root, sizeof(server->www_root));
		/* a path naming no file falls through to LWS_CALLBACK_HTTP; upgrades never reach it */
		server->www_mount = (struct lws_http_mount){ .mountpoint = "/",
							     .mountpoint_len = 1,
							     .origin = server->www_root,
							     .def = "index.html",
							     .origin_protocol = LWSMPRO_FILE };
		info.mounts = &server->www_mount;
	}
	/* ---- end http.root ---- */
	/* listen.reuse_port: wsgate's own SO_REUSEPORT listener feeds the vhost (app/ops.c) */
	if (server->config->listen_reuse_port)
		info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	struct lws_vhost *vhost = lws_create_vhost(server->context, &info);
	if (!vhost) {
		log_event(LOG_ERROR, "startup", "msg=\"cannot listen on %s:%d%s\"", address, port,
			  is_tls ? " (tls)" : "");
		return -1;
	}
	if (server->config->listen_reuse_port)
		return ops_listen(server, vhost, address, port, is_tls);
	return 0;
}

int server_init(struct wsg_server *server, struct wsg_config *config)
{
	struct lws_context_creation_info info;
	uint64_t now = util_now_ms();

	memset(server, 0, sizeof(*server));
	server->app = &wsg_application;
	server->config = config;
	server->heartbeat.interval_ms = config->heartbeat_interval_ms;
	server->heartbeat.timeout_ms = config->heartbeat_timeout_ms;
	if (registry_init(&server->registry, config->max_sessions < 65536 ? config->max_sessions : 65536) ||
	    addrcount_init(&server->per_address) || router_init(&server->router) ||
	    hb_wheel_init(&server->wheel, hb_tick_ms_for(config->heartbeat_interval_ms, config->heartbeat_timeout_ms),
			  1024, now)) {
		log_event(LOG_ERROR, "startup", "msg=\"out of memory\"");
		return -1;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, log_from_lws);
	server->loop = ev_loop_new(EVBACKEND_EPOLL);
	if (!server->loop) {
		log_event(LOG_ERROR, "startup", "msg=\"cannot create the epoll event loop\"");
		return -1;
	}
	void *foreign_loops[1] = { server->loop };
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_LIBEV |
		       (config->has_tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
	info.foreign_loops = foreign_loops;
	/*
	 * From accept to the upgrade: lws times the connection (waiting for
	 * headers, then holding its header table) in whole seconds. Never a
	 * session until then, so a slow or silent client costs one descriptor.
	 */
	info.timeout_secs = (config->handshake_timeout_ms + 999) / 1000;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = server_protocols;
	info.user = server;
	server->context = lws_create_context(&info);
	if (!server->context) {
		log_event(LOG_ERROR, "startup", "msg=\"cannot create the libwebsockets context\"");
		return -1;
	}
	if (ops_init(server) || cluster_init(server) ||
	    create_listener(server, config->listen_address, config->listen_port, false) ||
	    (config->has_tls && create_listener(server, config->tls_address, config->tls_port, true)))
		return -1;
	schedule_tick(server);
	return 0;
}

/* libev runs this in the loop, not in a signal handler: any work is safe here. */
static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct wsg_server *server = w->data;

	(void)loop;
	(void)revents;
	if (server->is_stopping)
		return;
	server->is_stopping = true;
	server->stop_deadline_ms = util_now_ms() + server->config->shutdown_grace_ms;
	log_event(LOG_INFO, "shutdown", "signal=%s sessions=%zu grace_ms=%u",
		  w->signum == SIGINT ? "SIGINT" : "SIGTERM", registry_count(&server->registry),
		  server->config->shutdown_grace_ms);
	/* each close takes its session out of the registry */
	for (struct registry_entry *e; (e = registry_first(&server->registry));)
		session_close(session_of_entry(e), WSG_CLOSE_SHUTDOWN, NULL);
}

/* Once per loop turn, before it waits: every session's output in one write each, and the log. */
static void before_wait(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	output_flush_all(w->data);
	log_flush();
}

int server_run(struct wsg_server *server)
{
	signal(SIGPIPE, SIG_IGN);
	ev_prepare_init(&server->before_wait, before_wait);
	server->before_wait.data = server;
	ev_prepare_start(server->loop, &server->before_wait);
	log_set_buffered(true);
	ev_signal_init(&server->on_sigterm, on_stop_signal, SIGTERM);
	ev_signal_init(&server->on_sigint, on_stop_signal, SIGINT);
	server->on_sigterm.data = server->on_sigint.data = server;
	ev_signal_start(server->loop, &server->on_sigterm);
	ev_signal_start(server->loop, &server->on_sigint);

	log_event(LOG_INFO, "listening", "address=%s port=%d path=%s version=%s", server->config->listen_address,
		  server->config->listen_port, server->config->ws_path, WSGATE_VERSION);
	if (server->config->has_tls)
		log_event(LOG_INFO, "listening", "address=%s port=%d path=%s tls=yes", server->config->tls_address,
			  server->config->tls_port, server->config->ws_path);
	ev_run(server->loop, 0);
	log_event(LOG_INFO, "stopped", "sessions_left=%zu", server->live_sessions);
	log_set_buffered(false);
	return 0;
}

static void ignore_stop_signals(void)
{
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
}

void server_free(struct wsg_server *server)
{
	if (server->context)
		lws_context_destroy(server->context);
	server->context = NULL;
	cluster_free(server); /* after the sessions (their claims), before the loop */
	ops_free(server);
	if (server->loop) {
		/*
		 * A second SIGTERM during teardown must not kill us: libev unblocks a
		 * signalfd signal or restores SIG_DFL when its watcher stops, so the
		 * signals are ignored both before and after.
		 */
		ignore_stop_signals();
		ev_signal_stop(server->loop, &server->on_sigterm);
		ev_signal_stop(server->loop, &server->on_sigint);
		ev_prepare_stop(server->loop, &server->before_wait);
		ignore_stop_signals();
		ev_loop_destroy(server->loop);
		server->loop = NULL;
	}
	hb_wheel_free(&server->wheel);
	router_free(&server->router);
	registry_free(&server->registry);
	addrcount_free(&server->per_address);
}
