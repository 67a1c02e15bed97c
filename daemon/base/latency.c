/*
 * latency: demand-fault latency aggregated in the kernel. Loads the BPF
 * programs of daemon/bpf/faultlat.bpf.c (libbpf skeleton), attaches them to
 * this daemon's own `batch` USDT probe (probes.h) and to the sched_switch and
 * kvm_userspace_exit tracepoints, hands them fault records in batches
 * through their .bss, and reads their log2 histograms (per migration, per
 * faulting thread, per phase) for the API and the metrics endpoint. Without CAP_BPF/CAP_PERFMON (or root), without BPF support at
 * build time, or with `[bpf] enabled = no`, the daemon keeps its user-space
 * timestamps and lat_status() says why. Loop thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "latency.h"
#include "log.h"
#include "util.h"
#include "probes.h"

static char lat_why[256] = "not started";
static int lat_on;

const char *
lat_status(void)
{
	return lat_why;
}

int
lat_active(void)
{
	return lat_on;
}

uint64_t
lat_quantile(const struct fl_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (int b = 0; b < FL_BUCKETS; b++) {
		seen += h->b[b];
		if (seen > rank)	/* the middle of [2^b, 2^(b+1)) */
			return b == 0 ? 1 : (3ull << b) / 2;
	}
	return 0;
}

#ifdef MIG_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "faultlat.skel.h"

static struct faultlat_bpf *skel;
static struct bpf_link *batch_link;	/* not in the skeleton: ours to destroy */
static unsigned nrecs;			/* records queued in skel->bss->recs */
static int watchers;			/* slots held (lat_begin) */
static unsigned char held[FL_MIGS];	/* slot of a running migration */
static unsigned next_slot;		/* where the search for a free one starts */

static int
lat_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("libbpf: %s", buf);
	return 0;
}

/* Root, or CAP_BPF and CAP_PERFMON in the effective set. */
/* Capability bits (linux/capability.h numbering; the 6.1 headers have all three). */
#define LAT_CAP_SYS_ADMIN 21
#define LAT_CAP_PERFMON 38
#define LAT_CAP_BPF 39
#define LAT_CAP_HAS(d, c) ((d)[(c) / 32].effective & (1u << ((c) % 32)))

/*
 * What this process lacks for the programs ("" if nothing): CAP_SYS_ADMIN,
 * which this kernel's uprobe perf PMU asks for to place the USDT probe's
 * uprobe (and which covers loading and attaching the tracing programs), or
 * at least CAP_BPF and CAP_PERFMON for a kernel whose uprobes accept those.
 * Root without them (as in a unit with an empty bounding set) is tried
 * anyway: the kernel's answer is then the reason given.
 */
static const char *
lat_missing_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (geteuid() == 0)
		return "";
	if (syscall(SYS_capget, &h, d) == 0 && (LAT_CAP_HAS(d, LAT_CAP_SYS_ADMIN) ||
	    (LAT_CAP_HAS(d, LAT_CAP_BPF) && LAT_CAP_HAS(d, LAT_CAP_PERFMON))))
		return "";
	return "CAP_SYS_ADMIN";
}

/*
 * Once the probes are attached a daemon that is not root drops every
 * capability for good (effective, permitted, inheritable and so ambient):
 * sched_switch, attached and detached per migration, and the maps (mapped
 * into this process) need none. Root keeps what it has.
 */
static void
lat_drop_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };

	if (geteuid() == 0)
		return;
	if (syscall(SYS_capset, &h, d) < 0)
		log_warn("fault latency: dropping capabilities");
	else
		log_debug("fault latency: probes attached; capabilities dropped");
}

/*
 * Hands the queued records to the programs: one trap (~0.5 us here) and
 * ~50 ns of their work per record, when the batch is full or before a read.
 */
