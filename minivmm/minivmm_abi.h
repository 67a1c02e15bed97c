/*
 * minivmm_abi.h: the contract between minivmm (host side) and its guest
 * program (minivmm/guest/): where things live in guest-physical memory, the
 * I/O ports the guest reports through, and the structs both sides read.
 *
 * Included by the freestanding guest build and by the host, so it uses only
 * <stdint.h> and no host headers. Everything in guest RAM (code, page tables,
 * params, report, the guest's own state) migrates with the RAM; nothing here
 * lives outside it. Guest RAM starts at GPA 0 and is identity-mapped.
 */
#ifndef MINIVMM_ABI_H
#define MINIVMM_ABI_H

#include <stdint.h>

#define MV_PAGE_SIZE		4096ULL
#define MV_MAX_VCPUS		32

/*
 * Low-memory layout (GPA). The host writes GDT, page tables, params and the
 * guest image before the first KVM_RUN (source mode only; an incoming VM gets
 * all of it with the migrated RAM).
 */
#define MV_GDT_GPA		0x1000ULL	/* 4 descriptors */
#define MV_PML4_GPA		0x2000ULL
#define MV_PDPT_GPA		0x3000ULL
#define MV_PD_GPA		0x4000ULL	/* MV_MAX_PD pages, 1 GiB each */
#define MV_MAX_PD		3		/* so RAM <= 3 GiB (below TSS) */
#define MV_PARAMS_GPA		0x8000ULL	/* struct mv_params, host -> guest */
#define MV_MAILBOX_GPA		0x9000ULL	/* struct mv_mailbox, host -> guest */
#define MV_REPORT_GPA		0xA000ULL	/* struct mv_report[MV_MAX_VCPUS] */
#define MV_CODE_GPA		0x10000ULL	/* guest image; entry = first byte */
#define MV_CODE_MAX		0x30000ULL	/* image must end below 0x40000 */
#define MV_STACK_TOP		0x100000ULL	/* vCPU n: top - n * MV_STACK_SIZE */
#define MV_STACK_SIZE		0x4000ULL
#define MV_DATA_GPA		0x100000ULL	/* data pages: 1 MiB .. end of RAM */

/* GDT selectors built by the host (index * 8). */
#define MV_SEL_CODE		0x08
#define MV_SEL_DATA		0x10
#define MV_SEL_TSS		0x18

/*
 * Ports. The guest writes a 32-bit value with OUT; every OUT exits to the
 * vCPU thread, so the guest only reports events, never per page.
 */
#define MV_PORT_EVENT		0x500	/* value: enum mv_event */
#define MV_PORT_EXCEPTION	0x501	/* value: vector; rbx = faulting RIP,
					   rcx = error code (see start.S) */

enum mv_event {
	MV_EV_FILLED = 1,	/* generation 1 written to every owned page */
	MV_EV_PASS = 2,		/* writer: one more pass done (report.gen) */
	MV_EV_VERIFIED = 3,	/* final verification done, report filled */
};

enum mv_workload {
	MV_WORKLOAD_QUIET = 0,
	MV_WORKLOAD_WRITER = 1,
};

#define MV_PARAMS_MAGIC		0x534d5250564d564dULL	/* "MVMVPRMS" */
#define MV_PARAMS_VERSION	1

struct mv_slice {
	uint64_t first_pfn;	/* first data page owned by this vCPU */
	uint64_t end_pfn;	/* one past the last */
};

struct mv_params {
	uint64_t magic;
	uint32_t version;
	uint32_t nvcpus;
	uint32_t workload;	/* enum mv_workload */
	uint32_t reserved;
	uint64_t ram_size;
	struct mv_slice slice[MV_MAX_VCPUS];
};

/* Written by the host only; the guest polls it between passes. */
struct mv_mailbox {
	uint64_t migration_done;	/* nonzero: do the final verification */
};

enum mv_status {
	MV_ST_NONE = 0,
	MV_ST_FILLING = 1,
	MV_ST_RUNNING = 2,	/* filled; passes (writer) or waiting (quiet) */
	MV_ST_VERIFIED = 3,
};

/* One per vCPU, written by that vCPU only. 64 bytes: one cache line. */
struct mv_report {
	uint32_t status;		/* enum mv_status */
	uint32_t vcpu;
	uint64_t gen;			/* last generation completely written */
	uint64_t errors;		/* pass errors + final errors */
	uint64_t pages_checked;		/* final verification: data pages */
	uint64_t zero_checked;		/* final verification: zero pages */
	uint64_t checksum;		/* final verification, see mv_csum */
	uint64_t first_bad_pfn;		/* first page found wrong, or ~0 */
	uint64_t first_bad_val;		/* its first wrong qword, as found */
};

/*
 * The content rule of a data page `pfn` (GPA >> 12), over all of its bytes.
 * A page with pfn % 4 == 3 stays all-zero. Every other one holds
 * mv_pattern(pfn, gen) in qword 0, its complement in qword 511, and
 * mv_fill(pfn) in each of qwords 1..510, so a page copied only in part, an
 * old copy or one wrong byte anywhere is seen. The constants mark guest data
 * in a hex dump; in a pattern bits 32..47 are the generation, 0..31 the pfn,
 * in a fill bits 0..47 the pfn.
 *
 * The host writes the fill once, when it loads the guest (before the first
 * instruction); the guest writes qwords 0 and 511 of every generation. The
 * guest runs under a nested instruction emulator here (about 1 us per
 * store, `rep stosq` included), so rewriting 510 more qwords per page per
 * pass would make a writer pass some 16 times slower; a fill that does not
 * change with the generation also means that on a page the guest rewrote
 * after a migration the middle still holds the bytes that arrived, and the
 * rule checks them.
 */
#define MV_QWORDS_PER_PAGE	512

static inline int
mv_is_zero_page(uint64_t pfn)
{
	return (pfn & 3) == 3;
}

static inline uint64_t
mv_pattern(uint64_t pfn, uint64_t gen)
{
	return 0xC0DE000000000000ULL | ((gen & 0xffff) << 32) |
	    (pfn & 0xffffffffULL);
}

static inline uint64_t
mv_fill(uint64_t pfn)
{
	return 0xF111000000000000ULL | (pfn & 0xffffffffffffULL);
}

/* Qword `k` of data page `pfn` at generation `gen`, by the rule above. */
static inline uint64_t
mv_page_qword(uint64_t pfn, uint64_t gen, unsigned k)
{
	if (mv_is_zero_page(pfn))
		return 0;
	if (k == 0)
		return mv_pattern(pfn, gen);
	if (k == MV_QWORDS_PER_PAGE - 1)
		return ~mv_pattern(pfn, gen);
	return mv_fill(pfn);
}

/*
 * Checksum over the qwords the final verification reads, in pfn order per
 * vCPU (qword 0 then qword 511 of every owned page, zero pages included):
 * FNV-1a over 64-bit words. The host recomputes it from RAM.
 */
#define MV_CSUM_INIT		0xcbf29ce484222325ULL
#define MV_CSUM_PRIME		0x100000001b3ULL

static inline uint64_t
mv_csum(uint64_t c, uint64_t v)
{
	return (c ^ v) * MV_CSUM_PRIME;
}

#endif
