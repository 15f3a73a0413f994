/* log: quoting of client-supplied values so they can never forge a line. */
#include "log.h"

#include <string.h>

#include "check.h"

static const char *quote(const char *s, size_t len)
{
	static char out[256];

	return log_quote(out, sizeof(out), s, len);
}

static void test_plain_and_escaped(void)
{
	CHECK_EQ_STR(quote("bye", 3), "\"bye\"");
	CHECK_EQ_STR(quote("", 0), "\"\"");
	CHECK_EQ_STR(quote("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	CHECK_EQ_STR(quote("x\ny level=error", 15), "\"x\\ny level=error\"");
	CHECK_EQ_STR(quote("\x01\x7f", 2), "\"\\x01\\x7f\"");
}

static void test_utf8_kept_invalid_bytes_escaped(void)
{
	CHECK_EQ_STR(quote("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
	CHECK_EQ_STR(quote("a\xff"
			   "b",
			   3),
		     "\"a\\xffb\"");
	/* one bad byte: every non-ASCII byte is escaped, half a character never printed raw */
	CHECK_EQ_STR(quote("\xc3\xa9\xc3", 3), "\"\\xc3\\xa9\\xc3\"");
}

static void test_output_is_bounded(void)
{
	char small[8], big[64];

	memset(big, 'x', sizeof(big));
	log_quote(small, sizeof(small), big, sizeof(big));
	CHECK(strlen(small) < sizeof(small));
	CHECK_EQ_INT(small[0], '"');
	CHECK_EQ_INT(small[strlen(small) - 1], '"');
}

int main(void)
{
	RUN(test_plain_and_escaped);
	RUN(test_utf8_kept_invalid_bytes_escaped);
	RUN(test_output_is_bounded);
	return check_summary();
}
