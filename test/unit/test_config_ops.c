/*
 * config, the keys operations need: tokens_file (its own file, its own
 * FILE:LINE errors, refused when others may read it), per-token expiry,
 * shutdown.drain_ms, listen.reuse_port, the lookup by digest a reload uses and
 * the keys a reload must leave alone. Files go to a mkdtemp directory.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"
#include "config.h"

#define ONE_TOKEN "tokens = ( { token = \"s3cret\"; user = \"alice\"; } );\n"

static char dir[512];

static bool make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/wsgate-ops-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) != NULL;
}

/* Writes dir/name with mode; path receives the full name. */
static bool write_file(const char *name, const char *text, mode_t mode, char *path, size_t pathlen)
{
	snprintf(path, pathlen, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	ok &= fclose(f) == 0;
	return ok && chmod(path, mode) == 0;
}

static int load(const char *main_text, const char *tokens_text, mode_t tokens_mode, struct wsg_config **out, char *err,
		size_t errlen)
{
	char path[600], tpath[600];

	*out = NULL;
	err[0] = '\0';
	if (tokens_text && !write_file("tokens.conf", tokens_text, tokens_mode, tpath, sizeof(tpath)))
		return -2;
	if (!write_file("wsgate.conf", main_text, 0600, path, sizeof(path)))
		return -2;
	int rc = config_load(path, out, err, errlen);
	unlink(path);
	if (tokens_text)
		unlink(tpath);
	return rc;
}

static struct wsg_config *load_ok(const char *main_text, const char *tokens_text)
{
	struct wsg_config *c;
	char err[1024];

	if (!CHECK_EQ_INT(load(main_text, tokens_text, 0600, &c, err, sizeof(err)), 0)) {
		fprintf(stderr, "    error: %s\n", err);
		return NULL;
	}
	return c;
}

/* Refused with exactly "DIR/file:line: message" (file: "wsgate.conf" or "tokens.conf"). */
static void expect_error(const char *main_text, const char *tokens_text, mode_t mode, const char *file, int line,
			 const char *message)
{
	struct wsg_config *c;
	char err[1024], expected[2048];

	CHECK_EQ_INT(load(main_text, tokens_text, mode, &c, err, sizeof(err)), -1);
	CHECK(c == NULL);
	snprintf(expected, sizeof(expected), "%s/%s:%d: %s", dir, file, line, message);
	CHECK_EQ_STR(err, expected);
	config_free(c);
}

static void test_operation_defaults(void)
{
	struct wsg_config *c = load_ok(ONE_TOKEN, NULL);

	if (!c)
		return;
	CHECK(!c->listen_reuse_port);
	CHECK_EQ_INT(c->shutdown_drain_ms, 10000);
	CHECK(c->tokens_file == NULL);
	CHECK_EQ_INT(c->tokens[0].expires_ms, 0);
	config_free(c);
}

static void test_reuse_port_and_drain_ms(void)
{
	struct wsg_config *c = load_ok("listen = { port = 9000; reuse_port = true; };\n"
				       "shutdown = { grace_ms = 100; drain_ms = 0; };\n" ONE_TOKEN,
				       NULL);

	if (c) {
		CHECK(c->listen_reuse_port);
		CHECK_EQ_INT(c->shutdown_drain_ms, 0);
		CHECK_EQ_INT(c->shutdown_grace_ms, 100);
	}
	config_free(c);
	expect_error("listen = {\n  reuse_port = 1;\n};\n" ONE_TOKEN, NULL, 0, "wsgate.conf", 2,
		     "key 'listen.reuse_port' must be true or false");
	expect_error(ONE_TOKEN "shutdown = { drain_ms = 3600001; };\n", NULL, 0, "wsgate.conf", 2,
		     "key 'shutdown.drain_ms' must be an integer between 0 and 3600000, not 3600001");
	expect_error(ONE_TOKEN "shutdown = { drain_ms = \"5s\"; };\n", NULL, 0, "wsgate.conf", 2,
		     "key 'shutdown.drain_ms' must be an integer between 0 and 3600000");
}

static void test_tokens_file_relative_to_the_config(void)
{
	struct wsg_config *c =
		load_ok("listen = { port = 9000; };\ntokens_file = \"tokens.conf\";\n",
			"# tokens\ntokens = (\n  { token = \"t1\"; user = \"alice\"; subscribe = [ \"news\" ]; },\n"
			"  { token = \"t2\"; user = \"bob\"; expires = \"2027-01-31T00:00:00Z\"; }\n);\n");
	char expected[600];

	if (!c)
		return;
	snprintf(expected, sizeof(expected), "%s/tokens.conf", dir);
	CHECK_EQ_STR(c->tokens_file, expected);
	if (CHECK_EQ_INT(c->token_count, 2)) {
		CHECK_EQ_STR(c->tokens[0].user, "alice");
		CHECK_EQ_INT(c->tokens[0].subscribe.count, 1);
		CHECK_EQ_STR(c->tokens[1].user, "bob");
		CHECK_EQ_INT(c->tokens[1].expires_ms, 1801353600000LL);
	}
	config_free(c);
}

static void test_tokens_file_readable_by_others_is_refused(void)
{
	char message[1024];

	snprintf(message, sizeof(message),
		 "key 'tokens_file': '%s/tokens.conf' is readable by others than its owner (mode 0640); chmod 600 it",
		 dir);
	expect_error("\ntokens_file = \"tokens.conf\";\n", ONE_TOKEN, 0640, "wsgate.conf", 2, message);
	snprintf(message, sizeof(message),
		 "key 'tokens_file': '%s/tokens.conf' is readable by others than its owner (mode 0604); chmod 600 it",
		 dir);
	expect_error("tokens_file = \"tokens.conf\";\n", ONE_TOKEN, 0604, "wsgate.conf", 1, message);
}

/* The config itself, written with mode; 0 when it loads, the message in err when not. */
static int load_main_with_mode(const char *main_text, const char *tokens_text, mode_t mode, char *err, size_t errlen)
{
	char path[600], tpath[600];
	struct wsg_config *c = NULL;

	err[0] = '\0';
	if (tokens_text && !write_file("tokens.conf", tokens_text, 0600, tpath, sizeof(tpath)))
		return -2;
	if (!write_file("wsgate.conf", main_text, mode, path, sizeof(path)))
		return -2;
	int rc = config_load(path, &c, err, errlen);
	CHECK(rc == 0 ? c != NULL : c == NULL);
	config_free(c);
	unlink(path);
	if (tokens_text)
		unlink(tpath);
	return rc;
}

static void expect_mode_refused(const char *main_text, const char *tokens_text, mode_t mode)
{
	char err[1024], expected[2048];

	CHECK_EQ_INT(load_main_with_mode(main_text, tokens_text, mode, err, sizeof(err)), -1);
	snprintf(expected, sizeof(expected),
		 "%s/wsgate.conf: holds tokens or API keys and is accessible by others (mode %04o); "
		 "chmod o-rwx it (600, or 640 with the server's group)",
		 dir, (unsigned)mode);
	CHECK_EQ_STR(err, expected);
}

static void expect_mode_accepted(const char *main_text, const char *tokens_text, mode_t mode)
{
	char err[1024];

	if (!CHECK_EQ_INT(load_main_with_mode(main_text, tokens_text, mode, err, sizeof(err)), 0))
		fprintf(stderr, "    mode %04o: %s\n", (unsigned)mode, err);
}

static void test_config_with_tokens_open_to_others_is_refused(void)
{
	expect_mode_refused(ONE_TOKEN, NULL, 0644);
	expect_mode_refused(ONE_TOKEN, NULL, 0604);
	expect_mode_refused(ONE_TOKEN, NULL, 0602);
	expect_mode_refused(ONE_TOKEN, NULL, 0601);
	expect_mode_refused(ONE_TOKEN, NULL, 0666);
	/* owner and group only: the package installs it root:wsgate 640 */
	expect_mode_accepted(ONE_TOKEN, NULL, 0600);
	expect_mode_accepted(ONE_TOKEN, NULL, 0640);
	expect_mode_accepted(ONE_TOKEN, NULL, 0660);
	expect_mode_accepted(ONE_TOKEN, NULL, 0400);
}

static void test_config_with_api_keys_open_to_others_is_refused(void)
{
	static const char main_text[] = "api = { keys = [ \"0123456789abcdef\" ]; };\ntokens_file = \"tokens.conf\";\n";

	expect_mode_refused(main_text, ONE_TOKEN, 0644);
	expect_mode_accepted(main_text, ONE_TOKEN, 0640);
}

static void test_config_without_secrets_may_be_world_readable(void)
{
	/* the tokens live in tokens_file (checked on its own, 600): the main file holds no secret */
	expect_mode_accepted("listen = { port = 9000; };\ntokens_file = \"tokens.conf\";\n", ONE_TOKEN, 0644);
	expect_mode_accepted("api = { keys = [ ]; };\ntokens_file = \"tokens.conf\";\n", ONE_TOKEN, 0644);
}

static void test_mode_is_checked_after_syntax(void)
{
	char err[1024], expected[1024];

	/* a syntax error is reported as such whatever the mode, with its line */
	CHECK_EQ_INT(load_main_with_mode("tokens = ( { token = \"s\"; user = \"a\"; } )\nlisten = ;\n", NULL, 0644, err,
					 sizeof(err)),
		     -1);
	snprintf(expected, sizeof(expected), "%s/wsgate.conf:2: syntax error", dir);
	CHECK_EQ_STR(err, expected);
}

static void test_tokens_file_missing(void)
{
	char message[1024];

	snprintf(message, sizeof(message), "key 'tokens_file': cannot read '%s/absent.conf': No such file or directory",
		 dir);
	expect_error("listen = { port = 9000; };\ntokens_file = \"absent.conf\";\n", NULL, 0, "wsgate.conf", 2,
		     message);
	expect_error("tokens_file = 7;\n", NULL, 0, "wsgate.conf", 1, "key 'tokens_file' must be a non-empty string");
}

static void test_errors_in_the_tokens_file_name_it(void)
{
	const char *main_text = "listen = { port = 9000; };\ntokens_file = \"tokens.conf\";\n";

	expect_error(main_text, "tokens = (\n  { token = \"a\"; user = \"alice\"; }\n  { token = \"b\"; }\n);\n", 0600,
		     "tokens.conf", 3, "syntax error");
	expect_error(main_text, "tokens = (\n  { token = \"a\";\n    user = 5; }\n);\n", 0600, "tokens.conf", 3,
		     "key 'tokens.[0].user' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
	expect_error(main_text, ONE_TOKEN "\nlisten = { port = 1; };\n", 0600, "tokens.conf", 3,
		     "unknown key 'listen'");
	expect_error(main_text, "# nothing\n", 0600, "tokens.conf", 1,
		     "missing required key 'tokens' (a list of { token = \"...\"; user = \"...\"; })");
	expect_error(main_text, "tokens = ( { token = \"a\"; user = \"x\"; },\n { token = \"a\"; user = \"y\"; } );\n",
		     0600, "tokens.conf", 2, "key 'tokens.[1].token' repeats the token of entry 0");
}

static void test_tokens_and_tokens_file_exclude_each_other(void)
{
	expect_error("tokens_file = \"tokens.conf\";\n" ONE_TOKEN, ONE_TOKEN, 0600, "wsgate.conf", 2,
		     "keys 'tokens' and 'tokens_file' exclude each other: keep the tokens in one place");
}

static void test_expires_must_be_utc_rfc3339(void)
{
	static const char *const bad[] = {
		"\"2027-01-31\"",	    "\"2027-01-31T00:00:00\"",	  "\"2027-01-31T00:00:00+01:00\"",
		"\"2027-01-31 00:00:00Z\"", "\"2027-13-01T00:00:00Z\"",	  "\"2027-02-29T00:00:00Z\"",
		"\"2027-01-31T24:00:00Z\"", "\"2027-01-31T00:60:00Z\"",	  "\"2027-01-31T00:00:60Z\"",
		"\"1969-12-31T23:59:59Z\"", "\"2027-01-31T00:00:00.5Z\"", "20270131",
		"\"2027-04-31T00:00:00Z\"", "\"2027-1-31T00:00:00Z\"",	  "\"\"",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "tokens = (\n { token = \"a\"; user = \"u\";\n   expires = %s; }\n);\n",
			 bad[i]);
		expect_error(text, NULL, 0, "wsgate.conf", 3,
			     "key 'tokens.[0].expires' must be a UTC time like \"2027-01-31T00:00:00Z\" (RFC 3339)");
	}
}

static void test_parse_utc(void)
{
	uint64_t ms = 0;

	CHECK_EQ_INT(config_parse_utc("1970-01-01T00:00:01Z", &ms), 0);
	CHECK_EQ_INT(ms, 1000);
	CHECK_EQ_INT(config_parse_utc("2028-02-29T12:34:56Z", &ms), 0);
	CHECK_EQ_INT(ms, 1835440496000LL);
	CHECK_EQ_INT(config_parse_utc("2000-02-29t00:00:00z", &ms), 0);
	CHECK_EQ_INT(ms, 951782400000LL);
	CHECK_EQ_INT(config_parse_utc("1900-02-29T00:00:00Z", &ms), -1);
	CHECK_EQ_INT(config_parse_utc("2027-01-31T00:00:00ZZ", &ms), -1);
}

static void test_find_token_by_digest(void)
{
	char text[4096] = "tokens = (\n";
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];

	for (int i = 0; i < 50; i++) {
		char line[96];
		snprintf(line, sizeof(line), "  { token = \"tok-%d\"; user = \"u%d\"; }%s\n", i, i, i < 49 ? "," : "");
		strcat(text, line);
	}
	strcat(text, ");\n");
	struct wsg_config *c = load_ok(text, NULL);
	if (!c)
		return;
	for (int i = 0; i < 50; i++) {
		char token[16], user[16];
		snprintf(token, sizeof(token), "tok-%d", i);
		snprintf(user, sizeof(user), "u%d", i);
		auth_token_digest(token, strlen(token), digest);
		const struct wsg_token *t = config_find_token(c, digest);
		if (CHECK(t != NULL)) {
			CHECK_EQ_STR(t->user, user);
			CHECK(t == &c->tokens[i]);
		}
	}
	auth_token_digest("tok-50", 6, digest);
	CHECK(config_find_token(c, digest) == NULL);
	config_free(c);
}

