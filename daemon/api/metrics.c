/*
 * metrics: a Prometheus text-format endpoint (GET /metrics) on a loopback
 * TCP port, served by libevent's HTTP server on the loop thread. Each
 * family comes as one group (HELP, TYPE, its samples), names carry their
 * unit (_seconds, _bytes) and counters end in _total, as `promtool check
 * metrics` wants. The daemon: its version and latency source, eBPF's
 * counters, migrations by role and state. Per migration: pages by class,
 * faults, peer bytes, reconnects, errors, blackout, and fault latency as
 * histograms (_bucket{le}/_sum/_count) from the user-space timestamps and,
 * when eBPF is loaded, per phase and per faulting thread from the BPF maps.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "latency.h"
#include "log.h"
#include "metrics.h"
#include "migration.h"
#include "util.h"

static struct evhttp *metrics_http;

static const char *phase_name[FL_NPHASES] = { "total", "queue", "net", "install", "wake" };

#ifndef MIG_VERSION
#define MIG_VERSION "unknown"
#endif

static void
metrics_labels(char *buf, size_t len, const struct migration *m)
{
	snprintf(buf, len, "migration=\"%s\",vm=\"%s\",role=\"%s\"", m->id, m->vm_name,
	    mig_role_name(m->role));
}

/* The HELP and TYPE lines of a family; its samples follow as one group. */
static void
metrics_family(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* User-space histogram (log-linear ns) as cumulative buckets at 2^k us. */
static void
metrics_user_hist(struct evbuffer *o, const struct migration *m, const char *lab)
{
	uint64_t cum = 0;
	unsigned b = 0;

	for (int k = 0; k <= 20; k++) {
		uint64_t le_ns = 1000ull << k;

		while (b < HIST_BUCKETS && hist_bucket_low(b + 1) <= le_ns)
			cum += m->st.lat.b[b++];
		evbuffer_add_printf(o, "migrationd_fault_latency_seconds_bucket{%s,le=\"%g\"} %llu\n",
		    lab, (double)le_ns / 1e9, (unsigned long long)cum);
	}
	evbuffer_add_printf(o, "migrationd_fault_latency_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
	    lab, (unsigned long long)m->st.lat.count);
	evbuffer_add_printf(o, "migrationd_fault_latency_seconds_sum{%s} %.9f\n", lab,
	    (double)m->st.lat.sum_ns / 1e9);
	evbuffer_add_printf(o, "migrationd_fault_latency_seconds_count{%s} %llu\n", lab,
	    (unsigned long long)m->st.lat.count);
}

/* A BPF log2 histogram of family `name`: bucket b holds [2^b, 2^(b+1)) ns. */
static void
metrics_bpf_hist(struct evbuffer *o, const char *name, const struct fl_hist *h,
    const char *lab)
{
	uint64_t cum = 0;

	for (int b = 0; b < FL_BUCKETS; b++) {
		cum += h->b[b];
		if (b >= 9 && b <= 34)	/* 1 us .. 34 s */
			evbuffer_add_printf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lab,
			    (double)(2ull << b) / 1e9, (unsigned long long)cum);
	}
	evbuffer_add_printf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lab,
	    (unsigned long long)h->count);
	evbuffer_add_printf(o, "%s_sum{%s} %.9f\n", name, lab, (double)h->sum_ns / 1e9);
	evbuffer_add_printf(o, "%s_count{%s} %llu\n", name, lab, (unsigned long long)h->count);
}

