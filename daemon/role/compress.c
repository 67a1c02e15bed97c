/*
 * compress: zstd page runs (compress.h), the codec in lib/framez.c.
 *
 * Adaptive (mode auto), from what this migration measures as it runs: it
 * moves in phases of CZ_PHASE_NS. Each cycle begins with one phase that
 * sends raw and one that compresses, each measuring the guest bytes per
 * second it moved (what the background writer queued: it queues only as
 * fast as the link and both ends drain, MIG_BG_HIWAT; over the second half
 * of the phase only, once the socket and queue buffers the first half
 * filled or drained are at their new level), then does what was
 * faster for CZ_HOLD phases and measures both again. That one number takes
 * in all there is: the ratio, the compress and decompress time on both
 * ends, and the link; a model from ratio, compress time and the wire rate
 * alone was tried first and kept compressing on a fast link, because while
 * it compresses the wire rate it measures is the compressor's, not the
 * link's (doc/design.md "Compression").
 *
 * Two bounds cut the compressing phase short after CZ_PROBE_BYTES, and
 * the first skips it later: the compressor alone (guest bytes per second
 * of framez_encode's own time) must beat the raw rate, and the runs must
 * shrink by 5%. The same thread compresses what it sends, and on a link
 * that limits raw the compressed rate is at most the compressor's, so
 * where it does not beat raw, compressing cannot win, whatever the ratio.
 */
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "config.h"
#include "framez.h"
#include "log.h"
#include "policy.h"
#include "pool.h"
#include "util.h"

#define CZ_PHASE_NS	40000000	/* auto: one phase; it measures its second half */
#define CZ_HOLD		30	/* auto: phases the faster way keeps */
/* auto: a pause this long between runs (link lost, nothing to send) starts
 * the phase again; shorter ones are the link's pace: a rate cap releases
 * bytes every 10 ms, a slow link every few. */
#define CZ_IDLE_NS	250000000
#define CZ_PROBE_BYTES	(1u << 20)	/* auto: compressed before the bound may end a phase */

struct cz {
	int		 mode, peer;
	ZSTD_DCtx	*dc;
	uint8_t		*buf;		/* MIG_FRAME_MAX_BYTES */
	/* auto: the phase (0 raw, 1 compresses, then the winner), its start
	 * and bytes then, the last call, both rates (bytes/s), the winner */
	unsigned	 phase;
	int64_t		 phase_t0, last, mid_t;
	uint64_t	 mid_b;
	double		 rate_on, rate_off;
	int		 win;
	/* the compressor alone: guest bytes and time in framez_encode this
	 * phase, and its rate from the last compressing phase (0: unknown) */
	uint64_t	 enc_bytes, enc_out;
	int64_t		 enc_ns;
	double		 enc_rate;
	struct frame_hdr raw;		/* destination: the decoded frame */
};

uint32_t
cz_decodes(void)
{
	return D->conf.advertise_compression ? 1u << 0 : 0;
}

static struct cz *
cz_get(struct migration *m)
{
	if (m->cz == NULL)
		m->cz = calloc(1, sizeof(*m->cz));
	return m->cz;
}

void
cz_start(struct migration *m, int mode)
{
	struct cz *z = cz_get(m);

	if (z != NULL)
		z->mode = mode;
	snprintf(m->compression, sizeof(m->compression), "%s", compress_name(mode));
}

void
cz_peer(struct migration *m, uint32_t decodes)
{
	struct cz *z = cz_get(m);

	if (z == NULL)
		return;
	z->peer = (decodes & 1u) != 0;
	if (!z->peer && z->mode != COMPRESS_OFF) {
		snprintf(m->compression, sizeof(m->compression), "%s (peer)", "off");
		log_info("migration %s: the destination does not decode zstd; pages go raw",
		    m->id);
	}
}

/* The compressor alone this phase: guest bytes/s of framez_encode's time. */
static double
cz_enc_rate(const struct cz *z)
{
	return z->enc_ns > 0 ? (double)z->enc_bytes * 1e9 / (double)z->enc_ns : 0;
}

/* The phase that measured rate r (guest bytes/s) is over: the next one. */
static void
cz_phase_end(struct migration *m, struct cz *z, int64_t now, double r)
{
	if (z->phase == 0)
		z->rate_off = r;
	if (z->phase == 1) {
		z->rate_on = r;
		if (z->enc_ns > 0)
			z->enc_rate = cz_enc_rate(z);
		z->win = z->rate_on > z->rate_off;
		log_debug("migration %s: raw %.0f MB/s, compressed %.0f MB/s (compressor "
		    "alone %.0f MB/s): %s", m->id, z->rate_off / 1e6, r / 1e6,
		    z->enc_rate / 1e6, z->win ? "compressing" : "raw");
	}
	z->phase = (z->phase + 1) % (CZ_HOLD + 2);
	/* The compressor measured slower than this raw rate last time:
	 * skip the compressing phase (its rate is measured again when it
	 * runs, each CZ_HOLD + 2 phases, or when raw slows down). */
	if (z->phase == 1 && z->enc_rate > 0 && z->enc_rate < z->rate_off * 0.9) {
		z->win = 0;
		z->phase = 2;
	}
	z->phase_t0 = now;
	z->mid_t = 0;
	z->enc_bytes = z->enc_out = 0;
	z->enc_ns = 0;
}

