/*
 * fuzz_frame: libFuzzer target for what a peer can send: a byte stream cut
 * into frames by frame_decode(), MSG payloads decoded as PeerMsg. Aborts if
 * a header the decoder accepted breaks the invariants the receiver relies
 * on (range inside the VM, exact payload length for the encoding).
 */
#include <stdint.h>
#include <stdlib.h>

#include "ctlmsg.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

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
			if (h.type == FRAME_PAGES && h.enc != FRAME_ENC_RAW && h.len != 0)
				abort();
		} else if (h.type != FRAME_MSG || h.len == 0 || h.len > lim.max_msg) {
			abort();
		}
		if (n - FRAME_HDR_LEN < h.len)
			break;
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
