/*
 * faultlat: the daemon's demand-fault latency, seen from a VMM. Two roles,
 * each a small "VMM" on libmigshim (no KVM: plain threads touch guest RAM):
 *
 *   faultlat source ...  guest RAM in a memfd, every page filled with a
 *                        non-zero pattern of its index; attaches to the local
 *                        migrationd, hands over a tiny state blob on PAUSE and
 *                        exits on COMPLETED.
 *   faultlat dest ...    an incoming VM (memfd + userfaultfd, missing mode)
 *                        attached to the other migrationd. On START, N threads
 *                        each touch their own missing pages and time every
 *                        stall with CLOCK_MONOTONIC.
 *
 * Background on/off: migrationd starts the background stream only once the
 * destination VMM reports running (daemon/role/source.c, src_bg_writable),
 * while it serves demand faults from the moment the state arrives. So
 * "--background off" touches after START but before migshim_report_running()
 * (nothing else on the wire or in either loop), and "--background on"
 * reports running first and touches while the whole RAM streams. Touched
 * pages lie in the top half of RAM, walked downwards, and the stream walks
 * upwards from page 0, so they meet last; a page already present when its
 * turn comes (mincore) is skipped and counted, never timed.
 *
 * "--threads 0" is the throughput run: report running at once, touch
 * nothing, and time running -> COMPLETED (the background stream alone).
 *
 * Daemon CPU time: utime+stime from /proc/PID/stat of both daemons (given
 * with --daemon-pids), sampled around the touch round.
 *
 * Paths (--path): "uffd" (blocking userfaultfd) and "ring" (SIGBUS + the
 * shared fault ring); see fl_dest_create. Both time the same touch loop.
 *
 * Threads: main (control: shim events, rounds, report) and, in dest, the
 * toucher threads, which only touch RAM and write their own sample arrays.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "libmigshim.h"

#define FL_PAGE		4096
#define FL_MAX_THREADS	64
#define FL_STATE	"faultlat-state-v1"

struct fl_opts {
	const char	*role;
	const char	*name;
	const char	*sock;
	const char	*path;
	const char	*install;	/* "copy" or "minor" */
	const char	*json;
	uint64_t	 mem;
	int		 threads;
	int		 background;
	int		 bpf;		/* the destination daemon had eBPF loaded */
	size_t		 touches;
	int		 timeout_s;
	pid_t		 dpid[2];	/* source daemon, destination daemon */
	double		 floor_p50, floor_p99;
};

struct fl_thread {
	pthread_t	 th;
	int		 id;
	uint8_t		*ram;
	uint64_t	 first, step;	/* pages first, first-step, ... */
	size_t		 count;
	pthread_barrier_t *go;
	uint64_t	*lat;		/* ns, one per timed touch */
	size_t		 nlat;
	size_t		 skipped;	/* present before the touch */
	size_t		 bad;		/* wrong contents */
	uint64_t	 t_end;
};

static uint64_t
fl_pattern(uint64_t idx)
{
	return 0xa5a5000000000000ull ^ (idx * 0x9e3779b97f4a7c15ull) ^ 1;
}

static uint64_t fl_deadline_ns;

static int
fl_expired(void)
{
	return bench_now_ns() > fl_deadline_ns;
}

/*
 * Waits for the next shim event other than NONE, polling the daemon socket.
 * Returns the event type, or -1 on time-out or error.
 */
static int
fl_next_event(struct migshim *s, struct migshim_event *ev)
{
	while (!fl_expired()) {
		struct pollfd p = { migshim_fd(s), POLLIN, 0 };

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			return -1;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (migshim_next_event(s, ev) < 0)
			return -1;
		if (ev->type != MIGSHIM_EV_NONE)
			return (int)ev->type;
	}
	fprintf(stderr, "faultlat: timed out waiting for migrationd\n");
	return -1;
}

