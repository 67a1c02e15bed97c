/*
 * session: the part of a migration's life both roles share on its peer
 * channels. A lost channel ends a migration that has not switched over and
 * pauses one that has (each role says where that line is and what follows);
 * frame handlers end in one error tail; session_finish() releases a
 * migration that is over. Loop thread only.
 */
#include <stdio.h>

#include "compress.h"
#include "latency.h"
#include "log.h"
#include "session.h"
#include "tls.h"
#include "util.h"
#include "vm.h"

void
session_lost(struct pconn *c, const char *why, const struct session_policy *p)
{
	struct migration *m = c->mig;
	int was_paused;
	char buf[300], what[200];

	if (m == NULL || !mig_active(m))
		return;
	if (p->early(m)) {
		p->early_what(m, what, sizeof(what));
		snprintf(buf, sizeof(buf), "%s: %s", what, why);
		peer_detach(c);	/* the caller frees c */
		p->fail(m, buf);
		return;
	}
	was_paused = m->state == MIG_PAUSED;
	if (!was_paused)
		mig_set_state(m, MIG_PAUSED, "%s channel %s %s lost: %s; %s",
		    c == m->urgent ? "urgent" : "background", p->dir, m->peer, why, p->then);
	/* Every channel starts over together (the urgent one and each
	 * background stream); the caller frees `c`. */
	if (m->urgent != NULL && m->urgent != c)
		peer_close(m->urgent, 0);
	peer_bg_close(m, c, 0);
	if (p->paused != NULL)
		p->paused(m, why, was_paused);
}

/* The role hears of the loss, then `c` goes. -1. */
static int
session_drop(struct pconn *c, const char *why)
{
	c->mig->ops->conn_lost(c, why);
	peer_close(c, 0);
	return -1;
}

int
session_error(struct pconn *c, const char *why)
{
	log_warnx("migration %s: peer %s: %s", c->mig->id, c->addr, why);
	return session_drop(c, why);
}

int
session_unexpected(struct pconn *c, int msg_case)
{
	struct migration *m = c->mig;

	log_warnx("migration %s: unexpected peer message %d in state %s", m->id,
	    msg_case, mig_state_name(m->state));
	return session_drop(c, "protocol error");
}

void
session_finish(struct migration *m)
{
	mig_save(m);	/* the final figures */
	if (m->urgent != NULL)
		peer_close(m->urgent, 1);
	peer_bg_close(m, NULL, 1);
	peer_heartbeat_stop(m);
	if (m->ops != NULL && m->ops->release != NULL)
		m->ops->release(m);
	lat_end(m->lat_slot);
	m->lat_slot = -1;
	if (m->vm != NULL) {
		struct vm *v = m->vm;

		if (v->mig == m)
			v->mig = NULL;
		m->vm = NULL;
		vm_release(v);
	}
}

void
session_identities(struct pconn *c, struct migration *m)
{
	char *peer = m->role == MIG_SOURCE ? m->dst_ident : m->src_ident;
	char *own = m->role == MIG_SOURCE ? m->src_ident : m->dst_ident;

	tls_bev_identity(c->bev, peer, sizeof(m->src_ident));
	tls_bev_own_identity(c->bev, own, sizeof(m->src_ident));
}

void
session_welcome(struct pconn *c, struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Welcome w = MIGRATIOND__PEER__V1__WELCOME__INIT;

	w.migration_id = m->id;
	w.session_key.data = m->session_key;
	w.session_key.len = sizeof(m->session_key);
	w.decodes = cz_decodes();
	w.max_streams = (uint32_t)D->conf.streams;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME;
	msg.welcome = &w;
	peer_send_msg(c, &msg);
}
