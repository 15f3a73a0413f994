/*
 * config: defaults, every validation error with its exact FILE:LINE and key,
 * and that no token is kept in clear text. Each case writes a temporary file
 * in $TMPDIR (mkstemp) and removes it.
 */
#define _GNU_SOURCE /* memmem */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"

#define ONE_TOKEN "tokens = ( { token = \"s3cret\"; user = \"alice\"; } );\n"

/* A temporary file holding text; path receives its name. */
static bool write_config(const char *text, char *path, size_t pathlen)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, pathlen, "%s/wsgate-test-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return ok;
}

/* Loads text as a config file; err receives the message, path the file's name. */
static int load_text(const char *text, struct wsg_config **out, char *err, size_t errlen, char *path, size_t pathlen)
{
	err[0] = '\0';
	*out = NULL;
	if (!write_config(text, path, pathlen)) {
		snprintf(err, errlen, "cannot write a temporary config file");
		return -2;
	}
	int rc = config_load(path, out, err, errlen);
	unlink(path);
	return rc;
}

/* Checks that text is refused with exactly "PATH:line: message". */
static void expect_error(const char *text, int line, const char *message)
{
	struct wsg_config *config = (struct wsg_config *)1;
	char err[1024], path[512], expected[2048];

	CHECK_EQ_INT(load_text(text, &config, err, sizeof(err), path, sizeof(path)), -1);
	CHECK(config == NULL);
	snprintf(expected, sizeof(expected), "%s:%d: %s", path, line, message);
	CHECK_EQ_STR(err, expected);
	if (config && config != (struct wsg_config *)1)
		config_free(config);
}

/* Loads text that must be valid; NULL (with a failed check) when it is not. */
static struct wsg_config *load_ok(const char *text)
{
	struct wsg_config *config = NULL;
	char err[1024], path[512];

	if (!CHECK_EQ_INT(load_text(text, &config, err, sizeof(err), path, sizeof(path)), 0)) {
		fprintf(stderr, "    error: %s\n", err);
		return NULL;
	}
	CHECK(config != NULL);
	return config;
}

static void check_defaults(const struct wsg_config *c)
{
	CHECK_EQ_STR(c->listen_address, "127.0.0.1");
	CHECK_EQ_INT(c->listen_port, 8080);
	CHECK_EQ_STR(c->ws_path, "/ws");
	CHECK_EQ_INT(c->max_message_bytes, 65536);
	CHECK_EQ_INT(c->reject, WSG_REJECT_HTTP);
	CHECK(c->origins == NULL);
	CHECK_EQ_INT(c->origin_count, 0);
	CHECK_EQ_INT(c->on_repeat, WSG_REPEAT_REJECT_NEW);
	CHECK_EQ_INT(c->max_sessions, 10000);
	CHECK_EQ_INT(c->heartbeat_interval_ms, 25000);
	CHECK_EQ_INT(c->heartbeat_timeout_ms, 10000);
	CHECK_EQ_INT(c->shutdown_grace_ms, 5000);
}

static void test_defaults_when_only_tokens_given(void)
{
	struct wsg_config *c = load_ok(ONE_TOKEN);
	unsigned char digest[WSG_TOKEN_DIGEST_LEN];

	if (!c)
		return;
	check_defaults(c);
	CHECK(!c->has_tls);
	CHECK_EQ_STR(c->tls_address, "127.0.0.1");
	CHECK_EQ_INT(c->tls_port, 8443);
	CHECK(c->tls_cert == NULL && c->tls_key == NULL);
	CHECK(c->trusted_proxies == NULL);
	CHECK_EQ_INT(c->trusted_proxy_count, 0);
	CHECK(c->http_root == NULL);
	CHECK(c->file != NULL && strstr(c->file, "wsgate-test-") != NULL);
	CHECK_EQ_INT(c->token_count, 1);
	CHECK_EQ_STR(c->tokens[0].user, "alice");
	auth_token_digest("s3cret", 6, digest);
	CHECK(memcmp(c->tokens[0].digest, digest, sizeof(digest)) == 0);
	config_free(c);
}