static void
lat_flush(void)
{
	uint32_t n = nrecs;	/* a register or stack operand: libbpf
				 * 1.1 cannot read a %rip-relative one */

	if (n == 0)
		return;
	/* The probe's asm clobbers no memory: keep the compiler from moving
	 * the records' stores (or later reads of the maps) across the trap. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	PROBE_BATCH(n);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	nrecs = 0;
}

int
lat_start(int enabled)
{
	char exe[512];
	struct stat ns;
	ssize_t n;
	int err;

	if (!enabled) {
		snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF turned off "
		    "([bpf] enabled = no)");
		return 0;
	}
	if (*lat_missing_caps() != '\0') {
		snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF needs %s",
		    lat_missing_caps());
		log_info("fault latency: %s", lat_why);
		return 0;
	}
	libbpf_set_print(lat_libbpf_print);
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		goto fail;
	exe[n] = '\0';
	if ((skel = faultlat_bpf__open()) == NULL)
		goto fail;
	if (stat("/proc/self/ns/pid", &ns) < 0)
		goto fail;
	skel->rodata->daemon_tgid = (uint32_t)getpid();
	skel->rodata->pidns_dev = (unsigned long long)ns.st_dev;
	skel->rodata->pidns_ino = (unsigned long long)ns.st_ino;
	if (faultlat_bpf__load(skel) != 0)
		goto fail;
	/*
	 * pid -1, not getpid(): with libbpf's perf-event uprobes, an event
	 * bound to our task puts perf's context switching on every switch of
	 * this daemon (+5% p50 at 8 faulting threads here, with the probe
	 * never hit). on_batch ignores other processes that run this binary
	 * (by tgid in our PID namespace).
	 */
	if ((batch_link = bpf_program__attach_usdt(skel->progs.on_batch, -1,
	    exe, "migrationd", "batch", NULL)) == NULL) {
		err = errno;
		snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF probe not "
		    "attached: %s%s", strerror(err), err == EACCES || err == EPERM ?
		    " (its uprobe needs CAP_SYS_ADMIN)" : "");
		goto fail_why;
	}
	nrecs = 0;
	/* sched_switch runs on every context switch of the host: attached
	 * only while a destination guest runs (lat_begin). Tried once here
	 * so that a kernel without it fails now, not mid-migration. */
	if ((skel->links.on_switch = bpf_program__attach(skel->progs.on_switch)) == NULL)
		goto fail;
	bpf_link__destroy(skel->links.on_switch);
	skel->links.on_switch = NULL;
	lat_drop_caps();
	/* kvm may be absent (module not loaded): the rest still works. */
	skel->links.on_kvm_exit = bpf_program__attach(skel->progs.on_kvm_exit);
	lat_on = 1;
	snprintf(lat_why, sizeof(lat_why), "eBPF: USDT probes (batched fault records) "
	    "+ sched_switch (while a destination migration exists)%s",
	    skel->links.on_kvm_exit ? " + kvm_userspace_exit" : " (no kvm tracepoint)");
	log_info("fault latency: %s", lat_why);
	return 0;
fail:
	err = errno;
	snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF failed to load: %s",
	    strerror(err));
fail_why:
	log_warnx("fault latency: %s", lat_why);
	lat_stop();
	return -1;
}

void
lat_stop(void)
{
	bpf_link__destroy(batch_link);
	batch_link = NULL;
	nrecs = 0;
	if (skel != NULL)
		faultlat_bpf__destroy(skel);	/* and the links it made itself */
	skel = NULL;
	lat_on = 0;
}

int
lat_begin(uint32_t mig)
{
	struct fl_mig *x;
	unsigned i;

	if (!lat_on)
		return -1;
	/* Not a running migration's slot; the oldest finished one first. */
	for (i = 0; i < FL_MIGS && held[(next_slot + i) % FL_MIGS]; i++)
		;
	if (i == FL_MIGS) {
		log_warnx("fault latency: %u destination migrations run at once; "
		    "no eBPF histograms for migration number %u", FL_MIGS, mig);
		return -1;
	}
	i = (next_slot + i) % FL_MIGS;
	next_slot = i + 1;
	held[i] = 1;
	x = &skel->bss->migs[i];
	lat_flush();	/* records of the slot's last owner */
	/* Cleared first, then named: the programs count into it once it
	 * names this migration. */
	__atomic_store_n(&x->mig, 0, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memset(x->h, 0, sizeof(x->h));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&x->mig, mig, __ATOMIC_RELEASE);
	if (watchers++ == 0 && skel->links.on_switch == NULL &&
	    (skel->links.on_switch = bpf_program__attach(skel->progs.on_switch)) == NULL)
		log_warnx("fault latency: cannot attach sched_switch: %s; no wake-up "
		    "phase", strerror(errno));
	return (int)i;
}

void
lat_end(int slot)
{
	if (!lat_on || slot < 0 || slot >= FL_MIGS || !held[slot])
		return;
	held[slot] = 0;	/* its figures stay readable until the slot is reused */
	if (--watchers == 0 && skel->links.on_switch != NULL) {
		bpf_link__destroy(skel->links.on_switch);
		skel->links.on_switch = NULL;
	}
}

