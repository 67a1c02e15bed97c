/*
 * dest: the destination role's session. Prepares an incoming migration
 * (one-time token), authenticates the source's channels (peer_listen's
 * Hello handler), hands the VMM its state blob and starts the fault engine
 * (fault.c), takes the source back after a lost link (Resync), completes
 * once every page is installed, and cancels before the VM state arrived.
 * The fault engine and the installer (install.c) sit below it. Loop thread
 * only.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "ctlmsg.h"
#include "dest.h"
#include "fault.h"
#include "install.h"
#include "place.h"
#include "latency.h"
#include "log.h"
#include "peer.h"
#include "session.h"
#include "tls.h"
#include "util.h"
#include "vm.h"

extern const struct mig_ops dst_ops;
static int dst_resume(struct pconn *c, const Migrationd__Peer__V1__Hello *h);
static void dst_complete(struct migration *m);
static void dst_send_abort(struct migration *m, const char *why, int vm_lost);
static int dst_check_complete(struct migration *m);
static void dst_vm_lost(struct migration *m, const char *why);
static void dst_conn_lost(struct pconn *c, const char *why);
static void dst_fail(struct migration *m, const char *why);

/* How this VM's faults arrive and its pages go in, for status and records. */
static void
dst_paths(struct migration *m, const struct vm *v)
{
	snprintf(m->fault_path, sizeof(m->fault_path), "%s", v->ring_mode ? "ring" : "uffd");
	snprintf(m->install_mode, sizeof(m->install_mode), "%s", v->minor ? "minor" : "copy");
}

/* The role's state of a new or revived destination migration. -1: no memory. */
static int
dst_state_new(struct migration *m)
{
	if ((m->dst = calloc(1, sizeof(*m->dst))) == NULL)
		return -1;
	m->ops = &dst_ops;
	return 0;
}

static void
dst_release(struct migration *m)
{
	if (m->dst == NULL)
		return;
	if (m->dst->ev_unused != NULL)
		event_free(m->dst->ev_unused);
	fault_release(m);
	inst_release(m);
	cz_release(m);
	free(m->dst);
	m->dst = NULL;
}

/* A prepared migration that cannot go on: failed, released, and said why. */
static int
dst_prepare_failed(struct migration *m, char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	mig_set_state(m, MIG_FAILED, "%s", why);
	session_finish(m);
	return -1;
}

