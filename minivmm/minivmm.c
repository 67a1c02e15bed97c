/*
 * minivmm.c: a small real KVM VMM for migrationd's tests, demo and
 * benchmarks. Guest RAM comes from libmigshim; the guest is our own program
 * (guest/) that fills its pages with known patterns, keeps rewriting them
 * (writer) or sits still (quiet), and after a migration verifies every page
 * and reports a verdict that minivmm cross-checks from the RAM itself. An
 * incoming minivmm also compares every byte of RAM with what the source had
 * when it paused (minivmm_verify.c), and says so on one line.
 *
 * Modes: source (default; with --vmm-socket it can migrate away), incoming
 * (--incoming: an empty VM that a migration fills), standalone (no daemon:
 * --passes passes, then verify) and --selftest-snapshot (state blob round
 * trip through a fresh VM).
 *
 * Threads: main is the control thread: it owns the migshim handle, the
 * struct kvm_vm (minivmm_vm.c) and every decision, and sleeps in poll() on the
 * daemon's socket and the vCPU threads' eventfd. vCPU threads only run the
 * guest and record guest events (see minivmm.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libmigshim.h"
#include "minivmm.h"

#define EXIT_INTACT	0
#define EXIT_CORRUPT	1
#define EXIT_ERROR	2

/* What the vCPU threads have reported, copied under the lock. */
struct ctl_view {
	int		 fatal;
	int		 all_filled;
	int		 all_verified;
	uint64_t	 min_passes;
};

