/* auth: token lookup, origin allow-list, device ids, bearer parsing, verdicts. */
#include "auth.h"

#include <string.h>

#include "check.h"
#include "closecode.h"

static struct wsg_token tokens[3];
static char *origins[] = { "https://app.example.com", "http://localhost:3000", NULL };

/* Three users; origins only when with_origins. */
static struct wsg_config make_config(bool with_origins)
{
	static char alice[] = "alice", bob[] = "bob", carol[] = "carol";
	struct wsg_config c;

	memset(&c, 0, sizeof(c));
	auth_token_digest("alice-secret", strlen("alice-secret"), tokens[0].digest);
	tokens[0].user = alice;
	auth_token_digest("bob-secret", strlen("bob-secret"), tokens[1].digest);
	tokens[1].user = bob;
	auth_token_digest("carol-secret", strlen("carol-secret"), tokens[2].digest);
	tokens[2].user = carol;
	c.tokens = tokens;
	c.token_count = 3;
	if (with_origins) {
		c.origins = origins;
		c.origin_count = 2;
	}
	return c;
}

static struct auth_verdict decide(const struct wsg_config *c, const char *token, const char *device, const char *origin)
{
	struct auth_request req = { .token = token, .device = device, .origin = origin };
	struct auth_verdict v;

	memset(&v, 0xa5, sizeof(v)); /* every field must be written */
	auth_decide(c, &req, &v);
	return v;
}

static void check_admitted(struct auth_verdict v, const struct wsg_token *expected)
{
	CHECK(v.token == expected);
	CHECK_EQ_INT(v.close_code, 0);
	CHECK(v.reason == NULL);
	CHECK_EQ_INT(v.http_status, 0);
}

static void check_refused(struct auth_verdict v, int code, int status, const char *reason)
{
	CHECK(v.token == NULL);
	CHECK_EQ_INT(v.close_code, code);
	CHECK_EQ_INT(v.http_status, status);
	CHECK_EQ_STR(v.reason, reason);
}

static void test_digest_is_sha256(void)
{
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];
	static const unsigned char abc[WSG_TOKEN_DIGEST_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};

	auth_token_digest("abc", 3, digest);
	CHECK(memcmp(digest, abc, sizeof(abc)) == 0);
}

static void test_admitted_with_the_right_token(void)
{
	struct wsg_config c = make_config(false);

	check_admitted(decide(&c, "alice-secret", NULL, NULL), &tokens[0]);
	check_admitted(decide(&c, "bob-secret", "phone", NULL), &tokens[1]);
	check_admitted(decide(&c, "carol-secret", "laptop-2", "https://anything.example"), &tokens[2]);
}

static void test_admitted_with_empty_device(void)
{
	struct wsg_config c = make_config(false);

	/* "" is how the server passes ?device= with no value: same as no device */
	check_admitted(decide(&c, "alice-secret", "", NULL), &tokens[0]);
}

static void test_refused_without_token(void)
{
	struct wsg_config c = make_config(false);

	check_refused(decide(&c, NULL, NULL, NULL), WSG_CLOSE_FORBIDDEN, 403, "missing token");
	check_refused(decide(&c, "", "phone", NULL), WSG_CLOSE_FORBIDDEN, 403, "missing token");
}

static void test_refused_with_invalid_token(void)
{
	struct wsg_config c = make_config(false);

	check_refused(decide(&c, "alice-secreT", NULL, NULL), WSG_CLOSE_FORBIDDEN, 403, "invalid token");
	check_refused(decide(&c, "alice-secret ", NULL, NULL), WSG_CLOSE_FORBIDDEN, 403, "invalid token");
	check_refused(decide(&c, "alice", NULL, NULL), WSG_CLOSE_FORBIDDEN, 403, "invalid token");
	check_refused(decide(&c, "Bearer alice-secret", NULL, NULL), WSG_CLOSE_FORBIDDEN, 403, "invalid token");
}

static void test_origin_on_the_allow_list_is_admitted(void)
{
	struct wsg_config c = make_config(true);

	check_admitted(decide(&c, "alice-secret", NULL, "https://app.example.com"), &tokens[0]);
	check_admitted(decide(&c, "alice-secret", NULL, "http://localhost:3000"), &tokens[0]);
	/* exact, case-insensitive */
	check_admitted(decide(&c, "alice-secret", NULL, "HTTPS://APP.example.com"), &tokens[0]);
}

