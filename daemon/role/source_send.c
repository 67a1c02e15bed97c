/*
 * source_send: the page server's sending side (source.c). Pages are read
 * from guest RAM with pread and queued on a channel as frames of at most
 * mig_frame_pages pages: runs of zero pages (a marker), of poisoned pages
 * (a marker) and of raw pages (the bytes). Background raw runs may travel
 * compressed (compress.h); demand pages never. While a migration
 * compresses, a background batch reads as many frames as there are
 * compressing threads, compresses all their runs at once (cz_deflate, on
 * the pool's threads), then queues the frames in page order: the loop
 * thread waits as long as for one frame on one thread, and the frames,
 * their order and what is marked sent are those of one thread. Which pages
 * go next, on which stream, is src_bg_queue's: the hot list, then the
 * address-order cursor, one stream filled at a time or, with parallel
 * encryption, every stream in rounds whose TLS writes run on the pool
 * (peer_tx.h). Loop thread only (the static buffers are the loop thread's;
 * the pool's threads touch them only inside cz_deflate).
 */
#include <stdio.h>

#include "bitmap.h"
#include "compress.h"
#include "log.h"
#include "peer.h"
#include "peer_tx.h"
#include "pool.h"
#include "probes.h"
#include "source.h"
#include "source_ram.h"
#include "util.h"

#define SRC_BATCH_MAX	(POOL_MAX_WORKERS + 1)	/* frames per batch, at most */
#define SRC_BATCH_PAGES	(MIG_FRAME_MAX_PAGES * SRC_BATCH_MAX)
#if MIG_FRAME_MAX_PAGES * 4096 * SRC_BATCH_MAX > MIG_FRAME_MAX_BYTES
#error "a batch of 4 KiB pages must fit in MIG_FRAME_MAX_BYTES"
#endif

/* One frame of a batch: pages [a, a+count) of it, one class; its run in
 * the compressor's list, or -1. */
struct src_frame {
	uint32_t	 a, count;
	uint8_t		 cls;
	int		 run;
};

/* Marks the pages of one queued frame sent, and counts them. */
static void
src_mark(struct migration *m, uint64_t first, uint32_t count, uint8_t cls, int demand)
{
	for (uint64_t k = first; k < first + count; k++) {
		if (m->state == MIG_PRECOPY && !demand) {
			/* counted by round, not by class */
			if (!bitmap_test(m->src->sent, k))
				m->src->nsent++;
			bitmap_set(m->src->sent, k);
			pc_sent(m, k);
			continue;
		}
		/* Classes count distinct pages; a demand request that overtook
		 * the background copy is answered again and counted as a
		 * duplicate. */
		if (bitmap_test(m->src->sent, k)) {
			m->st.pages_duplicate++;
			continue;
		}
		bitmap_set(m->src->sent, k);
		m->src->nsent++;
		if (cls == PG_POISON) {
			m->st.pages_poisoned++;
			log_warnx("migration %s: page %llu is poisoned here; sent as poison",
			    m->id, (unsigned long long)k);
		} else if (cls == PG_ZERO)
			m->st.pages_zero++;
		else if (demand)
			m->st.pages_demand++;
		else
			m->st.pages_background++;
	}
}

/*
 * At most MIG_FRAME_MAX_BYTES a batch: with 4 KiB pages as many frames as
 * threads; a 2 MiB page is a frame of its own, and batching those would
 * let a demand request wait behind two of them whenever the workers get no
 * core. So huge pages compress one frame at a time, on the loop thread.
 */
uint32_t
src_batch_pages(struct migration *m)
{
	uint32_t b = cz_batch(m), fp = mig_frame_pages(m);
	uint32_t most = MIG_FRAME_MAX_BYTES / (fp * m->page_size);

	if (b > most)
		b = most;
	return fp * (b > 1 ? b : 1);
}

int
src_send_pages(struct migration *m, struct pconn *c, uint64_t start, uint32_t n,
    int demand)
{
	static const uint8_t enc[] = { FRAME_ENC_RAW, FRAME_ENC_ZERO, FRAME_ENC_POISON };
	static uint8_t buf[MIG_FRAME_MAX_BYTES];
	static uint8_t zbuf[MIG_FRAME_MAX_BYTES];
	static uint8_t cls[SRC_BATCH_PAGES];
	static struct src_frame f[SRC_BATCH_PAGES];
	static struct cz_run r[SRC_BATCH_PAGES];
	uint32_t fp = mig_frame_pages(m), ps = m->page_size;
	int bg = !demand && c != m->urgent;
	uint32_t bp = bg ? src_batch_pages(m) : fp;
	uint64_t end = start + n;

	for (uint64_t b0 = start; b0 < end; b0 += bp) {
		uint32_t bn = (uint32_t)(end - b0 < bp ? end - b0 : bp), nf = 0, nr = 0;

		if (ram_read(m->src->memfd, ps, b0, bn, buf, cls) < 0) {
			log_warn("migration %s: read guest RAM at page %llu", m->id,
			    (unsigned long long)b0);
			return -1;
		}
		/* Frames: runs of one class, none across a multiple of fp. */
		for (uint32_t a = 0, b; a < bn; a = b) {
			uint32_t lim = (a / fp + 1) * fp;

			for (b = a + 1; b < bn && b < lim && cls[b] == cls[a]; b++)
				;
			f[nf] = (struct src_frame){ .a = a, .count = b - a, .cls = cls[a],
			    .run = -1 };
			if (cls[a] == PG_RAW && bg) {
				r[nr] = (struct cz_run){ .src = buf + (size_t)a * ps,
				    .dst = zbuf + (size_t)a * ps, .len = (b - a) * ps };
				f[nf].run = (int)nr++;
			}
			nf++;
		}
		cz_deflate(m, r, nr);
		for (uint32_t k = 0; k < nf; k++) {
			struct frame_hdr h = { .type = FRAME_PAGES, .index = b0 + f[k].a,
			    .count = f[k].count, .enc = enc[f[k].cls] };
			const uint8_t *payload = buf + (size_t)f[k].a * ps;

			h.len = f[k].cls == PG_RAW ? h.count * ps : 0;
			if (f[k].run >= 0 && r[f[k].run].zlen != 0) {
				h.enc = FRAME_ENC_ZSTD;
				h.len = r[f[k].run].zlen;
				payload = r[f[k].run].dst;
			}
			if (peer_send_frame(c, &h, payload) < 0)
				return -1;
			if (c != m->urgent) {
				m->src->bg_queued += FRAME_HDR_LEN + h.len;
				m->src->stream_pages[c->stream] += h.count;
			}
			PROBE_SERVED(m->num, h.index, h.count, demand);
			src_mark(m, h.index, h.count, f[k].cls, demand);
		}
	}
	return 0;
}

