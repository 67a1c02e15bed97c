/*
 * fuzz_frame: libFuzzer target for what a peer can send: a byte stream cut
 * into frames by frame_decode(), MSG payloads decoded as PeerMsg. Aborts if
 * a header the decoder accepted breaks the invariants the receiver relies
 * on (range inside the VM, exact payload length for the encoding), and
 * runs compressed page runs through framez_decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"
#include "frame.h"
#include "framez.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

/* A compressed run: framez_decode either fills exactly count pages or
 * refuses; it never writes past them. */
static void
zstd_pages(const struct frame_hdr *h, const uint8_t *payload, const struct frame_limits *lim)
{
	static ZSTD_DCtx *dctx;
	static uint8_t out[16 * 4096 + 64];
	int rc;

	if (dctx == NULL && (dctx = ZSTD_createDCtx()) == NULL)
		abort();
	memset(out + (size_t)h->count * lim->page_size, 0xa5, 64);
	rc = framez_decode(dctx, h, payload, lim->page_size, out, sizeof(out) - 64);
	if (rc != FRAME_OK && rc != FRAME_E_ZSIZE && rc != FRAME_E_ZDATA && rc != FRAME_E_LEN)
		abort();
	for (int i = 0; i < 64; i++)
		if (out[(size_t)h->count * lim->page_size + i] != 0xa5)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const struct frame_limits lim = {
		.page_size = 4096, .npages = 4096, .max_msg = 1 << 16, .max_count = 16,
	};
	struct frame_hdr h;
	const char *why;

	while (n > 0) {
		int rc = frame_decode(d, n, &lim, &h);

		if (rc <= 0)
			break;
		if (h.type == FRAME_REQ || h.type == FRAME_PAGES) {
			if (h.count == 0 || h.count > lim.max_count ||
			    h.index + h.count > lim.npages || h.index + h.count < h.index)
				abort();
			if (h.type == FRAME_PAGES && h.enc == FRAME_ENC_RAW &&
			    h.len != h.count * lim.page_size)
				abort();
			if (h.type == FRAME_PAGES && h.enc == FRAME_ENC_ZSTD &&
			    (h.len == 0 || h.len > h.count * lim.page_size))
				abort();
			if (h.type == FRAME_PAGES && h.enc != FRAME_ENC_RAW &&
			    h.enc != FRAME_ENC_ZSTD && h.len != 0)
				abort();
		} else if (h.type != FRAME_MSG || h.len == 0 || h.len > lim.max_msg) {
			abort();
		}
		if (n - FRAME_HDR_LEN < h.len)
			break;
		if (h.type == FRAME_PAGES && h.enc == FRAME_ENC_ZSTD)
			zstd_pages(&h, d + FRAME_HDR_LEN, &lim);
		if (h.type == FRAME_MSG) {
			Migrationd__Peer__V1__PeerMsg *m =
			    ctlmsg_decode_peer(d + FRAME_HDR_LEN, h.len, &why);

			if (m != NULL) {
				if (m->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG__NOT_SET)
					abort();
				migrationd__peer__v1__peer_msg__free_unpacked(m, NULL);
			}
		}
		d += FRAME_HDR_LEN + h.len;
		n -= FRAME_HDR_LEN + h.len;
	}
	return 0;
}
