/*
 * shim_fault.c: libmigshim's fault path, run on whichever VMM thread touched
 * a missing page: posting a fault to the ring and waiting for the daemon
 * (migshim_fault), the SIGBUS handler that does so for VMM threads, the
 * KVM_RUN contract (migshim_kvm_classify, migshim_kvm_exit) and the probe
 * for annotated memory-fault exits. RAM, uffd and ring setup are
 * libmigshim.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/memfd.h>
#include <time.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>
#include <sys/sdt.h>

#include "libmigshim.h"
#include "mig_compat.h"
#include "ring.h"
#include "shim_int.h"

/* ---- the fault ring: posting side ---------------------------------------- */

/* Async-signal-safe: called from the SIGBUS handler too. */
int
migshim_fault(struct migshim *s, unsigned slot, uint64_t offset, uint64_t size,
    uint64_t gpa, int kind)
{
	struct ring_slot *r;
	uint64_t one = 1, t0;
	uint32_t st;
	int err, spin;

	if (s->ring == NULL || slot >= s->nslots)
		return -EINVAL;
	r = ring_slot(s->ring, slot);
	r->kind = (uint32_t)kind;
	r->offset = offset;
	r->size = size;
	r->gpa = gpa;
	r->error = 0;
	r->tid = (uint32_t)syscall(SYS_gettid);
	r->seq = __atomic_add_fetch(&s->seq, 1, __ATOMIC_RELAXED);
	r->post_ns = t0 = shim_now_ns();
	/* Publish the fields, then ring the doorbell. */
	DTRACE_PROBE4(migshim, fault_posted, slot, offset, r->tid, kind);
	ring_store(r, RING_POSTED);
	if (ring_post_rings(s->ring) &&
	    write(s->doorbell, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	/*
	 * Spin first: waking a sleeping thread costs more than a whole fetch
	 * on a fast link. But only one waiter spins at a time: more spinners
	 * would take the cores the daemon needs to bring the pages; and none
	 * where the daemon may run only on this CPU (ring_may_spin). Then
	 * sleep on the state word; the daemon wakes it.
	 */
	spin = 0;
	if (ring_may_spin(s->ring)) {
		spin = __atomic_fetch_add(&s->spinners, 1, __ATOMIC_ACQ_REL) == 0;
		if (!spin)
			__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
	}
	for (;;) {
		st = ring_load(r);
		if (st != RING_POSTED && st != RING_TAKEN)
			break;
		if (spin && shim_now_ns() - t0 < s->spin_ns) {
			__builtin_ia32_pause();
			continue;
		}
		if (spin) {
			__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
			spin = 0;
		}
		ring_futex_wait(r, st, 1000000000u);
	}
	if (spin)
		__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
	err = st == RING_DONE ? 0 : r->error ? r->error : -EIO;
	ring_store(r, RING_FREE);
	DTRACE_PROBE4(migshim, fault_resumed, slot, offset, err, shim_now_ns() - t0);
	return err;
}

/* ---- SIGBUS from VMM threads --------------------------------------------- */

static struct migshim *sigbus_shim;
static struct sigaction sigbus_prev;

static void
shim_sigbus_chain(int sig, siginfo_t *si, void *uc)
{
	if (sigbus_prev.sa_flags & SA_SIGINFO) {
		sigbus_prev.sa_sigaction(sig, si, uc);
	} else if (sigbus_prev.sa_handler != SIG_DFL && sigbus_prev.sa_handler != SIG_IGN) {
		sigbus_prev.sa_handler(sig);
	} else {
		/* Default action: return, fault again, die with the real signal. */
		signal(SIGBUS, SIG_DFL);
	}
}

static void
shim_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct migshim *s = __atomic_load_n(&sigbus_shim, __ATOMIC_ACQUIRE);
	uintptr_t a = (uintptr_t)si->si_addr, base;
	int saved = errno, rc;

	/* Only our RAM; BUS_MCEERR_* is poison the kernel already reports. */
	if (s == NULL || si->si_code != BUS_ADRERR)
		goto chain;
	base = (uintptr_t)s->ram;
	if (a < base || a - base >= s->ram_size)
		goto chain;
	/*
	 * Blocking-uffd mode never raises SIGBUS for a missing page, and after
	 * completion no page is missing, so this is a page installed as poison
	 * (a kernel without CONFIG_MEMORY_FAILURE reports those as BUS_ADRERR):
	 * tell the VMM it is a memory error.
	 */
	if (s->ring == NULL || __atomic_load_n(&s->complete, __ATOMIC_ACQUIRE))
		goto poison;
	for (unsigned spins = 0;; spins++) {
		for (uint32_t i = s->nvcpu; i < s->nslots; i++) {
			struct ring_slot *r = ring_slot(s->ring, i);
			uint64_t pg = s->page_size;
			uint64_t off = (a - base) & ~(pg - 1);

			if (!ring_cas(r, RING_FREE, RING_CLAIMED))
				continue;
			rc = migshim_fault(s, i, off, pg, off, RING_KIND_SIGBUS);
			/* Retry the access: it succeeds, or (EAGAIN: the daemon
			 * could not queue the fetch) faults and posts again. */
			if (rc == 0 || rc == -EAGAIN) {
				errno = saved;
				return;
			}
			if (rc == -EHWPOISON)
				goto poison;
			goto chain;
		}
		/* Every thread slot busy: their pages will arrive; retry. */
		if (spins > 1000000)
			goto chain;
		sched_yield();
	}
chain:
	errno = saved;
	shim_sigbus_chain(sig, si, uc);
	return;
poison:
	si->si_code = BUS_MCEERR_AR;
	errno = saved;
	shim_sigbus_chain(sig, si, uc);
}

int
migshim_sigbus_install(struct migshim *s)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = shim_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	__atomic_store_n(&sigbus_shim, s, __ATOMIC_RELEASE);
	if (sigaction(SIGBUS, &sa, &sigbus_prev) < 0) {
		shim_warn(__func__, "sigaction");
		return -1;
	}
	return 0;
}

