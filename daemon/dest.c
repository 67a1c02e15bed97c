/*
 * dest: the destination role and, in this version, its fault engine.
 * Prepares an incoming migration (one-time token), authenticates the
 * source's channels, hands the VMM its state blob, reads the VM's
 * userfaultfd (blocking mode: the faulting vCPU sleeps in the kernel), asks
 * the source for each missing page once however many threads wait on it, and
 * installs pages from either channel, each page exactly once (the
 * `installed` bitmap is checked before every ioctl; EEXIST is counted, never
 * expected). Copy mode: UFFDIO_COPY / UFFDIO_ZEROPAGE / UFFDIO_POISON. Minor
 * mode: the payload is written into the memfd's page cache (pwrite; through
 * the daemon's own mapping for hugetlbfs, which has no write()), then
 * UFFDIO_CONTINUE maps it, with the run in flight kept in a journal
 * (journal.c) so a restart never maps a torn page.
 * Everything here runs on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bitmap.h"
#include "ctlmsg.h"
#include "journal.h"
#include "latency.h"
#include "log.h"
#include "mig_compat.h"
#include "migrationd.h"
#include "probes.h"
#include "ring.h"

#define DST_MAX_PENDING 1024

static void dst_uffd_cb(evutil_socket_t fd, short what, void *arg);
static void dst_doorbell_cb(evutil_socket_t fd, short what, void *arg);
static void dst_slot_complete(struct vm *v, uint32_t i, int err);
static int dst_resume(struct pconn *c, const Migrationd__Peer__V1__Hello *h);
static void dst_complete(struct migration *m);

/* How this VM's faults arrive and its pages go in, for status and records. */
static void
dst_paths(struct migration *m, const struct vm *v)
{
	snprintf(m->fault_path, sizeof(m->fault_path), "%s", v->ring_mode ? "ring" : "uffd");
	snprintf(m->install_mode, sizeof(m->install_mode), "%s", v->minor ? "minor" : "copy");
}

/* Minor mode: the journal of the run between page-cache write and map. */
static int
dst_journal_open(struct migration *m, struct journal_run *pending)
{
	struct journal_run none;
	char path[600];

	snprintf(path, sizeof(path), "%s/%s.journal", D->conf.state_dir, m->id);
	if ((m->journal = journal_open(path, pending ? pending : &none)) == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	return 0;
}

int
dst_prepare(struct vm *v, struct migration **out, char *err, size_t errlen)
{
	struct migration *m;
	uint8_t rnd[32];

	if (!v->incoming) {
		snprintf(err, errlen, "VM %s is not an incoming VM (start its VMM with "
		    "--incoming)", v->name);
		return -1;
	}
	if (v->mig != NULL && mig_active(v->mig)) {
		snprintf(err, errlen, "VM %s already has migration %s in state %s",
		    v->name, v->mig->id, mig_state_name(v->mig->state));
		return -1;
	}
	if (tls_random(rnd, sizeof(rnd)) < 0 || (m = mig_new(v, MIG_DEST)) == NULL) {
		snprintf(err, errlen, "out of memory or entropy");
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(m->token + 2 * i, 3, "%02x", rnd[i]);
	m->token_expires_ms = now_ms() + (int64_t)D->conf.token_ttl * 1000;
	m->requested = bitmap_new(m->npages);
	m->installed = bitmap_new(m->npages);
	m->maxpending = DST_MAX_PENDING;
	m->pending = calloc(m->maxpending, sizeof(*m->pending));
	if (m->requested == NULL || m->installed == NULL || m->pending == NULL) {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED, "out of memory");
		mig_finish(m);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dst_paths(m, v);
	if (v->minor && dst_journal_open(m, NULL) < 0) {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED,
		    "cannot create the install journal under %s", D->conf.state_dir);
		mig_finish(m);
		snprintf(err, errlen, "cannot create the install journal under %s: %s",
		    D->conf.state_dir, strerror(errno));
		return -1;
	}
	m->state = MIGRATIOND__V1__MIGRATION_STATE__PREPARED;
	log_info("migration %s: vm %s prepared for incoming migration (%s)", m->id,
	    v->name, v->minor ? "minor mode: page cache + UFFDIO_CONTINUE" :
	    "copy mode: UFFDIO_COPY");
	*out = m;
	return 0;
}

static int
dst_refuse(struct pconn *c, const char *reason)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Refuse r = MIGRATIOND__PEER__V1__REFUSE__INIT;

	log_warnx("peer %s: refused: %s", c->addr, reason);
	r.reason = (char *)(uintptr_t)reason;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE;
	msg.refuse = &r;
	peer_send_msg(c, &msg);
	peer_close(c, 1);
	return -1;
}

/* The migration a token opens, compared in constant time. */
static struct migration *
dst_by_token(const char *token)
{
	size_t n = strlen(token);
	struct migration *m;

	TAILQ_FOREACH(m, &D->migs, entry) {
		if (m->role != MIG_DEST || m->token[0] == '\0' || strlen(m->token) != n)
			continue;
		if (CRYPTO_memcmp(m->token, token, n) == 0)
			return m;
	}
	return NULL;
}

static void
dst_bind(struct pconn *c, struct migration *m, int channel)
{
	c->mig = m;
	peer_set_channel(c, channel);
	c->lim.page_size = m->page_size;
	c->lim.npages = m->npages;
	c->lim.max_msg = MIG_MSG_MAX;
	c->lim.max_count = mig_frame_pages(m);
	if (channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT)
		m->urgent = c;
	else
		m->bg = c;
}

