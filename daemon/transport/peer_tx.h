/*
 * peer_tx.h: background frames of several streams encrypted at once
 * (peer_tx.c). With libevent's OpenSSL bufferevent every frame queued on a
 * connection is encrypted at once, on the loop thread. A source filling
 * several streams of one migration can instead stage each stream's frames
 * in a buffer of the stream's own (peer_send_frame writes them there while
 * the stream's stage is on) and write all the stages at once, one stream per
 * thread of the daemon's pool (peer_tx_flush). Loop thread only; the pool's
 * threads touch a stage and its TLS session only inside peer_tx_flush.
 */
#ifndef MIG_PEER_TX_H
#define MIG_PEER_TX_H

#include <event2/bufferevent.h>
#include <stddef.h>

#include "frame.h"
#include "migration.h"

struct peer_tx;
struct pool;

/*
 * Bytes a stream stages in one round before the round is written: what a
 * demand request can wait behind at the source stays one stream's 64 KiB
 * (MIG_BG_HIWAT), as with one thread. 256 KiB took about the serial path's
 * source CPU here where 64 KiB takes 15-20% more (a thread wake-up per
 * round), but holds the loop thread four times as long per round
 * (design.md "Background streams").
 */
#define PEER_TX_HIWAT	(64u << 10)
/* Most bytes a stage holds: PEER_TX_HIWAT, and a batch of frames that
 * crossed it (at most MIG_FRAME_MAX_BYTES of pages, a header each). */
#define PEER_TX_STAGE	(PEER_TX_HIWAT + MIG_FRAME_MAX_BYTES + \
			 (MIG_FRAME_MAX_BYTES / 4096) * FRAME_HDR_LEN)

/* An empty stage (PEER_TX_STAGE bytes); NULL without memory. */
struct peer_tx *peer_tx_new(void);
void peer_tx_free(struct peer_tx *tx);
/*
 * tx stages the frames of `bev`'s connection from now until the next
 * peer_tx_flush: 1 if it does; 0 if it cannot (no TLS session, or output
 * still queued there): its frames then go out as always.
 */
int peer_tx_begin(struct peer_tx *tx, struct bufferevent *bev);
/* Whether tx stages now (NULL: no). */
int peer_tx_staging(const struct peer_tx *tx);
/* Bytes staged (0 when not staging). */
size_t peer_tx_len(const struct peer_tx *tx);
/* The next n bytes of the stage, for the caller to fill now; NULL if they
 * do not fit (not from this daemon's callers: a batch fits by
 * PEER_TX_STAGE). */
uint8_t *peer_tx_reserve(struct peer_tx *tx, size_t n);
/*
 * Writes the stages txs[0..n) to their TLS sessions, one stream per thread
 * of p (NULL: on the loop thread), and ends their staging. What a full
 * socket did not take goes to the bufferevent's output whole, which writes
 * it as it would have (*blocked counts those stages). The number of stages
 * written; or -1 if one failed: *failed is its index, peer_tx_why says why,
 * and its connection is lost (the others were written).
 */
int peer_tx_flush(struct pool *p, struct peer_tx **txs, unsigned n, unsigned *blocked,
    unsigned *failed);
const char *peer_tx_why(const struct peer_tx *tx);

#endif
