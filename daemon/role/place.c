/*
 * place: where a raw background frame's payload lands while the transport
 * reads it (transport/peer_rx.c asks, m->ops->rx_where), so that no byte is
 * copied between TLS and the install:
 *
 * - copy mode: one page-aligned staging buffer per background stream;
 *   UFFDIO_COPY takes the pages from there (the kernel's copy is the only
 *   one).
 * - minor mode on hugetlbfs: the first run of the frame's pages that are
 *   neither installed nor being installed is read straight into guest
 *   RAM's page cache through the daemon's own mapping of the memfd (made at
 *   attach: hugetlbfs has no write()), and UFFDIO_CONTINUE maps it
 *   (place_claim, from inst_ioctl). The rest of the frame goes to staging:
 *   an installed page is never written (the guest may run on it), fault.c
 *   skips it; a page of the page cache not marked installed takes the
 *   installer's usual path. Before the first byte lands the run is in the
 *   journal (WRITING) and its pages are allocated (MADV_POPULATE_WRITE: an
 *   error, not a SIGBUS, when no page is left), so a crash at any byte
 *   punches it out after the restart, as for a pwrite.
 * - minor mode on shmem: not here; pwrite from the bufferevent's buffer, as
 *   before. A page write(2) fills whole is never zeroed first, one
 *   allocated for a mapping always is, so reading into a mapping costs more
 *   there than the copy it saves, and reading into staging only moves the
 *   copy (measured: bench/rxcopy.sh, doc/design.md).
 *
 * The journal holds one run, so only stream 0 reads into the page cache;
 * the other streams' frames go to their staging whole (one copy fewer than
 * the bufferevent's buffer). Any other minor-mode install while a run is in
 * flight (a demand page from the urgent channel) first moves the run into
 * staging (place_evacuate), so the journal, and every page of the page
 * cache outside it, stay true. Pages re-sent in pre-copy are installed
 * already: they go through staging, and dst_frame drops the earlier copy
 * before the new one goes in, as before. Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitmap.h"
#include "dest.h"
#include "journal.h"
#include "log.h"
#include "memguard.h"
#include "peer.h"
#include "place.h"
#include "util.h"
#include "vm.h"

struct place {
	uint8_t		*staging;	/* MIG_FRAME_MAX_BYTES, page-aligned */
	struct pconn	*c;		/* whose frame is being read */
	uint64_t	 first;		/* the frame's first page */
	uint32_t	 len;		/* and its payload bytes */
	uint64_t	 idx, n;	/* the run read into the page cache (n: 0, none) */
	int		 complete;	/* the whole payload is in */
};

int
place_hugetlb(const struct migration *m)
{
	return m->page_size > 4096;
}

int
place_punch(struct migration *m, uint64_t idx, uint64_t n)
{
	if (fallocate(m->vm->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)(idx * m->page_size), (off_t)(n * m->page_size)) == 0)
		return 0;
	log_warn("migration %s: cannot drop pages %llu+%llu from the page cache",
	    m->id, (unsigned long long)idx, (unsigned long long)n);
	return -1;
}

/*
 * A page already in the page cache is complete (a torn one never outlives
 * the journal) and may be the guest's: it is never written again. Hugetlbfs
 * cannot tell (SEEK_DATA says "all data"): there the installed set and the
 * journal are the whole truth.
 */
uint64_t
place_holes(struct migration *m, uint64_t idx, uint64_t n)
{
	off_t d;

	if (place_hugetlb(m) ||
	    (d = lseek(m->vm->memfd, (off_t)(idx * m->page_size), SEEK_DATA)) < 0)
		return n;
	if ((uint64_t)d >= (idx + n) * m->page_size)
		return n;
	return ((uint64_t)d - idx * m->page_size) / m->page_size;
}

/*
 * Minor mode: pages [idx, idx+n) were written into the page cache and not
 * mapped (before the write they were holes): drop them, they are installed
 * again later; then nothing is between write and map. If they cannot be
 * dropped the journal keeps naming them (a restart drops them) and this
 * migration installs nothing more in minor mode.
 */
void
place_settle(struct migration *m, uint64_t idx, uint64_t n)
{
	if (n > 0 && (m->vm == NULL || place_punch(m, idx, n) < 0)) {
		journal_writing(m->dst->journal, idx, n);
		m->dst->unsettled = 1;
		return;
	}
	journal_idle(m->dst->journal);
}

/* Minor mode: picks the run read into the page cache, journaled and allocated. */
static void
place_run(struct migration *m, struct place *p, const struct frame_hdr *h)
{
	uint64_t k = h->index, end = h->index + h->count, j, holes;
	uint8_t *map = m->vm->map;

	while (k < end && bitmap_test(m->dst->installed, k))
		k++;
	for (j = k; j < end && !bitmap_test(m->dst->installed, j); j++)
		;
	if (k == end || map == NULL || (holes = place_holes(m, k, j - k)) == 0)
		return;
	journal_writing(m->dst->journal, k, holes);
	if (madvise(map + k * m->page_size, holes * m->page_size, MADV_POPULATE_WRITE) < 0) {
		log_warn("migration %s: cannot allocate pages %llu+%llu of guest RAM; "
		    "through a buffer", m->id, (unsigned long long)k, (unsigned long long)holes);
		place_settle(m, k, holes);
		return;
	}
	p->idx = k;
	p->n = holes;
}