int
dst_hello(struct pconn *c, const Migrationd__Peer__V1__Hello *h)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Welcome w = MIGRATIOND__PEER__V1__WELCOME__INIT;
	struct migration *m;
	char why[256];

	if (h->version != MIG_PEER_VERSION)
		return dst_refuse(c, "unsupported protocol version");
	if (h->channel == MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND) {
		TAILQ_FOREACH(m, &D->migs, entry) {
			if (m->role != MIG_DEST || !mig_active(m) || m->urgent == NULL ||
			    m->bg != NULL || h->session_key.len != sizeof(m->session_key))
				continue;
			if (CRYPTO_memcmp(m->session_key, h->session_key.data,
			    sizeof(m->session_key)) == 0) {
				dst_bind(c, m, h->channel);
				log_info("migration %s: background channel from %s", m->id, c->addr);
				return 0;
			}
		}
		return dst_refuse(c, "no migration for this session key");
	}
	if (h->channel != MIGRATIOND__PEER__V1__CHANNEL__URGENT)
		return dst_refuse(c, "unknown channel");
	if (h->resume)
		return dst_resume(c, h);
	if (h->token == NULL || (m = dst_by_token(h->token)) == NULL)
		return dst_refuse(c, "unknown or already used token");
	/* One use, whatever follows. */
	memset(m->token, 0, sizeof(m->token));
	if (m->state != MIGRATIOND__V1__MIGRATION_STATE__PREPARED)
		return dst_refuse(c, "migration is not waiting for a source");
	if (now_ms() > m->token_expires_ms) {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED, "token expired");
		mig_finish(m);
		return dst_refuse(c, "token expired");
	}
	if (m->vm == NULL || m->vm->sock < 0)
		snprintf(why, sizeof(why), "incoming VM %s is gone", m->vm_name);
	else if (strcmp(h->vm, m->vm_name) != 0)
		snprintf(why, sizeof(why), "token is for VM %s, not %s", m->vm_name, h->vm);
	else if (h->ram_bytes != m->ram_bytes || h->page_size != m->page_size)
		snprintf(why, sizeof(why), "VM %s has %llu bytes in %u-byte pages here, "
		    "source offers %llu in %u", m->vm_name, (unsigned long long)m->ram_bytes,
		    m->page_size, (unsigned long long)h->ram_bytes, h->page_size);
	else
		why[0] = '\0';
	if (why[0] != '\0') {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED, "%s", why);
		mig_finish(m);
		return dst_refuse(c, why);
	}
	if (tls_random(m->session_key, sizeof(m->session_key)) < 0)
		return dst_refuse(c, "no entropy");
	dst_bind(c, m, h->channel);
	snprintf(m->peer, sizeof(m->peer), "%s", c->addr);
	w.migration_id = m->id;
	w.session_key.data = m->session_key;
	w.session_key.len = sizeof(m->session_key);
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME;
	msg.welcome = &w;
	peer_send_msg(c, &msg);
	mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__CONNECTING, NULL);
	log_info("migration %s: source %s (its migration %s) authenticated", m->id,
	    c->addr, h->source_migration_id);
	peer_heartbeat(m);
	return 0;
}

/* Asks again for every page a thread waits on that is not installed. */
static void
dst_rerequest(struct migration *m)
{
	struct frame_hdr h = { .type = FRAME_REQ };

	for (uint64_t i = 0; i < m->npages && m->urgent != NULL; i++) {
		if (!bitmap_test(m->requested, i) || bitmap_test(m->installed, i))
			continue;
		h.index = i;
		h.count = 1;
		while (h.count < mig_frame_pages(m) && i + h.count < m->npages &&
		    bitmap_test(m->requested, i + h.count) &&
		    !bitmap_test(m->installed, i + h.count))
			h.count++;
		if (peer_send_frame(m->urgent, &h, NULL) < 0)
			return;
		PROBE_REQUEST(m->num, i, h.count);
		i += h.count - 1;
	}
	for (unsigned k = 0; k < m->npending && m->urgent != NULL; k++)
		if (m->pending[k].req_ns == 0)
			m->pending[k].req_ns = (uint64_t)now_ns();
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
	Migrationd__Peer__V1__Welcome w = MIGRATIOND__PEER__V1__WELCOME__INIT;
	Migrationd__Peer__V1__Resync rs = MIGRATIOND__PEER__V1__RESYNC__INIT;
	struct migration *m;

	TAILQ_FOREACH(m, &D->migs, entry) {
		if (m->role == MIG_DEST && m->state_rx_ns != 0 && mig_active(m) &&
		    h->session_key.len == sizeof(m->session_key) &&
		    CRYPTO_memcmp(m->session_key, h->session_key.data,
		    sizeof(m->session_key)) == 0)
			break;
	}
	if (m == NULL)
		return dst_refuse(c, "no migration to resume for this session key");
	if (m->vm == NULL || m->installed == NULL)
		return dst_refuse(c, "the VM's VMM has not re-attached yet");
	/* The source saw the link die before we did: its word is enough. */
	if (m->urgent != NULL) {
		struct pconn *old = m->urgent;

		dst_conn_lost(old, "replaced by the source's new connection");
		peer_close(old, 0);
	}
	if (m->bg != NULL)
		peer_close(m->bg, 0);
	dst_bind(c, m, MIGRATIOND__PEER__V1__CHANNEL__URGENT);
	snprintf(m->peer, sizeof(m->peer), "%s", c->addr);
	w.migration_id = m->id;
	w.session_key.data = m->session_key;
	w.session_key.len = sizeof(m->session_key);
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME;
	msg.welcome = &w;
	peer_send_msg(c, &msg);
	/* The bitmap is little-endian words on x86: bytes in page order. */
	rs.installed.data = (uint8_t *)m->installed;
	rs.installed.len = (m->npages + 7) / 8;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_RESYNC;
	msg.resync = &rs;
	peer_send_msg(c, &msg);
	dst_rerequest(m);
	m->reconnects++;
	m->reason[0] = '\0';
	mig_set_state(m, m->ev_uffd != NULL ? MIGRATIOND__V1__MIGRATION_STATE__POSTCOPY :
	    MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT, NULL);
	peer_heartbeat(m);
	log_info("migration %s: source %s is back; %llu of %llu pages installed",
	    m->id, c->addr, (unsigned long long)m->pages_installed,
	    (unsigned long long)m->npages);
	if (m->pages_installed >= m->npages)
		dst_complete(m);	/* everything arrived before the link broke */
	return 0;
}

