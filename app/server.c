/*
 * The server process on libwebsockets: the lws context and its listeners on
 * our own libev loop, the tick that drives the heartbeat wheel (and token
 * expiry, drain, history expiry, memory trim), and graceful shutdown on
 * SIGTERM/SIGINT. The handshake decision is in app/handshake.c, a session's
 * life and its close path in app/session.c; output goes through app/output.c.
 */
#include "server.h"

#include <malloc.h>
#include <signal.h>
#include <string.h>

#include "cluster.h"
#include "log.h"
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

/* ---- heartbeat ---- */

static struct session *session_of_timer(struct hb_timer *t)
{
	return lws_container_of(t, struct session, hb.timer);
}

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
