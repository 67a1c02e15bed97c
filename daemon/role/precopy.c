/*
 * precopy: the source's pre-copy phase (state PRECOPY). After the
 * destination's Welcome the source VMM's shim starts tracking writes
 * (TRACK_START); round 1 streams every page on the background channel while
 * the VM runs; when a round has queued its last page the shim is asked
 * which pages were written since (TRACK_SCAN, which also re-arms the
 * tracking), those are sent again in the next round, and so on until the
 * policy says switch (policy.h; `mig-ctl postcopy` switches at once). Then
 * the VM pauses; the shim's final scan comes with the VM's state, and the
 * state travels on the background channel behind the last pre-copied page
 * with the list of pages the destination holds stale copies of (sent in
 * pre-copy, written since: `precopied` and not `sent`), so that it makes
 * them missing again before the VM runs there. Post-copy fetches them.
 *
 * Why it is safe: a page is read (pread) only after the scan that preceded
 * it, so any write after the read is in a later scan, and the final scan
 * is taken with the VM paused. The destination applies the list before it
 * starts the VM, and the list follows every stale copy on the same
 * connection, so none can arrive after it.
 *
 * A lost link or a restart of either daemon during pre-copy pauses it (the
 * VM runs on here, the shim tracks on) until the source is back with the
 * destination's Resync; pre-copy then goes on (precopy_resume.c). Loop
 * thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "ctlmsg.h"
#include "log.h"
#include "peer.h"
#include "precopy.h"
#include "source_state.h"
#include "util.h"
#include "vm.h"

#define PC_MIN_ROUND_NS	20000000	/* scan at most every 20 ms */

static void pc_switch(struct migration *m, const char *why);
static void pc_hot_build(struct migration *m);
static uint64_t *pc_stale(struct migration *m, size_t *nvals, int count);

static void
pc_time_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;

	(void)fd;
	(void)what;
	if (m->state == MIG_PRECOPY || m->src->pc.window)
		pc_switch(m, m->src->pc.window ? "the hot-set window is over" : "its time is up");
}

static void
pc_progress(struct migration *m)
{
	m->st.precopy_remaining_bytes = (m->npages - m->src->nsent) * m->page_size;
	m->st.projected_postcopy_bytes = m->src->pc.last_dirty * m->page_size;
}

int
pc_begin(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;

	precopy_name(&pc->policy, m->precopy, sizeof(m->precopy));
	pc->window = pc->policy.mode == PRECOPY_OFF && D->conf.hotset_window_ms > 0;
	if (pc->policy.mode == PRECOPY_OFF && !pc->window)
		return 0;
	if ((pc->precopied == NULL && (pc->precopied = bitmap_new(m->npages)) == NULL) ||
	    (pc->resent == NULL && (pc->resent = bitmap_new(m->npages)) == NULL) ||
	    (pc->heat == NULL && (pc->heat = calloc(m->npages, sizeof(*pc->heat))) == NULL) ||
	    m->vm == NULL ||
	    vm_send_track(m->vm, VM_TRACK_START) < 0) {
		log_warnx("migration %s: cannot start dirty tracking; post-copy in address "
		    "order", m->id);
		pc->window = 0;
		return 0;
	}
	pc->tracking = PC_TRACK_STARTING;
	pc->start_ns = now_ns();
	if (pc->window) {
		/* Nothing is sent: the VM runs on while the shim learns its hot
		 * set, for the order of the post-copy stream alone. */
		log_info("migration %s: learning the hot set for %d ms before the "
		    "switch-over", m->id, D->conf.hotset_window_ms);
		return 1;
	}
	mig_set_state(m, MIG_PRECOPY, NULL);
	log_info("migration %s: pre-copy (%s): asking the VMM to track writes", m->id,
	    m->precopy);
	return 1;
}

int
pc_streaming(const struct migration *m)
{
	const struct src_pc *pc = &m->src->pc;

	return m->state == MIG_PRECOPY && pc->tracking == PC_TRACK_ON && !pc->scanning &&
	    !pc->switching;
}

