/*
 * minivmm_state.c: the state blob (vm_state_*), minivmm's whole non-RAM VM
 * state plus a digest of every page of RAM: what a source hands to
 * migshim_send_state() and an incoming VM restores from MIGSHIM_EV_START
 * (and keeps the digests of, for minivmm_verify.c), and what
 * --selftest-snapshot round-trips through a fresh VM.
 *
 * Layout (host byte order; both ends run the same minivmm build, and the
 * sizes in the header catch a build whose KVM structs differ):
 *
 *   struct mv_blob_hdr                      56 bytes
 *   struct mv_blob_vcpu  x nvcpus           fixed size each
 *   uint64_t digest      x ndigests         pages 0.. of RAM, as paused
 *   uint64_t fnv1a64                        over everything before it
 *
 * ndigests is the number of pages of RAM, at most MV_BLOB_MAX_DIGESTS (the
 * blob must fit one shim wire message). The blob is opaque to migrationd.
 *
 * Called by the control thread only, with the vCPU threads parked (save) or
 * not started yet (restore).
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minivmm.h"

#define MV_BLOB_MAGIC		0x3154535f4d564d4dULL	/* "MMVM_ST1" */
#define MV_BLOB_VERSION		2

/* Digest of a page: XXH3_64bits of its bytes (minivmm_verify.c). */
#define MV_DIGEST_XXH3_64	1

#define MV_BLOB_XCRS		(1U << 0)
#define MV_BLOB_EVENTS		(1U << 1)
#define MV_BLOB_DEBUGREGS	(1U << 2)
#define MV_BLOB_FLAGS		(MV_BLOB_XCRS | MV_BLOB_EVENTS | \
				 MV_BLOB_DEBUGREGS)

#define MV_VCPU_HALTED		(1U << 0)
#define MV_VCPU_FILLED		(1U << 1)
#define MV_VCPU_VERIFIED	(1U << 2)
#define MV_VCPU_FLAGS		(MV_VCPU_HALTED | MV_VCPU_FILLED | \
				 MV_VCPU_VERIFIED)

struct mv_blob_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;	/* sizeof(struct mv_blob_hdr) */
	uint32_t nvcpus;
	uint32_t vcpu_size;	/* sizeof(struct mv_blob_vcpu) */
	uint64_t ram_size;
	uint32_t flags;		/* MV_BLOB_*: optional parts present */
	uint32_t reserved;
	uint64_t ndigests;	/* page digests after the vCPU records */
	uint32_t digest_alg;	/* MV_DIGEST_* */
	uint32_t digest_bytes;	/* bytes of RAM one digest covers */
};

struct mv_blob_vcpu {
	uint32_t index;
	uint32_t state;		/* MV_VCPU_* */
	uint32_t nmsrs;
	uint32_t reserved;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_msr_entry msrs[MV_MAX_MSRS];
};

_Static_assert(sizeof(struct mv_blob_hdr) == 56, "blob header layout");
/* the digests after the records are read and written as uint64_t */
_Static_assert(sizeof(struct mv_blob_vcpu) % 8 == 0, "vCPU record size");

static uint64_t
vm_state_fnv(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static uint32_t
vm_state_flags(const struct kvm_vm *vm)
{
	return (vm->has_xcrs ? MV_BLOB_XCRS : 0) |
	    (vm->has_events ? MV_BLOB_EVENTS : 0) |
	    (vm->has_debugregs ? MV_BLOB_DEBUGREGS : 0);
}

static uint64_t
vm_state_ndigests(uint64_t ram_size)
{
	uint64_t n = ram_size / MV_PAGE_SIZE;

	return n < MV_BLOB_MAX_DIGESTS ? n : MV_BLOB_MAX_DIGESTS;
}

static size_t
vm_state_size(int nvcpus, uint64_t ndigests)
{
	return sizeof(struct mv_blob_hdr) +
	    (size_t)nvcpus * sizeof(struct mv_blob_vcpu) +
	    (size_t)ndigests * sizeof(uint64_t) + sizeof(uint64_t);
}

static int
vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what,
    const char *fn)
{
	if (ioctl(v->fd, req, arg) < 0) {
		fprintf(stderr, "minivmm: %s: vcpu %d: %s: %s\n", fn, v->index,
		    what, strerror(errno));
		return -1;
	}
	return 0;
}