/* Reads the whole file into a malloc'd string, NULL when it cannot. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (text = malloc((size_t)len + 1)) != NULL) {
		if (fread(text, 1, (size_t)len, f) != (size_t)len) {
			free(text);
			text = NULL;
		} else {
			text[len] = '\0';
		}
	}
	fclose(f);
	return text;
}

/* ctest runs this from test/unit */
#define SHIPPED_CONFIG "../../conf/wsgate.conf"
#define DEV_CERT       "../../certs/server.crt"
#define DEV_KEY	       "../../certs/server.key"

/* Cuts the group "\nNAME = { ... \n};\n" out of text; false when it is not there. */
static bool cut_group(char *text, const char *name)
{
	char head[64];

	snprintf(head, sizeof(head), "\n%s = {", name);
	char *begin = strstr(text, head);
	char *end = begin ? strstr(begin, "\n};\n") : NULL;
	if (!begin || !end)
		return false;
	memmove(begin + 1, end + 4, strlen(end + 4) + 1);
	return true;
}

static void check_shipped_values(const struct wsg_config *c)
{
	check_defaults(c);
	if (CHECK_EQ_INT(c->token_count, 2)) {
		CHECK_EQ_STR(c->tokens[0].user, "alice");
		CHECK_EQ_STR(c->tokens[1].user, "bob");
	}
	CHECK_EQ_INT(c->trusted_proxy_count, 1);
}

static void test_shipped_config_without_tls_loads_with_the_defaults_it_documents(void)
{
	char *text = slurp(SHIPPED_CONFIG);

	if (!CHECK(text != NULL))
		return;
	/*
	 * cut the listen_tls group, whose certificate files scripts/gen-certs.sh
	 * makes, and the http group, whose root is relative to conf/ (this copy is
	 * loaded from $TMPDIR)
	 */
	if (CHECK(cut_group(text, "listen_tls")) && CHECK(cut_group(text, "http"))) {
		struct wsg_config *c = load_ok(text);
		if (c) {
			check_shipped_values(c);
			CHECK(!c->has_tls);
		}
		config_free(c);
	}
	free(text);
}

static void test_shipped_config_with_dev_certs(void)
{
	struct wsg_config *c = NULL;
	char err[1024] = "";

	if (access(DEV_CERT, R_OK) || access(DEV_KEY, R_OK)) {
		printf("SKIP test_shipped_config_with_dev_certs: no %s (run scripts/gen-certs.sh)\n", DEV_CERT);
		return;
	}
	/* it holds tokens and git checks it out 644: o-rwx it first, as scripts/run.sh does */
	struct stat st;
	if (!CHECK_EQ_INT(stat(SHIPPED_CONFIG, &st), 0) ||
	    !CHECK_EQ_INT(chmod(SHIPPED_CONFIG, st.st_mode & 07777 & ~(mode_t)S_IRWXO), 0))
		return;
	if (!CHECK_EQ_INT(config_load(SHIPPED_CONFIG, &c, err, sizeof(err)), 0)) {
		fprintf(stderr, "    error: %s\n", err);
		return;
	}
	check_shipped_values(c);
	CHECK(c->has_tls);
	CHECK_EQ_STR(c->tls_address, "127.0.0.1");
	CHECK_EQ_INT(c->tls_port, 8443);
	/* relative to the config file's directory, not the cwd */
	CHECK_EQ_STR(c->tls_cert, "../../conf/../certs/server.crt");
	CHECK_EQ_STR(c->tls_key, "../../conf/../certs/server.key");
	CHECK_EQ_STR(c->http_root, "../../conf/../www");
	config_free(c);
}