/*
 * Minor mode after a restart: the run the old daemon was writing may be torn
 * (punch it out of the page cache: the guest never saw it, it is fetched
 * again); a run it had written but maybe not mapped is complete (map it;
 * EEXIST there only says it was mapped already, nothing is written). After
 * this every page in the page cache is complete and mapped.
 */
static int
dst_journal_recover(struct migration *m)
{
	struct vm *v = m->vm;
	struct journal_run run;

	if (dst_journal_open(m, &run) < 0)
		return -1;
	if (run.state == JOURNAL_IDLE)
		return 0;
	if (run.idx >= m->npages || run.count > m->npages - run.idx) {
		log_warnx("migration %s: journal names pages %llu+%llu beyond the VM; "
		    "ignored", m->id, (unsigned long long)run.idx,
		    (unsigned long long)run.count);
		journal_idle(m->journal);
		return 0;
	}
	if (run.state == JOURNAL_WRITING) {
		if (fallocate(v->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    (off_t)(run.idx * m->page_size), (off_t)(run.count * m->page_size)) < 0) {
			log_warn("migration %s: cannot drop the half-written pages %llu+%llu",
			    m->id, (unsigned long long)run.idx, (unsigned long long)run.count);
			return -1;
		}
		log_info("migration %s: pages %llu+%llu were being written when the daemon "
		    "stopped: dropped, fetched again", m->id,
		    (unsigned long long)run.idx, (unsigned long long)run.count);
	} else {
		for (uint64_t k = run.idx; k < run.idx + run.count; k++) {
			struct uffdio_continue uc = { .range = {
			    v->ram_va + k * m->page_size, m->page_size } };

			if (ioctl(v->uffd, UFFDIO_CONTINUE, &uc) < 0 && errno != EEXIST) {
				log_warn("migration %s: cannot map written page %llu",
				    m->id, (unsigned long long)k);
				return -1;
			}
		}
		log_info("migration %s: pages %llu+%llu were written but maybe not mapped "
		    "when the daemon stopped: mapped", m->id,
		    (unsigned long long)run.idx, (unsigned long long)run.count);
	}
	journal_idle(m->journal);
	return 0;
}

/*
 * After a restart of this daemon the VMM attached again with the same memfd
 * and uffd. Which pages are installed is the kernel's to say: an installed
 * page is exactly a page present in the memfd's page cache (SEEK_DATA): in
 * copy mode by construction, in minor mode once the journal is settled. A
 * page is never installed twice, because this bitmap starts from what is
 * really there.
 */
void
dst_reattach(struct migration *m)
{
	struct vm *v = m->vm;
	off_t off = 0, data, hole;
	uint64_t n = 0;

	if (m->page_size > 4096) {
		/* hugetlbfs answers SEEK_DATA with "all data": it cannot say
		 * which pages are installed, so nothing is written at all. */
		snprintf(m->reason, sizeof(m->reason), "daemon restarted: which 2 MiB pages "
		    "of hugetlbfs RAM are installed cannot be rebuilt; migration held");
		log_warnx("migration %s: %s", m->id, m->reason);
		rec_save(m);
		return;
	}
	m->requested = bitmap_new(m->npages);
	m->installed = bitmap_new(m->npages);
	m->maxpending = DST_MAX_PENDING;
	m->pending = calloc(m->maxpending, sizeof(*m->pending));
	if (m->requested == NULL || m->installed == NULL || m->pending == NULL) {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__PAUSED,
		    "out of memory re-attaching the VM");
		return;
	}
	dst_paths(m, v);
	if (v->minor && dst_journal_recover(m) < 0) {
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__PAUSED,
		    "cannot recover the install journal; migration held");
		return;
	}
	while ((data = lseek(v->memfd, off, SEEK_DATA)) >= 0) {
		if ((hole = lseek(v->memfd, data, SEEK_HOLE)) < 0)
			break;
		for (uint64_t p = (uint64_t)data / m->page_size;
		    p < m->npages && p < ((uint64_t)hole + m->page_size - 1) / m->page_size; p++) {
			bitmap_set(m->installed, p);
			n++;
		}
		off = hole;
	}
	m->pages_installed = n;
	m->state_rx_ns = now_ns();
	if (m->lat_slot < 0)
		m->lat_slot = lat_begin(m->num);
	m->ev_uffd = event_new(D->base, v->uffd, EV_READ | EV_PERSIST, dst_uffd_cb, m);
	event_priority_set(m->ev_uffd, MIG_PRI_FAULT);
	event_add(m->ev_uffd, NULL);
	if (v->ring_mode) {
		const struct ring_hdr *rh = v->ring;

		/* Slots the old daemon had taken are this daemon's to serve. */
		for (uint32_t i = 0; i < rh->nslots && ring_bytes(i + 1) <= v->ring_len; i++)
			ring_cas(ring_slot(v->ring, i), RING_TAKEN, RING_POSTED);
		m->ev_doorbell = event_new(D->base, v->doorbell, EV_READ | EV_PERSIST,
		    dst_doorbell_cb, m);
		event_priority_set(m->ev_doorbell, MIG_PRI_FAULT);
		event_add(m->ev_doorbell, NULL);
		event_active(m->ev_doorbell, EV_READ, 0);
	}
	snprintf(m->reason, sizeof(m->reason), "daemon restarted; VM re-attached with "
	    "%llu of %llu pages present; waiting for the source to reconnect",
	    (unsigned long long)n, (unsigned long long)m->npages);
	log_info("migration %s: %s", m->id, m->reason);
	rec_save(m);
}

