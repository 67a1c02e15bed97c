/*
 * mig-ctl-output.c: how mig-ctl prints what the daemon answers: JSON
 * strings and one migration as JSON or as a human summary (print_migration
 * picks by --json), the live progress line of watch and migrate --wait, and
 * a watch event as one JSON line. The commands themselves are in mig-ctl.c.
 */
#include <stdio.h>
#include <string.h>

#include "mig-ctl.h"

void
json_str(const char *k, const char *v, int last)
{
	printf("\"%s\":\"", k);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\"%s", last ? "" : ",");
}

void
print_json(const Migrationd__V1__Migration *m)
{
	printf("{");
	json_str("id", m->id, 0);
	json_str("vm", m->vm, 0);
	json_str("role", migctl_role_name(m->role), 0);
	json_str("state", migctl_state_name(m->state), 0);
	json_str("peer", m->peer, 0);
	json_str("reason", m->reason, 0);
	printf("\"ram_bytes\":%llu,\"pages_total\":%llu,\"pages_demand\":%llu,"
	    "\"pages_background\":%llu,\"pages_zero\":%llu,\"pages_installed\":%llu,"
	    "\"install_eexist\":%llu,\"install_errors\":%llu,\"pages_duplicate\":%llu,"
	    "\"demand_faults\":%llu,\"fault_p50_us\":%.2f,\"fault_p99_us\":%.2f,"
	    "\"fault_max_us\":%.2f,\"blackout_ms\":%.3f,\"total_s\":%.3f,"
	    "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"started_unix_ms\":%lld,"
	    "\"ended_unix_ms\":%lld,\"guest_ok\":%s,\"prefetch_pages\":%llu,"
	    "\"prefetch_hits\":%llu,\"ring_faults\":%llu,\"ring_errors\":%llu,"
	    "\"reconnects\":%u,\"pages_poisoned\":%llu,",
	    (unsigned long long)m->ram_bytes, (unsigned long long)m->pages_total,
	    (unsigned long long)m->pages_demand, (unsigned long long)m->pages_background,
	    (unsigned long long)m->pages_zero, (unsigned long long)m->pages_installed,
	    (unsigned long long)m->install_eexist, (unsigned long long)m->install_errors,
	    (unsigned long long)m->pages_duplicate, (unsigned long long)m->demand_faults,
	    m->fault_p50_us, m->fault_p99_us, m->fault_max_us, m->blackout_ms, m->total_s,
	    (unsigned long long)m->bytes_sent, (unsigned long long)m->bytes_received,
	    (long long)m->started_unix_ms, (long long)m->ended_unix_ms,
	    m->guest_ok ? "true" : "false", (unsigned long long)m->prefetch_pages,
	    (unsigned long long)m->prefetch_hits, (unsigned long long)m->ring_faults,
	    (unsigned long long)m->ring_errors, m->reconnects,
	    (unsigned long long)m->pages_poisoned);
	json_str("fault_path", m->fault_path, 0);
	json_str("install_mode", m->install_mode, 0);
	json_str("peer_address", m->peer_address, 0);
	json_str("source_identity", m->source_identity, 0);
	json_str("destination_identity", m->destination_identity, 0);
	json_str("expected_source", m->expected_source, 0);
	json_str("precopy", m->precopy, 0);
	json_str("dirty_tracking", m->dirty_tracking, 0);
	printf("\"precopy_rounds\":%u,\"dirty_pages_per_s\":%.1f,"
	    "\"precopy_remaining_bytes\":%llu,\"projected_postcopy_bytes\":%llu,"
	    "\"pages_precopy\":%llu,\"pages_invalidated\":%llu,"
	    "\"max_bandwidth_bits_per_s\":%llu,\"background_bits_per_s\":%.0f,"
	    "\"pages_hot_first\":%llu,", m->precopy_rounds,
	    m->dirty_pages_per_s, (unsigned long long)m->precopy_remaining_bytes,
	    (unsigned long long)m->projected_postcopy_bytes,
	    (unsigned long long)m->pages_precopy, (unsigned long long)m->pages_invalidated,
	    (unsigned long long)m->max_bandwidth_bits_per_s, m->background_bits_per_s,
	    (unsigned long long)m->pages_hot_first);
	json_str("compression", m->compression, 0);
	printf("\"compressing\":%s,\"compress_bytes_before\":%llu,"
	    "\"compress_bytes_after\":%llu,", m->compressing ? "true" : "false",
	    (unsigned long long)m->compress_bytes_before,
	    (unsigned long long)m->compress_bytes_after);
	printf("\"streams\":%u,\"streams_wanted\":%u,\"postcopy_s\":%.3f,"
	    "\"bytes_received_in_place\":%llu,", m->streams, m->streams_wanted, m->postcopy_s,
	    (unsigned long long)m->bytes_received_in_place);
	json_str("guest_verdict", m->guest_verdict, 1);
	printf("}");
}

