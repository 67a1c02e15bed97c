/*
 * minivmm_vm.c: minivmm's KVM VM and vCPUs (vm_*, vcpu_*).
 *
 * Owns the /dev/kvm, VM and vCPU fds and each vCPU's kvm_run mapping, and
 * joins the vCPU threads when the VM goes (vm_destroy). There is no in-kernel
 * irqchip: vCPUs start directly in 64-bit long mode (vcpu_boot()), and HLT
 * and port I/O exit to the vCPU thread (minivmm_vcpu.c, which also starts,
 * parks and wakes the threads). The control thread creates and destroys
 * everything here; see the locking notes in minivmm.h.
 *
 * Guest RAM belongs to libmigshim: it is never unmapped here, and for an
 * incoming VM nothing here reads or writes it before the migration started
 * (vm_create() only registers the mapping with KVM).
 */
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mig_compat.h"
#include "minivmm.h"

#define KVM_API_VERSION_EXPECTED	12
/* KVM_SET_TSS_ADDR wants 3 pages of guest-physical space outside RAM. */
#define MV_TSS_ADDR			0xfffbd000ULL
/* Where the host puts the 64-bit TSS the GDT's TR descriptor points at. */
#define MV_TSS_GPA			(MV_GDT_GPA + 0x800)

#define X86_CR0_PE	(1U << 0)
#define X86_CR0_MP	(1U << 1)
#define X86_CR0_ET	(1U << 4)
#define X86_CR0_NE	(1U << 5)
#define X86_CR0_WP	(1U << 16)
#define X86_CR0_PG	(1U << 31)
#define X86_CR4_PAE	(1U << 5)
#define X86_CR4_OSFXSR	(1U << 9)
#define X86_CR4_OSXMMEXCPT (1U << 10)
#define X86_EFER_LME	(1U << 8)
#define X86_EFER_LMA	(1U << 10)

/*
 * MSRs carried in the state blob when this host's KVM knows them. The guest
 * uses none but the TSC; the rest is long-mode state any 64-bit guest may
 * have set and that lives in neither kvm_regs nor kvm_sregs.
 */
static const uint32_t vm_msr_candidates[] = {
	0x00000010,	/* IA32_TSC */
	0x00000174,	/* IA32_SYSENTER_CS */
	0x00000175,	/* IA32_SYSENTER_ESP */
	0x00000176,	/* IA32_SYSENTER_EIP */
	0x00000277,	/* IA32_PAT */
	0xc0000081,	/* STAR */
	0xc0000082,	/* LSTAR */
	0xc0000083,	/* CSTAR */
	0xc0000084,	/* SFMASK */
	0xc0000102,	/* KERNEL_GS_BASE */
	0xc0000103,	/* TSC_AUX */
};

static int
vm_check_cap(struct kvm_vm *vm, long cap)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap);

	return r > 0 ? r : 0;
}

static int
vm_probe_cpuid(struct kvm_vm *vm)
{
	int nent = 64;

	for (;;) {
		struct kvm_cpuid2 *c;

		c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));
		if (c == NULL) {
			fprintf(stderr, "minivmm: vm_probe_cpuid: out of memory\n");
			return -1;
		}
		c->nent = (uint32_t)nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || nent >= 4096) {
			fprintf(stderr, "minivmm: vm_probe_cpuid: "
			    "KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
			return -1;
		}
		nent *= 2;
	}
}

/* Keep only the candidate MSRs this KVM reports (KVM_GET_MSR_INDEX_LIST). */
static int
vm_probe_msrs(struct kvm_vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	size_t i, j;

	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
	    errno != E2BIG) {
		fprintf(stderr, "minivmm: vm_probe_msrs: KVM_GET_MSR_INDEX_LIST: "
		    "%s\n", strerror(errno));
		return -1;
	}
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (list == NULL) {
		fprintf(stderr, "minivmm: vm_probe_msrs: out of memory\n");
		return -1;
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		fprintf(stderr, "minivmm: vm_probe_msrs: KVM_GET_MSR_INDEX_LIST: "
		    "%s\n", strerror(errno));
		free(list);
		return -1;
	}
	vm->nmsrs = 0;
	for (i = 0; i < sizeof(vm_msr_candidates) / sizeof(vm_msr_candidates[0]);
	    i++) {
		for (j = 0; j < list->nmsrs; j++) {
			if (list->indices[j] == vm_msr_candidates[i]) {
				vm->msrs[vm->nmsrs++] = vm_msr_candidates[i];
				break;
			}
		}
	}
	free(list);
	if (vm->nmsrs == 0 || vm->msrs[0] != 0x10) {
		fprintf(stderr, "minivmm: vm_probe_msrs: KVM does not list "
		    "IA32_TSC\n");
		return -1;
	}
	return 0;
}

