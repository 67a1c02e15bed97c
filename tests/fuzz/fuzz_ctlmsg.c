/*
 * fuzz_ctlmsg: libFuzzer target for the control socket: length-prefixed
 * CtlRequest frames, as the daemon reads them, and CtlResponse frames, as
 * libmigctl reads them.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ctlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint32_t plen;
	const char *why;

	while (ctlmsg_peek(d, n, 1 << 16, &plen) == 1) {
		Migrationd__V1__CtlRequest *q;
		Migrationd__V1__CtlResponse *r;

		if (plen == 0 || plen > n - CTLMSG_PREFIX)
			abort();
		q = ctlmsg_decode_request(d + CTLMSG_PREFIX, plen, &why);
		if (q != NULL) {
			if (q->method_case == MIGRATIOND__V1__CTL_REQUEST__METHOD__NOT_SET)
				abort();
			migrationd__v1__ctl_request__free_unpacked(q, NULL);
		}
		r = ctlmsg_decode_response(d + CTLMSG_PREFIX, plen, &why);
		if (r != NULL)
			migrationd__v1__ctl_response__free_unpacked(r, NULL);
		d += CTLMSG_PREFIX + plen;
		n -= CTLMSG_PREFIX + plen;
	}
	return 0;
}
