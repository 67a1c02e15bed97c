/*
 * source: the page server. Starts a migration to a destination daemon:
 * dials the urgent channel and authenticates with the one-time token, pauses
 * the VM through its VMM, ships the VMM's state blob, then answers demand
 * requests on the urgent channel while the background channel streams every
 * page not sent yet. Reads guest RAM with pread on its own copy of the VM's
 * memfd; the VM stays paused, so pages are stable. Loop thread only.
 *
 * The VM is never lost: until the state blob is on the wire a failure resumes
 * it here; after that only the destination may run it, so a failure pauses
 * the migration and keeps every page.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "bitmap.h"
#include "compress.h"
#include "ctlmsg.h"
#include "log.h"
#include "peer.h"
#include "peer_tx.h"
#include "pool.h"
#include "probes.h"
#include "rate.h"
#include "ratelimit.h"
#include "session.h"
#include "source.h"
#include "source_ram.h"
#include "tls.h"
#include "util.h"
#include "vm.h"

static void src_schedule_retry(struct migration *m);
static void src_redial(struct migration *m);
static void src_resync(struct migration *m, const uint8_t *installed, int precopy);
static void src_bg_writable(struct pconn *c);
static void src_conn_lost(struct pconn *c, const char *why);
extern const struct mig_ops src_ops;

static void
src_fail(struct migration *m, const char *why)
{
	int paused = m->state == MIG_BLACKOUT;

	pc_stop(m);	/* pre-copy: the VM never stopped; tracking does */
	mig_set_state(m, MIG_FAILED, "%s", why);
	/* The destination never got the state: the VM runs on here. */
	if (paused && m->vm != NULL)
		vm_send_resume_local(m->vm, why);
	session_finish(m);
}

/* The destination reads this Abort before any EOF, on either channel. */
static void
src_abort(struct migration *m, const char *why)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Abort a = MIGRATIOND__PEER__V1__ABORT__INIT;

	if (m->urgent != NULL) {
		a.reason = (char *)(uintptr_t)why;
		msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT;
		msg.abort = &a;
		peer_send_msg(m->urgent, &msg);
		peer_drain(m->urgent);
	}
	peer_bg_drain(m);
}

/* The VM state left but never took effect there: the VM resumes here. */
static void
src_state_lost(struct migration *m, const char *why)
{
	mig_set_state(m, MIG_FAILED, "%s; the VM resumes on the source", why);
	if (m->vm != NULL)
		vm_send_resume_local(m->vm, why);
	session_finish(m);
}

static int src_pause_vm(struct migration *m);

/* The role's state of a new or revived source migration. -1: no memory. */
static int
src_state_new(struct migration *m)
{
	if ((m->src = calloc(1, sizeof(*m->src))) == NULL)
		return -1;
	m->src->memfd = -1;
	m->src->bg_kick = src_bg_kick;
	m->src->pause_vm = src_pause_vm;
	m->src->fail = src_fail;
	m->src->redial = src_redial;
	m->ops = &src_ops;
	return 0;
}

static void
src_release(struct migration *m)
{
	struct mig_src *s = m->src;

	if (s == NULL)
		return;
	if (s->ev_retry != NULL)
		event_free(s->ev_retry);
	if (s->memfd >= 0)
		close(s->memfd);
	pc_release(m);
	cz_release(m);
	free(s->sent);
	free(s);
	m->src = NULL;
}

