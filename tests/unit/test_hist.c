/*
 * test_hist: the log-linear latency histogram: bucket boundaries are
 * monotonic and invert, quantiles of known distributions land within the
 * bucket resolution.
 */
#include <stdint.h>

#include "hist.h"
#include "unit.h"

int
main(void)
{
	static struct hist h;
	unsigned prev = 0;

	for (uint64_t v = 0; v < 100000; v += 7) {
		unsigned b = hist_bucket(v);

		CHECK(b >= prev);
		CHECK(hist_bucket_low(b) <= v);
		CHECK(b + 1 >= HIST_BUCKETS || hist_bucket_low(b + 1) > v);
		prev = b;
	}
	CHECK(hist_bucket(UINT64_MAX) < HIST_BUCKETS);

	hist_init(&h);
	CHECK_EQ(hist_quantile(&h, 0.5), 0);
	/* 1..1000 us: p50 ~ 500 us, p99 ~ 990 us, within 7%. */
	for (uint64_t us = 1; us <= 1000; us++)
		hist_add(&h, us * 1000);
	CHECK_EQ(h.count, 1000);
	CHECK_EQ(h.min_ns, 1000);
	CHECK_EQ(h.max_ns, 1000000);
	{
		double p50 = (double)hist_quantile(&h, 0.5), p99 = (double)hist_quantile(&h, 0.99);

		CHECK(p50 > 500e3 * 0.93 && p50 < 500e3 * 1.07);
		CHECK(p99 > 990e3 * 0.93 && p99 <= 1000e3);
	}
	CHECK_EQ(hist_quantile(&h, 1.0), 1000000);
	CHECK_EQ(hist_quantile(&h, 0.0), 1000);
	return unit_done("test_hist");
}