static int
vcpu_state_get(struct vcpu *v, struct mv_blob_vcpu *b)
{
	struct kvm_vm *vm = v->vm;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MV_MAX_MSRS];
	} msrs;
	int i, n;

	memset(b, 0, sizeof(*b));
	b->index = (uint32_t)v->index;
	if (vcpu_ioctl(v, KVM_GET_REGS, &b->regs, "KVM_GET_REGS",
	    __func__) < 0 ||
	    vcpu_ioctl(v, KVM_GET_SREGS, &b->sregs, "KVM_GET_SREGS",
	    __func__) < 0 ||
	    vcpu_ioctl(v, KVM_GET_FPU, &b->fpu, "KVM_GET_FPU", __func__) < 0)
		return -1;
	if (vm->has_xcrs && vcpu_ioctl(v, KVM_GET_XCRS, &b->xcrs,
	    "KVM_GET_XCRS", __func__) < 0)
		return -1;
	if (vm->has_events && vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &b->events,
	    "KVM_GET_VCPU_EVENTS", __func__) < 0)
		return -1;
	if (vm->has_debugregs && vcpu_ioctl(v, KVM_GET_DEBUGREGS,
	    &b->debugregs, "KVM_GET_DEBUGREGS", __func__) < 0)
		return -1;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = (uint32_t)vm->nmsrs;
	for (i = 0; i < vm->nmsrs; i++)
		msrs.e[i].index = vm->msrs[i];
	n = ioctl(v->fd, KVM_GET_MSRS, &msrs);
	if (n != vm->nmsrs) {
		fprintf(stderr, "minivmm: vcpu_state_get: vcpu %d: KVM_GET_MSRS "
		    "read %d of %d (stopped at 0x%x): %s\n", v->index, n,
		    vm->nmsrs, n >= 0 && n < vm->nmsrs ? vm->msrs[n] : 0,
		    n < 0 ? strerror(errno) : "refused");
		return -1;
	}
	b->nmsrs = (uint32_t)n;
	memcpy(b->msrs, msrs.e, sizeof(b->msrs));

	pthread_mutex_lock(&vm->lock);
	b->state = (v->halted ? MV_VCPU_HALTED : 0) |
	    (v->filled ? MV_VCPU_FILLED : 0) |
	    (v->verified ? MV_VCPU_VERIFIED : 0);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/*
 * Serialises every vCPU and takes the digest of every page of RAM. The VM
 * must be paused (vm_pause()) so the state is complete and nothing runs. On
 * success *blob is malloc'ed; the caller frees.
 */