int
pc_announce(struct migration *m, struct pconn *c)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Precopy p = MIGRATIOND__PEER__V1__PRECOPY__INIT;

	if (m->src->pc.announced)
		return 0;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PRECOPY;
	msg.precopy = &p;
	m->src->pc.announced = 1;
	return peer_send_msg(c, &msg);
}

void
pc_sent(struct migration *m, uint64_t idx)
{
	if (bitmap_test(m->src->pc.precopied, idx) && m->src->pc.resent != NULL)
		bitmap_set(m->src->pc.resent, idx);
	bitmap_set(m->src->pc.precopied, idx);
	m->src->pc.used = 1;
	m->st.pages_precopy++;
}

static void
pc_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	struct src_pc *pc = &m->src->pc;

	(void)fd;
	(void)what;
	if (m->state != MIG_PRECOPY || pc->switching || pc->scanning || m->vm == NULL)
		return;
	if (vm_send_track(m->vm, VM_TRACK_SCAN) < 0) {
		pc_switch(m, "the VMM cannot be asked for its dirty pages");
		return;
	}
	pc->scanning = 1;
}

void
pc_round_end(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;
	int64_t wait = pc->round_ns + PC_MIN_ROUND_NS - now_ns();
	struct timeval tv = { 0, wait > 0 ? (long)(wait / 1000) : 0 };

	pc_progress(m);
	if (!pc_streaming(m))
		return;
	if (pc->ev_scan == NULL && (pc->ev_scan = evtimer_new(D->base, pc_scan_cb, m)) == NULL) {
		pc_switch(m, "out of memory");
		return;
	}
	if (!evtimer_pending(pc->ev_scan, NULL))
		evtimer_add(pc->ev_scan, &tv);
}

/* Marks the pages of `d` unsent (they go again) and, but for "every page",
 * written in round `round` (their heat). Pages made unsent. */
static uint64_t
pc_apply(struct migration *m, const struct mig_dirty *d, unsigned round)
{
	struct mig_src *s = m->src;
	struct mig_dirty all = { .ok = 1, .all = 1 };
	uint64_t n = 0, work = 0;

	for (size_t r = 0; r < (d->all ? 1 : d->nranges); r++) {
		/* Untrusted: the VMM's ranges are clipped to its RAM. */
		uint64_t first = d->all ? 0 : d->ranges[2 * r];
		uint64_t cnt = d->all ? m->npages : d->ranges[2 * r + 1];

		if (first >= m->npages)
			continue;
		if (cnt > m->npages - first)
			cnt = m->npages - first;
		/* The shim's ranges never overlap: more than RAM's worth of them
		 * is a VMM wasting the loop's time; take it as every page. */
		if ((work += cnt) > m->npages && !d->all)
			return n + pc_apply(m, &all, round);
		for (uint64_t k = first; k < first + cnt; k++) {
			if (s->pc.heat != NULL && !d->all)
				s->pc.heat[k] = (uint16_t)(round < UINT16_MAX ? round : UINT16_MAX);
			if (bitmap_test(s->sent, k)) {
				bitmap_clear(s->sent, k);
				s->nsent--;
				n++;
			}
		}
	}
	return n;
}

/* Switch at the end of this round? Why, or NULL to go on. */
static const char *
pc_decide(struct migration *m, uint64_t dirty, int64_t round_ns)
{
	struct src_pc *pc = &m->src->pc;
	double secs = (double)round_ns / 1e9;
	double rate = secs > 0 ? (double)(m->st.bytes_sent - pc->round_bytes) / secs : 0;

	/* The operator's rounds or time are kept even when a round saw no
	 * write (a guest idle for 20 ms is no promise it stays idle). */
	switch (pc->policy.mode) {
	case PRECOPY_ROUNDS:
		return m->st.precopy_rounds >= pc->policy.rounds ? "its rounds are done" : NULL;
	case PRECOPY_TIME:
		return NULL;	/* its timer decides */
	default:
		break;
	}
	if (dirty == 0)
		return "nothing was written during the round";
	if ((double)(dirty * m->page_size) <= rate * D->conf.precopy_switch_ms / 1e3)
		return "the dirty set fits what the link delivers in precopy_switch_ms";
	/* Shrinking by less than a quarter a round, more rounds buy little. */
	if (m->st.precopy_rounds >= 2 && dirty * 4 > pc->prev_dirty * 3)
		return "the dirty set stopped shrinking";
	if (m->st.precopy_rounds >= (uint32_t)D->conf.precopy_max_rounds)
		return "precopy_max_rounds reached";
	return NULL;
}