static int
fl_source(const struct fl_opts *o)
{
	struct migshim_event ev;
	struct migshim *s;
	uint8_t *ram;
	uint64_t npages = o->mem / FL_PAGE;

	if ((s = migshim_create(o->name, o->mem, MIGSHIM_SOURCE)) == NULL)
		return 1;
	ram = migshim_ram(s);
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t v = fl_pattern(i), *w = (uint64_t *)(void *)(ram + i * FL_PAGE);

		for (size_t k = 0; k < FL_PAGE / 8; k++)
			w[k] = v;
	}
	if (migshim_attach(s, o->sock, 1) < 0) {
		migshim_destroy(s);
		return 1;
	}
	printf("faultlat source: %s ready, %llu MiB filled\n", o->name,
	    (unsigned long long)(o->mem >> 20));
	fflush(stdout);
	for (;;) {
		switch (fl_next_event(s, &ev)) {
		case MIGSHIM_EV_PAUSE:
			if (migshim_send_state(s, FL_STATE, sizeof(FL_STATE)) < 0)
				goto fail;
			continue;
		case MIGSHIM_EV_COMPLETED:
			printf("faultlat source: %s completed\n", o->name);
			migshim_destroy(s);
			return 0;
		case MIGSHIM_EV_FAILED:
		case MIGSHIM_EV_RESUME_LOCAL:
		case MIGSHIM_EV_HANGUP:
			fprintf(stderr, "faultlat source: migration ended: %s\n", ev.reason);
			goto fail;
		default:
			goto fail;
		}
	}
fail:
	migshim_destroy(s);
	return 1;
}

static void *
fl_toucher(void *arg)
{
	struct fl_thread *t = arg;
	unsigned char vec;

	pthread_barrier_wait(t->go);
	for (size_t k = 0; k < t->count; k++) {
		uint64_t idx = t->first - k * t->step, t0, t1, v;
		volatile uint64_t *p = (volatile uint64_t *)(void *)(t->ram + idx * FL_PAGE);

		/* Already streamed in: not a demand fault, do not time it. */
		if (mincore((void *)(uintptr_t)p, FL_PAGE, &vec) == 0 && (vec & 1)) {
			t->skipped++;
			continue;
		}
		t0 = bench_now_ns();
		v = *p;
		t1 = bench_now_ns();
		t->lat[t->nlat++] = t1 - t0;
		if (v != fl_pattern(idx))
			t->bad++;
	}
	t->t_end = bench_now_ns();
	return NULL;
}

struct fl_round {
	struct bench_pct pct;
	size_t		 timed, skipped, bad;
	double		 wall_s;
	double		 cpu_us[2];	/* source daemon, destination daemon */
	int		 cpu_ok;
	long long	 leaked;	/* background pages seen with background off; -1: n/a */
};

/*
 * Pages present in the bottom half of RAM (never touched by a round): with
 * the background off they must be 0. Returns -1 if mincore fails.
 */
static long long
fl_present_below(struct migshim *s)
{
	uint64_t n = migshim_ram_size(s) / FL_PAGE / 2;
	unsigned char *vec = malloc(n);
	long long c = 0;

	if (vec == NULL || mincore(migshim_ram(s), n * FL_PAGE, vec) < 0) {
		free(vec);
		return -1;
	}
	for (uint64_t i = 0; i < n; i++)
		c += vec[i] & 1;
	free(vec);
	return c;
}

static void
fl_daemon_cpu(const struct fl_opts *o, uint64_t us[2], int *ok)
{
	for (int i = 0; i < 2; i++)
		if (o->dpid[i] <= 0 || bench_proc_cpu_us(o->dpid[i], &us[i]) < 0)
			*ok = 0;
}

/*
 * One touch round: the top half of RAM split into one slice per thread,
 * each slice walked downwards with an even stride.
 */
