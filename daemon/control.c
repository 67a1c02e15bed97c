/*
 * control: the control API (proto/control.proto, service
 * migrationd.v1.Migrationd) for mig-ctl, libmigctl and orchestrators. gRPC
 * over HTTP/2 (h2.c) on the Unix control socket, authorised per connection
 * by SO_PEERCRED (root, the daemon's own user, or a member of [control]
 * group), and optionally over TLS on [control] listen (client certificates
 * against the CA). One dispatch switch over the method table of grpcmsg.c;
 * requests are decoded there into protobuf-c structs, checked here, and
 * answered with a status. WatchMigration keeps a watcher per stream, fed by
 * ctl_mig_changed() (called from mig_set_state) and a timer. Loop thread.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "grpcmsg.h"
#include "h2.h"
#include "latency.h"
#include "log.h"
#include "migrationd.h"

#ifndef MIG_VERSION
#define MIG_VERSION "unknown"
#endif

#define CTL_WATCH_MS		500
#define CTL_LATENCY_SOURCE	"user-space timestamps"

struct ctl_watch {
	LIST_ENTRY(ctl_watch)	 entry;
	struct h2stream		*s;
	struct migration	*m;
	struct event		*ev;
	struct timeval		 tv;
	int64_t			 last_ns;
	uint64_t		 last_pages, last_bytes, last_faults;
};

static LIST_HEAD(, ctl_watch) watches = LIST_HEAD_INITIALIZER(watches);
static int64_t ctl_started_ns;
static int ctl_activated;		/* control socket from systemd */
static gid_t ctl_gid = (gid_t)-1;	/* [control] group */
static struct evconnlistener *ctl_tcp;
static SSL_CTX *ctl_tls;

static uint64_t
pages_moved(const struct migration *m)
{
	return m->pages_demand + m->pages_background + m->pages_zero;
}

static void
ctl_watch_free(struct ctl_watch *w)
{
	LIST_REMOVE(w, entry);
	event_free(w->ev);
	free(w);
}

/* The client went away: forget the watcher. */
static void
ctl_watch_closed(struct h2stream *s, void *arg)
{
	ctl_watch_free(arg);
}

/*
 * Sends one event; ends the stream (and frees the watcher) when the
 * migration is over. Returns -1 once the watcher is gone.
 */
static int
ctl_watch_emit(struct ctl_watch *w, Migrationd__V1__MigrationEvent__Kind kind,
    Migrationd__V1__MigrationState prev)
{
	Migrationd__V1__MigrationEvent ev = MIGRATIOND__V1__MIGRATION_EVENT__INIT;
	Migrationd__V1__Migration one;
	const struct migration *m = w->m;
	int64_t now = now_ns();
	double dt = w->last_ns ? (double)(now - w->last_ns) / 1e9 : 0;
	uint64_t pages = pages_moved(m), bytes = m->bytes_sent + m->bytes_received;
	double rate;

	mig_to_proto(m, &one);
	ev.kind = kind;
	ev.migration = &one;
	ev.previous_state = prev;
	ev.unix_ms = now_ms();
	if (dt > 0) {
		ev.pages_per_s = (double)(pages - w->last_pages) / dt;
		ev.bytes_per_s = (double)(bytes - w->last_bytes) / dt;
		ev.faults_per_s = (double)(m->demand_faults - w->last_faults) / dt;
	}
	ev.fault_p50_us = (double)hist_quantile(&m->lat, 0.50) / 1e3;
	ev.fault_p90_us = (double)hist_quantile(&m->lat, 0.90) / 1e3;
	ev.fault_p99_us = (double)hist_quantile(&m->lat, 0.99) / 1e3;
	ev.fault_p999_us = (double)hist_quantile(&m->lat, 0.999) / 1e3;
	ev.progress = m->npages ? (double)pages / (double)m->npages : 0;
	if (ev.progress > 1)
		ev.progress = 1;
	if (m->state == MIGRATIOND__V1__MIGRATION_STATE__COMPLETED)
		ev.progress = 1;
	rate = ev.pages_per_s;
	ev.eta_s = !mig_active(m) ? 0 : rate > 0 && m->npages >= pages ?
	    (double)(m->npages - pages) / rate : -1;
	/* Rates span at least a quarter of the interval, so a state change
	 * right after a tick does not report a burst as the rate. */
	if (dt == 0 || dt * 4000 >= (double)(w->tv.tv_sec * 1000 + w->tv.tv_usec / 1000)) {
		w->last_ns = now;
		w->last_pages = pages;
		w->last_bytes = bytes;
		w->last_faults = m->demand_faults;
	}
	if (h2_send(w->s, &ev.base) < 0) {
		h2_finish(w->s, GRPC_INTERNAL, "cannot send the event");
		ctl_watch_free(w);
		return -1;
	}
	if (!mig_active(m)) {
		h2_finish(w->s, GRPC_OK, NULL);
		ctl_watch_free(w);
		return -1;
	}
	return 0;
}

