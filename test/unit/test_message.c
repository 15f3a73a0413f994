/* message: client JSON messages -> replies, and the welcome message. */
#include "message.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/*
 * The reply the server gives to text when the request needs no routing: pong,
 * or the error for an invalid request; "(TYPE)" for a valid routed request.
 */
static char *reply_to_n(const char *text, size_t len)
{
	struct request req;
	char *reply = NULL;
	size_t reply_len = 0;

	if (!CHECK_EQ_INT(message_parse(text, len, &req), 0))
		return NULL;
	switch (req.type) {
	case REQUEST_TEXT_PING:
		reply = strdup("pong");
		reply_len = 4;
		break;
	case REQUEST_PING: {
		char pong[256];
		reply_len = message_pong_to(&req, pong, sizeof(pong));
		reply = strndup(pong, reply_len);
		break;
	}
	case REQUEST_INVALID:
		reply = message_error(req.id, req.error_code, req.error_text, &reply_len);
		break;
	default:
		reply = strdup("(routed)");
		reply_len = 8;
		break;
	}
	message_request_free(&req);
	if (reply)
		CHECK_EQ_INT(reply_len, strlen(reply));
	return reply;
}

static char *reply_to(const char *text)
{
	return reply_to_n(text, strlen(text));
}

static void expect_reply(const char *request, const char *expected)
{
	char *reply = reply_to(request);

	CHECK_EQ_STR(reply, expected);
	free(reply);
}

/* Checks an error reply: type "error", code "bad_request", id as given (NULL: none), message containing hint. */
static void expect_bad_request(const char *request, const char *id_json, const char *hint)
{
	char *reply = reply_to(request);
	json_error_t error;
	json_t *obj = reply ? json_loads(reply, 0, &error) : NULL;

	if (!CHECK(obj != NULL)) {
		fprintf(stderr, "    request %s: reply %s is not JSON\n", request, reply ? reply : "NULL");
		free(reply);
		return;
	}
	CHECK_EQ_STR(json_string_value(json_object_get(obj, "type")), "error");
	CHECK_EQ_STR(json_string_value(json_object_get(obj, "code")), "bad_request");
	const char *message = json_string_value(json_object_get(obj, "message"));
	if (CHECK(message != NULL) && !CHECK(strstr(message, hint) != NULL))
		fprintf(stderr, "    request %s: message \"%s\" does not mention \"%s\"\n", request, message, hint);
	json_t *id = json_object_get(obj, "id");
	if (id_json) {
		char *dumped = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		CHECK_EQ_STR(dumped, id_json);
		free(dumped);
	} else {
		CHECK(id == NULL);
	}
	CHECK_EQ_INT(json_object_size(obj), id_json ? 4 : 3);
	json_decref(obj);
	free(reply);
}

static void test_bare_ping_gets_bare_pong(void)
{
	expect_reply("ping", "pong");
}

static void test_json_ping_gets_json_pong(void)
{
	expect_reply("{\"type\":\"ping\"}", "{\"type\":\"pong\"}");
	expect_reply(" { \"type\" : \"ping\" } ", "{\"type\":\"pong\"}");
}

static void test_ping_id_is_echoed(void)
{
	expect_reply("{\"type\":\"ping\",\"id\":7}", "{\"type\":\"pong\",\"id\":7}");
	expect_reply("{\"id\":\"abc\",\"type\":\"ping\"}", "{\"type\":\"pong\",\"id\":\"abc\"}");
	expect_reply("{\"type\":\"ping\",\"id\":{\"n\":[1,2]}}", "{\"type\":\"pong\",\"id\":{\"n\":[1,2]}}");
}

static void test_error_reply_is_exact(void)
{
	expect_reply("{\"type\":\"nope\"}",
		     "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"unknown type \\\"nope\\\"\"}");
	expect_reply(
		"{\"type\":\"nope\",\"id\":7}",
		"{\"type\":\"error\",\"id\":7,\"code\":\"bad_request\",\"message\":\"unknown type \\\"nope\\\"\"}");
}

static void test_unknown_type_is_a_bad_request(void)
{
	expect_bad_request("{\"type\":\"subscribe_all\"}", NULL, "unknown type \"subscribe_all\"");
	expect_bad_request("{\"type\":\"PING\"}", NULL, "unknown type \"PING\"");
	expect_bad_request("{\"type\":\"\"}", NULL, "unknown type \"\"");
}

