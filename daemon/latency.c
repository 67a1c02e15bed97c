/*
 * latency: demand-fault latency measured in the kernel. Loads the BPF
 * programs of daemon/bpf/faultlat.bpf.c (libbpf skeleton), attaches them to
 * this daemon's own USDT probes (probes.h) and to the sched_switch and
 * kvm_userspace_exit tracepoints, and reads their log2 histograms (per
 * migration, per faulting thread, per phase) for the API and the metrics
 * endpoint. Without CAP_BPF/CAP_PERFMON (or root), without BPF support at
 * build time, or with `[bpf] enabled = no`, the daemon keeps its user-space
 * timestamps and lat_status() says why. Loop thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "latency.h"
#include "log.h"
#include "migrationd.h"

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
static struct bpf_link *usdt_links[8];	/* not in the skeleton: ours to destroy */
static int nusdt_links;

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
static int
lat_capable(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (geteuid() == 0)
		return 1;
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	/* CAP_PERFMON 38, CAP_BPF 39: bits 6 and 7 of the second word. */
	return (d[1].effective & (1u << 6)) && (d[1].effective & (1u << 7));
}

int
lat_start(int enabled)
{
	static const struct {
		const char *probe;
		size_t off;	/* of the program pointer in skel->progs */
	} usdt[] = {
		{ "fault", offsetof(struct faultlat_bpf, progs.on_fault) },
		{ "request", offsetof(struct faultlat_bpf, progs.on_request) },
		{ "installed", offsetof(struct faultlat_bpf, progs.on_installed) },
	};
	char exe[512];
	ssize_t n;
	int err;

	if (!enabled) {
		snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF turned off "
		    "([bpf] enabled = no)");
		return 0;
	}
	if (!lat_capable()) {
		snprintf(lat_why, sizeof(lat_why), "user-space timestamps: no CAP_BPF and "
		    "CAP_PERFMON");
		return 0;
	}
	libbpf_set_print(lat_libbpf_print);
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		goto fail;
	exe[n] = '\0';
	if ((skel = faultlat_bpf__open_and_load()) == NULL)
		goto fail;
	for (size_t i = 0; i < sizeof(usdt) / sizeof(usdt[0]); i++) {
		struct bpf_program *p = *(struct bpf_program **)((char *)skel + usdt[i].off);
		struct bpf_link *l = bpf_program__attach_usdt(p, getpid(), exe,
		    "migrationd", usdt[i].probe, NULL);

		if (l == NULL)
			goto fail;
		usdt_links[nusdt_links++] = l;
	}
	skel->links.on_switch = bpf_program__attach(skel->progs.on_switch);
	if (skel->links.on_switch == NULL)
		goto fail;
	/* kvm may be absent (module not loaded): the rest still works. */
	skel->links.on_kvm_exit = bpf_program__attach(skel->progs.on_kvm_exit);
	lat_on = 1;
	snprintf(lat_why, sizeof(lat_why), "eBPF: USDT probes + sched_switch%s",
	    skel->links.on_kvm_exit ? " + kvm_userspace_exit" : " (no kvm tracepoint)");
	log_info("fault latency: %s", lat_why);
	return 0;
fail:
	err = errno;
	snprintf(lat_why, sizeof(lat_why), "user-space timestamps: eBPF failed to load: %s",
	    strerror(err));
	log_warnx("fault latency: %s", lat_why);
	lat_stop();
	return -1;
}

void
lat_stop(void)
{
	while (nusdt_links > 0)
		bpf_link__destroy(usdt_links[--nusdt_links]);
	if (skel != NULL)
		faultlat_bpf__destroy(skel);	/* and the links it made itself */
	skel = NULL;
	lat_on = 0;
}

int
lat_read(uint32_t mig, uint32_t tid, int phase, struct fl_hist *out)
{
	struct fl_hkey k = { .mig = mig, .tid = tid, .phase = (unsigned)phase };

	memset(out, 0, sizeof(*out));
	if (!lat_on)
		return -1;
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.hists), &k, out) == 0 ? 0 : -1;
}

int
lat_threads(uint32_t mig, uint32_t *tids, int max)
{
	struct fl_hkey k, next, *prev = NULL;
	int n = 0, fd;

	if (!lat_on)
		return 0;
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

	if (lat_on)
		bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &k, &v);
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

uint64_t
lat_counter(int i)
{
	return 0;
}

#endif