static uint64_t
ctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
ctl_view(struct ctl *c, struct ctl_view *cv)
{
	struct kvm_vm *vm = &c->vm;
	int i;

	memset(cv, 0, sizeof(*cv));
	cv->all_filled = cv->all_verified = 1;
	cv->min_passes = UINT64_MAX;
	pthread_mutex_lock(&vm->lock);
	cv->fatal = vm->fatal;
	for (i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		cv->all_filled &= v->filled;
		cv->all_verified &= v->verified;
		if (v->passes < cv->min_passes)
			cv->min_passes = v->passes;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* Writes FILE.tmp and renames it, so a reader never sees half a report. */
static int
ctl_write_report(struct ctl *c, int ok, uint64_t pages, uint64_t zeros,
    uint64_t errors, uint64_t host_errors, uint64_t csum, uint64_t host_csum,
    uint64_t passes)
{
	char tmp[4096];
	FILE *f;

	if (c->report_path == NULL)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", c->report_path) >=
	    (int)sizeof(tmp)) {
		fprintf(stderr, "minivmm: ctl_write_report: path too long\n");
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL) {
		fprintf(stderr, "minivmm: ctl_write_report: %s: %s\n", tmp,
		    strerror(errno));
		return -1;
	}
	fprintf(f, "{\"verdict\":\"%s\",\"pages_checked\":%" PRIu64
	    ",\"zero_pages_checked\":%" PRIu64 ",\"errors\":%" PRIu64
	    ",\"host_errors\":%" PRIu64 ",\"checksum\":\"0x%016" PRIx64 "\""
	    ",\"host_checksum\":\"0x%016" PRIx64 "\",\"passes\":%" PRIu64
	    ",\"vcpus\":%d,\"mem\":%" PRIu64 "}\n",
	    ok ? "intact" : "corrupt", pages, zeros, errors, host_errors, csum,
	    host_csum, passes, c->nvcpus, c->mem);
	if (fclose(f) != 0 || rename(tmp, c->report_path) < 0) {
		fprintf(stderr, "minivmm: ctl_write_report: %s: %s\n",
		    c->report_path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * The host's half of the verdict: reads every byte of every page the guest
 * verified, checks it against the content rule for the generation the
 * guest says it wrote last, and recomputes the guest's checksum. Every vCPU
 * is halted after MV_EV_VERIFIED, so the RAM holds still.
 */
static uint64_t
ctl_host_check(struct ctl *c, const struct mv_slice *sl, uint64_t gen,
    uint64_t *errors)
{
	const uint8_t *ram = migshim_ram(c->shim);
	uint64_t pfn, sum = MV_CSUM_INIT;

	for (pfn = sl->first_pfn; pfn < sl->end_pfn; pfn++) {
		const volatile uint64_t *p = (const volatile uint64_t *)
		    (ram + pfn * MV_PAGE_SIZE);
		unsigned k;

		sum = mv_csum(mv_csum(sum, p[0]), p[MV_QWORDS_PER_PAGE - 1]);
		for (k = 0; k < MV_QWORDS_PER_PAGE; k++) {
			uint64_t have = p[k], want = mv_page_qword(pfn, gen, k);

			if (have == want)
				continue;
			if (*errors < 5)
				fprintf(stderr, "minivmm: host check: page "
				    "0x%" PRIx64 " offset 0x%x holds 0x%016"
				    PRIx64 ", expected 0x%016" PRIx64 "\n", pfn,
				    k * 8, have, want);
			(*errors)++;
			break;
		}
	}
	return sum;
}

/*
 * The report page as the host expects it after a clean verification:
 * vCPU i's report says what its slice holds and the checksum the host
 * computed, the rest of the page is zero.
 */
static void
ctl_want_reports(const struct ctl *c, const struct mv_params *params,
    const uint64_t *gen, const uint64_t *hsum, void *page)
{
	int i;

	memset(page, 0, MV_PAGE_SIZE);
	for (i = 0; i < c->nvcpus; i++) {
		const struct mv_slice *sl = &params->slice[i];
		struct mv_report r;
		uint64_t pfn;

		memset(&r, 0, sizeof(r));
		r.status = MV_ST_VERIFIED;
		r.vcpu = (uint32_t)i;
		r.gen = gen[i];
		for (pfn = sl->first_pfn; pfn < sl->end_pfn; pfn++) {
			if (mv_is_zero_page(pfn))
				r.zero_checked++;
			else
				r.pages_checked++;
		}
		r.checksum = hsum[i];
		r.first_bad_pfn = ~0ULL;
		memcpy((uint8_t *)page + (size_t)i * sizeof(r), &r, sizeof(r));
	}
}

/*
 * After a migration (or the selftest's restore): every page against the
 * source's digests, or the rule where it was written since (verify_ram).
 */
static int
ctl_verify(struct ctl *c, const struct mv_params *params, const uint64_t *gen,
    const uint64_t *hsum)
{
	struct verify_want w;
	void *page;
	int r;

	page = malloc(MV_PAGE_SIZE);
	if (page == NULL) {
		fprintf(stderr, "minivmm: ctl_verify: out of memory\n");
		return -1;
	}
	ctl_want_reports(c, params, gen, hsum, page);
	memset(&w, 0, sizeof(w));
	w.digests = c->digests;
	w.ndigests = c->ndigests;
	w.ram_size = c->mem;
	w.nvcpus = c->nvcpus;
	w.slice = params->slice;
	w.gen = gen;
	w.report_page = page;
	r = verify_ram(&c->vm, &w);
	free(page);
	return r;
}

/* Collects, cross-checks and reports the verdict; returns the exit code. */
static int
ctl_verdict(struct ctl *c)
{
	const uint8_t *ram = migshim_ram(c->shim);
	struct mv_params params;
	struct mv_report r;
	uint64_t pages = 0, zeros = 0, errors = 0, host_errors = 0;
	uint64_t csum = 0, host_csum = 0, passes = UINT64_MAX;
	uint64_t gen[MV_MAX_VCPUS] = { 0 }, hsum[MV_MAX_VCPUS] = { 0 };
	uint64_t first = MV_DATA_GPA / MV_PAGE_SIZE;
	uint64_t end = c->mem / MV_PAGE_SIZE;
	char line[512];
	int i, ok = 1, sliced = 1;

	memcpy(&params, ram + MV_PARAMS_GPA, sizeof(params));
	if (params.magic != MV_PARAMS_MAGIC ||
	    params.version != MV_PARAMS_VERSION ||
	    params.nvcpus != (uint32_t)c->nvcpus ||
	    params.ram_size != c->mem) {
		fprintf(stderr, "minivmm: ctl_verdict: guest params page is "
		    "damaged\n");
		ok = 0;
		passes = 0;
		goto out;
	}
	for (i = 0; i < c->nvcpus; i++) {
		const struct mv_slice *sl = &params.slice[i];
		uint64_t he = 0, hc;

		memcpy(&r, ram + MV_REPORT_GPA + (size_t)i * sizeof(r),
		    sizeof(r));
		if (sl->first_pfn < first || sl->first_pfn > sl->end_pfn ||
		    sl->end_pfn > end || (i > 0 &&
		    sl->first_pfn != params.slice[i - 1].end_pfn)) {
			fprintf(stderr, "minivmm: ctl_verdict: vcpu %d: bad "
			    "slice in params\n", i);
			ok = sliced = 0;
			continue;
		}
		if (r.status != MV_ST_VERIFIED || r.vcpu != (uint32_t)i) {
			fprintf(stderr, "minivmm: ctl_verdict: vcpu %d did not "
			    "verify (status %u)\n", i, r.status);
			ok = 0;
		}
		hc = ctl_host_check(c, sl, r.gen, &he);
		gen[i] = r.gen;
		hsum[i] = hc;
		if (hc != r.checksum) {
			fprintf(stderr, "minivmm: ctl_verdict: vcpu %d: guest "
			    "checksum 0x%016" PRIx64 ", host 0x%016" PRIx64
			    "\n", i, r.checksum, hc);
			ok = 0;
		}
		if (r.errors != 0)
			fprintf(stderr, "minivmm: vcpu %d: %" PRIu64 " errors; "
			    "first bad page 0x%" PRIx64 " held 0x%016" PRIx64
			    "\n", i, r.errors, r.first_bad_pfn,
			    r.first_bad_val);
		pages += r.pages_checked;
		zeros += r.zero_checked;
		errors += r.errors;
		host_errors += he;
		csum += r.checksum;
		host_csum += hc;
		if (r.gen < passes)
			passes = r.gen;
	}
	if (errors != 0 || host_errors != 0 || csum != host_csum)
		ok = 0;
	/* Also when the guest found errors: it says which byte is wrong. */
	if (sliced && c->digests != NULL &&
	    ctl_verify(c, &params, gen, hsum) < 0)
		ok = 0;
out:
	snprintf(line, sizeof(line), "%s pages=%" PRIu64 " zero_pages=%"
	    PRIu64 " checksum=0x%016" PRIx64 " errors=%" PRIu64 "%s",
	    ok ? "intact" : "CORRUPT", pages, zeros, csum, errors,
	    ok ? "" : " (see stderr)");
	printf("minivmm: guest verdict: %s\n", line);
	if (c->verbose)
		fprintf(stderr, "minivmm: passes %" PRIu64 " host_checksum "
		    "0x%016" PRIx64 " host_errors %" PRIu64 "\n", passes,
		    host_csum, host_errors);
	if (c->shim_live && c->mode == CTL_INCOMING &&
	    migshim_report_verdict(c->shim, ok, line) < 0)
		fprintf(stderr, "minivmm: ctl_verdict: could not report the "
		    "verdict to migrationd\n");
	if (ctl_write_report(c, ok, pages, zeros, errors, host_errors, csum,
	    host_csum, passes) < 0)
		return EXIT_ERROR;
	return ok ? EXIT_INTACT : EXIT_CORRUPT;
}

static void
ctl_finish(struct ctl *c, int code)
{
	c->phase = PH_DONE;
	c->exit_code = code;
}

static void
ctl_set_mailbox(struct ctl *c, const char *why)
{
	if (c->verbose)
		fprintf(stderr, "minivmm: %s: asking the guest to verify\n",
		    why);
	vm_set_mailbox(&c->vm);
	c->phase = PH_VERIFYING;
}

/*
 * --selftest-snapshot: pause, serialise, throw the VM away, build a new one
 * over the same RAM and restore. Bad blobs must be refused first.
 */
static int
ctl_snapshot(struct ctl *c)
{
	struct kvm_vm *vm = &c->vm;
	char why[256];
	void *blob = NULL;
	uint8_t *bad;
	size_t len;

	if (vm_pause(vm) < 0 || vm_state_save(vm, &blob, &len) < 0)
		goto fail;

	bad = malloc(len);
	if (bad == NULL)
		goto fail;
	memcpy(bad, blob, len);
	bad[0] ^= 1;
	if (vm_state_check(vm, bad, len, why, sizeof(why)) == 0)
		goto refused_nothing;
	memcpy(bad, blob, len);
	bad[len / 2] ^= 0x10;
	if (vm_state_check(vm, bad, len, why, sizeof(why)) == 0)
		goto refused_nothing;
	if (vm_state_check(vm, blob, len - 1, why, sizeof(why)) == 0)
		goto refused_nothing;
	free(bad);

	/* The fresh VM logs its writes, as an incoming one does. */
	vm_destroy(vm);
	vm->dirty_log = 1;
	if (vm_create(vm) < 0 || vm_state_restore(vm, blob, len) < 0 ||
	    vm_state_digests(blob, len, &c->digests, &c->ndigests) < 0)
		goto fail;
	/* The negative case: RAM that changed while the VM was away. */
	if (c->flip_gpa != UINT64_MAX) {
		((volatile uint8_t *)migshim_ram(c->shim))[c->flip_gpa] ^= 0x40;
		printf("minivmm: selftest: flipped bit 6 of the byte at GPA "
		    "0x%" PRIx64 "\n", c->flip_gpa);
	}
	if (vm_start(vm) < 0)
		goto fail;
	printf("minivmm: selftest: %zu-byte state blob restored into a fresh "
	    "VM\n", len);
	free(blob);
	return 0;
refused_nothing:
	fprintf(stderr, "minivmm: ctl_snapshot: a damaged blob passed "
	    "validation\n");
	free(bad);
fail:
	free(blob);
	return -1;
}

/*
 * --selftest-early: waits until every vCPU has begun to fill its pages
 * (its report says MV_ST_FILLING: the guest has set up its IDT, which lives
 * in the image, and written none or a few of its pages), polling the
 * report page from the host.
 */
static int
ctl_wait_filling(struct ctl *c)
{
	const volatile struct mv_report *r = (const volatile struct mv_report *)
	    ((const uint8_t *)migshim_ram(c->shim) + MV_REPORT_GPA);
	int i, n, tries;

	for (tries = 0; tries < 100000; tries++) {
		for (i = n = 0; i < c->nvcpus; i++)
			n += r[i].status >= MV_ST_FILLING;
		if (n == c->nvcpus)
			return 0;
		usleep(100);
	}
	fprintf(stderr, "minivmm: ctl_wait_filling: the guest did not start "
	    "filling within 10 s\n");
	return -1;
}

/* Acts on what the vCPU threads reported. */
static void
ctl_guest(struct ctl *c)
{
	struct ctl_view cv;

	ctl_view(c, &cv);
	if (cv.fatal) {
		fprintf(stderr, "minivmm: a vCPU stopped on an unexpected "
		    "exit; giving up\n");
		ctl_finish(c, EXIT_ERROR);
		return;
	}
	if (cv.all_filled && !c->ready_printed && c->mode != CTL_INCOMING) {
		printf("minivmm: guest ready\n");
		c->ready_printed = 1;
		if (c->verbose)
			fprintf(stderr, "minivmm: filled in %.1f ms\n",
			    (double)(ctl_now_ns() - c->t_start_ns) / 1e6);
	}

	switch (c->phase) {
	case PH_RUNNING:
		if (!cv.all_filled)
			break;
		if (c->mode == CTL_STANDALONE &&
		    (c->workload == MV_WORKLOAD_QUIET ||
		    cv.min_passes >= c->passes))
			ctl_set_mailbox(c, "standalone run done");
		/* writer: snapshot once every vCPU is inside another pass */
		if (c->mode == CTL_SELFTEST &&
		    (c->workload == MV_WORKLOAD_QUIET || cv.min_passes >= 1)) {
			if (ctl_snapshot(c) < 0) {
				ctl_finish(c, EXIT_ERROR);
				return;
			}
			c->phase = PH_RESTORED;
			ctl_guest(c);
		}
		break;
	case PH_RESTORED:
		/*
		 * Counters restart with the new vCPUs: the first pass is the
		 * rest of the one the snapshot interrupted, the second a full
		 * one over pages written before and after the snapshot.
		 */
		if (c->workload == MV_WORKLOAD_QUIET || cv.min_passes >= 2)
			ctl_set_mailbox(c, "selftest pass after restore done");
		break;
	case PH_VERIFYING:
		if (cv.all_verified)
			ctl_finish(c, ctl_verdict(c));
		break;
	case PH_WAIT_START:
	case PH_DONE:
		break;
	}
}

static void
ctl_on_pause(struct ctl *c)
{
	uint64_t t0;
	void *blob;
	size_t len;

	if (vm_pause(&c->vm) < 0) {
		/* Without state the daemon cannot go on; keep the guest. */
		fprintf(stderr, "minivmm: ctl_on_pause: cannot pause, VM keeps "
		    "running\n");
		vm_resume(&c->vm);
		return;
	}
	c->paused = 1;
	t0 = ctl_now_ns();
	if (vm_state_save(&c->vm, &blob, &len) < 0)
		return;
	t0 = ctl_now_ns() - t0;
	if (migshim_send_state(c->shim, blob, len) < 0)
		fprintf(stderr, "minivmm: ctl_on_pause: migshim_send_state "
		    "failed\n");
	else
		printf("minivmm: paused for migration, sent %zu-byte state "
		    "(vCPUs and page digests, taken in %.1f ms)\n", len,
		    (double)t0 / 1e6);
	free(blob);
}

static void
ctl_on_start(struct ctl *c, const struct migshim_event *ev)
{
	char why[256];

	if (c->phase != PH_WAIT_START) {
		fprintf(stderr, "minivmm: ctl_on_start: VM already started; "
		    "ignoring a second START\n");
		return;
	}
	if (vm_state_check(&c->vm, ev->blob, ev->blob_len, why,
	    sizeof(why)) < 0) {
		fprintf(stderr, "minivmm: refusing incoming state: %s\n", why);
		ctl_finish(c, EXIT_ERROR);
		return;
	}
	if (vm_state_restore(&c->vm, ev->blob, ev->blob_len) < 0 ||
	    vm_state_digests(ev->blob, ev->blob_len, &c->digests,
	    &c->ndigests) < 0 || vm_start(&c->vm) < 0) {
		ctl_finish(c, EXIT_ERROR);
		return;
	}
	c->phase = PH_RUNNING;
	if (migshim_report_running(c->shim) < 0)
		fprintf(stderr, "minivmm: ctl_on_start: "
		    "migshim_report_running failed\n");
	printf("minivmm: incoming VM running (%zu-byte state)\n",
	    ev->blob_len);
}

static void
ctl_shim_event(struct ctl *c, const struct migshim_event *ev)
{
	switch (ev->type) {
	case MIGSHIM_EV_NONE:
		break;
	case MIGSHIM_EV_PAUSE:
		if (c->mode != CTL_SOURCE)
			goto unexpected;
		ctl_on_pause(c);
		break;
	case MIGSHIM_EV_RESUME_LOCAL:
		if (c->mode != CTL_SOURCE)
			goto unexpected;
		printf("minivmm: migration aborted (%s); resuming here\n",
		    ev->reason);
		c->paused = 0;
		vm_resume(&c->vm);
		break;
	case MIGSHIM_EV_START:
		if (c->mode != CTL_INCOMING)
			goto unexpected;
		ctl_on_start(c, ev);
		break;
	case MIGSHIM_EV_COMPLETED:
		if (c->mode == CTL_SOURCE) {
			printf("minivmm: VM migrated away, exiting\n");
			ctl_finish(c, EXIT_INTACT);
		} else if (c->phase == PH_RUNNING) {
			printf("minivmm: migration completed\n");
			ctl_set_mailbox(c, "migration completed");
		} else {
			fprintf(stderr, "minivmm: COMPLETED before START; "
			    "ignored\n");
		}
		break;
	case MIGSHIM_EV_FAILED:
		printf("minivmm: migration failed: %s; %s\n", ev->reason,
		    c->mode == CTL_SOURCE && c->paused ?
		    "VM stays paused (the destination may have run)" :
		    "VM keeps running");
		break;
	case MIGSHIM_EV_HANGUP:
		printf("minivmm: migrationd went away (%s); VM keeps its "
		    "RAM\n", ev->reason);
		c->shim_live = 0;
		break;
	default:
		fprintf(stderr, "minivmm: unknown migshim event %d\n",
		    (int)ev->type);
		break;
	}
	return;
unexpected:
	fprintf(stderr, "minivmm: ignoring migshim event %d in this mode\n",
	    (int)ev->type);
}

static void
ctl_shim(struct ctl *c)
{
	struct migshim_event ev;

	while (c->shim_live && c->phase != PH_DONE) {
		memset(&ev, 0, sizeof(ev));
		if (migshim_next_event(c->shim, &ev) < 0) {
			fprintf(stderr, "minivmm: lost migrationd; VM keeps "
			    "its RAM\n");
			c->shim_live = 0;
			return;
		}
		if (ev.type == MIGSHIM_EV_NONE)
			return;
		ctl_shim_event(c, &ev);
	}
}

static int
ctl_loop(struct ctl *c)
{
	while (c->phase != PH_DONE) {
		struct pollfd pfd[2];
		nfds_t n = 1;
		int r;

		pfd[0].fd = c->vm.notify_fd;
		pfd[0].events = POLLIN;
		pfd[1].revents = 0;
		if (c->shim_live) {
			pfd[1].fd = migshim_fd(c->shim);
			pfd[1].events = POLLIN;
			n = 2;
		}
		/* Without the daemon, try to attach again every 250 ms: a
		 * restarted migrationd picks up where the old one was. */
		r = poll(pfd, n, c->shim_live || c->socket_path == NULL ? -1 : 250);
		if (!c->shim_live && c->socket_path != NULL &&
		    migshim_attach(c->shim, c->socket_path, c->nvcpus) == 0) {
			printf("minivmm: re-attached to migrationd\n");
			fflush(stdout);
			c->shim_live = 1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "minivmm: ctl_loop: poll: %s\n",
			    strerror(errno));
			return EXIT_ERROR;
		}
		if (pfd[0].revents)
			vm_drain_notify(&c->vm);
		ctl_guest(c);
		if (c->phase != PH_DONE && n == 2 && pfd[1].revents)
			ctl_shim(c);
		/* a START or COMPLETED may have changed what to look at */
		if (c->phase != PH_DONE)
			ctl_guest(c);
	}
	return c->exit_code;
}

static void
ctl_sigusr1(int sig)
{
	(void)sig;	/* only makes KVM_RUN return EINTR */
}

int
main(int argc, char **argv)
{
	struct ctl c;
	struct sigaction sa;
	enum migshim_role role;
	int code = EXIT_ERROR;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&c, 0, sizeof(c));
	c.vm.kvm_fd = c.vm.vm_fd = c.vm.notify_fd = -1;
	if (ctl_parse_args(&c, argc, argv) < 0)
		return EXIT_ERROR;

	/* No SA_RESTART: the point is to interrupt KVM_RUN. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_sigusr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		fprintf(stderr, "minivmm: sigaction: %s\n", strerror(errno));
		return EXIT_ERROR;
	}

	role = c.mode == CTL_INCOMING ? MIGSHIM_INCOMING : MIGSHIM_SOURCE;
	if (role == MIGSHIM_INCOMING) {
		/* Ring + annotated exits where KVM gives them; else block in uffd. */
		struct migshim_opts o = { .vcpus = (unsigned)c.nvcpus };
		char why[256];

		o.mode = migshim_probe_annotated(why, sizeof(why)) == 1 ?
		    MIGSHIM_FAULT_RING : MIGSHIM_FAULT_UFFD;
		printf("minivmm: fault path: %s (%s)\n", o.mode == MIGSHIM_FAULT_RING ?
		    "fault ring, annotated KVM exits" : "blocking userfaultfd", why);
		if (c.install_minor) {
			if (migshim_probe_minor(0, why, sizeof(why)) != 1) {
				fprintf(stderr, "minivmm: --install minor: %s\n", why);
				return EXIT_ERROR;
			}
			o.install = MIGSHIM_INSTALL_MINOR;
			printf("minivmm: installs: minor mode (%s)\n", why);
		}
		fflush(stdout);
		c.shim = migshim_create_opts(c.name, c.mem, role, &o);
		if (c.shim != NULL && o.mode == MIGSHIM_FAULT_RING &&
		    migshim_sigbus_install(c.shim) < 0)
			return EXIT_ERROR;
	} else {
		c.shim = migshim_create(c.name, c.mem, role);
	}
	if (c.shim == NULL)
		return EXIT_ERROR;
	if (vm_open(&c.vm, migshim_ram(c.shim), migshim_ram_size(c.shim),
	    c.nvcpus, c.verbose) < 0)
		goto out;
	c.vm.shim = c.shim;
	/* Incoming: KVM logs which pages the guest writes here (verify_ram) */
	c.vm.dirty_log = c.mode == CTL_INCOMING;
	/* Incoming: the VM is created now, but no RAM is touched. */
	if (vm_create(&c.vm) < 0)
		goto out;
	c.t_start_ns = ctl_now_ns();
	if (c.mode == CTL_INCOMING) {
		c.phase = PH_WAIT_START;
	} else {
		if (vm_load_guest(&c.vm, minivmm_guest_image,
		    minivmm_guest_image_len, c.workload) < 0 ||
		    vm_boot_vcpus(&c.vm) < 0 || vm_start(&c.vm) < 0)
			goto out;
		c.phase = PH_RUNNING;
		/* --selftest-early: a migration that starts during the fill */
		if (c.snapshot_early) {
			if (ctl_wait_filling(&c) < 0 || ctl_snapshot(&c) < 0)
				goto out;
			c.phase = PH_RESTORED;
		}
	}
	if (c.socket_path != NULL) {
		if (migshim_attach(c.shim, c.socket_path, c.nvcpus) < 0)
			goto out;
		c.shim_live = 1;
	}
	if (c.verbose)
		fprintf(stderr, "minivmm: %s: %d vCPUs, %" PRIu64 " MiB, "
		    "%s\n", c.name, c.nvcpus, c.mem >> 20,
		    c.mode == CTL_INCOMING ? "incoming" :
		    c.workload == MV_WORKLOAD_QUIET ? "quiet" : "writer");

	code = ctl_loop(&c);
	if (code == EXIT_ERROR) {
		/* A vCPU may sit in a fault nobody will serve: no joins. */
		fflush(NULL);
		_exit(code);
	}
out:
	vm_close(&c.vm);
	migshim_destroy(c.shim);
	free(c.digests);
	return code;
}