void
migshim_sigbus_remove(void)
{
	if (__atomic_exchange_n(&sigbus_shim, NULL, __ATOMIC_ACQ_REL) != NULL)
		sigaction(SIGBUS, &sigbus_prev, NULL);
}

/* ---- the KVM_RUN contract ------------------------------------------------- */

enum migshim_kvm_action
migshim_kvm_classify(int ret, int err, const struct kvm_run *run,
    struct migshim_kvm_fault *f)
{
	int annotated;

	f->gpa = UINT64_MAX;
	f->size = 0;
	f->flags = 0;
	f->err = ret == -1 ? err : 0;
	if (ret == 0)
		return MIGSHIM_KVM_EXIT;	/* exit_reason is valid; memory_fault is not */
	if (ret != -1)
		return MIGSHIM_KVM_ERROR;
	if (err == EINTR || err == EAGAIN)
		return MIGSHIM_KVM_RETRY;
	if (err != EFAULT && err != EHWPOISON)
		return MIGSHIM_KVM_ERROR;
	/* Only now may memory_fault be read. */
	annotated = run != NULL && run->exit_reason == KVM_EXIT_MEMORY_FAULT;
	if (annotated) {
		f->gpa = mig_memory_fault(run)->gpa;
		f->size = mig_memory_fault(run)->size;
		f->flags = mig_memory_fault(run)->flags;
	}
	if (err == EHWPOISON)
		return MIGSHIM_KVM_POISON;	/* never fetched */
	if (!annotated)
		return MIGSHIM_KVM_ERROR;	/* an EFAULT KVM did not explain */
	if (f->flags & KVM_MEMORY_EXIT_FLAG_PRIVATE)
		return MIGSHIM_KVM_PRIVATE;
	if (f->size == 0)
		return MIGSHIM_KVM_ERROR;
	return MIGSHIM_KVM_FETCH;
}