static void test_unknown_type_is_quoted_at_most_64_bytes(void)
{
	char request[512], expected[128];
	char type[201];

	memset(type, 'x', 200);
	type[200] = '\0';
	snprintf(request, sizeof(request), "{\"type\":\"%s\"}", type);
	snprintf(expected, sizeof(expected), "unknown type \"%.64s\"", type);
	expect_bad_request(request, NULL, expected);

	/* 21 x "中" is 63 bytes: the 22nd does not fit and is not split */
	char wide[3 * 30 + 1] = "";
	for (int i = 0; i < 30; i++)
		strcat(wide, "\xe4\xb8\xad");
	snprintf(request, sizeof(request), "{\"type\":\"%s\"}", wide);
	snprintf(expected, sizeof(expected), "unknown type \"%.63s\"", wide);
	expect_bad_request(request, NULL, expected);
}

static void test_missing_type_is_a_bad_request(void)
{
	expect_bad_request("{}", NULL, "\"type\" must be a string");
	expect_bad_request("{\"kind\":\"ping\"}", NULL, "\"type\" must be a string");
}

static void test_non_string_type_is_a_bad_request(void)
{
	expect_bad_request("{\"type\":1}", NULL, "\"type\" must be a string");
	expect_bad_request("{\"type\":null}", NULL, "\"type\" must be a string");
	expect_bad_request("{\"type\":[\"ping\"]}", NULL, "\"type\" must be a string");
	expect_bad_request("{\"type\":{\"ping\":true}}", NULL, "\"type\" must be a string");
}

static void test_non_object_is_a_bad_request(void)
{
	const char *hint = "a message must be a JSON object with a \"type\"";

	expect_bad_request("[\"ping\"]", NULL, hint);
	expect_bad_request("[{\"type\":\"ping\",\"id\":1}]", NULL, hint);
	expect_bad_request("[]", NULL, hint);
}

static void test_top_level_scalar_is_a_bad_request(void)
{
	/* jansson refuses a bare scalar at the top level as a parse error, so the
	 * message is the parser's ("'[' or '{' expected ..."), not the object hint */
	expect_bad_request("\"ping\"", NULL, "JSON");
	expect_bad_request("42", NULL, "JSON");
	expect_bad_request("null", NULL, "JSON");
}

static void test_invalid_json_is_a_bad_request(void)
{
	expect_bad_request("{\"type\":", NULL, "invalid JSON at position");
	expect_bad_request("{type:\"ping\"}", NULL, "invalid JSON at position");
	expect_bad_request("pong", NULL, "invalid JSON at position");
	expect_bad_request("ping ", NULL, "invalid JSON at position");
	expect_bad_request("", NULL, "invalid JSON at position");
	expect_bad_request("{\"type\":\"ping\"} {}", NULL, "invalid JSON at position");
	/* duplicate keys are refused, not resolved by picking one */
	expect_bad_request("{\"type\":\"ping\",\"type\":\"x\"}", NULL, "invalid JSON at position");
}

static void test_invalid_json_position_points_at_the_problem(void)
{
	char *reply = reply_to("{\"type\":\"ping\",}");
	json_t *obj = reply ? json_loads(reply, 0, NULL) : NULL;
	const char *message = json_string_value(json_object_get(obj, "message"));

	CHECK(message != NULL && strncmp(message, "invalid JSON at position 16: ", 29) == 0);
	if (message && strncmp(message, "invalid JSON at position 16: ", 29))
		fprintf(stderr, "    message: %s\n", message);
	json_decref(obj);
	free(reply);
}

/*
 * Found by test/fuzz/fuzz_message: jansson quotes the bytes where it stopped,
 * here the first half of "é" after a broken escape; the reply lost its
 * "message" (json_string refuses invalid UTF-8). Now cut to whole characters.
 */
static void test_invalid_json_message_stays_utf8(void)
{
	expect_reply("{\"type\":\"ping\",\"x\":\"\\u\xc3\xa9\"}",
		     "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"invalid JSON at position 23: "
		     "invalid escape near '\\\"\\\\u\"}");
}

/* Found by test/fuzz/fuzz_message: the tree-less ping reader must answer exactly as jansson would. */
static void test_ping_reader_answers_like_jansson(void)
{
	expect_reply("{\"type\":\"ping\",\"id\":-0}", "{\"type\":\"pong\",\"id\":0}");
	expect_reply("{\"type\":\"ping\",\"x\":[1.5,-2,[]],\"y\":{}}", "{\"type\":\"pong\"}");
	expect_bad_request("{\"type\":\"ping\",\"x\":{\"a\":1,\"a\":2}}", NULL, "duplicate object key");
	expect_bad_request("{\"type\":\"ping\",\"x\":[{\"a\":1,\"a\":2}]}", NULL, "duplicate object key");
	expect_bad_request("{\"type\":\"ping\",\"x\":1e999}", NULL, "real number overflow");
	expect_bad_request("{\"type\":\"ping\",\"x\":99999999999999999999}", NULL, "too big integer");
	expect_bad_request("{\"type\":\"ping\",\"x\":-99999999999999999999}", NULL, "too big negative integer");
}

