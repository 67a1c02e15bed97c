/*
 * framez: zstd page payloads (framez.h). The receiver trusts nothing: the
 * declared content size, the frame's extent and the decompressed size are
 * each checked against the frame header before a byte is used.
 */
#include "framez.h"

int
framez_decode(ZSTD_DCtx *d, const struct frame_hdr *h, const void *src,
    uint32_t page_size, void *dst, size_t cap)
{
	uint64_t want = (uint64_t)h->count * page_size;
	unsigned long long csz;
	size_t n;

	if (h->enc != FRAME_ENC_ZSTD || want > cap)
		return FRAME_E_LEN;
	csz = ZSTD_getFrameContentSize(src, h->len);
	if (csz == ZSTD_CONTENTSIZE_ERROR)
		return FRAME_E_ZDATA;
	if (csz != want)	/* also ZSTD_CONTENTSIZE_UNKNOWN */
		return FRAME_E_ZSIZE;
	/* Exactly one frame, nothing after it. */
	n = ZSTD_findFrameCompressedSize(src, h->len);
	if (ZSTD_isError(n) || n != h->len)
		return FRAME_E_ZDATA;
	n = ZSTD_decompressDCtx(d, dst, (size_t)want, src, h->len);
	if (ZSTD_isError(n))
		return FRAME_E_ZDATA;
	return n == want ? FRAME_OK : FRAME_E_ZSIZE;
}

size_t
framez_encode(ZSTD_CCtx *c, int level, const void *src, size_t len, void *dst,
    size_t cap)
{
	size_t n;

	/* A run that did not fit (incompressible) leaves the context inside
	 * its frame, where it takes no parameter: every later run would go
	 * raw. Each run starts a session of its own. */
	if (ZSTD_isError(ZSTD_CCtx_reset(c, ZSTD_reset_session_only)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)))
		return 0;
	n = ZSTD_compress2(c, dst, cap < len ? cap : len, src, len);
	if (ZSTD_isError(n) || n >= len)
		return 0;
	return n;
}
