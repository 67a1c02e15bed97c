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

struct place;

/* What only a destination-side migration keeps (m->dst). */
struct mig_dst {
	int64_t		 token_expires_ms;
	struct event	*ev_unused;	/* PREPARED: expires unused (prepare_timeout);
					   PAUSED in pre-copy: precopy_recovery */
	int64_t		 state_rx_ns;	/* VmState arrived */
	uint64_t	 stale_early;	/* made missing ahead of the VmState */
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
	uint64_t	*installed;	/* page present in guest RAM (in pages_map) */
	uint64_t	*poisoned;	/* installed as poison (in pages_map) */
	uint64_t	 ninstalled;	/* bits set in installed */
	void		*pages_map;	/* <state_dir>/<id>.pages, MAP_SHARED */
	size_t		 pages_len;
	struct journal	*journal;	/* minor mode: run in flight */
	int		 unsettled;	/* minor mode: a run could not be dropped */
	unsigned	 minor_runs;	/* minor-mode installs ([debug] crash_minor) */
	unsigned	 install_calls;	/* installs ([debug] fail/crash_install) */
	unsigned	 install_retries; /* pages fetched again after an install error */
	/* background frames read into place (place.c), one per stream */
	struct place	*place[MIG_STREAMS_MAX];
};

/*
 * A new incoming migration of `v` with a one-time token (m->token). A
 * PREPARED migration of `v` that no source has used yet is replaced
 * (CANCELLED, its token refused from then on): an orchestrator that lost
 * the token prepares again. One left unused for [daemon] prepare_timeout
 * (or [peer] token_ttl, if shorter) ends FAILED. -1 with err when refused
 * (a record that failed on the way says why).
 */
/* `from`: the only source identity that may spend the token ("" or NULL: any). */
int dst_prepare(struct vm *v, const char *from, struct migration **out, char *err,
    size_t errlen);
int dst_cancel(struct migration *m, char *err, size_t errlen);
/* The first frame of an accepted peer connection (peer_listen's handler). */
int dst_hello(struct pconn *c, const Migrationd__Peer__V1__Hello *h);
/* A record of a destination migration read back after a restart. */
void dst_revive(struct migration *m);

/* dest_wait.c, for dest.c: the prepared migration's wait for its source
 * (-1: no memory); the wait after a loss in pre-copy (session_policy's
 * paused); a restart here during pre-copy: its pages dropped, the source
 * sends them again (-1 with m->reason). */
int dst_unused_arm(struct migration *m);
void dst_precopy_paused(struct migration *m, const char *why, int was_paused);
int dst_precopy_reattach(struct migration *m);
/* dest_wait.c: a resume (session key `key`) that names no running
 * migration: how the one it names ended here, or a refusal. -1: c is gone. */
int dst_resume_ended(struct pconn *c, const ProtobufCBinaryData *key);

#endif
