/*
 * JSON message handling on jansson. Every malformed request becomes an error
 * reply naming the problem; none of them closes the session.
 */
#include "message.h"

#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "util.h"

static char *dump(json_t *obj, size_t *len)
{
	char *text;

	if (!obj)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text)
		*len = strlen(text);
	return text;
}

/* A new object {"type":type} with "id" after it when the request had one. */
static json_t *reply_object(const char *type, json_t *id)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	json_object_set_new(obj, "type", json_string(type));
	if (id)
		json_object_set(obj, "id", id);
	return obj;
}

char *message_error(json_t *id, const char *code, const char *text, size_t *len)
{
	json_t *obj = reply_object("error", id);

	if (obj) {
		json_object_set_new(obj, "code", json_string(code));
		json_object_set_new(obj, "message", json_string(text));
	}
	return dump(obj, len);
}

char *message_ack(json_t *id, long long delivered, size_t *len)
{
	json_t *obj = reply_object("ack", id);

	if (obj && delivered >= 0)
		json_object_set_new(obj, "delivered", json_integer(delivered));
	return dump(obj, len);
}

char *message_pong(json_t *id, size_t *len)
{
	return dump(reply_object("pong", id), len);
}

char *message_welcome(const char *session_id, const char *user, const char *device, unsigned heartbeat_ms, size_t *len)
{
	return dump(json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "welcome", "session", session_id, "user", user,
			      "device", device, "heartbeat_ms", (json_int_t)heartbeat_ms),
		    len);
}

char *message_channel_delivery(const char *channel, const char *from, json_t *data, uint64_t seq, uint64_t ts_ms,
			       size_t *len)
{
	return dump(json_pack("{s:s, s:s, s:s?, s:O, s:I, s:I}", "type", "message", "channel", channel, "from", from,
			      "data", data, "seq", (json_int_t)seq, "ts", (json_int_t)ts_ms),
		    len);
}

char *message_direct_delivery(const char *from, const char *to, json_t *data, uint64_t ts_ms, size_t *len)
{
	return dump(json_pack("{s:s, s:s?, s:s, s:O, s:I}", "type", "message", "from", from, "to", to, "data", data,
			      "ts", (json_int_t)ts_ms),
		    len);
}

static void invalid(struct request *req, const char *fmt, const char *detail)
{
	req->type = REQUEST_INVALID;
	req->error_code = "bad_request";
	snprintf(req->error_text, sizeof(req->error_text), fmt, detail);
}

/* A string member that must be present; NULL (and req made invalid) when not. */
static const char *required_string(struct request *req, const char *name)
{
	json_t *v = json_object_get(req->root, name);

	if (!json_is_string(v)) {
		invalid(req, "\"%s\" must be a string", name);
		return NULL;
	}
	return json_string_value(v);
}

static void parse_channel(struct request *req)
{
	req->channel = required_string(req, "channel");
	if (req->channel && !channel_name_is_valid(req->channel))
		invalid(req, "%s", "\"channel\" must be 1-128 bytes of dot-separated segments of A-Z a-z 0-9 _ - @ :");
}

static void parse_data(struct request *req)
{
	req->data = json_object_get(req->root, "data");
	if (!req->data)
		invalid(req, "%s", "\"data\" is missing");
}

static const struct {
	const char *name;
	enum request_type type;
} request_types[] = {
	{ "ping", REQUEST_PING },	{ "subscribe", REQUEST_SUBSCRIBE }, { "unsubscribe", REQUEST_UNSUBSCRIBE },
	{ "publish", REQUEST_PUBLISH }, { "send", REQUEST_SEND },
};

int message_parse(const char *text, size_t len, struct request *req)
{
	json_error_t error;
	json_t *type;

	memset(req, 0, sizeof(*req));
	/* browsers cannot send WebSocket pings: the bare text "ping" is the app-level one */
	if (len == 4 && !memcmp(text, "ping", 4)) {
		req->type = REQUEST_TEXT_PING;
		return 0;
	}
	/* DECODE_ANY: a bare value is valid JSON, and gets the "must be an object" answer */
	req->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!req->root) {
		req->type = REQUEST_INVALID;
		req->error_code = "bad_request";
		snprintf(req->error_text, sizeof(req->error_text), "invalid JSON at position %d: %s", error.position,
			 error.text);
		return 0;
	}
	if (!json_is_object(req->root)) {
		invalid(req, "%s", "a message must be a JSON object with a \"type\"");
		return 0;
	}
	req->id = json_object_get(req->root, "id");
	type = json_object_get(req->root, "type");
	if (!json_is_string(type)) {
		invalid(req, "%s", "\"type\" must be a string");
		return 0;
	}
	const char *name = json_string_value(type);
	for (size_t i = 0; i < sizeof(request_types) / sizeof(request_types[0]); i++)
		if (!strcmp(name, request_types[i].name))
			req->type = request_types[i].type;
	switch (req->type) {
	case REQUEST_INVALID: {
		/* quote at most 64 bytes of the client's type, cut on a character boundary */
		char shown[80];
		size_t n = util_utf8_prefix_len(name, strlen(name), 64);
		snprintf(shown, sizeof(shown), "%.*s", (int)n, name);
		invalid(req, "unknown type \"%s\"", shown);
		break;
	}
	case REQUEST_SUBSCRIBE:
	case REQUEST_UNSUBSCRIBE:
		parse_channel(req);
		break;
	case REQUEST_PUBLISH:
		parse_channel(req);
		if (req->type != REQUEST_INVALID)
			parse_data(req);
		break;
	case REQUEST_SEND:
		req->to = required_string(req, "to");
		if (req->type != REQUEST_INVALID)
			parse_data(req);
		break;
	case REQUEST_TEXT_PING:
	case REQUEST_PING:
		break;
	}
	return 0;
}

void message_request_free(struct request *req)
{
	json_decref(req->root);
	req->root = NULL;
}
