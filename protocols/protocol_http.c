/*
 * The HTTP side of the listener. Every WebSocket upgrade passes through
 * HTTP_CONFIRM_UPGRADE here, whatever subprotocol it asks for, so this is
 * where a wrong path gets its 404 and a foreign subprotocol its 400; the
 * credentials are decided once, in protocol_ws.c's FILTER_PROTOCOL_CONNECTION,
 * whose HTTP refusals are written by protocol_http_refuse.
 * Plain requests go to app/api.c; this file only moves bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "closecode_json.h"
#include "protocols.h"
#include "server.h"
#include "util.h"

static struct wsg_server *server_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static const char *status_text(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/*
 * Writes a complete response; the caller ends the transaction. The status line
 * is ours: lws would write "HTTP/1.0" for an upgrade request, whose version it
 * has not recorded yet at HTTP_CONFIRM_UPGRADE.
 */
static int respond(struct lws *wsi, unsigned status, const char *content_type, const char *body, size_t len,
		   bool wants_bearer)
{
	unsigned char head[LWS_PRE + 1024], *start = head + LWS_PRE, *p = start, *end = head + sizeof(head) - 1;
	static const char bearer[] = "Bearer realm=\"wsgate\"";
	unsigned char *out;
	int rc;

	p += lws_snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\r\n", status, status_text(status));
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)content_type,
					 (int)strlen(content_type), &p, end) ||
	    lws_add_http_header_content_length(wsi, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)"no-store", 8, &p,
					 end) ||
	    (wants_bearer &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE, (const unsigned char *)bearer,
					  sizeof(bearer) - 1, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!len)
		return 0;
	out = malloc(LWS_PRE + len);
	if (!out)
		return -1;
	memcpy(out + LWS_PRE, body, len);
	rc = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
	free(out);
	return rc;
}

static int respond_json(struct lws *wsi, unsigned status, const char *body)
{
	return respond(wsi, status, "application/json", body, strlen(body), false);
}

int protocol_http_refuse(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *v)
{
	char how[32];
	json_t *obj = json_pack("{s:i, s:s}", "code", v->close_code, "reason", v->reason);
	char *body = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc;

	json_decref(obj);
	snprintf(how, sizeof(how), "status=%d", v->http_status);
	server_log_refusal(server, wsi, v, how);
	rc = body ? respond_json(wsi, (unsigned)v->http_status, body) : -1;
	free(body);
	return rc;
}

static bool is_ws_path(struct lws *wsi, const struct wsg_server *server)
{
	char uri[1024];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return false;
	return !strcmp(uri, server->config->ws_path);
}

static int confirm_upgrade(struct lws *wsi, const char *upgrade)
{
	struct wsg_server *server = server_of(wsi);
	struct auth_verdict v;

	if (strcasecmp(upgrade, "websocket") || !is_ws_path(wsi, server))
		return respond_json(wsi, HTTP_STATUS_NOT_FOUND, "{\"error\":\"not found\"}") ? -1 : 1;
	/* lws would drop an upgrade naming only other subprotocols with a bare TCP close */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0) {
		char offered[256];
		if (lws_hdr_copy(wsi, offered, sizeof(offered), WSI_TOKEN_PROTOCOL) < 0 ||
		    !auth_offers_protocol(offered, WSG_PROTOCOL_WS)) {
			auth_refuse(&v, HANDSHAKE_UNSUPPORTED_SUBPROTOCOL, WSG_CLOSE_BAD_REQUEST,
				    "unsupported subprotocol (offer " WSG_PROTOCOL_WS " or none)");
			return protocol_http_refuse(server, wsi, &v) ? -1 : 1;
		}
	}
	return 0; /* the credentials are decided once, at FILTER_PROTOCOL_CONNECTION */
}