int
src_start(struct vm *v, const char *dest, const char *token,
    const struct precopy_policy *pc, uint64_t bps, struct migration **out, char *err,
    size_t errlen)
{
	struct migration *m;

	if (v->dest) {
		snprintf(err, errlen, "VM %s is an incoming VM, not running here", v->name);
		return -1;
	}
	if (v->sock < 0) {
		snprintf(err, errlen, "VM %s: its VMM is not connected", v->name);
		return -1;
	}
	if (v->mig != NULL && mig_active(v->mig)) {
		snprintf(err, errlen, "VM %s is already migrating (%s)", v->name, v->mig->id);
		return -1;
	}
	if (token == NULL || *token == '\0' || strlen(token) >= sizeof(m->src->token)) {
		snprintf(err, errlen, "a token from the destination's prepare is required");
		return -1;
	}
	if ((m = mig_new(v->name, MIG_SOURCE, v->ram_bytes, v->page_size)) == NULL ||
	    src_state_new(m) < 0) {
		if (m != NULL)
			mig_set_state(m, MIG_FAILED, "out of memory");
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	vm_bind(v, m);
	snprintf(m->peer, sizeof(m->peer), "%s", dest);
	snprintf(m->src->token, sizeof(m->src->token), "%s", token);
	m->src->pc.policy = pc != NULL ? *pc : D->conf.precopy;
	m->st.max_bandwidth_bits_per_s = bps;
	m->st.streams_wanted = (uint32_t)D->conf.streams;
	m->st.streams = 1;	/* until the destination says what it takes */
	/* The worker threads start now, not in the stream's first slice. */
	if (m->st.streams_wanted > 1 && D->conf.parallel_encryption)
		m->src->tx_pool = pool_shared((unsigned)config_compress_threads(&D->conf));
	precopy_name(&m->src->pc.policy, m->precopy, sizeof(m->precopy));
	m->state = MIG_CONNECTING;
	*out = m;
	if ((m->src->memfd = fcntl(v->memfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "cannot keep guest RAM: %m");
		src_fail(m, err);
		return 0;
	}
	if ((m->src->sent = bitmap_new(m->npages)) == NULL ||
	    (m->urgent = peer_connect(m, dest, MIGRATIOND__PEER__V1__CHANNEL__URGENT)) == NULL) {
		snprintf(err, errlen, "%s", m->src->sent == NULL ? "out of memory" :
		    peer_connect_error());
		src_fail(m, err);
		return 0;
	}
	log_info("migration %s: vm %s -> %s: connecting", m->id, v->name, dest);
	return 0;
}

static int
src_send_hello(struct pconn *c, struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	int rc;

	h.version = MIG_PEER_VERSION;
	h.channel = c->channel;
	h.vm = m->vm_name;
	h.ram_bytes = m->ram_bytes;
	h.page_size = m->page_size;
	h.source_migration_id = m->id;
	if (c->channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT && !m->src->resuming) {
		h.token = m->src->token;
	} else {
		h.resume = c->channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT;
		h.stream = c->stream;
		h.session_key.data = m->session_key;
		h.session_key.len = sizeof(m->session_key);
	}
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
	msg.hello = &h;
	rc = peer_send_msg(c, &msg);
	/* The token is single-use either way; do not keep it around. */
	if (c->channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT)
		memset(m->src->token, 0, sizeof(m->src->token));
	return rc;
}

static void
src_connected(struct pconn *c)
{
	struct migration *m = c->mig;

	if (peer_is_bg(c)) {
		peer_live(c);
		bufferevent_setwatermark(c->bev, EV_WRITE, MIG_BG_HIWAT / 2, 0);
		if (rl_apply(c, src_stream_cap(m)) < 0)
			log_warnx("migration %s: cannot cap the background channel", m->id);
		/* Its stage now, not in the middle of the stream's first slice. */
		if (m->src->tx_pool != NULL && c->tx == NULL && (c->tx = peer_tx_new()) == NULL)
			log_warnx("migration %s: no memory to stage stream %u; it is "
			    "encrypted on the loop thread", m->id, c->stream);
	}
	log_debug("migration %s: %s channel %u connected", m->id,
	    c == m->urgent ? "urgent" : "background", c->stream);
	if (c == m->urgent) {
		/* Who is at the other end, as its certificate says. */
		session_identities(c, m);
		log_info("migration %s: destination %s at %s [%s]", m->id, m->peer,
		    m->peer_addr, m->dst_ident[0] ? m->dst_ident : "no certificate: TLS off");
	}
	if (src_send_hello(c, m) < 0) {
		src_fail(m, "cannot send hello");
		return;
	}
	c->hello_sent = 1;
	if (peer_is_bg(c))
		src_bg_writable(c);
}

/* Stream c cannot go on: the migration hears of it, then c goes (its
 * stage with it), as after any lost channel. */
static void
src_bg_lost(struct pconn *c, const char *why)
{
	src_conn_lost(c, why);
	peer_close(c, 0);
}

static void
src_bg_writable(struct pconn *c)
{
	struct migration *m = c->mig;
	int64_t t0 = now_ns(), t_check = t0;
	struct src_bg_loss lost;
	int r;

	if (m != NULL && m->src != NULL)
		src_bg_rate(m, t0);

	/*
	 * The background stream starts once the destination runs: during the
	 * blackout the link carries nothing but the state, and the guest's
	 * first touches are served on demand rather than queued behind bulk.
	 */
	if (m == NULL || (m->state != MIG_POSTCOPY && !pc_streaming(m)) ||
	    m->src->sent == NULL || !c->hello_sent)
		return;
	/* Pre-copy (and its VmState behind it) stays on stream 0; every
	 * stream takes post-copy pages from the shared cursor, so each page is
	 * queued on one stream once (src_send_pages marks it sent). */
	if (c != m->bg && m->state != MIG_POSTCOPY)
		return;
	if (m->state == MIG_PRECOPY && pc_announce(m, c) < 0) {
		src_conn_lost(c, "cannot announce pre-copy");
		return;
	}
	if ((r = src_bg_queue(c, m, t0, &t_check, &lost)) != 0) {
		if (r == 1)
			peer_yield(c);
		else
			src_bg_lost(lost.c, lost.why);
		return;
	}
	if (m->state == MIG_PRECOPY) {
		if (m->src->nsent >= m->npages)
			pc_round_end(m);
		return;
	}
	if (m->src->nsent >= m->npages && m->src->bg_cursor != UINT64_MAX) {
		m->src->bg_cursor = UINT64_MAX;	/* log once */
		log_debug("migration %s: every page sent", m->id);
	}
}

static void
src_vm_state(struct migration *m, const void *blob, size_t len,
    const struct mig_dirty *final)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__VmState st = MIGRATIOND__PEER__V1__VM_STATE__INIT;
	int rc;

	if (m->state != MIG_BLACKOUT || m->state_sent || m->urgent == NULL) {
		log_warnx("vm %s: state blob arrived with no migration waiting for it",
		    m->vm_name);
		return;
	}
	if ((rc = pc_vm_state(m, blob, len, final)) != 0) {
		if (rc < 0) {
			src_fail(m, "cannot send the VM state after pre-copy");
			return;
		}
		m->state_sent = 1;
		return;
	}
	st.blob.data = (uint8_t *)(uintptr_t)blob;
	st.blob.len = len;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE;
	msg.vm_state = &st;
	if (peer_send_msg(m->urgent, &msg) < 0) {
		src_fail(m, "cannot send the VM state");
		return;
	}
	m->state_sent = 1;
	log_info("migration %s: VM paused, %zu bytes of state sent", m->id, len);
}

/* The switch-over: the VMM pauses the VM and hands over its state
 * (BLACKOUT). */
static int
src_pause_vm(struct migration *m)
{
	if (m->vm == NULL || vm_send_pause(m->vm) < 0) {
		src_fail(m, "cannot ask the VMM to pause");
		return -1;
	}
	m->src->pause_ns = now_ns();
	mig_set_state(m, MIG_BLACKOUT, NULL);
	return 0;
}

static int
src_msg(struct pconn *c, struct migration *m, const Migrationd__Peer__V1__PeerMsg *msg)
{
	switch (msg->msg_case) {
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING:
		return 0;	/* its arrival reset the liveness timer */
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME:
		if (c == m->urgent && m->src->resuming &&
		    m->state == MIG_PAUSED) {
			src_streams(m, msg->welcome->max_streams);
			peer_live(c);
			peer_heartbeat(m);
			return 0;	/* Resync follows */
		}
		if (c != m->urgent || m->state != MIG_CONNECTING ||
		    msg->welcome->session_key.len != sizeof(m->session_key))
			break;
		memcpy(m->session_key, msg->welcome->session_key.data, sizeof(m->session_key));
		cz_peer(m, msg->welcome->decodes);
		src_streams(m, msg->welcome->max_streams);
		peer_live(c);
		peer_heartbeat(m);
		if (src_dial_bg(m) < 0) {
			src_fail(m, "cannot open the background channel");
			return -1;
		}
		if (pc_begin(m))
			return 0;	/* the switch-over comes after pre-copy */
		return src_pause_vm(m);
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_RESYNC:
		if (c != m->urgent || !m->src->resuming ||
		    msg->resync->installed.len != (m->npages + 7) / 8)
			break;
		if (m->state_sent && msg->resync->precopy) {
			/* The state was lost on the way (or in its restart). */
			const char *why = "the destination resumed without the VM "
			    "state: the VM never ran there";

			src_abort(m, why);
			src_state_lost(m, why);
			return -1;
		}
		if (!m->state_sent && !msg->resync->precopy)
			break;	/* a post-copy this side never began */
		src_resync(m, msg->resync->installed.data, msg->resync->precopy);
		return 0;
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE: {
		char why[300];

		snprintf(why, sizeof(why), "destination refused: %s", msg->refuse->reason);
		if (m->state_sent && msg->refuse->never_ran && !msg->refuse->vm_lost) {
			/* Its state never arrived there: the VM runs on here. */
			src_state_lost(m, why);
			return -1;
		}
		if (m->state_sent && msg->refuse->vm_lost) {
			/* It ran there and is gone: this copy is stale. */
			mig_set_state(m, MIG_FAILED, "%s", why);
			if (m->vm != NULL)
				vm_send_failed(m->vm, why);
			session_finish(m);
			return -1;
		}
		if (m->state_sent || (m->state == MIG_PAUSED && !msg->refuse->never_ran &&
		    !msg->refuse->vm_lost)) {
			/* The VM may run there: never give up on it from here
			 * (pre-copy: precopy_recovery bounds the wait). */
			src_conn_lost(c, why);
			peer_close(c, 0);
			return -1;
		}
		src_fail(m, why);
		return -1;
	}
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_RUNNING:
		if (m->state != MIG_BLACKOUT || !m->state_sent)
			break;
		m->st.blackout_ms = (double)(now_ns() - m->src->pause_ns) / 1e6;
		mig_set_state(m, MIG_POSTCOPY, NULL);
		log_info("migration %s: VM runs on the destination, blackout %.1f ms",
		    m->id, m->st.blackout_ms);
		src_bg_kick(m);
		return 0;
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_COMPLETE:
		/* Complete wins over a background channel that closed first;
		 * never before the VM state went (a pre-copy pause). */
		if ((m->state != MIG_POSTCOPY && m->state != MIG_PAUSED) || !m->state_sent)
			break;
		mig_set_state(m, MIG_COMPLETED, NULL);
		src_log_done(m);
		if (m->vm != NULL)
			vm_send_completed(m->vm);
		session_finish(m);
		return -1;
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT: {
		char why[300];

		snprintf(why, sizeof(why), "destination aborted: %s", msg->abort->reason);
		/* The destination says its VM never ran: safe to resume here. */
		if (!m->state_sent || (m->state == MIG_BLACKOUT && !msg->abort->vm_lost)) {
			src_fail(m, why);
		} else if (msg->abort->vm_lost) {
			/* It ran there and is gone: this copy is stale, never resumed. */
			mig_set_state(m, MIG_FAILED, "%s", why);
			if (m->vm != NULL)
				vm_send_failed(m->vm, why);
			session_finish(m);
		} else {
			mig_set_state(m, MIG_PAUSED, "%s", why);
			peer_close(c, 0);
		}
		return -1;
	}
	default:
		break;
	}
	return session_unexpected(c, (int)msg->msg_case);
}

static int
src_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload)
{
	struct migration *m = c->mig;
	Migrationd__Peer__V1__PeerMsg *msg;
	const char *why;
	int rc;

	switch (h->type) {
	case FRAME_MSG:
		if ((msg = ctlmsg_decode_peer(payload, h->len, &why)) == NULL)
			break;
		rc = src_msg(c, m, msg);
		migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
		return rc;
	case FRAME_REQ:
		/* Range already checked by frame_decode against this VM. */
		if (c != m->urgent || !m->state_sent) {
			why = "page request before the VM state was sent";
			break;
		}
		if (src_send_pages(m, c, h->index, h->count, 1) < 0) {
			why = "cannot queue demand pages";
			break;
		}
		/* Stream on from here; a guest walking memory in order (a
		 * prefetch, or it caught up with the stream) goes ahead of the
		 * hot list for SRC_FOLLOW_BYTES; a lone page ends it. */
		m->src->bg_cursor = h->index + h->count;
		m->src->follow = h->count > 1 || (h->index > 0 &&
		    bitmap_test(m->src->sent, h->index - 1)) ?
		    SRC_FOLLOW_BYTES / m->page_size + 1 : 0;
		return 0;
	default:
		why = "unexpected frame type at the source";
		break;
	}
	return session_error(c, why);
}