/* The daemon's own families: what it is, eBPF's counters, migrations by state. */
static void
metrics_daemon(struct evbuffer *o)
{
	static const enum mig_state states[] = { MIG_PREPARED, MIG_CONNECTING, MIG_PRECOPY,
	    MIG_BLACKOUT, MIG_POSTCOPY, MIG_COMPLETED, MIG_PAUSED, MIG_FAILED, MIG_CANCELLED };
	struct migration *m;

	metrics_family(o, "migrationd_info", "gauge", "The daemon: its version and fault "
	    "latency source (ebpf or userspace); always 1.");
	evbuffer_add_printf(o, "migrationd_info{version=\"%s\",latency_source=\"%s\"} 1\n",
	    MIG_VERSION, lat_active() ? "ebpf" : "userspace");
	metrics_family(o, "migrationd_bpf_faults_total", "counter",
	    "Demand faults the eBPF programs accounted.");
	evbuffer_add_printf(o, "migrationd_bpf_faults_total %llu\n",
	    (unsigned long long)lat_counter(FL_CTR_FAULTS));
	metrics_family(o, "migrationd_bpf_annotated_exits_total", "counter",
	    "KVM_EXIT_MEMORY_FAULT exits seen by eBPF (all VMs of the host).");
	evbuffer_add_printf(o, "migrationd_bpf_annotated_exits_total %llu\n",
	    (unsigned long long)lat_counter(FL_CTR_ANNOTATED));
	metrics_family(o, "migrationd_migrations", "gauge",
	    "Migration records this daemon keeps, by role and state.");
	for (int r = 0; r < 2; r++) {
		enum mig_role role = r == 0 ? MIG_SOURCE : MIG_DEST;

		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
			unsigned n = 0;

			TAILQ_FOREACH(m, &mig_all, entry)
				n += m->role == role && m->state == states[i];
			evbuffer_add_printf(o, "migrationd_migrations{role=\"%s\",state=\"%s\"} %u\n",
			    mig_role_name(role), mig_state_name(states[i]), n);
		}
	}
}

/* One sample per migration (PRINT(o, m, lab) prints it), under its family. */
#define METRICS_EACH(o, name, type, help, PRINT) do {			\
	struct migration *m_;						\
	char lab_[300];							\
									\
	metrics_family(o, name, type, help);				\
	TAILQ_FOREACH(m_, &mig_all, entry) {				\
		metrics_labels(lab_, sizeof(lab_), m_);			\
		PRINT(o, m_, lab_);					\
	}								\
} while (0)

#define P_INFO(o, m, l) evbuffer_add_printf(o, "migrationd_migration_info{%s,state=\"%s\"} 1\n", \
	l, mig_state_name((m)->state))
#define P_RAM(o, m, l) evbuffer_add_printf(o, "migrationd_migration_ram_bytes{%s} %llu\n", l, \
	(unsigned long long)(m)->ram_bytes)
#define P_PAGES(o, m, l) evbuffer_add_printf(o,				\
	"migrationd_pages_total{%s,class=\"demand\"} %llu\n"		\
	"migrationd_pages_total{%s,class=\"background\"} %llu\n"		\
	"migrationd_pages_total{%s,class=\"zero\"} %llu\n"			\
	"migrationd_pages_total{%s,class=\"poisoned\"} %llu\n"		\
	"migrationd_pages_total{%s,class=\"duplicate\"} %llu\n"		\
	"migrationd_pages_total{%s,class=\"precopy\"} %llu\n"		\
	"migrationd_pages_total{%s,class=\"invalidated\"} %llu\n",	\
	l, (unsigned long long)(m)->st.pages_demand,			\
	l, (unsigned long long)(m)->st.pages_background,		\
	l, (unsigned long long)(m)->st.pages_zero,			\
	l, (unsigned long long)(m)->st.pages_poisoned,			\
	l, (unsigned long long)(m)->st.pages_duplicate,			\
	l, (unsigned long long)(m)->st.pages_precopy,			\
	l, (unsigned long long)(m)->st.pages_invalidated)
#define P_FAULTS(o, m, l) evbuffer_add_printf(o, "migrationd_demand_faults_total{%s} %llu\n", \
	l, (unsigned long long)(m)->st.demand_faults)
#define P_BYTES(o, m, l) evbuffer_add_printf(o,				\
	"migrationd_peer_bytes_total{%s,direction=\"sent\"} %llu\n"	\
	"migrationd_peer_bytes_total{%s,direction=\"received\"} %llu\n",	\
	l, (unsigned long long)(m)->st.bytes_sent, l, (unsigned long long)(m)->st.bytes_received)
#define P_RECONN(o, m, l) evbuffer_add_printf(o, "migrationd_reconnects_total{%s} %u\n", l, \
	(m)->st.reconnects)
