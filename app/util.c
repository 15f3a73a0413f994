/*
 * Helpers shared by the pure modules. Kept free of libwebsockets so the unit
 * tests link them without a network.
 */
#include "util.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t util_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Length of the UTF-8 sequence starting at s[0..len), or 0 when it is malformed. */
static size_t utf8_sequence_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t need;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000))
		return 0; /* overlong */
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

bool util_is_valid_utf8(const unsigned char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (buf[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = utf8_sequence_len(buf + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

size_t util_utf8_prefix_len(const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_sequence_len(u + i, len - i);
		if (!n || i + n > max)
			break;
		i += n;
	}
	return i;
}

/*
 * Random bytes from a pool refilled 4 KB at a time: one getrandom() serves
 * hundreds of session ids instead of one syscall per handshake.
 */
static int random_bytes(unsigned char *out, size_t n)
{
	static unsigned char pool[4096];
	static size_t left;

	if (n > sizeof(pool))
		return -1;
	if (left < n) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
			return -1;
		left = sizeof(pool);
	}
	left -= n;
	memcpy(out, pool + left, n);
	/* used bytes never serve twice, nor stay readable in the pool */
	memset(pool + left, 0, n);
	return 0;
}

int util_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];

	if (nbytes > sizeof(raw))
		return -1;
	if (random_bytes(raw, nbytes))
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

size_t util_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t n = strlen(src);

	if (dstlen) {
		size_t c = n < dstlen - 1 ? n : dstlen - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

bool util_utf8_feed(unsigned *state, const unsigned char *s, size_t len, bool is_final)
{
	unsigned need = *state & 3, lo = (*state >> 8) & 0xff, hi = (*state >> 16) & 0xff;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (need) {
			if (c < lo || c > hi)
				return false;
			need--;
			lo = 0x80;
			hi = 0xbf;
			continue;
		}
		if (c < 0x80)
			continue;
		/* RFC 3629 4: the lead byte fixes the length and the second byte's range */
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c == 0xe0) {
			need = 2;
			lo = 0xa0; /* no overlong forms */
		} else if (c == 0xed) {
			need = 2;
			hi = 0x9f; /* no surrogates */
		} else if (c >= 0xe1 && c <= 0xef) {
			need = 2;
		} else if (c == 0xf0) {
			need = 3;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3) {
			need = 3;
		} else if (c == 0xf4) {
			need = 3;
			hi = 0x8f; /* nothing above U+10FFFF */
		} else {
			return false;
		}
	}
	*state = need | lo << 8 | hi << 16;
	return !is_final || !need;
}