/* Stream c cannot go on: the caller of src_bg_queue hears which, and why. */
static void
src_bg_loss(struct src_bg_loss *lost, struct pconn *c, const char *why)
{
	lost->c = c;
	snprintf(lost->why, sizeof(lost->why), "%s", why);
}

/*
 * Queues background pages on stream c of m until it holds MIG_BG_HIWAT
 * bytes or every page is sent. As src_bg_queue.
 */
static int
src_bg_fill(struct pconn *c, struct migration *m, int64_t t0, int64_t *t_check,
    struct src_bg_loss *lost)
{
	while (m->src->nsent < m->npages && src_queued(c) < MIG_BG_HIWAT) {
		uint64_t i = m->src->bg_cursor, j;
		uint32_t hn, bp = src_batch_pages(m);

		/* A demand request may wait on this thread: go on after it. */
		if (peer_bulk_turn_over(m, t0, t_check))
			return 1;

		/* Post-copy: the pages written last go first (unless following). */
		if (m->state == MIG_POSTCOPY && m->src->follow == 0 &&
		    pc_hot_next(m, bp, &j, &hn)) {
			if (src_send_pages(m, c, j, hn, 0) < 0) {
				src_bg_loss(lost, c, "cannot queue background pages");
				return -1;
			}
			continue;
		}
		/* The cursor jumps to demand faults; wrap to pick up what it skipped. */
		while (i < m->npages && bitmap_test(m->src->sent, i))
			i++;
		if (i >= m->npages) {
			m->src->bg_cursor = 0;
			continue;
		}
		j = i;
		while (j < m->npages && j - i < bp && !bitmap_test(m->src->sent, j))
			j++;
		m->src->bg_cursor = j;
		m->src->follow -= m->src->follow < j - i ? m->src->follow : j - i;
		if (j > i && src_send_pages(m, c, i, (uint32_t)(j - i), 0) < 0) {
			src_bg_loss(lost, c, "cannot queue background pages");
			return -1;
		}
	}
	return 0;
}

/*
 * Several streams, their TLS writes on the worker threads (peer_tx.h): in
 * rounds, every stream whose output is empty stages up to MIG_BG_HIWAT of
 * frames, one after another from the shared cursor as before, and all the
 * stages are written at once. A stream whose output still holds a write
 * its socket refused is filled as with one thread; libevent's writer
 * calls back for it. As src_bg_queue.
 */
static int
src_bg_parallel(struct migration *m, int64_t t0, int64_t *t_check, struct src_bg_loss *lost)
{
	struct pconn *cs[MIG_STREAMS_MAX];
	struct peer_tx *txs[MIG_STREAMS_MAX];
	unsigned n, failed = 0;
	int r, w;

	do {
		n = 0;
		r = 0;
		/* each round begins one stream further: the first to fill is the
		 * one the slice's end spares */
		m->src->tx_first++;
		for (uint32_t k = 0; k < m->st.streams && k < MIG_STREAMS_MAX && r == 0; k++) {
			struct pconn *s = *peer_bg_slot(m, (k + m->src->tx_first) % m->st.streams);

			if (s == NULL || s->mig != m || !s->hello_sent)
				continue;
			if (src_stage(s)) {
				cs[n] = s;
				txs[n++] = s->tx;
			}
			r = src_bg_fill(s, m, t0, t_check, lost);
		}
		if (r < 0)
			return -1;
		w = peer_tx_flush(m->src->tx_pool, txs, n, &m->src->tx_blocked, &failed);
		if (w < 0) {
			src_bg_loss(lost, cs[failed], peer_tx_why(txs[failed]));
			return -1;
		}
		m->src->tx_rounds += w > 1;
		m->src->tx_stages += (unsigned)w;
	} while (r == 0 && n > 0 && m->src->nsent < m->npages);
	return r;
}

/* Whether m's streams write on the worker threads now (post-copy only: pre-copy
 * and its VmState keep to stream 0). */
static int
src_bg_parallel_on(const struct migration *m)
{
	return m->state == MIG_POSTCOPY && m->st.streams > 1 && m->src->tx_pool != NULL &&
	    D->conf.parallel_encryption;
}

int
src_bg_queue(struct pconn *c, struct migration *m, int64_t t0, int64_t *t_check,
    struct src_bg_loss *lost)
{
	return src_bg_parallel_on(m) ? src_bg_parallel(m, t0, t_check, lost) :
	    src_bg_fill(c, m, t0, t_check, lost);
}
