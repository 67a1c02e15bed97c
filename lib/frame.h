/*
 * frame: the host-to-host page-frame codec. Every byte on a peer connection
 * belongs to a frame: a fixed 24-byte little-endian header and `len` bytes of
 * payload.
 *
 *   off size field
 *     0  2   magic 0x4d47 ("MG")
 *     2  1   type   FRAME_MSG | FRAME_REQ | FRAME_PAGES
 *     3  1   enc    PAGES: FRAME_ENC_RAW | _ZERO | _POISON | _ZSTD; otherwise 0
 *     4  4   len    payload bytes (MSG: protobuf PeerMsg; PAGES raw: count*page;
 *                   PAGES zstd: the compressed size, 1..count*page)
 *     8  8   index  first page index (REQ, PAGES); 0 for MSG
 *    16  4   count  pages (REQ, PAGES); 0 for MSG
 *    20  4   reserved, 0
 *
 * Pages travel as raw payload; zero and poisoned pages as a header alone; a
 * run of background pages, where the destination said it can decompress,
 * may travel as FRAME_ENC_ZSTD: one zstd frame that decompresses to exactly
 * count*page bytes (framez.h decodes it). Pure code with no daemon dependencies (unit-tested alone).
 */
#ifndef MIG_FRAME_H
#define MIG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC	0x4d47
#define FRAME_HDR_LEN	24

enum frame_type {
	FRAME_MSG = 1,		/* control message (PeerMsg) */
	FRAME_REQ = 2,		/* destination asks for pages */
	FRAME_PAGES = 3,	/* page contents */
};

enum frame_enc {
	FRAME_ENC_RAW = 0,
	FRAME_ENC_ZERO = 1,
	FRAME_ENC_POISON = 2,
	FRAME_ENC_ZSTD = 3,	/* one zstd frame of count*page bytes (framez.h) */
};

struct frame_hdr {
	uint8_t		type;
	uint8_t		enc;
	uint32_t	len;
	uint64_t	index;
	uint32_t	count;
};

/* What the receiver accepts; checked before any payload is touched. */
struct frame_limits {
	uint32_t	page_size;
	uint64_t	npages;		/* pages in the VM */
	uint32_t	max_msg;	/* largest MSG payload */
	uint32_t	max_count;	/* most pages in one REQ/PAGES frame */
};

enum frame_err {
	FRAME_OK = 0,
	FRAME_E_MAGIC = -1,
	FRAME_E_TYPE = -2,
	FRAME_E_ENC = -3,
	FRAME_E_LEN = -4,
	FRAME_E_RANGE = -5,
	FRAME_E_COUNT = -6,
	FRAME_E_RESERVED = -7,
	FRAME_E_ZSIZE = -8,	/* zstd: content size is not count*page */
	FRAME_E_ZDATA = -9,	/* zstd: corrupt or not exactly one frame */
};

void frame_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN]);

/*
 * Decodes and validates the header at buf. Returns 1 when a valid header was
 * read into *h, 0 when fewer than FRAME_HDR_LEN bytes are available, or a
 * negative enum frame_err.
 */
int frame_decode(const uint8_t *buf, size_t avail, const struct frame_limits *lim,
    struct frame_hdr *h);

const char *frame_strerror(int err);

#endif