static void
src_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;

	if (m->state != MIG_PAUSED || m->urgent != NULL)
		return;
	m->src->resuming = 1;
	log_info("migration %s: reconnecting to %s", m->id, m->peer);
	m->urgent = peer_connect(m, m->peer, MIGRATIOND__PEER__V1__CHANNEL__URGENT);
	if (m->urgent == NULL) {
		snprintf(m->reason, sizeof(m->reason), "link to %s down: %s; reconnecting",
		    m->peer, peer_connect_error());
		mig_save(m);
		src_schedule_retry(m);
	}
}

static void	/* the operator's recover */
src_redial(struct migration *m)
{
	src_retry_cb(-1, 0, m);
}

/* Reconnect after a back-off that doubles up to MIG_RETRY_MAX_MS. */
static void
src_schedule_retry(struct migration *m)
{
	struct timeval tv;

	if (m->src->ev_retry == NULL &&
	    (m->src->ev_retry = evtimer_new(D->base, src_retry_cb, m)) == NULL) {
		/* Stays PAUSED: `mig-ctl recover` tries again. */
		log_warnx("migration %s: cannot schedule a reconnect: out of memory", m->id);
		return;
	}
	m->src->retry_ms = m->src->retry_ms ? m->src->retry_ms * 2 : MIG_RETRY_MIN_MS;
	if (m->src->retry_ms > MIG_RETRY_MAX_MS)
		m->src->retry_ms = MIG_RETRY_MAX_MS;
	tv.tv_sec = m->src->retry_ms / 1000;
	tv.tv_usec = (m->src->retry_ms % 1000) * 1000;
	evtimer_add(m->src->ev_retry, &tv);
}

