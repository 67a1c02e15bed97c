/*
 * guest.c: the program minivmm runs inside its VM, one instance per vCPU.
 *
 * Each vCPU owns a disjoint slice of the data pages (params->slice[vcpu]).
 * It writes generation 1 into each of them, reports MV_EV_FILLED, and then
 * either waits (quiet: HLT until the host sets the mailbox) or keeps
 * rewriting its pages (writer: every pass checks that each page still holds
 * the previous generation and writes the next one). Once the mailbox says
 * migration is done it verifies every byte of every owned page, zero pages
 * included, fills its mv_report, zeroes its own stack (so that the host can
 * check every byte of those pages too, see guest_finish()) and reports
 * MV_EV_VERIFIED.
 *
 * Everything this program knows lives in guest RAM or its registers, so a
 * pause/restore (or migration) in the middle of a pass continues exactly.
 * It runs under an instruction emulator on the test machines (about 1 us per
 * instruction, and per iteration of a `rep` string instruction): a writer
 * pass does a few loads and stores per page, only the final verification
 * reads whole pages (one `repe scasq` per page, 0.3 to 0.7 ms), and only
 * events do port I/O.
 */
#include <stdint.h>

#include "minivmm_abi.h"

void guest_main(uint64_t vcpu);

extern const uint64_t guest_exc_stubs[32];

struct idt_gate {
	uint16_t off0;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off1;
	uint32_t off2;
	uint32_t zero;
};

static struct idt_gate guest_idt[32] __attribute__((aligned(16)));

static inline void
outl(uint16_t port, uint32_t val)
{
	__asm__ volatile("outl %0, %1" : : "a"(val), "Nd"(port) : "memory");
}

static inline void
hlt(void)
{
	__asm__ volatile("hlt" : : : "memory");
}

/*
 * Every vCPU writes the same bytes, so doing it on all of them at once is
 * harmless and needs no ordering between vCPUs.
 */