static void test_restart_keys_keep_the_running_values(void)
{
	struct wsg_config *running = load_ok("listen = { port = 9000; };\n"
					     "websocket = { path = \"/ws\"; };\n"
					     "heartbeat = { interval_ms = 1000; };\n" ONE_TOKEN,
					     NULL);
	struct wsg_config *same = load_ok("listen = { port = 9000; };\n"
					  "heartbeat = { interval_ms = 2000; };\n"
					  "tokens = ( { token = \"other\"; user = \"bob\"; } );\n",
					  NULL);
	struct wsg_config *moved = load_ok("listen = { address = \"::1\"; port = 9001; reuse_port = true; };\n"
					   "websocket = { path = \"/live\"; };\n"
					   "heartbeat = { interval_ms = 3000; };\n" ONE_TOKEN,
					   NULL);
	const char *keys[8];

	if (running && same) {
		CHECK_EQ_INT(config_keep_restart_keys(same, running, keys, 8), 0);
		CHECK_EQ_INT(same->heartbeat_interval_ms, 2000);
	}
	if (running && moved) {
		if (CHECK_EQ_INT(config_keep_restart_keys(moved, running, keys, 8), 4)) {
			CHECK_EQ_STR(keys[0], "listen.address");
			CHECK_EQ_STR(keys[1], "listen.port");
			CHECK_EQ_STR(keys[2], "listen.reuse_port");
			CHECK_EQ_STR(keys[3], "websocket.path");
		}
		CHECK_EQ_STR(moved->listen_address, "127.0.0.1");
		CHECK_EQ_INT(moved->listen_port, 9000);
		CHECK(!moved->listen_reuse_port);
		CHECK_EQ_STR(moved->ws_path, "/ws");
		CHECK_EQ_INT(moved->heartbeat_interval_ms, 3000); /* reloadable keys keep the new value */
		/* the strings moved: running now holds what moved had read, to be freed with it */
		CHECK_EQ_STR(running->listen_address, "::1");
		CHECK_EQ_STR(running->ws_path, "/live");
	}
	config_free(running);
	config_free(same);
	config_free(moved);
}

