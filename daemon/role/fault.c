/*
 * fault: the destination's fault engine. Reads the VM's userfaultfd
 * (blocking mode: the faulting vCPU sleeps in the kernel) and its fault ring
 * (doorbell), asks the source for each missing page once however many
 * threads wait on it (with an adaptive prefetch window), keeps the pending
 * table of demand faults in flight, and delivers received pages: the
 * installer puts them in, then every waiter on them is timed and released.
 * The uffd and the doorbell are the VMM's: read without blocking whatever
 * flags it sets on them, served in bounded bites, and a callback that found
 * no new waiter waits for the loop's next turn, or a millisecond after a few
 * in a row (fault_served), so a VMM that keeps them ready gets its share of
 * the loop, not the loop. Loop thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bitmap.h"
#include "dest.h"
#include "fault.h"
#include "install.h"
#include "latency.h"
#include "log.h"
#include "peer.h"
#include "probes.h"
#include "ring.h"
#include "util.h"
#include "vm.h"

#define FAULT_MAX_PENDING 1024
#define FAULT_MAX_RETRIES 8	/* failed installs in a row before giving up */
#define FAULT_UFFD_READS 2	/* reads of up to 64 events per uffd callback */
#define FAULT_IDLE_MAX	4	/* idle callbacks in a row before a timed park */
#define FAULT_IDLE_PARK_US 1000

enum { FAULT_PARK_UFFD = 1, FAULT_PARK_DOORBELL = 2 };

static void fault_uffd_cb(evutil_socket_t fd, short what, void *arg);
static void fault_doorbell_cb(evutil_socket_t fd, short what, void *arg);
static void fault_slot_complete(struct vm *v, uint32_t i, int err);

/*
 * Slots of v's ring the daemon may look at. nslots was checked at attach,
 * but the VMM may have changed it since: never past RING_MAX_SLOTS or the
 * mapped length.
 */
static uint32_t
fault_ring_slots(const struct vm *v)
{
	const struct ring_hdr *rh = v->ring;
	uint32_t n = rh->nslots;	/* read once: the VMM may write it */
	uint64_t fit;

	if (v->ring_len < ring_bytes(0))
		return 0;
	fit = (v->ring_len - ring_bytes(0)) / RING_SLOT_SIZE;
	if (n > RING_MAX_SLOTS)
		n = RING_MAX_SLOTS;
	return n > fit ? (uint32_t)fit : n;
}

int
fault_init(struct migration *m)
{
	struct mig_dst *d = m->dst;

	d->requested = bitmap_new(m->npages);
	d->maxpending = FAULT_MAX_PENDING;
	d->pending = calloc(d->maxpending, sizeof(*d->pending));
	return d->requested == NULL || d->pending == NULL ? -1 : 0;
}

static struct event *
fault_event(struct migration *m, int fd, event_callback_fn cb)
{
	struct event *ev = event_new(D->base, fd, EV_READ | EV_PERSIST, cb, m);

	if (ev != NULL) {
		event_priority_set(ev, MIG_PRI_FAULT);
		event_add(ev, NULL);
	}
	return ev;
}

/*
 * Reads an fd the VMM shares with us without ever blocking: the file's
 * O_NONBLOCK is the VMM's to clear (it is one open file for both), so ask
 * for it per call (RWF_NOWAIT; eventfd and userfaultfd honour it).
 */
static ssize_t
fault_read(int fd, void *buf, size_t len)
{
	struct iovec iov = { buf, len };
	ssize_t n;

	do {
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	} while (n < 0 && errno == EINTR);
	return n;
}

/* The loop reached its lowest priority: parked events are served again. */
static void
fault_turn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mig_dst *d = ((struct migration *)arg)->dst;

	if ((d->parked & FAULT_PARK_UFFD) && d->ev_uffd != NULL)
		event_add(d->ev_uffd, NULL);
	if ((d->parked & FAULT_PARK_DOORBELL) && d->ev_doorbell != NULL)
		event_add(d->ev_doorbell, NULL);
	d->parked = 0;
}

/*
 * After each callback of the uffd or the doorbell. One that found a new
 * waiter (a thread faulting on a page that is not in) stays armed: real
 * faults are served at once. An idle one (nothing to read, pages already
 * in, refused or repeated entries, a full table) is parked until the loop
 * has reached its lowest priority once (ev_turn, at MIG_PRI_BULK), so
 * control and bulk work of every migration run between two of them; after
 * FAULT_IDLE_MAX idle callbacks in a row it is parked for
 * FAULT_IDLE_PARK_US. A VMM that keeps its fds ready or re-posts its slots
 * as fast as they are answered gets a few callbacks per millisecond, not
 * the loop.
 */
