/*
 * compress: zstd page runs (compress.h), the codec in lib/framez.c.
 *
 * Adaptive (mode auto), from what this migration measures as it runs: the
 * compressed/raw ratio r and the compress time per raw byte c (moving
 * averages over the runs it compressed) and the background stream's
 * delivery rate R (bytes/s, source.c's one-second windows). Sending a raw
 * byte costs 1/R; compressed, r/R + c. So it compresses while
 * c * R < 1 - r (and before R is known), and when that stops holding
 * still compresses one run in CZ_PROBE_EVERY to follow a change of
 * content or link.
 */
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "config.h"
#include "framez.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#define CZ_LEVEL	1	/* zstd level: see doc/design.md for the measure */
#define CZ_PROBE_EVERY	16	/* auto, off: compress 1 run in this many */
#define CZ_WARMUP	8	/* runs measured before auto decides */
#define CZ_EWMA		0.125	/* weight of the newest run */

struct cz {
	int		 mode, peer;
	ZSTD_CCtx	*cc;
	ZSTD_DCtx	*dc;
	uint8_t		*buf;		/* MIG_FRAME_MAX_BYTES */
	double		 ratio, ns_per_byte;
	unsigned	 samples, skipped;
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
	if (m->cz == NULL && (m->cz = calloc(1, sizeof(*m->cz))) != NULL)
		m->cz->ratio = 1.0;
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

/* auto: does compressing pay off on this link now? */
static int
cz_worth(struct migration *m, struct cz *z)
{
	double rate = m->st.background_bits_per_s / 8;	/* bytes/s */

	if (z->mode == COMPRESS_ON || z->samples < CZ_WARMUP || rate <= 0)
		return 1;
	return z->ns_per_byte * rate / 1e9 < 1 - z->ratio;
}

const uint8_t *
cz_deflate(struct migration *m, const uint8_t *src, uint32_t len, uint32_t *zlen)
{
	struct cz *z = m->cz;
	int64_t t0;
	size_t n;

	m->st.compress_bytes_before += len;
	if (z == NULL || !z->peer || z->mode == COMPRESS_OFF)
		goto raw;
	if (!(m->st.compressing = cz_worth(m, z)) && ++z->skipped % CZ_PROBE_EVERY != 0)
		goto raw;
	if (z->cc == NULL && (z->cc = ZSTD_createCCtx()) == NULL)
		goto raw;
	if (z->buf == NULL && (z->buf = malloc(MIG_FRAME_MAX_BYTES)) == NULL)
		goto raw;
	t0 = now_ns();
	n = framez_encode(z->cc, CZ_LEVEL, src, len, z->buf, MIG_FRAME_MAX_BYTES);
	z->ns_per_byte += CZ_EWMA * ((double)(now_ns() - t0) / len - z->ns_per_byte);
	z->ratio += CZ_EWMA * ((n ? (double)n / len : 1.0) - z->ratio);
	z->samples++;
	if (n == 0)
		goto raw;
	m->st.compress_bytes_after += n;
	*zlen = (uint32_t)n;
	return z->buf;
raw:
	m->st.compress_bytes_after += len;
	return NULL;
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
	ZSTD_freeCCtx(z->cc);
	ZSTD_freeDCtx(z->dc);
	free(z->buf);
	free(z);
	m->cz = NULL;
}
