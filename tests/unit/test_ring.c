/*
 * test_ring: the fault ring's layout checks and the daemon's validation of
 * untrusted slots (offsets past RAM, unaligned, zero or huge sizes, unknown
 * kinds, wrap-around), plus the slot state machine's atomics.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "unit.h"

#define RAM (64ull << 20)

static int
check(uint32_t kind, uint64_t off, uint64_t size)
{
	struct ring_slot s = { .kind = kind, .offset = off, .size = size }, copy;

	return ring_validate(&s, RAM, 4096, 1, &copy);
}

int
main(void)
{
	uint8_t *ring = aligned_alloc(64, ring_bytes(8));
	struct ring_hdr *h = (struct ring_hdr *)ring;
	struct ring_slot *s;

	ring_init(ring, 8, 2, 4096);
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), 0);
	CHECK_EQ(ring_check_header(ring, ring_bytes(8) - 1, 4096), -EINVAL);
	CHECK_EQ(ring_check_header(ring, 10, 4096), -EINVAL);
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 2097152), -EINVAL);
	h->version = 2;
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), -EPROTO);
	h->version = RING_VERSION;
	h->magic ^= 1;
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), -EPROTO);
	h->magic ^= 1;
	h->nslots = RING_MAX_SLOTS + 1;
	CHECK_EQ(ring_check_header(ring, ring_bytes(RING_MAX_SLOTS + 1), 4096), -EINVAL);
	h->nslots = 8;
	h->nvcpu_slots = 9;
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), -EINVAL);
	h->nvcpu_slots = 2;

	CHECK_EQ(check(RING_KIND_VCPU, 0, 4096), 0);
	CHECK_EQ(check(RING_KIND_SIGBUS, RAM - 4096, 4096), 0);
	CHECK_EQ(check(RING_KIND_VCPU, RAM, 4096), -ERANGE);
	CHECK_EQ(check(RING_KIND_VCPU, RAM + (1ull << 40), 4096), -ERANGE);
	CHECK_EQ(check(RING_KIND_VCPU, UINT64_MAX & ~4095ull, 4096), -ERANGE);
	CHECK_EQ(check(RING_KIND_VCPU, 4096 + 8, 4096), -EINVAL);
	CHECK_EQ(check(RING_KIND_VCPU, 0, 0), -EINVAL);
	CHECK_EQ(check(RING_KIND_VCPU, 0, 8192), -EINVAL);	/* more than max_pages */
	CHECK_EQ(check(RING_KIND_VCPU, 0, UINT64_MAX), -EINVAL);
	CHECK_EQ(check(0, 0, 4096), -EINVAL);
	CHECK_EQ(check(77, 0, 4096), -EINVAL);

	s = ring_slot(ring, 3);
	CHECK((uint8_t *)s == ring + 64 + 3 * 64);
	CHECK_EQ(ring_load(s), RING_FREE);
	CHECK(ring_cas(s, RING_FREE, RING_CLAIMED));
	CHECK(!ring_cas(s, RING_FREE, RING_CLAIMED));	/* a second claimer loses */
	ring_store(s, RING_POSTED);
	CHECK(ring_cas(s, RING_POSTED, RING_TAKEN));
	CHECK(!ring_cas(s, RING_POSTED, RING_TAKEN));	/* taken once */
	/* A futex wait on a value that changed returns at once. */
	CHECK_EQ(ring_futex_wait(s, RING_POSTED, 1000000), -EAGAIN);

	/* Spin only where the daemon can run elsewhere meanwhile. */
	{
		cpu_set_t one;
		int cpu;

		CPU_ZERO(&one);
		CPU_SET(0, &one);
		CHECK_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
		cpu = sched_getcpu();
		CHECK_EQ(cpu, 0);
		CHECK_EQ(ring_may_spin(ring), 1);		/* mask unknown */
		ring_set_daemon_cpus(ring, 1ull << 0);
		CHECK_EQ(ring_may_spin(ring), 0);		/* only our CPU */
		ring_set_daemon_cpus(ring, (1ull << 0) | (1ull << 1));
		CHECK_EQ(ring_may_spin(ring), 1);		/* another CPU too */
		ring_set_daemon_cpus(ring, 1ull << 1);
		CHECK_EQ(ring_may_spin(ring), 1);		/* elsewhere only */
		CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), 0);
	}

	/* Doorbell collection: without the daemon's feature bit every post
	 * rings; with it, only the first post after each collect. */
	CHECK_EQ(ring_post_rings(ring), 1);
	CHECK_EQ(ring_post_rings(ring), 1);
	ring_set_collect(ring);		/* also clears what was counted */
	CHECK_EQ(ring_post_rings(ring), 1);
	CHECK_EQ(ring_post_rings(ring), 0);
	CHECK_EQ(ring_post_rings(ring), 0);
	CHECK_EQ(ring_collect(ring), 3u);
	CHECK_EQ(ring_post_rings(ring), 1);
	CHECK_EQ(ring_collect(ring), 1u);
	CHECK_EQ(ring_collect(ring), 0u);
	/* Before a new attach the shim forgets the last daemon: an older
	 * one that never collects still gets every doorbell. */
	CHECK_EQ(ring_post_rings(ring), 1);
	ring_forget_daemon(ring);
	CHECK_EQ(ring_may_spin(ring), 1);		/* mask unknown again */
	CHECK_EQ(ring_post_rings(ring), 1);
	CHECK_EQ(ring_post_rings(ring), 1);
	CHECK_EQ(ring_check_header(ring, ring_bytes(8), 4096), 0);
	free(ring);
	return unit_done("test_ring");
}