#define P_ERRORS(o, m, l) evbuffer_add_printf(o,				\
	"migrationd_errors_total{%s,kind=\"install\"} %llu\n"		\
	"migrationd_errors_total{%s,kind=\"eexist\"} %llu\n"		\
	"migrationd_errors_total{%s,kind=\"ring\"} %llu\n",		\
	l, (unsigned long long)(m)->st.install_errors,			\
	l, (unsigned long long)(m)->st.install_eexist,			\
	l, (unsigned long long)(m)->st.ring_errors)
#define P_BLACKOUT(o, m, l) evbuffer_add_printf(o, "migrationd_blackout_seconds{%s} %.6f\n", \
	l, (m)->st.blackout_ms / 1e3)
/* Pre-copy gauges: source migrations that pre-copy. */
#define PRECOPY_ON(m) ((m)->role == MIG_SOURCE && (m)->precopy[0] != '\0' && \
	strcmp((m)->precopy, "off") != 0)
#define P_ROUNDS(o, m, l) do { if (PRECOPY_ON(m)) evbuffer_add_printf(o,	\
	"migrationd_precopy_rounds{%s} %u\n", l, (m)->st.precopy_rounds); } while (0)
#define P_DIRTY(o, m, l) do { if (PRECOPY_ON(m)) evbuffer_add_printf(o,	\
	"migrationd_precopy_dirty_pages_per_second{%s} %.1f\n", l,		\
	(m)->st.dirty_pages_per_s); } while (0)
#define P_REMAIN(o, m, l) do { if (PRECOPY_ON(m)) evbuffer_add_printf(o,	\
	"migrationd_precopy_remaining_bytes{%s} %llu\n", l,			\
	(unsigned long long)(m)->st.precopy_remaining_bytes); } while (0)
#define P_PROJ(o, m, l) do { if (PRECOPY_ON(m)) evbuffer_add_printf(o,	\
	"migrationd_precopy_projected_postcopy_bytes{%s} %llu\n", l,		\
	(unsigned long long)(m)->st.projected_postcopy_bytes); } while (0)
/* Compression: source migrations. */
#define P_CZ(o, m, l) do { if ((m)->role == MIG_SOURCE) evbuffer_add_printf(o,	\
	"migrationd_compress_bytes_total{%s,stage=\"before\"} %llu\n"		\
	"migrationd_compress_bytes_total{%s,stage=\"after\"} %llu\n", l,	\
	(unsigned long long)(m)->st.compress_bytes_before, l,			\
	(unsigned long long)(m)->st.compress_bytes_after); } while (0)
#define P_CZ_ON(o, m, l) do { if ((m)->role == MIG_SOURCE) evbuffer_add_printf(o, \
	"migrationd_compressing{%s} %u\n", l, (m)->st.compressing); } while (0)
#define P_STREAMS(o, m, l) evbuffer_add_printf(o, "migrationd_streams{%s} %u\n", l, \
	(m)->st.streams)
#define P_USER_HIST(o, m, l) do { if ((m)->role == MIG_DEST) metrics_user_hist(o, m, l); } while (0)

/* eBPF's per-phase histograms of the destination migrations. */
static void
metrics_phases(struct evbuffer *o, const struct migration *m, const char *lab)
{
	char l2[400];

	if (m->role != MIG_DEST)
		return;
	for (int p = 0; p < FL_NPHASES; p++) {
		struct fl_hist h;

		if (lat_read(m->num, 0, p, &h) < 0)
			continue;
		snprintf(l2, sizeof(l2), "%s,phase=\"%s\"", lab, phase_name[p]);
		metrics_bpf_hist(o, "migrationd_fault_phase_seconds", &h, l2);
	}
}