static void
ctl_watch_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_watch *w = arg;

	if (ctl_watch_emit(w, MIGRATIOND__V1__MIGRATION_EVENT__KIND__PROGRESS, 0) == 0)
		evtimer_add(w->ev, &w->tv);
}

void
ctl_mig_changed(struct migration *m, Migrationd__V1__MigrationState prev)
{
	struct ctl_watch *w, *next;

	for (w = LIST_FIRST(&watches); w != NULL; w = next) {
		next = LIST_NEXT(w, entry);
		if (w->m == m)
			ctl_watch_emit(w, MIGRATIOND__V1__MIGRATION_EVENT__KIND__STATE_CHANGE,
			    prev);
	}
}

static void
ctl_watch_start(struct h2stream *s, const Migrationd__V1__WatchMigrationRequest *q)
{
	struct ctl_watch *w;
	struct migration *m;
	unsigned ms = q->interval_ms ? q->interval_ms : CTL_WATCH_MS;

	if (q->id_or_vm[0] == '\0') {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "id_or_vm is required");
		return;
	}
	if (ms < 50 || ms > 60000) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "interval_ms must be 50..60000");
		return;
	}
	if ((m = mig_find(q->id_or_vm)) == NULL) {
		h2_finish(s, GRPC_NOT_FOUND, "no such migration");
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->ev = evtimer_new(D->base, ctl_watch_tick, w)) == NULL) {
		free(w);
		h2_finish(s, GRPC_INTERNAL, "out of memory");
		return;
	}
	event_priority_set(w->ev, MIG_PRI_CONTROL);
	w->s = s;
	w->m = m;
	w->tv.tv_sec = ms / 1000;
	w->tv.tv_usec = (ms % 1000) * 1000;
	LIST_INSERT_HEAD(&watches, w, entry);
	h2_set_close(s, ctl_watch_closed, w);
	if (ctl_watch_emit(w, MIGRATIOND__V1__MIGRATION_EVENT__KIND__SNAPSHOT, 0) == 0)
		evtimer_add(w->ev, &w->tv);
}

static int
ctl_list(struct h2stream *s, const Migrationd__V1__ListMigrationsRequest *q)
{
	Migrationd__V1__ListMigrationsResponse lr =
	    MIGRATIOND__V1__LIST_MIGRATIONS_RESPONSE__INIT;
	Migrationd__V1__Migration *all = NULL, **allp = NULL;
	Migrationd__V1__VmInfo *vi = NULL, **vip = NULL;
	struct migration *m;
	struct vm *v;
	size_t nm = 0, nv = 0;
	int rc = 0;

	if (q->role != MIGRATIOND__V1__ROLE__ROLE_UNSPECIFIED &&
	    q->role != MIGRATIOND__V1__ROLE__SOURCE && q->role != MIGRATIOND__V1__ROLE__DESTINATION) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "unknown role");
		return 0;
	}
	if (protobuf_c_enum_descriptor_get_value(&migrationd__v1__migration_state__descriptor,
	    (int)q->state) == NULL) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "unknown state");
		return 0;
	}
	TAILQ_FOREACH(m, &D->migs, entry)
		nm++;
	TAILQ_FOREACH(v, &D->vms, entry)
		nv++;
	all = calloc(nm + 1, sizeof(*all));
	allp = calloc(nm + 1, sizeof(*allp));
	vi = calloc(nv + 1, sizeof(*vi));
	vip = calloc(nv + 1, sizeof(*vip));
	if (all == NULL || allp == NULL || vi == NULL || vip == NULL) {
		h2_finish(s, GRPC_INTERNAL, "out of memory");
		goto out;
	}
	TAILQ_FOREACH(m, &D->migs, entry) {
		Migrationd__V1__Role role = m->role == MIG_SOURCE ?
		    MIGRATIOND__V1__ROLE__SOURCE : MIGRATIOND__V1__ROLE__DESTINATION;

		if ((q->state && m->state != q->state) || (q->role && role != q->role) ||
		    (q->vm[0] && strcmp(q->vm, m->vm_name)))
			continue;
		mig_to_proto(m, &all[lr.n_migrations]);
		allp[lr.n_migrations] = &all[lr.n_migrations];
		lr.n_migrations++;
	}
	TAILQ_FOREACH(v, &D->vms, entry) {
		Migrationd__V1__VmInfo *x = &vi[lr.n_vms];

		migrationd__v1__vm_info__init(x);
		x->name = v->name;
		x->role = v->incoming ? MIGRATIOND__V1__ROLE__DESTINATION :
		    MIGRATIOND__V1__ROLE__SOURCE;
		if ((q->role && x->role != q->role) || (q->vm[0] && strcmp(q->vm, v->name)))
			continue;
		x->ram_bytes = v->ram_bytes;
		x->vcpus = v->vcpus;
		x->attached = v->sock >= 0;
		vip[lr.n_vms++] = x;
	}
	lr.migrations = allp;
	lr.vms = vip;
	rc = h2_send(s, &lr.base);
	h2_finish(s, rc < 0 ? GRPC_INTERNAL : GRPC_OK, rc < 0 ? "response too large" : NULL);
