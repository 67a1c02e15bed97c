/*
 * migration: migration records, their state machine and their public view
 * (the Migration message of the control API). Records stay after a migration
 * ends so `mig-ctl list` shows history; the heavy per-page state is freed by
 * mig_finish(). Loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "journal.h"
#include "latency.h"
#include "log.h"
#include "migrationd.h"

const char *
mig_state_name(Migrationd__V1__MigrationState st)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &migrationd__v1__migration_state__descriptor, (int)st);

	return v ? v->name : "UNKNOWN";
}

int
mig_active(const struct migration *m)
{
	switch (m->state) {
	case MIGRATIOND__V1__MIGRATION_STATE__COMPLETED:
	case MIGRATIOND__V1__MIGRATION_STATE__FAILED:
	case MIGRATIOND__V1__MIGRATION_STATE__CANCELLED:
		return 0;
	default:
		return 1;
	}
}

/* Pages in one PAGES or REQ frame: 16 small pages, or one 2 MiB page. */
uint32_t
mig_frame_pages(const struct migration *m)
{
	uint32_t n = MIG_FRAME_MAX_BYTES / m->page_size;

	return n == 0 ? 1 : n < MIG_FRAME_MAX_PAGES ? n : MIG_FRAME_MAX_PAGES;
}

/* Numbers for probes and BPF maps, unique within this daemon run. */
uint32_t
mig_next_num(void)
{
	static uint32_t next;

	return ++next;
}

struct migration *
mig_new(struct vm *v, enum mig_role role)
{
	struct migration *m;
	uint8_t rnd[6];

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if (tls_random(rnd, sizeof(rnd)) < 0) {
		free(m);
		return NULL;
	}
	snprintf(m->id, sizeof(m->id), "m-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
	    rnd[2], rnd[3], rnd[4], rnd[5]);
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", v->name);
	m->num = mig_next_num();
	m->lat_slot = -1;
	m->vm = v;
	m->role = role;
	m->ram_bytes = v->ram_bytes;
	m->npages = v->npages;
	m->page_size = v->page_size;
	m->started_ms = now_ms();
	m->started_ns = now_ns();
	m->memfd = -1;
	hist_init(&m->lat);
	v->mig = m;
	TAILQ_INSERT_TAIL(&D->migs, m, entry);
	return m;
}

struct migration *
mig_find(const char *key)
{
	struct migration *m, *found = NULL;

	/* By id; by VM name the newest record wins. */
	TAILQ_FOREACH(m, &D->migs, entry) {
		if (!strcmp(m->id, key))
			return m;
		if (!strcmp(m->vm_name, key))
			found = m;
	}
	return found;
}

void
mig_set_state(struct migration *m, Migrationd__V1__MigrationState st,
    const char *fmt, ...)
{
	Migrationd__V1__MigrationState prev = m->state;
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
		va_end(ap);
	}
	log_info("migration %s (vm %s, %s): %s -> %s%s%s", m->id, m->vm_name,
	    m->role == MIG_SOURCE ? "source" : "destination",
	    mig_state_name(m->state), mig_state_name(st), fmt ? ": " : "",
	    fmt ? m->reason : "");
	m->state = st;
	if (!mig_active(m)) {
		m->ended_ms = now_ms();
		m->total_s = (double)(now_ns() - m->started_ns) / 1e9;
	}
	rec_save(m);
	ctl_mig_changed(m, prev);
}

/* Frees what only a running migration needs; the record stays. */
void
mig_finish(struct migration *m)
{
	rec_save(m);	/* the final figures */
	if (m->urgent != NULL)
		peer_close(m->urgent, 1);
	if (m->bg != NULL)
		peer_close(m->bg, 1);
	if (m->ev_uffd != NULL) {
		event_free(m->ev_uffd);
		m->ev_uffd = NULL;
	}
	if (m->ev_ping != NULL) {
		event_free(m->ev_ping);
		m->ev_ping = NULL;
	}
	if (m->ev_retry != NULL) {
		event_free(m->ev_retry);
		m->ev_retry = NULL;
	}
	if (m->ev_doorbell != NULL) {
		event_free(m->ev_doorbell);
		m->ev_doorbell = NULL;
	}
	if (m->memfd >= 0) {
		close(m->memfd);
		m->memfd = -1;
	}
	/* A journal outlives a migration only while it may still resume. */
	journal_close(m->journal, !mig_active(m));
	m->journal = NULL;
	free(m->requested);
	free(m->installed);
	free(m->poisoned);
	m->poisoned = NULL;
	free(m->sent);
	lat_end(m->lat_slot);
	m->lat_slot = -1;
	free(m->pending);
	m->requested = m->installed = m->sent = NULL;
	m->pending = NULL;
	if (m->vm != NULL) {
		struct vm *v = m->vm;

		if (v->mig == m)
			v->mig = NULL;
		m->vm = NULL;
		vm_release(v);
	}
}

void
mig_to_proto(const struct migration *m, Migrationd__V1__Migration *o)
{
	migrationd__v1__migration__init(o);
	o->id = (char *)(uintptr_t)m->id;
	o->vm = (char *)(uintptr_t)m->vm_name;
	o->role = m->role == MIG_SOURCE ? MIGRATIOND__V1__ROLE__SOURCE :
	    MIGRATIOND__V1__ROLE__DESTINATION;
	o->state = m->state;
	o->peer = (char *)(uintptr_t)m->peer;
	o->reason = (char *)(uintptr_t)m->reason;
	o->ram_bytes = m->ram_bytes;
	o->pages_total = m->npages;
	o->pages_demand = m->pages_demand;
	o->pages_background = m->pages_background;
	o->pages_zero = m->pages_zero;
	o->pages_installed = m->pages_installed;
	o->install_eexist = m->install_eexist;
	o->install_errors = m->install_errors;
	o->pages_duplicate = m->pages_duplicate;
	o->demand_faults = m->demand_faults;
	o->fault_p50_us = (double)hist_quantile(&m->lat, 0.50) / 1e3;
	o->fault_p99_us = (double)hist_quantile(&m->lat, 0.99) / 1e3;
	o->fault_max_us = (double)m->lat.max_ns / 1e3;
	o->blackout_ms = m->blackout_ms;
	o->total_s = mig_active(m) ? (double)(now_ns() - m->started_ns) / 1e9 : m->total_s;
	o->started_unix_ms = m->started_ms;
	o->ended_unix_ms = m->ended_ms;
	o->guest_verdict = (char *)(uintptr_t)m->verdict;
	o->guest_ok = m->verdict_ok;
	o->bytes_sent = m->bytes_sent;
	o->bytes_received = m->bytes_received;
	o->prefetch_pages = m->prefetch_pages;
	o->prefetch_hits = m->prefetch_hits;
	o->ring_faults = m->ring_faults;
	o->ring_errors = m->ring_errors;
	o->reconnects = m->reconnects;
	o->pages_poisoned = m->pages_poisoned;
	o->fault_path = (char *)(uintptr_t)m->fault_path;
	o->install_mode = (char *)(uintptr_t)m->install_mode;
}