static void
print_human(const Migrationd__V1__Migration *m)
{
	printf("migration %s   vm %s   %s   %s\n", m->id, m->vm, migctl_role_name(m->role),
	    migctl_state_name(m->state));
	if (m->reason[0])
		printf("  reason:      %s\n", m->reason);
	printf("  peer:        %s", m->peer[0] ? m->peer : "-");
	if (m->peer_address[0] && strcmp(m->peer_address, m->peer) != 0)
		printf(" (at %s)", m->peer_address);
	printf("\n");
	/* Certificate identities: empty with peer TLS off. */
	printf("  source:      %s%s\n", m->source_identity[0] ? m->source_identity : "-",
	    m->role == MIGRATIOND__V1__ROLE__SOURCE && m->source_identity[0] ? " (this host)" : "");
	printf("  destination: %s%s\n", m->destination_identity[0] ?
	    m->destination_identity : "-", m->role == MIGRATIOND__V1__ROLE__DESTINATION &&
	    m->destination_identity[0] ? " (this host)" : "");
	if (m->expected_source[0])
		printf("  only from:   %s (prepare --from)\n", m->expected_source);
	printf("  RAM:         %llu MiB, %llu pages\n",
	    (unsigned long long)(m->ram_bytes >> 20), (unsigned long long)m->pages_total);
	printf("  pages:       %llu on demand, %llu background, %llu zero, %llu sent twice",
	    (unsigned long long)m->pages_demand, (unsigned long long)m->pages_background,
	    (unsigned long long)m->pages_zero, (unsigned long long)m->pages_duplicate);
	if (m->role == MIGRATIOND__V1__ROLE__DESTINATION)
		printf("; %llu installed, %llu EEXIST, %llu install errors",
		    (unsigned long long)m->pages_installed,
		    (unsigned long long)m->install_eexist,
		    (unsigned long long)m->install_errors);
	printf("\n");
	if (m->role == MIGRATIOND__V1__ROLE__DESTINATION)
	{
		printf("  faults:      %llu demand faults (%llu via the ring), latency p50 "
		    "%.1f us, p99 %.1f us, max %.1f us\n", (unsigned long long)m->demand_faults,
		    (unsigned long long)m->ring_faults, m->fault_p50_us, m->fault_p99_us,
		    m->fault_max_us);
		if (m->fault_path[0])
			printf("  paths:       faults through %s, installs by %s\n",
			    !strcmp(m->fault_path, "ring") ? "the fault ring" : "blocking userfaultfd",
			    !strcmp(m->install_mode, "minor") ?
			    "page cache + UFFDIO_CONTINUE (minor mode)" : "UFFDIO_COPY");
		printf("  prefetch:    %llu pages ahead of faults, %llu sequential faults "
		    "(%.0f%% of faults)\n", (unsigned long long)m->prefetch_pages,
		    (unsigned long long)m->prefetch_hits, m->demand_faults ?
		    100.0 * (double)m->prefetch_hits / (double)m->demand_faults : 0.0);
	}
	if (m->precopy_rounds || m->pages_precopy || (m->precopy[0] &&
	    strcmp(m->precopy, "off") != 0))
		printf("  pre-copy:    %s%s%s, %u rounds, %llu pages sent, %llu stale at the "
		    "switch-over, %.0f pages/s written, %llu bytes left in this round, "
		    "post-copy projected %llu bytes\n", m->precopy[0] ? m->precopy : "-",
		    m->dirty_tracking[0] ? "; tracking: " : "", m->dirty_tracking,
		    m->precopy_rounds, (unsigned long long)m->pages_precopy,
		    (unsigned long long)m->pages_invalidated, m->dirty_pages_per_s,
		    (unsigned long long)m->precopy_remaining_bytes,
		    (unsigned long long)m->projected_postcopy_bytes);
	if (m->pages_hot_first)
		printf("  hot first:   %llu recently written pages led the post-copy stream\n",
		    (unsigned long long)m->pages_hot_first);
	if (m->role == MIGRATIOND__V1__ROLE__SOURCE && m->max_bandwidth_bits_per_s)
		printf("  bandwidth:   background stream %.1f Mbit/s, cap %.1f Mbit/s\n",
		    m->background_bits_per_s / 1e6, (double)m->max_bandwidth_bits_per_s / 1e6);
	else if (m->role == MIGRATIOND__V1__ROLE__SOURCE)
		printf("  bandwidth:   background stream %.1f Mbit/s, no cap of its own\n",
		    m->background_bits_per_s / 1e6);
	if (m->role == MIGRATIOND__V1__ROLE__SOURCE && m->compression[0])
		printf("  compression: %s, %s now; %llu bytes -> %llu (ratio %.3f)\n",
		    m->compression, m->compressing ? "compressing" : "raw",
		    (unsigned long long)m->compress_bytes_before,
		    (unsigned long long)m->compress_bytes_after,
		    m->compress_bytes_before ? (double)m->compress_bytes_after /
		    (double)m->compress_bytes_before : 1.0);
	if (m->streams_wanted > m->streams && m->streams)
		printf("  streams:     %u background (%u asked; the destination takes %u)\n",
		    m->streams, m->streams_wanted, m->streams);
	else if (m->streams)
		printf("  streams:     %u background\n", m->streams);
	if (m->role == MIGRATIOND__V1__ROLE__DESTINATION && m->bytes_received)
		printf("  received:    %llu bytes, %llu of them read straight into place\n",
		    (unsigned long long)m->bytes_received,
		    (unsigned long long)m->bytes_received_in_place);
	printf("  blackout:    %.1f ms\n", m->blackout_ms);
	if (m->reconnects)
		printf("  reconnects:  %u (link lost and resumed)\n", m->reconnects);
	if (m->pages_poisoned)
		printf("  poisoned:    %llu pages unreadable at the source, installed as "
		    "poison\n", (unsigned long long)m->pages_poisoned);
	printf("  elapsed:     %.2f s", m->total_s);
	if (m->postcopy_s > 0)
		printf(" (%.2f s in post-copy)", m->postcopy_s);
	printf("\n");
	if (m->guest_verdict[0])
		printf("  guest:       %s\n", m->guest_verdict);
}

