/*
 * test_ring_answer: what a vCPU thread hears back through the real fault
 * ring (migshim_kvm_exit on an annotated EFAULT), with a thread playing the
 * daemon's part on the same ring: DONE means retry the access, ERROR with
 * -EHWPOISON means the page arrived as poison (MIGSHIM_KVM_POISON, as KVM's
 * own EHWPOISON would say, so the VMM injects a machine check), another
 * error is an error, -EAGAIN is a retry. The ring is the one libmigshim
 * maps in ring mode: lib/ring.c's layout, states and futex wake-ups.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mig_compat.h"
#include "ring.h"
#include "shim_int.h"
#include "unit.h"

static struct migshim S;
static int answer;	/* the daemon's answer for the next post */

/* The daemon's part: take the posted slot 0, answer it. */
static void *
daemon_side(void *arg)
{
	struct ring_slot *r = ring_slot(S.ring, 0);

	(void)arg;
	for (int i = 0; i < 2000000 && !ring_cas(r, RING_POSTED, RING_TAKEN); i++)
		usleep(1);
	r->error = answer;
	ring_store(r, answer ? RING_ERROR : RING_DONE);
	ring_futex_wake(r);
	return NULL;
}

static enum migshim_kvm_action
fault_with(int daemon_answer, struct migshim_kvm_fault *f)
{
	static uint8_t runbuf[4096] __attribute__((aligned(64)));
	struct kvm_run *run = (struct kvm_run *)runbuf;
	struct mig_kvm_memory_fault *mf = (struct mig_kvm_memory_fault *)(void *)&run->mmio;
	enum migshim_kvm_action a;
	pthread_t t;

	answer = daemon_answer;
	memset(runbuf, 0, sizeof(runbuf));
	run->exit_reason = KVM_EXIT_MEMORY_FAULT;
	mf->gpa = 3 * 4096 + 8;
	mf->size = 8;
	pthread_create(&t, NULL, daemon_side, NULL);
	a = migshim_kvm_exit(&S, 0, -1, EFAULT, run, f);
	pthread_join(t, NULL);
	CHECK_EQ(ring_slot(S.ring, 0)->offset, 3 * 4096);
	return a;
}

int
main(void)
{
	size_t len = ring_bytes(4);
	struct migshim_kvm_fault f;

	S.ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(S.ring != MAP_FAILED);
	if (S.ring == MAP_FAILED)
		return unit_done("test_ring_answer");
	ring_init(S.ring, 4, 1, 4096);
	S.mode = MIGSHIM_FAULT_RING;
	S.nslots = 4;
	S.nvcpu = 1;
	S.page_size = 4096;
	S.ram_size = 64 * 4096;
	S.doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	CHECK_EQ(fault_with(0, &f), MIGSHIM_KVM_RETRY);
	CHECK_EQ(fault_with(-EHWPOISON, &f), MIGSHIM_KVM_POISON);
	CHECK_EQ(f.err, EHWPOISON);
	CHECK_EQ(fault_with(-EIO, &f), MIGSHIM_KVM_ERROR);
	CHECK_EQ(f.err, EIO);
	CHECK_EQ(fault_with(-EAGAIN, &f), MIGSHIM_KVM_RETRY);
	close(S.doorbell);
	munmap(S.ring, len);
	return unit_done("test_ring_answer");
}
