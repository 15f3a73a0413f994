/*
 * A minimal check harness for the unit tests: no framework, one header.
 *
 *   static void test_something(void) { CHECK_EQ_INT(f(2), 4); }
 *   int main(void) { RUN(test_something); return check_summary(); }
 *
 * Every CHECK* evaluates its arguments once, prints FILE:LINE, the test and
 * both values when it fails, and returns whether it passed, so a test can stop
 * before dereferencing something that is not there:
 *
 *   if (!CHECK(p != NULL)) return;
 *
 * check_summary() prints "N passed, M failed" and returns non-zero when any
 * check failed, which is what main returns to ctest.
 */
#ifndef WSGATE_TEST_CHECK_H
#define WSGATE_TEST_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int check_passed_count;
static int check_failed_count;
static const char *check_current_test = "(none)";

static inline bool check_report(bool ok, const char *file, int line)
{
	if (ok) {
		check_passed_count++;
		return true;
	}
	check_failed_count++;
	fprintf(stderr, "%s:%d: FAIL in %s: ", file, line, check_current_test);
	return false;
}

static inline bool check_true(bool ok, const char *expr, const char *file, int line)
{
	if (!check_report(ok, file, line))
		fprintf(stderr, "CHECK(%s)\n", expr);
	return ok;
}

static inline bool check_eq_int(long long actual, long long expected, const char *actual_expr,
				const char *expected_expr, const char *file, int line)
{
	bool ok = actual == expected;

	if (!check_report(ok, file, line))
		fprintf(stderr, "CHECK_EQ_INT(%s, %s): got %lld, expected %lld\n", actual_expr, expected_expr, actual,
			expected);
	return ok;
}

static inline bool check_eq_str(const char *actual, const char *expected, const char *actual_expr,
				const char *expected_expr, const char *file, int line)
{
	bool ok = (actual && expected) ? strcmp(actual, expected) == 0 : actual == expected;

	if (!check_report(ok, file, line)) {
		fprintf(stderr, "CHECK_EQ_STR(%s, %s):\n", actual_expr, expected_expr);
		fprintf(stderr, "    got      %s%s%s\n", actual ? "\"" : "", actual ? actual : "NULL",
			actual ? "\"" : "");
		fprintf(stderr, "    expected %s%s%s\n", expected ? "\"" : "", expected ? expected : "NULL",
			expected ? "\"" : "");
	}
	return ok;
}

#define CHECK(cond) check_true((cond) ? true : false, #cond, __FILE__, __LINE__)
#define CHECK_EQ_INT(actual, expected)                                                                                 \
	check_eq_int((long long)(actual), (long long)(expected), #actual, #expected, __FILE__, __LINE__)
#define CHECK_EQ_STR(actual, expected) check_eq_str((actual), (expected), #actual, #expected, __FILE__, __LINE__)

/* Runs one test function, naming it in any failure it reports. */
#define RUN(test)                                                                                                      \
	do {                                                                                                           \
		check_current_test = #test;                                                                            \
		test();                                                                                                \
		check_current_test = "(none)";                                                                         \
	} while (0)

static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
	return check_failed_count ? 1 : 0;
}

#endif
