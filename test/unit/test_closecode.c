/* closecode: the close-code table, advice, sendable codes, reason truncation, README agreement. */
#include "closecode.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "closecode_json.h"
#include "util.h"

/* ctest runs this from test/unit, so the project's README is two levels up. */
#define README_PATH "../../README.md"

static void test_table_reasons_fit_a_close_frame_and_are_utf8(void)
{
	size_t count = 0;
	const struct wsg_close_info *table = closecode_table(&count);

	CHECK(count > 0);
	for (size_t i = 0; i < count; i++) {
		const char *reason = table[i].reason;
		if (!CHECK(reason != NULL))
			continue;
		CHECK(strlen(reason) > 0);
		CHECK(strlen(reason) <= WSG_CLOSE_REASON_MAX);
		CHECK(util_is_valid_utf8((const unsigned char *)reason, strlen(reason)));
		CHECK(table[i].meaning != NULL && strlen(table[i].meaning) > 0);
	}
}

static void test_table_codes_are_unique_and_sendable(void)
{
	size_t count = 0;
	const struct wsg_close_info *table = closecode_table(&count);

	for (size_t i = 0; i < count; i++) {
		CHECK(closecode_is_sendable(table[i].code));
		for (size_t j = i + 1; j < count; j++)
			CHECK(table[i].code != table[j].code);
	}
}

static void test_find_returns_the_table_entry(void)
{
	size_t count = 0;
	const struct wsg_close_info *table = closecode_table(&count);

	for (size_t i = 0; i < count; i++)
		CHECK(closecode_find(table[i].code) == &table[i]);

	const struct wsg_close_info *info = closecode_find(WSG_CLOSE_REPEAT_CONNECT);
	if (CHECK(info != NULL)) {
		CHECK_EQ_INT(info->code, 4001);
		CHECK_EQ_STR(info->reason, "repeat connect channel");
	}
	info = closecode_find(WSG_CLOSE_HEARTBEAT_TIMEOUT);
	if (CHECK(info != NULL))
		CHECK_EQ_STR(info->reason, "heartbeat timeout");
}

static void test_find_returns_null_for_codes_never_sent(void)
{
	CHECK(closecode_find(1005) == NULL);
	CHECK(closecode_find(1006) == NULL);
	CHECK(closecode_find(1015) == NULL);
	CHECK(closecode_find(0) == NULL);
	CHECK(closecode_find(4999) == NULL);
	CHECK(closecode_find(-1) == NULL);
}

static void test_refusals_before_upgrade_have_http_statuses(void)
{
	const struct wsg_close_info *forbidden = closecode_find(WSG_CLOSE_FORBIDDEN);
	const struct wsg_close_info *bad = closecode_find(WSG_CLOSE_BAD_REQUEST);
	const struct wsg_close_info *full = closecode_find(WSG_CLOSE_AT_CAPACITY);

	if (CHECK(forbidden && bad && full)) {
		CHECK_EQ_INT(forbidden->http_status, 403);
		CHECK_EQ_INT(bad->http_status, 400);
		CHECK_EQ_INT(full->http_status, 503);
	}
}

static void test_reserved_codes_are_not_sendable(void)
{
	CHECK(!closecode_is_sendable(1004));
	CHECK(!closecode_is_sendable(1005));
	CHECK(!closecode_is_sendable(1006));
	CHECK(!closecode_is_sendable(1015));
	CHECK(!closecode_is_sendable(0));
	CHECK(!closecode_is_sendable(999));
	CHECK(!closecode_is_sendable(2999));
	CHECK(!closecode_is_sendable(5000));
	CHECK(!closecode_is_sendable(65535));
	CHECK(!closecode_is_sendable(-1000));
}

static void test_defined_and_application_codes_are_sendable(void)
{
	for (int code = 1000; code <= 1003; code++)
		CHECK(closecode_is_sendable(code));
	for (int code = 1007; code <= 1014; code++)
		CHECK(closecode_is_sendable(code));
	int first_unsendable = 0;
	for (int code = 4999; code >= 3000; code--)
		if (!closecode_is_sendable(code))
			first_unsendable = code;
	CHECK_EQ_INT(first_unsendable, 0);
}

static void test_advice_by_application_range(void)
{
	CHECK_EQ_INT(closecode_advice_for(4000), WSG_ADVICE_DO_NOT_RECONNECT);
	CHECK_EQ_INT(closecode_advice_for(4050), WSG_ADVICE_DO_NOT_RECONNECT);
	CHECK_EQ_INT(closecode_advice_for(4099), WSG_ADVICE_DO_NOT_RECONNECT);
	CHECK_EQ_INT(closecode_advice_for(4100), WSG_ADVICE_RECONNECT_BACKOFF);
	CHECK_EQ_INT(closecode_advice_for(4150), WSG_ADVICE_RECONNECT_BACKOFF);
	CHECK_EQ_INT(closecode_advice_for(4199), WSG_ADVICE_RECONNECT_BACKOFF);
	CHECK_EQ_INT(closecode_advice_for(4200), WSG_ADVICE_RECONNECT_NOW);
	CHECK_EQ_INT(closecode_advice_for(4250), WSG_ADVICE_RECONNECT_NOW);
	CHECK_EQ_INT(closecode_advice_for(4299), WSG_ADVICE_RECONNECT_NOW);
}

