/*
 * Operations on a running server: reload the configuration (SIGHUP, POST
 * /api/reload) without dropping a healthy session, token expiry at its
 * second, drain (SIGUSR1, POST /api/drain) for a restart with zero downtime,
 * and the SO_REUSEPORT listeners that let a second process take over. Never
 * walks every session except for whole-server events (a reload, a drain).
 */
#ifndef WSGATE_OPS_H
#define WSGATE_OPS_H

#include <stdbool.h>
#include <stddef.h>

struct lws_vhost;
struct session;
struct wsg_server;

/* After the lws context exists: the expiry wheel and the SIGHUP / SIGUSR1 watchers. */
int ops_init(struct wsg_server *server);
/* Before the loop is destroyed. */
void ops_free(struct wsg_server *server);

/*
 * listen.reuse_port: wsgate's own listening socket with SO_REUSEPORT (lws
 * 4.1.6 sets it only with several service threads), its connections adopted
 * by vhost, which was created without a listener. A drain closes it, so the
 * kernel hands every new connection to the other process on the port.
 */
int ops_listen(struct wsg_server *server, struct lws_vhost *vhost, const char *address, int port, bool is_tls);

/* Each tick of the heartbeat wheel: token expiries, drain pacing, exit once drained. */
void ops_tick(struct wsg_server *server);

/* An admitted session: its token's expiry armed. */
void ops_session_admitted(struct session *s);
/* A session going away: its expiry disarmed. */
void ops_session_end(struct session *s);

/* New upgrades are refused (503 / close 1013 "server draining"). */
bool ops_refuses_upgrades(const struct wsg_server *server);
bool ops_is_draining(const struct wsg_server *server);

struct ops_reload_result {
	size_t moved;	/* sessions now on the new configuration's token entries */
	size_t revoked; /* closed with 4004 "token revoked" */
	const char *needs_restart[16];
	size_t needs_restart_count;
};

/*
 * Re-reads the configuration file with the loader of `wsgate -t`. Invalid:
 * returns -1, err holds "FILE:LINE: message", nothing changed. Valid: swapped
 * in whole (see README "Operations"), returns 0.
 */
int ops_reload(struct wsg_server *server, const char *by, struct ops_reload_result *result, char *err, size_t errlen);

/* Starts a drain (idempotent); returns the number of sessions it will close. */
size_t ops_drain(struct wsg_server *server, const char *by);

#endif