out:
	free(all);
	free(allp);
	free(vi);
	free(vip);
	return 0;
}

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

static void
ctl_latency(struct h2stream *s, struct migration *m)
{
	Migrationd__V1__GetFaultLatencyResponse r =
	    MIGRATIOND__V1__GET_FAULT_LATENCY_RESPONSE__INIT;
	Migrationd__V1__LatencyBucket *b = NULL, **bp = NULL;
	const struct hist *h = &m->lat;
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
	r.migration_id = m->id;
	r.vm = m->vm_name;
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

static void
ctl_health(struct h2stream *s)
{
	Migrationd__V1__GetHealthResponse r = MIGRATIOND__V1__GET_HEALTH_RESPONSE__INIT;
	Migrationd__V1__Listener l[4], *lp[4];
	struct migration *m;
	struct vm *v;
	size_t n = 0;

#define LST(k, a, t) do { \
	migrationd__v1__listener__init(&l[n]); \
	l[n].kind = (k); l[n].address = (char *)(uintptr_t)(a); l[n].tls = (t); \
	lp[n] = &l[n]; n++; \
} while (0)
	LST("control-unix", D->conf.control_socket, 0);
	if (D->conf.control_listen[0])
		LST("control-tcp", D->conf.control_listen, 1);
	if (D->conf.peer_listen[0])
		LST("peer", D->conf.peer_listen, D->conf.tls);
	LST("vmm", D->conf.vmm_socket, 0);
#undef LST
	r.version = MIG_VERSION;
	r.uptime_s = (double)(now_ns() - ctl_started_ns) / 1e9;
	r.listeners = lp;
	r.n_listeners = n;
	r.peer_tls = D->conf.tls;
	r.control_tls = D->conf.control_listen[0] != '\0';
	r.latency_source = (char *)(uintptr_t)lat_status();
	r.ebpf = (char *)(uintptr_t)(lat_active() ? "loaded" : lat_status());
	TAILQ_FOREACH(v, &D->vms, entry)
		r.vms_attached += v->sock >= 0;
	TAILQ_FOREACH(m, &D->migs, entry) {
		r.migrations_total++;
		r.migrations_active += mig_active(m);
	}
	r.socket_activated = ctl_activated;
	r.pid = (int32_t)getpid();
	h2_send(s, &r.base);
	h2_finish(s, GRPC_OK, NULL);
}

/*
 * Answers a call whose response is just the migration. Start, Get, Pause,
 * Recover and Cancel responses are all { Migration migration = 1; }, so one
 * encoding serves them all on the wire.
 */
static void
ctl_reply_migration(struct h2stream *s, const struct migration *m)
{
	Migrationd__V1__GetMigrationResponse r = MIGRATIOND__V1__GET_MIGRATION_RESPONSE__INIT;
	Migrationd__V1__Migration one;

	mig_to_proto(m, &one);
	r.migration = &one;
	h2_send(s, &r.base);
	h2_finish(s, GRPC_OK, NULL);
}

static struct migration *
ctl_find(struct h2stream *s, const char *key)
{
	struct migration *m;

	if (key == NULL || key[0] == '\0') {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "id_or_vm is required");
		return NULL;
	}
	if ((m = mig_find(key)) == NULL)
		h2_finish(s, GRPC_NOT_FOUND, "no such migration");
	return m;
}