void
lat_record(int slot, uint32_t mig, uint32_t tid, uint64_t page, uint64_t posted,
    uint64_t t_fault, uint64_t t_req, uint64_t t_rx, uint64_t t_install)
{
	struct fl_wake *w;
	uint64_t t;

	if (!lat_on || slot < 0)
		return;
	if (nrecs == FL_BATCH)
		lat_flush();	/* lat_idle() did not get to it */
	skel->bss->recs[nrecs++] = (struct fl_rec){ .page = page, .posted = posted,
	    .t_fault = t_fault, .t_req = t_req, .t_rx = t_rx, .t_install = t_install,
	    .mig = mig, .tid = tid, .slot = (uint32_t)slot };
	if (tid == 0)
		return;
	/* Still armed (the thread has not run): time its wake-up from here,
	 * the end of the install, like the phases. */
	w = &skel->bss->wake[tid % FL_WAKE_SLOTS];
	t = __atomic_load_n(&w->t_install, __ATOMIC_ACQUIRE);
	if (t != 0 && __atomic_load_n(&w->tid, __ATOMIC_RELAXED) == tid)
		__atomic_compare_exchange_n(&w->t_install, &t, t_install, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

void
lat_arm(int slot, uint32_t mig, uint32_t tid, uint64_t t)
{
	struct fl_wake *w;

	if (!lat_on || slot < 0 || tid == 0)
		return;
	/*
	 * Empty the wake slot, fill it, arm it last: on_switch, on any CPU,
	 * reads t_install first. x86 keeps stores in order; the atomic
	 * stores keep the compiler from reordering them.
	 */
	w = &skel->bss->wake[tid % FL_WAKE_SLOTS];
	__atomic_store_n(&w->t_install, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&w->mig, mig, __ATOMIC_RELAXED);
	__atomic_store_n(&w->slot, (uint32_t)slot, __ATOMIC_RELAXED);
	__atomic_store_n(&w->tid, tid, __ATOMIC_RELAXED);
	__atomic_store_n(&w->t_install, t, __ATOMIC_RELEASE);
}

void
lat_idle(void)
{
	if (lat_on && nrecs >= FL_BATCH / 2)
		lat_flush();
}

int
lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out)
{
	struct fl_hkey k = { .mig = mig, .tid = tid, .phase = (unsigned)phase };

	memset(out, 0, sizeof(*out));
	if (!lat_on || phase < 0 || phase >= FL_NPHASES)
		return -1;
	lat_flush();
	if (tid == 0) {
		for (int i = 0; i < FL_MIGS; i++) {
			const struct fl_mig *x = &skel->bss->migs[i];

			if (__atomic_load_n(&x->mig, __ATOMIC_ACQUIRE) == mig) {
				memcpy(out, &x->h[phase], sizeof(*out));
				return 0;
			}
		}
		return -1;	/* none, or its slot went to a newer migration */
	}
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.hists), &k, out) == 0 ? 0 : -1;
}

int
lat_threads(uint32_t mig, uint32_t *tids, int max)
{
	struct fl_hkey k, next, *prev = NULL;
	int n = 0, fd;

	if (!lat_on)
		return 0;
	lat_flush();
	fd = bpf_map__fd(skel->maps.hists);
	while (n < max && bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (next.mig == mig && next.tid != 0 && next.phase == FL_TOTAL)
			tids[n++] = next.tid;
		k = next;
		prev = &k;
	}
	return n;
}

uint64_t
lat_counter(int i)
{
	uint32_t k = (uint32_t)i;
	uint64_t v = 0;

	if (lat_on) {
		lat_flush();
		bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &k, &v);
	}
	return v;
}

#else	/* !MIG_HAVE_BPF */

int
lat_start(int enabled)
{
	snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF not built in "
	    "(clang, bpftool or libbpf missing at build time)");
	return 0;
}

void
lat_stop(void)
{
}

int
lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out)
{
	memset(out, 0, sizeof(*out));
	return -1;
}

int
lat_threads(uint32_t mig, uint32_t *tids, int max)
{
	return 0;
}

int
lat_begin(uint32_t mig)
{
	return -1;
}

void
lat_end(int slot)
{
}

void
lat_idle(void)
{
}

void
lat_arm(int slot, uint32_t mig, uint32_t tid, uint64_t t)
{
}

void
lat_record(int slot, uint32_t mig, uint32_t tid, uint64_t page, uint64_t posted,
    uint64_t t_fault, uint64_t t_req, uint64_t t_rx, uint64_t t_install)
{
}

uint64_t
lat_counter(int i)
{
	return 0;
}

#endif