/*
 * Opens /dev/kvm and probes what the state blob and the vCPUs need. Touches
 * neither guest RAM nor any VM. The caller's `ram` stays libmigshim's.
 */
int
vm_open(struct kvm_vm *vm, void *ram, uint64_t ram_size, int nvcpus, int verbose)
{
	int i, r;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->notify_fd = -1;
	vm->ram = ram;
	vm->ram_size = ram_size;
	vm->nvcpus = nvcpus;
	vm->verbose = verbose;
	for (i = 0; i < MV_MAX_VCPUS; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].index = i;
		vm->vcpus[i].fd = -1;
	}
	if ((r = pthread_mutex_init(&vm->lock, NULL)) != 0 ||
	    (r = pthread_cond_init(&vm->cond, NULL)) != 0) {
		fprintf(stderr, "minivmm: vm_open: pthread init: %s\n",
		    strerror(r));
		return -1;
	}

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		fprintf(stderr, "minivmm: vm_open: /dev/kvm: %s\n",
		    strerror(errno));
		goto fail;
	}
	r = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION_EXPECTED) {
		fprintf(stderr, "minivmm: vm_open: KVM API version %d, want "
		    "%d\n", r, KVM_API_VERSION_EXPECTED);
		goto fail;
	}
	if (!vm_check_cap(vm, KVM_CAP_USER_MEMORY) ||
	    !vm_check_cap(vm, KVM_CAP_IMMEDIATE_EXIT) ||
	    !vm_check_cap(vm, KVM_CAP_EXT_CPUID)) {
		fprintf(stderr, "minivmm: vm_open: KVM lacks USER_MEMORY, "
		    "IMMEDIATE_EXIT or EXT_CPUID\n");
		goto fail;
	}
	vm->has_xcrs = vm_check_cap(vm, KVM_CAP_XCRS);
	vm->has_events = vm_check_cap(vm, KVM_CAP_VCPU_EVENTS);
	vm->has_debugregs = vm_check_cap(vm, KVM_CAP_DEBUGREGS);
	vm->has_tss_addr = vm_check_cap(vm, KVM_CAP_SET_TSS_ADDR);
	r = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, "minivmm: vm_open: KVM_GET_VCPU_MMAP_SIZE: %s\n",
		    r < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	vm->run_size = (size_t)r;
	if (vm_probe_cpuid(vm) < 0 || vm_probe_msrs(vm) < 0)
		goto fail;

	vm->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->notify_fd < 0) {
		fprintf(stderr, "minivmm: vm_open: eventfd: %s\n",
		    strerror(errno));
		goto fail;
	}
	if (verbose)
		fprintf(stderr, "minivmm: kvm: xcrs=%d vcpu_events=%d "
		    "debugregs=%d tss_addr=%d msrs=%d\n", vm->has_xcrs,
		    vm->has_events, vm->has_debugregs, vm->has_tss_addr,
		    vm->nmsrs);
	return 0;
fail:
	vm_close(vm);
	return -1;
}

void
vm_close(struct kvm_vm *vm)
{
	vm_destroy(vm);
	if (vm->notify_fd >= 0)
		close(vm->notify_fd);
	vm->notify_fd = -1;
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->kvm_fd = -1;
	free(vm->cpuid);
	vm->cpuid = NULL;
}

/*
 * Each vCPU gets the host's supported CPUID with its own APIC ID, so a guest
 * that reads it sees distinct CPUs.
 */
static int
vcpu_set_cpuid(struct vcpu *v)
{
	struct kvm_cpuid2 *src = v->vm->cpuid, *c;
	size_t sz = sizeof(*c) + src->nent * sizeof(c->entries[0]);
	uint32_t i;
	int r;

	c = malloc(sz);
	if (c == NULL) {
		fprintf(stderr, "minivmm: vcpu_set_cpuid: out of memory\n");
		return -1;
	}
	memcpy(c, src, sz);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffU) |
			    ((uint32_t)v->index << 24);
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = (uint32_t)v->index;
	}
	r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0) {
		fprintf(stderr, "minivmm: vcpu_set_cpuid: vcpu %d: "
		    "KVM_SET_CPUID2: %s\n", v->index, strerror(errno));
		return -1;
	}
	return 0;
}

