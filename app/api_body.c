/*
 * Request-body checks for POST /api/publish, /api/send and /api/disconnect.
 * Every refusal names the offending field; nothing here acts on a session.
 */
#include "api_body.h"

#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "closecode.h"
#include "util.h"

static const char *string_member(json_t *body, const char *name)
{
	return json_string_value(json_object_get(body, name));
}

static const char *check_publish(struct api_body *b)
{
	b->channel = string_member(b->root, "channel");
	b->data = json_object_get(b->root, "data");
	if (!b->channel || !channel_name_is_valid(b->channel))
		return "\"channel\" must be a valid channel name";
	if (!b->data)
		return "\"data\" is missing";
	return NULL;
}

static const char *check_send(struct api_body *b)
{
	b->user = string_member(b->root, "user");
	b->data = json_object_get(b->root, "data");
	if (!b->user || !*b->user)
		return "\"user\" must be a string";
	if (!b->data)
		return "\"data\" is missing";
	return NULL;
}

static const char *check_disconnect(struct api_body *b)
{
	json_t *device = json_object_get(b->root, "device"), *code = json_object_get(b->root, "code");
	json_t *reason = json_object_get(b->root, "reason");

	b->user = string_member(b->root, "user");
	if (!b->user || !*b->user)
		return "\"user\" must be a string";
	if (device && !json_is_string(device))
		return "\"device\" must be a string when present";
	if (!json_is_integer(code) || json_integer_value(code) < 4000 || json_integer_value(code) > 4999)
		return "\"code\" must be an integer from 4000 to 4999";
	if (reason && !json_is_string(reason))
		return "\"reason\" must be a string when present";
	b->device = device ? json_string_value(device) : NULL;
	b->code = (int)json_integer_value(code);
	const struct wsg_close_info *info = closecode_find(b->code);
	b->reason = reason ? json_string_value(reason)
		    : info ? info->reason
			   : closecode_find(WSG_CLOSE_DISCONNECTED)->reason;
	return NULL;
}

int api_body_parse(enum api_body_route route, const char *text, size_t len, struct api_body *out, char *err,
		   size_t errlen)
{
	json_error_t error;
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	if (route == API_BODY_NONE && !len) {
		out->root = json_object();
		if (out->root)
			return 0;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out->root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (!out->root) {
		snprintf(err, errlen, "invalid JSON body at position %d: %s", error.position, error.text);
		/* jansson quotes the bytes it stopped at, maybe half a character: the answer must stay UTF-8 */
		err[util_utf8_prefix_len(err, strlen(err), errlen - 1)] = '\0';
		return -1;
	}
	if (!json_is_object(out->root)) {
		why = "the body must be a JSON object";
	} else {
		switch (route) {
		case API_BODY_PUBLISH:
			why = check_publish(out);
			break;
		case API_BODY_SEND:
			why = check_send(out);
			break;
		case API_BODY_DISCONNECT:
			why = check_disconnect(out);
			break;
		case API_BODY_NONE:
			break;
		}
	}
	if (!why)
		return 0;
	snprintf(err, errlen, "%s", why);
	api_body_free(out);
	return -1;
}

void api_body_free(struct api_body *body)
{
	json_decref(body->root);
	memset(body, 0, sizeof(*body));
}