static void test_every_key_set(void)
{
	struct wsg_config *c = load_ok(
		"listen = { address = \"0.0.0.0\"; port = 9001; };\n"
		"websocket = { path = \"/live/ws\"; max_message_bytes = 16; };\n"
		"auth = { reject = \"close\"; origins = [ \"https://a.example\", \"http://b.example:8080\" ]; };\n"
		"sessions = { on_repeat = \"replace-old\"; max = 1; };\n"
		"heartbeat = { interval_ms = 100; timeout_ms = 600000; };\n"
		"shutdown = { grace_ms = 0; };\n"
		"tokens = ( { token = \"t1\"; user = \"a.b_c:d@e-f\"; },\n"
		"           { token = \"t2\"; user = \"B0b\"; } );\n");

	if (!c)
		return;
	CHECK_EQ_STR(c->listen_address, "0.0.0.0");
	CHECK_EQ_INT(c->listen_port, 9001);
	CHECK_EQ_STR(c->ws_path, "/live/ws");
	CHECK_EQ_INT(c->max_message_bytes, 16);
	CHECK_EQ_INT(c->reject, WSG_REJECT_CLOSE);
	if (CHECK_EQ_INT(c->origin_count, 2)) {
		CHECK_EQ_STR(c->origins[0], "https://a.example");
		CHECK_EQ_STR(c->origins[1], "http://b.example:8080");
	}
	CHECK_EQ_INT(c->on_repeat, WSG_REPEAT_REPLACE_OLD);
	CHECK_EQ_INT(c->max_sessions, 1);
	CHECK_EQ_INT(c->heartbeat_interval_ms, 100);
	CHECK_EQ_INT(c->heartbeat_timeout_ms, 600000);
	CHECK_EQ_INT(c->shutdown_grace_ms, 0);
	if (CHECK_EQ_INT(c->token_count, 2)) {
		CHECK_EQ_STR(c->tokens[0].user, "a.b_c:d@e-f");
		CHECK_EQ_STR(c->tokens[1].user, "B0b");
	}
	config_free(c);
}

static void test_missing_file(void)
{
	struct wsg_config *c = (struct wsg_config *)1;
	char err[512];

	CHECK_EQ_INT(config_load("/nonexistent/wsgate.conf", &c, err, sizeof(err)), -1);
	CHECK(c == NULL);
	CHECK_EQ_STR(err, "/nonexistent/wsgate.conf: cannot read the file");
}

static void test_syntax_error(void)
{
	expect_error("listen = {\n"
		     "  port = 8080;\n"
		     "  address = ;\n"
		     "};\n" ONE_TOKEN,
		     3, "syntax error");
}

static void test_unknown_top_level_key(void)
{
	expect_error(ONE_TOKEN "\n"
			       "listne = { port = 80; };\n",
		     3, "unknown key 'listne'");
}

static void test_unknown_nested_key(void)
{
	expect_error(ONE_TOKEN "heartbeat = {\n"
			       "  interval_ms = 1000;\n"
			       "  intervl_ms = 1000;\n"
			       "};\n",
		     4, "unknown key 'heartbeat.intervl_ms'");
}

static void test_unknown_key_in_token_entry(void)
{
	expect_error("tokens = (\n"
		     "  { token = \"a\";\n"
		     "    name = \"alice\"; }\n"
		     ");\n",
		     3, "unknown key 'tokens.[0].name'");
}

static void test_integer_of_wrong_type(void)
{
	expect_error(ONE_TOKEN "listen = {\n"
			       "  port = \"8080\";\n"
			       "};\n",
		     3, "key 'listen.port' must be an integer between 1 and 65535");
	expect_error(ONE_TOKEN "websocket = { max_message_bytes = 1.5; };\n", 2,
		     "key 'websocket.max_message_bytes' must be an integer between 16 and 16777216");
}

static void test_string_of_wrong_type(void)
{
	expect_error(ONE_TOKEN "\n"
			       "listen = { address = 127; };\n",
		     3, "key 'listen.address' must be a string");
}

static void test_integer_out_of_range(void)
{
	expect_error(ONE_TOKEN "heartbeat = {\n"
			       "  interval_ms = 50;\n"
			       "};\n",
		     3, "key 'heartbeat.interval_ms' must be an integer between 100 and 3600000, not 50");
	expect_error(ONE_TOKEN "listen = { port = 65536; };\n", 2,
		     "key 'listen.port' must be an integer between 1 and 65535, not 65536");
	expect_error(ONE_TOKEN "listen = { port = 0; };\n", 2,
		     "key 'listen.port' must be an integer between 1 and 65535, not 0");
	expect_error(ONE_TOKEN "sessions = { max = 5000000000L; };\n", 2,
		     "key 'sessions.max' must be an integer between 1 and 10000000, not 5000000000");
	expect_error(ONE_TOKEN "shutdown = { grace_ms = -1; };\n", 2,
		     "key 'shutdown.grace_ms' must be an integer between 0 and 600000, not -1");
}

