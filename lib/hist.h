/*
 * hist: a log-linear latency histogram (16 sub-buckets per power of two,
 * about 6% resolution) of nanosecond values. Fixed size, no allocation, so a
 * migration's fault latency costs the same memory whatever its length. Pure.
 */
#ifndef MIG_HIST_H
#define MIG_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	4
#define HIST_BUCKETS	(61 * (1 << HIST_SUB_BITS))

struct hist {
	uint64_t	count;
	uint64_t	sum_ns;
	uint64_t	min_ns;
	uint64_t	max_ns;
	uint64_t	b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
/* Value at quantile q (0..1), in ns; the bucket's midpoint. 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Bucket index of a value and the lowest value of a bucket (for tests). */
unsigned hist_bucket(uint64_t ns);
uint64_t hist_bucket_low(unsigned b);

#endif
