/*
 * minivmm_vcpu.c: minivmm's vCPU threads and how the control thread steers
 * them. vm_start() starts one thread per vCPU; each runs KVM_RUN and handles
 * the exits (port I/O guest events, HLT, and the faults libmigshim serves)
 * here. The control thread parks them (vm_pause), lets them run again
 * (vm_resume), wakes them for the mailbox (vm_set_mailbox) and hears from
 * them through vm->notify_fd (vm_drain_notify); see the locking notes in
 * minivmm.h. Creating and destroying the vCPUs is minivmm_vm.c's.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libmigshim.h"
#include "minivmm.h"

static void	*vcpu_thread(void *arg);

static uint64_t
vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * kvm_run's byte at offset 1 is `immediate_exit` in the 6.1 headers and
 * `immediate_exit__unsafe` in newer ones; address it by offset so either
 * header builds. Written by the control thread while the vCPU may be inside
 * KVM_RUN, which reads it on entry: hence the atomic store.
 */
_Static_assert(offsetof(struct kvm_run, request_interrupt_window) == 0 &&
    offsetof(struct kvm_run, padding1) == 2, "kvm_run layout");

static void
vcpu_set_immediate_exit(struct vcpu *v, uint8_t val)
{
	__atomic_store_n((uint8_t *)v->run + 1, val, __ATOMIC_SEQ_CST);
}

/*
 * [lock] held, after setting stop or exiting: makes every vCPU thread look
 * at them. One that may be inside KVM_RUN is kicked out of it
 * (immediate_exit, then SIGUSR1); parked ones are woken.
 */
void
vm_kick_vcpus(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->thread_started && !v->parked && !v->exited) {
			vcpu_set_immediate_exit(v, 1);
			pthread_kill(v->thread, SIGUSR1);
		}
	}
	pthread_cond_broadcast(&vm->cond);
}

static void
vm_notify(struct kvm_vm *vm)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already nonzero: the control thread
	 * will wake anyway. */
	if (write(vm->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		fprintf(stderr, "minivmm: vm_notify: %s\n", strerror(errno));
}

void
vm_drain_notify(struct kvm_vm *vm)
{
	uint64_t n;

	while (read(vm->notify_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		;
}

/* Starts one thread per vCPU; halted vCPUs (from a blob) start parked. */
int
vm_start(struct kvm_vm *vm)
{
	int i, r;

	pthread_mutex_lock(&vm->lock);
	vm->stop = 0;
	vm->exiting = 0;
	pthread_mutex_unlock(&vm->lock);
	for (i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		r = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (r != 0) {
			fprintf(stderr, "minivmm: vm_start: vcpu %d: "
			    "pthread_create: %s\n", i, strerror(r));
			return -1;
		}
		v->thread_started = 1;
	}
	return 0;
}

/* [lock] held. A vCPU counts as stopped once its state is consistent. */
static int
vm_all_stopped(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->thread_started && !v->exited &&
		    !(v->parked && !v->dirty))
			return 0;
	}
	return 1;
}

/*
 * Parks every vCPU with its state complete (a vCPU whose last exit needs
 * KVM_RUN to finish, like port I/O, re-enters once with immediate_exit, see
 * vcpu_thread()). The running ones are kicked out of KVM_RUN by SIGUSR1.
 * Returns -1 if they do not all stop within 10 s.
 */
int
vm_pause(struct kvm_vm *vm)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&vm->lock);
	vm->stop = 1;
	vm_kick_vcpus(vm);
	while (!vm_all_stopped(vm)) {
		if (pthread_cond_timedwait(&vm->cond, &vm->lock,
		    &deadline) == ETIMEDOUT) {
			fprintf(stderr, "minivmm: vm_pause: vCPUs did not stop "
			    "within 10 s\n");
			r = -1;
			break;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void
vm_resume(struct kvm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->stop = 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * Tells the guest that migration is done and wakes the vCPUs halted waiting
 * for it. The RAM write comes first and mailbox_set is set under the lock, so
 * a vCPU that halts after this sees mailbox_set in vcpu_handle_hlt() and
 * re-enters instead of waiting for a kick that already happened.
 */
void
vm_set_mailbox(struct kvm_vm *vm)
{
	volatile struct mv_mailbox *mb = (volatile struct mv_mailbox *)
	    ((uint8_t *)vm->ram + MV_MAILBOX_GPA);
	int i;

	mb->migration_done = 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vm->lock);
	vm->mailbox_set = 1;
	for (i = 0; i < vm->nvcpus; i++)
		if (!vm->vcpus[i].verified)
			vm->vcpus[i].halted = 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void
vcpu_dump(struct vcpu *v)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		fprintf(stderr, "minivmm:   vcpu %d: rip=0x%llx rsp=0x%llx "
		    "rflags=0x%llx rax=0x%llx rbx=0x%llx rcx=0x%llx "
		    "rdx=0x%llx\n", v->index, regs.rip, regs.rsp, regs.rflags,
		    regs.rax, regs.rbx, regs.rcx, regs.rdx);
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) == 0)
		fprintf(stderr, "minivmm:   vcpu %d: cr0=0x%llx cr2=0x%llx "
		    "cr3=0x%llx cr4=0x%llx efer=0x%llx cs=0x%x\n", v->index,
		    sregs.cr0, sregs.cr2, sregs.cr3, sregs.cr4, sregs.efer,
		    sregs.cs.selector);
}