static void test_bad_enum(void)
{
	expect_error(ONE_TOKEN "auth = {\n"
			       "  reject = \"maybe\";\n"
			       "};\n",
		     3, "key 'auth.reject' must be \"http\" or \"close\"");
	expect_error(ONE_TOKEN "sessions = { on_repeat = 1; };\n", 2,
		     "key 'sessions.on_repeat' must be \"reject-new\" or \"replace-old\"");
}

static void test_bad_path(void)
{
	expect_error(ONE_TOKEN "websocket = {\n"
			       "  path = \"ws\";\n"
			       "};\n",
		     3, "key 'websocket.path' must start with '/' and hold no '?', '#' or spaces");
	expect_error(ONE_TOKEN "websocket = { path = \"/ws?x=1\"; };\n", 2,
		     "key 'websocket.path' must start with '/' and hold no '?', '#' or spaces");
	expect_error(ONE_TOKEN "websocket = { path = \"/ws#top\"; };\n", 2,
		     "key 'websocket.path' must start with '/' and hold no '?', '#' or spaces");
	expect_error(ONE_TOKEN "websocket = { path = \"/w s\"; };\n", 2,
		     "key 'websocket.path' must start with '/' and hold no '?', '#' or spaces");
}

static void test_missing_tokens(void)
{
	expect_error("listen = { port = 8080; };\n", 1,
		     "missing required key 'tokens' (a list of { token = \"...\"; user = \"...\"; })");
}

static void test_empty_tokens_list(void)
{
	expect_error("\n"
		     "tokens = ( );\n",
		     2, "key 'tokens' must be a non-empty list ( { token = \"...\"; user = \"...\"; }, ... )");
}

static void test_tokens_not_a_list(void)
{
	expect_error("tokens = { token = \"a\"; user = \"u\"; };\n", 1,
		     "key 'tokens' must be a non-empty list ( { token = \"...\"; user = \"...\"; }, ... )");
}

static void test_token_entry_not_a_group(void)
{
	expect_error("tokens = (\n"
		     "  \"s3cret\",\n"
		     "  \"other\"\n"
		     ");\n",
		     2, "key 'tokens.[0]' must be a group { token = \"...\"; user = \"...\"; }");
}

