/*
 * latency.h: the eBPF fault-latency source (latency.c). Histograms are the
 * BPF maps' own struct fl_hist (bpf/faultlat.h): log2 buckets of ns.
 */
#ifndef MIG_LATENCY_H
#define MIG_LATENCY_H

#include <stdint.h>

#include "bpf/faultlat.h"

/* Loads and attaches when `enabled` and allowed; 0 also when it did not
 * (lat_status() says why), -1 when loading failed. */
int lat_start(int enabled);
void lat_stop(void);
int lat_active(void);
const char *lat_status(void);

/*
 * Destination migration `mig`'s guest starts: returns its histogram slot
 * (cleared), or -1 without eBPF or when FL_MIGS run at once. The
 * sched_switch program is attached while a slot is held. lat_end() gives
 * it back when the migration ends; its figures stay readable until a later
 * migration takes the slot.
 */
int lat_begin(uint32_t mig);
void lat_end(int slot);

/*
 * Thread `tid` of migration `mig` (its slot from lat_begin) waits on a page
 * that goes in now (t: CLOCK_MONOTONIC ns, taken before the install, as the
 * thread may run on another CPU before the install returns): the
 * sched_switch program times its wake-up.
 */
void lat_arm(int slot, uint32_t mig, uint32_t tid, uint64_t t);

/*
 * One demand fault of migration `mig` whose page went in at t_install
 * (0 fields are unknown). Queued for the BPF programs; a wake-up armed for
 * `tid` and not yet seen is timed from t_install. Cheap: stores only.
 * lat_idle() hands the queue over (one trap) once it is half full: call it
 * after waking the waiters, not between. A no-op without eBPF.
 */
void lat_record(int slot, uint32_t mig, uint32_t tid, uint64_t page, uint64_t posted,
    uint64_t t_fault, uint64_t t_req, uint64_t t_rx, uint64_t t_install);
void lat_idle(void);

/* Histogram of a migration (`num`) and a phase: all threads (tid 0; while
 * its slot is not reused) or one thread (FL_TOTAL only). 0 or -1. */
int lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out);
/* Threads with their own histograms for a migration; returns how many. */
int lat_threads(uint32_t mig, uint32_t *tids, int max);
uint64_t lat_counter(int i);
/* Value at quantile q of a log2 histogram, ns (bucket middle). */
uint64_t lat_quantile(const struct fl_hist *h, double q);

#endif
