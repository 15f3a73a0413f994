/*
 * Keyed SipHash-1-3 for the hash tables (registry, channels). Fed in pieces so
 * composite keys need no temporary buffer.
 */
#ifndef WSGATE_HASH_H
#define WSGATE_HASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t pending;
	size_t total;
};

void siphash_init(struct siphash *s, const uint64_t key[2]);
void siphash_update(struct siphash *s, const void *data, size_t len);
uint64_t siphash_final(struct siphash *s);

uint64_t siphash_string(const uint64_t key[2], const char *s);
/* A fresh random key from the kernel; -1 when it cannot be had. */
int siphash_random_key(uint64_t key[2]);

#endif