static void
fault_served(struct migration *m, int which, unsigned waiters)
{
	static const struct timeval idle = { 0, FAULT_IDLE_PARK_US };
	struct mig_dst *d = m->dst;

	if (waiters > 0) {
		d->idle = 0;
		return;
	}
	event_del(which == FAULT_PARK_UFFD ? d->ev_uffd : d->ev_doorbell);
	d->parked |= which;
	if (++d->idle < FAULT_IDLE_MAX)
		event_active(d->ev_turn, EV_TIMEOUT, 0);
	else if (!evtimer_pending(d->ev_turn, NULL))
		evtimer_add(d->ev_turn, &idle);
}

/*
 * An fd of the VMM's fault path failed (or the VMM broke it): its events
 * go, nothing loops on it, and the migration is held with the reason. Only
 * this VM's faults stop being served.
 */
static void
fault_broken(struct migration *m, const char *fmt, ...)
{
	struct mig_dst *d = m->dst;
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("migration %s: %s", m->id, why);
	if (d->ev_uffd != NULL)
		event_free(d->ev_uffd);
	if (d->ev_doorbell != NULL)
		event_free(d->ev_doorbell);
	d->ev_uffd = d->ev_doorbell = NULL;
	d->parked = 0;
	if (d->ev_turn != NULL)
		event_del(d->ev_turn);
	if (mig_active(m))
		mig_set_state(m, MIG_PAUSED, "%s: its faults cannot be served; migration held",
		    why);
}

int
fault_start(struct migration *m, int rescan)
{
	struct vm *v = m->vm;

	if (m->dst->ev_turn == NULL) {
		if ((m->dst->ev_turn = event_new(D->base, -1, 0, fault_turn_cb, m)) == NULL)
			return -1;
		event_priority_set(m->dst->ev_turn, MIG_PRI_BULK);
	}
	if ((m->dst->ev_uffd = fault_event(m, v->uffd, fault_uffd_cb)) == NULL)
		return -1;
	if (!v->ring_mode)
		return 0;
	if (rescan) {
		uint32_t n = fault_ring_slots(v);

		/* Slots the old daemon had taken are this daemon's to serve. */
		for (uint32_t i = 0; i < n; i++)
			ring_cas(ring_slot(v->ring, i), RING_TAKEN, RING_POSTED);
	}
	if ((m->dst->ev_doorbell = fault_event(m, v->doorbell, fault_doorbell_cb)) == NULL)
		return -1;
	if (rescan)
		event_active(m->dst->ev_doorbell, EV_READ, 0);
	return 0;
}

void
fault_release(struct migration *m)
{
	struct mig_dst *d = m->dst;

	if (d->ev_uffd != NULL)
		event_free(d->ev_uffd);
	if (d->ev_doorbell != NULL)
		event_free(d->ev_doorbell);
	if (d->ev_turn != NULL)
		event_free(d->ev_turn);
	d->ev_uffd = d->ev_doorbell = d->ev_turn = NULL;
	d->parked = 0;
	free(d->requested);
	free(d->pending);
	d->requested = NULL;
	d->pending = NULL;
}

int
fault_poll_fds(struct migration *m, struct pollfd *p, int max)
{
	int n = 0;

	if (m->vm == NULL || m->dst == NULL || m->dst->ev_uffd == NULL || max < 2)
		return 0;
	p[n++] = (struct pollfd){ .fd = m->vm->uffd, .events = POLLIN };
	if (m->dst->ev_doorbell != NULL)
		p[n++] = (struct pollfd){ .fd = m->vm->doorbell, .events = POLLIN };
	return n;
}

void
fault_release_slots(struct migration *m)
{
	struct vm *v = m->vm;
	uint32_t n;

	if (v == NULL || v->ring == NULL)
		return;
	n = fault_ring_slots(v);
	for (uint32_t i = 0; i < n; i++) {
		struct ring_slot *r = ring_slot(v->ring, i);

		if (ring_cas(r, RING_POSTED, RING_TAKEN) || ring_load(r) == RING_TAKEN)
			fault_slot_complete(v, i, 0);
	}
}