static int
fl_round(const struct fl_opts *o, struct migshim *s, struct fl_round *r)
{
	uint64_t npages = migshim_ram_size(s) / FL_PAGE, half = npages / 2;
	uint64_t slice = half / (uint64_t)o->threads, t0, t_end = 0, c0[2], c1[2];
	size_t per = o->touches / (size_t)o->threads, n = 0;
	struct fl_thread th[FL_MAX_THREADS];
	pthread_barrier_t go;
	uint64_t *all;
	int ok = 1;

	memset(r, 0, sizeof(*r));
	r->leaked = -1;
	if (per == 0 || per > slice) {
		fprintf(stderr, "faultlat: %zu touches do not fit %d slices of %llu pages\n",
		    o->touches, o->threads, (unsigned long long)slice);
		return -1;
	}
	pthread_barrier_init(&go, NULL, (unsigned)o->threads + 1);
	for (int i = 0; i < o->threads; i++) {
		struct fl_thread *t = &th[i];

		memset(t, 0, sizeof(*t));
		t->id = i;
		t->ram = migshim_ram(s);
		t->step = slice / per;
		t->first = half + (uint64_t)(i + 1) * slice - 1;
		t->count = per;
		t->go = &go;
		if ((t->lat = calloc(per, sizeof(uint64_t))) == NULL ||
		    pthread_create(&t->th, NULL, fl_toucher, t) != 0) {
			fprintf(stderr, "faultlat: cannot start toucher threads\n");
			exit(1);	/* the others wait on the barrier forever */
		}
	}
	r->cpu_ok = 1;
	fl_daemon_cpu(o, c0, &r->cpu_ok);
	t0 = bench_now_ns();
	pthread_barrier_wait(&go);
	for (int i = 0; i < o->threads; i++) {
		pthread_join(th[i].th, NULL);
		if (th[i].t_end > t_end)
			t_end = th[i].t_end;
	}
	fl_daemon_cpu(o, c1, &r->cpu_ok);
	pthread_barrier_destroy(&go);
	r->wall_s = (double)(t_end - t0) / 1e9;
	for (int i = 0; i < o->threads; i++)
		r->timed += th[i].nlat;
	if ((all = calloc(r->timed + 1, sizeof(uint64_t))) == NULL)
		ok = 0;
	for (int i = 0; i < o->threads; i++) {
		if (all != NULL)
			memcpy(all + n, th[i].lat, th[i].nlat * sizeof(uint64_t));
		n += th[i].nlat;
		r->skipped += th[i].skipped;
		r->bad += th[i].bad;
		free(th[i].lat);
	}
	if (all != NULL)
		bench_percentiles(all, r->timed, &r->pct);
	free(all);
	for (int i = 0; i < 2; i++)
		r->cpu_us[i] = r->cpu_ok ? (double)(c1[i] - c0[i]) : -1;
	return ok ? 0 : -1;
}

/*
 * The incoming VM for the chosen fault path:
 *   uffd  blocking userfaultfd: a touching thread sleeps in the kernel until
 *         the daemon's UFFDIO_COPY wakes it;
 *   ring  UFFD_FEATURE_SIGBUS: a touching thread takes SIGBUS, libmigshim's
 *         handler posts the page to a thread slot of the shared fault ring,
 *         rings the doorbell and spins (20 us), then sleeps on the slot.
 * The touch loop is the same for both.
 */
static struct migshim *
fl_dest_create(const struct fl_opts *o)
{
	struct migshim_opts opts = { .mode = MIGSHIM_FAULT_RING, .vcpus = 0,
	    .thread_slots = o->threads > 0 ? (unsigned)o->threads : 1,
	    .install = strcmp(o->install, "minor") == 0 ? MIGSHIM_INSTALL_MINOR :
	    MIGSHIM_INSTALL_COPY };
	struct migshim *s;

	if (strcmp(o->install, "minor") != 0 && strcmp(o->install, "copy") != 0) {
		fprintf(stderr, "faultlat: unknown install mode \"%s\" (copy or minor)\n",
		    o->install);
		return NULL;
	}
	if (strcmp(o->path, "uffd") == 0) {
		opts.mode = MIGSHIM_FAULT_UFFD;
		return migshim_create_opts(o->name, o->mem, MIGSHIM_INCOMING, &opts);
	}
	if (strcmp(o->path, "ring") != 0) {
		fprintf(stderr, "faultlat: unknown fault path \"%s\" (uffd or ring)\n", o->path);
		return NULL;
	}
	if ((s = migshim_create_opts(o->name, o->mem, MIGSHIM_INCOMING, &opts)) == NULL)
		return NULL;
	if (migshim_fault_mode(s) != MIGSHIM_FAULT_RING || migshim_sigbus_install(s) < 0) {
		fprintf(stderr, "faultlat: ring path unavailable\n");
		migshim_destroy(s);
		return NULL;
	}
	return s;
}

