/*
 * precopy.h: the source's pre-copy phase (precopy.c), between the
 * destination's Welcome and the switch-over: guest RAM streams on the
 * background channel in rounds while the VM runs, the source VMM's shim
 * tracks what the guest writes, and the switch-over lists the pages the
 * destination holds stale copies of.
 */
#ifndef MIG_PRECOPY_H
#define MIG_PRECOPY_H

#include <event2/event.h>
#include <stdint.h>

#include "migration.h"
#include "policy.h"

enum { PC_TRACK_NONE, PC_TRACK_STARTING, PC_TRACK_ON };

/* A source migration's pre-copy (m->src->pc). */
struct src_pc {
	struct precopy_policy policy;
	int		 tracking;	/* PC_TRACK_* */
	int		 scanning;	/* a TRACK_SCAN is out */
	int		 switching;	/* the VMM was asked to pause */
	int		 used;		/* pages went in pre-copy: VmState lists the stale */
	uint64_t	*precopied;	/* pages sent during pre-copy */
	uint64_t	*resent;	/* ... and sent again since (the destination
					   may hold an earlier copy) */
	struct event	*ev_recovery;	/* link lost in pre-copy: give up at this */
	int64_t		 start_ns, round_ns;
	uint64_t	 round_bytes;	/* bytes_sent when the round started */
	uint64_t	 last_dirty, prev_dirty;	/* pages dirty in the last two rounds */
	struct event	*ev_time;	/* PRECOPY_TIME: switch when it fires */
	struct event	*ev_scan;	/* a round too short: scan a little later */
	int		 window;	/* no pre-copy: tracking only, to learn the hot set */
	int		 announced;	/* Precopy went ahead of the first page */
	uint16_t	*heat;		/* per page: the last round it was written in */
	uint64_t	*hot;		/* post-copy: pages to send first, hottest first */
	uint64_t	 nhot, hot_pos;
};

/* After the Welcome: start pre-copy (1), or 0 if the policy is off. */
int pc_begin(struct migration *m);
/* The background writer may send pre-copy pages now. */
int pc_streaming(const struct migration *m);
/* Before the first pre-copied page, on the background channel `c`: the
 * Precopy message, so that the destination knows every page behind it may
 * be sent again. 0 or -1. */
struct pconn;
int pc_announce(struct migration *m, struct pconn *c);
/* A page goes in pre-copy (counted, remembered). */
void pc_sent(struct migration *m, uint64_t idx);
/* The background writer sent every page of this round. */
void pc_round_end(struct migration *m);
/* The VMM's answer to a tracking request (m->ops->dirty). */
void pc_dirty(struct migration *m, const struct mig_dirty *d);
/* A new round: every unsent page goes (precopy.c). */
void pc_new_round(struct migration *m);
/* precopy_resume.c. The link went down in pre-copy (PAUSED, the VM runs on
 * here): fail the migration if it is not back within [peer] precopy_recovery. */
void pc_lost(struct migration *m);
/* The destination's Resync after a lost link or a restart in pre-copy:
 * pages it holds whose copy may be stale go again; pre-copy goes on. */
void pc_resync(struct migration *m, const uint8_t *installed);
/* After a restart of this daemon in pre-copy: the tracking of the VMM's shim
 * ended with the old daemon, so every page counts as written. -1 (no memory). */
int pc_reattach(struct migration *m);
/* The paused VM's state: 1 if pre-copy sent it (VmState on the background
 * channel with the stale pages), 0 if the caller sends it as usual. -1 on
 * failure (the migration failed). */
int pc_vm_state(struct migration *m, const void *blob, size_t len,
    const struct mig_dirty *final);
/* Post-copy: the next run of hot pages to send first ([*idx, *idx + *n),
 * none sent yet, at most `max`). 0 once the hot list is done. */
int pc_hot_next(struct migration *m, uint32_t max, uint64_t *idx, uint32_t *n);
/* Operator: switch over now (StartPostcopy). -1 with err if not in PRECOPY. */
int pc_postcopy(struct migration *m, char *err, size_t errlen);
/* The migration ended or failed: tracking stops, state freed. */
void pc_stop(struct migration *m);
void pc_release(struct migration *m);

#endif
