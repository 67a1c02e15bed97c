/*
 * source_state.h: what only a source-side migration keeps (m->src), shared
 * by the page server (source.c, which owns it) and pre-copy (precopy.c,
 * which reaches the page server only through the two hooks at its end).
 */
#ifndef MIG_SOURCE_STATE_H
#define MIG_SOURCE_STATE_H

#include <event2/event.h>
#include <stdint.h>

#include "migration.h"
#include "precopy.h"

#define MIG_RETRY_MIN_MS	250	/* reconnect back-off, doubling ... */
#define MIG_RETRY_MAX_MS	4000	/* ... up to this */

#define SRC_FOLLOW_BYTES	(4u << 20)	/* streamed after an in-order demand request */

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
	uint64_t	 follow;	/* pages the stream takes from the cursor first */
	int64_t		 pause_ns;
	struct src_pc	 pc;		/* pre-copy (precopy.c) */
	uint64_t	 bg_queued;	/* bytes queued on this background channel */
	int64_t		 rate_t0;	/* measured rate: window start ... */
	uint64_t	 rate_b0;	/* ... and what had left by then */
	/* For precopy.c, which knows the page server only through these: */
	void		(*bg_kick)(struct migration *m);	/* a new round */
	int		(*pause_vm)(struct migration *m);	/* switch over */
	void		(*fail)(struct migration *m, const char *why);	/* FAILED, VM here */
	void		(*redial)(struct migration *m);	/* reconnect now */
};

struct evbuffer;
/* source_ctl.c: the background rate (status), from what left `out` by now. */
void src_bg_rate(struct migration *m, struct evbuffer *out, int64_t now);

#endif
