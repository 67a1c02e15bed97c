/*
 * faultlat.h: what daemon/bpf/faultlat.bpf.c keeps in its maps, shared with
 * the loader (daemon/latency.c). Histograms are log2 of nanoseconds: bucket
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

struct fl_key {			/* a page in flight */
	unsigned int	mig;
	unsigned int	pad;
	unsigned long long page;
};

struct fl_pending {
	unsigned long long t_fault, t_req, t_rx, posted;
	unsigned int	tid, pad;
};

struct fl_hkey {		/* one histogram: a migration, a thread (0 = all), a phase */
	unsigned int	mig;
	unsigned int	tid;
	unsigned int	phase;
	unsigned int	pad;
};

struct fl_hist {
	unsigned long long count, sum_ns;
	unsigned long long b[FL_BUCKETS];
};

struct fl_wake {		/* a faulting thread whose page just went in */
	unsigned long long t_install;
	unsigned int	mig, pad;
};

#define FL_CTR_FAULTS		0	/* fault probes seen */
#define FL_CTR_ANNOTATED	1	/* kvm_userspace_exit with KVM_EXIT_MEMORY_FAULT */
#define FL_CTR_WAKES		2	/* wake phases measured */
#define FL_CTR_DROPPED		3	/* pending table full */
#define FL_NCTR			4

#endif
