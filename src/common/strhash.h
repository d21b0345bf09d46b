/*
 * strhash.h - the one hash of C strings for boltseal's in-memory tables
 * (rate limits, the vehicle registry's generation shards, CommandService's
 * per-vehicle memory): FNV-1a, 64 bits. Not for anything an attacker could
 * exploit by choosing colliding keys beyond slower lookups; the tables that
 * use it are bounded.
 */
#ifndef BS_STRHASH_H
#define BS_STRHASH_H

#include <stdint.h>

static inline uint64_t
bs_strhash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

#endif
