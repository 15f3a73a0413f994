/*
 * The application interface: what the server core (lws glue, sessions,
 * output, heartbeat, the close path) calls in the application it runs. The
 * core never calls an application by name, so one core serves wsgate's
 * messaging (app/messaging.c) and the test-only echo server
 * (test/echo/echo_app.c) alike. Each program defines wsg_application.
 */
#ifndef WSGATE_APP_H
#define WSGATE_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

struct session;
struct wsg_config;
struct wsg_server;

/* HTTP routes beside the WebSocket path (the backend API, health, metrics). */
struct wsg_app_http {
	/* paths the application answers (so a POST body is read for them) */
	bool (*is_route)(const char *path);
	/* a bearer credential naming one of api.keys, checked before a body is read */
	bool (*is_authorized)(const struct wsg_config *config, const char *authorization);
	void (*handle)(struct wsg_server *server, const struct api_request *req, struct api_response *resp);
};

struct wsg_app {
	const char *name;
	/* when false, a binary message closes the session with 1003 */
	bool accepts_binary;
	/* admitted and registered: may queue the session's first messages; -1 closes it with 1011 */
	int (*on_open)(struct session *s);
	/* a whole message (text is valid UTF-8); -1 closes the session with 1011 */
	int (*on_message)(struct session *s, const unsigned char *data, size_t len, bool is_binary);
	/* a configuration reload gave the session another token entry: re-check what it was granted */
	void (*on_token_changed)(struct session *s);
	/* the session is gone: release what the application holds for it */
	void (*on_close)(struct session *s);
	const struct wsg_app_http *http; /* NULL: no HTTP routes */
};

extern const struct wsg_app wsg_application;

#endif
