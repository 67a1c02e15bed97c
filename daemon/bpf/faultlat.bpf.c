// SPDX-License-Identifier: GPL-2.0
/*
 * faultlat.bpf.c: demand-fault latency of migrationd, aggregated in the kernel.
 * The daemon hands over its faults in batches (the `batch` USDT probe, with
 * records in this object's .bss: struct fl_rec); the sched_switch BTF
 * tracepoint times each faulting thread's wake-up itself; the
 * kvm_userspace_exit raw tracepoint counts annotated memory-fault exits.
 * Results are log2 histograms: per migration and phase in .bss slots
 * (struct fl_mig), per faulting thread (total) in the `hists` map, read by
 * daemon/base/latency.c.
 *
 * Why batches: a USDT probe is a trap (0.4-0.7 us here), and every
 * microsecond the daemon spends per fault adds 10-15 us to p50 when eight
 * threads queue on it. Per-step probes cost 35% of p50 that way; one trap
 * per FL_BATCH faults costs nothing measurable.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "faultlat.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader: the daemon whose records these are, as its own PID
 * namespace (dev, inode of /proc/self/ns/pid) numbers it. */
const volatile unsigned int daemon_tgid = 0;
const volatile unsigned long long pidns_dev = 0, pidns_ino = 0;

/* Shared with the daemon through the skeleton's mapping of .bss. */
struct fl_rec recs[FL_BATCH];
struct fl_wake wake[FL_WAKE_SLOTS];
struct fl_mig migs[FL_MIGS];

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fl_hkey);
	__type(value, struct fl_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FL_NCTR);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static __always_inline void
ctr_inc(u32 i)
{
	u64 *v = bpf_map_lookup_elem(&counters, &i);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline u32
log2_bucket(u64 v)
{
	u32 b = 0;

	/* Unrolled binary search: the verifier wants bounded code. */
	if (v >> 32) { v >>= 32; b += 32; }
	if (v >> 16) { v >>= 16; b += 16; }
	if (v >> 8) { v >>= 8; b += 8; }
	if (v >> 4) { v >>= 4; b += 4; }
	if (v >> 2) { v >>= 2; b += 2; }
	if (v >> 1) { b += 1; }
	return b < FL_BUCKETS ? b : FL_BUCKETS - 1;
}

static struct fl_hist zero_hist;

/* Counts ns into h. Batch records have one writer at a time (the daemon's
 * loop thread fires `batch`): plain adds. */
static __always_inline void
hist_put(struct fl_hist *h, u64 ns)
{
	u32 b = log2_bucket(ns);

	h->count++;
	h->sum_ns += ns;
	if (b < FL_BUCKETS)
		h->b[b]++;
}

/* Into a migration's histogram of a phase, if the slot is its own. */
static __always_inline void
mig_put(u32 slot, u32 mig, u32 phase, u64 ns)
{
	struct fl_mig *x = &migs[slot & (FL_MIGS - 1)];

	if (x->mig == mig && phase < FL_NPHASES)
		hist_put(&x->h[phase], ns);
}

/* Global (not inlined): verified once, not per call site. */
__noinline int
thread_total(u32 mig, u32 tid, u64 ns)
{
	struct fl_hkey k = { .mig = mig, .tid = tid, .phase = FL_TOTAL };
	struct fl_hist *h = bpf_map_lookup_elem(&hists, &k);

	if (!h) {
		bpf_map_update_elem(&hists, &k, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &k);
		if (!h)
			return 0;
	}
	hist_put(h, ns);
	return 0;
}

/* Record i of the batch: every phase of one fault. */
__noinline int
account(u32 i)
{
	struct fl_rec *r;
	u64 total, req, rx;
	u32 mig, tid, slot;

	if (i >= FL_BATCH)
		return 0;
	r = &recs[i];
	mig = r->mig;
	tid = r->tid;
	slot = r->slot;
	req = r->t_req;
	rx = r->t_rx;
	if (r->t_install < r->t_fault) {
		ctr_inc(FL_CTR_DROPPED);
		return 0;
	}
	ctr_inc(FL_CTR_FAULTS);
	total = r->t_install - r->t_fault;
	mig_put(slot, mig, FL_TOTAL, total);
	if (tid)	/* per thread: the total only (what the API shows) */
		thread_total(mig, tid, total);
	if (r->posted && req > r->posted)
		mig_put(slot, mig, FL_QUEUE, req - r->posted);
	else if (req >= r->t_fault)
		mig_put(slot, mig, FL_QUEUE, req - r->t_fault);
	if (req && rx >= req && rx <= r->t_install) {
		mig_put(slot, mig, FL_NET, rx - req);
		mig_put(slot, mig, FL_INSTALL, r->t_install - rx);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(on_batch, u32 n)
{
	struct bpf_pidns_info ns;

	/* Attached to the binary, not to our process: another daemon running
	 * it fires this too, with its own records. */
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) != 0 ||
	    ns.tgid != daemon_tgid)
		return 0;
	if (n > FL_BATCH) {
		ctr_inc(FL_CTR_DROPPED);
		return 0;
	}
	for (u32 i = 0; i < FL_BATCH; i++) {
		if (i >= n)
			break;
		account(i);
	}
	return 0;
}

/*
 * Tracepoints: attached by name (raw_tp) or BTF id (tp_btf), without tracefs
 * (which a daemon in its own mount namespace, e.g. under `ip netns exec`,
 * may not have).
 */

/* A faulting thread that slept in the kernel runs again: its wake-up time. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = prev->pid;	/* BTF-typed: loads, not helper calls */
	struct fl_wake *w = &wake[tid & (FL_WAKE_SLOTS - 1)];
	u64 t = w->t_install, now;
	struct fl_mig *x;
	u32 mig, b;

	/* Armed for a thread that runs now: it did not sleep until this
	 * install (it spun, or woke first); its wake-up is not measured. */
	if (t != 0 && w->tid == tid)
		__sync_val_compare_and_swap(&w->t_install, t, 0);
	tid = next->pid;
	w = &wake[tid & (FL_WAKE_SLOTS - 1)];
	t = w->t_install;
	if (t == 0)
		return 0;
	/* The daemon stores t_install last: tid, mig and slot belong to it. */
	barrier();
	if (w->tid != tid)
		return 0;
	mig = w->mig;
	x = &migs[w->slot & (FL_MIGS - 1)];
	if (__sync_val_compare_and_swap(&w->t_install, t, 0) != t)
		return 0;	/* re-armed meanwhile: the next switch takes it */
	now = bpf_ktime_get_ns();
	/* Only a wake-up that follows the install closely belongs to it. */
	if (now <= t || now - t >= 100000000ull || x->mig != mig)
		return 0;
	/* Any CPU switches: atomic adds. */
	b = log2_bucket(now - t);
	__sync_fetch_and_add(&x->h[FL_WAKE].count, 1);
	__sync_fetch_and_add(&x->h[FL_WAKE].sum_ns, now - t);
	if (b < FL_BUCKETS)
		__sync_fetch_and_add(&x->h[FL_WAKE].b[b], 1);
	return 0;
}

/* Annotated memory-fault exits (KVM_EXIT_MEMORY_FAULT) as vCPUs see them. */
SEC("raw_tp/kvm_userspace_exit")
int BPF_PROG(on_kvm_exit, u32 reason, int err)
{
	if (reason == 39)
		ctr_inc(FL_CTR_ANNOTATED);
	return 0;
}