static void test_advice_of_table_entries_follows_their_range(void)
{
	size_t count = 0;
	const struct wsg_close_info *table = closecode_table(&count);

	for (size_t i = 0; i < count; i++) {
		CHECK_EQ_INT(closecode_advice_for(table[i].code), table[i].advice);
		if (table[i].code >= 4000 && table[i].code <= 4299) {
			enum wsg_close_advice by_range = table[i].code < 4100	? WSG_ADVICE_DO_NOT_RECONNECT
							 : table[i].code < 4200 ? WSG_ADVICE_RECONNECT_BACKOFF
										: WSG_ADVICE_RECONNECT_NOW;
			CHECK_EQ_INT(table[i].advice, by_range);
		}
	}
	CHECK_EQ_INT(closecode_advice_for(WSG_CLOSE_SHUTDOWN), WSG_ADVICE_RECONNECT_BACKOFF);
	CHECK_EQ_INT(closecode_advice_for(WSG_CLOSE_AT_CAPACITY), WSG_ADVICE_RECONNECT_BACKOFF);
	CHECK_EQ_INT(closecode_advice_for(WSG_CLOSE_NORMAL), WSG_ADVICE_DO_NOT_RECONNECT);
}

static void test_advice_names(void)
{
	CHECK_EQ_STR(closecode_advice_name(WSG_ADVICE_DO_NOT_RECONNECT), "do not reconnect unchanged");
	CHECK_EQ_STR(closecode_advice_name(WSG_ADVICE_RECONNECT_BACKOFF), "reconnect with backoff");
	CHECK_EQ_STR(closecode_advice_name(WSG_ADVICE_RECONNECT_NOW), "reconnect at once");
}

/* Builds a 200-byte reason by repeating unit after an ASCII lead, cut to a whole unit. */
static size_t build_reason(char *buf, const char *lead, const char *unit)
{
	size_t n = strlen(lead), u = strlen(unit);

	memcpy(buf, lead, n);
	while (n + u <= 200) {
		memcpy(buf + n, unit, u);
		n += u;
	}
	buf[n] = '\0';
	return n;
}

static void check_cut(const char *buf, size_t len, size_t expected)
{
	size_t cut = closecode_reason_len(buf, len);

	CHECK_EQ_INT(cut, expected);
	CHECK(cut <= WSG_CLOSE_REASON_MAX);
	CHECK(util_is_valid_utf8((const unsigned char *)buf, cut));
}

static void test_reason_cut_of_ascii_is_123_bytes(void)
{
	char buf[256];
	size_t len = build_reason(buf, "", "x");

	CHECK_EQ_INT(len, 200);
	check_cut(buf, len, 123);
}

static void test_reason_cut_never_splits_two_byte_chars(void)
{
	char buf[256];
	size_t len = build_reason(buf, "", "\xc3\xa9"); /* é x 100 */

	CHECK_EQ_INT(len, 200);
	check_cut(buf, len, 122);
	len = build_reason(buf, "a", "\xc3\xa9"); /* a + é x 99: 123 is a boundary */
	check_cut(buf, len, 123);
}

static void test_reason_cut_never_splits_three_byte_chars(void)
{
	char buf[256];
	size_t len = build_reason(buf, "ab", "\xe4\xb8\xad"); /* ab + 中 x 66 */

	CHECK_EQ_INT(len, 200);
	check_cut(buf, len, 122);
	len = build_reason(buf, "", "\xe4\xb8\xad"); /* 中 x 66: 123 = 41 x 3 */
	check_cut(buf, len, 123);
	len = build_reason(buf, "a", "\xe4\xb8\xad");
	check_cut(buf, len, 121);
}

static void test_reason_cut_never_splits_four_byte_chars(void)
{
	char buf[256];
	size_t len = build_reason(buf, "", "\xf0\x9f\x98\x80"); /* 😀 x 50 */

	CHECK_EQ_INT(len, 200);
	check_cut(buf, len, 120);
	len = build_reason(buf, "abc", "\xf0\x9f\x98\x80"); /* 3 + 4 x 30 = 123 */
	check_cut(buf, len, 123);
	len = build_reason(buf, "ab", "\xf0\x9f\x98\x80");
	check_cut(buf, len, 122);
}

static void test_reason_cut_of_mixed_chars(void)
{
	char buf[256];
	/* é 中 😀 x: 10 bytes a round; 12 rounds = 120, then é 中 would reach 125 */
	size_t len = build_reason(buf, "", "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80x");

	check_cut(buf, len, 122);
}

static void test_reason_cut_keeps_short_reasons(void)
{
	check_cut("forbidden", 9, 9);
	check_cut("", 0, 0);
	check_cut("caf\xc3\xa9", 5, 5);
}