enum migshim_kvm_action
migshim_kvm_exit(struct migshim *s, unsigned vcpu, int ret, int err,
    const struct kvm_run *run, struct migshim_kvm_fault *f)
{
	enum migshim_kvm_action a = migshim_kvm_classify(ret, err, run, f);
	uint64_t pg = s->page_size, off, end;

	if (a != MIGSHIM_KVM_FETCH)
		return a;
	/* Page-align and bound the range before anything is touched. */
	off = f->gpa & ~(pg - 1);
	end = f->gpa + f->size;
	if (end < f->gpa || off >= s->ram_size || end > s->ram_size) {
		f->err = ERANGE;
		return MIGSHIM_KVM_ERROR;
	}
	end = (end + pg - 1) & ~(pg - 1);
	if (s->mode == MIGSHIM_FAULT_RING) {
		int rc = migshim_fault(s, vcpu, off, end - off, f->gpa, RING_KIND_VCPU);

		if (rc == -EAGAIN)
			return MIGSHIM_KVM_RETRY;	/* KVM faults again, we post again */
		if (rc == -EHWPOISON) {
			/* It arrived as poison: the same as KVM's own EHWPOISON. */
			f->err = EHWPOISON;
			return MIGSHIM_KVM_POISON;
		}
		if (rc < 0) {
			f->err = -rc;
			return MIGSHIM_KVM_ERROR;
		}
		return MIGSHIM_KVM_RETRY;
	}
	/* Blocking uffd: touching the page waits in the kernel until installed. */
	for (uint64_t o = off; o < end; o += pg)
		(void)*(volatile const uint8_t *)((const uint8_t *)s->ram + o);
	return MIGSHIM_KVM_RETRY;
}

int
migshim_probe_annotated(char *why, size_t len)
{
	static const uint8_t code[] = { 0xa0, 0x00, 0x10, 0xf4 };	/* mov al,[0x1000]; hlt */
	struct kvm_userspace_memory_region mr = { 0 };
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_SIGBUS };
	struct uffdio_register reg = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	struct kvm_run *run = MAP_FAILED;
	int kvm = -1, vm = -1, vcpu = -1, mfd = -1, uffd = -1, rc = -1, ret, err;
	long runsz;
	uint8_t *mem = MAP_FAILED;

	snprintf(why, len, "cannot tell");
	if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, len, "no /dev/kvm: %s", strerror(errno));
		goto out;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_FAULT_INFO) <= 0) {
		snprintf(why, len, "KVM lacks KVM_CAP_MEMORY_FAULT_INFO");
		rc = 0;
		goto out;
	}
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0 ||
	    (mfd = memfd_create("migshim-probe", MFD_CLOEXEC)) < 0 ||
	    ftruncate(mfd, 8192) < 0)
		goto out;
	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED)
		goto out;
	memcpy(mem, code, sizeof(code));
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0) {
		snprintf(why, len, "no SIGBUS-mode userfaultfd: %s", strerror(errno));
		rc = 0;
		goto out;
	}
	reg.range.start = (uintptr_t)mem + 4096;	/* the second page stays missing */
	reg.range.len = 4096;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	mr.memory_size = 8192;
	mr.userspace_addr = (uintptr_t)mem;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ||
	    (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0 ||
	    (runsz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) <= 0)
		goto out;
	run = mmap(NULL, (size_t)runsz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		goto out;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		goto out;
	ret = ioctl(vcpu, KVM_RUN, 0);
	err = errno;
	if (ret == -1 && err == EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
	    mig_memory_fault(run)->gpa == 0x1000) {
		snprintf(why, len, "annotated exit (EFAULT, KVM_EXIT_MEMORY_FAULT, gpa 0x1000)");
		rc = 1;
	} else {
		snprintf(why, len, "no annotated exit: KVM_RUN returned %d (%s), exit "
		    "reason %u%s", ret, ret < 0 ? strerror(err) : "ok", run->exit_reason,
		    run->exit_reason == KVM_EXIT_MMIO ? " (MMIO: the access was emulated)" : "");
		rc = 0;
	}
out:
	if (rc < 0 && errno)
		snprintf(why + strlen(why), len - strlen(why), ": %s", strerror(errno));
	if (run != MAP_FAILED)
		munmap(run, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	if (mem != MAP_FAILED)
		munmap(mem, 8192);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (uffd >= 0)
		close(uffd);
	if (mfd >= 0)
		close(mfd);
	if (kvm >= 0)
		close(kvm);
	return rc;
}
