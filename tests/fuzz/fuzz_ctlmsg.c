/*
 * fuzz_ctlmsg: libFuzzer target for the control API's message layer
 * (lib/grpcmsg.c): a stream of gRPC length-prefixed messages as h2.c
 * gathers them from a request body, each decoded as the request of the
 * method the first byte picks (as the daemon does) and as every response
 * (as libmigctl does); plus grpc-status parsing and grpc-message decoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpcmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const struct grpc_method *gm;
	uint32_t plen;
	const char *why;
	char out[128];
	int sel;

	if (n < 1)
		return 0;
	sel = d[0] % GM_COUNT;
	d++;
	n--;
	if (grpcmsg_pct_decode((const char *)d, n < 256 ? n : 256, out, sizeof(out)) >=
	    sizeof(out))
		abort();
	(void)grpcmsg_parse_code((const char *)d, n < 3 ? n : 3);
	while (grpcmsg_peek(d, n, 1 << 16, &plen) == 1) {
		ProtobufCMessage *m;

		if (plen > n - GRPC_PREFIX)
			abort();
		gm = grpcmsg_method_by_id((enum grpc_method_id)sel);
		if ((m = grpcmsg_decode(gm->req, d + GRPC_PREFIX, plen, &why)) != NULL) {
			/* What decodes must re-encode within the limit. */
			if (protobuf_c_message_get_packed_size(m) > (size_t)plen + 64u * 1024)
				abort();
			protobuf_c_message_free_unpacked(m, NULL);
		}
		for (int i = 0; i < GM_COUNT; i++) {
			gm = grpcmsg_method_by_id((enum grpc_method_id)i);
			if ((m = grpcmsg_decode(gm->resp, d + GRPC_PREFIX, plen, &why)) != NULL)
				protobuf_c_message_free_unpacked(m, NULL);
		}
		d += GRPC_PREFIX + plen;
		n -= GRPC_PREFIX + plen;
	}
	return 0;
}