static void
dst_send_abort(struct migration *m, const char *why)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Abort a = MIGRATIOND__PEER__V1__ABORT__INIT;

	if (m->urgent == NULL)
		return;
	a.reason = (char *)(uintptr_t)why;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT;
	msg.abort = &a;
	peer_send_msg(m->urgent, &msg);
}

static void
dst_complete(struct migration *m)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Complete cm = MIGRATIOND__PEER__V1__COMPLETE__INIT;
	struct vm *v = m->vm;

	cm.pages_installed = m->pages_installed;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_COMPLETE;
	msg.complete = &cm;
	/* The source closes both channels once it reads Complete: closing
	 * them here could show it the background EOF first. */
	if (m->urgent != NULL) {
		peer_send_msg(m->urgent, &msg);
		peer_drain(m->urgent);
	}
	if (m->bg != NULL)
		peer_drain(m->bg);
	/* Every page is present: release whoever is still posted or taken. */
	if (v != NULL && v->ring != NULL) {
		const struct ring_hdr *rh = v->ring;

		for (uint32_t i = 0; i < rh->nslots && ring_bytes(i + 1) <= v->ring_len; i++) {
			struct ring_slot *r = ring_slot(v->ring, i);

			if (ring_cas(r, RING_POSTED, RING_TAKEN) || ring_load(r) == RING_TAKEN)
				dst_slot_complete(v, i, 0);
		}
	}
	mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__COMPLETED, NULL);
	log_info("migration %s: completed: %llu pages installed (%llu demand, %llu "
	    "background, %llu zero), %llu demand faults, p50 %.1f us p99 %.1f us, "
	    "%llu EEXIST, %llu install errors, %llu pages prefetched, %llu sequential "
	    "faults", m->id,
	    (unsigned long long)m->pages_installed, (unsigned long long)m->pages_demand,
	    (unsigned long long)m->pages_background, (unsigned long long)m->pages_zero,
	    (unsigned long long)m->demand_faults,
	    (double)hist_quantile(&m->lat, 0.5) / 1e3,
	    (double)hist_quantile(&m->lat, 0.99) / 1e3,
	    (unsigned long long)m->install_eexist, (unsigned long long)m->install_errors,
	    (unsigned long long)m->prefetch_pages, (unsigned long long)m->prefetch_hits);
	if (v != NULL) {
		/* The VM now runs here with all its memory: it may migrate on. */
		vm_send_completed(v);
		if (v->uffd >= 0) {
			close(v->uffd);
			v->uffd = -1;
		}
		v->incoming = 0;
	}
	mig_finish(m);
}

/* What a waiter on a present page is told: retry, or it is poison. */
static int
dst_poison_err(const struct migration *m, uint64_t idx)
{
	return m->poisoned != NULL && bitmap_test(m->poisoned, idx) ? -EHWPOISON : 0;
}

/* Ends a ring slot's wait: DONE (retry the access) or ERROR (-errno). */
static void
dst_slot_complete(struct vm *v, uint32_t i, int err)
{
	struct ring_slot *r = ring_slot(v->ring, i);

	PROBE_RESUMED(v->mig != NULL ? v->mig->num : 0, i, r->offset / v->page_size, err);
	r->error = err;
	ring_store(r, err ? RING_ERROR : RING_DONE);
	ring_futex_wake(r);
}

/* A requested page is present: time it and release every slot on it. */
static void
dst_page_arrived(struct migration *m, uint64_t idx, int64_t now, int64_t rx)
{
	for (unsigned i = 0; i < m->npending; i++) {
		struct pending *p = &m->pending[i];

		if (p->idx != idx)
			continue;
		hist_add(&m->lat, (uint64_t)(now - (int64_t)p->t0_ns));
		lat_record(m->lat_slot, m->num, p->tid, idx, p->posted_ns, p->t0_ns,
		    p->req_ns, (uint64_t)rx, (uint64_t)now);
		for (uint32_t b = 0; p->slots != 0 && b < 64; b++)
			if (p->slots & ((uint64_t)1 << b))
				dst_slot_complete(m->vm, b, dst_poison_err(m, idx));
		*p = m->pending[--m->npending];
		return;
	}
}