static void
guest_idt_setup(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;
	int i;

	for (i = 0; i < 32; i++) {
		uint64_t a = guest_exc_stubs[i];

		guest_idt[i].off0 = (uint16_t)a;
		guest_idt[i].sel = MV_SEL_CODE;
		guest_idt[i].ist = 0;
		guest_idt[i].type = 0x8e;	/* present, DPL 0, interrupt gate */
		guest_idt[i].off1 = (uint16_t)(a >> 16);
		guest_idt[i].off2 = (uint32_t)(a >> 32);
		guest_idt[i].zero = 0;
	}
	idtr.limit = sizeof(guest_idt) - 1;
	idtr.base = (uint64_t)(uintptr_t)guest_idt;
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

static inline volatile uint64_t *
page(uint64_t pfn)
{
	return (volatile uint64_t *)(uintptr_t)(pfn * MV_PAGE_SIZE);
}

static void
note_bad(volatile struct mv_report *r, uint64_t pfn, uint64_t val)
{
	if (r->first_bad_pfn == ~0ULL) {
		r->first_bad_pfn = pfn;
		r->first_bad_val = val;
	}
}

static void
guest_fill(uint64_t first, uint64_t end)
{
	uint64_t pfn;

	for (pfn = first; pfn < end; pfn++) {
		volatile uint64_t *p;
		uint64_t v;

		if (mv_is_zero_page(pfn))
			continue;
		p = page(pfn);
		v = mv_pattern(pfn, 1);
		p[0] = v;
		p[MV_QWORDS_PER_PAGE - 1] = ~v;
	}
}

/*
 * Whether qwords 1..510 of page `p` all hold `want`; if not, *found is the
 * first one that does not. `repe scasq` is one instruction for the emulator
 * to run, not a loop of a few per qword (DF is clear, see start.S).
 */
static int
guest_middle_ok(volatile uint64_t *p, uint64_t want, uint64_t *found)
{
	uintptr_t d = (uintptr_t)(p + 1);
	uint64_t n = MV_QWORDS_PER_PAGE - 2;
	int ne;

	__asm__ volatile("repe scasq"
	    : "+D"(d), "+c"(n), "=@ccne"(ne)
	    : "a"(want)
	    : "memory");
	if (ne)
		*found = *(volatile uint64_t *)(d - 8);
	return !ne;
}

/*
 * One writer pass: expect gen - 1 in qwords 0 and 511, leave gen. Returns
 * errors. The fill in between is checked once, by guest_verify().
 */
static uint64_t
guest_pass(volatile struct mv_report *r, uint64_t first, uint64_t end,
    uint64_t gen)
{
	uint64_t pfn, errors = 0;

	for (pfn = first; pfn < end; pfn++) {
		volatile uint64_t *p;
		uint64_t old, v;

		if (mv_is_zero_page(pfn))
			continue;
		p = page(pfn);
		old = mv_pattern(pfn, gen - 1);
		v = p[0];
		if (v != old || p[MV_QWORDS_PER_PAGE - 1] != ~old) {
			errors++;
			note_bad(r, pfn, v != old ? v : p[MV_QWORDS_PER_PAGE - 1]);
		}
		v = mv_pattern(pfn, gen);
		p[0] = v;
		p[MV_QWORDS_PER_PAGE - 1] = ~v;
	}
	return errors;
}

static void
guest_verify(volatile struct mv_report *r, uint64_t first, uint64_t end,
    uint64_t gen)
{
	uint64_t pfn, errors = 0, pages = 0, zeros = 0, c = MV_CSUM_INIT;

	for (pfn = first; pfn < end; pfn++) {
		volatile uint64_t *p = page(pfn);
		uint64_t a = p[0], b = p[MV_QWORDS_PER_PAGE - 1], mid = 0;
		uint64_t want_a = mv_page_qword(pfn, gen, 0);
		uint64_t want_b = mv_page_qword(pfn, gen, MV_QWORDS_PER_PAGE - 1);
		uint64_t found = 0;

		c = mv_csum(mv_csum(c, a), b);
		if (mv_is_zero_page(pfn))
			zeros++;
		else {
			pages++;
			mid = mv_fill(pfn);
		}
		if (a != want_a || b != want_b) {
			errors++;
			note_bad(r, pfn, a != want_a ? a : b);
		} else if (!guest_middle_ok(p, mid, &found)) {
			errors++;
			note_bad(r, pfn, found);
		}
	}
	r->errors += errors;
	r->pages_checked = pages;
	r->zero_checked = zeros;
	r->checksum = c;
}

/*
 * The last thing a vCPU does: zero its whole stack (MV_STACK_SIZE bytes
 * below its MV_STACK_TOP slot), report MV_EV_VERIFIED and halt for good.
 * A stack holds whatever the calls left there, which no host can predict;
 * zeroed, the pages the guest wrote after a migration have a rule too
 * (minivmm_verify.c). Nothing after the `rep stosq` touches the stack, so
 * it may wipe this function's own frame.
 */
static void __attribute__((noreturn))
guest_finish(uint64_t vcpu)
{
	uint64_t base = MV_STACK_TOP - (vcpu + 1) * MV_STACK_SIZE;

	__asm__ volatile("rep stosq\n\t"
	    "movl %%esi, %%eax\n\t"
	    "outl %%eax, %%dx\n"
	    "1:\thlt\n\t"
	    "jmp 1b"
	    :
	    : "D"(base), "c"(MV_STACK_SIZE / 8), "a"(0ULL),
	      "S"((uint32_t)MV_EV_VERIFIED), "d"((uint16_t)MV_PORT_EVENT)
	    : "memory");
	__builtin_unreachable();
}

void
guest_main(uint64_t vcpu)
{
	const volatile struct mv_params *params =
	    (const volatile struct mv_params *)MV_PARAMS_GPA;
	const volatile struct mv_mailbox *mb =
	    (const volatile struct mv_mailbox *)MV_MAILBOX_GPA;
	volatile struct mv_report *r =
	    &((volatile struct mv_report *)MV_REPORT_GPA)[vcpu];
	uint64_t first = params->slice[vcpu].first_pfn;
	uint64_t end = params->slice[vcpu].end_pfn;
	uint64_t gen;

	guest_idt_setup();

	r->vcpu = (uint32_t)vcpu;
	r->gen = 0;
	r->errors = 0;
	r->pages_checked = 0;
	r->zero_checked = 0;
	r->checksum = 0;
	r->first_bad_pfn = ~0ULL;
	r->first_bad_val = 0;
	r->status = MV_ST_FILLING;

	guest_fill(first, end);
	r->gen = 1;
	r->status = MV_ST_RUNNING;
	outl(MV_PORT_EVENT, MV_EV_FILLED);

	if (params->workload == MV_WORKLOAD_QUIET) {
		/* The host re-enters a halted vCPU only to look again. */
		while (mb->migration_done == 0)
			hlt();
	} else {
		/* Mailbox only between passes: one generation per page. */
		while (mb->migration_done == 0) {
			gen = r->gen + 1;
			r->errors += guest_pass(r, first, end, gen);
			r->gen = gen;
			outl(MV_PORT_EVENT, MV_EV_PASS);
		}
	}

	guest_verify(r, first, end, r->gen);
	r->status = MV_ST_VERIFIED;
	guest_finish(vcpu);
}
