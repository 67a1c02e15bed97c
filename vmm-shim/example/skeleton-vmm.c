/*
 * skeleton-vmm: the smallest VMM migrationd can migrate, built against the
 * installed libmigshim (doc/vmm-integration.md walks through it):
 *
 *   cc -O2 -o skeleton-vmm skeleton-vmm.c $(pkg-config --cflags --libs migshim) -pthread
 *   skeleton-vmm source   VMM_SOCKET NAME MIB          # a VM that runs here
 *   skeleton-vmm incoming VMM_SOCKET NAME MIB [ring] [minor]
 *
 * Its "vCPU" is a thread, not KVM: it sweeps guest RAM page by page, and in
 * pass `gen` writes every qword of page p as word(p, k, gen). That is enough
 * to show every duty of a VMM but the KVM_RUN loop (see the guide and
 * minivmm/minivmm_vcpu.c): guest RAM from the shim, the attach, pausing and
 * handing over the vCPU state, resuming from it on the destination with
 * pages still missing, the daemon going away, and the end of a migration.
 * The vCPU state is where the sweep stood, so the destination knows what
 * every byte must hold: pages before `page` hold pass `gen`, the rest pass
 * gen - 1. It checks every byte against that and prints
 * "skeleton-vmm: verified N pages, M bytes"; exit 0 only if all matched.
 */
#include <migrationd/libmigshim.h>

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QWORDS 512	/* per 4 KiB page */

/* The vCPU state: opaque to migrationd, carried from source to destination. */
struct vcpu_state {
	char		magic[8];	/* "SKELVM1" */
	uint64_t	gen;		/* the pass the sweep is in */
	uint64_t	page;		/* the next page it writes */
};

static struct migshim *shim;
static uint64_t *ram, npages;
static struct vcpu_state st = { "SKELVM1", 1, 0 };
static volatile int stop;	/* the control thread asks the vCPU to stop */
static uint64_t compared, mismatches;

static uint64_t
word(uint64_t p, unsigned k, uint64_t gen)
{
	return gen == 0 ? 0 : (0x534b454cull << 32) ^ (p << 12) ^ ((uint64_t)k << 3) ^ (gen << 48);
}

/* Compares page p with pass gen (every byte), counting what it compared. */
static void
check_page(uint64_t p, uint64_t gen)
{
	for (unsigned k = 0; k < QWORDS; k++)
		if (ram[p * QWORDS + k] != word(p, k, gen)) {
			if (mismatches++ < 4)
				fprintf(stderr, "skeleton-vmm: page %llu qword %u differs\n",
				    (unsigned long long)p, k);
			break;
		}
	compared++;
}

/*
 * The guest. On the source it sweeps until stopped. On the destination
 * (`resumed`) it first finishes the pass it was in, checking each page
 * before it overwrites it: those pages are touched before the background
 * stream may have brought them, so they arrive on demand (a blocking
 * userfaultfd, or in ring mode the shim's SIGBUS handler).
 */
static void *
vcpu(void *resumed)
{
	while (!stop) {
		if (resumed)
			check_page(st.page, st.gen - 1);
		for (unsigned k = 0; k < QWORDS; k++)
			ram[st.page * QWORDS + k] = word(st.page, k, st.gen);
		if (++st.page % 256 == 0 && !resumed)
			usleep(200);	/* a guest, not a benchmark */
		if (st.page < npages)
			continue;
		if (resumed)
			return NULL;	/* the pass is done: the guest halts */
		st.page = 0;
		st.gen++;
		if (st.gen == 3) {
			printf("skeleton-vmm: source ready\n");
			fflush(stdout);
		}
	}
	return NULL;
}

/*
 * The control thread's one duty towards the daemon: read its events. A
 * HANGUP (the daemon restarted) means attach again; the shim presents the
 * secret of the first attach, so only this process gets its VM back.
 */
static int
next_event(const char *sock, struct migshim_event *ev)
{
	struct pollfd pfd = { .fd = migshim_fd(shim), .events = POLLIN };

	for (;;) {
		if (poll(&pfd, 1, 600 * 1000) <= 0 || migshim_next_event(shim, ev) < 0)
			return -1;
		if (ev->type == MIGSHIM_EV_HANGUP) {
			fprintf(stderr, "skeleton-vmm: daemon went away: %s\n", ev->reason);
			for (int i = 0; i < 300 && migshim_attach(shim, sock, 1) < 0; i++)
				usleep(100 * 1000);
			pfd.fd = migshim_fd(shim);
			continue;
		}
		if (ev->type != MIGSHIM_EV_NONE)
			return 0;
	}
}

