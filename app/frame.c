/*
 * Server-to-client frame headers. Nothing here allocates; callers own the
 * buffers and size them with FRAME_HEADER_MAX.
 */
#include "frame.h"

#include <string.h>

size_t frame_write_header(unsigned char *out, enum frame_opcode opcode, size_t len)
{
	out[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

size_t frame_write_close(unsigned char *out, int code, const char *reason, size_t reason_len)
{
	if (!code)
		return frame_write_header(out, FRAME_CLOSE, 0);
	if (reason_len > FRAME_CONTROL_MAX - 2)
		reason_len = FRAME_CONTROL_MAX - 2;
	size_t n = frame_write_header(out, FRAME_CLOSE, 2 + reason_len);
	out[n++] = (unsigned char)(code >> 8);
	out[n++] = (unsigned char)code;
	memcpy(out + n, reason, reason_len);
	return n + reason_len;
}

size_t frame_write_ping(unsigned char *out, uint64_t value)
{
	size_t n = frame_write_header(out, FRAME_PING, 8);

	for (int i = 7; i >= 0; i--, value >>= 8)
		out[n + (size_t)i] = (unsigned char)value;
	return n + 8;
}
