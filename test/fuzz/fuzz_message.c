/*
 * The client message handler: any text frame becomes a request or an error
 * reply naming the problem, and every reply built from it (with the client's
 * own "id" and "data") is JSON that reads back to the same id and data. Pings
 * read without a tree must get the very answer jansson's reading would give.
 */
#include "channel.h"
#include "fuzz.h"
#include "message.h"

/* text must be one compact JSON object; returns it parsed (caller frees). */
static json_t *read_back(const char *text, size_t len)
{
	json_error_t error;

	FUZZ_ASSERT(text != NULL);
	FUZZ_ASSERT(strlen(text) == len);
	FUZZ_ASSERT(fuzz_is_utf8((const unsigned char *)text, len));
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
	FUZZ_ASSERT(json_is_object(obj));
	return obj;
}

static void check_id(json_t *reply, json_t *id)
{
	json_t *got = json_object_get(reply, "id");

	FUZZ_ASSERT(id ? json_equal(got, id) : got == NULL);
}

/* The ping reader that builds no tree agrees with jansson, byte for byte. */
static void check_ping_like_jansson(const struct request *req, const char *text, size_t size)
{
	json_error_t error;
	json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	bool is_ping = json_is_object(root) && json_is_string(json_object_get(root, "type")) &&
		       !strcmp(json_string_value(json_object_get(root, "type")), "ping");
	char got[512], *want;
	size_t got_len, want_len = 0;

	FUZZ_ASSERT(is_ping == (req->type == REQUEST_PING));
	if (is_ping) {
		got_len = message_pong_to(req, got, sizeof(got));
		want = message_pong(json_object_get(root, "id"), &want_len);
		FUZZ_ASSERT(want != NULL);
		if (want_len < sizeof(got))
			FUZZ_ASSERT(got_len == want_len && !memcmp(got, want, want_len));
		free(want);
	}
	json_decref(root);
}

static void check_replies(const struct request *req)
{
	size_t len = 0;
	char *text;
	json_t *obj;

	text = message_pong(req->id, &len);
	obj = read_back(text, len);
	FUZZ_ASSERT(!strcmp(json_string_value(json_object_get(obj, "type")), "pong"));
	check_id(obj, req->id);
	json_decref(obj);
	free(text);

	text = message_ack(req->id, 3, &len);
	obj = read_back(text, len);
	check_id(obj, req->id);
	FUZZ_ASSERT(json_integer_value(json_object_get(obj, "delivered")) == 3);
	json_decref(obj);
	free(text);

	if (req->type == REQUEST_INVALID) {
		text = message_error(req->id, req->error_code, req->error_text, &len);
		obj = read_back(text, len);
		check_id(obj, req->id);
		/* the client must get the whole explanation */
		FUZZ_ASSERT(!strcmp(json_string_value(json_object_get(obj, "code")), req->error_code));
		FUZZ_ASSERT(!strcmp(json_string_value(json_object_get(obj, "message")), req->error_text));
		json_decref(obj);
		free(text);
	}

	if (req->data) {
		const char *from = req->to ? req->to : "alice";
		text = message_channel_delivery(req->channel ? req->channel : "news", from, req->data, 7,
						1700000000000ULL, &len);
		obj = read_back(text, len);
		FUZZ_ASSERT(json_equal(json_object_get(obj, "data"), req->data));
		FUZZ_ASSERT(json_integer_value(json_object_get(obj, "seq")) == 7);
		json_decref(obj);
		free(text);
		text = message_direct_delivery("alice", from, req->data, 1700000000000ULL, &len);
		obj = read_back(text, len);
		FUZZ_ASSERT(json_equal(json_object_get(obj, "data"), req->data));
		FUZZ_ASSERT(!strcmp(json_string_value(json_object_get(obj, "to")), from));
		json_decref(obj);
		free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request req;
	const char *text = (const char *)data;

	FUZZ_ASSERT(message_parse(text, size, &req) == 0);
	/* wsgate hands message_parse only valid UTF-8 text (RFC 6455 8.1); check the rest for crashes alone */
	if (fuzz_is_utf8(data, size)) {
		switch (req.type) {
		case REQUEST_INVALID:
			FUZZ_ASSERT(req.error_code && !strcmp(req.error_code, "bad_request"));
			FUZZ_ASSERT(req.error_text[0] != '\0');
			break;
		case REQUEST_TEXT_PING:
			FUZZ_ASSERT(size == 4 && !memcmp(text, "ping", 4));
			break;
		case REQUEST_SUBSCRIBE:
		case REQUEST_UNSUBSCRIBE:
			FUZZ_ASSERT(req.channel && channel_name_is_valid(req.channel));
			break;
		case REQUEST_PUBLISH:
			FUZZ_ASSERT(req.channel && channel_name_is_valid(req.channel) && req.data);
			break;
		case REQUEST_SEND:
			FUZZ_ASSERT(req.to && req.data);
			break;
		case REQUEST_PING:
			break;
		}
		if (req.type != REQUEST_INVALID && req.type != REQUEST_TEXT_PING && req.type != REQUEST_PING)
			FUZZ_ASSERT(json_is_object(req.root));
		if (req.type != REQUEST_TEXT_PING)
			check_ping_like_jansson(&req, text, size);
		check_replies(&req);
	}
	message_request_free(&req);
	FUZZ_ASSERT(req.root == NULL);
	return 0;
}
