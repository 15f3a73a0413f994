/*
 * HTTP API handlers. Every failure is a JSON {"error": "..."} naming the
 * problem with the right status (400, 401, 404, 405, 413 upstream); nothing a
 * request holds can disturb the sessions beyond what the call asks for.
 */
#include "api.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_body.h"
#include "auth.h"
#include "channel.h"
#include "closecode.h"
#include "closecode_json.h"
#include "cluster.h"
#include "ops.h"
#include "messaging.h"
#include "server.h"
#include "util.h"

static void respond(struct api_response *resp, unsigned status, json_t *body)
{
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!resp->body) {
		resp->status = 500;
		resp->body = strdup("{\"error\":\"out of memory\"}");
	}
	resp->len = resp->body ? strlen(resp->body) : 0;
}

static void respond_error(struct api_response *resp, unsigned status, const char *text)
{
	respond(resp, status, json_pack("{s:s}", "error", text));
}

bool api_is_authorized(const struct wsg_config *config, const char *authorization)
{
	const char *key = auth_bearer_token(authorization);
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];
	bool found = false;

	if (!key)
		return false;
	auth_token_digest(key, strlen(key), digest);
	for (size_t i = 0; i < config->api_key_count; i++)
		found |= !CRYPTO_memcmp(digest, config->api_keys[i], WSG_TOKEN_DIGEST_LEN);
	return found;
}

/* {"delivered":N}, or 500 when the delivery could not be built (-1). */
static void respond_delivered(struct api_response *resp, long long delivered)
{
	if (delivered == WSG_DELIVERED_ACCEPTED) /* a cluster: handed to Redis, every node delivers its own */
		return respond(resp, 202, json_pack("{s:b}", "accepted", 1));
	if (delivered == WSG_DELIVERED_UNAVAILABLE)
		return respond_error(resp, 503, "cluster: Redis is down; try again later");
	if (delivered < 0)
		return respond_error(resp, 500, "out of memory");
	respond(resp, 200, json_pack("{s:I}", "delivered", (json_int_t)delivered));
}

static void api_publish(struct wsg_server *server, const struct api_body *body, struct api_response *resp)
{
	uint64_t seq;

	if (cluster_is_enabled(server))
		return cluster_api_publish(server, body->channel, body->data, resp); /* numbered by Redis */
	long long delivered = server_publish(server, body->channel, NULL, body->data, &seq);
	if (delivered < 0)
		return respond_error(resp, 500, "out of memory");
	if (!seq) /* nothing numbered: no subscriber and no history */
		return respond_delivered(resp, delivered);
	respond(resp, 200, json_pack("{s:I, s:I}", "delivered", (json_int_t)delivered, "seq", (json_int_t)seq));
}

/* ---- GET /api/history?channel=news&since=41&limit=100 ---- */

#define HISTORY_LIMIT_DEFAULT 100
#define HISTORY_LIMIT_MAX     10000

/* The value of name in query ("a=1&b=2") copied into out; false when absent or too long. */
static bool query_arg(const char *query, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);

	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, n) || p[n] != '=')
			continue;
		const char *v = p + n + 1, *end = strchr(v, '&');
		size_t len = end ? (size_t)(end - v) : strlen(v);
		if (len >= outlen)
			return false;
		memcpy(out, v, len);
		out[len] = '\0';
		return true;
	}
	return false;
}

/* A decimal integer from min to max; false when it is anything else. */
static bool parse_count(const char *text, unsigned long long min, unsigned long long max, unsigned long long *value)
{
	unsigned long long v = 0;

	if (!*text || strlen(text) > 19)
		return false;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (v < min || v > max)
		return false;
	*value = v;
	return true;
}

static int append_message(struct outmsg *msg, uint64_t seq, void *ctx)
{
	(void)seq;
	/* the delivery exactly as subscribers got it: our own JSON, read back */
	json_t *m = json_loadb((const char *)outmsg_payload(msg), msg->payload_len, 0, NULL);
	return m ? json_array_append_new(ctx, m) : -1;
}

