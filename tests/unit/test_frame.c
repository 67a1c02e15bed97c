/*
 * test_frame: the page-frame codec, including every malformed header a
 * hostile peer could send (truncated, bad magic/type/encoding, lengths that
 * do not match, page ranges past the VM or wrapping around).
 */
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "unit.h"

static const struct frame_limits lim = {
	.page_size = 4096, .npages = 1000, .max_msg = 1 << 20, .max_count = 16,
};

static int
roundtrip(const struct frame_hdr *in, struct frame_hdr *out)
{
	uint8_t b[FRAME_HDR_LEN];

	frame_encode(in, b);
	return frame_decode(b, sizeof(b), &lim, out);
}

static int
decode_with(struct frame_hdr h, void (*mutate)(uint8_t *))
{
	uint8_t b[FRAME_HDR_LEN];
	struct frame_hdr out;

	frame_encode(&h, b);
	if (mutate)
		mutate(b);
	return frame_decode(b, sizeof(b), &lim, &out);
}

static void bad_magic(uint8_t *b) { b[0] ^= 0xff; }
static void reserved(uint8_t *b) { b[23] = 1; }

int
main(void)
{
	struct frame_hdr h = { .type = FRAME_PAGES, .enc = FRAME_ENC_RAW, .len = 2 * 4096,
	    .index = 998, .count = 2 }, o;
	uint8_t b[FRAME_HDR_LEN];

	/* Valid frames survive the round trip field by field. */
	CHECK_EQ(roundtrip(&h, &o), 1);
	CHECK_EQ(o.type, FRAME_PAGES);
	CHECK_EQ(o.enc, FRAME_ENC_RAW);
	CHECK_EQ(o.len, 8192);
	CHECK_EQ(o.index, 998);
	CHECK_EQ(o.count, 2);
	CHECK_EQ(roundtrip(&(struct frame_hdr){ .type = FRAME_MSG, .len = 10 }, &o), 1);
	CHECK_EQ(roundtrip(&(struct frame_hdr){ .type = FRAME_REQ, .index = 5, .count = 1 }, &o), 1);
	CHECK_EQ(roundtrip(&(struct frame_hdr){ .type = FRAME_PAGES, .enc = FRAME_ENC_ZERO,
	    .index = 0, .count = 16 }, &o), 1);
	CHECK_EQ(roundtrip(&(struct frame_hdr){ .type = FRAME_PAGES, .enc = FRAME_ENC_POISON,
	    .index = 999, .count = 1 }, &o), 1);
	/* Little-endian on the wire whatever the host. */
	frame_encode(&h, b);
	CHECK_EQ(b[0], 0x47);
	CHECK_EQ(b[1], 0x4d);
	CHECK_EQ(b[8], 998 & 0xff);
	CHECK_EQ(b[9], 998 >> 8);

	/* Truncated: need more bytes, never an error or a read past the end. */
	for (size_t n = 0; n < FRAME_HDR_LEN; n++)
		CHECK_EQ(frame_decode(b, n, &lim, &o), 0);

	CHECK_EQ(decode_with(h, bad_magic), FRAME_E_MAGIC);
	CHECK_EQ(decode_with(h, reserved), FRAME_E_RESERVED);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = 9, .count = 1 }, NULL), FRAME_E_TYPE);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = 0 }, NULL), FRAME_E_TYPE);
	/* MSG: empty, oversized, with page fields, with an encoding. */
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_MSG, .len = 0 }, NULL), FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_MSG, .len = (1 << 20) + 1 }, NULL),
	    FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_MSG, .len = 4, .count = 1 }, NULL),
	    FRAME_E_RESERVED);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_MSG, .len = 4, .enc = 1 }, NULL),
	    FRAME_E_ENC);
	/* REQ: count 0, too many, payload, out of range, wrap-around. */
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 0 }, NULL), FRAME_E_COUNT);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 17 }, NULL), FRAME_E_COUNT);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 1, .len = 1 }, NULL),
	    FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 1, .index = 1000 }, NULL),
	    FRAME_E_RANGE);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 2, .index = 999 }, NULL),
	    FRAME_E_RANGE);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_REQ, .count = 16,
	    .index = UINT64_MAX - 3 }, NULL), FRAME_E_RANGE);
	/* PAGES: raw length must be exact; zero/poison carry no payload. */
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_PAGES, .count = 2, .len = 4096 }, NULL),
	    FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_PAGES, .count = 1, .len = 4097 }, NULL),
	    FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_PAGES, .enc = FRAME_ENC_ZERO,
	    .count = 1, .len = 4096 }, NULL), FRAME_E_LEN);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_PAGES, .enc = 7, .count = 1 }, NULL),
	    FRAME_E_ENC);
	CHECK_EQ(decode_with((struct frame_hdr){ .type = FRAME_PAGES, .count = 1, .len = 4096,
	    .index = 1000 }, NULL), FRAME_E_RANGE);
	/* Before a migration is known (npages 0) no page frame is acceptable. */
	{
		struct frame_limits hello = { .page_size = 4096, .max_msg = 4096 };

		frame_encode(&(struct frame_hdr){ .type = FRAME_REQ, .count = 1 }, b);
		CHECK(frame_decode(b, sizeof(b), &hello, &o) < 0);
	}
	for (int e = 0; e >= -9; e--)
		CHECK(strcmp(frame_strerror(e), "unknown frame error") != 0);
	return unit_done("test_frame");
}
