/*
 * Shared by the libFuzzer harnesses: an invariant check that aborts with the
 * failed condition (libFuzzer then saves the input), an independent UTF-8
 * validator to compare wsgate's against, and a splitter of one input into
 * NUL-terminated fields.
 */
#ifndef WSGATE_FUZZ_H
#define WSGATE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                                              \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                   \
			abort();                                                                                       \
		}                                                                                                      \
	} while (0)

/* RFC 3629 section 4's table, written out apart from app/util.c's decoder. */
static inline bool fuzz_is_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t n;

		if (c <= 0x7f) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			if (c == 0xf4)
				hi = 0x8f; /* past U+10FFFF */
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += n + 1;
	}
	return true;
}

/*
 * Splits data into at most max fields separated by '\n' (the last field takes
 * the rest, NULs and all are cut at the first NUL). Returns a malloc'd buffer
 * the fields point into; unused fields are NULL.
 */
static inline char *fuzz_split(const uint8_t *data, size_t size, char **fields, size_t max)
{
	char *buf = malloc(size + 1);
	size_t n = 0;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t i = 0; i < max; i++)
		fields[i] = NULL;
	char *p = buf;
	while (n < max) {
		fields[n++] = p;
		char *nl = n < max ? strchr(p, '\n') : NULL;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return buf;
}

#ifdef FUZZ_WANTS_MEMFD
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* An in-memory file, its path /proc/self/fd/N in path: config_load reads a path. */
static inline int fuzz_memfd(char *path, size_t pathlen)
{
	int fd = memfd_create("wsgate-fuzz.conf", MFD_CLOEXEC);

	/* a memfd is mode 0777: wsgate refuses a config with tokens that others may read */
	if (fd < 0 || fchmod(fd, 0600))
		abort();
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

static inline void fuzz_memfd_write(int fd, const void *data, size_t size)
{
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
}
#endif

#endif