static int
vcpu_create(struct vcpu *v)
{
	struct kvm_vm *vm = v->vm;
	void *p;

	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
	if (v->fd < 0) {
		fprintf(stderr, "minivmm: vcpu_create: vcpu %d: %s\n",
		    v->index, strerror(errno));
		return -1;
	}
	p = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    v->fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "minivmm: vcpu_create: vcpu %d: mmap: %s\n",
		    v->index, strerror(errno));
		return -1;
	}
	v->run = p;
	if (vcpu_set_cpuid(v) < 0)
		return -1;
	v->halted = v->parked = v->dirty = v->exited = 0;
	v->filled = v->verified = 0;
	v->passes = 0;
	v->last_pass_ns = v->pass_ns = 0;
	v->exits = 0;
	return 0;
}

/*
 * Creates the VM over libmigshim's RAM and its vCPUs (CPUID set, registers
 * still at reset). Guest RAM is registered, not touched, so this is safe for
 * an incoming VM before the migration starts. With vm->dirty_log KVM logs
 * every page the guest writes (minivmm_verify.c reads the log).
 */
int
vm_create(struct kvm_vm *vm)
{
	struct kvm_userspace_memory_region region;
	int i;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0UL);
	if (vm->vm_fd < 0) {
		fprintf(stderr, "minivmm: vm_create: KVM_CREATE_VM: %s\n",
		    strerror(errno));
		return -1;
	}
	/* Needed by VMX for real-mode emulation only; harmless elsewhere. */
	if (vm->has_tss_addr &&
	    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)MV_TSS_ADDR) < 0) {
		fprintf(stderr, "minivmm: vm_create: KVM_SET_TSS_ADDR: %s\n",
		    strerror(errno));
		goto fail;
	}
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.flags = vm->dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	region.guest_phys_addr = 0;
	region.memory_size = vm->ram_size;
	region.userspace_addr = (uint64_t)(uintptr_t)vm->ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "minivmm: vm_create: "
		    "KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
		goto fail;
	}
	for (i = 0; i < vm->nvcpus; i++)
		if (vcpu_create(&vm->vcpus[i]) < 0)
			goto fail;
	pthread_mutex_lock(&vm->lock);
	vm->stop = vm->exiting = vm->fatal = 0;
	vm->mailbox_set = 0;
	pthread_mutex_unlock(&vm->lock);
	return 0;
fail:
	vm_destroy(vm);
	return -1;
}

/*
 * Joins the vCPU threads and closes the vCPU and VM fds; RAM stays. A thread
 * blocked inside KVM_RUN on a missing page of an incoming VM does not return
 * until the page arrives, so call this only when none can be.
 */
void
vm_destroy(struct kvm_vm *vm)
{
	int i;

	pthread_mutex_lock(&vm->lock);
	vm->exiting = 1;
	vm_kick_vcpus(vm);
	pthread_mutex_unlock(&vm->lock);

	for (i = 0; i < MV_MAX_VCPUS; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->thread_started) {
			pthread_join(v->thread, NULL);
			v->thread_started = 0;
		}
		if (v->run != NULL)
			munmap(v->run, vm->run_size);
		v->run = NULL;
		if (v->fd >= 0)
			close(v->fd);
		v->fd = -1;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->vm_fd = -1;
}

/*
 * Source mode: writes everything the guest needs before its first
 * instruction into RAM: GDT and TSS, identity page tables for the first
 * MV_MAX_PD GiB (2 MiB pages), params, an empty mailbox and report, the
 * guest image, and the fill of every data page (qwords 1..510 by the content
 * rule of minivmm_abi.h; the guest writes qwords 0 and 511).
 */
