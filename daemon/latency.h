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

/* Destination migration `mig` begins (+1: its histograms start empty) or
 * ends (-1). The sched_switch program is attached while there is one. */
void lat_watch(uint32_t mig, int delta);

/*
 * One demand fault of migration `mig` whose page went in at t_install (ns,
 * CLOCK_MONOTONIC; 0 fields are unknown). Queued for the BPF programs, and
 * thread `tid` is armed for the wake-up measurement. Cheap: stores only, and
 * one trap per FL_BATCH records. A no-op without eBPF.
 */
void lat_record(uint32_t mig, uint32_t tid, uint64_t page, uint64_t posted,
    uint64_t t_fault, uint64_t t_req, uint64_t t_rx, uint64_t t_install);

/*
 * Thread `tid` faults again: a wake-up still armed for it is not going to
 * happen (it did not sleep: it spun, or found its page), and its next
 * switch-in belongs to this new fault.
 */
void lat_unarm(uint32_t tid);

/* Histogram of a migration (`num`) and a phase: all threads (tid 0; kept for
 * the FL_MIGS most recent destination migrations) or one thread (FL_TOTAL
 * only). 0 or -1. */
int lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out);
/* Threads with their own histograms for a migration; returns how many. */
int lat_threads(uint32_t mig, uint32_t *tids, int max);
uint64_t lat_counter(int i);
/* Value at quantile q of a log2 histogram, ns (bucket middle). */
uint64_t lat_quantile(const struct fl_hist *h, double q);

#endif
