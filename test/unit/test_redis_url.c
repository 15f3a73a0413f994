/* redis_url: the cluster's redis:// address, and that a password never reaches an error or a log. */
#include "redis_url.h"

#include "check.h"

static void test_defaults_and_full_form(void)
{
	struct redis_url u;
	char why[300], text[300];

	CHECK_EQ_INT(redis_url_parse("redis://127.0.0.1", &u, why, sizeof(why)), 0);
	CHECK_EQ_STR(u.host, "127.0.0.1");
	CHECK_EQ_INT(u.port, 6379);
	CHECK_EQ_INT(u.db, 0);
	CHECK_EQ_INT(u.has_password, 0);
	CHECK_EQ_INT(redis_url_parse("redis://:p%40ss@redis.example:6380/3", &u, why, sizeof(why)), 0);
	CHECK_EQ_STR(u.host, "redis.example");
	CHECK_EQ_INT(u.port, 6380);
	CHECK_EQ_INT(u.db, 3);
	CHECK_EQ_STR(u.user, "");
	CHECK_EQ_STR(u.password, "p@ss");
	redis_url_describe(&u, text, sizeof(text));
	CHECK_EQ_STR(text, "redis.example:6380/3 auth=yes");
	CHECK_EQ_INT(redis_url_parse("redis://app:pw@[::1]:7000/", &u, why, sizeof(why)), 0);
	CHECK_EQ_STR(u.host, "::1");
	CHECK_EQ_STR(u.user, "app");
	CHECK_EQ_INT(u.port, 7000);
	redis_url_describe(&u, text, sizeof(text));
	CHECK_EQ_STR(text, "[::1]:7000/0 auth=yes");
}

static void test_refusals_never_show_the_password(void)
{
	static const char *const bad[] = {
		"rediss://:secretpw@h:6379/0",
		"http://h",
		"redis://",
		"redis://:secretpw@h:0",
		"redis://:secretpw@h:65536",
		"redis://h/16",
		"redis://h/x",
		"redis://secretpw@h",
		"redis://:@h",
		"redis://h?x=1",
		"redis://[::1",
		"redis://:bad%zzpw@h",
	};
	struct redis_url u;
	char why[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CHECK_EQ_INT(redis_url_parse(bad[i], &u, why, sizeof(why)), -1);
		CHECK(why[0] != '\0');
		CHECK(!strstr(why, "secretpw"));
	}
	redis_url_parse("rediss://h", &u, why, sizeof(why));
	CHECK(strstr(why, "not supported") != NULL);
}

int main(void)
{
	RUN(test_defaults_and_full_form);
	RUN(test_refusals_never_show_the_password);
	return check_summary();
}
