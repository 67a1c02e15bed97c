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

/* Histogram of a migration (`num`), a thread (0 = all), a phase. 0 or -1. */
int lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out);
/* Threads with their own histograms for a migration; returns how many. */
int lat_threads(uint32_t mig, uint32_t *tids, int max);
uint64_t lat_counter(int i);
/* Value at quantile q of a log2 histogram, ns (bucket middle). */
uint64_t lat_quantile(const struct fl_hist *h, double q);

#endif