static int
vcpu_handle_event(struct vcpu *v, uint32_t ev)
{
	struct kvm_vm *vm = v->vm;
	uint64_t now = vm_now_ns();

	pthread_mutex_lock(&vm->lock);
	switch (ev) {
	case MV_EV_FILLED:
		v->filled = 1;
		v->last_pass_ns = now;
		break;
	case MV_EV_PASS:
		v->passes++;
		v->pass_ns = v->last_pass_ns != 0 ? now - v->last_pass_ns : 0;
		v->last_pass_ns = now;
		break;
	case MV_EV_VERIFIED:
		v->verified = 1;
		break;
	default:
		pthread_mutex_unlock(&vm->lock);
		fprintf(stderr, "minivmm: vcpu_handle_event: vcpu %d: unknown "
		    "guest event %u\n", v->index, ev);
		return -1;
	}
	pthread_mutex_unlock(&vm->lock);
	/* the first pass after a restore has no start time here */
	if (vm->verbose && ev == MV_EV_PASS && v->pass_ns != 0)
		fprintf(stderr, "minivmm: vcpu %d: pass done in %.1f ms\n",
		    v->index, (double)v->pass_ns / 1e6);
	vm_notify(vm);
	return 0;
}

static int
vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	const uint8_t *data = (const uint8_t *)run + run->io.data_offset;
	uint32_t val = 0;

	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 &&
	    run->io.count == 1)
		memcpy(&val, data, sizeof(val));
	if (run->io.port == MV_PORT_EVENT && run->io.direction ==
	    KVM_EXIT_IO_OUT && run->io.size == 4 && run->io.count == 1)
		return vcpu_handle_event(v, val);
	if (run->io.port == MV_PORT_EXCEPTION && run->io.direction ==
	    KVM_EXIT_IO_OUT) {
		fprintf(stderr, "minivmm: vcpu_handle_io: vcpu %d: guest "
		    "exception vector %u (rbx = faulting RIP, rcx = error "
		    "code, cr2 = fault address)\n", v->index, val);
		vcpu_dump(v);
		return -1;
	}
	fprintf(stderr, "minivmm: vcpu_handle_io: vcpu %d: unexpected port "
	    "I/O: %s port 0x%x size %u count %u\n", v->index,
	    run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port,
	    run->io.size, run->io.count);
	vcpu_dump(v);
	return -1;
}

static void
vcpu_handle_hlt(struct vcpu *v)
{
	struct kvm_vm *vm = v->vm;

	pthread_mutex_lock(&vm->lock);
	/* See vm_set_mailbox(): a halt after the kick is not a wait. */
	if (!vm->mailbox_set || v->verified)
		v->halted = 1;
	pthread_mutex_unlock(&vm->lock);
}