static void test_error_echoes_the_id_of_an_object_request(void)
{
	expect_bad_request("{\"type\":\"nope\",\"id\":7}", "7", "unknown type \"nope\"");
	expect_bad_request("{\"id\":\"req-1\"}", "\"req-1\"", "\"type\" must be a string");
	expect_bad_request("{\"type\":5,\"id\":[1,2]}", "[1,2]", "\"type\" must be a string");
}

static void test_ping_only_as_the_whole_message(void)
{
	/* length decides, not a NUL: "ping" followed by more bytes is not the bare ping */
	char *reply = reply_to_n("ping\0junk", 9);

	CHECK(reply != NULL && strcmp(reply, "pong") != 0);
	CHECK(reply != NULL && strstr(reply, "\"bad_request\"") != NULL);
	free(reply);
	reply = reply_to_n("pingpong", 4);
	CHECK_EQ_STR(reply, "pong");
	free(reply);
}

static void test_welcome_is_exact(void)
{
	size_t len = 0;
	char *text = message_welcome("0123456789abcdef", "alice", "phone", 25000, &len);

	CHECK_EQ_STR(text, "{\"type\":\"welcome\",\"session\":\"0123456789abcdef\",\"user\":\"alice\","
			   "\"device\":\"phone\",\"heartbeat_ms\":25000}");
	if (text)
		CHECK_EQ_INT(len, strlen(text));
	free(text);
}

static void test_welcome_without_device(void)
{
	size_t len = 0;
	char *text = message_welcome("s1", "bob", "", 100, &len);

	CHECK_EQ_STR(text,
		     "{\"type\":\"welcome\",\"session\":\"s1\",\"user\":\"bob\",\"device\":\"\",\"heartbeat_ms\":100}");
	free(text);
}

static struct request parse(const char *text)
{
	struct request req;

	CHECK_EQ_INT(message_parse(text, strlen(text), &req), 0);
	return req;
}

static void test_routed_requests_are_parsed(void)
{
	struct request req = parse("{\"type\":\"subscribe\",\"channel\":\"chat.room\",\"id\":1}");
	CHECK_EQ_INT(req.type, REQUEST_SUBSCRIBE);
	CHECK_EQ_STR(req.channel, "chat.room");
	CHECK_EQ_INT(json_integer_value(req.id), 1);
	message_request_free(&req);

	req = parse("{\"type\":\"unsubscribe\",\"channel\":\"news\"}");
	CHECK_EQ_INT(req.type, REQUEST_UNSUBSCRIBE);
	CHECK(req.id == NULL);
	message_request_free(&req);

	req = parse("{\"type\":\"publish\",\"channel\":\"news\",\"data\":null}");
	CHECK_EQ_INT(req.type, REQUEST_PUBLISH);
	CHECK(json_is_null(req.data)); /* null is data, not absent */
	message_request_free(&req);

	req = parse("{\"type\":\"send\",\"to\":\"bob\",\"data\":{\"a\":[1]}}");
	CHECK_EQ_INT(req.type, REQUEST_SEND);
	CHECK_EQ_STR(req.to, "bob");
	CHECK(json_is_object(req.data));
	message_request_free(&req);
}

static void expect_invalid(const char *text, const char *message)
{
	struct request req = parse(text);

	CHECK_EQ_INT(req.type, REQUEST_INVALID);
	CHECK_EQ_STR(req.error_code, "bad_request");
	CHECK_EQ_STR(req.error_text, message);
	message_request_free(&req);
}

static void test_routed_request_validation_errors(void)
{
	expect_invalid("{\"type\":\"subscribe\"}", "\"channel\" must be a string");
	expect_invalid("{\"type\":\"subscribe\",\"channel\":5}", "\"channel\" must be a string");
	expect_invalid("{\"type\":\"subscribe\",\"channel\":\"a..b\"}",
		       "\"channel\" must be 1-128 bytes of dot-separated segments of A-Z a-z 0-9 _ - @ :");
	expect_invalid("{\"type\":\"publish\",\"channel\":\"news\"}", "\"data\" is missing");
	expect_invalid("{\"type\":\"send\",\"data\":1}", "\"to\" must be a string");
	expect_invalid("{\"type\":\"send\",\"to\":\"bob\"}", "\"data\" is missing");
}

