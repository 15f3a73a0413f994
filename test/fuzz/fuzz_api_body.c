/*
 * The backend API's request bodies (app/api_body.c). Input: one byte choosing
 * the route (publish, send, disconnect, none), then the body. A body is either accepted with every field the
 * route needs, checked, or refused with a text that fits in the JSON
 * {"error": ...} answer (so a bad body is a 400, never a 500).
 */
#include "api_body.h"
#include "channel.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_body body;
	char err[300];

	if (size < 1)
		return 0;
	enum api_body_route route = (enum api_body_route)(data[0] % 4);
	const char *text = (const char *)data + 1;

	memset(err, 0, sizeof(err));
	if (api_body_parse(route, text, size - 1, &body, err, sizeof(err))) {
		FUZZ_ASSERT(body.root == NULL);
		FUZZ_ASSERT(err[0] != '\0');
		/* app/api.c answers json_pack("{s:s}", "error", err): it must be able to */
		json_t *reply = json_pack("{s:s}", "error", err);
		FUZZ_ASSERT(reply != NULL);
		json_decref(reply);
		return 0;
	}
	FUZZ_ASSERT(json_is_object(body.root));
	switch (route) {
	case API_BODY_PUBLISH:
		FUZZ_ASSERT(body.channel && channel_name_is_valid(body.channel));
		FUZZ_ASSERT(body.data && json_object_get(body.root, "data") == body.data);
		break;
	case API_BODY_SEND:
		FUZZ_ASSERT(body.user && *body.user);
		FUZZ_ASSERT(body.data && json_object_get(body.root, "data") == body.data);
		break;
	case API_BODY_DISCONNECT:
		FUZZ_ASSERT(body.user && *body.user);
		FUZZ_ASSERT(body.code >= 4000 && body.code <= 4999);
		FUZZ_ASSERT(json_integer_value(json_object_get(body.root, "code")) == body.code);
		FUZZ_ASSERT(body.reason != NULL);
		FUZZ_ASSERT(!body.device || json_string_value(json_object_get(body.root, "device")) == body.device);
		break;
	case API_BODY_NONE: /* reload, drain: nothing read from the body */
		FUZZ_ASSERT(!body.channel && !body.user && !body.device && !body.data && !body.reason);
		break;
	}
	api_body_free(&body);
	FUZZ_ASSERT(body.root == NULL);
	return 0;
}