/* Returns 0 to keep running, -1 on an exit minivmm cannot continue from. */
static int
vcpu_handle_exit(struct vcpu *v, int r, int err)
{
	struct kvm_run *run = v->run;
	uint32_t i;

	if (r < 0) {
		struct migshim_kvm_fault f;

		/* libmigshim applies the KVM_RUN contract: a missing page is
		 * fetched (ring or blocking uffd) before we re-enter. */
		switch (migshim_kvm_exit(v->vm->shim, (unsigned)v->index, r, err, run, &f)) {
		case MIGSHIM_KVM_RETRY:
			return 0;
		case MIGSHIM_KVM_POISON:
			fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: guest page "
			    "0x%llx is poisoned; minivmm injects no machine checks\n",
			    v->index, (unsigned long long)f.gpa);
			return -1;
		case MIGSHIM_KVM_PRIVATE:
			fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: private/shared "
			    "conversion at 0x%llx is not supported\n", v->index,
			    (unsigned long long)f.gpa);
			return -1;
		default:
			fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: KVM_RUN: %s%s\n",
			    v->index, strerror(f.err ? f.err : err),
			    f.gpa != UINT64_MAX ? " (annotated memory fault)" : "");
			return -1;
		}
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return vcpu_handle_io(v);
	case KVM_EXIT_HLT:
		vcpu_handle_hlt(v);
		return 0;
	case KVM_EXIT_SHUTDOWN:
		fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: "
		    "KVM_EXIT_SHUTDOWN (triple fault)\n", v->index);
		vcpu_dump(v);
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: "
		    "KVM_EXIT_FAIL_ENTRY: hardware reason 0x%llx cpu %u\n",
		    v->index, (unsigned long long)
		    run->fail_entry.hardware_entry_failure_reason,
		    run->fail_entry.cpu);
		vcpu_dump(v);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR:
		fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: "
		    "KVM_EXIT_INTERNAL_ERROR: suberror %u, %u data words:",
		    v->index, run->internal.suberror, run->internal.ndata);
		for (i = 0; i < run->internal.ndata && i < 16; i++)
			fprintf(stderr, " 0x%llx", run->internal.data[i]);
		fprintf(stderr, "\n");
		vcpu_dump(v);
		return -1;
	case KVM_EXIT_MMIO:
		fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: MMIO %s "
		    "at 0x%llx len %u: no device there\n", v->index,
		    run->mmio.is_write ? "write" : "read",
		    run->mmio.phys_addr, run->mmio.len);
		vcpu_dump(v);
		return -1;
	default:
		fprintf(stderr, "minivmm: vcpu_handle_exit: vcpu %d: "
		    "unexpected exit reason %u\n", v->index, run->exit_reason);
		vcpu_dump(v);
		return -1;
	}
}

/*
 * The vCPU thread. Parks (under vm->lock) while the control thread wants the
 * VM stopped, while the guest is halted, or until told to exit; otherwise
 * runs KVM_RUN and handles the exit. Ordering rules:
 *  - immediate_exit is cleared only under the lock and only while !stop, so
 *    vm_pause() setting it (under the lock) can never be undone.
 *  - an exit like port I/O completes only on the next KVM_RUN (the RIP moves
 *    past the OUT then). Before parking for a pause the thread re-enters once
 *    with immediate_exit set, which finishes it and returns EINTR, so the
 *    saved state never replays an instruction.
 */
static void *
vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct kvm_vm *vm = v->vm;
	int r, err, fatal = 0;

	pthread_mutex_lock(&vm->lock);
	for (;;) {
		while (!vm->exiting && (vm->stop || v->halted)) {
			if (vm->stop && v->dirty)
				break;
			if (!v->parked) {
				v->parked = 1;
				pthread_cond_broadcast(&vm->cond);
			}
			pthread_cond_wait(&vm->cond, &vm->lock);
		}
		v->parked = 0;
		if (vm->exiting)
			break;
		vcpu_set_immediate_exit(v, vm->stop ? 1 : 0);
		pthread_mutex_unlock(&vm->lock);

		r = ioctl(v->fd, KVM_RUN, 0);
		err = errno;
		v->exits++;

		pthread_mutex_lock(&vm->lock);
		if (r < 0 && err == EINTR) {
			v->dirty = 0;
			continue;
		}
		v->dirty = (r == 0);
		pthread_mutex_unlock(&vm->lock);
		if (vcpu_handle_exit(v, r, err) < 0)
			fatal = 1;
		pthread_mutex_lock(&vm->lock);
		if (fatal) {
			vm->fatal = 1;
			break;
		}
	}
	v->exited = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (fatal)
		vm_notify(vm);
	return NULL;
}
