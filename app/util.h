/*
 * Small helpers shared by the pure modules: monotonic time, UTF-8 checks,
 * random identifiers. Nothing here knows about sockets or libwebsockets.
 */
#ifndef WSGATE_UTIL_H
#define WSGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock; never goes backwards. */
uint64_t util_now_ms(void);

/* Milliseconds since the Unix epoch, for timestamps clients read. */
uint64_t util_wall_ms(void);

/* True when buf[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates). */
bool util_is_valid_utf8(const unsigned char *buf, size_t len);

/*
 * The longest prefix of a valid UTF-8 string that fits in max bytes without
 * splitting a character.
 */
size_t util_utf8_prefix_len(const char *s, size_t len, size_t max);

/* Writes 2*nbytes lowercase hex chars plus NUL from the kernel's CSPRNG. */
int util_random_hex(char *out, size_t nbytes);

/*
 * UTF-8 validation in pieces: state (0 to begin) carries a character split
 * between pieces. False at the first invalid byte, or when is_final and a
 * character is left unfinished.
 */
bool util_utf8_feed(unsigned *state, const unsigned char *s, size_t len, bool is_final);

/* Copies at most dstlen-1 bytes and always terminates; returns the source length. */
size_t util_strlcpy(char *dst, const char *src, size_t dstlen);

#endif