int
vm_state_save(struct kvm_vm *vm, void **blob, size_t *len)
{
	uint64_t ndig = vm_state_ndigests(vm->ram_size);
	size_t sz = vm_state_size(vm->nvcpus, ndig);
	struct mv_blob_hdr hdr;
	uint8_t *buf, *p;
	uint64_t sum;
	int i, stopped;

	pthread_mutex_lock(&vm->lock);
	stopped = vm->stop;
	pthread_mutex_unlock(&vm->lock);
	if (!stopped) {
		fprintf(stderr, "minivmm: vm_state_save: VM is not paused\n");
		return -1;
	}
	buf = calloc(1, sz);
	if (buf == NULL) {
		fprintf(stderr, "minivmm: vm_state_save: out of memory\n");
		return -1;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = MV_BLOB_MAGIC;
	hdr.version = MV_BLOB_VERSION;
	hdr.hdr_size = sizeof(struct mv_blob_hdr);
	hdr.nvcpus = (uint32_t)vm->nvcpus;
	hdr.vcpu_size = sizeof(struct mv_blob_vcpu);
	hdr.ram_size = vm->ram_size;
	hdr.flags = vm_state_flags(vm);
	hdr.ndigests = ndig;
	hdr.digest_alg = MV_DIGEST_XXH3_64;
	hdr.digest_bytes = MV_PAGE_SIZE;
	memcpy(buf, &hdr, sizeof(hdr));
	p = buf + sizeof(hdr);
	for (i = 0; i < vm->nvcpus; i++) {
		struct mv_blob_vcpu *b = malloc(sizeof(*b));

		if (b == NULL || vcpu_state_get(&vm->vcpus[i], b) < 0) {
			if (b == NULL)
				fprintf(stderr, "minivmm: vm_state_save: out of "
				    "memory\n");
			free(b);
			free(buf);
			return -1;
		}
		memcpy(p, b, sizeof(*b));
		p += sizeof(*b);
		free(b);
	}
	if (ndig < vm->ram_size / MV_PAGE_SIZE)
		fprintf(stderr, "minivmm: vm_state_save: %llu pages of RAM, the "
		    "state blob has room for the digests of the first %llu; the "
		    "destination checks the rest by the content rule only\n",
		    (unsigned long long)(vm->ram_size / MV_PAGE_SIZE),
		    (unsigned long long)ndig);
	/* p is 8-byte aligned: header and vCPU records are multiples of 8 */
	verify_digest_ram(vm, ndig, (uint64_t *)(void *)p);
	p += ndig * sizeof(uint64_t);
	sum = vm_state_fnv(buf, (size_t)(p - buf));
	memcpy(p, &sum, sizeof(sum));
	*blob = buf;
	*len = sz;
	return 0;
}

static int
vm_state_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
vm_state_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Validates a blob against this VM before anything is changed: magic,
 * version, sizes, vCPU count, RAM size, exact length, checksum, optional
 * parts this host's KVM can restore, every vCPU record. Returns 0, or -1 with
 * the reason in `why` (nothing printed).
 */
int
vm_state_check(const struct kvm_vm *vm, const void *blob, size_t len, char *why,
    size_t whylen)
{
	const uint8_t *p = blob;
	struct mv_blob_hdr hdr;
	struct mv_blob_vcpu *b;
	uint64_t sum;
	uint32_t missing;
	size_t want;
	int i;

	if (blob == NULL || len < sizeof(hdr))
		return vm_state_why(why, whylen, "blob of %zu bytes is shorter "
		    "than its header", len);
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.magic != MV_BLOB_MAGIC)
		return vm_state_why(why, whylen, "bad magic 0x%016llx (not a "
		    "minivmm state blob)", (unsigned long long)hdr.magic);
	if (hdr.version != MV_BLOB_VERSION)
		return vm_state_why(why, whylen, "blob version %u, this minivmm "
		    "reads version %u", hdr.version, MV_BLOB_VERSION);
	if (hdr.hdr_size != sizeof(hdr) ||
	    hdr.vcpu_size != sizeof(struct mv_blob_vcpu))
		return vm_state_why(why, whylen, "record sizes %u/%u, expected "
		    "%zu/%zu (different minivmm build or KVM headers)",
		    hdr.hdr_size, hdr.vcpu_size, sizeof(hdr),
		    sizeof(struct mv_blob_vcpu));
	if (hdr.nvcpus != (uint32_t)vm->nvcpus)
		return vm_state_why(why, whylen, "blob has %u vCPUs, this VM "
		    "has %d (--vcpus)", hdr.nvcpus, vm->nvcpus);
	if (hdr.ram_size != vm->ram_size)
		return vm_state_why(why, whylen, "blob is for %llu bytes of "
		    "RAM, this VM has %llu (--mem)",
		    (unsigned long long)hdr.ram_size,
		    (unsigned long long)vm->ram_size);
	if (hdr.ndigests != vm_state_ndigests(vm->ram_size) ||
	    hdr.digest_alg != MV_DIGEST_XXH3_64 ||
	    hdr.digest_bytes != MV_PAGE_SIZE)
		return vm_state_why(why, whylen, "blob has %llu digests of "
		    "kind %u over %u bytes each, expected %llu of kind %u over "
		    "%llu", (unsigned long long)hdr.ndigests, hdr.digest_alg,
		    hdr.digest_bytes,
		    (unsigned long long)vm_state_ndigests(vm->ram_size),
		    MV_DIGEST_XXH3_64, MV_PAGE_SIZE);
	want = vm_state_size(vm->nvcpus, hdr.ndigests);
	if (len != want)
		return vm_state_why(why, whylen, "blob is %zu bytes, expected "
		    "exactly %zu", len, want);
	memcpy(&sum, p + len - sizeof(sum), sizeof(sum));
	if (sum != vm_state_fnv(p, len - sizeof(sum)))
		return vm_state_why(why, whylen, "checksum mismatch (blob "
		    "damaged)");
	if (hdr.flags & ~MV_BLOB_FLAGS)
		return vm_state_why(why, whylen, "unknown flags 0x%x",
		    hdr.flags);
	missing = hdr.flags & ~vm_state_flags(vm);
	if (missing)
		return vm_state_why(why, whylen, "blob carries state this "
		    "host's KVM cannot restore (flags 0x%x: %s%s%s)", missing,
		    missing & MV_BLOB_XCRS ? "xcrs " : "",
		    missing & MV_BLOB_EVENTS ? "vcpu_events " : "",
		    missing & MV_BLOB_DEBUGREGS ? "debugregs" : "");

	b = malloc(sizeof(*b));
	if (b == NULL)
		return vm_state_why(why, whylen, "out of memory");
	for (i = 0; i < vm->nvcpus; i++) {
		memcpy(b, p + sizeof(hdr) + (size_t)i * sizeof(*b), sizeof(*b));
		if (b->index != (uint32_t)i || b->nmsrs > MV_MAX_MSRS ||
		    (b->state & ~MV_VCPU_FLAGS)) {
			free(b);
			return vm_state_why(why, whylen, "vCPU record %d is "
			    "malformed", i);
		}
	}
	free(b);
	return 0;
}

