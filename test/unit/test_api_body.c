/* api_body: the backend API's request bodies, parsed per route, and the exact 400 texts. */
#include "api_body.h"

#include <string.h>

#include "check.h"

static void expect_error(enum api_body_route route, const char *text, const char *expected)
{
	struct api_body body;
	char err[300] = "";

	if (!CHECK_EQ_INT(api_body_parse(route, text, strlen(text), &body, err, sizeof(err)), -1)) {
		api_body_free(&body);
		return;
	}
	CHECK(body.root == NULL);
	CHECK_EQ_STR(err, expected);
}

static void test_invalid_json_names_the_position(void)
{
	expect_error(API_BODY_PUBLISH,
		     "{\"channel\":", "invalid JSON body at position 11: unexpected token near end of file");
	expect_error(API_BODY_SEND, "", "invalid JSON body at position 0: unexpected token near end of file");
	expect_error(API_BODY_SEND, "{\"user\":\"a\",\"user\":\"b\"}",
		     "invalid JSON body at position 18: duplicate object key near '\"user\"'");
}

/* Found by test/fuzz/fuzz_message: half a character in jansson's quote would make the 400 a 500. */
static void test_invalid_json_text_stays_utf8(void)
{
	expect_error(API_BODY_SEND, "{\"user\":\"\\u\xc3\xa9\"}",
		     "invalid JSON body at position 12: invalid escape near '\"\\u");
}

static void test_a_null_body_is_an_empty_one(void)
{
	struct api_body body;
	char err[300] = "";

	CHECK_EQ_INT(api_body_parse(API_BODY_PUBLISH, NULL, 0, &body, err, sizeof(err)), -1);
	CHECK(strstr(err, "invalid JSON body at position 0") == err);
}

static void test_non_objects_are_refused(void)
{
	expect_error(API_BODY_PUBLISH, "[]", "the body must be a JSON object");
	expect_error(API_BODY_DISCONNECT, "42", "the body must be a JSON object");
	expect_error(API_BODY_SEND, "\"x\"", "the body must be a JSON object");
}

static void test_publish_fields(void)
{
	struct api_body body;
	char err[300];
	const char *ok = "{\"channel\":\"chat.room-1\",\"data\":{\"x\":1}}";

	expect_error(API_BODY_PUBLISH, "{\"data\":1}", "\"channel\" must be a valid channel name");
	expect_error(API_BODY_PUBLISH, "{\"channel\":\"a..b\",\"data\":1}", "\"channel\" must be a valid channel name");
	expect_error(API_BODY_PUBLISH, "{\"channel\":7,\"data\":1}", "\"channel\" must be a valid channel name");
	expect_error(API_BODY_PUBLISH, "{\"channel\":\"chat\"}", "\"data\" is missing");
	if (!CHECK_EQ_INT(api_body_parse(API_BODY_PUBLISH, ok, strlen(ok), &body, err, sizeof(err)), 0))
		return;
	CHECK_EQ_STR(body.channel, "chat.room-1");
	CHECK(json_is_object(body.data));
	api_body_free(&body);
	CHECK(body.root == NULL);
}

static void test_send_fields(void)
{
	struct api_body body;
	char err[300];
	const char *ok = "{\"user\":\"bob\",\"data\":null}";

	expect_error(API_BODY_SEND, "{\"data\":1}", "\"user\" must be a string");
	expect_error(API_BODY_SEND, "{\"user\":\"\",\"data\":1}", "\"user\" must be a string");
	expect_error(API_BODY_SEND, "{\"user\":[],\"data\":1}", "\"user\" must be a string");
	expect_error(API_BODY_SEND, "{\"user\":\"bob\"}", "\"data\" is missing");
	if (!CHECK_EQ_INT(api_body_parse(API_BODY_SEND, ok, strlen(ok), &body, err, sizeof(err)), 0))
		return;
	CHECK_EQ_STR(body.user, "bob");
	CHECK(json_is_null(body.data)); /* null is data too */
	api_body_free(&body);
}

static void test_disconnect_fields(void)
{
	struct api_body body;
	char err[300];
	const char *full = "{\"user\":\"bob\",\"device\":\"d1\",\"code\":4321,\"reason\":\"bye\"}";
	const char *bare = "{\"user\":\"bob\",\"code\":4003}";
	const char *unknown = "{\"user\":\"bob\",\"code\":4999}";

	expect_error(API_BODY_DISCONNECT, "{\"code\":4005}", "\"user\" must be a string");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"device\":1,\"code\":4005}",
		     "\"device\" must be a string when present");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\"}", "\"code\" must be an integer from 4000 to 4999");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"code\":3999}",
		     "\"code\" must be an integer from 4000 to 4999");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"code\":5000}",
		     "\"code\" must be an integer from 4000 to 4999");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"code\":4005.0}",
		     "\"code\" must be an integer from 4000 to 4999");
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"code\":4294971301}",
		     "\"code\" must be an integer from 4000 to 4999"); /* 4005 + 2^32: no truncation */
	expect_error(API_BODY_DISCONNECT, "{\"user\":\"b\",\"code\":4005,\"reason\":null}",
		     "\"reason\" must be a string when present");

	if (CHECK_EQ_INT(api_body_parse(API_BODY_DISCONNECT, full, strlen(full), &body, err, sizeof(err)), 0)) {
		CHECK_EQ_STR(body.user, "bob");
		CHECK_EQ_STR(body.device, "d1");
		CHECK_EQ_INT(body.code, 4321);
		CHECK_EQ_STR(body.reason, "bye");
		api_body_free(&body);
	}
	/* no reason: the table's text for a known code, else the generic one of 4005 */
	if (CHECK_EQ_INT(api_body_parse(API_BODY_DISCONNECT, bare, strlen(bare), &body, err, sizeof(err)), 0)) {
		CHECK(body.device == NULL);
		CHECK_EQ_STR(body.reason, "forbidden");
		api_body_free(&body);
	}
	if (CHECK_EQ_INT(api_body_parse(API_BODY_DISCONNECT, unknown, strlen(unknown), &body, err, sizeof(err)), 0)) {
		CHECK_EQ_STR(body.reason, "disconnected by the application");
		api_body_free(&body);
	}
}

/* POST /api/reload and /api/drain: no parameters; an empty body will do, else a JSON object. */
static void test_routes_without_parameters(void)
{
	struct api_body body;
	char err[300];

	if (CHECK_EQ_INT(api_body_parse(API_BODY_NONE, NULL, 0, &body, err, sizeof(err)), 0)) {
		CHECK(json_is_object(body.root));
		api_body_free(&body);
	}
	if (CHECK_EQ_INT(api_body_parse(API_BODY_NONE, "{\"x\":1}", 7, &body, err, sizeof(err)), 0))
		api_body_free(&body);
	expect_error(API_BODY_NONE, "[]", "the body must be a JSON object");
	expect_error(API_BODY_NONE, " ", "invalid JSON body at position 1: unexpected token near end of file");
}

int main(void)
{
	RUN(test_invalid_json_names_the_position);
	RUN(test_invalid_json_text_stays_utf8);
	RUN(test_a_null_body_is_an_empty_one);
	RUN(test_non_objects_are_refused);
	RUN(test_publish_fields);
	RUN(test_send_fields);
	RUN(test_disconnect_fields);
	RUN(test_routes_without_parameters);
	return check_summary();
}