static void
ctl_request(struct h2stream *s, const struct grpc_method *gm, const uint8_t *body,
    size_t len)
{
	ProtobufCMessage *q;
	struct migration *m = NULL;
	struct sockaddr_storage ss;
	struct vm *v;
	const char *why = NULL;
	char err[300];
	int sslen;

	if (!h2_authorised(s)) {
		snprintf(err, sizeof(err), "%s may not use this daemon (root, its own "
		    "user or [control] group only)", h2_who(s));
		log_warnx("control: refused %s", h2_who(s));
		h2_finish(s, GRPC_PERMISSION_DENIED, err);
		return;
	}
	if (gm == NULL) {
		h2_finish(s, GRPC_UNIMPLEMENTED, "no such method in migrationd.v1.Migrationd");
		return;
	}
	if ((q = grpcmsg_decode(gm->req, body, len, &why)) == NULL) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, why);
		return;
	}
	switch (gm->id) {
	case GM_PREPARE_INCOMING: {
		const Migrationd__V1__PrepareIncomingRequest *p = (void *)q;
		Migrationd__V1__PrepareIncomingResponse pr =
		    MIGRATIOND__V1__PREPARE_INCOMING_RESPONSE__INIT;
		Migrationd__V1__Migration one;

		if (p->vm[0] == '\0') {
			h2_finish(s, GRPC_INVALID_ARGUMENT, "vm is required");
			break;
		}
		if ((v = vm_find(p->vm)) == NULL) {
			h2_finish(s, GRPC_NOT_FOUND, "no VM of that name is attached here");
			break;
		}
		if (dst_prepare(v, &m, err, sizeof(err)) < 0) {
			h2_finish(s, GRPC_FAILED_PRECONDITION, err);
			break;
		}
		mig_to_proto(m, &one);
		pr.migration = &one;
		pr.token = m->token;
		h2_send(s, &pr.base);
		h2_finish(s, GRPC_OK, NULL);
		break;
	}
	case GM_START_MIGRATION: {
		const Migrationd__V1__StartMigrationRequest *p = (void *)q;

		if (p->vm[0] == '\0' || p->token[0] == '\0') {
			h2_finish(s, GRPC_INVALID_ARGUMENT, "vm, destination and token are required");
			break;
		}
		if (parse_hostport(p->destination, &ss, &sslen) < 0) {
			h2_finish(s, GRPC_INVALID_ARGUMENT, "destination must be IP:PORT");
			break;
		}
		if ((v = vm_find(p->vm)) == NULL) {
			h2_finish(s, GRPC_NOT_FOUND, "no VM of that name is attached here");
			break;
		}
		if (src_start(v, p->destination, p->token, &m, err, sizeof(err)) < 0) {
			h2_finish(s, GRPC_FAILED_PRECONDITION, err);
			break;
		}
		ctl_reply_migration(s, m);
		break;
	}
	case GM_GET_MIGRATION:
		if ((m = ctl_find(s, ((Migrationd__V1__GetMigrationRequest *)q)->id_or_vm)))
			ctl_reply_migration(s, m);
		break;
	case GM_LIST_MIGRATIONS:
		ctl_list(s, (void *)q);
		break;
	case GM_WATCH_MIGRATION:
		ctl_watch_start(s, (void *)q);
		break;
	case GM_PAUSE_MIGRATION:
		if ((m = ctl_find(s, ((Migrationd__V1__PauseMigrationRequest *)q)->id_or_vm)) == NULL)
			break;
		if (src_pause(m, err, sizeof(err)) < 0)
			h2_finish(s, GRPC_FAILED_PRECONDITION, err);
		else
			ctl_reply_migration(s, m);
		break;
	case GM_RECOVER_MIGRATION: {
		const Migrationd__V1__RecoverMigrationRequest *p = (void *)q;

		if ((m = ctl_find(s, p->id_or_vm)) == NULL)
			break;
		if (p->destination[0] && parse_hostport(p->destination, &ss, &sslen) < 0) {
			h2_finish(s, GRPC_INVALID_ARGUMENT, "destination must be IP:PORT");
			break;
		}
		if (src_recover(m, p->destination, err, sizeof(err)) < 0)
			h2_finish(s, GRPC_FAILED_PRECONDITION, err);
		else
			ctl_reply_migration(s, m);
		break;
	}
	case GM_CANCEL_MIGRATION:
		if ((m = ctl_find(s, ((Migrationd__V1__CancelMigrationRequest *)q)->id_or_vm)) == NULL)
			break;
		if ((m->role == MIG_SOURCE ? src_cancel(m, err, sizeof(err)) :
		    dst_cancel(m, err, sizeof(err))) < 0)
			h2_finish(s, GRPC_FAILED_PRECONDITION, err);
		else
			ctl_reply_migration(s, m);
		break;
	case GM_GET_FAULT_LATENCY:
		if ((m = ctl_find(s, ((Migrationd__V1__GetFaultLatencyRequest *)q)->id_or_vm)))
			ctl_latency(s, m);
		break;
	case GM_GET_HEALTH:
		ctl_health(s);
		break;
	default:
		h2_finish(s, GRPC_UNIMPLEMENTED, "method not implemented");
		break;
	}
	protobuf_c_message_free_unpacked(q, NULL);
}