static void test_origin_off_the_allow_list_is_refused(void)
{
	struct wsg_config c = make_config(true);

	check_refused(decide(&c, "alice-secret", NULL, "https://evil.example"), WSG_CLOSE_FORBIDDEN, 403,
		      "origin not allowed");
	check_refused(decide(&c, "alice-secret", NULL, "https://app.example.com.evil.example"), WSG_CLOSE_FORBIDDEN,
		      403, "origin not allowed");
	check_refused(decide(&c, "alice-secret", NULL, "https://app.example.co"), WSG_CLOSE_FORBIDDEN, 403,
		      "origin not allowed");
	check_refused(decide(&c, "alice-secret", NULL, "http://localhost:3001"), WSG_CLOSE_FORBIDDEN, 403,
		      "origin not allowed");
	check_refused(decide(&c, "alice-secret", NULL, "null"), WSG_CLOSE_FORBIDDEN, 403, "origin not allowed");
}

static void test_origin_is_checked_before_the_token(void)
{
	struct wsg_config c = make_config(true);

	check_refused(decide(&c, NULL, NULL, "https://evil.example"), WSG_CLOSE_FORBIDDEN, 403, "origin not allowed");
	check_refused(decide(&c, "wrong", NULL, "https://evil.example"), WSG_CLOSE_FORBIDDEN, 403,
		      "origin not allowed");
}

static void test_no_origin_header_is_admitted_with_an_allow_list(void)
{
	struct wsg_config c = make_config(true);

	check_admitted(decide(&c, "bob-secret", "phone", NULL), &tokens[1]);
}

static void test_any_origin_without_an_allow_list(void)
{
	struct wsg_config c = make_config(false);

	check_admitted(decide(&c, "bob-secret", NULL, "https://evil.example"), &tokens[1]);
}

static void test_invalid_device_is_a_bad_request(void)
{
	struct wsg_config c = make_config(false);
	char device[WSG_DEVICE_MAX + 2];

	memset(device, 'd', WSG_DEVICE_MAX + 1);
	device[WSG_DEVICE_MAX + 1] = '\0'; /* 65 characters */
	check_refused(decide(&c, "alice-secret", device, NULL), WSG_CLOSE_BAD_REQUEST, 400, "invalid device id");
	check_refused(decide(&c, "alice-secret", "my phone", NULL), WSG_CLOSE_BAD_REQUEST, 400, "invalid device id");
	check_refused(decide(&c, "alice-secret", "a/b", NULL), WSG_CLOSE_BAD_REQUEST, 400, "invalid device id");
	check_refused(decide(&c, "alice-secret", "x\xc3\xa9", NULL), WSG_CLOSE_BAD_REQUEST, 400, "invalid device id");

	device[WSG_DEVICE_MAX] = '\0'; /* 64 characters: the longest allowed */
	check_admitted(decide(&c, "alice-secret", device, NULL), &tokens[0]);
}

static void test_token_is_checked_before_the_device(void)
{
	struct wsg_config c = make_config(false);

	check_refused(decide(&c, "wrong", "a/b", NULL), WSG_CLOSE_FORBIDDEN, 403, "invalid token");
	check_refused(decide(&c, NULL, "a/b", NULL), WSG_CLOSE_FORBIDDEN, 403, "missing token");
}

static void test_refuse_takes_the_table_reason_by_default(void)
{
	struct auth_verdict v;

	auth_refuse(&v, HANDSHAKE_AT_CAPACITY, WSG_CLOSE_AT_CAPACITY, NULL);
	check_refused(v, 1013, 503, "server at capacity");
	auth_refuse(&v, HANDSHAKE_INVALID_TOKEN, WSG_CLOSE_FORBIDDEN, "custom");
	check_refused(v, 4003, 403, "custom");
	auth_refuse(&v, HANDSHAKE_REPEAT_CONNECT, WSG_CLOSE_REPEAT_CONNECT, NULL);
	CHECK_EQ_INT(v.outcome, HANDSHAKE_REPEAT_CONNECT);
	check_refused(v, 4001, 0, "repeat connect channel");
}

static void test_bearer_token_parsing(void)
{
	CHECK_EQ_STR(auth_bearer_token("Bearer x"), "x");
	CHECK_EQ_STR(auth_bearer_token("bearer x"), "x");
	CHECK_EQ_STR(auth_bearer_token("BEARER abc.def-123"), "abc.def-123");
	CHECK_EQ_STR(auth_bearer_token("Bearer    spaced"), "spaced");
	CHECK(auth_bearer_token("Basic x") == NULL);
	CHECK(auth_bearer_token("Basic YWxpY2U6c2VjcmV0") == NULL);
	CHECK(auth_bearer_token("Bearer") == NULL);
	CHECK(auth_bearer_token("Bearerx") == NULL);
	CHECK(auth_bearer_token("") == NULL);
	CHECK(auth_bearer_token(NULL) == NULL);
}