static void api_history(struct wsg_server *server, const char *query, struct api_response *resp)
{
	char channel[WSG_CHANNEL_MAX + 1], number[24];
	unsigned long long since = 0, limit = HISTORY_LIMIT_DEFAULT;
	uint64_t now_ms = util_now_ms();

	if (!query_arg(query, "channel", channel, sizeof(channel)) || !channel_name_is_valid(channel))
		return respond_error(resp, 400, "\"channel\" must be a valid channel name");
	if (query_arg(query, "since", number, sizeof(number)) && !parse_count(number, 0, INT64_MAX, &since))
		return respond_error(resp, 400, "\"since\" must be an integer >= 0 (the last seq the caller has)");
	if (query_arg(query, "limit", number, sizeof(number)) && !parse_count(number, 1, HISTORY_LIMIT_MAX, &limit))
		return respond_error(resp, 400, "\"limit\" must be an integer from 1 to 10000");
	if (cluster_is_enabled(server))
		return cluster_api_history(server, channel, since, (size_t)limit, resp); /* from Redis */
	router_expire(&server->router, now_ms);
	struct channel *c = router_find(&server->router, channel);
	if (!c)
		return respond_error(resp, 404, "no such channel: no subscriber and no history");
	json_t *messages = json_array();
	uint64_t oldest = c->history ? history_oldest(c->history, now_ms) : 0;
	if (messages && c->history)
		history_since(c->history, since, (size_t)limit, append_message, messages);
	/* complete: nothing between since and the first message returned is missing */
	bool is_complete = since >= c->seq || (oldest && oldest <= since + 1);
	respond(resp, 200,
		json_pack("{s:s, s:s, s:I, s:b, s:o}", "channel", channel, "epoch", c->epoch, "seq", (json_int_t)c->seq,
			  "complete", is_complete, "messages", messages));
}

static void api_send(struct wsg_server *server, const struct api_body *body, struct api_response *resp)
{
	respond_delivered(resp, server_send_to_user(server, NULL, body->user, body->data));
}

static void api_disconnect(struct wsg_server *server, const struct api_body *body, struct api_response *resp)
{
	size_t closed = server_disconnect(server, body->user, body->device, body->code, body->reason);
	long long forwarded = cluster_forward_disconnect(server, body->user, body->device, body->code, body->reason);
	if (forwarded)
		return respond_delivered(resp, forwarded);
	respond(resp, 200, json_pack("{s:I}", "closed", (json_int_t)closed));
}

static void api_sessions(struct wsg_server *server, struct api_response *resp)
{
	if (cluster_is_enabled(server))
		return cluster_list(server, NULL, resp); /* every node's, from Redis */
	json_t *list = json_array();
	uint64_t now_ms = util_now_ms(), now_wall_ms = util_wall_ms();

	for (struct registry_entry *e = registry_first(&server->registry); list && e; e = e->next) {
		struct session *s = session_of_entry(e);
		json_t *channels = json_array();
		for (struct subscription *sub = s->subscriptions.first; channels && sub; sub = sub->owner_next)
			json_array_append_new(channels, json_string(sub->channel->name));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "session", s->id, "user",
						      s->user, "device", s->device, "peer", session_peer(s), "since",
						      (json_int_t)session_opened_wall_ms(s, now_ms, now_wall_ms),
						      "channels", channels));
	}
	respond(resp, 200, json_pack("{s:o}", "sessions", list));
}

/* GET /api/presence?channel=C: who is subscribed to C ({"channel","sessions":[{session,user,device}]}). */
static void api_presence(struct wsg_server *server, const char *query, struct api_response *resp)
{
	char name[WSG_CHANNEL_MAX + 1];

	if (!query_arg(query, "channel", name, sizeof(name)) || !channel_name_is_valid(name))
		return respond_error(resp, 400, "the query must name a valid channel: ?channel=NAME");
	if (cluster_is_enabled(server))
		return cluster_list(server, name, resp); /* every node's, from Redis */
	struct channel *c = router_find(&server->router, name);
	json_t *list = json_array();
	for (struct subscription *sub = c ? c->first : NULL; list && sub; sub = sub->channel_next) {
		struct session *s = sub->owner;
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:s}", "session", s->id, "user", s->user, "device", s->device));
	}
	respond(resp, 200, json_pack("{s:s, s:o}", "channel", name, "sessions", list));
}

static void api_close_codes(struct api_response *resp)
{
	respond(resp, 200, closecode_json());
}

static void serve_healthz(struct wsg_server *server, struct api_response *resp)
{
	if (server->is_stopping || ops_is_draining(server))
		return respond(resp, 503, json_pack("{s:s}", "status", server->is_stopping ? "stopping" : "draining"));
	bool is_serving = true;
	json_t *cluster = cluster_health(server, &is_serving);
	if (!is_serving) /* the cluster's Redis is down and on_redis_down = refuse */
		return respond(resp, 503, json_pack("{s:s, s:o}", "status", "redis down", "cluster", cluster));
	json_t *body =
		json_pack("{s:s, s:I}", "status", "ok", "sessions", (json_int_t)registry_count(&server->registry));
	if (cluster && (!body || json_object_set_new(body, "cluster", cluster)))
		json_decref(body ? NULL : cluster);
	respond(resp, 200, body);
}