static int
ctl_peer_in_group(int fd, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return 0;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct ucred cr = { .uid = (uid_t)-1 };
	socklen_t crlen = sizeof(cr);
	struct bufferevent *bev;
	char who[64];
	int ok;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		log_warn("control: SO_PEERCRED");
		evutil_closesocket(fd);
		return;
	}
	/* An unauthorised client is still served: it gets PERMISSION_DENIED. */
	ok = cr.uid == 0 || cr.uid == getuid() || (ctl_gid != (gid_t)-1 &&
	    (cr.gid == ctl_gid || ctl_peer_in_group(fd, ctl_gid)));
	snprintf(who, sizeof(who), "uid %d (pid %d)", (int)cr.uid, (int)cr.pid);
	evutil_make_socket_nonblocking(fd);
	if ((bev = bufferevent_socket_new(D->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	h2_conn_new(bev, ok, cr.uid, who, ctl_request);
}

static void
ctl_tcp_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bufferevent *bev;
	char who[64];

	char host[INET6_ADDRSTRLEN], port[8];

	if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, sizeof(host), "?");
	snprintf(who, sizeof(who), "%s:%s", host, port);
	evutil_make_socket_nonblocking(fd);
	if ((bev = tls_bev_accept(ctl_tls, fd)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	/* tls_bev_accept verified the client certificate against the CA. */
	h2_conn_new(bev, 1, (uid_t)-1, who, ctl_request);
}

static void
ctl_listen_error_cb(struct evconnlistener *l, void *arg)
{
	log_warn("control: accept");
}

int
ctl_listen(const char *path, int fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct group *gr;

	ctl_started_ns = now_ns();
	if (D->conf.control_group[0]) {
		if ((gr = getgrnam(D->conf.control_group)) == NULL) {
			log_warnx("%s: [control] group %s does not exist", __func__,
			    D->conf.control_group);
			return -1;
		}
		ctl_gid = gr->gr_gid;
	}
	if (fd >= 0) {
		/* An inherited socket may be blocking; the listener must not be. */
		ctl_activated = 1;
		if (evutil_make_socket_nonblocking(fd) < 0 ||
		    evutil_make_socket_closeonexec(fd) < 0) {
			log_warn("%s: inherited socket", __func__);
			return -1;
		}
		D->ctl_listener = evconnlistener_new(D->base, ctl_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	} else {
		if (strlen(path) >= sizeof(sun.sun_path)) {
			log_warnx("%s: path too long: %s", __func__, path);
			return -1;
		}
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		unlink(path);
		D->ctl_listener = evconnlistener_new_bind(D->base, ctl_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
		    (struct sockaddr *)&sun, sizeof(sun));
	}
	if (D->ctl_listener == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	evconnlistener_set_error_cb(D->ctl_listener, ctl_listen_error_cb);
	/* Anyone may connect; authorisation is per call (PERMISSION_DENIED). */
	if (fd < 0)
		chmod(path, 0666);
	if (D->conf.control_listen[0]) {
		struct sockaddr_storage ss;
		int sslen;

		if (parse_hostport(D->conf.control_listen, &ss, &sslen) < 0) {
			log_warnx("%s: [control] listen must be IP:PORT", __func__);
			return -1;
		}
		if ((ctl_tls = tls_ctx_new_h2(&D->conf)) == NULL)
			return -1;
		ctl_tcp = evconnlistener_new_bind(D->base, ctl_tcp_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 16,
		    (struct sockaddr *)&ss, sslen);
		if (ctl_tcp == NULL) {
			log_warn("%s: %s", __func__, D->conf.control_listen);
			return -1;
		}
	}
	return 0;
}

void
ctl_shutdown(void)
{
	struct ctl_watch *w;

	while ((w = LIST_FIRST(&watches)) != NULL) {
		h2_set_close(w->s, NULL, NULL);
		ctl_watch_free(w);
	}
	h2_shutdown();
	if (ctl_tcp != NULL)
		evconnlistener_free(ctl_tcp);
	ctl_tcp = NULL;
	SSL_CTX_free(ctl_tls);
	ctl_tls = NULL;
}
