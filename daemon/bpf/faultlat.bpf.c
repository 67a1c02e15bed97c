// SPDX-License-Identifier: GPL-2.0
/*
 * faultlat.bpf.c: demand-fault latency of migrationd, measured in the kernel.
 * USDT probes in the daemon (daemon/probes.h) time each step of a fetch; the
 * sched_switch raw tracepoint times the faulting thread's wake-up; the
 * kvm_userspace_exit raw tracepoint counts annotated memory-fault exits. Results
 * are log2 histograms in BPF maps, per migration and per faulting thread,
 * read by daemon/latency.c.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "faultlat.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_key);
	__type(value, struct fl_pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fl_hkey);
	__type(value, struct fl_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct fl_wake);
} waking SEC(".maps");

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

/* Global (not inlined) functions are verified once, not per call site:
 * that keeps the per-page loops below within the verifier's budget. */
__noinline int
hist_add(u32 mig, u32 tid, u32 phase, u64 ns)
{
	struct fl_hkey k = { .mig = mig, .tid = tid, .phase = phase };
	struct fl_hist *h = bpf_map_lookup_elem(&hists, &k);
	u32 b;

	if (!h) {
		bpf_map_update_elem(&hists, &k, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &k);
		if (!h)
			return 0;
	}
	b = log2_bucket(ns);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	if (b < FL_BUCKETS)
		__sync_fetch_and_add(&h->b[b], 1);
	return 0;
}

static __always_inline void
hist_both(u32 mig, u32 tid, u32 phase, u64 ns)
{
	hist_add(mig, 0, phase, ns);
	if (tid)
		hist_add(mig, tid, phase, ns);
}

SEC("usdt")
int BPF_USDT(on_fault, u32 mig, u32 tid, u64 page, u64 posted, u32 sent)
{
	struct fl_key k = { .mig = mig, .page = page };
	u64 now = bpf_ktime_get_ns();
	struct fl_pending p = { .t_fault = now, .t_req = sent ? now : 0, .tid = tid,
	    .posted = posted };

	ctr_inc(FL_CTR_FAULTS);
	if (bpf_map_update_elem(&pending, &k, &p, BPF_NOEXIST) != 0)
		ctr_inc(FL_CTR_DROPPED);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_request, u32 mig, u64 page, u32 count)
{
	struct fl_key k = { .mig = mig, .page = page };
	struct fl_pending *p = bpf_map_lookup_elem(&pending, &k);

	if (p && !p->t_req)
		p->t_req = bpf_ktime_get_ns();
	return 0;
}

/* One installed page: if a fault waited on it, record every phase. */
__noinline int
account(u32 mig, u64 page, u64 now, u64 rx)
{
	struct fl_key k = { .mig = mig, .page = page };
	struct fl_pending *p = bpf_map_lookup_elem(&pending, &k);
	struct fl_wake w = {};
	u32 tid;

	if (!p)
		return 0;
	tid = p->tid;
	if (p->t_req && !p->t_rx && rx >= p->t_req && rx <= now)
		p->t_rx = rx;
	hist_both(mig, tid, FL_TOTAL, now - p->t_fault);
	if (p->posted && p->t_req > p->posted)
		hist_both(mig, tid, FL_QUEUE, p->t_req - p->posted);
	else if (p->t_req)
		hist_both(mig, tid, FL_QUEUE, p->t_req - p->t_fault);
	if (p->t_req && p->t_rx) {
		hist_both(mig, tid, FL_NET, p->t_rx - p->t_req);
		hist_both(mig, tid, FL_INSTALL, now - p->t_rx);
	}
	if (tid) {
		w.t_install = now;
		w.mig = mig;
		bpf_map_update_elem(&waking, &tid, &w, BPF_ANY);
	}
	bpf_map_delete_elem(&pending, &k);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_installed, u32 mig, u64 page, u32 count, u64 rx)
{
	u64 now = bpf_ktime_get_ns();

	for (u32 i = 0; i < 16; i++) {
		if (i >= count)
			break;
		account(mig, page + i, now, rx);
	}
	return 0;
}

/*
 * Raw tracepoints: attached by name, without tracefs (which a daemon in its
 * own mount namespace, e.g. under `ip netns exec`, may not have).
 */

/* A faulting thread that slept in the kernel runs again: its wake-up time. */
SEC("raw_tp/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid = BPF_CORE_READ(next, pid);
	struct fl_wake *w = bpf_map_lookup_elem(&waking, &tid);
	u64 now;

	if (!w)
		return 0;
	now = bpf_ktime_get_ns();
	/* Only a wake-up that follows the install closely belongs to it. */
	if (now - w->t_install < 100000000ull) {
		hist_both(w->mig, tid, FL_WAKE, now - w->t_install);
		ctr_inc(FL_CTR_WAKES);
	}
	bpf_map_delete_elem(&waking, &tid);
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
