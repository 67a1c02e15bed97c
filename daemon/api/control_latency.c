/*
 * control_latency: GetFaultLatency, a destination migration's demand-fault
 * latency as the control API shows it: the user-space histogram, and per
 * phase and per thread from the eBPF maps when the programs are attached.
 * Loop thread only.
 */
#include <stdlib.h>

#include "control.h"
#include "h2.h"
#include "latency.h"
#include "migration.h"

#define CTL_LATENCY_SOURCE	"user-space timestamps"

/* The eBPF view of a migration's faults, when the programs are attached. */
static void
ctl_latency_bpf(const struct migration *m, Migrationd__V1__GetFaultLatencyResponse *r)
{
	static const char *names[FL_NPHASES] = { "total", "queue", "net", "install", "wake" };
	uint32_t tids[64];
	int nt;

	if (!lat_active() || m->role != MIG_DEST)
		return;
	r->annotated_exits = lat_counter(FL_CTR_ANNOTATED);
	r->phases = calloc(FL_NPHASES, sizeof(*r->phases));
	for (int p = 0; r->phases != NULL && p < FL_NPHASES; p++) {
		Migrationd__V1__PhaseLatency *x;
		struct fl_hist h;
		size_t nb = 0;

		if (lat_read(m->num, 0, p, &h) < 0 || h.count == 0 ||
		    (x = calloc(1, sizeof(*x))) == NULL)
			continue;
		migrationd__v1__phase_latency__init(x);
		x->phase = (char *)(uintptr_t)names[p];
		x->count = h.count;
		x->p50_us = (double)lat_quantile(&h, 0.50) / 1e3;
		x->p99_us = (double)lat_quantile(&h, 0.99) / 1e3;
		x->mean_us = (double)h.sum_ns / (double)h.count / 1e3;
		x->buckets = calloc(FL_BUCKETS, sizeof(*x->buckets));
		for (int b = 0; x->buckets != NULL && b < FL_BUCKETS; b++) {
			Migrationd__V1__LatencyBucket *lb;

			if (h.b[b] == 0 || (lb = calloc(1, sizeof(*lb))) == NULL)
				continue;
			migrationd__v1__latency_bucket__init(lb);
			lb->lower_us = b == 0 ? 0 : (double)(1ull << b) / 1e3;
			lb->upper_us = (double)(2ull << b) / 1e3;
			lb->count = h.b[b];
			x->buckets[nb++] = lb;
		}
		x->n_buckets = nb;
		r->phases[r->n_phases++] = x;
	}
	nt = lat_threads(m->num, tids, 64);
	r->threads = calloc((size_t)nt + 1, sizeof(*r->threads));
	for (int i = 0; r->threads != NULL && i < nt; i++) {
		Migrationd__V1__ThreadLatency *t;
		struct fl_hist h;

		if (lat_read(m->num, tids[i], FL_TOTAL, &h) < 0 ||
		    (t = calloc(1, sizeof(*t))) == NULL)
			continue;
		migrationd__v1__thread_latency__init(t);
		t->tid = tids[i];
		t->count = h.count;
		t->p50_us = (double)lat_quantile(&h, 0.50) / 1e3;
		t->p99_us = (double)lat_quantile(&h, 0.99) / 1e3;
		r->threads[r->n_threads++] = t;
	}
}

static void
ctl_latency_bpf_free(Migrationd__V1__GetFaultLatencyResponse *r)
{
	for (size_t p = 0; p < r->n_phases; p++) {
		for (size_t b = 0; b < r->phases[p]->n_buckets; b++)
			free(r->phases[p]->buckets[b]);
		free(r->phases[p]->buckets);
		free(r->phases[p]);
	}
	free(r->phases);
	for (size_t t = 0; t < r->n_threads; t++)
		free(r->threads[t]);
	free(r->threads);
}

void
ctl_latency(struct h2stream *s, const struct migration *m)
{
	Migrationd__V1__GetFaultLatencyResponse r =
	    MIGRATIOND__V1__GET_FAULT_LATENCY_RESPONSE__INIT;
	Migrationd__V1__LatencyBucket *b = NULL, **bp = NULL;
	const struct hist *h = &m->st.lat;
	size_t n = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		n += h->b[i] != 0;
	if ((b = calloc(n + 1, sizeof(*b))) == NULL || (bp = calloc(n + 1, sizeof(*bp))) == NULL) {
		free(b);
		h2_finish(s, GRPC_INTERNAL, "out of memory");
		return;
	}
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		Migrationd__V1__LatencyBucket *x;

		if (h->b[i] == 0)
			continue;
		x = &b[r.n_buckets];
		migrationd__v1__latency_bucket__init(x);
		x->lower_us = (double)hist_bucket_low(i) / 1e3;
		x->upper_us = (double)(i + 1 < HIST_BUCKETS ? hist_bucket_low(i + 1) :
		    h->max_ns + 1) / 1e3;
		x->count = h->b[i];
		bp[r.n_buckets++] = x;
	}
	r.buckets = bp;
	r.migration_id = (char *)(uintptr_t)m->id;
	r.vm = (char *)(uintptr_t)m->vm_name;
	r.count = h->count;
	r.p50_us = (double)hist_quantile(h, 0.50) / 1e3;
	r.p90_us = (double)hist_quantile(h, 0.90) / 1e3;
	r.p99_us = (double)hist_quantile(h, 0.99) / 1e3;
	r.p999_us = (double)hist_quantile(h, 0.999) / 1e3;
	r.min_us = (double)h->min_ns / 1e3;
	r.max_us = (double)h->max_ns / 1e3;
	r.mean_us = h->count ? (double)h->sum_ns / (double)h->count / 1e3 : 0;
	r.source = CTL_LATENCY_SOURCE;
	ctl_latency_bpf(m, &r);
	h2_send(s, &r.base);
	h2_finish(s, GRPC_OK, NULL);
	ctl_latency_bpf_free(&r);
	free(b);
	free(bp);
}