/* Sends resp and ends the transaction; -1 closes the connection. */
static int finish(struct lws *wsi, struct api_response *resp)
{
	int rc = respond(wsi, resp->status, resp->content_type, resp->body, resp->len, resp->wants_bearer);

	free(resp->body);
	if (rc || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static void free_exchange(struct session *s)
{
	if (!s->http)
		return;
	if (s->http->wait) {
		/* its answer has not come: whoever completes it frees it */
		if (s->http->wait->is_done) {
			free(s->http->wait->resp.body);
			free(s->http->wait);
		} else {
			s->http->wait->wsi = NULL;
			s->http->wait->is_abandoned = true;
		}
	}
	free(s->http->body);
	free(s->http);
	s->http = NULL;
}

static int wait_for(struct lws *wsi, struct session *s, struct api_wait *wait);

static int serve_exchange(struct lws *wsi, struct session *s)
{
	struct wsg_server *server = server_of(wsi);
	struct api_exchange *x = s->http;
	struct api_response resp;

	if (x->is_too_large) {
		char why[96];
		snprintf(why, sizeof(why), "{\"error\":\"request body over %zu bytes (api.max_body_bytes)\"}",
			 server->config->api_max_body_bytes);
		free_exchange(s);
		return respond_json(wsi, 413, why) || lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	struct api_request req = { true, x->path, *x->authorization ? x->authorization : NULL, x->body, x->len, NULL };
	server->app->http->handle(server, &req, &resp);
	if (resp.wait)
		return wait_for(wsi, s, resp.wait);
	free_exchange(s);
	return finish(wsi, &resp);
}

/*
 * A POST to an API route. What can be refused from the headers alone (no
 * key, a declared body over the limit, chunked) is answered before reading a
 * byte of the body, and the connection closed, since the body would follow.
 */
static int begin_post(struct lws *wsi, struct session *s, const char *path)
{
	struct wsg_server *server = server_of(wsi);
	char length[32] = "", authorization[sizeof(s->http->authorization)] = "";
	unsigned long long declared = 0;

	free_exchange(s);
	if (lws_hdr_copy(wsi, authorization, sizeof(authorization), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		authorization[0] = '\0';
	if (lws_hdr_copy(wsi, length, sizeof(length), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		declared = strtoull(length, NULL, 10);
	if (!server->app->http->is_authorized(server->config, authorization)) {
		struct api_request req = { true, path, *authorization ? authorization : NULL, NULL, 0, NULL };
		struct api_response resp;
		server->app->http->handle(server, &req, &resp); /* 401, or 405 for a GET-only route */
		respond(wsi, resp.status, resp.content_type, resp.body, resp.len, resp.wants_bearer);
		free(resp.body);
		return -1;
	}
	if (declared > server->config->api_max_body_bytes) {
		char why[96];
		snprintf(why, sizeof(why), "{\"error\":\"request body over %zu bytes (api.max_body_bytes)\"}",
			 server->config->api_max_body_bytes);
		respond_json(wsi, 413, why);
		return -1;
	}
	/* lws 4.1 does not decode chunked request bodies: ask for a length */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		respond_json(wsi, 411, "{\"error\":\"send the body with a Content-Length, not chunked\"}");
		return -1;
	}
	s->http = calloc(1, sizeof(*s->http));
	if (!s->http)
		return -1;
	util_strlcpy(s->http->path, path, sizeof(s->http->path));
	util_strlcpy(s->http->authorization, authorization, sizeof(s->http->authorization));
	if (!declared)
		return serve_exchange(wsi, s); /* no body will come */
	return 0;
}

static int receive_body(struct lws *wsi, struct session *s, const void *in, size_t len)
{
	struct api_exchange *x = s->http;
	size_t max = server_of(wsi)->config->api_max_body_bytes;

	if (!x || x->is_too_large)
		return 0;
	if (x->len + len > max) {
		x->is_too_large = true;
		free(x->body);
		x->body = NULL;
		return 0;
	}
	char *body = realloc(x->body, x->len + len + 1);
	if (!body)
		return -1;
	memcpy(body + x->len, in, len);
	x->body = body;
	x->len += len;
	x->body[x->len] = '\0';
	return 0;
}

/* ---- public answers for browsers: the verdict query and /close-codes, with CORS ---- */

/*
 * A JSON response a page on another origin may read: Access-Control-Allow-Origin
 * echoes the request's Origin when auth.origins allows it (no list: any). Only
 * simple GETs (no custom header) come here, so no preflight is needed.
 */
static int respond_public(struct lws *wsi, unsigned status, json_t *json)
{
	const struct wsg_config *config = server_of(wsi)->config;
	unsigned char head[LWS_PRE + 1024], *start = head + LWS_PRE, *p = start, *end = head + sizeof(head) - 1;
	char origin[512], *body = json ? json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	size_t len = body ? strlen(body) : 0;
	bool has_origin = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0;
	unsigned char *out = NULL;
	int rc = -1;

	json_decref(json);
	if (!body)
		return -1;
	/* our status line, as in respond(): lws has no text for 426 */
	p += lws_snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\r\n", status, status_text(status));
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)"application/json",
					 16, &p, end) ||
	    lws_add_http_header_content_length(wsi, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)"no-store", 8, &p,
					 end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:", (const unsigned char *)"Origin", 6, &p,
					end) ||
	    (has_origin && auth_is_origin_allowed(config, origin) &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN,
					  (const unsigned char *)origin, (int)strlen(origin), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		goto out;
	out = malloc(LWS_PRE + len);
	if (!out)
		goto out;
	memcpy(out + LWS_PRE, body, len);
	rc = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
out:
	free(out);
	free(body);
	return rc;
}

/*
 * A plain GET on websocket.path with the upgrade's query and credentials: the
 * verdict the upgrade would get (server_decide, the same function), as the
 * same status and {"code","reason"} body as an HTTP refusal, or 426 with code 0
 * when it would be admitted. A browser's WebSocket hides the 403 of a refused
 * upgrade; this lets the page learn why. It reveals no more than a connect
 * attempt (no repeat-connect check: that needs a session) and costs the same.
 */
static int answer_verdict_query(struct lws *wsi, struct wsg_server *server)
{
	struct auth_verdict v;

	server_decide(server, wsi, &v);
	server->metrics.verdict_queries[v.outcome]++;
	if (!v.close_code)
		return respond_public(wsi, 426, json_pack("{s:i, s:s}", "code", 0, "reason", "upgrade required"));
	return respond_public(wsi, (unsigned)v.http_status,
			      json_pack("{s:i, s:s}", "code", v.close_code, "reason", v.reason));
}

/* ---- end public answers ---- */

/* ---- answers that wait for the cluster's Redis (app/api.h, struct api_wait) ---- */

static int wait_for(struct lws *wsi, struct session *s, struct api_wait *wait)
{
	free_exchange(s);
	s->http = calloc(1, sizeof(*s->http));
	if (!s->http) {
		wait->is_abandoned = true; /* freed by its completer */
		return -1;
	}
	s->http->wait = wait;
	wait->wsi = wsi;
	return 0; /* written from HTTP_WRITEABLE once the answer is in */
}

static int write_waited(struct lws *wsi, struct session *s)
{
	struct api_wait *wait = s && s->http ? s->http->wait : NULL;

	if (!wait || !wait->is_done)
		return 0;
	struct api_response resp = wait->resp;
	free(wait);
	s->http->wait = NULL;
	free_exchange(s);
	return finish(wsi, &resp);
}

/* ---- end answers that wait ---- */

static int serve_http(struct lws *wsi, struct session *s, const char *path)
{
	struct wsg_server *server = server_of(wsi);
	bool is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	struct api_response resp;
	int rc;

	if (!strcmp(path, "/close-codes")) {
		rc = is_get ? respond_public(wsi, 200, closecode_json())
			    : respond_json(wsi, 405, "{\"error\":\"method not allowed\"}");
		return rc || lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (server->app->http && server->app->http->is_route(path)) {
		if (is_post)
			return begin_post(wsi, s, path);
		if (!is_get) {
			rc = respond_json(wsi, 405, "{\"error\":\"method not allowed\"}");
			return rc || lws_http_transaction_completed(wsi) ? -1 : 0;
		}
		char authorization[512] = "";
		if (lws_hdr_copy(wsi, authorization, sizeof(authorization), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
			authorization[0] = '\0';
		char query[512] = "", arg[256];
		size_t qlen = 0;
		for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
			int n = snprintf(query + qlen, sizeof(query) - qlen, "%s%s", qlen ? "&" : "", arg);
			if (n < 0 || (size_t)n >= sizeof(query) - qlen)
				break; /* the rest does not fit: left out */
			qlen += (size_t)n;
		}
		struct api_request req = { false, path, *authorization ? authorization : NULL, NULL, 0, query };
		server->app->http->handle(server, &req, &resp);
		if (resp.wait)
			return wait_for(wsi, s, resp.wait);
		return finish(wsi, &resp);
	}
	if (is_ws_path(wsi, server) && is_get)
		rc = answer_verdict_query(wsi, server);
	else if (is_ws_path(wsi, server))
		rc = respond_json(wsi, 426, "{\"error\":\"this path takes WebSocket upgrades only\"}");
	else
		rc = respond_json(wsi, HTTP_STATUS_NOT_FOUND, "{\"error\":\"not found\"}");
	return rc || lws_http_transaction_completed(wsi) ? -1 : 0;
}

int protocol_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi, in);
	case LWS_CALLBACK_HTTP:
		return serve_http(wsi, s, in);
	case LWS_CALLBACK_HTTP_BODY:
		return receive_body(wsi, s, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return s->http ? serve_exchange(wsi, s) : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s && s->http && s->http->wait)
			return write_waited(wsi, s);
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (s)
			free_exchange(s);
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
