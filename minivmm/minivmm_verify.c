/*
 * minivmm_verify.c: after a migration, every byte of every page of guest RAM
 * is compared with what the source had (verify_*).
 *
 * The source, paused for the switch-over, takes a 64-bit digest of each
 * 4 KiB page (verify_digest_ram(): XXH3), and the digests travel in the
 * state blob (minivmm_state.c). The destination creates
 * its memslot with KVM_MEM_LOG_DIRTY_PAGES, so KVM records every page the
 * guest writes there (the daemon's installs are not guest writes and are not
 * logged). Once every vCPU has verified and halted, verify_ram() looks at
 * each page:
 *
 *  - not written on the destination: its digest must be the source's;
 *  - written there, by the guest (KVM_GET_DIRTY_LOG) or by minivmm (the
 *    mailbox): it must hold, byte for byte, what a rule says it holds at the
 *    end: data pages the content rule of minivmm_abi.h at the generation
 *    their vCPU reports, the report page the reports the host expects, the
 *    mailbox migration_done = 1, the vCPU stacks zeros (guest_finish()),
 *    the page tables as the host built them with the accessed and dirty
 *    bits the CPU set. A logged page no rule covers must still have the
 *    source's digest;
 *  - past the digests (RAM larger than a state blob can describe, see
 *    MV_BLOB_MAX_DIGESTS): data pages by the rule, and said so.
 *
 * It prints one line with the pages and bytes compared, and for the first
 * bad pages their index and the offset of the first wrong byte (known where
 * a rule says what the page should hold, for a data page also when only its
 * digest disagrees; a low page that only a digest describes gets its index).
 *
 * Control thread only, with every vCPU halted (the RAM holds still).
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "libmigshim.h"
#include "minivmm.h"

#define VERIFY_SHOW_BAD		4	/* bad pages printed, the rest counted */

/*
 * Digests of pages [0, npages) of the VM's RAM into out[]: XXH3_64bits of
 * each 4 KiB page (libxxhash). It runs at memory speed, about 10 GB/s here
 * (SHA-256 from libcrypto took 7 to 9 times longer). A page the memfd has
 * never backed (a hole: SEEK_DATA / SEEK_HOLE) reads as zeros; touching it
 * through the mapping would allocate it, at ~10 us a page, so a hole gets
 * the zero page's digest without being read. On the source, pausing a
 * 64 MiB writer guest and saving its state so took 12 to 21 ms (52 ms when
 * the holes were read; a blob without digests, under 1 ms).
 */
