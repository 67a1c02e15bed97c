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

struct pool;

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
	uint64_t	 bg_queued;	/* bytes queued on the background streams */
	uint64_t	 stream_pages[MIG_STREAMS_MAX]; /* pages each stream queued */
	struct pool	*tx_pool;	/* the workers that write its streams (NULL: none) */
	uint64_t	 tx_rounds;	/* stages of 2+ streams written at once (peer_tx.c) */
	unsigned	 tx_stages;	/* stages written (peer_tx.c), one stream or more */
	unsigned	 tx_blocked;	/* of their stages, those a full socket left */
	uint32_t	 tx_first;	/* the stream a round of them fills first */
	int64_t		 rate_t0;	/* measured rate: window start ... */
	uint64_t	 rate_b0;	/* ... and what had left by then */
	/* For precopy.c, which knows the page server only through these: */
	void		(*bg_kick)(struct migration *m);	/* a new round */
	int		(*pause_vm)(struct migration *m);	/* switch over */
	void		(*fail)(struct migration *m, const char *why);	/* FAILED, VM here */
	void		(*redial)(struct migration *m);	/* reconnect now */
};

/*
 * source_send.c: queues pages [start, start+n) on c (the urgent channel for
 * a demand request) and marks them sent. -1 if guest RAM cannot be read or
 * the channel takes no more.
 */
int src_send_pages(struct migration *m, struct pconn *c, uint64_t start, uint32_t n,
    int demand);
/* The pages a background batch takes at most (cz_batch frames). */
uint32_t src_batch_pages(struct migration *m);

/* source_streams.c: the background rate (status), from what left the
 * background streams' output by now. */
void src_bg_rate(struct migration *m, int64_t now);
/* Each stream's share of the migration's cap (bits/s, 0: none), so that
 * all of them together keep to it. */
uint64_t src_stream_cap(const struct migration *m);
/* The streams to use (m->st.streams): those wanted, at most peer_max (the
 * Welcome's max_streams; 0, an older destination: 1). */
void src_streams(struct migration *m, uint32_t peer_max);
/* Kicks every stream's background writer. */
void src_bg_kick(struct migration *m);
/* Dials every stream to m->peer_addr. -1 if one cannot be opened. */
int src_dial_bg(struct migration *m);
/* The completion log line, with the pages each stream queued. */
void src_log_done(const struct migration *m);
/* A stream that cannot go on (src_bg_queue), and why. */
struct src_bg_loss {
	struct pconn	*c;
	char		 why[200];
};
/* source_send.c: queues background pages for one slice begun at t0 on
 * stream c, or with parallel encryption on every stream of m (c among
 * them). 0; 1 when the slice is over (c yields); -1 when a stream cannot
 * go on: *lost says which and why, and the caller loses it. */
int src_bg_queue(struct pconn *c, struct migration *m, int64_t t0, int64_t *t_check,
    struct src_bg_loss *lost);
/* Stream c stages its frames until the next peer_tx_flush (peer_tx.h): 1;
 * 0 if it cannot (capped, closing, no TLS, output queued, no memory). */
int src_stage(struct pconn *c);
/* Bytes on their way out of c: its bufferevent's output and its stage. */
size_t src_queued(const struct pconn *c);

#endif
