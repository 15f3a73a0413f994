/*
 * The libwebsockets protocols wsgate serves. Each callback is thin: it turns
 * lws callback reasons into calls on the server and session operations.
 */
#ifndef WSGATE_PROTOCOLS_H
#define WSGATE_PROTOCOLS_H

#include <libwebsockets.h>

#define WSG_PROTOCOL_WS "wsgate"

/* The HTTP phase of a connection, reached through protocol_ws_callback. */
int protocol_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* Answers a refused upgrade with its HTTP status and JSON reason; the caller then drops the connection. */
struct wsg_server;
struct auth_verdict;
int protocol_http_refuse(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *v);
int protocol_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

#endif
