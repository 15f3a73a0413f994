/*
 * cluster.redis URLs (app/redis_url.c): any input is parsed or refused, never
 * read past its end; a parsed URL has a host, a port and a db in range, and
 * the description for logs is host, port and db only (test_redis_url checks
 * that no error holds the password).
 * Input: the URL text (NUL-terminated here).
 */
#include "fuzz.h"
#include "redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct redis_url url;
	char why[300], text[600];
	char *input = malloc(size + 1);

	if (!input)
		return 0;
	memcpy(input, data, size);
	input[size] = '\0';
	if (redis_url_parse(input, &url, why, sizeof(why))) {
		FUZZ_ASSERT(why[0] != '\0');
	} else {
		FUZZ_ASSERT(url.host[0] != '\0');
		FUZZ_ASSERT(url.port >= 1 && url.port <= 65535);
		FUZZ_ASSERT(url.db >= 0 && url.db <= 15);
		FUZZ_ASSERT(url.has_password == (url.password[0] != '\0'));
		/* host, port and db, never the user or password, whatever they hold */
		char expected[600];
		snprintf(expected, sizeof(expected), strchr(url.host, ':') ? "[%s]:%d/%d%s" : "%s:%d/%d%s", url.host,
			 url.port, url.db, url.has_password ? " auth=yes" : "");
		redis_url_describe(&url, text, sizeof(text));
		FUZZ_ASSERT(!strcmp(text, expected));
	}
	free(input);
	return 0;
}