/*
 * The destination says which pages it has: everything else goes again
 * (what was in flight on the lost connections may never have arrived).
 * Before the VM state left, pre-copy goes on (precopy_resume.c).
 */
static void
src_resync(struct migration *m, const uint8_t *installed, int precopy)
{
	uint64_t n = 0;

	m->src->resuming = 0;
	m->src->retry_ms = 0;
	m->st.reconnects++;
	m->reason[0] = '\0';
	if (precopy) {
		pc_resync(m, installed);
	} else {
		for (uint64_t i = 0; i < m->npages; i++) {
			if (installed[i / 8] & (1u << (i % 8))) {
				bitmap_set(m->src->sent, i);
				n++;
			} else {
				bitmap_clear(m->src->sent, i);
			}
		}
		m->src->nsent = n;
		m->src->bg_cursor = 0;
		mig_set_state(m, MIG_POSTCOPY, NULL);
		log_info("migration %s: resumed: destination has %llu of %llu pages", m->id,
		    (unsigned long long)n, (unsigned long long)m->npages);
	}
	if (src_dial_bg(m) < 0 && m->urgent != NULL)
		src_conn_lost(m->urgent, "cannot open the background channel");
}

/*
 * After a restart of this daemon the source VMM attached again: map its RAM
 * and reconnect; the destination's Resync says what it still needs.
 */