static double
fl_ratio(double x, double floor)
{
	return floor > 0 ? x / floor : -1;
}

static void
fl_json_num(FILE *f, const char *k, double v, int last)
{
	if (v < 0)
		fprintf(f, "\"%s\":null%s", k, last ? "" : ",");
	else
		fprintf(f, "\"%s\":%.3f%s", k, v, last ? "" : ",");
}

static void
fl_report(const struct fl_opts *o, const struct fl_round *r, double bg_s)
{
	double faults = (double)r->timed, cpu_src = -1, cpu_dst = -1, cpu = -1;
	double fps = r->wall_s > 0 ? faults / r->wall_s : 0;
	FILE *f;

	if (r->cpu_ok && r->timed > 0) {
		cpu_src = r->cpu_us[0] / faults;
		cpu_dst = r->cpu_us[1] / faults;
		cpu = cpu_src + cpu_dst;
	}
	printf("faultlat: path %s, %s installs, %d thread(s), background %s, %d cores: %zu faults timed "
	    "(%zu skipped as already streamed, %zu wrong), p50 %.1f us (%.2fx floor), p99 "
	    "%.1f us (%.2fx floor), p99.9 %.1f us, %.0f faults/s, daemons %.1f us CPU per "
	    "fault (source %.1f + destination %.1f)\n", o->path, o->install, o->threads,
	    o->background ? "on" : "off", bench_ncpus(), r->timed, r->skipped, r->bad,
	    r->pct.p50, fl_ratio(r->pct.p50, o->floor_p50), r->pct.p99,
	    fl_ratio(r->pct.p99, o->floor_p99), r->pct.p999, fps, cpu, cpu_src, cpu_dst);
	if (o->json == NULL)
		return;
	if ((f = fopen(o->json, "w")) == NULL) {
		perror(o->json);
		return;
	}
	fprintf(f, "{\"path\":\"%s\",\"install\":\"%s\",\"threads\":%d,\"background\":%s,"
	    "\"bpf\":%s,", o->path, o->install, o->threads, o->background ? "true" : "false",
	    o->bpf ? "true" : "false");
	fl_json_num(f, "p50_us", r->pct.p50, 0);
	fl_json_num(f, "p99_us", r->pct.p99, 0);
	fl_json_num(f, "p999_us", r->pct.p999, 0);
	fl_json_num(f, "faults_per_s", fps, 0);
	fl_json_num(f, "cpu_us_per_fault", cpu, 0);
	fl_json_num(f, "ratio_p50", fl_ratio(r->pct.p50, o->floor_p50), 0);
	fl_json_num(f, "ratio_p99", fl_ratio(r->pct.p99, o->floor_p99), 0);
	fprintf(f, "\"detail\":{\"cores\":%d,\"ram_mib\":%llu,\"touches\":%zu,"
	    "\"faults_timed\":%zu,\"skipped_present\":%zu,\"wrong_contents\":%zu,",
	    bench_ncpus(), (unsigned long long)(o->mem >> 20), o->touches, r->timed,
	    r->skipped, r->bad);
	fl_json_num(f, "p90_us", r->pct.p90, 0);
	fl_json_num(f, "min_us", r->pct.min, 0);
	fl_json_num(f, "max_us", r->pct.max, 0);
	fl_json_num(f, "mean_us", r->pct.mean, 0);
	fl_json_num(f, "wall_s", r->wall_s, 0);
	fl_json_num(f, "cpu_us_per_fault_source", cpu_src, 0);
	fl_json_num(f, "cpu_us_per_fault_destination", cpu_dst, 0);
	fl_json_num(f, "cpu_tick_us", bench_tick_us(), 0);
	fl_json_num(f, "floor_p50_us", o->floor_p50 > 0 ? o->floor_p50 : -1, 0);
	fl_json_num(f, "floor_p99_us", o->floor_p99 > 0 ? o->floor_p99 : -1, 0);
	fl_json_num(f, "running_to_completed_s", bg_s, 0);
	fprintf(f, "\"background_method\":\"%s\",\"background_pages_before_running\":%lld",
	    o->background ? "touches start right after the VMM reports running, while the "
	    "whole RAM streams" : "touches between START and the VMM's running report: "
	    "migrationd streams only once the VM runs", r->leaked);
	fprintf(f, "}}\n");
	fclose(f);
}

