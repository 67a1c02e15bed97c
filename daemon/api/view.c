/*
 * view: the migration as the control API and the records see it. One list
 * of the counters (VIEW_COUNTERS) fills the Migration message and reads a
 * record back, so a new figure is added in one place. Loop thread only.
 */
#include <stdio.h>

#include "util.h"
#include "view.h"

/* Counters named the same in struct mig_stats and the Migration message. */
#define VIEW_COUNTERS(X) \
	X(pages_demand) X(pages_background) X(pages_zero) X(pages_installed) \
	X(install_eexist) X(install_errors) X(pages_duplicate) X(demand_faults) \
	X(bytes_sent) X(bytes_received) X(prefetch_pages) X(prefetch_hits) \
	X(ring_faults) X(ring_errors) X(reconnects) X(pages_poisoned) X(blackout_ms) \
	X(precopy_rounds) X(dirty_pages_per_s) X(precopy_remaining_bytes) \
	X(projected_postcopy_bytes) X(pages_precopy) X(pages_invalidated) \
	X(max_bandwidth_bits_per_s) X(background_bits_per_s) X(pages_hot_first) \
	X(compress_bytes_before) X(compress_bytes_after) X(compressing) X(streams) \
	X(streams_wanted) X(bytes_received_in_place)

static const struct {
	enum mig_state			 st;
	Migrationd__V1__MigrationState	 pb;
} states[] = {
	{ MIG_PREPARED, MIGRATIOND__V1__MIGRATION_STATE__PREPARED },
	{ MIG_CONNECTING, MIGRATIOND__V1__MIGRATION_STATE__CONNECTING },
	{ MIG_BLACKOUT, MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT },
	{ MIG_POSTCOPY, MIGRATIOND__V1__MIGRATION_STATE__POSTCOPY },
	{ MIG_COMPLETED, MIGRATIOND__V1__MIGRATION_STATE__COMPLETED },
	{ MIG_PAUSED, MIGRATIOND__V1__MIGRATION_STATE__PAUSED },
	{ MIG_FAILED, MIGRATIOND__V1__MIGRATION_STATE__FAILED },
	{ MIG_CANCELLED, MIGRATIOND__V1__MIGRATION_STATE__CANCELLED },
	{ MIG_PRECOPY, MIGRATIOND__V1__MIGRATION_STATE__PRECOPY },
};

Migrationd__V1__MigrationState
view_state(enum mig_state st)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (states[i].st == st)
			return states[i].pb;
	return MIGRATIOND__V1__MIGRATION_STATE__MIGRATION_STATE_UNSPECIFIED;
}

enum mig_state
view_state_from(Migrationd__V1__MigrationState pb)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (states[i].pb == pb)
			return states[i].st;
	return 0;
}

Migrationd__V1__Role
view_role(enum mig_role role)
{
	return role == MIG_SOURCE ? MIGRATIOND__V1__ROLE__SOURCE :
	    MIGRATIOND__V1__ROLE__DESTINATION;
}

void
view_fill(const struct migration *m, Migrationd__V1__Migration *o)
{
	const struct mig_stats *st = &m->st;

	migrationd__v1__migration__init(o);
	o->id = (char *)(uintptr_t)m->id;
	o->vm = (char *)(uintptr_t)m->vm_name;
	o->role = view_role(m->role);
	o->state = view_state(m->state);
	o->peer = (char *)(uintptr_t)m->peer;
	o->reason = (char *)(uintptr_t)m->reason;
	o->ram_bytes = m->ram_bytes;
	o->pages_total = m->npages;
#define X(f) o->f = st->f;
	VIEW_COUNTERS(X)
#undef X
	o->fault_p50_us = (double)hist_quantile(&st->lat, 0.50) / 1e3;
	o->fault_p99_us = (double)hist_quantile(&st->lat, 0.99) / 1e3;
	o->fault_max_us = (double)st->lat.max_ns / 1e3;
	o->total_s = mig_active(m) ? (double)(now_ns() - m->started_ns) / 1e9 : m->total_s;
	o->postcopy_s = mig_active(m) && m->postcopy_ns != 0 ?
	    (double)(now_ns() - m->postcopy_ns) / 1e9 : st->postcopy_s;
	o->started_unix_ms = m->started_ms;
	o->ended_unix_ms = m->ended_ms;
	o->guest_verdict = (char *)(uintptr_t)m->verdict;
	o->guest_ok = m->verdict_ok;
	o->fault_path = (char *)(uintptr_t)m->fault_path;
	o->install_mode = (char *)(uintptr_t)m->install_mode;
	o->source_identity = (char *)(uintptr_t)m->src_ident;
	o->destination_identity = (char *)(uintptr_t)m->dst_ident;
	o->peer_address = (char *)(uintptr_t)m->peer_addr;
	o->expected_source = (char *)(uintptr_t)m->from;
	o->precopy = (char *)(uintptr_t)m->precopy;
	o->dirty_tracking = (char *)(uintptr_t)m->dirty_tracking;
	o->compression = (char *)(uintptr_t)m->compression;
}

void
view_restore(struct migration *m, const Migrationd__V1__Migration *i)
{
	struct mig_stats *st = &m->st;

	snprintf(m->peer, sizeof(m->peer), "%s", i->peer);
	snprintf(m->reason, sizeof(m->reason), "%s", i->reason);
	snprintf(m->verdict, sizeof(m->verdict), "%s", i->guest_verdict);
	snprintf(m->fault_path, sizeof(m->fault_path), "%s", i->fault_path);
	snprintf(m->install_mode, sizeof(m->install_mode), "%s", i->install_mode);
	snprintf(m->src_ident, sizeof(m->src_ident), "%s", i->source_identity);
	snprintf(m->dst_ident, sizeof(m->dst_ident), "%s", i->destination_identity);
	snprintf(m->peer_addr, sizeof(m->peer_addr), "%s", i->peer_address);
	snprintf(m->from, sizeof(m->from), "%s", i->expected_source);
	snprintf(m->precopy, sizeof(m->precopy), "%s", i->precopy);
	snprintf(m->dirty_tracking, sizeof(m->dirty_tracking), "%s", i->dirty_tracking);
	snprintf(m->compression, sizeof(m->compression), "%s", i->compression);
	m->verdict_ok = i->guest_ok;
	m->state = view_state_from(i->state);
#define X(f) st->f = i->f;
	VIEW_COUNTERS(X)
#undef X
	m->total_s = i->total_s;
	m->started_ms = i->started_unix_ms;
	m->ended_ms = i->ended_unix_ms;
	m->started_ns = now_ns() - (int64_t)(i->total_s * 1e9);
	st->postcopy_s = i->postcopy_s;
	if (i->postcopy_s > 0)
		m->postcopy_ns = now_ns() - (int64_t)(i->postcopy_s * 1e9);
}