void
pc_new_round(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;

	m->st.precopy_rounds++;
	pc->round_ns = now_ns();
	pc->round_bytes = m->st.bytes_sent;
	m->src->bg_cursor = 0;
	pc_progress(m);
	mig_save(m);
	m->src->bg_kick(m);
}

/* Tracking is on: pre-copy round 1. */
static void
pc_started(struct migration *m, const struct mig_dirty *d)
{
	struct src_pc *pc = &m->src->pc;
	struct timeval tv = { pc->policy.ms / 1000, (pc->policy.ms % 1000) * 1000 };

	snprintf(m->dirty_tracking, sizeof(m->dirty_tracking), "%s", d->method);
	pc->tracking = PC_TRACK_ON;
	log_info("migration %s: pre-copy: the VMM tracks writes (%s)", m->id, d->method);
	if (pc->policy.mode == PRECOPY_TIME) {
		if ((pc->ev_time = evtimer_new(D->base, pc_time_cb, m)) == NULL) {
			pc_switch(m, "out of memory");
			return;
		}
		evtimer_add(pc->ev_time, &tv);
	}
	pc_new_round(m);
}

void
pc_dirty(struct migration *m, const struct mig_dirty *d)
{
	struct src_pc *pc = m->src != NULL ? &m->src->pc : NULL;
	int64_t round = pc != NULL ? now_ns() - pc->round_ns : 0;
	uint64_t n;
	const char *why;

	if (m->src == NULL)
		return;	/* over: a late answer */
	if (pc->tracking == PC_TRACK_STARTING) {
		if (d->ok && !pc->switching && pc->window) {
			struct timeval tv = { D->conf.hotset_window_ms / 1000,
			    (D->conf.hotset_window_ms % 1000) * 1000 };

			snprintf(m->dirty_tracking, sizeof(m->dirty_tracking), "%s", d->method);
			pc->tracking = PC_TRACK_ON;
			if ((pc->ev_time = evtimer_new(D->base, pc_time_cb, m)) == NULL)
				pc_switch(m, "out of memory");
			else
				evtimer_add(pc->ev_time, &tv);
			return;
		}
		if (d->ok && !pc->switching) {
			pc_started(m, d);
			return;
		}
		if (!d->ok) {
			snprintf(m->dirty_tracking, sizeof(m->dirty_tracking), "none: %s", d->error);
			log_warnx("migration %s: the VMM cannot track writes (%s): post-copy "
			    "only", m->id, d->error);
			pc->tracking = PC_TRACK_NONE;
		}
		pc_switch(m, "no dirty tracking");
		return;
	}
	if (!pc->scanning)
		return;	/* not asked for (a hostile VMM's): ignored */
	pc->scanning = 0;
	if (!d->ok) {
		/* What was written is unknown: every pre-copied page is stale. */
		struct mig_dirty all = { .ok = 1, .all = 1 };

		log_warnx("migration %s: dirty scan failed (%s): switching over with every "
		    "pre-copied page treated as stale", m->id, d->error);
		pc_apply(m, &all, 0);
		pc_switch(m, "the dirty scan failed");
		return;
	}
	n = pc_apply(m, d, m->st.precopy_rounds);
	pc->prev_dirty = pc->last_dirty;
	pc->last_dirty = n;
	m->st.dirty_pages_per_s = round > 0 ? (double)n * 1e9 / (double)round : 0;
	log_info("migration %s: pre-copy round %u: %llu pages written since sent "
	    "(%.0f pages/s), scan %.2f ms", m->id, m->st.precopy_rounds,
	    (unsigned long long)n, m->st.dirty_pages_per_s, (double)d->scan_ns / 1e6);
	if (pc->switching)
		return;
	if ((why = pc_decide(m, n, round)) != NULL)
		pc_switch(m, why);
	else
		pc_new_round(m);
}

