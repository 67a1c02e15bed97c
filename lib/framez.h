/*
 * framez: the FRAME_ENC_ZSTD payload of a PAGES frame (frame.h): one zstd
 * frame that decompresses to exactly count*page_size bytes. Kept apart from
 * frame.c so that what links migcommon alone (the VMM shim) needs no zstd.
 * Pure code, unit-tested alone (tests/unit/test_frame.c).
 */
#ifndef MIG_FRAMEZ_H
#define MIG_FRAMEZ_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "frame.h"

/*
 * Decodes the payload `src` (h->len bytes) of the ZSTD frame `h`, already
 * checked by frame_decode, into dst (cap bytes, at least count*page_size):
 * the frame must declare a content size of exactly count*page_size, be
 * exactly one zstd frame and decompress without error to that size.
 * FRAME_OK, or FRAME_E_ZSIZE / FRAME_E_ZDATA / FRAME_E_LEN (dst too small);
 * dst's contents are then undefined and must not be used.
 */
int framez_decode(ZSTD_DCtx *d, const struct frame_hdr *h, const void *src,
    uint32_t page_size, void *dst, size_t cap);

/*
 * Compresses len bytes at src into dst (cap bytes) at `level`. The
 * compressed size, or 0 when it would not be smaller than len (or failed):
 * the pages travel raw then.
 */
size_t framez_encode(ZSTD_CCtx *c, int level, const void *src, size_t len, void *dst,
    size_t cap);

#endif