int
dst_prepare(struct vm *v, const char *from, struct migration **out, char *err,
    size_t errlen)
{
	struct migration *m;
	uint8_t rnd[32];
	char why[400];

	if (!v->dest) {
		snprintf(err, errlen, "VM %s is not an incoming VM (start its VMM with "
		    "--incoming)", v->name);
		return -1;
	}
	/* A prepare again with no source yet (the orchestrator lost the
	 * token): the new one replaces it. Its VMM holds v while it ends. */
	if (v->mig != NULL && v->mig->state == MIG_PREPARED && v->sock >= 0) {
		mig_set_state(v->mig, MIG_CANCELLED, "replaced by a new prepare of VM %s",
		    v->name);
		session_finish(v->mig);
	}
	if (v->mig != NULL && mig_active(v->mig)) {
		snprintf(err, errlen, "VM %s already has migration %s in state %s",
		    v->name, v->mig->id, mig_state_name(v->mig->state));
		return -1;
	}
	if (tls_random(rnd, sizeof(rnd)) < 0 ||
	    (m = mig_new(v->name, MIG_DEST, v->ram_bytes, v->page_size)) == NULL) {
		snprintf(err, errlen, "out of memory or entropy");
		return -1;
	}
	vm_bind(v, m);
	if (dst_state_new(m) < 0 || fault_init(m) < 0 || inst_init(m) < 0)
		return dst_prepare_failed(m, err, errlen, "out of memory");
	if (dst_unused_arm(m) < 0)
		return dst_prepare_failed(m, err, errlen, "out of memory");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(m->token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(m->from, sizeof(m->from), "%s", from != NULL ? from : "");
	dst_paths(m, v);
	/* Pages an earlier attempt left (a pre-copy that never switched over)
	 * must not pass for this migration's: the guest never ran here. */
	if (inst_clear(m) < 0)
		return dst_prepare_failed(m, err, errlen, "cannot empty the VM's RAM");
	if (v->minor && inst_journal_new(m) < 0) {
		snprintf(why, sizeof(why), "cannot create the install journal under %s: %s",
		    D->conf.state_dir, strerror(errno));
		return dst_prepare_failed(m, err, errlen, why);
	}
	m->state = MIG_PREPARED;
	m->never_ran = 1;	/* until its VM state arrives */
	log_info("migration %s: vm %s prepared for incoming migration%s%s (%s)", m->id,
	    v->name, m->from[0] ? " from " : "", m->from, v->minor ? "minor mode: page cache + UFFDIO_CONTINUE" :
	    "copy mode: UFFDIO_COPY");
	*out = m;
	return 0;
}

/* The migration a token was made for, compared in constant time. A
 * finished one (expired, replaced, cancelled) keeps its token until its
 * record goes, so the source learns why it is refused. */
static struct migration *
dst_by_token(const char *token)
{
	size_t n = strlen(token);
	struct migration *m;

	TAILQ_FOREACH(m, &mig_all, entry) {
		if (m->role != MIG_DEST || m->token[0] == '\0' || strlen(m->token) != n)
			continue;
		if (CRYPTO_memcmp(m->token, token, n) == 0)
			return m;
	}
	return NULL;
}

/* The active destination migration a session key names (resuming: one
 * whose VM state arrived), or NULL. */
static struct migration *
dst_by_key(const ProtobufCBinaryData *key, int resuming)
{
	struct migration *m;

	TAILQ_FOREACH(m, &mig_all, entry) {
		if (m->role != MIG_DEST || !mig_active(m) || m->dst == NULL ||
		    key->len != sizeof(m->session_key) ||
		    (resuming && m->dst->state_rx_ns == 0 && !(m->never_ran &&
		    (m->state == MIG_PAUSED || m->state == MIG_PRECOPY))) ||
		    (!resuming && m->urgent == NULL))
			continue;
		if (CRYPTO_memcmp(m->session_key, key->data, sizeof(m->session_key)) == 0)
			return m;
	}
	return NULL;
}

/*
 * A migration prepared --from NAME takes only a source whose certificate
 * carries NAME (tls_bev_matches). Another is refused, the refusal logged;
 * the token is not spent, so the right source can still use it, and no
 * number of wrong attempts invalidates it (that would let any holder of a
 * fleet certificate who saw the token cancel the migration); it still
 * expires after [peer] token_ttl. 1 if `c` may go on.
 */
static int
dst_source_ok(struct pconn *c, struct migration *m, const char *what)
{
	char who[256], why[700];

	if (m->from[0] == '\0' || tls_bev_matches(c->bev, m->from))
		return 1;
	tls_bev_identity(c->bev, who, sizeof(who));
	snprintf(why, sizeof(why), "this migration may only come from %s; you are %s",
	    m->from, who[0] ? who : "without a certificate");
	log_warnx("migration %s: %s from %s refused: source %s is not %s", m->id, what,
	    c->addr, who[0] ? who : "(no certificate)", m->from);
	peer_refuse(c, why);
	return 0;
}

/* Why the source's Hello does not fit prepared migration `m` ("" if it does). */
static void
dst_mismatch(const struct migration *m, const Migrationd__Peer__V1__Hello *h,
    char *why, size_t len)
{
	if (m->vm == NULL || m->vm->sock < 0)
		snprintf(why, len, "incoming VM %s is gone", m->vm_name);
	else if (strcmp(h->vm, m->vm_name) != 0)
		snprintf(why, len, "token is for VM %s, not %s", m->vm_name, h->vm);
	else if (h->ram_bytes != m->ram_bytes || h->page_size != m->page_size)
		snprintf(why, len, "VM %s has %llu bytes in %u-byte pages here, "
		    "source offers %llu in %u", m->vm_name, (unsigned long long)m->ram_bytes,
		    m->page_size, (unsigned long long)h->ram_bytes, h->page_size);
	else
		why[0] = '\0';
}

int
dst_hello(struct pconn *c, const Migrationd__Peer__V1__Hello *h)
{
	struct migration *m;
	char why[400];

	if (h->version != MIG_PEER_VERSION)
		return peer_refuse(c, "unsupported protocol version");
	if (h->channel == MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND) {
		/* Streams 0 .. [peer] streams - 1, as Welcome.max_streams said. */
		if (h->stream >= (uint32_t)D->conf.streams) {
			snprintf(why, sizeof(why), "background stream %u: this destination "
			    "takes %d ([peer] streams)", h->stream, D->conf.streams);
			return peer_refuse(c, why);
		}
		if ((m = dst_by_key(&h->session_key, 0)) == NULL)
			return peer_refuse(c, "no migration for this session key");
		if (*peer_bg_slot(m, h->stream) != NULL) {
			snprintf(why, sizeof(why), "background stream %u of migration %s is "
			    "connected already", h->stream, m->id);
			return peer_refuse(c, why);
		}
		c->stream = h->stream;
		peer_bind(c, m, h->channel);
		if (h->stream + 1 > m->st.streams)
			m->st.streams = h->stream + 1;
		log_info("migration %s: background channel %u from %s", m->id, h->stream, c->addr);
		return 0;
	}
	if (h->channel != MIGRATIOND__PEER__V1__CHANNEL__URGENT)
		return peer_refuse(c, "unknown channel");
	if (h->resume)
		return dst_resume(c, h);
	if (h->token == NULL || (m = dst_by_token(h->token)) == NULL)
		return peer_refuse(c, "unknown or already used token");
	/* Bound to one source: another's attempt leaves the token as it was. */
	if (!dst_source_ok(c, m, "token"))
		return -1;
	/* One use, whatever follows. */
	memset(m->token, 0, sizeof(m->token));
	if (!mig_active(m)) {
		snprintf(why, sizeof(why), "token of migration %s, which is %s: %s", m->id,
		    mig_state_name(m->state), m->reason);
		return peer_refuse(c, why);
	}
	if (m->state != MIG_PREPARED)
		return peer_refuse(c, "migration is not waiting for a source");
	if (now_ms() > m->dst->token_expires_ms)
		snprintf(why, sizeof(why), "token expired");
	else
		dst_mismatch(m, h, why, sizeof(why));
	if (why[0] != '\0') {
		mig_set_state(m, MIG_FAILED, "%s", why);
		session_finish(m);
		return peer_refuse(c, why);
	}
	if (tls_random(m->session_key, sizeof(m->session_key)) < 0)
		return peer_refuse(c, "no entropy");
	peer_bind(c, m, h->channel);
	snprintf(m->peer, sizeof(m->peer), "%s", c->addr);
	session_identities(c, m);
	session_welcome(c, m);
	mig_set_state(m, MIG_CONNECTING, NULL);
	log_info("migration %s: source %s [%s] (its migration %s) authenticated", m->id,
	    c->addr, m->src_ident[0] ? m->src_ident : "no certificate: TLS off",
	    h->source_migration_id);
	peer_heartbeat(m);
	return 0;
}

/*
 * The source comes back after a lost link with the session key of a paused
 * migration: tell it which pages are installed (it sends everything else
 * again) and ask again for the pages threads wait on.
 */
static int
dst_resume(struct pconn *c, const Migrationd__Peer__V1__Hello *h)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Resync rs = MIGRATIOND__PEER__V1__RESYNC__INIT;
	struct migration *m;

	if ((m = dst_by_key(&h->session_key, 1)) == NULL)
		return dst_resume_ended(c, &h->session_key);
	if (!dst_source_ok(c, m, "resume"))
		return -1;
	if (m->vm == NULL || m->dst->installed == NULL)
		return peer_refuse(c, "the VM's VMM has not re-attached yet");
	/* The source saw the link die before we did: its word is enough. */
	if (m->urgent != NULL) {
		struct pconn *old = m->urgent;

		dst_conn_lost(old, "replaced by the source's new connection");
		peer_close(old, 0);
	}
	peer_bg_close(m, NULL, 0);
	peer_bind(c, m, MIGRATIOND__PEER__V1__CHANNEL__URGENT);
	snprintf(m->peer, sizeof(m->peer), "%s", c->addr);
	session_identities(c, m);
	session_welcome(c, m);
	/* The bitmap is little-endian words on x86: bytes in page order. */
	rs.installed.data = (uint8_t *)m->dst->installed;
	rs.installed.len = (m->npages + 7) / 8;
	rs.precopy = m->never_ran;	/* before the VM state: pre-copy goes on */
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_RESYNC;
	msg.resync = &rs;
	peer_send_msg(c, &msg);
	if (!m->never_ran)
		fault_rerequest(m);
	else if (m->dst->ev_unused != NULL)
		evtimer_del(m->dst->ev_unused);
	m->st.reconnects++;
	m->reason[0] = '\0';
	mig_set_state(m, m->never_ran ? MIG_PRECOPY : m->dst->ev_uffd != NULL ?
	    MIG_POSTCOPY : MIG_BLACKOUT, NULL);
	peer_heartbeat(m);
	log_info("migration %s: source %s is back; %llu of %llu pages installed",
	    m->id, c->addr, (unsigned long long)m->st.pages_installed,
	    (unsigned long long)m->npages);
	/* Everything arrived before the link broke? Then c drains (or, with
	 * [debug] lose_complete, is gone): not ours to touch again. */
	return dst_check_complete(m);
}