/* Puts pages [idx, idx+n) into the page cache: the guest cannot see them. */
static int
dst_minor_write(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	struct vm *v = m->vm;
	uint64_t off = idx * m->page_size, len = n * m->page_size, done = 0;

	if (v->map != NULL) {
		/* hugetlbfs: no write(); through our own mapping of the memfd. */
		if (enc == FRAME_ENC_ZERO)
			memset((uint8_t *)v->map + off, 0, len);
		else
			memcpy((uint8_t *)v->map + off, src, len);
		return 0;
	}
	while (done < len) {
		ssize_t w = pwrite(v->memfd, src + done, len - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		done += (uint64_t)w;
	}
	return 0;
}

/*
 * [debug] crash_minor, tests only: die by SIGKILL in the middle of an
 * install, as a crash would: half-way through the first page's write
 * (WRITING), or with the run written and not mapped (WRITTEN).
 */
static void
dst_crash_test(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	log_warnx("migration %s: [debug] crash_minor: killing this daemon with pages "
	    "%llu+%llu %s", m->id, (unsigned long long)idx, (unsigned long long)n,
	    D->conf.crash_minor_state == JOURNAL_WRITING ? "half written" :
	    "written, not mapped");
	if (D->conf.crash_minor_state == JOURNAL_WRITING) {
		if (enc == FRAME_ENC_RAW && m->vm->map == NULL &&
		    pwrite(m->vm->memfd, src, m->page_size / 2,
		    (off_t)(idx * m->page_size)) < 0)
			log_warn("%s: pwrite", __func__);
	} else if (dst_minor_write(m, idx, n, enc, src) == 0) {
		journal_written(m->journal);
	}
	raise(SIGKILL);
}

/*
 * Minor mode, first step of an install: write pages [idx, idx+n) into the
 * page cache, journaled WRITING while it happens and WRITTEN once complete
 * (see journal.c); dst_ioctl() then maps them with UFFDIO_CONTINUE. 0, or
 * -1 (counted) with the run left WRITING: it is not mapped, and a later
 * install of these pages rewrites it whole.
 */
static int
dst_minor_stage(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	journal_writing(m->journal, idx, n);
	if (D->conf.crash_minor_at && ++m->minor_runs == D->conf.crash_minor_at)
		dst_crash_test(m, idx, n, enc, src);
	if (dst_minor_write(m, idx, n, enc, src) < 0) {
		log_warn("migration %s: writing pages %llu+%llu into the page cache",
		    m->id, (unsigned long long)idx, (unsigned long long)n);
		m->install_errors++;
		return -1;
	}
	journal_written(m->journal);
	return 0;
}

/*
 * Minor mode: an installed page whose mapping is gone (the VMM dropped it,
 * or a restart found it written and not mapped) faults as a minor fault.
 * Map it again; nothing is written. 0, or -1 if it cannot be mapped.
 */
static int
dst_remap(struct migration *m, uint64_t idx)
{
	struct uffdio_continue uc = { .range = {
	    m->vm->ram_va + idx * m->page_size, m->page_size } };

	if (ioctl(m->vm->uffd, UFFDIO_CONTINUE, &uc) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOENT) {
		/* Mapped already (or a poison/zero mapping): just wake. */
		ioctl(m->vm->uffd, UFFDIO_WAKE, &uc.range);
		return 0;
	}
	log_warn("migration %s: UFFDIO_CONTINUE of installed page %llu", m->id,
	    (unsigned long long)idx);
	return -1;
}

/*
 * One install ioctl for pages [idx, idx+n), none of them installed yet.
 * Returns how many pages went in, -2 for EEXIST (counted), or -1 after a
 * hard error.
 */
static long
dst_ioctl(struct migration *m, uint64_t idx, uint64_t n, int enc, const uint8_t *src)
{
	uint64_t dst = m->vm->ram_va + idx * m->page_size, len = n * m->page_size;
	int minor = m->vm->minor && (enc == FRAME_ENC_RAW ||
	    (enc == FRAME_ENC_ZERO && m->page_size > 4096));
	int64_t done;
	int rc, err;

	if (minor && dst_minor_stage(m, idx, n, enc, src) < 0)
		return -1;
	for (;;) {
		if (minor) {
			/* Written into the page cache: map it (wakes waiters). */
			struct uffdio_continue uc = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_CONTINUE, &uc);
			done = uc.mapped;
		} else if (enc == FRAME_ENC_RAW) {
			struct uffdio_copy cp = { .dst = dst, .src = (uintptr_t)src,
			    .len = len };

			rc = ioctl(m->vm->uffd, UFFDIO_COPY, &cp);
			done = cp.copy;
		} else if (enc == FRAME_ENC_ZERO && m->page_size > 4096) {
			/* hugetlbfs has no UFFDIO_ZEROPAGE: copy zeros. */
			static uint8_t *zeros;
			struct uffdio_copy cp = { .dst = dst, .len = len };

			if (zeros == NULL && (zeros = calloc(1, MIG_FRAME_MAX_BYTES)) == NULL)
				return -1;
			if (len > MIG_FRAME_MAX_BYTES) {
				errno = EINVAL;
				return -1;
			}
			cp.src = (uintptr_t)zeros;
			rc = ioctl(m->vm->uffd, UFFDIO_COPY, &cp);
			done = cp.copy;
		} else if (enc == FRAME_ENC_ZERO) {
			struct uffdio_zeropage zp = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_ZEROPAGE, &zp);
			done = zp.zeropage;
		} else {
			struct uffdio_poison po = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_POISON, &po);
			done = po.updated;
		}
		err = errno;
		if (rc != 0 && done <= 0 && err == EAGAIN)
			continue;	/* the VMM's mm was busy; try again */
		if (minor) {
			/* Mapped, or failed: nothing left between write and map.
			 * Mapped in part: the rest stays written but unmapped,
			 * and the caller's next install of it rewrites it. */
			if (rc != 0 && done > 0)
				journal_writing(m->journal, idx + (uint64_t)done / m->page_size,
				    n - (uint64_t)done / m->page_size);
			else
				journal_idle(m->journal);
		}
		if (rc == 0)
			return (long)n;
		if (done > 0)
			return (long)(done / m->page_size);
		if (err == EEXIST) {
			/* Somebody else filled it: never write it again. */
			m->install_eexist++;
			log_warnx("migration %s: page %llu already present (EEXIST)",
			    m->id, (unsigned long long)idx);
			return -2;
		}
		errno = err;
		log_warn("migration %s: install of pages %llu+%llu failed", m->id,
		    (unsigned long long)idx, (unsigned long long)n);
		m->install_errors++;
		return -1;
	}
}

