/*
 * ring: header set-up, validation of untrusted slots, and the atomic and
 * futex primitives both sides use on the shared state word. The futexes are
 * process-shared (no FUTEX_PRIVATE_FLAG): waiter and waker live in
 * different processes mapping the same memfd. Every function here is
 * async-signal-safe (the shim's SIGBUS handler uses them).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

void
ring_init(void *ring, uint32_t nslots, uint32_t nvcpu_slots, uint32_t page_size)
{
	struct ring_hdr *h = ring;

	memset(ring, 0, ring_bytes(nslots));
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->nslots = nslots;
	h->nvcpu_slots = nvcpu_slots;
	h->page_size = page_size;
	h->slot_size = RING_SLOT_SIZE;
}

int
ring_may_spin(const void *ring)
{
	const struct ring_hdr *h = ring;
	uint64_t mask = __atomic_load_n(&h->daemon_cpus, __ATOMIC_RELAXED);
	int cpu;

	if (mask == 0)
		return 1;
	cpu = sched_getcpu();
	return cpu < 0 || cpu >= 64 || (mask & ~((uint64_t)1 << cpu)) != 0;
}

void
ring_set_daemon_cpus(void *ring, uint64_t mask)
{
	struct ring_hdr *h = ring;

	__atomic_store_n(&h->daemon_cpus, mask, __ATOMIC_RELAXED);
}

int
ring_post_rings(void *ring)
{
	struct ring_hdr *h = ring;

	if (!(__atomic_load_n(&h->daemon_features, __ATOMIC_ACQUIRE) & RING_F_COLLECT))
		return 1;
	/* After the slot's release store: a scan that takes this count back
	 * to 0 sees the slot POSTED. */
	return __atomic_fetch_add(&h->pending, 1, __ATOMIC_ACQ_REL) == 0;
}

void
ring_set_collect(void *ring)
{
	struct ring_hdr *h = ring;

	/* A daemon that died between its doorbell read and its collect left
	 * `pending` up: start from 0 (posted slots are scanned at start). */
	__atomic_store_n(&h->pending, 0, __ATOMIC_RELEASE);
	__atomic_fetch_or(&h->daemon_features, RING_F_COLLECT, __ATOMIC_ACQ_REL);
}

void
ring_forget_daemon(void *ring)
{
	struct ring_hdr *h = ring;

	__atomic_store_n(&h->daemon_features, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&h->pending, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&h->daemon_cpus, 0, __ATOMIC_RELEASE);
}

uint32_t
ring_collect(void *ring)
{
	struct ring_hdr *h = ring;

	return __atomic_exchange_n(&h->pending, 0, __ATOMIC_ACQ_REL);
}

int
ring_check_header(const void *ring, uint64_t len, uint32_t page_size)
{
	struct ring_hdr h;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, ring, sizeof(h));
	if (h.magic != RING_MAGIC || h.version != RING_VERSION)
		return -EPROTO;
	if (h.slot_size != RING_SLOT_SIZE || h.page_size != page_size ||
	    h.nslots == 0 || h.nslots > RING_MAX_SLOTS || h.nvcpu_slots > h.nslots ||
	    ring_bytes(h.nslots) > len)
		return -EINVAL;
	return 0;
}

int
ring_validate(const struct ring_slot *s, uint64_t ram_bytes, uint32_t page_size,
    uint32_t max_pages, struct ring_slot *copy)
{
	/* One snapshot: the VMM may scribble on the slot while we look. */
	memcpy(copy, s, sizeof(*copy));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (copy->kind != RING_KIND_VCPU && copy->kind != RING_KIND_SIGBUS)
		return -EINVAL;
	if (copy->offset % page_size != 0 || copy->size == 0 ||
	    copy->size > (uint64_t)max_pages * page_size)
		return -EINVAL;
	if (copy->offset >= ram_bytes || copy->size > ram_bytes - copy->offset)
		return -ERANGE;
	return 0;
}

int
ring_cas(struct ring_slot *s, uint32_t from, uint32_t to)
{
	return __atomic_compare_exchange_n(&s->state, &from, to, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE);
}

uint32_t
ring_load(const struct ring_slot *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

void
ring_store(struct ring_slot *s, uint32_t v)
{
	__atomic_store_n(&s->state, v, __ATOMIC_RELEASE);
}

int
ring_futex_wait(struct ring_slot *s, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000u),
	    (long)(timeout_ns % 1000000000u) };

	if (syscall(SYS_futex, &s->state, FUTEX_WAIT, val,
	    timeout_ns ? &ts : NULL, NULL, 0) < 0)
		return -errno;
	return 0;
}

void
ring_futex_wake(struct ring_slot *s)
{
	syscall(SYS_futex, &s->state, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}