static void test_valid_ids(void)
{
	CHECK(auth_is_valid_id("alice", WSG_USER_MAX));
	CHECK(auth_is_valid_id("a", WSG_USER_MAX));
	CHECK(auth_is_valid_id("Alice.B_c:d@e-f0123456789", WSG_USER_MAX));
	CHECK(auth_is_valid_id("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:", 70));
	CHECK(auth_is_valid_id("abc", 3));
}

static void test_invalid_ids(void)
{
	CHECK(!auth_is_valid_id("a b", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("a/b", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("a?b", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("a=b", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("a%20b", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("tab\t", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("caf\xc3\xa9", WSG_USER_MAX));
	CHECK(!auth_is_valid_id("abcd", 3));
}

static void test_id_length_limit(void)
{
	char id[WSG_DEVICE_MAX + 2];

	memset(id, 'x', sizeof(id) - 1);
	id[WSG_DEVICE_MAX + 1] = '\0';
	CHECK(!auth_is_valid_id(id, WSG_DEVICE_MAX)); /* 65 */
	id[WSG_DEVICE_MAX] = '\0';
	CHECK(auth_is_valid_id(id, WSG_DEVICE_MAX)); /* 64 */
}

static void test_empty_id_is_invalid(void)
{
	/* auth.h: "1..max characters" */
	CHECK(!auth_is_valid_id("", WSG_USER_MAX));
}

static void test_offered_subprotocols(void)
{
	CHECK(auth_offers_protocol("wsgate", "wsgate"));
	CHECK(auth_offers_protocol("chat, wsgate", "wsgate"));
	CHECK(auth_offers_protocol("chat,wsgate,x", "wsgate"));
	CHECK(!auth_offers_protocol("wsgate2, chat", "wsgate"));
	CHECK(!auth_offers_protocol("wsg", "wsgate"));
	CHECK(!auth_offers_protocol("", "wsgate"));
}

/* A token past its expires time is refused (4003 "token expired", 403); before it, admitted. */
static void test_expired_token_is_refused(void)
{
	struct wsg_config c = make_config(false);
	struct auth_request req = { .token = "bob-secret", .device = "d1", .now_ms = 1800000000000ULL };
	struct auth_verdict v;

	tokens[1].expires_ms = 1800000000000ULL;
	auth_decide(&c, &req, &v);
	check_refused(v, 4003, 403, "token expired");
	CHECK_EQ_INT(v.outcome, HANDSHAKE_TOKEN_EXPIRED);
	req.now_ms = 1799999999999ULL;
	auth_decide(&c, &req, &v);
	check_admitted(v, &tokens[1]);
	req.now_ms = 0; /* not checked */
	auth_decide(&c, &req, &v);
	check_admitted(v, &tokens[1]);
	/* a wrong token is "invalid token" whatever the time */
	req.token = "bob-secret-x";
	req.now_ms = 1900000000000ULL;
	auth_decide(&c, &req, &v);
	check_refused(v, 4003, 403, "invalid token");
	tokens[1].expires_ms = 0;
}

int main(void)
{
	RUN(test_expired_token_is_refused);
	RUN(test_offered_subprotocols);
	RUN(test_digest_is_sha256);
	RUN(test_admitted_with_the_right_token);
	RUN(test_admitted_with_empty_device);
	RUN(test_refused_without_token);
	RUN(test_refused_with_invalid_token);
	RUN(test_origin_on_the_allow_list_is_admitted);
	RUN(test_origin_off_the_allow_list_is_refused);
	RUN(test_origin_is_checked_before_the_token);
	RUN(test_no_origin_header_is_admitted_with_an_allow_list);
	RUN(test_any_origin_without_an_allow_list);
	RUN(test_invalid_device_is_a_bad_request);
	RUN(test_token_is_checked_before_the_device);
	RUN(test_refuse_takes_the_table_reason_by_default);
	RUN(test_bearer_token_parsing);
	RUN(test_valid_ids);
	RUN(test_invalid_ids);
	RUN(test_id_length_limit);
	RUN(test_empty_id_is_invalid);
	return check_summary();
}