int
vm_load_guest(struct kvm_vm *vm, const void *image, size_t image_len,
    enum mv_workload workload)
{
	uint8_t *ram = vm->ram;
	uint64_t *gdt = (uint64_t *)(ram + MV_GDT_GPA);
	uint64_t *pml4 = (uint64_t *)(ram + MV_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(ram + MV_PDPT_GPA);
	uint64_t *pd = (uint64_t *)(ram + MV_PD_GPA);
	struct mv_params *params = (struct mv_params *)(ram + MV_PARAMS_GPA);
	uint64_t first, total, npd, i, tss = MV_TSS_GPA;
	int n;

	if (image_len > MV_CODE_MAX) {
		fprintf(stderr, "minivmm: vm_load_guest: image of %zu bytes "
		    "exceeds %llu\n", image_len, MV_CODE_MAX);
		return -1;
	}
	memset(ram, 0, MV_DATA_GPA);

	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffULL;	/* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf92000000ffffULL;	/* data, 4 GiB */
	/* 64-bit available TSS, limit 0x67, two slots */
	gdt[3] = 0x67ULL | ((tss & 0xffffffULL) << 16) | (0x89ULL << 40) |
	    (((tss >> 24) & 0xffULL) << 56);
	gdt[4] = tss >> 32;

	npd = (vm->ram_size + (1ULL << 30) - 1) >> 30;
	pml4[0] = MV_PDPT_GPA | MV_PTE_P | MV_PTE_RW;
	for (i = 0; i < npd; i++)
		pdpt[i] = (MV_PD_GPA + i * MV_PAGE_SIZE) | MV_PTE_P | MV_PTE_RW;
	for (i = 0; i < npd * 512; i++)
		pd[i] = (i << 21) | MV_PTE_P | MV_PTE_RW | MV_PTE_PS;

	params->magic = MV_PARAMS_MAGIC;
	params->version = MV_PARAMS_VERSION;
	params->nvcpus = (uint32_t)vm->nvcpus;
	params->workload = workload;
	params->ram_size = vm->ram_size;
	first = MV_DATA_GPA / MV_PAGE_SIZE;
	total = vm->ram_size / MV_PAGE_SIZE - first;
	for (n = 0; n < vm->nvcpus; n++) {
		params->slice[n].first_pfn = first + total * (uint64_t)n /
		    (uint64_t)vm->nvcpus;
		params->slice[n].end_pfn = first + total * (uint64_t)(n + 1) /
		    (uint64_t)vm->nvcpus;
	}
	memcpy(ram + MV_CODE_GPA, image, image_len);
	for (i = first; i < first + total; i++) {
		uint64_t *p = (uint64_t *)(ram + i * MV_PAGE_SIZE);
		unsigned k;

		/* zero pages stay untouched: the daemon sends holes as such */
		if (mv_is_zero_page(i))
			continue;
		for (k = 1; k < MV_QWORDS_PER_PAGE - 1; k++)
			p[k] = mv_page_qword(i, 0, k);
	}
	return 0;
}

static void
vcpu_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = code ? 0 : 1;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

/* Fresh boot: long mode, paging on the host's tables, entry at the image. */
static int
vcpu_boot(struct vcpu *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "minivmm: vcpu_boot: vcpu %d: KVM_GET_SREGS: "
		    "%s\n", v->index, strerror(errno));
		return -1;
	}
	vcpu_seg(&sregs.cs, MV_SEL_CODE, 0xb, 1);
	vcpu_seg(&sregs.ds, MV_SEL_DATA, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = MV_TSS_GPA;
	sregs.tr.limit = 0x67;
	sregs.tr.selector = MV_SEL_TSS;
	sregs.tr.type = 0xb;		/* busy 64-bit TSS */
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.type = 0x2;
	sregs.ldt.present = 1;
	sregs.ldt.unusable = 1;
	sregs.gdt.base = MV_GDT_GPA;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;		/* the guest loads its own */
	sregs.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE |
	    X86_CR0_WP | X86_CR0_PG;
	sregs.cr3 = MV_PML4_GPA;
	sregs.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "minivmm: vcpu_boot: vcpu %d: KVM_SET_SREGS: "
		    "%s\n", v->index, strerror(errno));
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = MV_CODE_GPA;
	regs.rsp = MV_STACK_TOP - (uint64_t)v->index * MV_STACK_SIZE;
	regs.rdi = (uint64_t)v->index;
	regs.rflags = 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "minivmm: vcpu_boot: vcpu %d: KVM_SET_REGS: "
		    "%s\n", v->index, strerror(errno));
		return -1;
	}
	return 0;
}

int
vm_boot_vcpus(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < vm->nvcpus; i++)
		if (vcpu_boot(&vm->vcpus[i]) < 0)
			return -1;
	return 0;
}
