/* util: UTF-8 validation, UTF-8 prefix cut, random hex, strlcpy, monotonic clock. */
#include "util.h"

#include <string.h>

#include "check.h"

static bool valid(const char *bytes, size_t len)
{
	return util_is_valid_utf8((const unsigned char *)bytes, len);
}

#define VALID(literal) valid((literal), sizeof(literal) - 1)

static void test_utf8_accepts_ascii_and_empty(void)
{
	CHECK(VALID(""));
	CHECK(VALID("hello, world"));
	CHECK(VALID("\x00\x7f"));
}

static void test_utf8_accepts_every_sequence_length(void)
{
	CHECK(VALID("\xc2\x80"));	  /* U+0080, smallest 2-byte */
	CHECK(VALID("\xc3\xa9"));	  /* é */
	CHECK(VALID("\xdf\xbf"));	  /* U+07FF, largest 2-byte */
	CHECK(VALID("\xe0\xa0\x80"));	  /* U+0800, smallest 3-byte */
	CHECK(VALID("\xe4\xb8\xad"));	  /* 中 */
	CHECK(VALID("\xed\x9f\xbf"));	  /* U+D7FF, just below the surrogates */
	CHECK(VALID("\xee\x80\x80"));	  /* U+E000, just above the surrogates */
	CHECK(VALID("\xef\xbf\xbf"));	  /* U+FFFF */
	CHECK(VALID("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
	CHECK(VALID("\xf0\x9f\x98\x80")); /* 😀 */
	CHECK(VALID("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last code point */
	CHECK(VALID("a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80z"));
}

static void test_utf8_rejects_overlongs(void)
{
	CHECK(!VALID("\xc0\x80"));	   /* NUL in 2 bytes */
	CHECK(!VALID("\xc0\xaf"));	   /* '/' in 2 bytes */
	CHECK(!VALID("\xc1\xbf"));	   /* U+007F in 2 bytes */
	CHECK(!VALID("\xe0\x80\x80"));	   /* NUL in 3 bytes */
	CHECK(!VALID("\xe0\x9f\xbf"));	   /* U+07FF in 3 bytes */
	CHECK(!VALID("\xf0\x80\x80\x80")); /* NUL in 4 bytes */
	CHECK(!VALID("\xf0\x8f\xbf\xbf")); /* U+FFFF in 4 bytes */
}

static void test_utf8_rejects_surrogates(void)
{
	CHECK(!VALID("\xed\xa0\x80"));		   /* U+D800 */
	CHECK(!VALID("\xed\xbf\xbf"));		   /* U+DFFF */
	CHECK(!VALID("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair for U+1F600 */
}

static void test_utf8_rejects_code_points_above_10ffff(void)
{
	CHECK(!VALID("\xf4\x90\x80\x80")); /* U+110000 */
	CHECK(!VALID("\xf5\x80\x80\x80"));
	CHECK(!VALID("\xf7\xbf\xbf\xbf")); /* U+1FFFFF */
}

static void test_utf8_rejects_five_and_six_byte_forms(void)
{
	CHECK(!VALID("\xf8\x88\x80\x80\x80"));
	CHECK(!VALID("\xfb\xbf\xbf\xbf\xbf"));
	CHECK(!VALID("\xfc\x84\x80\x80\x80\x80"));
	CHECK(!VALID("\xfe"));
	CHECK(!VALID("\xff"));
}

static void test_utf8_rejects_truncated_sequences(void)
{
	CHECK(!VALID("\xc3"));
	CHECK(!VALID("\xe4\xb8"));
	CHECK(!VALID("\xe4"));
	CHECK(!VALID("\xf0\x9f\x98"));
	CHECK(!VALID("abc\xf0\x9f"));
	/* a truncated sequence followed by more text is still broken */
	CHECK(!VALID("\xe4\xb8z"));
	CHECK(!VALID("\xc3 "));
	/* the length limits the check: the same bytes cut inside a character */
	CHECK(!valid("\xe4\xb8\xad", 2));
	CHECK(valid("\xe4\xb8\xad", 3));
}

static void test_utf8_rejects_stray_continuation_bytes(void)
{
	CHECK(!VALID("\x80"));
	CHECK(!VALID("\xbf"));
	CHECK(!VALID("a\x80z"));
	CHECK(!VALID("\xc3\xa9\xa9"));
}

static size_t prefix(const char *s, size_t max)
{
	return util_utf8_prefix_len(s, strlen(s), max);
}

static void test_prefix_keeps_whole_string_when_it_fits(void)
{
	CHECK_EQ_INT(prefix("hello", 5), 5);
	CHECK_EQ_INT(prefix("hello", 100), 5);
	CHECK_EQ_INT(prefix("", 10), 0);
	CHECK_EQ_INT(prefix("hello", 3), 3);
	CHECK_EQ_INT(prefix("hello", 0), 0);
}

static void test_prefix_never_splits_two_byte_chars(void)
{
	const char *s = "\xc3\xa9\xc3\xa9\xc3\xa9"; /* ééé, 6 bytes */

	CHECK_EQ_INT(prefix(s, 1), 0);
	CHECK_EQ_INT(prefix(s, 2), 2);
	CHECK_EQ_INT(prefix(s, 3), 2);
	CHECK_EQ_INT(prefix(s, 4), 4);
	CHECK_EQ_INT(prefix(s, 5), 4);
	CHECK_EQ_INT(prefix(s, 6), 6);
}

static void test_prefix_never_splits_three_byte_chars(void)
{
	const char *s = "a\xe4\xb8\xad\xe4\xb8\xad"; /* a中中, 7 bytes */

	CHECK_EQ_INT(prefix(s, 1), 1);
	CHECK_EQ_INT(prefix(s, 2), 1);
	CHECK_EQ_INT(prefix(s, 3), 1);
	CHECK_EQ_INT(prefix(s, 4), 4);
	CHECK_EQ_INT(prefix(s, 6), 4);
	CHECK_EQ_INT(prefix(s, 7), 7);
}

static void test_prefix_never_splits_four_byte_chars(void)
{
	const char *s = "ab\xf0\x9f\x98\x80"; /* ab😀, 6 bytes */

	CHECK_EQ_INT(prefix(s, 2), 2);
	CHECK_EQ_INT(prefix(s, 3), 2);
	CHECK_EQ_INT(prefix(s, 4), 2);
	CHECK_EQ_INT(prefix(s, 5), 2);
	CHECK_EQ_INT(prefix(s, 6), 6);
}

static void test_prefix_stops_at_invalid_bytes(void)
{
	CHECK_EQ_INT(prefix("ab\xff"
			    "cd",
			    10),
		     2);
	CHECK_EQ_INT(prefix("ab\xed\xa0\x80"
			    "cd",
			    10),
		     2);						/* a surrogate */
	CHECK_EQ_INT(util_utf8_prefix_len("ab\xe4\xb8\xad", 4, 10), 2); /* cut inside 中 by len */
}

static bool is_lower_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void test_random_hex_has_twice_the_bytes_in_lowercase_hex(void)
{
	char out[2 * 64 + 1];

	memset(out, 'X', sizeof(out));
	CHECK_EQ_INT(util_random_hex(out, 16), 0);
	CHECK_EQ_INT(strlen(out), 32);
	CHECK(is_lower_hex(out));

	CHECK_EQ_INT(util_random_hex(out, 1), 0);
	CHECK_EQ_INT(strlen(out), 2);
	CHECK(is_lower_hex(out));

	CHECK_EQ_INT(util_random_hex(out, 64), 0);
	CHECK_EQ_INT(strlen(out), 128);
	CHECK(is_lower_hex(out));
}

static void test_random_hex_differs_between_calls(void)
{
	char a[33], b[33];

	CHECK_EQ_INT(util_random_hex(a, 16), 0);
	CHECK_EQ_INT(util_random_hex(b, 16), 0);
	CHECK(strcmp(a, b) != 0); /* 2^-128 chance of a false failure */
}

static void test_random_hex_uses_every_digit(void)
{
	char out[129];
	bool seen[16] = { false };
	int distinct = 0;

	for (int round = 0; round < 8; round++) {
		CHECK_EQ_INT(util_random_hex(out, 64), 0);
		for (const char *p = out; *p; p++)
			seen[*p <= '9' ? *p - '0' : *p - 'a' + 10] = true;
	}
	for (int i = 0; i < 16; i++)
		distinct += seen[i];
	CHECK_EQ_INT(distinct, 16);
}

static void test_random_hex_refuses_more_than_64_bytes(void)
{
	char out[2 * 65 + 1] = "untouched";

	CHECK_EQ_INT(util_random_hex(out, 65), -1);
	CHECK_EQ_STR(out, "untouched");
}

static void test_strlcpy_truncates_and_terminates(void)
{
	char buf[6];

	CHECK_EQ_INT(util_strlcpy(buf, "hello world", sizeof(buf)), 11);
	CHECK_EQ_STR(buf, "hello");
	CHECK_EQ_INT(util_strlcpy(buf, "hi", sizeof(buf)), 2);
	CHECK_EQ_STR(buf, "hi");
	CHECK_EQ_INT(util_strlcpy(buf, "12345", sizeof(buf)), 5);
	CHECK_EQ_STR(buf, "12345");
	CHECK_EQ_INT(util_strlcpy(buf, "", sizeof(buf)), 0);
	CHECK_EQ_STR(buf, "");
}

static void test_strlcpy_with_zero_length_writes_nothing(void)
{
	char buf[4] = "abc";

	CHECK_EQ_INT(util_strlcpy(buf, "xyz", 0), 3);
	CHECK_EQ_STR(buf, "abc");
}

static void test_now_ms_never_goes_backwards(void)
{
	uint64_t before = util_now_ms();
	uint64_t after = util_now_ms();

	CHECK(before > 0);
	CHECK(after >= before);
}

/* util_utf8_feed fed in two pieces, cut anywhere, agrees with util_is_valid_utf8 on the whole. */
static void test_utf8_in_pieces_agrees_with_the_whole(void)
{
	unsigned seed = 12345;
	unsigned char buf[8];
	int disagreements = 0;

	for (int n = 0; n < 200000; n++) {
		size_t len = (size_t)(n % 9);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = (seed >> 16) & 0xff;
			/* mostly bytes that matter: leads, continuations, the edges of their ranges */
			static const unsigned char pick[] = { 0x41, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
							      0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee,
							      0xef, 0xf0, 0xf3, 0xf4, 0xf5, 0xff };
			buf[i] = r < 200 ? pick[r % sizeof(pick)] : (unsigned char)r;
		}
		bool whole = util_is_valid_utf8(buf, len);
		for (size_t cut = 0; cut <= len; cut++) {
			unsigned state = 0;
			bool ok = util_utf8_feed(&state, buf, cut, false) &&
				  util_utf8_feed(&state, buf + cut, len - cut, true);
			disagreements += ok != whole;
		}
	}
	CHECK_EQ_INT(disagreements, 0);
}

static void test_utf8_in_pieces_fails_at_the_bad_piece(void)
{
	unsigned state = 0;

	CHECK(util_utf8_feed(&state, (const unsigned char *)"\xce", 1, false));	 /* half a character: fine so far */
	CHECK(!util_utf8_feed(&state, (const unsigned char *)"\xce", 1, false)); /* not a continuation */
	state = 0;
	CHECK(util_utf8_feed(&state, (const unsigned char *)"ok\xf0\x9f", 4, false));
	CHECK(!util_utf8_feed(&state, (const unsigned char *)"\x98", 1, true)); /* ends unfinished */
}

int main(void)
{
	RUN(test_utf8_in_pieces_agrees_with_the_whole);
	RUN(test_utf8_in_pieces_fails_at_the_bad_piece);
	RUN(test_utf8_accepts_ascii_and_empty);
	RUN(test_utf8_accepts_every_sequence_length);
	RUN(test_utf8_rejects_overlongs);
	RUN(test_utf8_rejects_surrogates);
	RUN(test_utf8_rejects_code_points_above_10ffff);
	RUN(test_utf8_rejects_five_and_six_byte_forms);
	RUN(test_utf8_rejects_truncated_sequences);
	RUN(test_utf8_rejects_stray_continuation_bytes);
	RUN(test_prefix_keeps_whole_string_when_it_fits);
	RUN(test_prefix_never_splits_two_byte_chars);
	RUN(test_prefix_never_splits_three_byte_chars);
	RUN(test_prefix_never_splits_four_byte_chars);
	RUN(test_prefix_stops_at_invalid_bytes);
	RUN(test_random_hex_has_twice_the_bytes_in_lowercase_hex);
	RUN(test_random_hex_differs_between_calls);
	RUN(test_random_hex_uses_every_digit);
	RUN(test_random_hex_refuses_more_than_64_bytes);
	RUN(test_strlcpy_truncates_and_terminates);
	RUN(test_strlcpy_with_zero_length_writes_nothing);
	RUN(test_now_ms_never_goes_backwards);
	return check_summary();
}