/* Compress this run? auto: the phase says (see the top of this file). */
static int
cz_worth(struct migration *m, struct cz *z)
{
	uint64_t b = m->st.compress_bytes_before;
	int64_t now;

	if (z->mode == COMPRESS_ON)
		return 1;
	now = now_ns();
	if (z->phase_t0 == 0 || now - z->last > CZ_IDLE_NS) {
		/* first run, or idle since: this phase starts again */
		z->phase_t0 = now;
		z->mid_t = 0;
	} else if (z->mid_t == 0 && now - z->phase_t0 >= CZ_PHASE_NS / 2) {
		z->mid_t = now;
		z->mid_b = b;
	} else if (z->phase == 1 && z->enc_bytes >= CZ_PROBE_BYTES &&
	    ((z->enc_ns > 0 && cz_enc_rate(z) < z->rate_off) ||
	    z->enc_out * 20 > z->enc_bytes * 19)) {
		/* The compressor alone is slower than raw, or the pages do not
		 * shrink (by 5%): no need to see more. */
		cz_phase_end(m, z, now, 0);
	} else if (z->mid_t != 0 && now - z->mid_t >= CZ_PHASE_NS / 2) {
		cz_phase_end(m, z, now, (double)(b - z->mid_b) * 1e9 / (double)(now - z->mid_t));
	}
	z->last = now;
	return z->phase == 0 ? 0 : z->phase == 1 ? 1 : z->win;
}

/*
 * The compressing threads, daemon-wide: the loop thread and [peer]
 * compress_threads workers (pool.c), each with its own zstd context. Only
 * the loop thread runs a batch, one at a time, so one set serves every
 * migration. Made at the first batch that compresses.
 */
static struct pool	*cz_pool;
static ZSTD_CCtx	*cz_cc[POOL_MAX_WORKERS + 1];
static int		 cz_pool_tried;

static unsigned
cz_threads(void)
{
	if (!cz_pool_tried) {
		cz_pool_tried = 1;
		cz_pool = pool_shared((unsigned)config_compress_threads(&D->conf));
		for (unsigned t = 0; t < pool_threads(cz_pool); t++)
			if ((cz_cc[t] = ZSTD_createCCtx()) == NULL) {
				log_warnx("out of memory for zstd contexts; compressing on "
				    "the loop thread");
				cz_pool = NULL;	/* cz_cc[0] made: one thread */
				break;
			}
		if (cz_cc[0] != NULL)
			log_info("compressing on %u threads", pool_threads(cz_pool));
	}
	return cz_cc[0] == NULL ? 0 : pool_threads(cz_pool);
}

unsigned
cz_batch(struct migration *m)
{
	struct cz *z = m->cz;
	unsigned t;

	if (z == NULL || !z->peer || z->mode == COMPRESS_OFF || !m->st.compressing)
		return 1;
	t = cz_threads();
	return t < 1 ? 1 : t;
}

static void
cz_job(void *arg, unsigned j, unsigned t)
{
	struct cz_run *r = (struct cz_run *)arg + j;

	/* D->conf changes only on the loop thread, which waits in pool_run */
	r->zlen = (uint32_t)framez_encode(cz_cc[t], D->conf.compression_level, r->src,
	    r->len, r->dst, r->len);
}

void
cz_deflate(struct migration *m, struct cz_run *r, unsigned n)
{
	struct cz *z = m->cz;
	uint64_t in = 0, out = 0;
	int64_t t0;

	for (unsigned k = 0; k < n; k++) {
		r[k].zlen = 0;
		in += r[k].len;
	}
	if (n == 0)
		return;
	if (z != NULL && z->peer && z->mode != COMPRESS_OFF) {
		/* before these runs count: phases measure what went before */
		m->st.compressing = (uint32_t)cz_worth(m, z);
		if (m->st.compressing && cz_threads() > 0) {
			t0 = now_ns();
			pool_run(cz_pool, cz_job, r, n);
			/* the compressor alone: all its threads, wall time */
			z->enc_ns += now_ns() - t0;
			z->enc_bytes += in;
			for (unsigned k = 0; k < n; k++)
				out += r[k].zlen != 0 ? r[k].zlen : r[k].len;
			z->enc_out += out;
		}
	}
	m->st.compress_bytes_before += in;
	m->st.compress_bytes_after += out != 0 ? out : in;
}

const uint8_t *
cz_inflate(struct migration *m, const struct frame_hdr **h, const uint8_t *p,
    const char **why)
{
	struct cz *z;
	int rc;

	if ((*h)->enc != FRAME_ENC_ZSTD)
		return p;
	if (!cz_decodes()) {
		*why = "compressed pages, though this destination did not offer zstd";
		return NULL;
	}
	if ((z = cz_get(m)) == NULL ||
	    (z->dc == NULL && (z->dc = ZSTD_createDCtx()) == NULL) ||
	    (z->buf == NULL && (z->buf = malloc(MIG_FRAME_MAX_BYTES)) == NULL)) {
		*why = "out of memory for decompression";
		return NULL;
	}
	if ((rc = framez_decode(z->dc, *h, p, m->page_size, z->buf,
	    MIG_FRAME_MAX_BYTES)) != FRAME_OK) {
		*why = frame_strerror(rc);
		return NULL;
	}
	z->raw = **h;
	z->raw.enc = FRAME_ENC_RAW;
	z->raw.len = (*h)->count * m->page_size;
	*h = &z->raw;
	return z->buf;
}

void
cz_release(struct migration *m)
{
	struct cz *z = m->cz;

	if (z == NULL)
		return;
	ZSTD_freeDCtx(z->dc);
	free(z->buf);
	free(z);
	m->cz = NULL;
}