/* What a waiter on a present page is told: retry, or it is poison. */
static int
fault_poison_err(const struct migration *m, uint64_t idx)
{
	return bitmap_test(m->dst->poisoned, idx) ? -EHWPOISON : 0;
}

/* Ends a ring slot's wait: DONE (retry the access) or ERROR (-errno). */
static void
fault_slot_complete(struct vm *v, uint32_t i, int err)
{
	struct ring_slot *r = ring_slot(v->ring, i);

	PROBE_RESUMED(v->mig != NULL ? v->mig->num : 0, i, r->offset / v->page_size, err);
	r->error = err;
	ring_store(r, err ? RING_ERROR : RING_DONE);
	ring_futex_wake(r);
}

/* A requested page is present: time it and release every slot on it. */
static void
fault_page_arrived(struct migration *m, uint64_t idx, int64_t now, int64_t rx)
{
	for (unsigned i = 0; i < m->dst->npending; i++) {
		struct pending *p = &m->dst->pending[i];

		if (p->idx != idx)
			continue;
		hist_add(&m->st.lat, (uint64_t)(now - (int64_t)p->t0_ns));
		lat_record(m->lat_slot, m->num, p->tid, idx, p->posted_ns, p->t0_ns,
		    p->req_ns, (uint64_t)rx, (uint64_t)now);
		for (uint32_t b = 0; p->slots != 0 && b < 64; b++)
			if (p->slots & ((uint64_t)1 << b))
				fault_slot_complete(m->vm, b, fault_poison_err(m, idx));
		*p = m->dst->pending[--m->dst->npending];
		return;
	}
}

/* Does somebody wait on a page of [i, i+n)? */
static int
fault_any_requested(const struct migration *m, uint64_t i, uint64_t n)
{
	for (uint64_t k = i; k < i + n; k++)
		if (bitmap_test(m->dst->requested, k))
			return 1;
	return 0;
}

/* Threads waiting on pages [i, i+n) are about to wake: time it from now. */
static void
fault_arm_waiters(struct migration *m, uint64_t i, uint64_t n)
{
	int64_t t;

	if (m->lat_slot < 0 || m->dst->npending == 0)
		return;
	t = now_ns();
	for (unsigned k = 0; k < m->dst->npending; k++)
		if (m->dst->pending[k].idx >= i && m->dst->pending[k].idx < i + n)
			lat_arm(m->lat_slot, m->num, m->dst->pending[k].tid, (uint64_t)t);
}

/* Pages [i, i+n) went in (the installer marked them): count them by class. */
static void
fault_count(struct migration *m, int enc, int demand, uint64_t i, uint64_t n)
{
	if (enc == FRAME_ENC_POISON) {
		log_warnx("migration %s: pages %llu+%llu are poisoned at the source; "
		    "installed as poison", m->id, (unsigned long long)i,
		    (unsigned long long)n);
	} else if (enc == FRAME_ENC_ZERO)
		m->st.pages_zero += n;
	else if (demand)
		m->st.pages_demand += n;
	else
		m->st.pages_background += n;
}

/* Asks for pages [i, i+n) on the urgent channel (or at the resume, if it
 * is down), whoever waits on them. */
static void
fault_ask(struct migration *m, uint64_t i, uint64_t n)
{
	struct frame_hdr h = { .type = FRAME_REQ, .index = i };

	for (uint64_t k = i; k < i + n; k++)
		bitmap_set(m->dst->requested, k);	/* fault_rerequest() if down */
	while (m->urgent != NULL && n > 0) {
		h.count = n < mig_frame_pages(m) ? (uint32_t)n : mig_frame_pages(m);
		if (peer_send_frame(m->urgent, &h, NULL) < 0)
			break;
		PROBE_REQUEST(m->num, h.index, h.count);
		h.index += h.count;
		n -= h.count;
	}
}

/*
 * Pages [i, i+n) could not be installed: ask the source for them again (its
 * answer comes on the urgent channel), so nobody waiting on them is
 * stranded. 0, or -1 (reason in m->reason) when it is no use: the VMM's
 * memory is gone, or installs keep failing.
 */
