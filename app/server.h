/*
 * The running server: configuration, the lws context, the registry and the
 * heartbeat wheel, and the session lifecycle operations the protocol
 * callbacks dispatch to (app/server.c, app/handshake.c, app/session.c).
 */
#ifndef WSGATE_SERVER_H
#define WSGATE_SERVER_H

#include <ev.h>
#include <libwebsockets.h>
#include <stdbool.h>

#include "addrcount.h"
#include "app.h"
#include "auth.h"
#include "config.h"
#include "heartbeat.h"
#include "message.h"
#include "metrics.h"
#include "registry.h"
#include "router.h"
#include "session.h"

struct wsg_server {
	const struct wsg_app *app; /* the application this core runs: wsg_application */
	struct wsg_config *config;
	struct lws_context *context;
	struct registry registry;
	struct addrcount per_address; /* sessions per client address: limits.max_per_ip */
	struct router router;
	struct metrics metrics;
	struct hb_wheel wheel;
	struct hb_policy heartbeat;
	lws_sorted_usec_list_t tick;
	size_t live_sessions; /* upgraded connections, admitted or being refused */
	struct memory_trim {
		uint64_t last_ms, handshakes;
		size_t sessions, peak_sessions;
	} trim; /* when freed memory last went back to the system (server.c) */
	/*
	 * Our own libev loop (epoll), lent to lws: lws's built-in loop polls
	 * every descriptor on each wakeup, O(sessions) per ping or pong.
	 */
	struct ev_loop *loop;
	ev_signal on_sigterm, on_sigint;
	ev_prepare before_wait;	     /* flushes every session's corked output, and the log */
	struct session *dirty_first; /* sessions with output to flush this loop turn */
	bool is_stopping;
	uint64_t stop_deadline_ms;
	/*
	 * http.root: lws's file mount at "/", shared by both listeners (set in
	 * create_listener); the root is copied so that the vhosts never point into
	 * a configuration that a reload may free.
	 */
	struct lws_http_mount www_mount;
	char www_root[WSG_HTTP_ROOT_MAX + 1];
	struct wsg_ops *ops;	 /* reload, drain, token expiry, shared listeners (app/ops.c) */
	struct cluster *cluster; /* NULL without a `cluster` group (app/cluster.c) */
};

/* ---- the process: context, listeners, tick, run loop (app/server.c) ---- */
int server_init(struct wsg_server *server, struct wsg_config *config);
/* Serves until SIGTERM/SIGINT, then closes every session with 1001 within grace_ms. */
int server_run(struct wsg_server *server);
void server_free(struct wsg_server *server);

/* ---- the handshake decision and the session's start (app/handshake.c) ---- */
/* The handshake decision for this connection (auth, origin, device, capacity, shutdown). */
void server_decide(struct wsg_server *server, struct lws *wsi, struct auth_verdict *verdict);
/* how: "status=403" for an HTTP refusal; refusals after the upgrade log at session end */
void server_log_refusal(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *verdict,
			const char *how);

/*
 * At the upgrade (FILTER_PROTOCOL_CONNECTION), the one handshake decision.
 * Returns the verdict; the session is begun unless it is refused with
 * auth.reject = "http", where the caller answers with the HTTP status.
 */
void server_session_begin(struct wsg_server *server, struct session *s, struct lws *wsi, struct auth_verdict *v);
/* ---- a session's life and its close path (app/session.c) ---- */
/* After the 101: admit (welcome, heartbeat) or carry out the refusal / repeat policy. */
void session_established(struct session *s);
/* Registers, welcomes and starts the heartbeat of a session whose (user, device) is its own (the cluster's claim). */
void session_admit(struct session *s);
/*
 * The one place a server-side close is decided: the close frame follows what
 * the session was already sent, in the same write when it can.
 */
void session_close(struct session *s, int code, const char *reason);
/* A complete, or partial, received message. */
void session_receive(struct session *s, const void *in, size_t len, bool is_first, bool is_final, bool is_binary);
void session_pong(struct session *s);
/* The client's close frame; returns -1: the TCP connection ends once the answer is out. */
int session_peer_closed(struct session *s, const unsigned char *payload, size_t len);
void session_end(struct session *s);

/*
 * libwebsockets found the client breaking RFC 6455 (a reserved bit or
 * opcode, a bad continuation, a fragmented control frame): fail the
 * connection (7.1.7), with the close frame written at once and no wait for
 * the client's answer. False when wsi is not an open session.
 */
bool session_fail(struct lws *wsi, int code, const unsigned char *reason, size_t len);

/* True once the session's close is decided (by either side): nothing more is queued for it. */
static inline bool session_has_close(const struct session *s)
{
	return s->close_state != CLOSE_NONE;
}

static inline struct session *session_of_entry(struct registry_entry *e)
{
	return lws_container_of(e, struct session, entry);
}

/*
 * Queues msg (a new reference) for s, sent at the end of this loop turn.
 * Returns -1 when it is not queued: the session is closing, or this message
 * would pass limits.max_queued_bytes, which closes it with 4109 "slow
 * consumer" and frees its queue.
 */
int session_queue(struct session *s, struct outmsg *msg);

#endif