/*
 * At the switch-over, before the VMM is asked to pause: the pages stale
 * already (Precopy with `stale`, behind the last pre-copied page) go to the
 * destination, which drops them while the VMM pauses here rather than in
 * the blackout. Nothing is sent after it until the VM state, which lists
 * them again with those written since. A failure only loses the head start.
 */
static void
pc_stale_early(struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Precopy p = MIGRATIOND__PEER__V1__PRECOPY__INIT;

	if (!m->src->pc.used || m->bg == NULL || !m->bg->hello_sent ||
	    (p.stale = pc_stale(m, &p.n_stale, 0)) == NULL)
		return;
	if (p.n_stale > 0) {
		msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PRECOPY;
		msg.precopy = &p;
		if (peer_send_msg(m->bg, &msg) < 0)
			log_warnx("migration %s: cannot send the stale pages ahead of the "
			    "pause; the VM state lists them", m->id);
	}
	free(p.stale);
}

static void
pc_switch(struct migration *m, const char *why)
{
	struct src_pc *pc = &m->src->pc;

	if (pc->switching || (m->state != MIG_PRECOPY && !(pc->window &&
	    m->state == MIG_CONNECTING)))
		return;
	pc->switching = 1;
	if (pc->ev_time != NULL)
		evtimer_del(pc->ev_time);
	if (pc->ev_scan != NULL)
		evtimer_del(pc->ev_scan);
	pc_progress(m);
	log_info("migration %s: switching over after %u pre-copy round%s: %s", m->id,
	    m->st.precopy_rounds, m->st.precopy_rounds == 1 ? "" : "s", why);
	if (m->state == MIG_PRECOPY)
		pc_stale_early(m);
	m->src->pause_vm(m);
}

int
pc_postcopy(struct migration *m, char *err, size_t errlen)
{
	if (m->role != MIG_SOURCE || m->state != MIG_PRECOPY || m->src == NULL) {
		snprintf(err, errlen, "migration %s is %s: only a source-side migration in "
		    "PRECOPY can switch to post-copy", m->id, mig_state_name(m->state));
		return -1;
	}
	pc_switch(m, "the operator asked for post-copy");
	return 0;
}

/* The stale pages (pre-copied, not sent since) as (first, count) pairs;
 * `count`: their number is pages_invalidated (the final list: sent again
 * after a Resync, it replaces the count, never adds to it). */
static uint64_t *
pc_stale(struct migration *m, size_t *nvals, int count)
{
	struct mig_src *s = m->src;
	uint64_t *v = NULL, k = 0, stale = 0;
	size_t n = 0, cap = 0;

	while (k < m->npages) {
		uint64_t j;

		if (!bitmap_test(s->pc.precopied, k) || bitmap_test(s->sent, k)) {
			k++;
			continue;
		}
		for (j = k; j < m->npages && bitmap_test(s->pc.precopied, j) &&
		    !bitmap_test(s->sent, j); j++)
			;
		if (n + 2 > cap) {
			uint64_t *t = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (t == NULL) {
				free(v);
				return NULL;
			}
			v = t;
		}
		v[n++] = k;
		v[n++] = j - k;
		stale += j - k;
		k = j;
	}
	if (count)
		m->st.pages_invalidated = stale;
	*nvals = n;
	return v != NULL ? v : calloc(1, sizeof(*v));
}

/*
 * The post-copy stream's first pages: those not sent, by the last round
 * they were written in, the latest first (a counting sort over rounds).
 */