void
verify_digest_ram(const struct kvm_vm *vm, uint64_t npages, uint64_t *out)
{
	static const uint8_t zeros[MV_PAGE_SIZE];
	const uint8_t *p = vm->ram;
	int fd = migshim_memfd(vm->shim);
	uint64_t zero_d = XXH3_64bits(zeros, sizeof(zeros));
	off_t end = (off_t)(npages * MV_PAGE_SIZE), at = 0, data, hole;
	uint64_t i;

	while (at < end) {
		data = lseek(fd, at, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			data = at;	/* cannot tell: read everything */
		if (data < 0 || data > end)
			data = end;	/* ENXIO: no data past `at` */
		data &= ~(off_t)(MV_PAGE_SIZE - 1);
		for (i = (uint64_t)at / MV_PAGE_SIZE;
		    i < (uint64_t)data / MV_PAGE_SIZE; i++)
			out[i] = zero_d;
		if (data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		hole = (hole + (off_t)MV_PAGE_SIZE - 1) &
		    ~(off_t)(MV_PAGE_SIZE - 1);
		if (hole > end)
			hole = end;
		for (i = (uint64_t)data / MV_PAGE_SIZE;
		    i < (uint64_t)hole / MV_PAGE_SIZE; i++)
			out[i] = XXH3_64bits(p + i * MV_PAGE_SIZE,
			    MV_PAGE_SIZE);
		at = hole;
	}
}

/* One bit per page of slot 0, set for each page the guest wrote. */
static uint64_t *
verify_dirty_log(const struct kvm_vm *vm, uint64_t npages)
{
	struct kvm_dirty_log log;
	uint64_t *bits;

	bits = calloc((npages + 63) / 64, sizeof(*bits));
	if (bits == NULL) {
		fprintf(stderr, "minivmm: verify_dirty_log: out of memory\n");
		return NULL;
	}
	memset(&log, 0, sizeof(log));
	log.slot = 0;
	log.dirty_bitmap = bits;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		fprintf(stderr, "minivmm: verify_dirty_log: KVM_GET_DIRTY_LOG: "
		    "%s\n", strerror(errno));
		free(bits);
		return NULL;
	}
	return bits;
}

/* The vCPU whose slice of data pages has `pfn`, or -1. */
static int
verify_slice_of(const struct verify_want *w, uint64_t pfn)
{
	int i;

	for (i = 0; i < w->nvcpus; i++)
		if (pfn >= w->slice[i].first_pfn && pfn < w->slice[i].end_pfn)
			return i;
	return -1;
}

/*
 * The page tables vm_load_guest() built (PML4, PDPT, the PDs), into `page`,
 * with the accessed and dirty bits of each present entry as `have` has them:
 * the CPU sets those as it uses an entry, on whichever host the guest runs
 * (a migration that starts before the guest touched all its RAM sees them
 * set on the destination). 0, or -1 if `pfn` is not one of them.
 */
static int
verify_page_tables(const struct verify_want *w, uint64_t pfn,
    const uint64_t *have, uint64_t *page)
{
	uint64_t npd = (w->ram_size + (1ULL << 30) - 1) >> 30, k;

	if (pfn < MV_PML4_GPA / MV_PAGE_SIZE ||
	    pfn >= MV_PD_GPA / MV_PAGE_SIZE + npd)
		return -1;
	memset(page, 0, MV_PAGE_SIZE);
	if (pfn == MV_PML4_GPA / MV_PAGE_SIZE)
		page[0] = MV_PDPT_GPA | MV_PTE_P | MV_PTE_RW;
	else if (pfn == MV_PDPT_GPA / MV_PAGE_SIZE) {
		for (k = 0; k < npd; k++)
			page[k] = (MV_PD_GPA + k * MV_PAGE_SIZE) | MV_PTE_P |
			    MV_PTE_RW;
	} else {
		for (k = 0; k < MV_QWORDS_PER_PAGE; k++)
			page[k] = (((pfn - MV_PD_GPA / MV_PAGE_SIZE) *
			    MV_QWORDS_PER_PAGE + k) << 21) | MV_PTE_P |
			    MV_PTE_RW | MV_PTE_PS;
	}
	for (k = 0; k < MV_QWORDS_PER_PAGE; k++)
		if (page[k] & MV_PTE_P)
			page[k] |= have[k] & MV_PTE_AD;
	return 0;
}

/*
 * What page `pfn` (now `have`) holds at the end by a rule, into `page`: 0,
 * or -1 if no rule describes it (code, params: the guest never writes them).
 */
static int
verify_rule(const struct verify_want *w, uint64_t pfn, const uint8_t *have,
    uint64_t *page)
{
	uint64_t stack_lo = (MV_STACK_TOP -
	    (uint64_t)w->nvcpus * MV_STACK_SIZE) / MV_PAGE_SIZE;
	unsigned k;
	int i;

	if (verify_page_tables(w, pfn, (const uint64_t *)(const void *)have,
	    page) == 0)
		return 0;

	if (pfn == MV_MAILBOX_GPA / MV_PAGE_SIZE) {
		memset(page, 0, MV_PAGE_SIZE);
		page[0] = 1;	/* struct mv_mailbox: migration_done */
		return 0;
	}
	if (pfn == MV_REPORT_GPA / MV_PAGE_SIZE) {
		memcpy(page, w->report_page, MV_PAGE_SIZE);
		return 0;
	}
	if (pfn >= stack_lo && pfn < MV_STACK_TOP / MV_PAGE_SIZE) {
		memset(page, 0, MV_PAGE_SIZE);
		return 0;
	}
	i = verify_slice_of(w, pfn);
	if (i < 0)
		return -1;
	for (k = 0; k < MV_QWORDS_PER_PAGE; k++)
		page[k] = mv_page_qword(pfn, w->gen[i], k);
	return 0;
}

static size_t
verify_first_diff(const uint8_t *a, const uint8_t *b)
{
	size_t i;

	for (i = 0; i < MV_PAGE_SIZE && a[i] == b[i]; i++)
		;
	return i;
}

struct verify_tally {
	uint64_t	 pages;		/* compared in full */
	uint64_t	 by_rule;	/* of which rewritten on the destination */
	uint64_t	 past_digests;	/* data pages above the digests: rule */
	uint64_t	 bad;
};

/*
 * A bad page: the offset of its first wrong byte if `want` says what it
 * should hold, else just `why` it is bad.
 */
static void
verify_bad(struct verify_tally *t, uint64_t pfn, const char *why,
    const uint8_t *have, const uint64_t *want)
{
	size_t off;

	if (t->bad++ >= VERIFY_SHOW_BAD)
		return;
	if (want == NULL) {
		fprintf(stderr, "minivmm: verify: page 0x%" PRIx64 " %s\n", pfn,
		    why);
		return;
	}
	off = verify_first_diff(have, (const uint8_t *)want);
	fprintf(stderr, "minivmm: verify: page 0x%" PRIx64 " offset 0x%zx "
	    "(%s): byte 0x%02x, expected 0x%02x (qword 0x%016" PRIx64
	    ", expected 0x%016" PRIx64 ")\n", pfn, off, why, have[off],
	    ((const uint8_t *)want)[off],
	    ((const uint64_t *)have)[off / 8], want[off / 8]);
}

/*
 * One page: by the rule if written here (or past the digests), else by its
 * digest (`have_d`, taken here just now). `want` is scratch for the rule.
 */
static void
verify_page(const struct verify_want *w, const uint8_t *have, uint64_t have_d,
    uint64_t pfn, int written, uint64_t *want, struct verify_tally *t)
{
	int data = pfn >= MV_DATA_GPA / MV_PAGE_SIZE;

	t->pages++;
	/* Logged, but without a rule: it must still be what the source had. */
	if (written && pfn < w->ndigests && have_d == w->digests[pfn] &&
	    verify_rule(w, pfn, have, want) < 0)
		return;
	if (written || pfn >= w->ndigests) {
		if (written)
			t->by_rule++;
		else
			t->past_digests++;
		if (verify_rule(w, pfn, have, want) < 0 || (!written && !data)) {
			t->pages--;
			verify_bad(t, pfn, written ? "was written on the "
			    "destination, where no rule says what it holds, and "
			    "differs from the source's digest" :
			    "is past the digests, where no rule says what it "
			    "holds", have, NULL);
		} else if (memcmp(have, want, MV_PAGE_SIZE) != 0)
			verify_bad(t, pfn, written ? "rewritten on the "
			    "destination, by rule" : "past the digests, by rule",
			    have, want);
		return;
	}
	if (have_d == w->digests[pfn])
		return;
	/* A data page's rule knows the source's bytes: it finds the offset. */
	if (data && verify_rule(w, pfn, have, want) == 0 &&
	    memcmp(have, want, MV_PAGE_SIZE) != 0)
		verify_bad(t, pfn, "as the source had it, by digest", have,
		    want);
	else
		verify_bad(t, pfn, "differs from the source's digest (only the "
		    "digest describes it: offset unknown)", have, NULL);
}

/*
 * Compares every page of RAM as the file comment says and prints the line.
 * Returns 0 if every byte matched, -1 otherwise (with the first bad pages on
 * stderr).
 */
int
verify_ram(const struct kvm_vm *vm, const struct verify_want *w)
{
	const uint8_t *ram = vm->ram;
	uint64_t npages = vm->ram_size / MV_PAGE_SIZE, pfn;
	uint64_t ndig = w->ndigests < npages ? w->ndigests : npages;
	uint64_t *dirty, *want, *have_d;
	struct verify_tally t;
	int r = -1;

	memset(&t, 0, sizeof(t));
	want = malloc(MV_PAGE_SIZE);
	have_d = calloc(ndig + 1, sizeof(*have_d));
	dirty = verify_dirty_log(vm, npages);
	if (want == NULL || have_d == NULL || dirty == NULL) {
		fprintf(stderr, "minivmm: verify: could not compare the RAM\n");
		goto out;
	}
	verify_digest_ram(vm, ndig, have_d);
	for (pfn = 0; pfn < npages; pfn++) {
		int written = (dirty[pfn / 64] >> (pfn % 64)) & 1;

		/* minivmm itself wrote the mailbox: not in KVM's log */
		if (pfn == MV_MAILBOX_GPA / MV_PAGE_SIZE)
			written = 1;
		verify_page(w, ram + pfn * MV_PAGE_SIZE,
		    pfn < ndig ? have_d[pfn] : 0, pfn, written, want, &t);
	}
	if (t.past_digests != 0)
		printf("minivmm: verify: %" PRIu64 " pages above the %" PRIu64
		    " the state blob has digests for: checked by rule only\n",
		    t.past_digests, ndig);
	printf("minivmm: verified %" PRIu64 " pages, %" PRIu64 " bytes against "
	    "the source digests (%" PRIu64 " pages rewritten on the "
	    "destination, checked by rule)%s\n", t.pages,
	    t.pages * (uint64_t)MV_PAGE_SIZE, t.by_rule,
	    t.bad ? ": MISMATCH" : "");
	if (t.bad != 0)
		fprintf(stderr, "minivmm: verify: %" PRIu64 " of %" PRIu64
		    " pages are not what the source had\n", t.bad, npages);
	else
		r = 0;
out:
	free(want);
	free(have_d);
	free(dirty);
	return r;
}
