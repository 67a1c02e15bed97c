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

/*
 * PAGEMAP_SCAN (Linux 6.7+, <linux/fs.h>): the written state of pages under
 * userfaultfd async write-protection (UFFD_FEATURE_WP_ASYNC), read and
 * reset in one ioctl on /proc/self/pagemap. libmigshim's dirty tracking.
 */
#include <linux/fs.h>
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};
#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)
struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
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
