/*
 * hist: log-linear histogram. Values below 16 have a bucket each; above, a
 * value with its top bit at position m lands in one of 16 buckets of
 * [2^m, 2^(m+1)) chosen by the next four bits.
 */
#include <string.h>

#include "hist.h"

#define SUB (1u << HIST_SUB_BITS)

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned
hist_bucket(uint64_t v)
{
	unsigned msb, shift;

	if (v < SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * SUB + (unsigned)((v >> shift) & (SUB - 1));
}

uint64_t
hist_bucket_low(unsigned b)
{
	unsigned shift;

	if (b < SUB)
		return b;
	shift = b / SUB - 1;
	return ((uint64_t)SUB | (b % SUB)) << shift;
}

void
hist_add(struct hist *h, uint64_t ns)
{
	unsigned b = hist_bucket(ns);

	if (b >= HIST_BUCKETS)
		b = HIST_BUCKETS - 1;
	h->b[b]++;
	if (h->count == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min_ns;
	if (q >= 1)
		return h->max_ns;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->b[b];
		if (seen > rank) {
			uint64_t lo = hist_bucket_low(b);
			uint64_t hi = b + 1 < HIST_BUCKETS ? hist_bucket_low(b + 1) : lo;
			uint64_t mid = lo + (hi - lo) / 2;

			/* Never report beyond what was seen. */
			if (mid > h->max_ns)
				mid = h->max_ns;
			if (mid < h->min_ns)
				mid = h->min_ns;
			return mid;
		}
	}
	return h->max_ns;
}