static void test_restart_keys_count_past_max(void)
{
	struct wsg_config *a = load_ok("listen = { port = 9000; };\n" ONE_TOKEN, NULL);
	struct wsg_config *b = load_ok(
		"listen = { address = \"::1\"; port = 9001; };\nwebsocket = { path = \"/x\"; };\n" ONE_TOKEN, NULL);
	const char *keys[1];

	if (a && b) {
		CHECK_EQ_INT(config_keep_restart_keys(b, a, keys, 1), 3);
		CHECK_EQ_STR(keys[0], "listen.address");
	}
	config_free(a);
	config_free(b);
}

/* The static-file mount is made with the listeners: a new http.root waits for a restart. */
static void test_http_root_needs_restart(void)
{
	char sub[600], text[1024];
	const char *keys[4];

	snprintf(sub, sizeof(sub), "%s/www", dir);
	if (!CHECK_EQ_INT(mkdir(sub, 0700), 0))
		return;
	struct wsg_config *a = load_ok(ONE_TOKEN, NULL);
	snprintf(text, sizeof(text), "http = { root = \"www\"; };\n" ONE_TOKEN);
	struct wsg_config *b = load_ok(text, NULL);
	if (a && b && CHECK_EQ_INT(config_keep_restart_keys(b, a, keys, 4), 1)) {
		CHECK_EQ_STR(keys[0], "http.root");
		CHECK(b->http_root == NULL);
	}
	config_free(a);
	config_free(b);
	rmdir(sub);
}

int main(void)
{
	RUN(test_http_root_needs_restart);
	if (!make_dir()) {
		fprintf(stderr, "cannot make a temporary directory\n");
		return 1;
	}
	RUN(test_operation_defaults);
	RUN(test_reuse_port_and_drain_ms);
	RUN(test_tokens_file_relative_to_the_config);
	RUN(test_tokens_file_readable_by_others_is_refused);
	RUN(test_tokens_file_missing);
	RUN(test_errors_in_the_tokens_file_name_it);
	RUN(test_tokens_and_tokens_file_exclude_each_other);
	RUN(test_expires_must_be_utc_rfc3339);
	RUN(test_parse_utc);
	RUN(test_find_token_by_digest);
	RUN(test_restart_keys_keep_the_running_values);
	RUN(test_restart_keys_count_past_max);
	RUN(test_config_with_tokens_open_to_others_is_refused);
	RUN(test_config_with_api_keys_open_to_others_is_refused);
	RUN(test_config_without_secrets_may_be_world_readable);
	RUN(test_mode_is_checked_after_syntax);
	rmdir(dir);
	return check_summary();
}
