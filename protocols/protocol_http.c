/*
 * The HTTP side of the listener. Every WebSocket upgrade passes through
 * HTTP_CONFIRM_UPGRADE here, whatever subprotocol it asks for, so this is
 * where a wrong path gets its 404 and, with auth.reject = "http", a refused
 * client gets a real status and a JSON reason before any upgrade happens.
 */
#include <stdio.h>
#include <string.h>

#include "protocols.h"
#include "server.h"

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
	case 413:
		return "Payload Too Large";
	case 426:
		return "Upgrade Required";
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
static int respond_json(struct lws *wsi, unsigned status, const char *body)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	size_t len = strlen(body);

	p += lws_snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\r\n", status, status_text(status));
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (unsigned char *)"application/json", 16,
					 &p, end) ||
	    lws_add_http_header_content_length(wsi, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store", 8, &p,
					 end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len > (size_t)(end - p))
		return -1;
	memcpy(p, body, len);
	return lws_write(wsi, p, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
}

static int respond_refusal(struct wsg_server *server, struct lws *wsi, const struct auth_verdict *v)
{
	char body[256], how[32];

	snprintf(body, sizeof(body), "{\"code\":%d,\"reason\":\"%s\"}", v->close_code, v->reason);
	snprintf(how, sizeof(how), "status=%d", v->http_status);
	server_log_refusal(server, wsi, v, how);
	return respond_json(wsi, (unsigned)v->http_status, body);
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
	if (server->config->reject != WSG_REJECT_HTTP)
		return 0;
	server_decide(server, wsi, &v);
	if (!v.close_code)
		return 0;
	return respond_refusal(server, wsi, &v) ? -1 : 1;
}

static int serve_http(struct lws *wsi)
{
	struct wsg_server *server = server_of(wsi);
	int rc;

	if (is_ws_path(wsi, server))
		rc = respond_json(wsi, 426, "{\"error\":\"this path takes WebSocket upgrades only\"}");
	else
		rc = respond_json(wsi, HTTP_STATUS_NOT_FOUND, "{\"error\":\"not found\"}");
	if (rc || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

int protocol_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi, in);
	case LWS_CALLBACK_HTTP:
		return serve_http(wsi);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
