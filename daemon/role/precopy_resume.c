/*
 * precopy_resume: pre-copy across a lost link or a restart of either daemon
 * (the source's side; precopy.h). The VM never stopped here, so nothing is
 * at stake but the work already sent: the migration waits PAUSED, the VM
 * running and the shim tracking its writes, while the source reconnects
 * (source.c's back-off); the destination's Resync says which pages it
 * holds, and pre-copy goes on from there. If the link is not back within
 * [peer] precopy_recovery the migration fails, the VM running on here.
 *
 * Which copies the destination holds can be trusted (a page it holds, and
 * `sent` here, counts as sent): only a page sent once in pre-copy and not
 * written since. A page sent twice may be held in its earlier copy (the
 * later one lost in flight): it goes again. Every page the destination
 * holds is listed stale at the switch-over unless sent again: more is
 * resent than needed, never less. After a restart of this daemon the shim's
 * tracking has ended with the old one (what was written in between is
 * unknown): every page is unsent, tracking starts afresh, and round 1 runs
 * again. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bitmap.h"
#include "log.h"
#include "precopy.h"
#include "source_state.h"
#include "util.h"
#include "vm.h"

/* The link was not back in time: the VM runs on here, tracking stops. */
static void
pc_recovery_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	char why[400];

	(void)fd;
	(void)what;
	if (m->state != MIG_PAUSED || m->state_sent || m->src == NULL)
		return;
	snprintf(why, sizeof(why), "link to %s lost during pre-copy and not back within "
	    "precopy_recovery (%d s): the VM runs on the source", m->peer,
	    D->conf.precopy_recovery);
	m->src->fail(m, why);
}

void
pc_lost(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;
	struct timeval tv = { D->conf.precopy_recovery, 0 };

	if (pc->ev_scan != NULL)
		evtimer_del(pc->ev_scan);	/* rounds wait for the link */
	if (pc->ev_recovery == NULL &&
	    (pc->ev_recovery = evtimer_new(D->base, pc_recovery_cb, m)) == NULL) {
		m->src->fail(m, "link lost during pre-copy, and out of memory");
		return;
	}
	if (!evtimer_pending(pc->ev_recovery, NULL)) {
		log_info("migration %s: link lost during pre-copy; the VM runs on here, its "
		    "writes tracked; reconnecting for up to %d s", m->id,
		    D->conf.precopy_recovery);
		evtimer_add(pc->ev_recovery, &tv);
	}
}

void
pc_resync(struct migration *m, const uint8_t *installed)
{
	struct mig_src *s = m->src;
	struct src_pc *pc = &s->pc;
	uint64_t held = 0, trusted = 0;

	if (pc->ev_recovery != NULL)
		evtimer_del(pc->ev_recovery);
	for (uint64_t i = 0; i < m->npages; i++) {
		int has = (installed[i / 8] >> (i % 8)) & 1;

		if (has) {
			bitmap_set(pc->precopied, i);	/* listed stale unless sent again */
			held++;
		}
		if (has && bitmap_test(s->sent, i) && !bitmap_test(pc->resent, i)) {
			trusted++;
			continue;
		}
		bitmap_clear(s->sent, i);
	}
	s->nsent = trusted;
	s->bg_cursor = 0;
	pc->used = pc->used || held > 0;
	pc->announced = 0;	/* Precopy goes ahead on the new background channel */
	mig_set_state(m, MIG_PRECOPY, NULL);
	log_info("migration %s: pre-copy resumed: the destination holds %llu of %llu pages, "
	    "%llu of them current; the rest go again", m->id, (unsigned long long)held,
	    (unsigned long long)m->npages, (unsigned long long)trusted);
	if (pc->tracking == PC_TRACK_NONE && pc_begin(m) == 0)
		pc->policy.mode = PRECOPY_OFF;	/* cannot happen: the record said pre-copy */
	else if (pc->tracking == PC_TRACK_ON && !pc->scanning)
		pc_new_round(m);
}

int
pc_reattach(struct migration *m)
{
	struct src_pc *pc = &m->src->pc;
	unsigned n;
	char why[200];

	if (sscanf(m->precopy, "%u round", &n) == 1 && n >= 1 && n <= PRECOPY_MAX_ROUNDS) {
		pc->policy.mode = PRECOPY_ROUNDS;
		pc->policy.rounds = n;
	} else if (precopy_parse(m->precopy, &pc->policy, why, sizeof(why)) < 0 ||
	    pc->policy.mode == PRECOPY_OFF) {
		pc->policy.mode = PRECOPY_AUTO;
	}
	if ((pc->precopied = bitmap_new(m->npages)) == NULL ||
	    (pc->resent = bitmap_new(m->npages)) == NULL)
		return -1;
	pc->tracking = PC_TRACK_NONE;	/* started again once the link is back */
	pc->used = 1;
	return 0;
}
