/*
 * JSON message handling on jansson. Every malformed request gets an error
 * reply naming the problem; none of them closes the session.
 */
#include "message.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int dump_reply(json_t *obj, struct message_reply *reply)
{
	reply->text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!reply->text)
		return -1;
	reply->len = strlen(reply->text);
	return 0;
}

/* {"type":"error","id":..,"code":"bad_request","message":..}; id only when the request had one. */
static int reply_error(json_t *id, const char *code, const char *text, struct message_reply *reply)
{
	json_t *obj = json_object();

	if (!obj)
		return -1;
	json_object_set_new(obj, "type", json_string("error"));
	if (id)
		json_object_set(obj, "id", id);
	json_object_set_new(obj, "code", json_string(code));
	json_object_set_new(obj, "message", json_string(text));
	return dump_reply(obj, reply);
}

static int reply_pong(json_t *id, struct message_reply *reply)
{
	json_t *obj = json_object();

	if (!obj)
		return -1;
	json_object_set_new(obj, "type", json_string("pong"));
	if (id)
		json_object_set(obj, "id", id);
	return dump_reply(obj, reply);
}

static int set_plain(const char *text, struct message_reply *reply)
{
	reply->text = strdup(text);
	reply->len = reply->text ? strlen(text) : 0;
	return reply->text ? 0 : -1;
}

int message_handle(const char *text, size_t len, struct message_reply *reply)
{
	json_error_t error;
	json_t *root, *type, *id;
	char why[256];
	int rc;

	reply->text = NULL;
	reply->len = 0;
	/* browsers cannot send WebSocket pings: the bare text "ping" is the app-level one */
	if (len == 4 && !memcmp(text, "ping", 4))
		return set_plain("pong", reply);

	/* DECODE_ANY: a bare value is valid JSON, and gets the "must be an object" answer */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!root) {
		snprintf(why, sizeof(why), "invalid JSON at position %d: %s", error.position, error.text);
		return reply_error(NULL, "bad_request", why, reply);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return reply_error(NULL, "bad_request", "a message must be a JSON object with a \"type\"", reply);
	}
	id = json_object_get(root, "id");
	type = json_object_get(root, "type");
	if (!json_is_string(type)) {
		rc = reply_error(id, "bad_request", "\"type\" must be a string", reply);
	} else if (!strcmp(json_string_value(type), "ping")) {
		rc = reply_pong(id, reply);
	} else {
		const char *name = json_string_value(type);
		/* quote at most 64 bytes of the client's type, cut on a character boundary */
		int shown = (int)util_utf8_prefix_len(name, strlen(name), 64);
		snprintf(why, sizeof(why), "unknown type \"%.*s\"", shown, name);
		rc = reply_error(id, "bad_request", why, reply);
	}
	json_decref(root);
	return rc;
}

char *message_welcome(const char *session_id, const char *user, const char *device, unsigned heartbeat_ms,
		      size_t *len)
{
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "welcome", "session", session_id, "user",
				user, "device", device, "heartbeat_ms", (json_int_t)heartbeat_ms);
	char *text;

	if (!obj)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text)
		*len = strlen(text);
	return text;
}
