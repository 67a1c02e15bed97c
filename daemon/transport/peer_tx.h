/*
 * peer_tx.h: background frames of several streams encrypted at once
 * (peer_tx.c). With libevent's OpenSSL bufferevent every frame queued on a
 * connection is encrypted at once, on the loop thread. A source filling
 * several streams of one migration can instead stage each stream's frames
 * (peer_tx_begin: peer_send_frame then appends them to the stream's own
 * buffer) and write all the stages at once, one stream per thread of the
 * daemon's pool (peer_tx_flush). Loop thread only; the pool's threads touch
 * a stream's stage and its TLS session only inside peer_tx_flush.
 */
#ifndef MIG_PEER_TX_H
#define MIG_PEER_TX_H

#include <stddef.h>

#include "peer.h"

struct pool;

/*
 * Bytes a stream stages in one round before the round is written: what a
 * demand request can wait behind at the source stays one stream's
 * MIG_BG_HIWAT, as with one thread. 256 KiB took about the serial path's
 * source CPU here where 64 KiB takes 15-20% more (a thread wake-up per
 * round), but holds the loop thread four times as long per round
 * (design.md "Background streams").
 */
#define PEER_TX_HIWAT	MIG_BG_HIWAT
/* Most bytes a stage holds: PEER_TX_HIWAT, and a batch of frames that
 * crossed it (at most MIG_FRAME_MAX_BYTES of pages, a header each). */
#define PEER_TX_STAGE	(PEER_TX_HIWAT + MIG_FRAME_MAX_BYTES + \
			 (MIG_FRAME_MAX_BYTES / 4096) * FRAME_HDR_LEN)

/* c's stage, made ahead of its first use (peer_tx_begin makes it
 * otherwise). 0, or -1 without memory. */
int peer_tx_alloc(struct pconn *c);
/*
 * c stages its frames from now until the next peer_tx_flush: 1 if it does;
 * 0 if it cannot (no TLS session, a bandwidth cap, which libevent's writer
 * keeps, output still queued, or no memory): its frames then go out as
 * always.
 */
int peer_tx_begin(struct pconn *c);
/* Whether c stages now. */
int peer_tx_staging(const struct pconn *c);
/* Appends one frame to c's stage (peer_send_frame, while staging). */
int peer_tx_add(struct pconn *c, const struct frame_hdr *h, const void *payload);
/* Bytes on their way out of c: its bufferevent's output and its stage. */
size_t peer_queued(const struct pconn *c);
/*
 * Writes the stages of cs[0..n) to their TLS sessions, one stream per
 * thread of p (NULL: on the loop thread), and ends their staging. What a
 * full socket did not take goes to the bufferevent's output whole, which
 * writes it as it would have (*blocked counts those stages). The number
 * of stages written; or -1 after a stream failed: `lost` was called for it
 * and it was closed (and, as with any lost channel, the others of its
 * migration may have been: cs is no longer valid).
 */
int peer_tx_flush(struct pool *p, struct pconn **cs, unsigned n,
    void (*lost)(struct pconn *c, const char *why), unsigned *blocked);
void peer_tx_free(struct pconn *c);

#endif