static void
fl_report_throughput(const struct fl_opts *o, double secs, const double cpu_us[2], int cpu_ok)
{
	double gb = (double)o->mem / 1e9, gbps = secs > 0 ? gb / secs : 0;
	FILE *f;

	printf("faultlat: throughput: %llu MiB streamed (no faults) in %.3f s = %.3f GB/s, "
	    "daemons %.2f + %.2f CPU s per GB (source + destination)\n",
	    (unsigned long long)(o->mem >> 20), secs, gbps,
	    cpu_ok ? cpu_us[0] / 1e6 / gb : -1, cpu_ok ? cpu_us[1] / 1e6 / gb : -1);
	if (o->json == NULL || (f = fopen(o->json, "w")) == NULL)
		return;
	fprintf(f, "{\"mode\":\"throughput\",\"install\":\"%s\",\"streams\":1,"
	    "\"ram_bytes\":%llu,", o->install, (unsigned long long)o->mem);
	fl_json_num(f, "seconds", secs, 0);
	fl_json_num(f, "gbytes_per_s", gbps, 0);
	fl_json_num(f, "cpu_s_per_gbyte_source", cpu_ok ? cpu_us[0] / 1e6 / gb : -1, 0);
	fl_json_num(f, "cpu_s_per_gbyte_destination", cpu_ok ? cpu_us[1] / 1e6 / gb : -1, 1);
	fprintf(f, "}\n");
	fclose(f);
}

/* Waits for COMPLETED; returns seconds since `since`, or -1. */
static double
fl_wait_completed(struct migshim *s, uint64_t since)
{
	struct migshim_event ev;

	for (;;) {
		switch (fl_next_event(s, &ev)) {
		case MIGSHIM_EV_COMPLETED:
			return (double)(bench_now_ns() - since) / 1e9;
		case MIGSHIM_EV_FAILED:
		case MIGSHIM_EV_HANGUP:
			fprintf(stderr, "faultlat dest: migration ended: %s\n", ev.reason);
			return -1;
		case -1:
			return -1;
		default:
			continue;
		}
	}
}

static int
fl_dest(const struct fl_opts *o)
{
	struct migshim_event ev;
	struct fl_round r;
	struct migshim *s;
	uint64_t t_run, c0[2] = { 0 }, c1[2] = { 0 };
	double secs;
	int rc = 1, ev_type, cpu_ok = 1;

	if ((s = fl_dest_create(o)) == NULL)
		return 1;
	if (migshim_attach(s, o->sock, o->threads > 0 ? o->threads : 1) < 0)
		goto out;
	printf("faultlat dest: %s attached (%llu MiB, path %s)\n", o->name,
	    (unsigned long long)(o->mem >> 20), o->path);
	fflush(stdout);
	while ((ev_type = fl_next_event(s, &ev)) != MIGSHIM_EV_START) {
		if (ev_type < 0 || ev_type == MIGSHIM_EV_FAILED || ev_type == MIGSHIM_EV_HANGUP) {
			fprintf(stderr, "faultlat dest: no START: %s\n", ev.reason);
			goto out;
		}
	}
	if (ev.blob_len != sizeof(FL_STATE) || memcmp(ev.blob, FL_STATE, sizeof(FL_STATE))) {
		fprintf(stderr, "faultlat dest: unexpected state blob (%zu bytes)\n", ev.blob_len);
		goto out;
	}
	if (o->threads == 0) {
		/* Throughput: the background stream alone. */
		fl_daemon_cpu(o, c0, &cpu_ok);
		t_run = bench_now_ns();
		if (migshim_report_running(s) < 0 || (secs = fl_wait_completed(s, t_run)) < 0)
			goto out;
		fl_daemon_cpu(o, c1, &cpu_ok);
		double cpu[2] = { (double)(c1[0] - c0[0]), (double)(c1[1] - c0[1]) };
		fl_report_throughput(o, secs, cpu, cpu_ok);
		rc = 0;
		goto out;
	}
	if (!o->background) {
		if (fl_round(o, s, &r) < 0)
			goto out;
		r.leaked = fl_present_below(s);
		if (r.leaked > 0)
			fprintf(stderr, "faultlat dest: WARNING: %lld pages below the touched "
			    "region arrived before the VM reported running: the background "
			    "stream was NOT off\n", r.leaked);
	}
	t_run = bench_now_ns();
	if (migshim_report_running(s) < 0)
		goto out;
	if (o->background && fl_round(o, s, &r) < 0)
		goto out;
	if ((secs = fl_wait_completed(s, t_run)) < 0)
		goto out;
	fl_report(o, &r, secs);
	rc = r.bad ? 1 : 0;
	if (r.bad)
		fprintf(stderr, "faultlat dest: %zu pages arrived with wrong contents\n", r.bad);
out:
	if (migshim_fault_mode(s) == MIGSHIM_FAULT_RING)
		migshim_sigbus_remove();
	migshim_destroy(s);
	return rc;
}

