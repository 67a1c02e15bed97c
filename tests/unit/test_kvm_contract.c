/*
 * test_kvm_contract: migshim_kvm_classify() over every combination of
 * KVM_RUN return value, errno, exit reason and memory_fault flags. The
 * memory_fault fields are filled with a poison pattern wherever the contract
 * says they are stale, to prove they are never used there.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "libmigshim.h"
#include "mig_compat.h"
#include "unit.h"

struct row {
	int		ret, err;
	uint32_t	exit_reason;
	uint64_t	flags, size;
	enum migshim_kvm_action want;
	int		gpa_known;
	const char	*what;
};

static const struct row rows[] = {
	{ 0, 0, KVM_EXIT_IO, 0, 4096, MIGSHIM_KVM_EXIT, 0, "ordinary exit" },
	{ 0, 0, KVM_EXIT_HLT, 0, 4096, MIGSHIM_KVM_EXIT, 0, "hlt" },
	{ 0, EFAULT, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_EXIT, 0,
	    "ret 0 with a stale MEMORY_FAULT reason and errno: not a fault" },
	{ -1, EFAULT, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_FETCH, 1, "annotated fault" },
	{ -1, EFAULT, KVM_EXIT_MEMORY_FAULT, KVM_MEMORY_EXIT_FLAG_PRIVATE, 4096,
	    MIGSHIM_KVM_PRIVATE, 1, "private/shared conversion handed back" },
	{ -1, EFAULT, KVM_EXIT_MEMORY_FAULT, 0, 0, MIGSHIM_KVM_ERROR, 1, "annotated, size 0" },
	{ -1, EFAULT, KVM_EXIT_IO, 0, 4096, MIGSHIM_KVM_ERROR, 0,
	    "unannotated EFAULT (stale exit reason)" },
	{ -1, EFAULT, KVM_EXIT_MMIO, 0, 4096, MIGSHIM_KVM_ERROR, 0, "unannotated EFAULT, MMIO" },
	{ -1, EHWPOISON, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_POISON, 1,
	    "poison, annotated: never fetched" },
	{ -1, EHWPOISON, KVM_EXIT_IO, 0, 4096, MIGSHIM_KVM_POISON, 0, "poison, unannotated" },
	{ -1, EINTR, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_RETRY, 0,
	    "EINTR with a stale MEMORY_FAULT reason" },
	{ -1, EAGAIN, KVM_EXIT_IO, 0, 4096, MIGSHIM_KVM_RETRY, 0, "EAGAIN" },
	{ -1, ENOMEM, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_ERROR, 0,
	    "other errno with a stale MEMORY_FAULT reason" },
	{ -1, EINVAL, KVM_EXIT_IO, 0, 4096, MIGSHIM_KVM_ERROR, 0, "EINVAL" },
	{ 5, 0, KVM_EXIT_MEMORY_FAULT, 0, 4096, MIGSHIM_KVM_ERROR, 0, "impossible return value" },
};

int
main(void)
{
	static uint8_t runbuf[4096] __attribute__((aligned(64)));
	struct kvm_run *run = (struct kvm_run *)runbuf;
	struct migshim_kvm_fault f;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct mig_kvm_memory_fault *mf =
		    (struct mig_kvm_memory_fault *)(void *)&run->mmio;
		enum migshim_kvm_action a;

		memset(runbuf, 0xa5, sizeof(runbuf));
		run->exit_reason = r->exit_reason;
		mf->flags = r->flags;
		mf->gpa = 0x123456000;
		mf->size = r->size;
		a = migshim_kvm_classify(r->ret, r->err, run, &f);
		if (a != r->want)
			fprintf(stderr, "row %zu (%s): got %d want %d\n", i, r->what, a, r->want);
		CHECK_EQ(a, r->want);
		/* memory_fault is read only when the contract allows it. */
		CHECK_EQ(f.gpa == 0x123456000, r->gpa_known);
		if (!r->gpa_known)
			CHECK(f.gpa == UINT64_MAX && f.size == 0 && f.flags == 0);
	}
	/* A NULL kvm_run is never dereferenced. */
	CHECK_EQ(migshim_kvm_classify(-1, EFAULT, NULL, &f), MIGSHIM_KVM_ERROR);
	CHECK_EQ(migshim_kvm_classify(-1, EHWPOISON, NULL, &f), MIGSHIM_KVM_POISON);
	return unit_done("test_kvm_contract");
}
