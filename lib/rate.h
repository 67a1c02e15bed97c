/*
 * rate: a bandwidth as operators write it ("200M", "1G", "500k", "0" or
 * "off" for none), in bits per second (SI: k = 1000). Shared by mig-ctl
 * (--max-bandwidth) and the daemon ([peer] max_bandwidth).
 */
#ifndef MIG_RATE_H
#define MIG_RATE_H

#include <stddef.h>
#include <stdint.h>

#define RATE_MIN_BPS	100000ull		/* 100 kbit/s */
#define RATE_MAX_BPS	1000000000000ull	/* 1 Tbit/s */

/* 0 with *bps (0: no cap), or -1 with `why`. */
int rate_parse(const char *s, uint64_t *bps, char *why, size_t len);

#endif
