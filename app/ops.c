/*
 * Reload, token expiry, drain and shared listeners on the running server.
 * A reload swaps the configuration whole: the sessions that stay move to the
 * new token entries by digest before the old configuration is freed, so no
 * session->token ever points into freed memory. Never logs a token.
 */
#define _GNU_SOURCE /* accept4 */
#include "ops.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "message.h"
#include "server.h"
#include "util.h"

#define OPS_LISTENERS_MAX 2
/* Accepts per readable event on a listener, so one busy port cannot starve the loop. */
#define OPS_ACCEPT_BATCH 256
/*
 * After handing the port over, a draining process stays at least this long:
 * the connections it took from its listener's queue may still be on their
 * way to an upgrade, which is then admitted and drained, not cut by the exit.
 */
#define OPS_HANDOVER_MS 500

struct ops_listener {
	ev_io io;
	ev_timer pause; /* out of descriptors: the listener rests instead of spinning */
	struct wsg_server *server;
	struct lws_vhost *vhost;
	bool is_tls, is_open;
};

struct wsg_ops {
	struct hb_wheel expiry; /* each admitted session with an expiring token: one timer */
	ev_signal on_sighup, on_sigusr1;
	struct ops_listener listeners[OPS_LISTENERS_MAX];
	size_t listener_count;

	bool is_draining;
	uint64_t drain_start_ms;
	unsigned drain_ms;
	size_t drain_total;  /* sessions open when the drain began */
	size_t drain_closed; /* closed with 4200 so far */
};

static struct wsg_ops *ops_of(const struct wsg_server *server)
{
	return server->ops;
}

/* ---- token expiry ---- */

/* Only sessions whose token expires have one: an idle session pays a pointer, not a timer. */
struct session_expiry {
	struct hb_timer timer;
	struct session *session;
};

static void cancel_expiry(struct wsg_ops *ops, struct session *s)
{
	if (!s->expiry)
		return;
	hb_wheel_cancel(&ops->expiry, &s->expiry->timer);
	free(s->expiry);
	s->expiry = NULL;
}

/* The token's wall-clock expiry as a deadline on the monotonic clock the wheel runs on. */
static void arm_expiry(struct wsg_ops *ops, struct session *s)
{
	if (!s->token || !s->token->expires_ms) {
		cancel_expiry(ops, s);
		return;
	}
	if (!s->expiry) {
		s->expiry = calloc(1, sizeof(*s->expiry));
		if (!s->expiry) {
			session_close(s, WSG_CLOSE_INTERNAL_ERROR, NULL); /* its expiry could not be kept */
			return;
		}
		s->expiry->session = s;
	}
	uint64_t wall = util_wall_ms(), now = util_now_ms();
	uint64_t left = s->token->expires_ms > wall ? s->token->expires_ms - wall : 0;
	hb_wheel_arm(&ops->expiry, &s->expiry->timer, now + left);
}

static void on_expiry_due(struct hb_timer *timer, void *ctx)
{
	struct session *s = lws_container_of(timer, struct session_expiry, timer)->session;

	(void)ctx;
	if (session_has_close(s))
		return;
	session_close(s, WSG_CLOSE_TOKEN_REVOKED, "token expired");
}

void ops_session_admitted(struct session *s)
{
	arm_expiry(ops_of(s->server), s);
}

void ops_session_end(struct session *s)
{
	cancel_expiry(ops_of(s->server), s);
}

/* ---- reload ---- */

/*
 * A new heartbeat interval counts from the session's last sign of life: its
 * next ping is due then, not at the deadline the old interval set. A session
 * waiting for a pong keeps that deadline (the timeout is its next tick).
 */
static void rearm_heartbeat(struct wsg_server *server, struct session *s)
{
	if (s->hb.is_awaiting_pong || !hb_timer_is_armed(&s->hb.timer))
		return;
	hb_wheel_arm(&server->wheel, &s->hb.timer, s->hb.last_rx_ms + server->heartbeat.interval_ms);
}

/* Every open session onto the new configuration's entries, or closed when its token is gone. */
static void move_sessions(struct wsg_server *server, const struct wsg_config *loaded, bool is_new_interval,
			  struct ops_reload_result *r)
{
	struct wsg_ops *ops = ops_of(server);

	for (struct registry_entry *e = registry_first(&server->registry), *next; e; e = next) {
		struct session *s = session_of_entry(e);
		next = e->next; /* a close takes e out of the registry */
		const struct wsg_token *t = s->token ? config_find_token(loaded, s->token->digest) : NULL;
		if (!t) {
			s->token = NULL;
			session_close(s, WSG_CLOSE_TOKEN_REVOKED, NULL);
			r->revoked++;
			continue;
		}
		s->token = t;
		r->moved++;
		if (server->app->on_token_changed)
			server->app->on_token_changed(s);
		arm_expiry(ops, s);
		if (is_new_interval)
			rearm_heartbeat(server, s);
	}
}