static int
fault_refetch(struct migration *m, uint64_t i, uint64_t n, int err)
{
	if (err == ESRCH || err == ENODEV || ++m->dst->install_retries > FAULT_MAX_RETRIES) {
		if (err == ESRCH)	/* its mm is gone: as if its socket had closed */
			snprintf(m->reason, sizeof(m->reason), "destination VMM went away "
			    "during post-copy (its memory is gone: cannot install pages "
			    "%llu+%llu)", (unsigned long long)i, (unsigned long long)n);
		else
			snprintf(m->reason, sizeof(m->reason), "cannot install pages %llu+%llu "
			    "in guest RAM: %s (failed again after being fetched again)",
			    (unsigned long long)i, (unsigned long long)n, strerror(err));
		return -1;
	}
	log_warnx("migration %s: pages %llu+%llu fetched again after an install error "
	    "(%u in a row)", m->id, (unsigned long long)i, (unsigned long long)n,
	    m->dst->install_retries);
	fault_ask(m, i, n);
	return 0;
}

void
fault_refetch_missing(struct migration *m)
{
	for (uint64_t i = 0, j; i < m->npages; i = j) {
		for (; i < m->npages && bitmap_test(m->dst->installed, i); i++)
			;
		for (j = i; j < m->npages && !bitmap_test(m->dst->installed, j); j++)
			;
		if (j > i)
			fault_ask(m, i, j - i);
	}
}

/*
 * After a restart of this daemon: threads that were waiting in the kernel
 * (blocking uffd) wait for a fault event the old daemon read and took with
 * it. Wake them all: each touches its page again and, if it is still
 * missing, faults again to this daemon, which serves it on demand. (Ring
 * waiters are found by fault_start()'s rescan.)
 */
void
fault_wake_all(struct migration *m)
{
	struct uffdio_range r = { m->vm->ram_va, m->ram_bytes };

	if (ioctl(m->vm->uffd, UFFDIO_WAKE, &r) < 0)
		log_warn("migration %s: waking the VM's waiting threads", m->id);
}

int
fault_deliver(struct migration *m, const struct frame_hdr *h, const uint8_t *p,
    int demand)
{
	uint64_t i = h->index, end = h->index + h->count;
	int64_t rx_ns = now_ns();	/* the frame was just read */

	if (m->vm == NULL || m->vm->uffd < 0) {
		snprintf(m->reason, sizeof(m->reason), "the destination VM is gone");
		return -1;
	}
	while (i < end) {
		enum inst_result r;
		int64_t installed_ns;
		uint64_t j, done = 0;
		int waited;

		if (bitmap_test(m->dst->installed, i)) {
			m->st.pages_duplicate++;
			i++;
			continue;
		}
		for (j = i + 1; j < end && !bitmap_test(m->dst->installed, j); j++)
			;
		fault_arm_waiters(m, i, j - i);
		r = inst_ioctl(m, i, j - i, h->enc,
		    h->enc == FRAME_ENC_RAW ? p + (i - h->index) * m->page_size : NULL, &done);
		if (r == INST_ERROR) {
			if (fault_refetch(m, i, j - i, errno) < 0)
				return -1;
			i = j;
			continue;
		}
		m->dst->install_retries = 0;
		/* Only runs somebody waits on: a trap per background frame would
		 * tax the bulk stream for nothing. A waiter's latency ends when
		 * its page is in guest RAM, here, as BPF's does. */
		waited = fault_any_requested(m, i, done);
		if (waited)
			PROBE_INSTALLED(m->num, i, done, rx_ns);
		installed_ns = waited ? now_ns() : rx_ns;
		/* EEXIST: counted there, present all the same. */
		if (r == INST_OK)
			fault_count(m, h->enc, demand, i, done);
		for (uint64_t k = i; k < i + done; k++)
			if (bitmap_test(m->dst->requested, k))
				fault_page_arrived(m, k, installed_ns, rx_ns);
		i += done;
	}
	lat_idle();	/* after the waiters were woken, not between */
	return 0;
}

/*
 * Asks for a page once; returns its pending entry (NULL if the table is
 * full or the urgent channel is down: the caller's waiter must retry).
 */