/*
 * After a restart of this daemon the VMM attached again with the same memfd
 * and uffd: the installer rebuilds which pages are in guest RAM, the fault
 * engine serves its faults again, and the source's reconnect resumes it.
 */
static void
dst_reattach(struct migration *m)
{
	struct vm *v = m->vm;
	int64_t n;

	if (m->dst == NULL || fault_init(m) < 0) {
		dst_vm_lost(m, "out of memory re-attaching the VM");
		return;
	}
	dst_paths(m, v);
	if (m->never_ran) {
		if (dst_precopy_reattach(m) < 0)
			dst_vm_lost(m, m->reason);
		return;
	}
	if ((n = inst_rebuild(m)) < 0) {
		char why[300];

		snprintf(why, sizeof(why), "daemon restarted and cannot tell which pages "
		    "are in guest RAM (%s: %s); the VM cannot go on safely",
		    errno == ENOENT ? "its installed set is missing from the state directory" :
		    "recovering the installed set", strerror(errno));
		dst_vm_lost(m, why);
		return;
	}
	m->dst->state_rx_ns = now_ns();
	if (m->lat_slot < 0)
		m->lat_slot = lat_begin(m->num);
	if (fault_start(m, 1) < 0) {
		dst_vm_lost(m, "out of memory re-attaching the VM");
		return;
	}
	fault_wake_all(m);
	snprintf(m->reason, sizeof(m->reason), "daemon restarted; VM re-attached with "
	    "%llu of %llu pages present; waiting for the source to reconnect",
	    (unsigned long long)n, (unsigned long long)m->npages);
	log_info("migration %s: %s", m->id, m->reason);
	mig_save(m);
}