static int
vcpu_state_set(struct vcpu *v, struct mv_blob_vcpu *b, uint32_t flags)
{
	struct kvm_vm *vm = v->vm;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MV_MAX_MSRS];
	} msrs;
	int n;

	/* sregs first: EFER and CR4 decide what the rest may contain. */
	if (vcpu_ioctl(v, KVM_SET_SREGS, &b->sregs, "KVM_SET_SREGS",
	    __func__) < 0 ||
	    vcpu_ioctl(v, KVM_SET_REGS, &b->regs, "KVM_SET_REGS",
	    __func__) < 0 ||
	    vcpu_ioctl(v, KVM_SET_FPU, &b->fpu, "KVM_SET_FPU", __func__) < 0)
		return -1;
	if ((flags & MV_BLOB_XCRS) && vcpu_ioctl(v, KVM_SET_XCRS, &b->xcrs,
	    "KVM_SET_XCRS", __func__) < 0)
		return -1;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = b->nmsrs;
	memcpy(msrs.e, b->msrs, sizeof(msrs.e));
	n = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (n != (int)b->nmsrs) {
		fprintf(stderr, "minivmm: vcpu_state_set: vcpu %d: KVM_SET_MSRS "
		    "wrote %d of %u (refused MSR 0x%x): %s\n", v->index, n,
		    b->nmsrs, n >= 0 && n < (int)b->nmsrs ? b->msrs[n].index :
		    0, n < 0 ? strerror(errno) : "refused");
		return -1;
	}
	/* Events last: a pending exception refers to the state above. */
	if ((flags & MV_BLOB_EVENTS) && vcpu_ioctl(v, KVM_SET_VCPU_EVENTS,
	    &b->events, "KVM_SET_VCPU_EVENTS", __func__) < 0)
		return -1;
	if ((flags & MV_BLOB_DEBUGREGS) && vcpu_ioctl(v, KVM_SET_DEBUGREGS,
	    &b->debugregs, "KVM_SET_DEBUGREGS", __func__) < 0)
		return -1;

	pthread_mutex_lock(&vm->lock);
	v->halted = !!(b->state & MV_VCPU_HALTED);
	v->filled = !!(b->state & MV_VCPU_FILLED);
	v->verified = !!(b->state & MV_VCPU_VERIFIED);
	v->dirty = 0;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/*
 * Restores every vCPU of a freshly created VM (vm_create(), threads not
 * started) from a blob. Validates first and changes nothing if it is wrong.
 */
int
vm_state_restore(struct kvm_vm *vm, const void *blob, size_t len)
{
	const uint8_t *p = blob;
	struct mv_blob_hdr hdr;
	struct mv_blob_vcpu *b;
	char why[256];
	int i;

	if (vm_state_check(vm, blob, len, why, sizeof(why)) < 0) {
		fprintf(stderr, "minivmm: vm_state_restore: refusing state "
		    "blob: %s\n", why);
		return -1;
	}
	memcpy(&hdr, p, sizeof(hdr));
	b = malloc(sizeof(*b));
	if (b == NULL) {
		fprintf(stderr, "minivmm: vm_state_restore: out of memory\n");
		return -1;
	}
	for (i = 0; i < vm->nvcpus; i++) {
		memcpy(b, p + sizeof(hdr) + (size_t)i * sizeof(*b), sizeof(*b));
		if (vcpu_state_set(&vm->vcpus[i], b, hdr.flags) < 0) {
			free(b);
			return -1;
		}
	}
	free(b);
	return 0;
}

/*
 * The page digests of a blob that vm_state_check() accepted, copied:
 * *digests is malloc'ed (the caller frees), *n how many.
 */
int
vm_state_digests(const void *blob, size_t len, uint64_t **digests,
    uint64_t *n)
{
	const uint8_t *p = blob;
	struct mv_blob_hdr hdr;
	size_t off;

	memcpy(&hdr, p, sizeof(hdr));
	off = sizeof(hdr) + (size_t)hdr.nvcpus * sizeof(struct mv_blob_vcpu);
	if (len != vm_state_size((int)hdr.nvcpus, hdr.ndigests)) {
		fprintf(stderr, "minivmm: vm_state_digests: blob of %zu bytes "
		    "does not match its header\n", len);
		return -1;
	}
	*digests = malloc((size_t)hdr.ndigests * sizeof(uint64_t) + 1);
	if (*digests == NULL) {
		fprintf(stderr, "minivmm: vm_state_digests: out of memory\n");
		return -1;
	}
	memcpy(*digests, p + off, (size_t)hdr.ndigests * sizeof(uint64_t));
	*n = hdr.ndigests;
	return 0;
}
