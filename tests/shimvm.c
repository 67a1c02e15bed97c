/*
 * shimvm: a VMM without a guest, for tests that need many threads touching
 * real guest RAM through libmigshim. `source` fills RAM by a content rule
 * over every byte (qword k of 4 KiB page i is page_qword(i, k); its zero
 * pages stay untouched), attaches and hands over a fixed state
 * blob when paused. `dest` attaches an incoming VM (blocking uffd or ring +
 * SIGBUS), and once running starts threads that each touch their own pages,
 * timing each stall and checking each value; after completion it compares
 * every byte of every page with the rule, except the pages the test poisoned
 * on purpose (-P), which must raise a machine check and are named on the
 * verification line. It prints that line and a JSON report. Exit 0 only if
 * every check passed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libmigshim.h"
#include "ring.h"

#define STATE_BLOB "shimvm-state-v1"

static struct migshim *S;
static uint64_t npages;
static int nthreads = 4, touches = 64;
static uint64_t *lat_ns;
static int bad_values;
static int touchers_done;
static const char *go_file;
static int interleave;
static uint64_t poison[8];
static int npoison;
static uint64_t hot_pages;		/* source -W: pages the writer keeps writing */
static volatile int writer_stop;
static uint64_t writer_passes;
static const char *once_file;		/* source -O: when it exists, fix the "once" pages */
static unsigned skew_rate;		/* -z: skewed hot set, writes per second */
#define ONCE_PAGES 100

static int
is_poison(uint64_t i)
{
	for (int k = 0; k < npoison; k++)
		if (poison[k] == i)
			return 1;
	return 0;
}

/*
 * Reading a page the source could not read must raise a machine-check
 * SIGBUS (BUS_MCEERR_AR), never return data. Installed before the shim's
 * handler, which passes such signals on to it.
 */
static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probe_active, probe_code;

static void
probe_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (!probe_active)
		abort();
	probe_code = si->si_code;
	siglongjmp(probe_jmp, 1);
}

/* 1: machine-check SIGBUS, 0: the read returned data, -1: another signal. */
static int
probe_poison(volatile uint64_t *p)
{
	probe_code = 0;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		probe_active = 1;
		(void)*p;
		probe_active = 0;
		return 0;
	}
	probe_active = 0;
	if (probe_code != BUS_MCEERR_AR)
		fprintf(stderr, "shimvm: SIGBUS with si_code %d, not BUS_MCEERR_AR\n", (int)probe_code);
	return probe_code == BUS_MCEERR_AR ? 1 : -1;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#include "pagerule.h"

static uint64_t hot_page(uint64_t k);

/*
 * -z: rank of a hot page drawn from a Zipf-like (1/rank, log-uniform)
 * distribution over the hot set: the top 1% of the hot pages take about
 * half the accesses, the coldest half of them about 8%.
 */
static uint64_t
skew_rank(uint64_t *rng)
{
	double u;
	uint64_t r;

	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	u = (double)(*rng >> 11) / 9007199254740992.0;	/* [0, 1) */
	r = (uint64_t)exp(u * log((double)hot_pages + 1.0)) - 1;
	return r < hot_pages ? r : hot_pages - 1;
}

