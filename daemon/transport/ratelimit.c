/*
 * ratelimit: bandwidth caps on background channels (ratelimit.h). Token
 * buckets refilled every 10 ms, so the measured rate follows the cap within
 * a few percent over a second; the burst is four ticks' worth (at least
 * 32 KiB, two TLS records), so a slow cap still moves whole frames.
 */
#include <event2/bufferevent.h>
#include <stdlib.h>

#include "log.h"
#include "peer.h"
#include "ratelimit.h"
#include "util.h"

#define RL_TICK_MS	10

static struct bufferevent_rate_limit_group *group;

static struct ev_token_bucket_cfg *
rl_cfg(uint64_t bps)
{
	struct timeval tick = { 0, RL_TICK_MS * 1000 };
	uint64_t per_tick = bps / 8 / (1000 / RL_TICK_MS);
	uint64_t burst = per_tick * 4 > 32768 ? per_tick * 4 : 32768;
	/* Unlimited reads: a cap only slows what this side sends. */
	size_t big = EV_RATE_LIMIT_MAX;

	if (per_tick < 1)
		per_tick = 1;
	if (per_tick > EV_RATE_LIMIT_MAX / 8)
		per_tick = EV_RATE_LIMIT_MAX / 8;
	if (burst > EV_RATE_LIMIT_MAX)
		burst = EV_RATE_LIMIT_MAX;
	return ev_token_bucket_cfg_new(big, big, (size_t)per_tick, (size_t)burst, &tick);
}

/* The daemon's group, made when the first channel joins it. */
static int
rl_group(uint64_t daemon_bps)
{
	struct ev_token_bucket_cfg *cfg;

	if (daemon_bps == 0 || group != NULL)
		return 0;
	/* The group keeps a copy of its configuration (a bufferevent's own
	 * limit does not: see rl_apply). */
	if ((cfg = rl_cfg(daemon_bps)) == NULL ||
	    (group = bufferevent_rate_limit_group_new(D->base, cfg)) == NULL) {
		if (cfg != NULL)
			ev_token_bucket_cfg_free(cfg);
		log_warnx("cannot set up the daemon's bandwidth cap");
		return -1;
	}
	ev_token_bucket_cfg_free(cfg);
	log_info("background channels share %.1f Mbit/s ([peer] max_bandwidth)",
	    (double)daemon_bps / 1e6);
	return 0;
}

int
rl_apply(struct pconn *c, uint64_t bps)
{
	struct ev_token_bucket_cfg *cfg = NULL;
	int rc;

	if (rl_group(D->conf.max_bandwidth) < 0 || (bps != 0 && (cfg = rl_cfg(bps)) == NULL))
		return -1;
	/* libevent keeps a pointer to cfg: the old one goes after the swap. */
	rc = bufferevent_set_rate_limit(c->bev, cfg);
	if (c->rl_cfg != NULL)
		ev_token_bucket_cfg_free(c->rl_cfg);
	c->rl_cfg = cfg;
	if (rc == 0 && group != NULL && !c->rl_grouped)
		c->rl_grouped = (rc = bufferevent_add_to_rate_limit_group(c->bev, group)) == 0;
	return rc;
}