static void test_reason_cut_ends_at_invalid_bytes(void)
{
	check_cut("ok\xff"
		  "rest",
		  7, 2);
	check_cut("ok\xc3", 3, 2);
}

/* Reads the whole file, NULL when it cannot. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			text = realloc(text, cap);
			if (!text)
				break;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (text)
		text[len] = '\0';
	return text;
}

/* The README line of the markdown table row "| CODE | ...", NULL when none. */
static const char *readme_row(const char *readme, int code, size_t *row_len)
{
	for (const char *line = readme; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *p = line;

		if (*p == '|') {
			p++;
			while (*p == ' ' || *p == '`')
				p++;
			char *after;
			long value = strtol(p, &after, 10);
			if (after != p && value == code) {
				while (*after == ' ' || *after == '`')
					after++;
				if (*after == '|') {
					*row_len = n;
					return line;
				}
			}
		}
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

static void test_readme_table_lists_every_code_with_its_reason_and_advice(void)
{
	char *readme = read_file(README_PATH);
	size_t count = 0;
	const struct wsg_close_info *table = closecode_table(&count);

	if (!CHECK(readme != NULL)) {
		fprintf(stderr, "    cannot read %s (relative to test/unit)\n", README_PATH);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		size_t row_len = 0;
		const char *row = readme_row(readme, table[i].code, &row_len);
		if (!CHECK(row != NULL)) {
			fprintf(stderr, "    README.md has no table row \"| %d |\"\n", table[i].code);
			continue;
		}
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)row_len, row);
		if (!CHECK(strstr(line, table[i].reason) != NULL))
			fprintf(stderr, "    README.md row for %d lacks the reason \"%s\": %s\n", table[i].code,
				table[i].reason, line);
		const char *advice = closecode_advice_name(table[i].advice);
		if (!CHECK(strstr(line, advice) != NULL))
			fprintf(stderr, "    README.md row for %d lacks the advice \"%s\": %s\n", table[i].code, advice,
				line);
	}
	free(readme);
}

/* The JSON of GET /close-codes and /api/close-codes: every table entry, in order, and the ranges. */
static void test_json_lists_the_table_and_the_ranges(void)
{
	size_t count;
	const struct wsg_close_info *table = closecode_table(&count);
	json_t *json = closecode_json();
	json_t *codes = json_object_get(json, "close_codes"), *ranges = json_object_get(json, "ranges");

	if (!CHECK(json != NULL) || !CHECK(json_is_array(codes)) || !CHECK(json_is_array(ranges))) {
		json_decref(json);
		return;
	}
	CHECK_EQ_INT(json_array_size(codes), count);
	for (size_t i = 0; i < count && i < json_array_size(codes); i++) {
		json_t *e = json_array_get(codes, i);
		CHECK_EQ_INT(json_integer_value(json_object_get(e, "code")), table[i].code);
		CHECK_EQ_STR(json_string_value(json_object_get(e, "reason")), table[i].reason);
		CHECK_EQ_STR(json_string_value(json_object_get(e, "advice")), closecode_advice_name(table[i].advice));
		CHECK_EQ_STR(json_string_value(json_object_get(e, "meaning")), table[i].meaning);
	}
	char *text = json_dumps(ranges, JSON_COMPACT | JSON_PRESERVE_ORDER);
	CHECK_EQ_STR(text, "[{\"codes\":\"4000-4099\",\"advice\":\"do not reconnect unchanged\"},"
			   "{\"codes\":\"4100-4199\",\"advice\":\"reconnect with backoff\"},"
			   "{\"codes\":\"4200-4299\",\"advice\":\"reconnect at once\"}]");
	free(text);
	json_decref(json);
}

int main(void)
{
	RUN(test_json_lists_the_table_and_the_ranges);
	RUN(test_table_reasons_fit_a_close_frame_and_are_utf8);
	RUN(test_table_codes_are_unique_and_sendable);
	RUN(test_find_returns_the_table_entry);
	RUN(test_find_returns_null_for_codes_never_sent);
	RUN(test_refusals_before_upgrade_have_http_statuses);
	RUN(test_reserved_codes_are_not_sendable);
	RUN(test_defined_and_application_codes_are_sendable);
	RUN(test_advice_by_application_range);
	RUN(test_advice_of_table_entries_follows_their_range);
	RUN(test_advice_names);
	RUN(test_reason_cut_of_ascii_is_123_bytes);
	RUN(test_reason_cut_never_splits_two_byte_chars);
	RUN(test_reason_cut_never_splits_three_byte_chars);
	RUN(test_reason_cut_never_splits_four_byte_chars);
	RUN(test_reason_cut_of_mixed_chars);
	RUN(test_reason_cut_keeps_short_reasons);
	RUN(test_reason_cut_ends_at_invalid_bytes);
	RUN(test_readme_table_lists_every_code_with_its_reason_and_advice);
	return check_summary();
}
