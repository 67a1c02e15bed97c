/*
 * mig_compat.h: UAPI constants newer than the kernel headers installed on
 * build machines (Debian 12 ships 6.1 headers; hosts run newer kernels).
 * Everything here is detected at run time before use (UFFDIO_API feature
 * bits, KVM_CHECK_EXTENSION); defining a constant promises nothing.
 */
#ifndef MIG_COMPAT_H
#define MIG_COMPAT_H

#include <linux/userfaultfd.h>
#include <linux/kvm.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

/*
 * Not UAPI: the bit the kernel sets in a userfaultfd's features once
 * UFFDIO_API was called, as /proc/<pid>/fdinfo shows them (fs/userfaultfd.c,
 * UFFD_FEATURE_INITIALIZED). The daemon reads it to refuse a uffd that was
 * never set up (its read fails, its poll reports an error for ever).
 */
#define MIG_UFFD_FEATURE_INITIALIZED (1u << 31)

#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

/*
 * kvm_run.memory_fault (Linux 6.8+) lives in kvm_run's exit union, which
 * starts where every exit struct does (the address of .mmio). Older headers
 * lack the member, so reach it through this accessor.
 */
struct mig_kvm_memory_fault {
	__u64 flags;
	__u64 gpa;
	__u64 size;
};

static inline const struct mig_kvm_memory_fault *
mig_memory_fault(const struct kvm_run *run)
{
	return (const struct mig_kvm_memory_fault *)(const void *)&run->mmio;
}

#endif
