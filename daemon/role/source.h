/*
 * source.h: the source role, the page server (source.c).
 */
#ifndef MIG_SOURCE_H
#define MIG_SOURCE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "migration.h"
#include "policy.h"
#include "precopy.h"

#define MIG_RETRY_MIN_MS	250	/* reconnect back-off, doubling ... */
#define MIG_RETRY_MAX_MS	4000	/* ... up to this */

struct pconn;
struct vm;

/* What only a source-side migration keeps (m->src). */
struct mig_src {
	char		 token[65];	/* until the Hello carries it */
	struct event	*ev_retry;	/* reconnect timer while PAUSED */
	uint32_t	 retry_ms;
	int		 resuming;	/* urgent reconnected, waiting Resync */
	int		 held;		/* paused by the operator: no reconnect */
	int		 memfd;		/* guest RAM (dup), -1 when closed */
	uint64_t	*sent;		/* page sent on either channel */
	uint64_t	 nsent;
	uint64_t	 bg_cursor;
	int64_t		 pause_ns;
	struct src_pc	 pc;		/* pre-copy (precopy.c) */
	uint64_t	 bg_queued;	/* bytes queued on this background channel */
	int64_t		 rate_t0;	/* measured rate: window start ... */
	uint64_t	 rate_b0;	/* ... and what had left by then */
};

/* Starts migrating `v` to `dest`. -1 with err when refused; 0 with *out
 * set otherwise (the migration may already have failed: see its state). */
int src_start(struct vm *v, const char *dest, const char *token,
    const struct precopy_policy *pc, uint64_t bps, struct migration **out, char *err,
    size_t errlen);
/* The switch-over begins: the VMM pauses, the state follows (BLACKOUT). */
int src_pause_vm(struct migration *m);
/* A new cap on the background stream (bits/s, 0: none), at once. */
int src_set_bandwidth(struct migration *m, uint64_t bps, char *err, size_t errlen);
/* Kick the background writer (pre-copy: a new round). */
void src_bg_kick(struct migration *m);
int src_recover(struct migration *m, const char *dest, char *err, size_t errlen);
int src_pause(struct migration *m, char *err, size_t errlen);
int src_cancel(struct migration *m, char *err, size_t errlen);
/* A record of a source migration read back after a restart. */
void src_revive(struct migration *m);


#endif