/* Installs what is still missing of a received run of pages. */
static int
dst_any_requested(const struct migration *m, uint64_t i, uint64_t n)
{
	for (uint64_t k = i; k < i + n; k++)
		if (bitmap_test(m->requested, k))
			return 1;
	return 0;
}

/* Threads waiting on pages [i, i+n) are about to wake: time it from now. */
static void
dst_arm_waiters(struct migration *m, uint64_t i, uint64_t n)
{
	int64_t t;

	if (m->lat_slot < 0 || m->npending == 0)
		return;
	t = now_ns();
	for (unsigned k = 0; k < m->npending; k++)
		if (m->pending[k].idx >= i && m->pending[k].idx < i + n)
			lat_arm(m->lat_slot, m->num, m->pending[k].tid, (uint64_t)t);
}

static int
dst_install(struct migration *m, const struct frame_hdr *h, const uint8_t *p,
    int demand)
{
	uint64_t i = h->index, end = h->index + h->count;
	int64_t rx_ns = now_ns();	/* the frame was just read */

	if (m->vm == NULL || m->vm->uffd < 0)
		return -1;
	while (i < end) {
		int64_t installed_ns;
		uint64_t j;
		long done;
		int waited;

		if (bitmap_test(m->installed, i)) {
			m->pages_duplicate++;
			i++;
			continue;
		}
		for (j = i + 1; j < end && !bitmap_test(m->installed, j); j++)
			;
		dst_arm_waiters(m, i, j - i);
		done = dst_ioctl(m, i, j - i, h->enc,
		    h->enc == FRAME_ENC_RAW ? p + (i - h->index) * m->page_size : NULL);
		if (done == -1)
			return -1;
		/* Only runs somebody waits on: a trap per background frame would
		 * tax the bulk stream for nothing. A waiter's latency ends when
		 * its page is in guest RAM, here, as BPF's does. */
		waited = dst_any_requested(m, i, done > 0 ? (uint64_t)done : 1);
		if (waited)
			PROBE_INSTALLED(m->num, i, done > 0 ? done : 1, rx_ns);
		installed_ns = waited ? now_ns() : rx_ns;
		if (done == -2)
			done = 1;	/* counted as EEXIST, present all the same */
		else {
			m->pages_installed += (uint64_t)done;
			if (h->enc == FRAME_ENC_POISON) {
				if (m->poisoned == NULL)
					m->poisoned = bitmap_new(m->npages);
				for (uint64_t k = i; m->poisoned && k < i + (uint64_t)done; k++)
					bitmap_set(m->poisoned, k);
				m->pages_poisoned += (uint64_t)done;
				log_warnx("migration %s: pages %llu+%ld are poisoned at the "
				    "source; installed as poison", m->id,
				    (unsigned long long)i, done);
			} else if (h->enc == FRAME_ENC_ZERO)
				m->pages_zero += (uint64_t)done;
			else if (demand)
				m->pages_demand += (uint64_t)done;
			else
				m->pages_background += (uint64_t)done;
		}
		for (uint64_t k = i; k < i + (uint64_t)done; k++) {
			bitmap_set(m->installed, k);
			if (bitmap_test(m->requested, k))
				dst_page_arrived(m, k, installed_ns, rx_ns);
		}
		i += (uint64_t)done;
	}
	lat_idle();	/* after the waiters were woken, not between */
	return 0;
}