/* eBPF's total per faulting thread (a vCPU, or a VMM thread). */
static void
metrics_threads(struct evbuffer *o, const struct migration *m, const char *lab)
{
	uint32_t tids[64];
	char l2[400];
	int n;

	if (m->role != MIG_DEST)
		return;
	n = lat_threads(m->num, tids, 64);
	for (int i = 0; i < n; i++) {
		struct fl_hist h;

		if (lat_read(m->num, tids[i], FL_TOTAL, &h) < 0)
			continue;
		snprintf(l2, sizeof(l2), "%s,tid=\"%u\"", lab, tids[i]);
		metrics_bpf_hist(o, "migrationd_thread_fault_seconds", &h, l2);
	}
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *o = evbuffer_new();

	if (o == NULL || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "GET only");
		if (o != NULL)
			evbuffer_free(o);
		return;
	}
	metrics_daemon(o);
	METRICS_EACH(o, "migrationd_migration_info", "gauge",
	    "A migration record and its state; always 1.", P_INFO);
	METRICS_EACH(o, "migrationd_migration_ram_bytes", "gauge",
	    "Guest RAM of the migrating VM.", P_RAM);
	METRICS_EACH(o, "migrationd_pages_total", "counter",
	    "Pages moved, by class (demand, background, zero, poisoned, duplicate).", P_PAGES);
	METRICS_EACH(o, "migrationd_demand_faults_total", "counter",
	    "Guest faults that needed a fetch from the source.", P_FAULTS);
	METRICS_EACH(o, "migrationd_peer_bytes_total", "counter",
	    "Bytes on the peer channels, by direction.", P_BYTES);
	METRICS_EACH(o, "migrationd_reconnects_total", "counter",
	    "Peer links lost and resumed.", P_RECONN);
	METRICS_EACH(o, "migrationd_errors_total", "counter",
	    "Install errors, EEXIST answers, refused ring entries.", P_ERRORS);
	METRICS_EACH(o, "migrationd_precopy_rounds", "gauge",
	    "Pre-copy rounds started (source).", P_ROUNDS);
	METRICS_EACH(o, "migrationd_precopy_dirty_pages_per_second", "gauge",
	    "Pages written per second in the last pre-copy round (source).", P_DIRTY);
	METRICS_EACH(o, "migrationd_precopy_remaining_bytes", "gauge",
	    "What the current pre-copy round still has to send (source).", P_REMAIN);
	METRICS_EACH(o, "migrationd_precopy_projected_postcopy_bytes", "gauge",
	    "What post-copy would fetch after a switch at the end of this round "
	    "(source).", P_PROJ);
	METRICS_EACH(o, "migrationd_compress_bytes_total", "counter",
	    "Background page runs raw (before) and on the wire (after; compressed "
	    "or raw) (source).", P_CZ);
	METRICS_EACH(o, "migrationd_compressing", "gauge",
	    "1 while background pages are being compressed (source).", P_CZ_ON);
	METRICS_EACH(o, "migrationd_streams", "gauge",
	    "Background streams in use ([peer] streams; fewer when the peer takes "
	    "fewer).", P_STREAMS);
	METRICS_EACH(o, "migrationd_blackout_seconds", "gauge",
	    "Time the VM ran nowhere (paused at the source until it ran at the "
	    "destination).", P_BLACKOUT);
	METRICS_EACH(o, "migrationd_fault_latency_seconds", "histogram",
	    "Demand fault, request sent to page installed (user-space timestamps; "
	    "destination).", P_USER_HIST);
	METRICS_EACH(o, "migrationd_fault_phase_seconds", "histogram",
	    "Demand fault phases measured by eBPF (total, queue, net, install, wake; "
	    "destination).", metrics_phases);
	METRICS_EACH(o, "migrationd_thread_fault_seconds", "histogram",
	    "Demand fault to page installed per faulting thread, measured by eBPF "
	    "(destination).", metrics_threads);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", o);
	evbuffer_free(o);
}

int
metrics_listen(const char *hostport)
{
	char host[128], *colon;
	int port;

	snprintf(host, sizeof(host), "%s", hostport);
	if ((colon = strrchr(host, ':')) == NULL || (port = atoi(colon + 1)) <= 0 ||
	    port > 65535) {
		log_warnx("%s: bad address %s (want IP:PORT)", __func__, hostport);
		return -1;
	}
	*colon = '\0';
	if ((metrics_http = evhttp_new(D->base)) == NULL ||
	    evhttp_bind_socket(metrics_http, host, (uint16_t)port) < 0) {
		log_warn("%s: %s", __func__, hostport);
		return -1;
	}
	evhttp_set_allowed_methods(metrics_http, EVHTTP_REQ_GET);
	evhttp_set_cb(metrics_http, "/metrics", metrics_cb, NULL);
	log_info("metrics on http://%s/metrics", hostport);
	return 0;
}

void
metrics_stop(void)
{
	if (metrics_http != NULL)
		evhttp_free(metrics_http);
	metrics_http = NULL;
}