static void *
toucher(void *arg)
{
	long t = (long)arg;
	uint64_t first = npages * (uint64_t)t / (uint64_t)nthreads;
	uint64_t span = npages / (uint64_t)nthreads;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1), start = mono_ns();
	volatile uint64_t *ram = migshim_ram(S);

	if (interleave)
		usleep((useconds_t)t * 20000);	/* first faults in page order */
	/* Spread the touches over this thread's share, far from each other;
	 * or (-i) interleave the threads over neighbouring pages from the
	 * middle of RAM, so they fault on pages another one's fetch brings. */
	for (int k = 0; k < touches; k++) {
		uint64_t i = interleave ? npages / 2 + (uint64_t)k * (uint64_t)nthreads + (uint64_t)t :
		    first + (span / (uint64_t)touches) * (uint64_t)k, t0, v;

		/* dest -W N: the source's hot set, shared out between threads;
		 * with -z, drawn from the source's skewed distribution. */
		if (hot_pages > 0)
			i = hot_page(skew_rate ? skew_rank(&rng) :
			    ((uint64_t)k * (uint64_t)nthreads + (uint64_t)t) % hot_pages);

		if (is_poison(i))
			continue;
		/* -z: the guest goes on at the source's rate, RATE touches a
		 * second from all threads; one that stalled catches up. */
		while (skew_rate > 0 && mono_ns() < start + (uint64_t)k * (uint64_t)nthreads *
		    1000000000u / skew_rate)
			usleep(100);
		t0 = mono_ns();
		v = ram[i * 512];
		lat_ns[t * touches + k] = mono_ns() - t0;
		if (v != page_qword(i, 0) || ram[i * 512 + 511] != page_qword(i, 511))
			__atomic_add_fetch(&bad_values, 1, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&touchers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Compares every byte of every 4 KiB page with the rule, except the pages
 * poisoned on purpose, and prints the verification line (the bytes it
 * compared, and as many of the migration's pages, 4 KiB or 2 MiB) naming
 * those. Returns the pages that
 * differ; the first few are printed with the offset of their first wrong
 * byte. Poisoned pages were probed already: reading them would SIGBUS.
 */
static uint64_t
verify_all(const uint64_t *ram)
{
	uint64_t psz = migshim_page_size(S), per = psz / 4096, bad = 0;
	uint64_t want[512], excluded = 0, compared = 0;
	char names[8 * 24] = "";

	for (uint64_t i = 0; i < npages; i++) {
		const uint64_t *p = ram + i * 512;
		unsigned k;
		int skip = 0;

		for (int j = 0; j < npoison; j++)
			skip |= poison[j] / per == i / per;
		if (skip)
			continue;
		for (k = 0; k < 512; k++)
			want[k] = page_qword(i, k);
		compared++;
		if (memcmp(p, want, sizeof(want)) == 0)
			continue;
		for (k = 0; k < 512 && p[k] == want[k]; k++)
			;
		if (bad++ < 4) {
			unsigned b = 0;

			while (((const uint8_t *)&p[k])[b] == ((const uint8_t *)&want[k])[b])
				b++;
			fprintf(stderr, "shimvm: page %llu (4 KiB) offset 0x%x: byte 0x%02x, "
			    "expected 0x%02x (qword 0x%016llx, expected 0x%016llx)\n",
			    (unsigned long long)i, k * 8 + b, ((const uint8_t *)&p[k])[b],
			    ((const uint8_t *)&want[k])[b], (unsigned long long)p[k],
			    (unsigned long long)want[k]);
		}
	}
	/* An excluded page is the migration page that holds a poisoned one. */
	for (int k = 0; k < npoison; k++) {
		int dup = 0;

		for (int j = 0; j < k; j++)
			dup |= poison[j] / per == poison[k] / per;
		if (dup)
			continue;
		excluded++;
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%llu",
		    excluded > 1 ? "," : "", (unsigned long long)(poison[k] / per));
	}
	printf("shimvm: verified %llu pages, %llu bytes against the source's content rule "
	    "(pages of %llu bytes; %llu poisoned on purpose excluded by name: %s)%s\n",
	    (unsigned long long)(compared / per), (unsigned long long)(compared * 4096),
	    (unsigned long long)psz,
	    (unsigned long long)excluded, excluded ? names : "none", bad ? ": MISMATCH" : "");
	return bad;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The daemon went away (a restart test killed it): attach again once the
 * new one listens, as a VMM does; give up after 30 s. 1 if attached.
 */
static const char *sock_path;
static int attach_vcpus;

static int
attach_again(void)
{
	fprintf(stderr, "shimvm: daemon went away; attaching again\n");
	for (int i = 0; i < 300; i++) {
		if (migshim_attach(S, sock_path, attach_vcpus) == 0) {
			fprintf(stderr, "shimvm: attached again\n");
			return 1;
		}
		usleep(100000);
	}
	return 0;
}

/* The next event within `ms` (re-attaching if the daemon went away):
 * 0, 1 if none came in time, -1 on error. */
static int
poll_event(struct migshim_event *ev, int ms)
{
	struct pollfd p = { .fd = migshim_fd(S), .events = POLLIN };

	for (;;) {
		if (poll(&p, 1, ms) <= 0)
			return 1;
		if (migshim_next_event(S, ev) < 0)
			return -1;
		if (ev->type == MIGSHIM_EV_HANGUP && attach_again()) {
			p.fd = migshim_fd(S);
			continue;
		}
		if (ev->type != MIGSHIM_EV_NONE)
			return 0;
	}
}

static int
wait_event(struct migshim_event *ev, int secs)
{
	int rc = poll_event(ev, secs * 1000);

	if (rc == 1)
		fprintf(stderr, "shimvm: no word from the daemon in %d s\n", secs);
	return rc == 0 ? 0 : -1;
}

/*
 * Source -W N: while the VM "runs" (until PAUSE), a thread keeps writing a
 * wrong value into qwords 0, 100 and 511 of N pages spread over RAM (every
 * 7th page), so that whatever pre-copy sends of them is stale. When paused,
 * those pages get their rule content back (a device writing at the
 * switch-over): the destination must end with the rule, never a stale copy.
 */
static uint64_t
hot_page(uint64_t k)
{
	return (k * 7) % npages;
}

/*
 * Source -O FILE: 100 "once" pages (7k + 3) start with a wrong value in
 * qword 0; when FILE appears (the test makes it between pre-copy rounds),
 * the writer gives them their rule content, once, and never writes them
 * again. What round 1 sent of them is stale; a later round sends them right,
 * and the destination must keep that copy, not the first.
 */
static uint64_t
once_page(uint64_t k)
{
	return (k * 7 + 3) % npages;
}

static void
once_set(volatile uint64_t *ram, int right)
{
	for (uint64_t k = 0; k < ONCE_PAGES; k++)
		ram[once_page(k) * 512] = right ? page_qword(once_page(k), 0) :
		    ~page_qword(once_page(k), 0);
}

/*
 * Source -W N -z RATE: a bounded, skewed writer, the shape of a real
 * guest's working set. Every millisecond it writes RATE/1000 hot pages
 * drawn by skew_rank(): a wrong value into qword 0, then the rule value
 * back, so the page ends right and the pause needs no repair, and a
 * copy that catches the wrong value and is never re-sent fails the
 * destination's check.
 */
static void
writer_skewed(volatile uint64_t *ram)
{
	uint64_t rng = 0x2545f4914f6cdd1dull, next = mono_ns();

	while (!writer_stop) {
		for (unsigned k = 0; k < (skew_rate + 999) / 1000; k++) {
			uint64_t i = hot_page(skew_rank(&rng));

			ram[i * 512] = ~page_qword(i, 0);
			ram[i * 512] = page_qword(i, 0);
		}
		writer_passes++;
		next += 1000000;
		while (!writer_stop && mono_ns() < next)
			usleep(200);
	}
}

static void *
writer(void *arg)
{
	volatile uint64_t *ram = arg;
	int once_done = once_file == NULL;

	if (skew_rate > 0) {
		writer_skewed(ram);
		return NULL;
	}
	while (!writer_stop) {
		if (!once_done && access(once_file, F_OK) == 0) {
			once_set(ram, 1);
			once_done = 1;
			printf("shimvm: once pages written\n");
			fflush(stdout);
		}
		for (uint64_t k = 0; k < hot_pages && !writer_stop; k++) {
			uint64_t i = hot_page(k);

			ram[i * 512] = ~page_qword(i, 0) ^ writer_passes;
			ram[i * 512 + 100] = ~page_qword(i, 100);
			ram[i * 512 + 511] = ~page_qword(i, 511);
		}
		writer_passes++;
		usleep(1000);
	}
	return NULL;
}

static void
writer_finish(pthread_t th, uint64_t *ram)
{
	writer_stop = 1;
	pthread_join(th, NULL);
	/* Only the three qwords the writer changed (rewriting whole pages
	 * made the pause cost 26 MB of stores at 256 MiB, no VMM's doing). */
	for (uint64_t k = 0; k < hot_pages && skew_rate == 0; k++) {
		uint64_t i = hot_page(k);

		ram[i * 512] = page_qword(i, 0);
		ram[i * 512 + 100] = page_qword(i, 100);
		ram[i * 512 + 511] = page_qword(i, 511);
	}
	printf("shimvm: writer made %llu passes over %llu pages before the pause\n",
	    (unsigned long long)writer_passes, (unsigned long long)hot_pages);
	fflush(stdout);
}

/* `source`: fill RAM, attach, hand over the state blob when paused. */
static int
run_source(const char *name, uint64_t mem, const char *sock, int huge)
{
	struct migshim_opts so = { .hugepages = huge };
	struct migshim_event ev;
	uint64_t *ram;
	pthread_t wth;
	int writing = 0;

	if ((S = migshim_create_opts(name, mem, MIGSHIM_SOURCE, &so)) == NULL)
		return 2;
	ram = migshim_ram(S);
	for (uint64_t i = 0; i < npages; i++)
		for (unsigned k = 0; page_class(i) != PAGE_ZERO && k < 512; k++)
			ram[i * 512 + k] = page_qword(i, k);
	sock_path = sock;
	attach_vcpus = 0;
	if (migshim_attach(S, sock, 0) < 0)
		return 2;
	if (once_file != NULL)
		once_set(ram, 0);
	if (hot_pages > 0 || once_file != NULL)
		writing = pthread_create(&wth, NULL, writer, ram) == 0;
	printf("shimvm: source ready\n");
	fflush(stdout);
	for (;;) {
		if (wait_event(&ev, 600) < 0)
			return 2;
		if (ev.type == MIGSHIM_EV_PAUSE) {
			if (writing)
				writer_finish(wth, ram);
			writing = 0;
			migshim_send_state(S, STATE_BLOB, sizeof(STATE_BLOB));
		}
		else if (ev.type == MIGSHIM_EV_COMPLETED) {
			printf("shimvm: migrated away\n");
			return 0;
		} else if (ev.type == MIGSHIM_EV_RESUME_LOCAL || ev.type == MIGSHIM_EV_FAILED ||
		    ev.type == MIGSHIM_EV_HANGUP) {
			fprintf(stderr, "shimvm: source: %s\n", ev.reason);
			return 1;
		}
	}
}

/*
 * `dest`: attach an incoming VM, touch pages from many threads once it
 * runs, check every page after completion and print the JSON report.
 */
static int
run_dest(const char *name, uint64_t mem, const char *sock, const char *mode,
    const char *install, const char *bad, int huge)
{
	struct migshim_event ev;
	struct migshim_opts o = { .vcpus = 1, .thread_slots = (unsigned)nthreads,
	    .hugepages = huge };
	pthread_t th[32];
	uint64_t n, errors = 0, t0, stall_ns = 0;
	volatile uint64_t *ram;
	struct sigaction sa = { .sa_sigaction = probe_sigbus, .sa_flags = SA_SIGINFO };
	int poison_early = -2, poison_ok = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	o.mode = !strcmp(mode, "ring") ? MIGSHIM_FAULT_RING : MIGSHIM_FAULT_UFFD;
	o.install = !strcmp(install, "minor") ? MIGSHIM_INSTALL_MINOR :
	    MIGSHIM_INSTALL_COPY;
	if ((S = migshim_create_opts(name, mem, MIGSHIM_INCOMING, &o)) == NULL)
		return 2;
	/* Ring mode: missing pages; both modes: poison as machine checks. */
	if (migshim_sigbus_install(S) < 0)
		return 2;
	sock_path = sock;
	attach_vcpus = 1;
	if (migshim_attach(S, sock, 1) < 0)
		return 2;
	if (wait_event(&ev, 600) < 0 || ev.type != MIGSHIM_EV_START ||
	    ev.blob_len != sizeof(STATE_BLOB) || memcmp(ev.blob, STATE_BLOB, ev.blob_len)) {
		fprintf(stderr, "shimvm: expected START with our state blob\n");
		return 1;
	}
	migshim_report_running(S);
	if (bad != NULL && o.mode == MIGSHIM_FAULT_RING) {
		/* Hostile entries: the daemon must refuse them, not write. */
		int r1 = migshim_fault(S, 0, mem, 4096, mem, RING_KIND_VCPU);
		int r2 = migshim_fault(S, 0, 4096 + 8, 4096, 0, RING_KIND_VCPU);
		int r3 = migshim_fault(S, 0, 0, 0, 0, RING_KIND_VCPU);
		FILE *f = fopen(bad, "w");

		if (f != NULL) {
			fprintf(f, "{\"beyond_ram\":%d,\"unaligned\":%d,\"zero_size\":%d}\n",
			    r1, r2, r3);
			fclose(f);
		}
	}
	/* A poisoned page touched before it arrived: the fetch brings
	 * poison and the toucher gets the machine check. */
	if (npoison > 0)
		poison_early = probe_poison(&((volatile uint64_t *)migshim_ram(S))[poison[0] * 512]);
	lat_ns = calloc((size_t)nthreads * (size_t)touches, sizeof(*lat_ns));
	/* -w FILE: the test says when to touch (it may be holding the source). */
	for (int i = 0; go_file != NULL && access(go_file, F_OK) != 0 && i < 6000; i++) {
		struct migshim_event e;

		if (ev.type != MIGSHIM_EV_START)
			usleep(10000);
		else if (poll_event(&e, 10) == 0)
			ev = e;
	}
	t0 = mono_ns();
	for (long t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, toucher, (void *)t);
	/* Meanwhile: the daemon's word (it may even restart). */
	if (ev.type == MIGSHIM_EV_START)
		ev.type = MIGSHIM_EV_NONE;
	while (__atomic_load_n(&touchers_done, __ATOMIC_ACQUIRE) < nthreads) {
		struct migshim_event e;

		if (ev.type == MIGSHIM_EV_NONE && poll_event(&e, 100) == 0)
			ev = e;
		else if (ev.type != MIGSHIM_EV_NONE)
			usleep(10000);
		if (ev.type == MIGSHIM_EV_FAILED) {
			/* Its pages will never come: the VM is gone. */
			fprintf(stderr, "shimvm: dest: %s\n", ev.reason);
			return 1;
		}
	}
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	t0 = mono_ns() - t0;
	printf("shimvm: touch phase done in %.1f ms\n", t0 / 1e6);
	fflush(stdout);
	while (ev.type != MIGSHIM_EV_COMPLETED && ev.type != MIGSHIM_EV_FAILED &&
	    ev.type != MIGSHIM_EV_HANGUP)
		if (wait_event(&ev, 600) < 0)
			return 1;
	if (ev.type != MIGSHIM_EV_COMPLETED) {
		fprintf(stderr, "shimvm: dest: %s\n", ev.reason);
		return 1;
	}
	ram = migshim_ram(S);
	for (uint64_t i = 0; i < npages; i++)
		if (is_poison(i))
			poison_ok += probe_poison(&ram[i * 512]) == 1;
	errors = verify_all((const uint64_t *)ram);
	n = (uint64_t)nthreads * (uint64_t)touches;
	qsort(lat_ns, n, sizeof(*lat_ns), cmp_u64);
	for (uint64_t k = 0; k < n; k++)
		stall_ns += lat_ns[k];
	printf("{\"mode\":\"%s\",\"threads\":%d,\"stall_ms\":%.3f,\"touches\":%llu,\"bad_touch_values\":%d,"
	    "\"pages_checked\":%llu,\"page_errors\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
	    "\"max_us\":%.1f,\"touch_phase_ms\":%.1f,\"poisoned\":%d,"
	    "\"poison_machine_checks\":%d,\"poison_touched_early\":%d}\n", mode, nthreads,
	    stall_ns / 1e6,
	    (unsigned long long)n, bad_values, (unsigned long long)npages,
	    (unsigned long long)errors, lat_ns[n / 2] / 1e3, lat_ns[n * 99 / 100] / 1e3,
	    lat_ns[n - 1] / 1e3, t0 / 1e6, npoison, poison_ok, poison_early);
	migshim_sigbus_remove();
	return errors == 0 && bad_values == 0 && poison_ok == npoison &&
	    (npoison == 0 || poison_early == 1) ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *name = "shimvm", *sock = NULL, *mode = "uffd", *bad = NULL;
	const char *install = "copy";
	int huge = 0;
	uint64_t mem = 64ull << 20;
	int ch;

	if (argc < 2)
		goto usage;
	optind = 2;
	while ((ch = getopt(argc, argv, "n:m:s:M:I:t:k:b:P:Hw:iW:O:z:C:")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'm': mem = strtoull(optarg, NULL, 0) << 20; break;
		case 's': sock = optarg; break;
		case 'M': mode = optarg; break;
		case 'I': install = optarg; break;
		case 't': nthreads = atoi(optarg); break;
		case 'k': touches = atoi(optarg); break;
		case 'b': bad = optarg; break;
		case 'H': huge = 1; break;
		case 'w': go_file = optarg; break;
		case 'i': interleave = 1; break;
		case 'W': hot_pages = strtoull(optarg, NULL, 0); break;
		case 'O': once_file = optarg; break;
		case 'C':
			content = !strcmp(optarg, "mixed") ? CONTENT_MIXED :
			    !strcmp(optarg, "random") ? CONTENT_RANDOM :
			    !strcmp(optarg, "structured") ? CONTENT_STRUCTURED : -1;
			if (content < 0)
				goto usage;
			break;
		case 'z': skew_rate = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'P':
			for (char *t = strtok(optarg, ","); t && npoison < 8; t = strtok(NULL, ","))
				poison[npoison++] = strtoull(t, NULL, 0);
			break;
		default: goto usage;
		}
	}
	if (sock == NULL || nthreads < 1 || nthreads > 32 || touches < 1 ||
	    (skew_rate > 0 && hot_pages == 0))
		goto usage;
	npages = mem / 4096;

	if (!strcmp(argv[1], "source"))
		return run_source(name, mem, sock, huge);
	if (!strcmp(argv[1], "dest"))
		return run_dest(name, mem, sock, mode, install, bad, huge);
usage:
	fprintf(stderr, "usage: shimvm source|dest -s VMM_SOCKET [-n NAME] [-m MIB] "
	    "[-M uffd|ring] [-I copy|minor] [-t THREADS] [-k TOUCHES] [-b BADFILE] [-P POISONED_PAGES] [-H]\n"
	    "  -H  back guest RAM with 2 MiB hugetlbfs pages\n"
	    "  -W N  source: keep writing N pages until paused (pre-copy tests);\n"
	    "        dest: the threads touch those N pages (-k touches in all per thread)\n"
	    "  -C structured|mixed|random  the content rule (both sides the same)\n"
	    "  -z RATE  with -W: source writes RATE pages/s, skewed (1/rank) over the\n"
	    "        N pages, until paused; dest: the -k touches draw from that skew\n"
	    "  -O FILE  source: 100 pages hold a wrong value until FILE exists\n");
	return 2;
}
