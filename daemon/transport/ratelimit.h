/*
 * ratelimit.h: bandwidth caps on background channels (ratelimit.c), with
 * libevent's rate limiting: one cap per migration (a token bucket on its
 * background channel) and one per daemon ([peer] max_bandwidth, a rate
 * limit group that every background channel this daemon sends on joins,
 * shared fairly between them). The urgent channel is never limited, so a
 * demand page never waits behind a cap. Loop thread only.
 */
#ifndef MIG_RATELIMIT_H
#define MIG_RATELIMIT_H

#include <stdint.h>

struct pconn;

/* A sending background channel: its own cap (0: none), and the daemon's
 * group ([peer] max_bandwidth, made on first use). Again with a new cap when the operator changes it. 0 or -1. */
int rl_apply(struct pconn *c, uint64_t bps);

#endif
