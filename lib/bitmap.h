/*
 * bitmap: one bit per page. Inline, no daemon dependencies. Not thread-safe:
 * each bitmap has one owning thread, named where it is declared.
 */
#ifndef MIG_BITMAP_H
#define MIG_BITMAP_H

#include <stdint.h>
#include <stdlib.h>

static inline uint64_t *
bitmap_new(uint64_t nbits)
{
	return calloc((nbits + 63) / 64, sizeof(uint64_t));
}

static inline int
bitmap_test(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static inline void
bitmap_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline void
bitmap_clear(uint64_t *b, uint64_t i)
{
	b[i / 64] &= ~((uint64_t)1 << (i % 64));
}

#endif