static void
dst_send_abort(struct migration *m, const char *why, int vm_lost)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Abort a = MIGRATIOND__PEER__V1__ABORT__INIT;

	if (m->urgent == NULL)
		return;
	a.reason = (char *)(uintptr_t)why;
	a.vm_lost = vm_lost;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT;
	msg.abort = &a;
	peer_send_msg(m->urgent, &msg);
}

/*
 * Completes once the installed set is full, never by counting: on shmem the
 * page cache is asked once more, and a page missing there is fetched again
 * first. -1 if it completed (the channels are draining), else 0.
 */
static int
dst_check_complete(struct migration *m)
{
	/* Not before the VM runs here: pre-copy may bring every page first. */
	if (m->dst->ninstalled < m->npages || m->never_ran || m->state == MIG_BLACKOUT)
		return 0;
	if (inst_missing(m) > 0) {
		fault_refetch_missing(m);
		return 0;
	}
	dst_complete(m);
	return -1;
}

/*
 * The migration cannot go on here after the VM state arrived (or before):
 * the VM is lost here, so the source must not wait for it (or, before the
 * switch-over, resumes it). Failed, released, the VMM told why.
 */
static void
dst_vm_lost(struct migration *m, const char *why)
{
	char buf[sizeof(m->reason) + 20];
	int lost = !m->never_ran;

	/* why may be m->reason */
	snprintf(buf, sizeof(buf), "%s%s", why, lost && !strstr(why, "the VM is lost") ?
	    ": the VM is lost" : "");
	dst_send_abort(m, buf, lost);
	/* As with Complete: the source closes both channels once it reads
	 * Abort; closing them here could show it the background EOF first. */
	if (m->urgent != NULL)
		peer_drain(m->urgent);
	peer_bg_drain(m);
	if (m->vm != NULL)
		vm_send_failed(m->vm, buf);
	mig_set_state(m, MIG_FAILED, "%s", buf);
	session_finish(m);
}