void
print_migration(const Migrationd__V1__Migration *m)
{
	if (json) {
		print_json(m);
		printf("\n");
	} else {
		print_human(m);
	}
}

int
terminal_state(Migrationd__V1__MigrationState s)
{
	return s == MIGRATIOND__V1__MIGRATION_STATE__COMPLETED ||
	    s == MIGRATIOND__V1__MIGRATION_STATE__FAILED ||
	    s == MIGRATIOND__V1__MIGRATION_STATE__CANCELLED;
}

static void
human_bytes(double b, char *out, size_t len)
{
	if (b >= 1e9)
		snprintf(out, len, "%.2f GB", b / 1e9);
	else if (b >= 1e6)
		snprintf(out, len, "%.1f MB", b / 1e6);
	else if (b >= 1e3)
		snprintf(out, len, "%.1f kB", b / 1e3);
	else
		snprintf(out, len, "%.0f B", b);
}

/* One line of progress; \r-redrawn on a terminal, one line a second otherwise. */
void
progress_line(const Migrationd__V1__MigrationEvent *ev, int tty)
{
	const Migrationd__V1__Migration *m = ev->migration;
	unsigned long long done = m->pages_demand + m->pages_background + m->pages_zero;
	int w = 30, fill = (int)(ev->progress * w);
	char eta[32] = "-", rate[32];

	if (fill > w)
		fill = w;
	if (ev->eta_s >= 0 && !terminal_state(m->state))
		snprintf(eta, sizeof(eta), "%.1fs", ev->eta_s);
	else if (terminal_state(m->state))
		snprintf(eta, sizeof(eta), "0s");
	human_bytes(ev->bytes_per_s, rate, sizeof(rate));
	if (m->state == MIGRATIOND__V1__MIGRATION_STATE__PRECOPY) {
		char left[32];

		human_bytes((double)m->precopy_remaining_bytes, left, sizeof(left));
		fprintf(stderr, "%sPRECOPY    round %u  %s left  %.0f pages/s dirtied  %s/s  "
		    "post-copy projected %llu pages%s", tty ? "\r" : "", m->precopy_rounds,
		    left, m->dirty_pages_per_s, rate, (unsigned long long)
		    (m->projected_postcopy_bytes / (m->ram_bytes / (m->pages_total ?
		    m->pages_total : 1))), tty ? "   " : "\n");
		return;
	}
	fprintf(stderr, "%s%-10s [%.*s%*s] %5.1f%%  %llu/%llu pages  %s/s  %.0f faults/s  "
	    "p99 %.0f us  ETA %s%s", tty ? "\r" : "", migctl_state_name(m->state), fill,
	    "##############################", w - fill, "", ev->progress * 100, done,
	    (unsigned long long)m->pages_total, rate, ev->faults_per_s, ev->fault_p99_us,
	    eta, tty ? "   " : "\n");
}

static const char *
event_kind(Migrationd__V1__MigrationEvent__Kind k)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(
	    &migrationd__v1__migration_event__kind__descriptor, (int)k);

	return e ? e->name : "UNKNOWN";
}

void
print_event_json(const Migrationd__V1__MigrationEvent *ev)
{
	printf("{");
	json_str("kind", event_kind(ev->kind), 0);
	json_str("previous_state", migctl_state_name(ev->previous_state), 0);
	printf("\"unix_ms\":%lld,\"pages_per_s\":%.1f,\"bytes_per_s\":%.1f,"
	    "\"faults_per_s\":%.1f,\"fault_p50_us\":%.2f,\"fault_p90_us\":%.2f,"
	    "\"fault_p99_us\":%.2f,\"fault_p999_us\":%.2f,\"progress\":%.4f,\"eta_s\":%.2f,"
	    "\"migration\":", (long long)ev->unix_ms, ev->pages_per_s, ev->bytes_per_s,
	    ev->faults_per_s, ev->fault_p50_us, ev->fault_p90_us, ev->fault_p99_us,
	    ev->fault_p999_us, ev->progress, ev->eta_s);
	print_json(ev->migration);
	printf("}\n");
	fflush(stdout);
}
