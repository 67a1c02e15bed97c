/*
 * source_ctl: the operator's actions on a source migration (source.h):
 * recover, pause, cancel, a new bandwidth cap (split between the
 * streams: source_streams.c). The page server itself is source.c.
 * Loop thread only.
 */
#include <stdio.h>

#include "log.h"
#include "peer.h"
#include "rate.h"
#include "ratelimit.h"
#include "session.h"
#include "source.h"
#include "source_state.h"
#include "vm.h"

int
src_recover(struct migration *m, const char *dest, char *err, size_t errlen)
{
	if (m->role != MIG_SOURCE || m->state != MIG_PAUSED) {
		snprintf(err, errlen, "migration %s is %s; only a paused source-side "
		    "migration can be recovered (the source reconnects)", m->id,
		    mig_state_name(m->state));
		return -1;
	}
	m->src->held = 0;
	if (dest != NULL && *dest != '\0') {
		log_info("migration %s: operator moves the destination from %s to %s",
		    m->id, m->peer, dest);
		snprintf(m->peer, sizeof(m->peer), "%s", dest);
	}
	if (m->urgent != NULL)
		peer_close(m->urgent, 0);
	m->src->retry_ms = 0;
	if (m->src->ev_retry != NULL)
		evtimer_del(m->src->ev_retry);
	m->src->redial(m);
	return 0;
}

/*
 * Operator pause of a running post-copy migration: both channels close, the
 * destination's vCPUs wait for missing pages, nothing reconnects until
 * src_recover(). Before the VM state left, there is nothing to pause.
 */
int
src_pause(struct migration *m, char *err, size_t errlen)
{
	if (m->role != MIG_SOURCE || !mig_active(m) || !m->state_sent) {
		snprintf(err, errlen, "migration %s is %s: only a source-side migration in "
		    "post-copy can be paused", m->id, mig_state_name(m->state));
		return -1;
	}
	m->src->held = 1;
	if (m->src->ev_retry != NULL)
		evtimer_del(m->src->ev_retry);
	peer_bg_close(m, NULL, 0);
	if (m->urgent != NULL)
		peer_close(m->urgent, 0);
	m->src->resuming = 0;
	mig_set_state(m, MIG_PAUSED, "paused by the operator; "
	    "`mig-ctl recover` resumes it");
	return 0;
}

/*
 * Cancel: possible only while the VM has not left (its state was not sent):
 * the VM resumes here. Afterwards it may run on the destination, and
 * cancelling would lose it.
 */
int
src_cancel(struct migration *m, char *err, size_t errlen)
{
	int paused = m->state == MIG_BLACKOUT;

	if (m->role != MIG_SOURCE || !mig_active(m) || m->state_sent) {
		snprintf(err, errlen, "migration %s is %s%s: it cannot be cancelled", m->id,
		    mig_state_name(m->state), m->state_sent ? " and its VM state has left "
		    "(the VM may run on the destination; pause or recover instead)" : "");
		return -1;
	}
	pc_stop(m);
	mig_set_state(m, MIG_CANCELLED, "cancelled by the operator");
	if (paused && m->vm != NULL)
		vm_send_resume_local(m->vm, "migration cancelled");
	session_finish(m);
	return 0;
}

int
src_set_bandwidth(struct migration *m, uint64_t bps, char *err, size_t errlen)
{
	if (m->role != MIG_SOURCE || !mig_active(m) || m->src == NULL) {
		snprintf(err, errlen, "migration %s is %s: only an active source-side "
		    "migration has a bandwidth cap", m->id, mig_state_name(m->state));
		return -1;
	}
	if (bps != 0 && bps < RATE_MIN_BPS) {
		snprintf(err, errlen, "a cap below %llu bits/s", (unsigned long long)RATE_MIN_BPS);
		return -1;
	}
	m->st.max_bandwidth_bits_per_s = bps;
	for (uint32_t k = 0; k < MIG_STREAMS_MAX; k++) {
		struct pconn *c = *peer_bg_slot(m, k);

		if (c != NULL && rl_apply(c, src_stream_cap(m)) < 0) {
			snprintf(err, errlen, "cannot set the cap: out of memory");
			return -1;
		}
	}
	log_info("migration %s: background bandwidth cap %s%.1f Mbit/s", m->id,
	    bps ? "" : "off, was ", (double)bps / 1e6);
	mig_save(m);
	return 0;
}