static int
dst_msg(struct pconn *c, struct migration *m, const Migrationd__Peer__V1__PeerMsg *msg)
{
	switch (msg->msg_case) {
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING:
		return 0;	/* its arrival reset the liveness timer */
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE:
		if (c != m->urgent || m->state != MIGRATIOND__V1__MIGRATION_STATE__CONNECTING)
			break;
		m->state_rx_ns = now_ns();
		if (m->vm == NULL || vm_send_start(m->vm, msg->vm_state->blob.data,
		    msg->vm_state->blob.len) < 0) {
			dst_send_abort(m, "destination VMM is not reachable");
			mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED,
			    "cannot hand the state to the VMM");
			mig_finish(m);
			return -1;
		}
		if (m->lat_slot < 0)
			m->lat_slot = lat_begin(m->num);
		m->ev_uffd = event_new(D->base, m->vm->uffd, EV_READ | EV_PERSIST,
		    dst_uffd_cb, m);
		event_priority_set(m->ev_uffd, MIG_PRI_FAULT);
		event_add(m->ev_uffd, NULL);
		if (m->vm->ring_mode) {
			m->ev_doorbell = event_new(D->base, m->vm->doorbell,
			    EV_READ | EV_PERSIST, dst_doorbell_cb, m);
			event_priority_set(m->ev_doorbell, MIG_PRI_FAULT);
			event_add(m->ev_doorbell, NULL);
		}
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT, NULL);
		return 0;
	case MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT:
		if (m->state == MIGRATIOND__V1__MIGRATION_STATE__CONNECTING) {
			mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED,
			    "source aborted: %s", msg->abort->reason);
			mig_finish(m);
		} else {
			mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__PAUSED,
			    "source aborted: %s", msg->abort->reason);
			peer_close(c, 0);
		}
		return -1;
	default:
		break;
	}
	log_warnx("migration %s: unexpected peer message %d in state %s", m->id,
	    (int)msg->msg_case, mig_state_name(m->state));
	dst_conn_lost(c, "protocol error");
	peer_close(c, 0);
	return -1;
}

int
dst_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload)
{
	struct migration *m = c->mig;
	Migrationd__Peer__V1__PeerMsg *msg;
	const char *why = "unexpected frame type at the destination";
	int rc;

	switch (h->type) {
	case FRAME_MSG:
		if (c != m->urgent) {
			why = "control message on the background channel";
			break;
		}
		if ((msg = ctlmsg_decode_peer(payload, h->len, &why)) == NULL)
			break;
		rc = dst_msg(c, m, msg);
		migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
		return rc;
	case FRAME_PAGES:
		/* Background pages may overtake the VM state (two connections);
		 * installing them early is fine: the guest is not running yet. */
		if (dst_install(m, h, payload, c == m->urgent) < 0) {
			if (mig_active(m))
				mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__PAUSED,
				    "cannot install pages %llu+%u", (unsigned long long)h->index,
				    h->count);
			return 0;
		}
		if (m->pages_installed + m->install_eexist >= m->npages) {
			dst_complete(m);
			return -1;	/* c is draining now */
		}
		return 0;
	default:
		break;
	}
	log_warnx("migration %s: peer %s: %s", m->id, c->addr, why);
	dst_conn_lost(c, why);
	peer_close(c, 0);
	return -1;
}

/*
 * Asks for a page once; returns its pending entry (NULL if the table is
 * full or the urgent channel is down: the caller's waiter must retry).
 */
static struct pending *
dst_request(struct migration *m, uint64_t idx, uint32_t tid, uint64_t posted_ns)
{
	struct frame_hdr h = { .type = FRAME_REQ, .index = idx, .count = 1 };
	uint64_t t;

	if (bitmap_test(m->requested, idx)) {
		for (unsigned i = 0; i < m->npending; i++)
			if (m->pending[i].idx == idx)
				return &m->pending[i];
		return NULL;
	}
	if (m->npending >= m->maxpending)
		return NULL;	/* asked again when the waiter retries */
	if (m->urgent == NULL) {
		PROBE_FAULT(m->num, tid, idx, posted_ns, 0);
		/* Link down: remember the fault; dst_resume() asks for it. */
		bitmap_set(m->requested, idx);
		m->demand_faults++;
		m->pending[m->npending] = (struct pending){ .idx = idx,
		    .t0_ns = (uint64_t)now_ns(), .posted_ns = posted_ns, .tid = tid };
		return &m->pending[m->npending++];
	}
	/*
	 * Prefetch: a fault right where the previous request ended means the
	 * guest walks memory in order and the pages we fetched ahead were
	 * used: widen the window. A fault elsewhere narrows it.
	 */
	if (idx == m->last_fault_end && m->demand_faults > 0) {
		m->prefetch_hits++;
		m->prefetch = m->prefetch ? m->prefetch * 2 : 1;
		if (m->prefetch > mig_frame_pages(m) - 1)
			m->prefetch = mig_frame_pages(m) - 1;
	} else {
		m->prefetch /= 2;
	}
	while (h.count < 1 + m->prefetch && idx + h.count < m->npages &&
	    !bitmap_test(m->requested, idx + h.count) &&
	    !bitmap_test(m->installed, idx + h.count))
		h.count++;
	if (peer_send_frame(m->urgent, &h, NULL) < 0)
		return NULL;
	PROBE_FAULT(m->num, tid, idx, posted_ns, 1);
	for (uint64_t i = idx; i < idx + h.count; i++)
		bitmap_set(m->requested, i);
	m->prefetch_pages += h.count - 1;
	m->last_fault_end = idx + h.count;
	m->demand_faults++;
	t = (uint64_t)now_ns();
	m->pending[m->npending] = (struct pending){ .idx = idx, .t0_ns = t,
	    .req_ns = t, .posted_ns = posted_ns, .tid = tid };
	return &m->pending[m->npending++];
}

