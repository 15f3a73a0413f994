/*
 * RFC 6455 framing of what the server sends. Server frames are never masked
 * (5.1), so a frame's bytes are the same for every recipient: a delivery is
 * framed once and shared. Pure; never parses what clients send (lws does).
 */
#ifndef WSGATE_FRAME_H
#define WSGATE_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* 2 bytes, plus 2 for lengths 126-65535, plus 8 beyond (RFC 6455 5.2). */
#define FRAME_HEADER_MAX 10
/* A control frame's payload is at most 125 bytes (5.5). */
#define FRAME_CONTROL_MAX 125

enum frame_opcode {
	FRAME_TEXT = 0x1,
	FRAME_BINARY = 0x2,
	FRAME_CLOSE = 0x8,
	FRAME_PING = 0x9,
	FRAME_PONG = 0xa,
};

/* The header length for a payload of len bytes. */
static inline size_t frame_header_len(size_t len)
{
	return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

/* Writes a final (FIN) unmasked header for len payload bytes; returns its length. */
size_t frame_write_header(unsigned char *out, enum frame_opcode opcode, size_t len);

/*
 * A whole close frame: code, then reason (already cut to 123 bytes by the
 * caller); code 0 makes an empty close (RFC 6455 5.5.1: no status). out needs
 * 2 + FRAME_CONTROL_MAX bytes. Returns the frame length.
 */
size_t frame_write_close(unsigned char *out, int code, const char *reason, size_t reason_len);

/* A whole ping frame carrying an 8-byte big-endian value (never empty: lws hides empty pongs). */
size_t frame_write_ping(unsigned char *out, uint64_t value);

#endif
