/*
 * ring: the shared-memory fault ring between libmigshim (the VMM) and
 * migrationd. One memfd, mapped by both: a 64-byte header, then one 64-byte
 * slot per vCPU followed by slots for other VMM threads (SIGBUS path). A
 * faulting thread fills its slot, publishes it (state POSTED, release), rings
 * the doorbell (an eventfd) and waits on the slot's state word (spin, then
 * futex). The daemon takes the slot (TAKEN), and when the page is in, sets
 * DONE or ERROR and wakes the futex. Layout, version 1 (little-endian, host
 * order):
 *
 *   header  off 0 magic "MIGR" | 4 version | 8 nslots | 12 nvcpu_slots
 *           16 page_size | 20 slot_size (64) | 24 daemon_cpus (written by
 *           the daemon: CPUs 0-63 it may run on, as a bit mask; 0 unknown)
 *           | 32 pending (posts the daemon has not collected yet) | 36
 *           daemon_features (written by the daemon at attach) | 40..63
 *           reserved (0)
 *   slot i  at 64 + 64*i:
 *           0 state (futex word) | 4 kind | 8 offset into guest RAM
 *           16 size | 24 gpa (informational) | 32 post_ns | 40 error (-errno)
 *           44 tid | 48 seq | 52..63 reserved
 *
 * Everything the daemon reads from a slot is untrusted: ring_validate()
 * checks it against the VM before any use. Pure code, no daemon state.
 */
#ifndef MIG_RING_H
#define MIG_RING_H

#include <stdint.h>

#define RING_MAGIC	0x5247494du	/* "MIGR" */
#define RING_VERSION	1u
#define RING_SLOT_SIZE	64u
#define RING_MAX_SLOTS	64u		/* fits a 64-bit waiter mask */

enum ring_state {
	RING_FREE = 0,
	RING_CLAIMED = 1,	/* a thread is filling it (SIGBUS slots) */
	RING_POSTED = 2,	/* ready for the daemon */
	RING_TAKEN = 3,		/* the daemon is fetching the page */
	RING_DONE = 4,		/* page present: retry the access */
	RING_ERROR = 5,		/* `error` says why; the access would fail */
};

enum ring_kind {
	RING_KIND_VCPU = 1,	/* annotated KVM exit */
	RING_KIND_SIGBUS = 2,	/* VMM thread touched missing memory */
};

struct ring_hdr {
	uint32_t	magic;
	uint32_t	version;
	uint32_t	nslots;
	uint32_t	nvcpu_slots;
	uint32_t	page_size;
	uint32_t	slot_size;
	uint64_t	daemon_cpus;	/* accessed atomically */
	uint32_t	pending;	/* accessed atomically */
	uint32_t	daemon_features; /* RING_F_*; accessed atomically */
	uint8_t		reserved[24];
};

/*
 * The daemon collects `pending` (ring_collect) before each scan of the
 * slots, so a poster rings the doorbell only when it moves `pending` from
 * 0: one eventfd write per scan instead of one per fault when faults come
 * in bursts. A daemon without the feature leaves the bit clear, and then
 * every post rings; the shim clears the bit before each attach, so a VMM
 * that outlives a newer daemon works with an older one too.
 */
#define RING_F_COLLECT	1u

struct ring_slot {
	uint32_t	state;		/* enum ring_state; accessed atomically */
	uint32_t	kind;
	uint64_t	offset;
	uint64_t	size;
	uint64_t	gpa;
	uint64_t	post_ns;
	int32_t		error;
	uint32_t	tid;
	uint32_t	seq;
	uint8_t		reserved[12];
};

_Static_assert(sizeof(struct ring_hdr) == 64, "ring header is 64 bytes");
_Static_assert(sizeof(struct ring_slot) == RING_SLOT_SIZE, "slot is one cache line");

static inline uint64_t
ring_bytes(uint32_t nslots)
{
	return sizeof(struct ring_hdr) + (uint64_t)nslots * RING_SLOT_SIZE;
}

static inline struct ring_slot *
ring_slot(void *ring, uint32_t i)
{
	return (struct ring_slot *)((char *)ring + sizeof(struct ring_hdr)) + i;
}

/* Fills a new ring's header; slots start FREE (zeroed memory). */
void ring_init(void *ring, uint32_t nslots, uint32_t nvcpu_slots, uint32_t page_size);

/*
 * Checks a ring header received from a VMM against what the daemon expects
 * (`len` = mapped size). Returns 0 or a negative errno (-EPROTO bad
 * magic/version, -EINVAL bad sizes).
 */
int ring_check_header(const void *ring, uint64_t len, uint32_t page_size);

/*
 * Validates a posted entry against a VM of `ram_bytes`: kind known, offset
 * page-aligned and inside RAM, size in [1, max_pages pages] and not past the
 * end. Returns 0 or -EINVAL / -ERANGE. Reads the slot once into *copy so the
 * VMM cannot change it after the check.
 */
int ring_validate(const struct ring_slot *s, uint64_t ram_bytes, uint32_t page_size,
    uint32_t max_pages, struct ring_slot *copy);

/*
 * Whether a waiter may spin on its slot before it sleeps. Spinning saves the
 * sleep and wake-up (tens of microseconds on virtualised hosts) when the
 * daemon runs on another CPU meanwhile. Where the daemon may run only on
 * the waiter's own CPU, a spin only keeps the daemon from bringing the page
 * (measured: 8 faulting threads at 2.7x the p50 of not spinning), and
 * spinning with sched_yield() is worse: the EEVDF scheduler pushes the
 * yielder's deadline out at every call, and its wake-up then waits
 * milliseconds behind a busy daemon. 1 if the daemon's CPU mask is unknown
 * or has a CPU other than the caller's, else 0. The daemon publishes its
 * mask with ring_set_daemon_cpus().
 */
int ring_may_spin(const void *ring);
void ring_set_daemon_cpus(void *ring, uint64_t mask);

/*
 * Poster side, after the slot is POSTED: 1 if this post must ring the
 * doorbell (the daemon lacks RING_F_COLLECT, or `pending` was 0).
 */
int ring_post_rings(void *ring);
/* Daemon side: at attach, clears `pending` and sets RING_F_COLLECT; before
 * each scan of the slots, ring_collect() takes `pending` back to 0. */
void ring_set_collect(void *ring);
uint32_t ring_collect(void *ring);
/* VMM side, before each attach: clears what a daemon wrote in the header
 * (CPU mask, features, pending), so that only the daemon now attaching
 * decides them. */
void ring_forget_daemon(void *ring);

/* Atomically moves slot state `from` -> `to`; 1 if it did. */
int ring_cas(struct ring_slot *s, uint32_t from, uint32_t to);
uint32_t ring_load(const struct ring_slot *s);
void ring_store(struct ring_slot *s, uint32_t v);

/* futex wait while state == `val` (bounded by `timeout_ns`, 0 = none) and wake. */
int ring_futex_wait(struct ring_slot *s, uint32_t val, uint64_t timeout_ns);
void ring_futex_wake(struct ring_slot *s);

#endif
