/* channel: name validation and permission globs. */
#include "channel.h"

#include <string.h>

#include "check.h"

static void test_valid_names(void)
{
	CHECK(channel_name_is_valid("news"));
	CHECK(channel_name_is_valid("chat.room-1.a_b"));
	CHECK(channel_name_is_valid("user@example:x"));
	CHECK(!channel_name_is_valid(""));
	CHECK(!channel_name_is_valid("."));
	CHECK(!channel_name_is_valid("a..b"));
	CHECK(!channel_name_is_valid(".a"));
	CHECK(!channel_name_is_valid("a."));
	CHECK(!channel_name_is_valid("a b"));
	CHECK(!channel_name_is_valid("chat.*"));
	CHECK(!channel_name_is_valid("caf\xc3\xa9"));
}

static void test_name_length_limit(void)
{
	char name[WSG_CHANNEL_MAX + 2];

	memset(name, 'a', sizeof(name) - 1);
	name[WSG_CHANNEL_MAX] = '\0';
	CHECK(channel_name_is_valid(name));
	name[WSG_CHANNEL_MAX] = 'a';
	name[WSG_CHANNEL_MAX + 1] = '\0';
	CHECK(!channel_name_is_valid(name));
}

static void test_valid_globs(void)
{
	CHECK(channel_glob_is_valid("*"));
	CHECK(channel_glob_is_valid("chat.*"));
	CHECK(channel_glob_is_valid("chat.*.log"));
	CHECK(channel_glob_is_valid("chat.**"));
	CHECK(channel_glob_is_valid("**"));
	CHECK(!channel_glob_is_valid("chat.**.x"));
	CHECK(!channel_glob_is_valid("chat.r*"));
	CHECK(!channel_glob_is_valid("chat..*"));
	CHECK(!channel_glob_is_valid(""));
}

static void test_star_matches_exactly_one_segment(void)
{
	CHECK(channel_glob_match("chat.*", "chat.room"));
	CHECK(!channel_glob_match("chat.*", "chat"));
	CHECK(!channel_glob_match("chat.*", "chat.room.x"));
	CHECK(channel_glob_match("*", "bob"));
	CHECK(!channel_glob_match("*", "a.b"));
	CHECK(channel_glob_match("a.*.c", "a.b.c"));
	CHECK(!channel_glob_match("a.*.c", "a.b.d"));
}

static void test_double_star_matches_the_rest(void)
{
	CHECK(channel_glob_match("chat.**", "chat.a"));
	CHECK(channel_glob_match("chat.**", "chat.a.b.c"));
	CHECK(!channel_glob_match("chat.**", "chat"));
	CHECK(!channel_glob_match("chat.**", "chatter.a"));
	CHECK(channel_glob_match("**", "anything.at.all"));
}

static void test_literal_segments_match_whole(void)
{
	CHECK(channel_glob_match("news", "news"));
	CHECK(!channel_glob_match("news", "newsletter"));
	CHECK(!channel_glob_match("news", "new"));
	CHECK(!channel_glob_match("chat.room", "chat.roomy"));
	CHECK(!channel_glob_match("chat.room", "chat"));
}

static void test_glob_lists(void)
{
	char a[] = "news", b[] = "chat.*";
	char *globs[] = { a, b };

	CHECK(channel_globs_allow(globs, 2, "news"));
	CHECK(channel_globs_allow(globs, 2, "chat.x"));
	CHECK(!channel_globs_allow(globs, 2, "sport"));
	CHECK(!channel_globs_allow(NULL, 0, "news")); /* absent: nothing allowed */
}

int main(void)
{
	RUN(test_valid_names);
	RUN(test_name_length_limit);
	RUN(test_valid_globs);
	RUN(test_star_matches_exactly_one_segment);
	RUN(test_double_star_matches_the_rest);
	RUN(test_literal_segments_match_whole);
	RUN(test_glob_lists);
	return check_summary();
}
