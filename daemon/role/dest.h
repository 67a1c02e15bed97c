/*
 * dest.h: the destination role. dest.c is its session (prepare, the
 * source's Hello, resume after a lost link, hand-off to the VMM, complete,
 * cancel); fault.c its fault engine (uffd and ring intake, one request per
 * page, prefetch, the pending table, delivery of received pages to their
 * waiters); install.c its installer (the install ioctls, minor-mode
 * staging and journal, the installed set after a restart).
 */
#ifndef MIG_DEST_H
#define MIG_DEST_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "migration.h"
#include "peer.pb-c.h"

struct journal;
struct pconn;
struct vm;

/* A demand fault in flight: a page somebody waits on. */
struct pending {
	uint64_t	 idx;
	uint64_t	 t0_ns;		/* first wait (request queued) */
	uint64_t	 slots;		/* ring slots waiting on it */
	uint64_t	 req_ns;	/* request sent; 0: link down */
	uint64_t	 posted_ns;	/* VMM posted it (ring); 0: uffd */
	uint32_t	 tid;		/* first faulting thread; 0: unknown */
};

/* What only a destination-side migration keeps (m->dst). */
struct mig_dst {
	char		 token[65];	/* empty once used */
	int64_t		 token_expires_ms;
	int64_t		 state_rx_ns;	/* VmState arrived */
	/* fault engine */
	uint64_t	*requested;	/* page asked for on urgent */
	struct event	*ev_uffd;
	struct event	*ev_doorbell;
	struct event	*ev_turn;	/* re-arms parked events (fault.c) */
	int		 parked;	/* FAULT_PARK_* of events waiting for it */
	unsigned	 idle;		/* idle fault callbacks in a row */
	uint32_t	 prefetch;	/* pages asked for after a fault */
	uint64_t	 last_fault_end; /* first page after the last request */
	struct pending	*pending;	/* demand faults in flight */
	unsigned	 npending, maxpending;
	/* installer */
	uint64_t	*installed;	/* page present in guest RAM */
	uint64_t	*poisoned;	/* installed as poison (lazily made) */
	struct journal	*journal;	/* minor mode: run in flight */
	unsigned	 minor_runs;	/* minor-mode installs ([debug] crash_minor) */
};

/*
 * A new incoming migration of `v` with a one-time token (m->dst->token).
 * -1 with err when refused (a record that failed on the way says why).
 */
int dst_prepare(struct vm *v, struct migration **out, char *err, size_t errlen);
int dst_cancel(struct migration *m, char *err, size_t errlen);
/* The first frame of an accepted peer connection (peer_listen's handler). */
int dst_hello(struct pconn *c, const Migrationd__Peer__V1__Hello *h);
/* A record of a destination migration read back after a restart. */
void dst_revive(struct migration *m);

#endif
