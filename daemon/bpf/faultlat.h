/*
 * faultlat.h: what daemon/bpf/faultlat.bpf.c keeps in its maps, shared with
 * the loader (daemon/base/latency.c). Histograms are log2 of nanoseconds: bucket
 * b counts values in [2^b, 2^(b+1)) ns (bucket 0 also holds 0).
 */
#ifndef MIG_FAULTLAT_H
#define MIG_FAULTLAT_H

#define FL_BUCKETS	48

enum fl_phase {
	FL_TOTAL = 0,	/* fault needs a fetch -> page installed */
	FL_QUEUE,	/* VMM posted it (ring) -> request sent; 0 on the uffd path */
	FL_NET,		/* request sent -> page received */
	FL_INSTALL,	/* page received -> installed */
	FL_WAKE,	/* installed -> the faulting thread runs again (sched_switch) */
	FL_NPHASES,
};

/*
 * One demand fault, from its first wait to its install, with the daemon's
 * CLOCK_MONOTONIC timestamps (the clock of bpf_ktime_get_ns()). The daemon
 * fills `recs` in the programs' .bss (mapped into the daemon by the
 * skeleton) and fires the `batch` USDT probe when FL_BATCH are queued or
 * before it reads the maps: one trap per FL_BATCH faults instead of two per
 * fault. 0 = not known (t_req: the request waits for the link; posted: the
 * uffd path).
 */
struct fl_rec {
	unsigned long long page, posted, t_fault, t_req, t_rx, t_install;
	unsigned int	mig, tid;
	unsigned int	slot, pad;	/* slot: of `migs`, named `mig` */
};

#define FL_BATCH	64

struct fl_hkey {		/* a thread's histogram: migration, thread, phase
				 * (FL_TOTAL only) */
	unsigned int	mig;
	unsigned int	tid;
	unsigned int	phase;
	unsigned int	pad;
};

struct fl_hist {
	unsigned long long count, sum_ns;
	unsigned long long b[FL_BUCKETS];
};

/*
 * A migration's phase histograms (all threads), in a slot of `migs` in the
 * .bss: the daemon gives a destination migration a slot no running one
 * holds when its guest starts (lat_begin), clears it and names the
 * migration in `mig`; the programs count only into a slot that names
 * theirs. Per-thread totals are in the `hists` map.
 */
struct fl_mig {
	unsigned int	mig, pad;
	struct fl_hist	h[FL_NPHASES];
};

#define FL_MIGS		64

/*
 * A faulting thread whose page just went in, in `wake[tid % FL_WAKE_SLOTS]`
 * of the .bss: written by the daemon (t_install last), taken by the
 * sched_switch program when `tid` is switched in; emptied when `tid` is
 * switched out first (it ran without sleeping: it spun on its ring slot, or
 * woke before the daemon armed the slot; a thread must be switched out before
 * it can be switched in again, so a stale arm never meets a later switch-in).
 * A second waiter that lands in the same slot before the first runs
 * replaces it (one wake sample lost). Thread ids are those the kernel
 * reports to the daemon, so in a PID namespace of their own no sample
 * matches and the wake phase stays empty.
 */
struct fl_wake {
	unsigned long long t_install;	/* 0: empty */
	unsigned int	mig, tid;
	unsigned int	slot, pad;
};

#define FL_WAKE_SLOTS	1024

#define FL_CTR_FAULTS		0	/* fault records accounted */
#define FL_CTR_ANNOTATED	1	/* kvm_userspace_exit with KVM_EXIT_MEMORY_FAULT */
#define FL_CTR_DROPPED		2	/* records refused (bad batch size,
					 * install before fault) */
#define FL_NCTR			3

#endif