static void test_ack_and_deliveries_are_exact(void)
{
	json_t *id = json_integer(9), *data = json_pack("{s:i}", "x", 1);
	size_t len;
	char *text;

	text = message_ack(id, -1, &len);
	CHECK_EQ_STR(text, "{\"type\":\"ack\",\"id\":9}");
	free(text);
	text = message_ack(NULL, 3, &len);
	CHECK_EQ_STR(text, "{\"type\":\"ack\",\"delivered\":3}");
	free(text);
	text = message_channel_delivery("news", "alice", data, 4, 1700000000000ULL, &len);
	CHECK_EQ_STR(text, "{\"type\":\"message\",\"channel\":\"news\",\"from\":\"alice\",\"data\":{\"x\":1},"
			   "\"seq\":4,\"ts\":1700000000000}");
	CHECK_EQ_INT(len, strlen(text));
	free(text);
	text = message_channel_delivery("news", NULL, data, 5, 1, &len);
	CHECK_EQ_STR(text,
		     "{\"type\":\"message\",\"channel\":\"news\",\"from\":null,\"data\":{\"x\":1},\"seq\":5,\"ts\":1}");
	free(text);
	text = message_direct_delivery("alice", "bob", data, 2, &len);
	CHECK_EQ_STR(text, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"x\":1},\"ts\":2}");
	free(text);
	json_decref(id);
	json_decref(data);
}

/* The pong for text, however message_parse read it (the tree-less ping reader or jansson). */
static void check_pong(const char *text, const char *want)
{
	struct request req;
	char out[256];

	CHECK_EQ_INT(message_parse(text, strlen(text), &req), 0);
	if (want) {
		size_t n = message_pong_to(&req, out, sizeof(out));
		if (CHECK_EQ_INT(req.type, REQUEST_PING))
			CHECK_EQ_STR((out[n] = '\0', out), want);
	} else {
		CHECK_EQ_INT(req.type, REQUEST_INVALID);
	}
	message_request_free(&req);
}

static void test_pings_read_without_a_tree_answer_like_jansson(void)
{
	check_pong("{\"type\":\"ping\"}", "{\"type\":\"pong\"}");
	check_pong("{\"type\":\"ping\",\"id\":7,\"pad\":\"xxxxxxxx\"}", "{\"type\":\"pong\",\"id\":7}");
	check_pong("{\"id\":-5,\"type\":\"ping\"}", "{\"type\":\"pong\",\"id\":-5}");
	check_pong("{ \"type\" : \"ping\" ,\n \"id\" : \"a-b:c\" }", "{\"type\":\"pong\",\"id\":\"a-b:c\"}");
	check_pong("{\"type\":\"ping\",\"x\":[1,2.5e3,{\"a\":[true,false,null]}],\"id\":0}",
		   "{\"type\":\"pong\",\"id\":0}");
	/* what the tree-less reader leaves to jansson comes out the same */
	check_pong("{\"type\":\"ping\",\"id\":1.5}", "{\"type\":\"pong\",\"id\":1.5}");
	check_pong("{\"type\":\"ping\",\"id\":1234567890123456}", "{\"type\":\"pong\",\"id\":1234567890123456}");
	check_pong("{\"type\":\"pin\\u0067\",\"id\":\"a b\"}", "{\"type\":\"pong\",\"id\":\"a b\"}");
	check_pong("{\"type\":\"ping\",\"id\":{\"k\":1}}", "{\"type\":\"pong\",\"id\":{\"k\":1}}");
	/* and what is not valid JSON, or has a duplicate member, stays an error */
	check_pong("{\"type\":\"ping\",\"type\":\"ping\"}", NULL);
	check_pong("{\"type\":\"ping\",\"id\":01}", NULL);
	check_pong("{\"type\":\"ping\",\"x\":[1,{\"a\":tru}]}", NULL);
	check_pong("{\"type\":\"ping\"} x", NULL);
	check_pong("{\"type\":\"ping\",}", NULL);
	check_pong("{\"type\":\"ping\",\"x\":\"\x01\"}", NULL);
}

int main(void)
{
	RUN(test_pings_read_without_a_tree_answer_like_jansson);
	RUN(test_routed_requests_are_parsed);
	RUN(test_routed_request_validation_errors);
	RUN(test_ack_and_deliveries_are_exact);
	RUN(test_bare_ping_gets_bare_pong);
	RUN(test_json_ping_gets_json_pong);
	RUN(test_ping_id_is_echoed);
	RUN(test_error_reply_is_exact);
	RUN(test_unknown_type_is_a_bad_request);
	RUN(test_unknown_type_is_quoted_at_most_64_bytes);
	RUN(test_missing_type_is_a_bad_request);
	RUN(test_non_string_type_is_a_bad_request);
	RUN(test_non_object_is_a_bad_request);
	RUN(test_top_level_scalar_is_a_bad_request);
	RUN(test_invalid_json_is_a_bad_request);
	RUN(test_invalid_json_position_points_at_the_problem);
	RUN(test_invalid_json_message_stays_utf8);
	RUN(test_ping_reader_answers_like_jansson);
	RUN(test_error_echoes_the_id_of_an_object_request);
	RUN(test_ping_only_as_the_whole_message);
	RUN(test_welcome_is_exact);
	RUN(test_welcome_without_device);
	return check_summary();
}
