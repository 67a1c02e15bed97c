/*
 * compress.h: zstd for background and pre-copy page runs (compress.c). The
 * source compresses a raw run when the destination said it decodes zstd
 * (Welcome.decodes) and the migration's mode says so (auto: while it pays
 * off on the measured link, doc/design.md); the destination decodes it
 * into the buffer its install reads. Demand pages always travel raw. Loop
 * thread only (a source batch is compressed on worker threads too, and
 * cz_deflate returns when it is done); the state hangs off m->cz, freed by
 * cz_release.
 */
#ifndef MIG_COMPRESS_H
#define MIG_COMPRESS_H

#include <stdint.h>

#include "frame.h"
#include "migration.h"

/* What this daemon tells a source it decodes (Welcome.decodes). */
uint32_t cz_decodes(void);

/* Source: m's mode (enum compress_mode, policy.h; m->compression says it),
 * before any page is sent. */
void cz_start(struct migration *m, int mode);
/* Source: what the destination's Welcome said it decodes. */
void cz_peer(struct migration *m, uint32_t decodes);
/* Source: a raw run of background pages, compressed into dst (len bytes of
 * room); zlen: the compressed size, or 0: send it raw. */
struct cz_run {
	const uint8_t	*src;
	uint8_t		*dst;
	uint32_t	 len, zlen;
};
/*
 * Source: compresses the runs r[0..n) of one batch, on every compressing
 * thread at once (pool.h), if m compresses now; else every zlen is 0.
 * Counts them in m->st.
 */
void cz_deflate(struct migration *m, struct cz_run *r, unsigned n);
/* Source: frames a background batch may take so that every compressing
 * thread has work: the threads, while m compresses; else 1. */
unsigned cz_batch(struct migration *m);

/*
 * Destination: a PAGES frame *h with payload p. A ZSTD frame is decoded
 * into m's install buffer, *h then points at the same frame as RAW and the
 * decoded pages are returned; any other frame passes through. NULL with
 * *why if the payload is refused: nothing of it may be installed.
 */
const uint8_t *cz_inflate(struct migration *m, const struct frame_hdr **h,
    const uint8_t *p, const char **why);

void cz_release(struct migration *m);

#endif
