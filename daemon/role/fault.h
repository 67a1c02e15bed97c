/*
 * fault.h: the destination's fault engine (fault.c), below its session and
 * above its installer. Owns the VM's uffd and doorbell events while the
 * guest runs here.
 */
#ifndef MIG_FAULT_H
#define MIG_FAULT_H

#include <poll.h>
#include <stdint.h>

#include "frame.h"
#include "migration.h"

/* The fault tables (requested pages, pending faults) of a new or
 * re-attached destination. -1: no memory. */
int fault_init(struct migration *m);
/* The guest may fault from now on: read its uffd and ring doorbell.
 * `rescan`: slots an earlier daemon took are served again. -1: no memory. */
int fault_start(struct migration *m, int rescan);
void fault_release(struct migration *m);
/* Installs a received PAGES frame and wakes who waits on it; pages that
 * fail to install are fetched again. -1 (why in m->reason) when that is no
 * use any more. */
int fault_deliver(struct migration *m, const struct frame_hdr *h, const uint8_t *p,
    int demand);
/* Asks again for every page a thread waits on that is not installed. */
void fault_rerequest(struct migration *m);
/* Asks for every page that is not installed (inst_missing found some). */
void fault_refetch_missing(struct migration *m);
/* After a restart: every thread waiting in the kernel faults again. */
void fault_wake_all(struct migration *m);
/* Every page is present: every ring slot still posted or taken is done. */
void fault_release_slots(struct migration *m);
/* The uffd and doorbell, for peer_fault_ready (m->ops->fault_fds). */
int fault_poll_fds(struct migration *m, struct pollfd *p, int max);

#endif