static void
dst_complete(struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Complete cm = MIGRATIOND__PEER__V1__COMPLETE__INIT;
	const struct mig_stats *st = &m->st;
	struct vm *v = m->vm;

	cm.pages_installed = st->pages_installed;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_COMPLETE;
	msg.complete = &cm;
	/* The source closes both channels once it reads Complete: closing
	 * them here could show it the background EOF first. */
	if (m->urgent != NULL && D->conf.lose_complete)
		peer_close(m->urgent, 0);	/* [debug]: as if the link went now */
	else if (m->urgent != NULL) {
		peer_send_msg(m->urgent, &msg);
		peer_drain(m->urgent);
	}
	peer_bg_drain(m);
	/* Every page is present: release whoever is still posted or taken. */
	fault_release_slots(m);
	mig_set_state(m, MIG_COMPLETED, NULL);
	log_info("migration %s: completed: %llu pages installed (%llu demand, %llu "
	    "background, %llu zero), %llu demand faults, p50 %.1f us p99 %.1f us, "
	    "%llu EEXIST, %llu install errors, %llu pages prefetched, %llu sequential "
	    "faults", m->id,
	    (unsigned long long)st->pages_installed, (unsigned long long)st->pages_demand,
	    (unsigned long long)st->pages_background, (unsigned long long)st->pages_zero,
	    (unsigned long long)st->demand_faults,
	    (double)hist_quantile(&st->lat, 0.5) / 1e3,
	    (double)hist_quantile(&st->lat, 0.99) / 1e3,
	    (unsigned long long)st->install_eexist, (unsigned long long)st->install_errors,
	    (unsigned long long)st->prefetch_pages, (unsigned long long)st->prefetch_hits);
	if (v != NULL) {
		/* The VM now runs here with all its memory: it may migrate on. */
		vm_send_completed(v);
		if (v->uffd >= 0) {
			close(v->uffd);
			v->uffd = -1;
		}
		v->dest = 0;
	}
	session_finish(m);
}

/*
 * After pre-copy: every page the source wrote since it sent it is made
 * missing again before the guest may run here (runs: first, count pairs).
 * `early`: the switch-over's head start (Precopy with `stale`), the pages
 * stale as the source pauses its VM, dropped while it pauses; the VmState
 * lists them again (skipped then: not installed). 0, or -1 (failed).
 */
static int
dst_invalidate(struct migration *m, const uint64_t *runs, size_t nruns, int early)
{
	int64_t t0 = now_ns();
	const char *why;
	uint64_t n;

	if (inst_invalidate_list(m, runs, nruns, &n, &why) < 0) {
		dst_send_abort(m, why, 0);
		dst_fail(m, why);
		return -1;
	}
	if (early) {
		m->dst->stale_early += n;
		log_info("migration %s: switching over: %llu stale pages made missing "
		    "ahead of the VM state in %.1f ms", m->id, (unsigned long long)n,
		    (double)(now_ns() - t0) / 1e6);
		return 0;
	}
	m->st.pages_invalidated = n + m->dst->stale_early;
	log_info("migration %s: pre-copy over: %llu pages received, %llu stale ones made "
	    "missing again in %.1f ms, %llu of %llu pages present", m->id,
	    (unsigned long long)m->st.pages_precopy, (unsigned long long)n,
	    (double)(now_ns() - t0) / 1e6, (unsigned long long)m->dst->ninstalled,
	    (unsigned long long)m->npages);
	return 0;
}