static struct pending *
fault_request(struct migration *m, uint64_t idx, uint32_t tid, uint64_t posted_ns)
{
	struct frame_hdr h = { .type = FRAME_REQ, .index = idx, .count = 1 };
	uint64_t t;

	if (bitmap_test(m->dst->requested, idx)) {
		for (unsigned i = 0; i < m->dst->npending; i++)
			if (m->dst->pending[i].idx == idx)
				return &m->dst->pending[i];
		/* Asked for already (prefetched, or fetched again): wait for it,
		 * a demand fault like any other. */
		if (m->dst->npending >= m->dst->maxpending)
			return NULL;
		PROBE_FAULT(m->num, tid, idx, posted_ns, m->urgent != NULL);
		m->st.demand_faults++;
		t = (uint64_t)now_ns();
		m->dst->pending[m->dst->npending] = (struct pending){ .idx = idx,
		    .t0_ns = t, .req_ns = t, .posted_ns = posted_ns, .tid = tid };
		return &m->dst->pending[m->dst->npending++];
	}
	if (m->dst->npending >= m->dst->maxpending) {
		/* No entry to time it in: ask all the same (an installed page
		 * wakes its uffd waiters; a ring waiter retries). */
		if (m->urgent != NULL && peer_send_frame(m->urgent, &h, NULL) == 0)
			bitmap_set(m->dst->requested, idx);
		return NULL;
	}
	if (m->urgent == NULL) {
		PROBE_FAULT(m->num, tid, idx, posted_ns, 0);
		/* Link down: remember the fault; fault_rerequest() asks for it. */
		bitmap_set(m->dst->requested, idx);
		m->st.demand_faults++;
		m->dst->pending[m->dst->npending] = (struct pending){ .idx = idx,
		    .t0_ns = (uint64_t)now_ns(), .posted_ns = posted_ns, .tid = tid };
		return &m->dst->pending[m->dst->npending++];
	}
	/*
	 * Prefetch: a fault right where the previous request ended means the
	 * guest walks memory in order and the pages we fetched ahead were
	 * used: widen the window. A fault elsewhere narrows it.
	 */
	if (idx == m->dst->last_fault_end && m->st.demand_faults > 0) {
		m->st.prefetch_hits++;
		m->dst->prefetch = m->dst->prefetch ? m->dst->prefetch * 2 : 1;
		if (m->dst->prefetch > mig_frame_pages(m) - 1)
			m->dst->prefetch = mig_frame_pages(m) - 1;
	} else {
		m->dst->prefetch /= 2;
	}
	while (h.count < 1 + m->dst->prefetch && idx + h.count < m->npages &&
	    !bitmap_test(m->dst->requested, idx + h.count) &&
	    !bitmap_test(m->dst->installed, idx + h.count))
		h.count++;
	if (peer_send_frame(m->urgent, &h, NULL) < 0)
		return NULL;
	PROBE_FAULT(m->num, tid, idx, posted_ns, 1);
	for (uint64_t i = idx; i < idx + h.count; i++)
		bitmap_set(m->dst->requested, i);
	m->st.prefetch_pages += h.count - 1;
	m->dst->last_fault_end = idx + h.count;
	m->st.demand_faults++;
	t = (uint64_t)now_ns();
	m->dst->pending[m->dst->npending] = (struct pending){ .idx = idx, .t0_ns = t,
	    .req_ns = t, .posted_ns = posted_ns, .tid = tid };
	return &m->dst->pending[m->dst->npending++];
}

/* Asks again for every page a thread waits on that is not installed. */
void
fault_rerequest(struct migration *m)
{
	struct frame_hdr h = { .type = FRAME_REQ };

	for (uint64_t i = 0; i < m->npages && m->urgent != NULL; i++) {
		if (!bitmap_test(m->dst->requested, i) || bitmap_test(m->dst->installed, i))
			continue;
		h.index = i;
		h.count = 1;
		while (h.count < mig_frame_pages(m) && i + h.count < m->npages &&
		    bitmap_test(m->dst->requested, i + h.count) &&
		    !bitmap_test(m->dst->installed, i + h.count))
			h.count++;
		if (peer_send_frame(m->urgent, &h, NULL) < 0)
			return;
		PROBE_REQUEST(m->num, i, h.count);
		i += h.count - 1;
	}
	for (unsigned k = 0; k < m->dst->npending && m->urgent != NULL; k++)
		if (m->dst->pending[k].req_ns == 0)
			m->dst->pending[k].req_ns = (uint64_t)now_ns();
}