static void
pc_hot_build(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;
	unsigned top = m->st.precopy_rounds + 1;
	uint64_t *count, at = 0;

	if (pc->heat == NULL || (count = calloc(top + 2, sizeof(*count))) == NULL)
		return;
	for (uint64_t k = 0; k < m->npages; k++)
		if (pc->heat[k] != 0 && !bitmap_test(m->src->sent, k))
			count[pc->heat[k] > top ? top : pc->heat[k]]++;
	for (unsigned r = top + 1; r-- > 1;) {	/* start of each round's share */
		uint64_t c = count[r];

		count[r] = at;
		at += c;
	}
	if (at > 0 && (pc->hot = malloc(at * sizeof(*pc->hot))) != NULL) {
		for (uint64_t k = 0; k < m->npages; k++)
			if (pc->heat[k] != 0 && !bitmap_test(m->src->sent, k))
				pc->hot[count[pc->heat[k] > top ? top : pc->heat[k]]++] = k;
		pc->nhot = at;
		log_info("migration %s: post-copy sends %llu recently written pages first",
		    m->id, (unsigned long long)at);
	}
	free(count);
}

int
pc_hot_next(struct migration *m, uint32_t max, uint64_t *idx, uint32_t *n)
{
	struct src_pc *pc = &m->src->pc;

	while (pc->hot_pos < pc->nhot && bitmap_test(m->src->sent, pc->hot[pc->hot_pos]))
		pc->hot_pos++;
	if (pc->hot_pos >= pc->nhot)
		return 0;
	*idx = pc->hot[pc->hot_pos++];
	*n = 1;
	/* A run of neighbours written in the same round goes in one frame. */
	while (*n < max && pc->hot_pos < pc->nhot && pc->hot[pc->hot_pos] == *idx + *n &&
	    !bitmap_test(m->src->sent, *idx + *n)) {
		pc->hot_pos++;
		(*n)++;
	}
	m->st.pages_hot_first += *n;
	return 1;
}

int
pc_vm_state(struct migration *m, const void *blob, size_t len,
    const struct mig_dirty *final)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__VmState st = MIGRATIOND__PEER__V1__VM_STATE__INIT;
	struct src_pc *pc = &m->src->pc;
	struct mig_dirty all = { .ok = 1, .all = 1 };
	int rc;

	/* No final word from the VMM: every pre-copied page is stale. */
	if (pc->tracking != PC_TRACK_NONE || pc->used)
		pc_apply(m, final != NULL && final->ok ? final : &all, m->st.precopy_rounds + 1);
	pc->tracking = PC_TRACK_NONE;	/* the shim stopped with the final scan */
	pc_hot_build(m);
	if (!pc->used)
		return 0;
	if (m->bg == NULL || (st.stale = pc_stale(m, &st.n_stale, 1)) == NULL)
		return -1;
	st.blob.data = (uint8_t *)(uintptr_t)blob;
	st.blob.len = len;
	st.precopy = 1;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE;
	msg.vm_state = &st;
	rc = peer_send_msg(m->bg, &msg);
	log_info("migration %s: VM paused after pre-copy: %llu of %llu pre-copied pages "
	    "written since they were sent, listed stale; %llu pages left for post-copy",
	    m->id, (unsigned long long)m->st.pages_invalidated,
	    (unsigned long long)m->st.pages_precopy, (unsigned long long)(m->npages -
	    m->src->nsent));
	free(st.stale);
	pc_progress(m);
	return rc < 0 ? -1 : 1;
}

void
pc_stop(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;

	if (pc->tracking != PC_TRACK_NONE && m->vm != NULL && m->vm->sock >= 0)
		vm_send_track(m->vm, VM_TRACK_STOP);
	pc->tracking = PC_TRACK_NONE;
	if (pc->ev_time != NULL)
		evtimer_del(pc->ev_time);
	if (pc->ev_scan != NULL)
		evtimer_del(pc->ev_scan);
}

void
pc_release(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;

	if (pc->ev_time != NULL)
		event_free(pc->ev_time);
	if (pc->ev_scan != NULL)
		event_free(pc->ev_scan);
	if (pc->ev_recovery != NULL)
		event_free(pc->ev_recovery);
	free(pc->precopied);
	free(pc->resent);
	free(pc->heat);
	free(pc->hot);
	memset(pc, 0, sizeof(*pc));
}
