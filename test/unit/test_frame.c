/* frame: the bytes of server frames (RFC 6455 5.2), checked byte by byte. */
#include "frame.h"

#include <string.h>

#include "check.h"

static void test_header_lengths_at_each_boundary(void)
{
	unsigned char h[FRAME_HEADER_MAX];

	CHECK_EQ_INT(frame_write_header(h, FRAME_TEXT, 0), 2);
	CHECK_EQ_INT(h[0], 0x81);
	CHECK_EQ_INT(h[1], 0);
	CHECK_EQ_INT(frame_write_header(h, FRAME_BINARY, 125), 2);
	CHECK_EQ_INT(h[0], 0x82);
	CHECK_EQ_INT(h[1], 125);
	CHECK_EQ_INT(frame_write_header(h, FRAME_TEXT, 126), 4);
	CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
	CHECK_EQ_INT(frame_write_header(h, FRAME_TEXT, 65535), 4);
	CHECK(h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
	CHECK_EQ_INT(frame_write_header(h, FRAME_TEXT, 65536), 10);
	static const unsigned char len64[] = { 127, 0, 0, 0, 0, 0, 1, 0, 0 };
	CHECK(memcmp(h + 1, len64, sizeof(len64)) == 0);
	for (size_t len = 0; len < 70000; len += 997)
		CHECK_EQ_INT(frame_write_header(h, FRAME_TEXT, len), frame_header_len(len));
}

static void test_close_frame_carries_code_and_reason(void)
{
	unsigned char f[FRAME_HEADER_MAX + FRAME_CONTROL_MAX];
	size_t n = frame_write_close(f, 4001, "repeat connect channel", 22);

	CHECK_EQ_INT(n, 2 + 2 + 22);
	CHECK_EQ_INT(f[0], 0x88);
	CHECK_EQ_INT(f[1], 24);
	CHECK_EQ_INT((f[2] << 8) | f[3], 4001);
	CHECK(memcmp(f + 4, "repeat connect channel", 22) == 0);
}

static void test_close_without_code_is_empty_and_reasons_stop_at_123(void)
{
	unsigned char f[FRAME_HEADER_MAX + FRAME_CONTROL_MAX];
	char reason[200];

	CHECK_EQ_INT(frame_write_close(f, 0, NULL, 0), 2);
	CHECK(f[0] == 0x88 && f[1] == 0);
	memset(reason, 'r', sizeof(reason));
	CHECK_EQ_INT(frame_write_close(f, 1000, reason, sizeof(reason)), 2 + 125);
	CHECK_EQ_INT(f[1], 125);
}

static void test_ping_carries_eight_bytes_big_endian(void)
{
	unsigned char f[FRAME_HEADER_MAX + 8];
	static const unsigned char want[] = { 0x89, 8, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04 };

	CHECK_EQ_INT(frame_write_ping(f, 0x01020304), 10);
	CHECK(memcmp(f, want, sizeof(want)) == 0);
}

int main(void)
{
	RUN(test_header_lengths_at_each_boundary);
	RUN(test_close_frame_carries_code_and_reason);
	RUN(test_close_without_code_is_empty_and_reasons_stop_at_123);
	RUN(test_ping_carries_eight_bytes_big_endian);
	return check_summary();
}
