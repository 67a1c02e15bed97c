/*
 * frame: encode and validate page-frame headers (layout in frame.h). Every
 * check a receiver needs before trusting a payload happens here: magic, type,
 * encoding, exact length for the encoding, page range without overflow.
 */
#include <string.h>

#include "frame.h"

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void
frame_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN])
{
	put16(out, FRAME_MAGIC);
	out[2] = h->type;
	out[3] = h->enc;
	put32(out + 4, h->len);
	put64(out + 8, h->index);
	put32(out + 16, h->count);
	put32(out + 20, 0);
}

int
frame_decode(const uint8_t *buf, size_t avail, const struct frame_limits *lim,
    struct frame_hdr *h)
{
	if (avail < FRAME_HDR_LEN)
		return 0;
	if (get16(buf) != FRAME_MAGIC)
		return FRAME_E_MAGIC;
	if (get32(buf + 20) != 0)
		return FRAME_E_RESERVED;
	h->type = buf[2];
	h->enc = buf[3];
	h->len = get32(buf + 4);
	h->index = get64(buf + 8);
	h->count = get32(buf + 16);

	switch (h->type) {
	case FRAME_MSG:
		if (h->enc != 0)
			return FRAME_E_ENC;
		if (h->index != 0 || h->count != 0)
			return FRAME_E_RESERVED;
		if (h->len == 0 || h->len > lim->max_msg)
			return FRAME_E_LEN;
		return 1;
	case FRAME_REQ:
	case FRAME_PAGES:
		break;
	default:
		return FRAME_E_TYPE;
	}
	if (h->count == 0 || h->count > lim->max_count)
		return FRAME_E_COUNT;
	/* index + count may not wrap and must stay inside the VM. */
	if (h->index >= lim->npages || h->count > lim->npages - h->index)
		return FRAME_E_RANGE;
	if (h->type == FRAME_REQ)
		return h->enc != 0 ? FRAME_E_ENC : h->len != 0 ? FRAME_E_LEN : 1;
	switch (h->enc) {
	case FRAME_ENC_RAW:
		if ((uint64_t)h->len != (uint64_t)h->count * lim->page_size)
			return FRAME_E_LEN;
		return 1;
	case FRAME_ENC_ZERO:
	case FRAME_ENC_POISON:
		return h->len != 0 ? FRAME_E_LEN : 1;
	case FRAME_ENC_ZSTD:
		/* Never more than the pages raw: what would not shrink goes raw. */
		if (h->len == 0 || (uint64_t)h->len > (uint64_t)h->count * lim->page_size)
			return FRAME_E_LEN;
		return 1;
	default:
		return FRAME_E_ENC;
	}
}

const char *
frame_strerror(int err)
{
	switch (err) {
	case FRAME_OK:
		return "ok";
	case FRAME_E_MAGIC:
		return "bad frame magic";
	case FRAME_E_TYPE:
		return "unknown frame type";
	case FRAME_E_ENC:
		return "bad page encoding";
	case FRAME_E_LEN:
		return "payload length does not match the frame";
	case FRAME_E_RANGE:
		return "page index beyond the VM";
	case FRAME_E_COUNT:
		return "bad page count";
	case FRAME_E_RESERVED:
		return "reserved field set";
	case FRAME_E_ZSIZE:
		return "compressed frame's content size is not its pages' size";
	case FRAME_E_ZDATA:
		return "corrupt compressed frame";
	default:
		return "unknown frame error";
	}
}