static void
src_reattach(struct migration *m)
{
	if ((m->src->memfd = fcntl(m->vm->memfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(m->reason, sizeof(m->reason), "cannot keep guest RAM: %m");
		return;
	}
	if ((m->src->sent = bitmap_new(m->npages)) == NULL ||
	    (!m->state_sent && pc_reattach(m) < 0)) {
		snprintf(m->reason, sizeof(m->reason), "out of memory");
		return;
	}
	if (!m->state_sent)
		pc_lost(m);	/* pre-copy: bounded by precopy_recovery */
	m->src->retry_ms = 0;
	snprintf(m->reason, sizeof(m->reason), "daemon restarted; VM re-attached; "
	    "reconnecting to %s", m->peer);
	src_schedule_retry(m);
}

/* A loss fails it (the VM runs on here); in pre-copy it reconnects. */
static int
src_early(const struct migration *m)
{
	const struct src_pc *pc = &m->src->pc;

	return !m->state_sent && m->state != MIG_PAUSED && !(m->state == MIG_PRECOPY &&
	    pc->tracking != PC_TRACK_NONE && !pc->switching && !pc->window);
}

static void
src_paused(struct migration *m, const char *why, int was_paused)
{
	if (was_paused)
		snprintf(m->reason, sizeof(m->reason), "link to %s down: %s; reconnecting "
		    "(back-off %u ms)", m->peer, why, m->src->retry_ms);
	m->src->resuming = 0;
	if (!m->state_sent)
		pc_lost(m);
	if (!m->src->held && (m->src->ev_retry == NULL ||
	    !evtimer_pending(m->src->ev_retry, NULL)))
		src_schedule_retry(m);
}

static void
src_early_what(const struct migration *m, char *buf, size_t len)
{
	snprintf(buf, len, "connection to %s lost before the VM state was sent", m->peer);
}

static const struct session_policy src_policy = {
	.early = src_early,
	.fail = src_fail,
	.early_what = src_early_what,
	.dir = "to",
	.then = "reconnecting",
	.paused = src_paused,
};

static void
src_conn_lost(struct pconn *c, const char *why)
{
	struct migration *m = c->mig;

	/* The first dial failed: its reason (peer.c's words) is the story. */
	if (m != NULL && c == m->urgent && !c->hello_sent && !m->state_sent &&
	    m->state == MIG_CONNECTING) {
		peer_detach(c);	/* the caller frees c */
		src_fail(m, why);
		return;
	}
	session_lost(c, why, &src_policy);
}

/*
 * The source VMM's connection closed. Before the VM state left, the
 * migration cannot go on: it fails and the destination is told. After, the
 * daemon has the RAM it serves (its own fd): nothing changes.
 */
static void
src_vm_gone(struct migration *m, const char *why)
{
	char buf[300];

	if (m->state_sent) {
		log_info("migration %s: source VMM went away (%s); its RAM stays served "
		    "until the migration completes", m->id, why);
		return;
	}
	snprintf(buf, sizeof(buf), "source VMM went away before the switch-over (%s)", why);
	log_warnx("migration %s: %s", m->id, buf);
	src_abort(m, buf);
	mig_set_state(m, MIG_FAILED, "%s", buf);
	session_finish(m);
}

/* A record of a running source migration came back after a restart. */
void
src_revive(struct migration *m)
{
	if (src_state_new(m) < 0)
		log_warnx("migration %s: out of memory reviving it", m->id);
}

const struct mig_ops src_ops = {
	.name = "source",
	.frame = src_frame,
	.conn_lost = src_conn_lost,
	.connected = src_connected,
	.bulk = src_bg_writable,
	.vm_state = src_vm_state,
	.dirty = pc_dirty,
	.reattach = src_reattach,
	.vm_gone = src_vm_gone,
	.release = src_release,
};