/* Doorbell: take every posted slot, check it, fetch or complete it. */
static void
dst_doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	struct vm *v = m->vm;
	const struct ring_hdr *rh;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("migration %s: doorbell", m->id);
	if (v == NULL || v->ring == NULL)
		return;
	rh = v->ring;
	ring_collect(v->ring);	/* posts from now on ring again */
	/* nslots was checked at attach; the VMM may have changed it since. */
	for (uint32_t i = 0; i < rh->nslots && i < RING_MAX_SLOTS &&
	    ring_bytes(i + 1) <= v->ring_len; i++) {
		struct ring_slot *r = ring_slot(v->ring, i), e;
		struct pending *p;
		uint64_t idx;
		int err;

		if (!ring_cas(r, RING_POSTED, RING_TAKEN))
			continue;
		m->ring_faults++;
		if ((err = ring_validate(r, m->ram_bytes, m->page_size, 1, &e)) < 0) {
			m->ring_errors++;
			log_warnx("migration %s: ring slot %u: refused entry (kind %u, offset "
			    "0x%llx, size %llu): %s", m->id, i, e.kind,
			    (unsigned long long)e.offset, (unsigned long long)e.size,
			    strerror(-err));
			dst_slot_complete(v, i, err);
			continue;
		}
		idx = e.offset / m->page_size;
		if (bitmap_test(m->installed, idx)) {
			if (v->minor && !dst_poison_err(m, idx) && dst_remap(m, idx) < 0) {
				dst_slot_complete(v, i, -EIO);
				continue;
			}
			dst_slot_complete(v, i, dst_poison_err(m, idx));
			continue;
		}
		if ((p = dst_request(m, idx, e.tid, e.post_ns)) == NULL) {
			dst_slot_complete(v, i, -EAGAIN);	/* the thread faults again */
			continue;
		}
		p->slots |= (uint64_t)1 << i;
	}
}

static void
dst_uffd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	struct uffd_msg msgs[64];
	ssize_t n;

	for (;;) {
		n = read(fd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("migration %s: read uffd", m->id);
			return;
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
			if (!bitmap_test(m->installed, idx)) {
				dst_request(m, idx, msgs[i].arg.pagefault.feat.ptid, 0);
			} else if (m->vm->minor &&
			    (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR)) {
				/* In the page cache but not mapped: map it. */
				dst_remap(m, idx);
			} else {
				/* Installed between the fault and this read. */
				struct uffdio_range r = {
					m->vm->ram_va + idx * m->page_size, m->page_size };

				ioctl(fd, UFFDIO_WAKE, &r);
			}
		}
	}
}

void
dst_conn_lost(struct pconn *c, const char *why)
{
	struct migration *m = c->mig;

	if (m == NULL || !mig_active(m))
		return;
	if (m->state == MIGRATIOND__V1__MIGRATION_STATE__CONNECTING) {
		char buf[300];

		/* Nothing ran here yet; the source resumes its VM. */
		snprintf(buf, sizeof(buf), "source connection lost before the VM "
		    "state arrived: %s", why);
		c->mig = NULL;
		if (m->urgent == c)
			m->urgent = NULL;
		if (m->bg == c)
			m->bg = NULL;
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED, "%s", buf);
		mig_finish(m);
		return;
	}
	if (m->state != MIGRATIOND__V1__MIGRATION_STATE__PAUSED)
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__PAUSED,
		    "%s channel from %s lost: %s; waiting for the source to reconnect",
		    c == m->bg ? "background" : "urgent", m->peer, why);
	/* Both channels start over together; vCPUs wait, nothing is lost. */
	if (m->urgent != NULL && m->urgent != c)
		peer_close(m->urgent, 0);
	if (m->bg != NULL && m->bg != c)
		peer_close(m->bg, 0);
}

void
dst_vm_running(struct vm *v)
{
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Running r = MIGRATIOND__PEER__V1__RUNNING__INIT;
	struct migration *m = v->mig;

	if (m == NULL || m->state != MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT) {
		log_warnx("vm %s: running report with no migration waiting for it", v->name);
		return;
	}
	m->blackout_ms = (double)(now_ns() - m->state_rx_ns) / 1e6;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_RUNNING;
	msg.running = &r;
	if (m->urgent != NULL)
		peer_send_msg(m->urgent, &msg);
	mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__POSTCOPY, NULL);
}

void
dst_vm_verdict(struct vm *v, int ok, const char *text)
{
	struct migration *m = v->mig != NULL ? v->mig : mig_find(v->name);

	log_info("vm %s: guest verdict: %s", v->name, text);
	if (m == NULL || m->role != MIG_DEST)
		return;
	snprintf(m->verdict, sizeof(m->verdict), "%s", text);
	m->verdict_ok = ok;
	rec_save(m);
}

/*
 * Cancel on the destination: only before the VM state arrived (prepared, or
 * authenticated but nothing ran here); the source then resumes its VM.
 */
int
dst_cancel(struct migration *m, char *err, size_t errlen)
{
	if (m->role != MIG_DEST || (m->state != MIGRATIOND__V1__MIGRATION_STATE__PREPARED &&
	    m->state != MIGRATIOND__V1__MIGRATION_STATE__CONNECTING)) {
		snprintf(err, errlen, "migration %s is %s: only a destination migration that "
		    "has not received the VM state can be cancelled", m->id,
		    mig_state_name(m->state));
		return -1;
	}
	memset(m->token, 0, sizeof(m->token));
	dst_send_abort(m, "cancelled by the destination's operator");
	mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__CANCELLED, "cancelled by the operator");
	mig_finish(m);
	return 0;
}
