/*
 * Sessions per client address, for limits.max_per_ip: a hash table of the
 * addresses that hold sessions now, so a check is O(1) and an address with no
 * session costs nothing. Keys hashed with a per-process random SipHash key,
 * so chosen source addresses cannot flood one chain.
 */
#ifndef WSGATE_ADDRCOUNT_H
#define WSGATE_ADDRCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "hashtable.h"

struct addrcount {
	struct hashtable table;
	uint64_t key[2];
};

int addrcount_init(struct addrcount *ac);
void addrcount_free(struct addrcount *ac);

/* Sessions held by addr now. */
unsigned addrcount_get(const struct addrcount *ac, const char *addr);
/* One more for addr; -1 when out of memory. */
int addrcount_add(struct addrcount *ac, const char *addr);
/* One fewer; an address at zero is forgotten. */
void addrcount_remove(struct addrcount *ac, const char *addr);

#endif