int ops_reload(struct wsg_server *server, const char *by, struct ops_reload_result *result, char *err, size_t errlen)
{
	struct wsg_ops *ops = ops_of(server);
	struct wsg_config *running = server->config, *loaded;
	struct ops_reload_result r;
	char quoted[1200];

	memset(&r, 0, sizeof(r));
	if (config_load(running->file, &loaded, err, errlen)) {
		server->metrics.reloads_failed++;
		log_event(LOG_ERROR, "reload_failed", "by=%s msg=%s", by,
			  log_quote(quoted, sizeof(quoted), err, strlen(err)));
		return -1;
	}
	size_t changed = config_keep_restart_keys(loaded, running, r.needs_restart, 16);
	r.needs_restart_count = changed < 16 ? changed : 16;
	for (size_t i = 0; i < r.needs_restart_count; i++)
		log_event(LOG_WARN, "reload",
			  "key=%s msg=\"changed in the file, needs restart: the running value stays\"",
			  r.needs_restart[i]);

	server->config = loaded;
	bool is_new_interval = server->heartbeat.interval_ms != loaded->heartbeat_interval_ms;
	server->heartbeat.interval_ms = loaded->heartbeat_interval_ms;
	server->heartbeat.timeout_ms = loaded->heartbeat_timeout_ms;
	unsigned tick = hb_tick_ms_for(loaded->heartbeat_interval_ms, loaded->heartbeat_timeout_ms);
	if (tick != server->wheel.tick_ms) {
		uint64_t now = util_now_ms();
		hb_wheel_retick(&server->wheel, tick, now);
		hb_wheel_retick(&ops->expiry, tick, now);
	}
	move_sessions(server, loaded, is_new_interval, &r);
	/*
	 * Renewed certificate files at the same paths: lws loads them into the
	 * live SSL_CTX. Connections already up keep theirs (OpenSSL copies the
	 * certificate into each SSL); new handshakes get the new one.
	 */
	if (loaded->has_tls)
		lws_tls_cert_updated(server->context, loaded->tls_cert, loaded->tls_key, NULL, 0, NULL, 0);
	config_free(running);
	server->metrics.reloads_ok++;
	log_event(LOG_INFO, "reload", "by=%s file=%s tokens=%zu sessions=%zu revoked=%zu needs_restart=%zu%s", by,
		  loaded->file, loaded->token_count, r.moved, r.revoked, r.needs_restart_count,
		  loaded->has_tls ? " tls=reloaded" : "");
	if (result)
		*result = r;
	return 0;
}

/* ---- drain ---- */

bool ops_is_draining(const struct wsg_server *server)
{
	return server->ops && server->ops->is_draining;
}

bool ops_refuses_upgrades(const struct wsg_server *server)
{
	/*
	 * With shared listeners the drain closed ours first: the few connections
	 * accepted before that are admitted and drained like the others, never
	 * refused, so a rolling restart refuses nobody.
	 */
	return ops_is_draining(server) && !ops_of(server)->listener_count;
}

static void accept_pending(struct ops_listener *l);

static void close_listeners(struct wsg_ops *ops)
{
	for (size_t i = 0; i < ops->listener_count; i++) {
		struct ops_listener *l = &ops->listeners[i];
		if (!l->is_open)
			continue;
		/* what the kernel already queued is served here, not reset by the close */
		accept_pending(l);
		ev_io_stop(l->server->loop, &l->io);
		ev_timer_stop(l->server->loop, &l->pause);
		close(l->io.fd);
		l->is_open = false;
	}
}

size_t ops_drain(struct wsg_server *server, const char *by)
{
	struct wsg_ops *ops = ops_of(server);

	if (ops->is_draining || server->is_stopping)
		return registry_count(&server->registry);
	ops->is_draining = true;
	ops->drain_start_ms = util_now_ms();
	ops->drain_ms = server->config->shutdown_drain_ms;
	ops->drain_total = registry_count(&server->registry);
	ops->drain_closed = 0;
	close_listeners(ops);
	log_event(LOG_INFO, "drain", "by=%s sessions=%zu drain_ms=%u listeners=%s", by, ops->drain_total, ops->drain_ms,
		  ops->listener_count ? "closed" : "refusing");
	ops_tick(server);
	return ops->drain_total;
}

/*
 * Paced: by elapsed/drain_ms of the window, that share of the sessions open
 * at the start has been closed (the first at once), so the reconnects spread
 * evenly; past the window, whatever is left.
 */
static void pace_drain(struct wsg_server *server, struct wsg_ops *ops)
{
	uint64_t elapsed = util_now_ms() - ops->drain_start_ms;
	size_t target = SIZE_MAX;

	if (ops->drain_ms && elapsed < ops->drain_ms)
		target = (size_t)((uint64_t)ops->drain_total * elapsed / ops->drain_ms) + 1;
	for (struct registry_entry *e; ops->drain_closed < target && (e = registry_first(&server->registry));) {
		session_close(session_of_entry(e), WSG_CLOSE_DRAINING, NULL);
		ops->drain_closed++;
	}
	if (!registry_count(&server->registry) && !server->live_sessions &&
	    (!ops->listener_count || elapsed >= OPS_HANDOVER_MS)) {
		log_event(LOG_INFO, "drained", "sessions=%zu dur_ms=%llu", ops->drain_closed,
			  (unsigned long long)elapsed);
		ev_break(server->loop, EVBREAK_ALL);
	}
}