/* The VM state arrived: the VMM starts the guest, faults come from now on. */
static int
dst_vm_state(struct pconn *c, struct migration *m, const Migrationd__Peer__V1__VmState *vs)
{
	if (vs->precopy && dst_invalidate(m, vs->stale, vs->n_stale, 0) < 0)
		return -1;
	/* Kept before the VMM may run it: a resume after a failure from here
	 * on is told the VM is lost, never that it did not run. */
	m->never_ran = 0;
	mig_save(m);
	m->dst->state_rx_ns = now_ns();
	if (m->vm == NULL || vm_send_start(m->vm, vs->blob.data, vs->blob.len) < 0) {
		dst_send_abort(m, "destination VMM is not reachable", 0);
		mig_set_state(m, MIG_FAILED, "cannot hand the state to the VMM");
		session_finish(m);
		return -1;
	}
	if (m->lat_slot < 0)
		m->lat_slot = lat_begin(m->num);
	if (fault_start(m, 0) < 0) {
		dst_vm_lost(m, "out of memory starting the fault engine");
		return -1;
	}
	mig_set_state(m, MIG_BLACKOUT, NULL);
	return 0;
}

static int
dst_msg(struct pconn *c, struct migration *m, const Migrationd__Peer__V1__PeerMsg *msg)
{
	switch (msg->msg_case) {
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING:
		return 0;	/* its arrival reset the liveness timer */
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_PRECOPY:
		/* Ahead of the first pre-copied page, on the background channel. */
		if (c != m->bg || (m->state != MIG_CONNECTING && m->state != MIG_PRECOPY))
			break;
		/* Again at the switch-over, with the pages stale already. */
		if (msg->precopy->n_stale > 0)
			return m->state == MIG_PRECOPY ?
			    dst_invalidate(m, msg->precopy->stale, msg->precopy->n_stale, 1) :
			    session_unexpected(c, (int)msg->msg_case);
		mig_set_state(m, MIG_PRECOPY, NULL);
		return 0;
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE:
		/* After pre-copy it comes behind the pre-copied pages, on the
		 * background channel. */
		if (msg->vm_state->precopy != (c == m->bg) ||
		    (m->state != MIG_CONNECTING && m->state != MIG_PRECOPY) ||
		    (msg->vm_state->precopy && m->state != MIG_PRECOPY))
			break;
		return dst_vm_state(c, m, msg->vm_state);
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT:
		if (m->never_ran || msg->abort->vm_lost) {
			mig_set_state(m, MIG_FAILED, "source aborted: %s", msg->abort->reason);
			if (m->vm != NULL)
				vm_send_failed(m->vm, m->reason);
			session_finish(m);
		} else {
			mig_set_state(m, MIG_PAUSED, "source aborted: %s", msg->abort->reason);
			peer_close(c, 0);
		}
		return -1;
	default:
		break;
	}
	return session_unexpected(c, (int)msg->msg_case);
}

static int
dst_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload)
{
	struct migration *m = c->mig;
	Migrationd__Peer__V1__PeerMsg *msg;
	const char *why = "unexpected frame type at the destination";
	int rc;

	switch (h->type) {
	case FRAME_MSG:
		if ((msg = ctlmsg_decode_peer(payload, h->len, &why)) == NULL)
			break;
		/* The background channel carries two messages: Precopy ahead of
		 * the first pre-copied page, and the state after pre-copy. */
		if (c != m->urgent && msg->msg_case != MIGRATIOND__PEER__V1__PEER_MSG__MSG_PRECOPY &&
		    (msg->msg_case != MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE ||
		    !msg->vm_state->precopy)) {
			migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
			why = "control message on the background channel";
			break;
		}
		rc = dst_msg(c, m, msg);
		migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
		return rc;
	case FRAME_PAGES:
		/* Streams past 0 carry post-copy pages only (pre-copy: stream 0). */
		if (c != m->urgent && c != m->bg &&
		    (m->state == MIG_CONNECTING || m->state == MIG_PRECOPY)) {
			why = "pages on a background stream past the first before the VM state";
			break;
		}
		if ((payload = cz_inflate(m, &h, payload, &why)) == NULL)
			break;	/* nothing of it installed; this connection closes */
		/* Background pages may overtake the VM state (two connections);
		 * installing them early is fine: the guest is not running yet.
		 * Pre-copied pages too: the state lists those gone stale. */
		if (m->state == MIG_PRECOPY && c == m->bg) {
			/* A later round's copy replaces the earlier one. */
			if (inst_invalidate(m, h->index, h->count) == UINT64_MAX) {
				dst_send_abort(m, "destination cannot drop a re-sent page", 0);
				dst_fail(m, "cannot drop a pre-copied page sent again");
				return -1;
			}
			/* Counted as fault_deliver takes them: within RAM. */
			if (h->index < m->npages)
				m->st.pages_precopy += h->count < m->npages - h->index ?
				    h->count : m->npages - h->index;
		}
		if (fault_deliver(m, h, payload, c == m->urgent) < 0) {
			if (mig_active(m))
				dst_vm_lost(m, m->reason);
			return -1;
		}
		return dst_check_complete(m);
	default:
		break;
	}
	return session_error(c, why);
}

