/*
 * unit.h: a tiny assert-by-default test harness for the pure modules.
 * CHECK() prints the expression, file:line and the values, counts the
 * failure and goes on; unit_done() prints "N passed, N failed" and returns
 * the exit code.
 */
#ifndef MIG_UNIT_H
#define MIG_UNIT_H

#include <stdio.h>

static int unit_pass, unit_fail;

#define CHECK(cond) do {						\
	if (cond) unit_pass++;						\
	else { unit_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n",	\
	    __FILE__, __LINE__, #cond); }				\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a == _b) unit_pass++;					\
	else { unit_fail++; fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s " \
	    "(%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, _a, _b); }	\
} while (0)

static inline int
unit_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}

#endif