static void serve_metrics(struct wsg_server *server, struct api_response *resp)
{
	server->metrics.history_entries = server->router.history.entries;
	server->metrics.history_bytes = server->router.history.bytes;
	server->metrics.history_channels = server->router.history.stores;
	resp->body = metrics_render(&server->metrics, registry_count(&server->registry), &resp->len);
	if (!resp->body || cluster_render_metrics(server, &resp->body, &resp->len)) {
		free(resp->body);
		return respond_error(resp, 500, "out of memory");
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
}

/* ---- operations (app/ops.c): POST /api/reload, POST /api/drain; the body may be empty ---- */

static void api_reload(struct wsg_server *server, const struct api_body *body, struct api_response *resp)
{
	struct ops_reload_result r;
	char err[1024];

	(void)body;
	if (ops_reload(server, "api", &r, err, sizeof(err)))
		return respond_error(resp, 400, err); /* FILE:LINE: message, the running config stays */
	json_t *keys = json_array();
	for (size_t i = 0; keys && i < r.needs_restart_count; i++)
		json_array_append_new(keys, json_string(r.needs_restart[i]));
	respond(resp, 200,
		json_pack("{s:b, s:I, s:I, s:o}", "reloaded", 1, "sessions", (json_int_t)r.moved, "revoked",
			  (json_int_t)r.revoked, "needs_restart", keys));
}

static void api_drain(struct wsg_server *server, const struct api_body *body, struct api_response *resp)
{
	(void)body;
	size_t sessions = ops_drain(server, "api");
	respond(resp, 202,
		json_pack("{s:b, s:I, s:I}", "draining", 1, "sessions", (json_int_t)sessions, "drain_ms",
			  (json_int_t)server->config->shutdown_drain_ms));
}

typedef void (*post_handler)(struct wsg_server *server, const struct api_body *body, struct api_response *resp);

static const struct {
	const char *path;
	enum api_body_route body;
	post_handler handler;
} post_routes[] = {
	{ "/api/publish", API_BODY_PUBLISH, api_publish },
	{ "/api/send", API_BODY_SEND, api_send },
	{ "/api/disconnect", API_BODY_DISCONNECT, api_disconnect },
	{ "/api/reload", API_BODY_NONE, api_reload },
	{ "/api/drain", API_BODY_NONE, api_drain },
};

static const char *const get_routes[] = { "/api/sessions", "/api/close-codes", "/api/history",
					  "/healthz",	   "/metrics",	       "/api/presence" };

bool api_is_route(const char *path)
{
	for (size_t i = 0; i < sizeof(post_routes) / sizeof(post_routes[0]); i++)
		if (!strcmp(path, post_routes[i].path))
			return true;
	for (size_t i = 0; i < sizeof(get_routes) / sizeof(get_routes[0]); i++)
		if (!strcmp(path, get_routes[i]))
			return true;
	return false;
}

void api_handle(struct wsg_server *server, const struct api_request *req, struct api_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (!api_is_route(req->path))
		return respond_error(resp, 404, "not found");
	if (!strcmp(req->path, "/healthz") || !strcmp(req->path, "/metrics")) {
		if (req->is_post)
			return respond_error(resp, 405, "method not allowed: use GET");
		return !strcmp(req->path, "/healthz") ? serve_healthz(server, resp) : serve_metrics(server, resp);
	}
	server->metrics.api_requests++;
	if (!api_is_authorized(server->config, req->authorization)) {
		resp->wants_bearer = true;
		return respond_error(resp, 401, "unauthorized: send Authorization: Bearer <api key>");
	}
	for (size_t i = 0; i < sizeof(post_routes) / sizeof(post_routes[0]); i++) {
		if (strcmp(req->path, post_routes[i].path))
			continue;
		if (!req->is_post)
			return respond_error(resp, 405, "method not allowed: use POST");
		struct api_body body;
		char why[300];
		if (api_body_parse(post_routes[i].body, req->body, req->body_len, &body, why, sizeof(why)))
			return respond_error(resp, 400, why);
		post_routes[i].handler(server, &body, resp);
		api_body_free(&body);
		return;
	}
	if (req->is_post)
		return respond_error(resp, 405, "method not allowed: use GET");
	if (!strcmp(req->path, "/api/sessions"))
		return api_sessions(server, resp);
	if (!strcmp(req->path, "/api/history"))
		return api_history(server, req->query, resp);
	if (!strcmp(req->path, "/api/presence"))
		return api_presence(server, req->query, resp);
	api_close_codes(resp);
}
