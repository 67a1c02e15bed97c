/*
 * metrics: a Prometheus text-format endpoint (GET /metrics) on a loopback
 * TCP port, served by libevent's HTTP server on the loop thread. Per
 * migration: pages by class, faults, reconnects, errors, and fault latency
 * as histograms in the standard _bucket/_sum/_count form, from the
 * user-space timestamps and, when eBPF is loaded, per phase and per
 * faulting thread from the BPF maps.
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

static void
metrics_labels(char *buf, size_t len, const struct migration *m)
{
	snprintf(buf, len, "migration=\"%s\",vm=\"%s\",role=\"%s\"", m->id, m->vm_name,
	    mig_role_name(m->role));
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

/* A BPF log2 histogram: bucket b holds [2^b, 2^(b+1)) ns. */
static void
metrics_bpf_hist(struct evbuffer *o, const struct fl_hist *h, const char *lab)
{
	uint64_t cum = 0;

	for (int b = 0; b < FL_BUCKETS; b++) {
		cum += h->b[b];
		if (b >= 9 && b <= 34)	/* 1 us .. 34 s */
			evbuffer_add_printf(o, "migrationd_fault_phase_seconds_bucket{%s,le=\"%g\"} "
			    "%llu\n", lab, (double)(2ull << b) / 1e9, (unsigned long long)cum);
	}
	evbuffer_add_printf(o, "migrationd_fault_phase_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
	    lab, (unsigned long long)h->count);
	evbuffer_add_printf(o, "migrationd_fault_phase_seconds_sum{%s} %.9f\n", lab,
	    (double)h->sum_ns / 1e9);
	evbuffer_add_printf(o, "migrationd_fault_phase_seconds_count{%s} %llu\n", lab,
	    (unsigned long long)h->count);
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *o = evbuffer_new();
	struct migration *m;
	char lab[300], l2[400];

	if (o == NULL || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "GET only");
		if (o != NULL)
			evbuffer_free(o);
		return;
	}
	evbuffer_add_printf(o, "# HELP migrationd_up 1 while the daemon runs; its fault "
	    "latency source.\n# TYPE migrationd_up gauge\nmigrationd_up{latency_source="
	    "\"%s\"} 1\n", lat_active() ? "ebpf" : "userspace");
	evbuffer_add_printf(o, "# HELP migrationd_bpf_faults_total Demand faults the eBPF "
	    "programs accounted.\n# TYPE migrationd_bpf_faults_total counter\n"
	    "migrationd_bpf_faults_total %llu\n"
	    "# HELP migrationd_bpf_annotated_exits_total KVM_EXIT_MEMORY_FAULT exits seen "
	    "by eBPF.\n# TYPE migrationd_bpf_annotated_exits_total counter\n"
	    "migrationd_bpf_annotated_exits_total %llu\n",
	    (unsigned long long)lat_counter(FL_CTR_FAULTS),
	    (unsigned long long)lat_counter(FL_CTR_ANNOTATED));
	evbuffer_add_printf(o, "# HELP migrationd_migration_info A migration and its state.\n"
	    "# TYPE migrationd_migration_info gauge\n"
	    "# HELP migrationd_pages_total Pages by class.\n# TYPE migrationd_pages_total counter\n"
	    "# HELP migrationd_demand_faults_total Faults that needed a fetch.\n"
	    "# TYPE migrationd_demand_faults_total counter\n"
	    "# HELP migrationd_reconnects_total Links lost and resumed.\n"
	    "# TYPE migrationd_reconnects_total counter\n"
	    "# HELP migrationd_errors_total Install errors, EEXIST, refused ring entries.\n"
	    "# TYPE migrationd_errors_total counter\n"
	    "# HELP migrationd_fault_latency_seconds Demand fault, request to installed "
	    "(user-space timestamps).\n# TYPE migrationd_fault_latency_seconds histogram\n"
	    "# HELP migrationd_fault_phase_seconds Demand fault phases measured by eBPF.\n"
	    "# TYPE migrationd_fault_phase_seconds histogram\n"
	    "# HELP migrationd_precopy_rounds Pre-copy rounds started.\n"
	    "# TYPE migrationd_precopy_rounds gauge\n"
	    "# HELP migrationd_precopy_dirty_pages_per_second Pages written per second "
	    "in the last pre-copy round.\n"
	    "# TYPE migrationd_precopy_dirty_pages_per_second gauge\n"
	    "# HELP migrationd_precopy_remaining_bytes What the current pre-copy round "
	    "still has to send.\n# TYPE migrationd_precopy_remaining_bytes gauge\n"
	    "# HELP migrationd_precopy_projected_postcopy_bytes What post-copy would fetch "
	    "after a switch at the end of this round.\n"
	    "# TYPE migrationd_precopy_projected_postcopy_bytes gauge\n");
	TAILQ_FOREACH(m, &mig_all, entry) {
		metrics_labels(lab, sizeof(lab), m);
		evbuffer_add_printf(o, "migrationd_migration_info{%s,state=\"%s\"} 1\n", lab,
		    mig_state_name(m->state));
		evbuffer_add_printf(o,
		    "migrationd_pages_total{%s,class=\"demand\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"background\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"zero\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"poisoned\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"duplicate\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"precopy\"} %llu\n"
		    "migrationd_pages_total{%s,class=\"invalidated\"} %llu\n"
		    "migrationd_demand_faults_total{%s} %llu\n"
		    "migrationd_reconnects_total{%s} %u\n"
		    "migrationd_errors_total{%s,kind=\"install\"} %llu\n"
		    "migrationd_errors_total{%s,kind=\"eexist\"} %llu\n"
		    "migrationd_errors_total{%s,kind=\"ring\"} %llu\n",
		    lab, (unsigned long long)m->st.pages_demand, lab,
		    (unsigned long long)m->st.pages_background, lab,
		    (unsigned long long)m->st.pages_zero, lab,
		    (unsigned long long)m->st.pages_poisoned, lab,
		    (unsigned long long)m->st.pages_duplicate, lab,
		    (unsigned long long)m->st.pages_precopy, lab,
		    (unsigned long long)m->st.pages_invalidated, lab,
		    (unsigned long long)m->st.demand_faults, lab, m->st.reconnects, lab,
		    (unsigned long long)m->st.install_errors, lab,
		    (unsigned long long)m->st.install_eexist, lab,
		    (unsigned long long)m->st.ring_errors);
		if (m->role == MIG_SOURCE && m->precopy[0] != '\0' && strcmp(m->precopy, "off"))
			evbuffer_add_printf(o, "migrationd_precopy_rounds{%s} %u\n"
			    "migrationd_precopy_dirty_pages_per_second{%s} %.1f\n"
			    "migrationd_precopy_remaining_bytes{%s} %llu\n"
			    "migrationd_precopy_projected_postcopy_bytes{%s} %llu\n", lab,
			    m->st.precopy_rounds, lab, m->st.dirty_pages_per_s, lab,
			    (unsigned long long)m->st.precopy_remaining_bytes, lab,
			    (unsigned long long)m->st.projected_postcopy_bytes);
		if (m->role != MIG_DEST)
			continue;
		metrics_user_hist(o, m, lab);
		for (int p = 0; p < FL_NPHASES; p++) {
			struct fl_hist h;

			if (lat_read(m->num, 0, p, &h) < 0)
				continue;
			snprintf(l2, sizeof(l2), "%s,phase=\"%s\"", lab, phase_name[p]);
			metrics_bpf_hist(o, &h, l2);
		}
		{
			uint32_t tids[64];
			int n = lat_threads(m->num, tids, 64);

			for (int i = 0; i < n; i++) {
				struct fl_hist h;

				if (lat_read(m->num, tids[i], FL_TOTAL, &h) < 0)
					continue;
				snprintf(l2, sizeof(l2), "%s,phase=\"total\",tid=\"%u\"", lab, tids[i]);
				metrics_bpf_hist(o, &h, l2);
			}
		}
	}
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