/* Pre-copy is not early: the source reconnects, bounded by precopy_recovery. */
static int
dst_early(const struct migration *m)
{
	return m->state == MIG_CONNECTING;
}

static void
dst_fail(struct migration *m, const char *why)
{
	if (m->vm != NULL)
		vm_send_failed(m->vm, why);
	mig_set_state(m, MIG_FAILED, "%s", why);
	session_finish(m);
}

/* Nothing ran here yet; the source resumes its VM. */
static void
dst_early_what(const struct migration *m, char *buf, size_t len)
{
	snprintf(buf, len, "source connection lost before the VM state arrived");
}

static const struct session_policy dst_policy = {
	.early = dst_early,
	.fail = dst_fail,
	.early_what = dst_early_what,
	.dir = "from",
	.then = "waiting for the source to reconnect",
	.paused = dst_precopy_paused,
};

static void
dst_conn_lost(struct pconn *c, const char *why)
{
	session_lost(c, why, &dst_policy);
}

static void
dst_vm_running(struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Running r = MIGRATIOND__PEER__V1__RUNNING__INIT;

	if (m->state != MIG_BLACKOUT) {
		log_warnx("vm %s: running report with no migration waiting for it", m->vm_name);
		return;
	}
	m->st.blackout_ms = (double)(now_ns() - m->dst->state_rx_ns) / 1e6;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_RUNNING;
	msg.running = &r;
	if (m->urgent != NULL)
		peer_send_msg(m->urgent, &msg);
	mig_set_state(m, MIG_POSTCOPY, NULL);
	/* Pre-copy may have brought every page already. */
	dst_check_complete(m);
}

/*
 * Cancel on the destination: only before the VM state arrived (prepared, or
 * authenticated but nothing ran here); the source then resumes its VM.
 */
int
dst_cancel(struct migration *m, char *err, size_t errlen)
{
	if (m->role != MIG_DEST || !m->never_ran || !mig_active(m)) {
		snprintf(err, errlen, "migration %s is %s: only a destination migration that "
		    "has not received the VM state can be cancelled", m->id,
		    mig_state_name(m->state));
		return -1;
	}
	dst_send_abort(m, "cancelled by the destination's operator", 0);
	mig_set_state(m, MIG_CANCELLED, "cancelled by the operator");
	session_finish(m);
	return 0;
}

/*
 * The VMM's connection closed while this migration needed it: the VMM
 * exited (or broke its protocol). Whatever ran here is gone with it.
 */
static void
dst_vm_gone(struct migration *m, const char *why)
{
	char buf[300];
	int early = m->never_ran;

	snprintf(buf, sizeof(buf), "destination VMM %s (%s)%s", early ?
	    "went away before the VM state arrived" : "went away during post-copy", why,
	    early ? "" : ": the VM is lost");
	log_warnx("migration %s: %s", m->id, buf);
	dst_vm_lost(m, buf);
}

/* A record of a running destination migration came back after a restart. */
void
dst_revive(struct migration *m)
{
	if (dst_state_new(m) < 0)
		log_warnx("migration %s: out of memory reviving it", m->id);
}

const struct mig_ops dst_ops = {
	.name = "destination",
	.frame = dst_frame,
	.conn_lost = dst_conn_lost,
	.fault_fds = fault_poll_fds,
	.vm_running = dst_vm_running,
	.reattach = dst_reattach,
	.vm_gone = dst_vm_gone,
	.release = dst_release,
	.rx_begin = place_begin,	/* background pages read into place */
	.rx_where = place_where,
	.rx_end = place_end,
};