/* The place of c's frame, NULL if c is not a background stream of m's. */
static struct place **
place_of(const struct pconn *c)
{
	struct migration *m = c->mig;

	if (m == NULL || m->dst == NULL || !peer_is_bg(c) || c->stream >= MIG_STREAMS_MAX)
		return NULL;
	return &m->dst->place[c->stream];
}

int
place_begin(struct pconn *c, const struct frame_hdr *h, uint8_t **staging)
{
	struct migration *m = c->mig;
	struct place **slot, *p;
	void *a;

	if (D->conf.rx_buffered || (slot = place_of(c)) == NULL || h->len > MIG_FRAME_MAX_BYTES)
		return 1;
	/* Minor mode on shmem: pwrite from the bufferevent's buffer, as ever
	 * (staging would only move the copy; measured: no gain). */
	if (m->vm != NULL && m->vm->minor && !place_hugetlb(m))
		return 1;
	if ((p = *slot) == NULL) {
		a = mmap(NULL, MIG_FRAME_MAX_BYTES, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED)
			return 1;
		if ((p = calloc(1, sizeof(*p))) == NULL) {
			munmap(a, MIG_FRAME_MAX_BYTES);
			return 1;
		}
		p->staging = a;
		*slot = p;
	}
	if (p->n > 0)	/* not settled (cannot happen): never two runs */
		return 1;
	p->c = c;
	p->first = h->index;
	p->len = h->len;
	p->complete = 0;
	/* A raw run (not zero pages, not a compressed run) of a VM that is
	 * here, in minor mode (hugetlbfs: the page cache is written through a
	 * mapping anyway), on the stream whose run the journal names. */
	if (c->stream == 0 && h->enc == FRAME_ENC_RAW && h->len > 0 && m->vm != NULL &&
	    m->vm->uffd >= 0 &&
	    m->vm->minor && m->dst->journal != NULL && !m->dst->unsettled)
		place_run(m, p, h);
	*staging = p->staging;
	return 0;
}

uint8_t *
place_where(struct pconn *c, uint32_t off, uint32_t *len)
{
	struct migration *m = c->mig;
	struct place *p = *place_of(c);	/* place_begin took the frame */
	uint64_t a = (p->idx - p->first) * m->page_size, b = a + p->n * m->page_size;

	if (p->n > 0 && m->vm == NULL)
		p->n = 0;	/* the VM went (its mapping with it): nothing to keep */
	if (off >= p->len) {	/* all in */
		p->complete = 1;
		*len = 0;
		return NULL;
	}
	if (p->n > 0 && off >= a && off < b) {
		*len = (uint32_t)(b - off);
		return (uint8_t *)m->vm->map + p->first * m->page_size + off;
	}
	*len = p->n > 0 && off < a ? (uint32_t)(a - off) : p->len - off;
	return p->staging + off;
}

void
place_end(struct pconn *c)
{
	struct migration *m = c->mig;
	struct place **slot = place_of(c), *p;

	if (slot == NULL || (p = *slot) == NULL || p->c != c)
		return;
	/* Not mapped (the frame was not delivered, or not all of it): out. */
	if (p->n > 0)
		place_settle(m, p->idx, p->n);
	p->n = 0;
	p->c = NULL;
}

uint64_t
place_claim(struct migration *m, uint64_t idx, uint64_t n)
{
	struct place *p = m->dst->place[0];	/* the one that reads runs */
	uint64_t k;

	if (p == NULL || p->n == 0 || !p->complete || idx != p->idx || n < p->n)
		return 0;
	journal_written(m->dst->journal);
	k = p->n;
	p->n = 0;
	return k;
}

int
place_evacuate(struct migration *m)
{
	struct place *p = m->dst->place[0];
	uint64_t off;

	if (p == NULL || p->n == 0)
		return 0;
	if (m->vm == NULL) {
		p->n = 0;
		return 0;
	}
	off = (p->idx - p->first) * m->page_size;
	if (memguard_copy(p->staging + off, (uint8_t *)m->vm->map + p->idx * m->page_size,
	    p->n * m->page_size) < 0) {
		log_warn("migration %s: cannot read back pages %llu+%llu", m->id,
		    (unsigned long long)p->idx, (unsigned long long)p->n);
		return -1;
	}
	place_settle(m, p->idx, p->n);
	p->n = 0;	/* place_where sends the rest of the run to staging */
	return 0;
}

void
place_free(struct migration *m)
{
	for (uint32_t k = 0; k < MIG_STREAMS_MAX; k++) {
		struct place *p = m->dst->place[k];

		if (p == NULL)
			continue;
		/* A run in flight stays WRITING in the journal: a restart drops it. */
		munmap(p->staging, MIG_FRAME_MAX_BYTES);
		free(p);
		m->dst->place[k] = NULL;
	}
}