static void
fl_usage(FILE *f)
{
	fprintf(f,
	    "usage: faultlat source --name VM --mem SIZE --vmm-socket PATH [--timeout S]\n"
	    "       faultlat dest --name VM --mem SIZE --vmm-socket PATH --threads N\n"
	    "                [--background on|off] [--touches N] [--path uffd|ring]\n"
	    "                [--install copy|minor]\n"
	    "                [--bpf yes|no (was the destination daemon's eBPF loaded)]\n"
	    "                [--daemon-pids SRC,DST] [--floor P50,P99] [--json FILE] [--timeout S]\n"
	    "A source or an incoming \"VMM\" on libmigshim for the demand-fault benchmark\n"
	    "(see the comment at the top of bench/faultlat.c). --threads 0: throughput run.\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "mem", required_argument, NULL, 'm' },
		{ "vmm-socket", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "background", required_argument, NULL, 'b' },
		{ "touches", required_argument, NULL, 'T' },
		{ "path", required_argument, NULL, 'p' },
		{ "install", required_argument, NULL, 'I' },
		{ "daemon-pids", required_argument, NULL, 'd' },
		{ "floor", required_argument, NULL, 'f' },
		{ "json", required_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "bpf", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fl_opts o = { .path = "uffd", .install = "copy", .mem = 256ull << 20, .threads = 1,
	    .touches = 2048, .timeout_s = 120 };
	int ch, a, b;

	if (argc < 2 || (strcmp(argv[1], "source") && strcmp(argv[1], "dest"))) {
		fl_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	o.role = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "n:m:s:t:b:T:p:I:d:f:j:o:B:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': o.name = optarg; break;
		case 'm': o.mem = bench_parse_size(optarg); break;
		case 's': o.sock = optarg; break;
		case 't': o.threads = atoi(optarg); break;
		case 'b': o.background = !strcmp(optarg, "on"); break;
		case 'T': o.touches = strtoul(optarg, NULL, 10); break;
		case 'p': o.path = optarg; break;
		case 'I': o.install = optarg; break;
		case 'B': o.bpf = !strcmp(optarg, "yes"); break;
		case 'd':
			if (sscanf(optarg, "%d,%d", &a, &b) != 2) {
				fl_usage(stderr);
				return 2;
			}
			o.dpid[0] = a;
			o.dpid[1] = b;
			break;
		case 'f':
			if (sscanf(optarg, "%lf,%lf", &o.floor_p50, &o.floor_p99) != 2) {
				fl_usage(stderr);
				return 2;
			}
			break;
		case 'j': o.json = optarg; break;
		case 'o': o.timeout_s = atoi(optarg); break;
		case 'h': fl_usage(stdout); return 0;
		default: fl_usage(stderr); return 2;
		}
	}
	if (o.name == NULL || o.sock == NULL || o.mem == 0 || o.mem % FL_PAGE ||
	    o.threads < 0 || o.threads > FL_MAX_THREADS || o.timeout_s <= 0 ||
	    o.touches == 0) {
		fl_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A hard stop even if a fault never completes (threads blocked in it). */
	alarm((unsigned)o.timeout_s + 30);
	fl_deadline_ns = bench_now_ns() + (uint64_t)o.timeout_s * 1000000000ull;
	return strcmp(o.role, "source") == 0 ? fl_source(&o) : fl_dest(&o);
}
