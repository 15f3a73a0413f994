/*
 * The backend HTTP API and the operational endpoints, on the WebSocket port:
 * /api/... (bearer API key), /healthz and /metrics. Takes a complete request,
 * returns a complete response; protocols/protocol_http.c moves the bytes.
 */
#ifndef WSGATE_API_H
#define WSGATE_API_H

#include <stdbool.h>
#include <stddef.h>

struct wsg_server;

struct api_request {
	bool is_post; /* otherwise GET */
	const char *path;
	const char *authorization; /* NULL when absent */
	const char *body;
	size_t body_len;
	const char *query; /* a GET's arguments, "a=1&b=2" (decoded by lws); NULL: none */
};

struct api_response {
	unsigned status;
	const char *content_type;
	char *body; /* malloc'd */
	size_t len;
	bool wants_bearer;     /* a 401: send WWW-Authenticate: Bearer */
	struct api_wait *wait; /* not NULL: the answer comes later (the cluster asks Redis) */
};

/*
 * A response that waits for Redis (cluster-wide /api/sessions, /api/presence).
 * protocols/protocol_http.c binds it to its connection (wsi) and writes resp
 * from the connection's writeable callback once is_done. A client that leaves
 * first abandons it (wsi NULL), and whoever completes it then frees it.
 */
struct api_wait {
	void *wsi; /* struct lws * */
	bool is_done, is_abandoned;
	struct api_response resp;
};

/* A POST being received: headers kept until its body is complete. */
struct api_exchange {
	bool is_too_large;
	char path[64];
	char authorization[512];
	char *body;
	size_t len;
	struct api_wait *wait; /* a response being waited for */
};

struct wsg_config;

/* A bearer credential naming one of api.keys (constant time, whatever the match). */
bool api_is_authorized(const struct wsg_config *config, const char *authorization);

/* True for paths this module serves (so the caller reads a POST body for them). */
bool api_is_route(const char *path);
void api_handle(struct wsg_server *server, const struct api_request *req, struct api_response *resp);

#endif
