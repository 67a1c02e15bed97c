/*
 * dest_wait: what a destination migration waits for before its VM state
 * arrived (dest.h): a source for its token (prepare_timeout), and after a
 * lost link or a restart during pre-copy, the source coming back
 * ([peer] precopy_recovery, a little longer than the source's own bound).
 *
 * A restart here during pre-copy cannot tell which pre-copied pages are
 * current (the source's scans since were never seen here, and a page may be
 * half-written): they are all dropped from guest RAM, the installed set and
 * the journal start empty, and the Resync says so; the source sends them
 * again. The VM never ran here, so nothing else is at stake.
 *
 * A source that comes back for a migration that has ended here is told how
 * it ended: completed (the Complete it missed), or failed with the VM lost
 * or never run. Loop thread only.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "dest.h"
#include "install.h"
#include "log.h"
#include "peer.h"
#include "session.h"
#include "util.h"
#include "vm.h"

#define DST_RECOVERY_SLACK	5	/* seconds beyond the source's bound */

/* How long a prepared migration waits for its source: prepare_timeout, or
 * the token's own lifetime if that is shorter. */
static int
dst_unused_secs(void)
{
	return D->conf.prepare_timeout < D->conf.token_ttl ? D->conf.prepare_timeout :
	    D->conf.token_ttl;
}

/* No source came for this prepared migration (its token stops working), or
 * back in time to a pre-copy. */
static void
dst_unused_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;

	(void)fd;
	(void)what;
	if (m->state == MIG_PAUSED && m->never_ran)
		mig_set_state(m, MIG_FAILED, "the source did not come back within "
		    "precopy_recovery (%d s) during pre-copy; the VM never ran here",
		    D->conf.precopy_recovery);
	else if (m->state == MIG_PREPARED)
		mig_set_state(m, MIG_FAILED, "prepared migration expired unused after %d s",
		    dst_unused_secs());
	else
		return;
	session_finish(m);
}

/* Both waits on one timer (ev_unused, dst_unused_cb): secs from now. */
static int
dst_wait_arm(struct migration *m, int secs)
{
	struct timeval tv = { secs, 0 };

	if (m->dst->ev_unused == NULL &&
	    (m->dst->ev_unused = evtimer_new(D->base, dst_unused_cb, m)) == NULL)
		return -1;
	event_priority_set(m->dst->ev_unused, MIG_PRI_CONTROL);
	return evtimer_add(m->dst->ev_unused, &tv);
}

int
dst_unused_arm(struct migration *m)
{
	m->dst->token_expires_ms = now_ms() + (int64_t)D->conf.token_ttl * 1000;
	return dst_wait_arm(m, dst_unused_secs());
}

/* Lost in pre-copy (PAUSED, the VM never ran here): wait, but not forever. */
static void
dst_recovery_arm(struct migration *m)
{
	if (dst_wait_arm(m, D->conf.precopy_recovery + DST_RECOVERY_SLACK) < 0)
		log_warnx("migration %s: cannot bound the wait for the source: out of "
		    "memory", m->id);
}

void
dst_precopy_paused(struct migration *m, const char *why, int was_paused)
{
	(void)why;
	if (m->never_ran && !was_paused)
		dst_recovery_arm(m);
}

/* m completed here and its source, which missed the Complete (the link went
 * as it was sent), resumes: the Complete again, then the connection goes. */
static int
dst_resume_completed(struct pconn *c, const struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Complete cm = MIGRATIOND__PEER__V1__COMPLETE__INIT;

	log_info("migration %s: the source at %s resumes it, but it completed here "
	    "(%llu pages installed): telling it so", m->id, c->addr,
	    (unsigned long long)m->st.pages_installed);
	cm.pages_installed = m->st.pages_installed;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_COMPLETE;
	msg.complete = &cm;
	peer_send_msg(c, &msg);
	peer_close(c, 1);
	return -1;
}

int
dst_resume_ended(struct pconn *c, const ProtobufCBinaryData *key)
{
	static const uint8_t unset[sizeof(((struct migration *)0)->session_key)];
	struct migration *m;
	char why[400];
	int keyed;

	/* A migration that ended before any source came has no key (zeros):
	 * such a key names none. */
	keyed = key->len != sizeof(unset) || CRYPTO_memcmp(key->data, unset, sizeof(unset)) != 0;
	TAILQ_FOREACH(m, &mig_all, entry) {
		if (!keyed || m->role != MIG_DEST || mig_active(m) ||
		    key->len != sizeof(m->session_key) ||
		    CRYPTO_memcmp(m->session_key, key->data, sizeof(m->session_key)) != 0)
			continue;
		if (m->state == MIG_COMPLETED)
			return dst_resume_completed(c, m);
		if (m->never_ran) {
			snprintf(why, sizeof(why), "migration %s ended here before its VM "
			    "state arrived (%s: %s): the VM never ran here", m->id,
			    mig_state_name(m->state), m->reason);
			return peer_refuse_never_ran(c, why);
		}
		snprintf(why, sizeof(why), "migration %s ended here (%s: %s)%s", m->id,
		    mig_state_name(m->state), m->reason,
		    strstr(m->reason, "the VM is lost") ? "" : ": the VM is lost");
		return peer_refuse_lost(c, why);
	}
	return peer_refuse(c, "no migration to resume for this session key");
}

int
dst_precopy_reattach(struct migration *m)
{
	/* The journal's run in flight is of pages dropped here anyway. */
	inst_journal_discard(m);
	inst_release(m);
	if (inst_init(m) < 0 || inst_clear(m) < 0 || (m->vm->minor && inst_journal_new(m) < 0)) {
		snprintf(m->reason, sizeof(m->reason), "daemon restarted during pre-copy "
		    "and cannot empty the VM's RAM or its installed set");
		return -1;
	}
	m->st.pages_precopy = 0;
	snprintf(m->reason, sizeof(m->reason), "daemon restarted during pre-copy; the "
	    "pre-copied pages are dropped (which are current is unknown here); waiting "
	    "for the source to reconnect and send them again");
	log_info("migration %s: %s", m->id, m->reason);
	dst_recovery_arm(m);
	mig_save(m);
	return 0;
}
