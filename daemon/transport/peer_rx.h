/*
 * peer_rx.h: background page frames read straight into place (peer_rx.c).
 * Once peer.c has checked a raw PAGES frame's header, the payload is read
 * from the TLS session into where the role says it goes (its staging
 * buffer, or guest RAM itself) instead of into the bufferevent's buffer and
 * copied from there. Loop thread only.
 */
#ifndef MIG_PEER_RX_H
#define MIG_PEER_RX_H

#include <event2/bufferevent.h>
#include <stdint.h>

#include "frame.h"
#include "migration.h"

struct peer_rx;

/* What peer.c does for its connection (no call back up into peer.c). */
struct peer_rx_ops {
	/* `c` failed: its migration is told, `c` is freed. */
	void	(*lost)(struct pconn *c, const char *why);
	/* The bulk slice began at t0 is over (peer_bulk_turn_over). */
	int	(*turn_over)(struct migration *m, int64_t t0, int64_t *t_check);
	/* Read what is buffered on `c` again, after the loop looked for faults. */
	void	(*more)(struct pconn *c);
	int	stall_ms;	/* mid-payload silence that loses the connection */
};

/* For connection `c`, whose frame limits are *lim. */
struct peer_rx *peer_rx_new(struct pconn *c, const struct frame_limits *lim,
    const struct peer_rx_ops *ops);
/*
 * The frame `h` (header checked, FRAME_HDR_LEN bytes of it at the head of
 * bev's input) on m's background channel. 0: not for this path (the caller
 * reads it from its buffer); 1: taken (its payload is being read, or the
 * connection is gone: the caller returns); 2: taken and handled whole (the
 * caller goes on with its buffer).
 */
int peer_rx_take(struct peer_rx *rx, struct bufferevent *bev, struct migration *m,
    const struct frame_hdr *h);
/* Its connection leaves m: a frame half read is dropped (m->ops->rx_end) and
 * reading goes back to the bufferevent. */
void peer_rx_stop(struct peer_rx *rx, struct migration *m);
void peer_rx_free(struct peer_rx *rx);

#endif