static int
run_source(const char *sock, const char *name, uint64_t size)
{
	struct migshim_event ev;
	pthread_t t;

	/* Guest RAM is the shim's memfd, sealed at its size. A KVM VMM hands
	 * migshim_ram() to KVM_SET_USER_MEMORY_REGION at guest address 0. */
	if ((shim = migshim_create_opts(name, size, MIGSHIM_SOURCE, NULL)) == NULL)
		return 2;
	ram = migshim_ram(shim);
	pthread_create(&t, NULL, vcpu, NULL);
	if (migshim_attach(shim, sock, 1) < 0)
		return 2;
	for (;;) {
		if (next_event(sock, &ev) < 0)
			return 2;
		switch (ev.type) {
		case MIGSHIM_EV_PAUSE:
			/* Stop the vCPUs, then hand over their state. From here
			 * on the guest must not write its RAM on this host. */
			stop = 1;
			pthread_join(t, NULL);
			migshim_send_state(shim, &st, sizeof(st));
			break;
		case MIGSHIM_EV_RESUME_LOCAL:
			/* The migration ended before the destination ran. */
			fprintf(stderr, "skeleton-vmm: resuming here: %s\n", ev.reason);
			stop = 0;
			pthread_create(&t, NULL, vcpu, NULL);
			break;
		case MIGSHIM_EV_COMPLETED:
			/* Every page is on the destination: this VM is gone. */
			printf("skeleton-vmm: migrated away (pass %llu, page %llu)\n",
			    (unsigned long long)st.gen, (unsigned long long)st.page);
			migshim_destroy(shim);
			return 0;
		default:
			fprintf(stderr, "skeleton-vmm: source: %s\n", ev.reason);
			return 1;
		}
	}
}

static int
run_incoming(const char *sock, const char *name, uint64_t size, int ring, int minor)
{
	struct migshim_opts o = {
		.mode = ring ? MIGSHIM_FAULT_RING : MIGSHIM_FAULT_UFFD,
		.vcpus = 1, .thread_slots = 2,
		.install = minor ? MIGSHIM_INSTALL_MINOR : MIGSHIM_INSTALL_COPY,
	};
	struct migshim_event ev;
	pthread_t t;
	char verdict[128];
	uint64_t resumed_at;

	/* Empty RAM behind a userfaultfd: no page may be touched before START. */
	if ((shim = migshim_create_opts(name, size, MIGSHIM_INCOMING, &o)) == NULL)
		return 2;
	ram = migshim_ram(shim);
	/* Ring mode: a thread touching a missing page takes SIGBUS, the shim's
	 * handler posts it to the ring and retries. Both modes: a page the
	 * source could not read arrives as a machine check (BUS_MCEERR_AR). */
	if (migshim_sigbus_install(shim) < 0 || migshim_attach(shim, sock, 1) < 0)
		return 2;
	if (next_event(sock, &ev) < 0 || ev.type != MIGSHIM_EV_START ||
	    ev.blob_len != sizeof(st) || memcmp(ev.blob, "SKELVM1", 8) != 0) {
		fprintf(stderr, "skeleton-vmm: expected START with a vCPU state\n");
		return 1;
	}
	memcpy(&st, ev.blob, sizeof(st));
	if (st.gen == 0 || st.page >= npages) {
		fprintf(stderr, "skeleton-vmm: vCPU state out of range\n");
		return 1;
	}
	resumed_at = st.page;
	/* Restore the vCPUs, run them, then say so: the switch-over is done. */
	pthread_create(&t, NULL, vcpu, (void *)1);
	migshim_report_running(shim);
	do {
		if (next_event(sock, &ev) < 0)
			return 1;
	} while (ev.type != MIGSHIM_EV_COMPLETED && ev.type != MIGSHIM_EV_FAILED);
	pthread_join(t, NULL);
	if (ev.type == MIGSHIM_EV_FAILED) {
		/* After the switch-over a failure loses the VM: its missing
		 * pages will never come. A real VMM stops the guest. */
		fprintf(stderr, "skeleton-vmm: migration failed: %s\n", ev.reason);
		return 1;
	}
	/* Every page is present now: check the ones the sweep had passed on
	 * the source (the others were checked before it overwrote them). */
	for (uint64_t p = 0; p < resumed_at; p++)
		check_page(p, st.gen);
	printf("skeleton-vmm: verified %llu pages, %llu bytes against the source's sweep "
	    "(pass %llu)%s\n", (unsigned long long)compared,
	    (unsigned long long)compared * QWORDS * 8, (unsigned long long)st.gen,
	    mismatches ? ": MISMATCH" : "");
	snprintf(verdict, sizeof(verdict), "skeleton-vmm: %llu of %llu pages as on the source",
	    (unsigned long long)(compared - mismatches), (unsigned long long)npages);
	migshim_report_verdict(shim, mismatches == 0, verdict);
	migshim_sigbus_remove();
	migshim_destroy(shim);
	return mismatches == 0 && compared == npages ? 0 : 1;
}

int
main(int argc, char **argv)
{
	uint64_t size;

	if (argc < 5 || (size = strtoull(argv[4], NULL, 0) << 20) == 0) {
		fprintf(stderr, "usage: skeleton-vmm source|incoming VMM_SOCKET NAME MIB "
		    "[ring] [minor]\n");
		return 2;
	}
	npages = size / (QWORDS * 8);
	if (strcmp(argv[1], "source") == 0)
		return run_source(argv[2], argv[3], size);
	return run_incoming(argv[2], argv[3], size, argc > 5 && !strcmp(argv[5], "ring"),
	    (argc > 5 && !strcmp(argv[argc - 1], "minor")));
}
