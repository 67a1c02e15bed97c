/*
 * fuzz_ring: libFuzzer target for the fault ring as a hostile VMM can fill
 * it: a header and slots of arbitrary bytes. Aborts if the daemon's checks
 * accept an entry outside guest RAM or not page-aligned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static uint8_t ring[64 + RING_MAX_SLOTS * RING_SLOT_SIZE] __attribute__((aligned(64)));
	const uint64_t ram = 64ull << 20;
	size_t len = n < sizeof(ring) ? n : sizeof(ring);
	const struct ring_hdr *h = (const struct ring_hdr *)ring;

	memset(ring, 0, sizeof(ring));
	memcpy(ring, d, len);
	if (ring_check_header(ring, len, 4096) == 0) {
		if (h->nslots == 0 || h->nslots > RING_MAX_SLOTS || ring_bytes(h->nslots) > len)
			abort();
	}
	for (uint32_t i = 0; i < RING_MAX_SLOTS; i++) {
		struct ring_slot copy;

		if (ring_validate(ring_slot(ring, i), ram, 4096, 1, &copy) == 0) {
			if (copy.offset % 4096 || copy.size == 0 || copy.size > 4096 ||
			    copy.offset >= ram || copy.offset + copy.size > ram)
				abort();
		}
	}
	return 0;
}