void ops_tick(struct wsg_server *server)
{
	struct wsg_ops *ops = ops_of(server);

	hb_wheel_advance(&ops->expiry, util_now_ms(), on_expiry_due, server);
	if (ops->is_draining && !server->is_stopping)
		pace_drain(server, ops);
}

/* ---- shared listeners (listen.reuse_port) ---- */

static void accept_pending(struct ops_listener *l)
{
	for (int i = 0; i < OPS_ACCEPT_BATCH; i++) {
		int fd = accept4(l->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
				return;
			/*
			 * EMFILE and the like: the connection stays queued and the socket
			 * readable, so a level-triggered watcher would spin; rest 100 ms.
			 */
			log_event(LOG_WARN, "accept", "msg=\"%s\" pause_ms=100", strerror(errno));
			if (l->is_open && !ev_is_active(&l->pause)) {
				ev_io_stop(l->server->loop, &l->io);
				ev_timer_set(&l->pause, 0.1, 0.);
				ev_timer_start(l->server->loop, &l->pause);
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		lws_sock_file_fd_type sock;
		sock.sockfd = fd;
		/* lws closes fd itself when the adoption fails */
		lws_adopt_descriptor_vhost(l->vhost,
					   LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | (l->is_tls ? LWS_ADOPT_ALLOW_SSL : 0),
					   sock, NULL, NULL);
	}
}

static void on_listener_rested(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ops_listener *l = lws_container_of(w, struct ops_listener, pause);

	(void)revents;
	if (l->is_open)
		ev_io_start(loop, &l->io);
}

static void on_listener_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	accept_pending(lws_container_of(w, struct ops_listener, io));
}

int ops_listen(struct wsg_server *server, struct lws_vhost *vhost, const char *address, int port, bool is_tls)
{
	struct wsg_ops *ops = ops_of(server);
	struct addrinfo hints, *ai = NULL;
	char service[16];
	int fd = -1, one = 1;

	if (ops->listener_count >= OPS_LISTENERS_MAX)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(address, service, &hints, &ai) || !ai)
		goto fail;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN))
		goto fail;
	freeaddrinfo(ai);
	struct ops_listener *l = &ops->listeners[ops->listener_count++];
	l->server = server;
	l->vhost = vhost;
	l->is_tls = is_tls;
	l->is_open = true;
	ev_io_init(&l->io, on_listener_readable, fd, EV_READ);
	ev_io_start(server->loop, &l->io);
	ev_timer_init(&l->pause, on_listener_rested, 0.1, 0.);
	return 0;
fail:
	log_event(LOG_ERROR, "startup", "msg=\"cannot listen on %s:%d%s with SO_REUSEPORT: %s\"", address, port,
		  is_tls ? " (tls)" : "", strerror(errno));
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return -1;
}

/* ---- signals, life cycle ---- */

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[1024];

	(void)loop;
	(void)revents;
	ops_reload(w->data, "SIGHUP", NULL, err, sizeof(err));
}

static void on_sigusr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	ops_drain(w->data, "SIGUSR1");
}

int ops_init(struct wsg_server *server)
{
	struct wsg_ops *ops = calloc(1, sizeof(*ops));

	if (!ops || hb_wheel_init(&ops->expiry, server->wheel.tick_ms, 1024, util_now_ms())) {
		free(ops);
		log_event(LOG_ERROR, "startup", "msg=\"out of memory\"");
		return -1;
	}
	server->ops = ops;
	ev_signal_init(&ops->on_sighup, on_sighup, SIGHUP);
	ev_signal_init(&ops->on_sigusr1, on_sigusr1, SIGUSR1);
	ops->on_sighup.data = ops->on_sigusr1.data = server;
	ev_signal_start(server->loop, &ops->on_sighup);
	ev_signal_start(server->loop, &ops->on_sigusr1);
	return 0;
}

void ops_free(struct wsg_server *server)
{
	struct wsg_ops *ops = ops_of(server);

	if (!ops)
		return;
	/* as for SIGTERM: a reload or drain signal during teardown must not kill us (SIG_DFL) */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	ev_signal_stop(server->loop, &ops->on_sighup);
	ev_signal_stop(server->loop, &ops->on_sigusr1);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	for (size_t i = 0; i < ops->listener_count; i++) {
		if (!ops->listeners[i].is_open)
			continue;
		ev_io_stop(server->loop, &ops->listeners[i].io);
		ev_timer_stop(server->loop, &ops->listeners[i].pause);
		close(ops->listeners[i].io.fd);
	}
	hb_wheel_free(&ops->expiry);
	free(ops);
	server->ops = NULL;
}
