/*
 * test_policy: the pre-copy policy (daemon/base/policy.c) and bandwidth
 * (lib/rate.c) parsers: what operators write is taken, everything else is
 * refused with a reason.
 */
#include <stdint.h>
#include <string.h>

#include "policy.h"
#include "rate.h"
#include "unit.h"

int
main(void)
{
	static const char *bad_policy[] = { "", "sometimes", "0", "-1", "1001", "3x", "5h",
	    "61m", "0s", "1.5", " 3", "auto ", "ms" };
	static const char *bad_rate[] = { "", "fast", "10", "5T", "-1M", "1.5X", "99999",
	    "1001G", "M" };
	struct precopy_policy p;
	char why[200], name[32];
	uint64_t bps;

	CHECK_EQ(precopy_parse("off", &p, why, sizeof(why)), 0);
	CHECK_EQ(p.mode, PRECOPY_OFF);
	CHECK_EQ(precopy_parse("auto", &p, why, sizeof(why)), 0);
	CHECK_EQ(p.mode, PRECOPY_AUTO);
	CHECK_EQ(precopy_parse("3", &p, why, sizeof(why)), 0);
	CHECK(p.mode == PRECOPY_ROUNDS && p.rounds == 3);
	CHECK_EQ(precopy_parse("1000", &p, why, sizeof(why)), 0);
	CHECK_EQ(precopy_parse("500ms", &p, why, sizeof(why)), 0);
	CHECK(p.mode == PRECOPY_TIME && p.ms == 500);
	CHECK_EQ(precopy_parse("30s", &p, why, sizeof(why)), 0);
	CHECK_EQ(p.ms, 30000);
	CHECK_EQ(precopy_parse("60m", &p, why, sizeof(why)), 0);
	CHECK_EQ(p.ms, 3600000);
	precopy_name(&p, name, sizeof(name));
	CHECK(strcmp(name, "3600s") == 0);
	for (size_t i = 0; i < sizeof(bad_policy) / sizeof(bad_policy[0]); i++) {
		why[0] = '\0';
		CHECK_EQ(precopy_parse(bad_policy[i], &p, why, sizeof(why)), -1);
		CHECK(strstr(why, "is not off, auto, a number of rounds") != NULL);
	}

	CHECK(rate_parse("off", &bps, why, sizeof(why)) == 0 && bps == 0);
	CHECK(rate_parse("0", &bps, why, sizeof(why)) == 0 && bps == 0);
	CHECK(rate_parse("200M", &bps, why, sizeof(why)) == 0 && bps == 200000000);
	CHECK(rate_parse("1.5G", &bps, why, sizeof(why)) == 0 && bps == 1500000000);
	CHECK(rate_parse("100k", &bps, why, sizeof(why)) == 0 && bps == 100000);
	CHECK(rate_parse("500Mbit", &bps, why, sizeof(why)) == 0 && bps == 500000000);
	CHECK(rate_parse("1000G", &bps, why, sizeof(why)) == 0);
	for (size_t i = 0; i < sizeof(bad_rate) / sizeof(bad_rate[0]); i++) {
		why[0] = '\0';
		CHECK_EQ(rate_parse(bad_rate[i], &bps, why, sizeof(why)), -1);
		CHECK(strstr(why, "is not off or a rate") != NULL);
	}
	return unit_done("test_policy");
}
