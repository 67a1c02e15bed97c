/*
 * probes.h: migrationd's USDT probes (provider "migrationd"), one per step
 * of a demand fault on the destination. Each is a nop until a tracer (our
 * own BPF programs in daemon/bpf/, or bpftrace) attaches. Arguments are
 * integers: `mig` is the migration's number in this daemon run (the
 * `probe_id` field of the API), `page` a page index in guest RAM.
 *
 *   fault(mig, tid, page, posted_ns, sent)
 *                                     a fault needs a fetch: the first wait
 *                                     on `page`; tid = faulting thread (0 if
 *                                     unknown), posted_ns = when the VMM
 *                                     posted it to the ring (0: uffd path),
 *                                     sent = its request is already queued
 *                                     (0 while the link is down)
 *   request(mig, page, count)         a request queued again after a link
 *                                     came back (one probe per fault, not
 *                                     two, on the common path)
 *   installed(mig, page, count, rx_ns) pages are in guest RAM (waiters
 *                                     wake); rx_ns = when their frame was
 *                                     read (CLOCK_MONOTONIC). Fired only for
 *                                     runs with a waiter: one trap fewer per
 *                                     fault than a separate `received`
 *   resumed(mig, slot, page, err)     a ring slot was completed
 *   served(mig, page, count, urgent)  source side: pages queued to send
 *   batch(n)                          n fault records (struct fl_rec) are
 *                                     ready in the eBPF object's .bss;
 *                                     fired by daemon/base/latency.c only while
 *                                     its own programs are loaded
 *
 * Our own programs attach to `batch` only: the per-step probes are for
 * tracers like bpftrace, and cost a trap each only while one is attached.
 */
#ifndef MIG_PROBES_H
#define MIG_PROBES_H

#include <sys/sdt.h>

#define PROBE_FAULT(mig, tid, page, posted, sent) \
	DTRACE_PROBE5(migrationd, fault, mig, tid, page, posted, sent)
#define PROBE_REQUEST(mig, page, count) \
	DTRACE_PROBE3(migrationd, request, mig, page, count)
#define PROBE_INSTALLED(mig, page, count, rx_ns) \
	DTRACE_PROBE4(migrationd, installed, mig, page, count, rx_ns)
#define PROBE_RESUMED(mig, slot, page, err) \
	DTRACE_PROBE4(migrationd, resumed, mig, slot, page, err)
#define PROBE_SERVED(mig, page, count, urgent) \
	DTRACE_PROBE4(migrationd, served, mig, page, count, urgent)
#define PROBE_BATCH(n) \
	DTRACE_PROBE1(migrationd, batch, n)

#endif