/* Doorbell: take every posted slot, check it, fetch or complete it. */
static void
fault_doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	struct vm *v = m->vm;
	unsigned waiters = 0;
	uint32_t nslots;
	uint64_t cnt;
	ssize_t n;

	/* One read takes the whole count: a doorbell rung a million times
	 * is one wake-up. */
	if ((n = fault_read(fd, &cnt, sizeof(cnt))) < 0 ? errno != EAGAIN :
	    n != sizeof(cnt)) {
		fault_broken(m, "the VMM's doorbell failed: %s",
		    n < 0 ? strerror(errno) : "short read");
		return;
	}
	if (v == NULL || v->ring == NULL)
		return;
	ring_collect(v->ring);	/* posts from now on ring again */
	nslots = fault_ring_slots(v);
	for (uint32_t i = 0; i < nslots; i++) {
		struct ring_slot *r = ring_slot(v->ring, i), e;
		struct pending *p;
		uint64_t idx, nerr;
		int err;

		if (!ring_cas(r, RING_POSTED, RING_TAKEN))
			continue;
		m->st.ring_faults++;
		if ((err = ring_validate(r, m->ram_bytes, m->page_size, 1, &e)) < 0) {
			/* The first 8 refusals are logged, then the 16th, 32nd,
			 * ...: a VMM posting garbage in a loop fills no log. */
			nerr = ++m->st.ring_errors;
			if (nerr <= 8 || (nerr & (nerr - 1)) == 0)
				log_warnx("migration %s: ring slot %u: refused entry (kind %u, "
				    "offset 0x%llx, size %llu): %s (%llu refused so far)", m->id,
				    i, e.kind, (unsigned long long)e.offset,
				    (unsigned long long)e.size, strerror(-err),
				    (unsigned long long)nerr);
			fault_slot_complete(v, i, err);
			continue;
		}
		idx = e.offset / m->page_size;
		if (bitmap_test(m->dst->installed, idx)) {
			if (v->minor && !fault_poison_err(m, idx) && inst_remap(m, idx) < 0) {
				fault_slot_complete(v, i, -EIO);
				continue;
			}
			fault_slot_complete(v, i, fault_poison_err(m, idx));
			continue;
		}
		if ((p = fault_request(m, idx, e.tid, e.post_ns)) == NULL) {
			fault_slot_complete(v, i, -EAGAIN);	/* the thread faults again */
			continue;
		}
		waiters += !(p->slots & ((uint64_t)1 << i));
		p->slots |= (uint64_t)1 << i;
	}
	fault_served(m, FAULT_PARK_DOORBELL, waiters);
}

/* A uffd read found nothing (or failed): 0, or -1 once the fd is broken. */
static int
fault_uffd_idle(struct migration *m, int fd, ssize_t n, int first)
{
	int fl;

	if (n >= 0) {
		fault_broken(m, "the VMM's userfaultfd read %zd bytes, not whole events", n);
		return -1;
	}
	if (errno != EAGAIN) {
		fault_broken(m, "the VMM's userfaultfd failed: %s", strerror(errno));
		return -1;
	}
	/* Ready but empty: a blocking uffd polls as an error for ever. */
	if (first && (fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK)) {
		fault_broken(m, "the VMM made its userfaultfd blocking (O_NONBLOCK cleared)");
		return -1;
	}
	return 0;
}

static void
fault_uffd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	struct uffd_msg msgs[64];
	unsigned waiters = 0;
	ssize_t n;

	for (int rd = 0; rd < FAULT_UFFD_READS; rd++) {
		n = fault_read(fd, msgs, sizeof(msgs));
		if (n <= 0 || n % (ssize_t)sizeof(msgs[0]) != 0) {
			if (fault_uffd_idle(m, fd, n, rd == 0) < 0)
				return;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			uint64_t a = msgs[i].arg.pagefault.address, idx;

			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			if (a < m->vm->ram_va || a - m->vm->ram_va >= m->ram_bytes) {
				log_warnx("migration %s: fault outside guest RAM at 0x%llx",
				    m->id, (unsigned long long)a);
				continue;
			}
			idx = (a - m->vm->ram_va) / m->page_size;
			if (!bitmap_test(m->dst->installed, idx)) {
				fault_request(m, idx, msgs[i].arg.pagefault.feat.ptid, 0);
				waiters++;
			} else if (m->vm->minor &&
			    (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR)) {
				/* In the page cache but not mapped: map it. */
				inst_remap(m, idx);
			} else {
				/* Installed between the fault and this read. */
				struct uffdio_range r = {
					m->vm->ram_va + idx * m->page_size, m->page_size };

				ioctl(fd, UFFDIO_WAKE, &r);
			}
		}
		if (n < (ssize_t)sizeof(msgs))
			break;	/* drained */
	}
	fault_served(m, FAULT_PARK_UFFD, waiters);
}
