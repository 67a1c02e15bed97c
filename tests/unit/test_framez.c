/*
 * test_framez: FRAME_ENC_ZSTD frames (frame.h, framez.h): headers a hostile
 * peer could send (empty, longer than the pages raw) and payloads (corrupt,
 * a content size other than count*page, none declared, trailing bytes,
 * two frames), each refused; a good one round-trips byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framez.h"
#include "unit.h"

#define PG 4096

static const struct frame_limits lim = {
	.page_size = PG, .npages = 1000, .max_msg = 1 << 20, .max_count = 16,
};

static int
hdr(uint32_t count, uint32_t len)
{
	uint8_t b[FRAME_HDR_LEN];
	struct frame_hdr o;

	frame_encode(&(struct frame_hdr){ .type = FRAME_PAGES, .enc = FRAME_ENC_ZSTD,
	    .index = 0, .count = count, .len = len }, b);
	return frame_decode(b, sizeof(b), &lim, &o);
}

static int
dec(ZSTD_DCtx *d, uint32_t count, const uint8_t *z, size_t zl, uint8_t *out, size_t cap)
{
	struct frame_hdr h = { .type = FRAME_PAGES, .enc = FRAME_ENC_ZSTD, .count = count,
	    .len = (uint32_t)zl };

	return framez_decode(d, &h, z, PG, out, cap);
}

int
main(void)
{
	static uint8_t raw[4 * PG], out[16 * PG], z[8 * PG], z2[16 * PG];
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t zl, n;

	/* Pages of text-like content, one of random bytes. */
	for (size_t i = 0; i < 3 * PG; i++)
		raw[i] = (uint8_t)("the quick brown fox "[i % 20] + (i / PG));
	srand(1);
	for (size_t i = 3 * PG; i < sizeof(raw); i++)
		raw[i] = (uint8_t)rand();

	/* Headers: 1..count*page bytes. */
	CHECK_EQ(hdr(2, 1), 1);
	CHECK_EQ(hdr(2, 2 * PG), 1);
	CHECK_EQ(hdr(2, 0), FRAME_E_LEN);
	CHECK_EQ(hdr(2, 2 * PG + 1), FRAME_E_LEN);
	CHECK_EQ(hdr(1, UINT32_MAX), FRAME_E_LEN);

	/* A good frame round-trips. */
	zl = framez_encode(c, 1, raw, sizeof(raw), z, sizeof(z));
	CHECK(zl > 0 && zl < sizeof(raw));
	CHECK_EQ(dec(d, 4, z, zl, out, sizeof(out)), FRAME_OK);
	CHECK(memcmp(out, raw, sizeof(raw)) == 0);
	/* The DCtx is reused frame after frame; negative (fast) levels too. */
	zl = framez_encode(c, -5, raw, sizeof(raw), z, sizeof(z));
	CHECK(zl > 0);
	memset(out, 0, sizeof(out));
	CHECK_EQ(dec(d, 4, z, zl, out, sizeof(out)), FRAME_OK);
	CHECK(memcmp(out, raw, sizeof(raw)) == 0);
	/* Random bytes do not shrink: 0, they go raw. */
	CHECK_EQ(framez_encode(c, 1, raw + 3 * PG, PG, z2, sizeof(z2)), 0);
	/* ... and the context still compresses the next run (it did not:
	 * mixed guest RAM went all raw after its first random page). */
	n = framez_encode(c, 1, raw, 2 * PG, z2, sizeof(z2));
	CHECK(n > 0 && n < 2 * PG);
	CHECK_EQ(dec(d, 2, z2, n, out, sizeof(out)), FRAME_OK);
	CHECK(memcmp(out, raw, 2 * PG) == 0);

	/* Content size other than count*page: more pages, fewer pages. */
	CHECK_EQ(dec(d, 5, z, zl, out, sizeof(out)), FRAME_E_ZSIZE);
	CHECK_EQ(dec(d, 3, z, zl, out, sizeof(out)), FRAME_E_ZSIZE);
	/* A buffer too small for count pages: refused before decoding. */
	CHECK_EQ(dec(d, 4, z, zl, out, 3 * PG), FRAME_E_LEN);
	/* Trailing bytes after the frame. */
	memcpy(z2, z, zl);
	z2[zl] = 0;
	CHECK_EQ(dec(d, 4, z2, zl + 1, out, sizeof(out)), FRAME_E_ZDATA);
	/* Truncated. */
	CHECK(dec(d, 4, z, zl - 1, out, sizeof(out)) < 0);
	/* Not zstd at all. */
	CHECK_EQ(dec(d, 4, raw, 64, out, sizeof(out)), FRAME_E_ZDATA);
	/* Corrupt body (header intact): a decode error, never success. */
	memcpy(z2, z, zl);
	for (size_t i = 12; i < zl; i += 7)
		z2[i] ^= 0xa5;
	CHECK(dec(d, 4, z2, zl, out, sizeof(out)) < 0);
	/* No content size declared (streaming frame). */
	{
		ZSTD_outBuffer ob = { z2, sizeof(z2), 0 };
		ZSTD_inBuffer ib = { raw, sizeof(raw), 0 };

		ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
		n = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
		CHECK_EQ(n, 0);
		CHECK_EQ(dec(d, 4, z2, ob.pos, out, sizeof(out)), FRAME_E_ZSIZE);
	}
	/* Two frames of two pages each, claiming four pages. */
	{
		size_t a = framez_encode(c, 1, raw, 2 * PG, z2, sizeof(z2));
		size_t b = framez_encode(c, 1, raw + 2 * PG, 2 * PG, z2 + a, sizeof(z2) - a);

		CHECK(a > 0 && b > 0);
		CHECK(dec(d, 4, z2, a + b, out, sizeof(out)) < 0);
	}
	CHECK(strcmp(frame_strerror(FRAME_E_ZSIZE), "unknown frame error") != 0);
	CHECK(strcmp(frame_strerror(FRAME_E_ZDATA), "unknown frame error") != 0);
	ZSTD_freeCCtx(c);
	ZSTD_freeDCtx(d);
	return unit_done("test_framez");
}