static void test_token_entry_missing_user(void)
{
	expect_error("tokens = (\n"
		     "  { token = \"a\"; user = \"alice\"; },\n"
		     "  { token = \"b\"; }\n"
		     ");\n",
		     3, "key 'tokens.[1].user' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
}

static void test_token_entry_bad_user(void)
{
	const char *message = "key 'tokens.[0].user' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -";

	expect_error("tokens = (\n"
		     "  { token = \"a\";\n"
		     "    user = \"al ice\"; }\n"
		     ");\n",
		     3, message);
	expect_error("tokens = ( { token = \"a\"; user = \"al/ice\"; } );\n", 1, message);
	expect_error("tokens = ( { token = \"a\"; user = \"\"; } );\n", 1, message);
	expect_error("tokens = ( { token = \"a\"; user = 5; } );\n", 1, message);
	expect_error("tokens = ( { token = \"a\"; user = "
		     "\"u1234567890123456789012345678901234567890123456789012345678901234\"; } );\n",
		     1, message); /* 65 characters */
}

static void test_token_entry_longest_user_accepted(void)
{
	struct wsg_config *c = load_ok("tokens = ( { token = \"a\"; user = "
				       "\"u123456789012345678901234567890123456789012345678901234567890123\"; } );\n");

	if (c && CHECK_EQ_INT(c->token_count, 1))
		CHECK_EQ_INT(strlen(c->tokens[0].user), 64);
	config_free(c);
}

static void test_token_entry_missing_or_empty_token(void)
{
	expect_error("tokens = (\n"
		     "  { user = \"alice\"; }\n"
		     ");\n",
		     2, "key 'tokens.[0].token' must be a non-empty string");
	expect_error("tokens = (\n"
		     "  { user = \"alice\";\n"
		     "    token = \"\"; }\n"
		     ");\n",
		     3, "key 'tokens.[0].token' must be a non-empty string");
}

static void test_token_longer_than_4096_bytes(void)
{
	static char text[5000];
	char token[4098];

	memset(token, 't', 4097);
	token[4097] = '\0';
	snprintf(text, sizeof(text), "tokens = (\n  { user = \"alice\";\n    token = \"%s\"; }\n);\n", token);
	expect_error(text, 3, "key 'tokens.[0].token' must be at most 4096 bytes");

	token[4096] = '\0'; /* 4096: the longest accepted */
	snprintf(text, sizeof(text), "tokens = ( { user = \"alice\"; token = \"%s\"; } );\n", token);
	config_free(load_ok(text));
}

static void test_duplicate_token(void)
{
	/* the error names tokens.[1].token, so it points at that key's line */
	expect_error("tokens = (\n"
		     "  { token = \"same\"; user = \"alice\"; },\n"
		     "  {\n"
		     "    token = \"same\";\n"
		     "    user = \"bob\";\n"
		     "  }\n"
		     ");\n",
		     4, "key 'tokens.[1].token' repeats the token of entry 0");
	expect_error("tokens = (\n"
		     "  { token = \"one\"; user = \"alice\"; },\n"
		     "  { token = \"two\"; user = \"bob\"; },\n"
		     "  { token = \"one\"; user = \"carol\"; }\n"
		     ");\n",
		     4, "key 'tokens.[2].token' repeats the token of entry 0");
}

static void test_origins_not_an_array(void)
{
	expect_error(ONE_TOKEN "auth = {\n"
			       "  origins = \"https://a.example\";\n"
			       "};\n",
		     3, "key 'auth.origins' must be an array of strings");
}

static void test_origins_with_an_empty_string(void)
{
	expect_error(ONE_TOKEN "auth = {\n"
			       "  origins = [ \"https://a.example\", \"\" ];\n"
			       "};\n",
		     3, "key 'auth.origins' must hold non-empty strings (entry 2)");
}

static void test_section_not_a_group(void)
{
	expect_error(ONE_TOKEN "\n"
			       "heartbeat = 5;\n",
		     3, "key 'heartbeat' must be a group { ... }");
	expect_error(ONE_TOKEN "listen = ( 1 );\n", 2, "key 'listen' must be a group { ... }");
}

static void test_listen_address_must_be_an_ip_address(void)
{
	expect_error(ONE_TOKEN "listen = {\n"
			       "  address = \"localhost\";\n"
			       "};\n",
		     3, "key 'listen.address' must be an IPv4 or IPv6 address, not \"localhost\"");
	/* found by test/fuzz/fuzz_config: a newline inside the quoted value split the message in two */
	expect_error(ONE_TOKEN "listen = {\n"
			       "  address = \"127.0.0.1\n\t;\";\n"
			       "};\n",
		     3, "key 'listen.address' must be an IPv4 or IPv6 address, not \"127.0.0.1??;\"");
	struct wsg_config *c = load_ok(ONE_TOKEN "listen = { address = \"::1\"; };\n");
	if (c)
		CHECK_EQ_STR(c->listen_address, "::1");
	config_free(c);
}

static void test_listen_tls_requires_cert_and_key(void)
{
	expect_error(ONE_TOKEN "listen_tls = {\n"
			       "  port = 8443;\n"
			       "};\n",
		     2, "key 'listen_tls.cert' is required");
	expect_error(ONE_TOKEN "listen_tls = {\n"
			       "  cert = \"/x.crt\";\n"
			       "};\n",
		     2, "key 'listen_tls.key' is required");
	expect_error(ONE_TOKEN "\n"
			       "listen_tls = { cert = \"/x.crt\"; key = \"/x.key\"; certs = 1; };\n",
		     3, "unknown key 'listen_tls.certs'");
	expect_error(ONE_TOKEN "listen_tls = { cert = \"/x.crt\"; key = \"/x.key\"; address = \"*\"; };\n", 2,
		     "key 'listen_tls.address' must be an IPv4 or IPv6 address, not \"*\"");
}

static void test_listen_tls_port_must_differ_from_listen_port(void)
{
	expect_error(ONE_TOKEN "listen_tls = {\n"
			       "  cert = \"/x.crt\";\n"
			       "  key = \"/x.key\";\n"
			       "  port = 8080;\n"
			       "};\n",
		     5, "key 'listen_tls.port' must differ from 'listen.port' on the same address");
}

static void test_listen_tls_relative_cert_is_relative_to_the_config_file(void)
{
	struct wsg_config *c = NULL;
	char err[1024], path[512], expected[2048];
	const char *text = ONE_TOKEN "listen_tls = {\n"
				     "  cert = \"no-such.crt\";\n"
				     "  key = \"no-such.key\";\n"
				     "};\n";

	CHECK_EQ_INT(load_text(text, &c, err, sizeof(err), path, sizeof(path)), -1);
	CHECK(c == NULL);
	*strrchr(path, '/') = '\0'; /* the temporary file's directory */
	snprintf(expected, sizeof(expected), "%s/wsgate-test-", path);
	CHECK(strncmp(err, expected, strlen(expected)) == 0);
	snprintf(expected, sizeof(expected),
		 ":3: key 'listen_tls.cert': cannot read '%s/no-such.crt': No such file or directory", path);
	if (!CHECK(strstr(err, expected) != NULL))
		fprintf(stderr, "    got %s\n    expected ...%s\n", err, expected);
}

static void test_proxy_trusted_addresses_and_networks(void)
{
	struct wsg_config *c =
		load_ok(ONE_TOKEN "proxy = { trusted = [ \"127.0.0.1\", \"10.0.0.0/8\", \"::1\" ]; };\n");

	if (c)
		CHECK_EQ_INT(c->trusted_proxy_count, 3);
	config_free(c);
	c = load_ok(ONE_TOKEN "proxy = { trusted = [ ]; };\n");
	if (c)
		CHECK_EQ_INT(c->trusted_proxy_count, 0);
	config_free(c);
}

static void test_proxy_trusted_errors(void)
{
	expect_error(ONE_TOKEN "proxy = {\n"
			       "  trusted = \"127.0.0.1\";\n"
			       "};\n",
		     3, "key 'proxy.trusted' must be an array of addresses or networks");
	expect_error(ONE_TOKEN "proxy = {\n"
			       "  trusted = [ \"127.0.0.1\", \"nginx\" ];\n"
			       "};\n",
		     3,
		     "key 'proxy.trusted' entry 2 must be an address or network like \"127.0.0.1\" or \"10.0.0.0/8\"");
	expect_error(ONE_TOKEN "proxy = { trusted = [ \"10.0.0.0/33\" ]; };\n", 2,
		     "key 'proxy.trusted' entry 1 must be an address or network like \"127.0.0.1\" or \"10.0.0.0/8\"");
	expect_error(ONE_TOKEN "proxy = { trust = [ ]; };\n", 2, "unknown key 'proxy.trust'");
}

static bool contains(const void *haystack, size_t len, const char *needle)
{
	return haystack && memmem(haystack, len, needle, strlen(needle)) != NULL;
}

static bool string_contains(const char *s, const char *needle)
{
	return s && strstr(s, needle) != NULL;
}

static void test_tokens_kept_only_as_digests(void)
{
	static const char *const secrets[] = { "Zq9-first-SECRET-token", "Zq9-second-SECRET-token" };
	struct wsg_config *c = load_ok("auth = { origins = [ \"https://a.example\" ]; };\n"
				       "tokens = ( { token = \"Zq9-first-SECRET-token\"; user = \"alice\"; },\n"
				       "           { token = \"Zq9-second-SECRET-token\"; user = \"bob\"; } );\n");

	if (!c)
		return;
	for (size_t s = 0; s < 2; s++) {
		const char *secret = secrets[s];
		/* the "Zq9" prefix would do to find a leak; look for the whole token and its start */
		const char *needles[] = { secret, "Zq9" };
		for (size_t n = 0; n < 2; n++) {
			const char *needle = needles[n];
			CHECK(!contains(c, sizeof(*c), needle));
			CHECK(!string_contains(c->file, needle));
			CHECK(!string_contains(c->listen_address, needle));
			CHECK(!string_contains(c->tls_address, needle));
			CHECK(!string_contains(c->tls_cert, needle));
			CHECK(!string_contains(c->tls_key, needle));
			CHECK(!string_contains(c->ws_path, needle));
			for (size_t i = 0; i < c->origin_count; i++)
				CHECK(!string_contains(c->origins[i], needle));
			CHECK(!contains(c->tokens, c->token_count * sizeof(*c->tokens), needle));
			for (size_t i = 0; i < c->token_count; i++)
				CHECK(!string_contains(c->tokens[i].user, needle));
		}
		unsigned char digest[WSG_TOKEN_DIGEST_LEN];
		auth_token_digest(secret, strlen(secret), digest);
		if (CHECK_EQ_INT(c->token_count, 2))
			CHECK(memcmp(c->tokens[s].digest, digest, sizeof(digest)) == 0);
	}
	config_free(c);
}

static void test_token_errors_never_quote_the_token(void)
{
	struct wsg_config *c = NULL;
	char err[1024], path[512];

	load_text("tokens = ( { token = \"Zq9-leak\"; user = \"x\"; }, { token = \"Zq9-leak\"; user = \"y\"; } );\n",
		  &c, err, sizeof(err), path, sizeof(path));
	CHECK(strstr(err, "repeats the token") != NULL);
	CHECK(strstr(err, "Zq9") == NULL);
	load_text("tokens = ( { token = \"Zq9-leak\"; user = \"bad user\"; } );\n", &c, err, sizeof(err), path,
		  sizeof(path));
	CHECK(strstr(err, "tokens.[0].user") != NULL);
	CHECK(strstr(err, "Zq9") == NULL);
	load_text("tokens = ( { token = \"Zq9-leak\"; user = \"u\"; extra = 1; } );\n", &c, err, sizeof(err), path,
		  sizeof(path));
	CHECK(strstr(err, "unknown key 'tokens.[0].extra'") != NULL);
	CHECK(strstr(err, "Zq9") == NULL);
}

static void test_error_message_is_cut_to_the_buffer(void)
{
	struct wsg_config *c = NULL;
	char err[16], path[512];

	memset(err, 'X', sizeof(err));
	CHECK_EQ_INT(load_text("listne = 1;\n", &c, err, sizeof(err), path, sizeof(path)), -1);
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	CHECK(c == NULL);
}

static void test_queue_must_hold_one_message(void)
{
	const char *text = "websocket = { max_message_bytes = 65536; };\n"
			   "limits = {\n"
			   "  max_queued_bytes = 8192;\n"
			   "};\n" ONE_TOKEN;
	expect_error(text, 3,
		     "key 'limits.max_queued_bytes' (8192) must be at least websocket.max_message_bytes (65536) "
		     "and api.max_body_bytes (65536): one message must fit in a session's queue");
}

static void test_api_keys_must_be_an_array(void)
{
	expect_error("api = {\n  keys = \"backend-key-0123456789\";\n};\n" ONE_TOKEN, 2,
		     "key 'api.keys' must be an array of strings");
	expect_error("api = { keys = [ \"short\" ]; };\n" ONE_TOKEN, 1,
		     "key 'api.keys' entry 1 must be a string of at least 16 characters");
}

/* http.root names a directory relative to the config file's directory; "" is off. */
static void test_http_root(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512], text[2048], expected[512];
	struct wsg_config *c;

	snprintf(dir, sizeof(dir), "%s/wsgate-www-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	snprintf(text, sizeof(text), ONE_TOKEN "http = {\n  root = \"%s\";\n};\n", strrchr(dir, '/') + 1);
	c = load_ok(text);
	if (c)
		CHECK_EQ_STR(c->http_root, dir);
	config_free(c);

	snprintf(text, sizeof(text), ONE_TOKEN "http = { root = \"%s\"; };\n", dir); /* absolute */
	c = load_ok(text);
	if (c)
		CHECK_EQ_STR(c->http_root, dir);
	config_free(c);
	rmdir(dir);

	c = load_ok(ONE_TOKEN "http = { root = \"\"; };\n");
	if (c)
		CHECK(c->http_root == NULL);
	config_free(c);
	c = load_ok(ONE_TOKEN "http = { };\n");
	if (c)
		CHECK(c->http_root == NULL);
	config_free(c);

	/* a missing directory: the message names the resolved path */
	struct wsg_config *bad = NULL;
	char err[1024], path[512];
	CHECK_EQ_INT(load_text(ONE_TOKEN "http = {\n  root = \"no-such-www\";\n};\n", &bad, err, sizeof(err), path,
			       sizeof(path)),
		     -1);
	snprintf(expected, sizeof(expected), "%s", path);
	*strrchr(expected, '/') = '\0';
	snprintf(text, sizeof(text), "%s:3: key 'http.root' must name a directory: %s/no-such-www is not one", path,
		 expected);
	CHECK_EQ_STR(err, text);

	/* a file is not a directory */
	CHECK_EQ_INT(load_text(ONE_TOKEN "http = {\n  root = \"/dev/null\";\n};\n", &bad, err, sizeof(err), path,
			       sizeof(path)),
		     -1);
	snprintf(text, sizeof(text), "%s:3: key 'http.root' must name a directory: /dev/null is not one", path);
	CHECK_EQ_STR(err, text);

	/* lws builds each file's path in 256 bytes */
	char longer[WSG_HTTP_ROOT_MAX + 2];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[0] = '/';
	longer[sizeof(longer) - 1] = '\0';
	snprintf(text, sizeof(text), ONE_TOKEN "http = {\n  root = \"%s\";\n};\n", longer);
	expect_error(text, 3, "key 'http.root' must be at most 192 bytes long (after resolving)");
	expect_error(ONE_TOKEN "http = {\n  root = 1;\n};\n", 3, "key 'http.root' must be a string");
	expect_error(ONE_TOKEN "http = {\n  rot = \"www\";\n};\n", 3, "unknown key 'http.rot'");
	expect_error(ONE_TOKEN "http = \"www\";\n", 2, "key 'http' must be a group { ... }");
}

int main(void)
{
	RUN(test_http_root);
	RUN(test_api_keys_must_be_an_array);
	RUN(test_queue_must_hold_one_message);
	RUN(test_defaults_when_only_tokens_given);
	RUN(test_shipped_config_without_tls_loads_with_the_defaults_it_documents);
	RUN(test_shipped_config_with_dev_certs);
	RUN(test_every_key_set);
	RUN(test_missing_file);
	RUN(test_syntax_error);
	RUN(test_unknown_top_level_key);
	RUN(test_unknown_nested_key);
	RUN(test_unknown_key_in_token_entry);
	RUN(test_integer_of_wrong_type);
	RUN(test_string_of_wrong_type);
	RUN(test_integer_out_of_range);
	RUN(test_bad_enum);
	RUN(test_bad_path);
	RUN(test_missing_tokens);
	RUN(test_empty_tokens_list);
	RUN(test_tokens_not_a_list);
	RUN(test_token_entry_not_a_group);
	RUN(test_token_entry_missing_user);
	RUN(test_token_entry_bad_user);
	RUN(test_token_entry_longest_user_accepted);
	RUN(test_token_entry_missing_or_empty_token);
	RUN(test_token_longer_than_4096_bytes);
	RUN(test_duplicate_token);
	RUN(test_origins_not_an_array);
	RUN(test_origins_with_an_empty_string);
	RUN(test_section_not_a_group);
	RUN(test_listen_address_must_be_an_ip_address);
	RUN(test_listen_tls_requires_cert_and_key);
	RUN(test_listen_tls_port_must_differ_from_listen_port);
	RUN(test_listen_tls_relative_cert_is_relative_to_the_config_file);
	RUN(test_proxy_trusted_addresses_and_networks);
	RUN(test_proxy_trusted_errors);
	RUN(test_tokens_kept_only_as_digests);
	RUN(test_token_errors_never_quote_the_token);
	RUN(test_error_message_is_cut_to_the_buffer);
	return check_summary();
}
