/*
 * control: the control API (proto/control.proto, service
 * migrationd.v1.Migrationd) for mig-ctl, libmigctl and orchestrators. gRPC
 * over HTTP/2 (h2.c) on the Unix control socket and optionally over TLS on
 * [control] listen (client certificates against [control] ca). Who may call
 * what, and the audit log, is authz.c; the standard health and reflection
 * services are grpc_std.c. One dispatch switch over the method table of grpcmsg.c;
 * requests are decoded there into protobuf-c structs, checked here, and
 * answered with a status. WatchMigration keeps a watcher per stream, fed by
 * the model's state changes (an observer, ctl_observer) and a timer. Loop
 * thread.
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

#include "authz.h"
#include "compress.h"
#include "control.h"
#include "dest.h"
#include "grpc_std.h"
#include "grpcmsg.h"
#include "h2.h"
#include "latency.h"
#include "log.h"
#include "migration.h"
#include "rate.h"
#include "source.h"
#include "tls.h"
#include "util.h"
#include "view.h"
#include "vm.h"

#ifndef MIG_VERSION
#define MIG_VERSION "unknown"
#endif

#define CTL_WATCH_MS		500

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
static struct evconnlistener *ctl_unix, *ctl_tcp;
static SSL_CTX *ctl_tls;

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
    enum mig_state prev)
{
	Migrationd__V1__MigrationEvent ev = MIGRATIOND__V1__MIGRATION_EVENT__INIT;
	Migrationd__V1__Migration one;
	const struct migration *m = w->m;
	int64_t now = now_ns();
	double dt = w->last_ns ? (double)(now - w->last_ns) / 1e9 : 0;
	uint64_t pages = mig_pages_moved(m), bytes = m->st.bytes_sent + m->st.bytes_received;
	double rate;

	view_fill(m, &one);
	ev.kind = kind;
	ev.migration = &one;
	ev.previous_state = view_state(prev);
	ev.unix_ms = now_ms();
	if (dt > 0) {
		ev.pages_per_s = (double)(pages - w->last_pages) / dt;
		ev.bytes_per_s = (double)(bytes - w->last_bytes) / dt;
		ev.faults_per_s = (double)(m->st.demand_faults - w->last_faults) / dt;
	}
	ev.fault_p50_us = (double)hist_quantile(&m->st.lat, 0.50) / 1e3;
	ev.fault_p90_us = (double)hist_quantile(&m->st.lat, 0.90) / 1e3;
	ev.fault_p99_us = (double)hist_quantile(&m->st.lat, 0.99) / 1e3;
	ev.fault_p999_us = (double)hist_quantile(&m->st.lat, 0.999) / 1e3;
	ev.progress = m->npages ? (double)pages / (double)m->npages : 0;
	if (ev.progress > 1)
		ev.progress = 1;
	if (m->state == MIG_COMPLETED)
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
		w->last_faults = m->st.demand_faults;
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

/*
 * The model's observer: a state change is an event for m's watchers. A
 * watcher ends with its migration, so none should be left when its record
 * expires; if one is, it ends there, never pointing at a freed record.
 */
static void
ctl_observer(struct migration *m, enum mig_event what, enum mig_state prev)
{
	struct ctl_watch *w, *next;

	if (what == MIG_EV_SAVE)
		return;
	for (w = LIST_FIRST(&watches); w != NULL; w = next) {
		next = LIST_NEXT(w, entry);
		if (w->m != m)
			continue;
		if (what == MIG_EV_STATE) {
			ctl_watch_emit(w, MIGRATIOND__V1__MIGRATION_EVENT__KIND__STATE_CHANGE,
			    prev);
		} else {
			h2_finish(w->s, GRPC_NOT_FOUND, "the migration's record expired");
			ctl_watch_free(w);
		}
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
	TAILQ_FOREACH(m, &mig_all, entry)
		nm++;
	TAILQ_FOREACH(v, &vm_all, entry)
		nv++;
	all = calloc(nm + 1, sizeof(*all));
	allp = calloc(nm + 1, sizeof(*allp));
	vi = calloc(nv + 1, sizeof(*vi));
	vip = calloc(nv + 1, sizeof(*vip));
	if (all == NULL || allp == NULL || vi == NULL || vip == NULL) {
		h2_finish(s, GRPC_INTERNAL, "out of memory");
		goto out;
	}
	TAILQ_FOREACH(m, &mig_all, entry) {
		Migrationd__V1__Role role = view_role(m->role);

		if ((q->state && view_state(m->state) != q->state) || (q->role && role != q->role) ||
		    (q->vm[0] && strcmp(q->vm, m->vm_name)))
			continue;
		view_fill(m, &all[lr.n_migrations]);
		allp[lr.n_migrations] = &all[lr.n_migrations];
		lr.n_migrations++;
	}
	TAILQ_FOREACH(v, &vm_all, entry) {
		Migrationd__V1__VmInfo *x = &vi[lr.n_vms];

		migrationd__v1__vm_info__init(x);
		x->name = v->name;
		x->role = v->dest ? MIGRATIOND__V1__ROLE__DESTINATION :
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
	TAILQ_FOREACH(v, &vm_all, entry)
		r.vms_attached += v->sock >= 0;
	TAILQ_FOREACH(m, &mig_all, entry) {
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

	view_fill(m, &one);
	r.migration = &one;
	authz_audit_migration(s, m);
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
	authz_audit_migration(s, m);
	return m;
}

static void
ctl_prepare(struct h2stream *s, const void *q)
{
	const Migrationd__V1__PrepareIncomingRequest *p = q;
	Migrationd__V1__PrepareIncomingResponse pr =
	    MIGRATIOND__V1__PREPARE_INCOMING_RESPONSE__INIT;
	Migrationd__V1__Migration one;
	struct migration *m;
	struct vm *v;
	char err[300];

	if (p->vm[0] == '\0') {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "vm is required");
		return;
	}
	if (p->source_identity[0] != '\0' && !D->conf.tls) {
		h2_finish(s, GRPC_FAILED_PRECONDITION, "source_identity (--from) needs peer "
		    "TLS: with [tls] enabled = off no source shows a certificate");
		return;
	}
	if (strlen(p->source_identity) >= sizeof(((struct migration *)0)->from)) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "source_identity is too long");
		return;
	}
	if ((v = vm_find(p->vm)) == NULL) {
		h2_finish(s, GRPC_NOT_FOUND, "no VM of that name is attached here");
		return;
	}
	if (dst_prepare(v, p->source_identity, &m, err, sizeof(err)) < 0) {
		h2_finish(s, GRPC_FAILED_PRECONDITION, err);
		return;
	}
	view_fill(m, &one);
	pr.migration = &one;
	pr.token = m->token;
	authz_audit_migration(s, m);
	h2_send(s, &pr.base);
	h2_finish(s, GRPC_OK, NULL);
}

/* A destination for StartMigration or RecoverMigration: NAME:PORT,
 * IPV4:PORT or [IPV6]:PORT (the name is resolved when the daemon dials). */
static int
ctl_destination_ok(struct h2stream *s, const char *dest)
{
	char host[256], why[100], msg[200];
	unsigned port;

	if (strlen(dest) >= sizeof(((struct migration *)0)->peer) ||
	    split_hostport(dest, host, sizeof(host), &port, why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "destination %.60s: %s", dest,
		    strlen(dest) >= sizeof(((struct migration *)0)->peer) ? "too long" : why);
		h2_finish(s, GRPC_INVALID_ARGUMENT, msg);
		return 0;
	}
	return 1;
}

static void
ctl_start(struct h2stream *s, const void *q)
{
	const Migrationd__V1__StartMigrationRequest *p = q;
	struct precopy_policy pc = D->conf.precopy;
	int cz = D->conf.compression;
	struct migration *m;
	struct vm *v;
	char err[300];

	if (p->vm[0] == '\0' || p->token[0] == '\0') {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "vm, destination and token are required");
		return;
	}
	if (p->precopy[0] != '\0' && precopy_parse(p->precopy, &pc, err, sizeof(err)) < 0) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, err);
		return;
	}
	if (!ctl_destination_ok(s, p->destination))
		return;
	if ((v = vm_find(p->vm)) == NULL) {
		h2_finish(s, GRPC_NOT_FOUND, "no VM of that name is attached here");
		return;
	}
	if (p->max_bandwidth_bits_per_s != 0 && p->max_bandwidth_bits_per_s < RATE_MIN_BPS) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "max_bandwidth_bits_per_s below 100000");
		return;
	}
	if (p->compression[0] != '\0' && compress_parse(p->compression, &cz, err,
	    sizeof(err)) < 0) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, err);
		return;
	}
	if (p->streams > MIG_STREAMS_MAX) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, "streams above 8");
		return;
	}
	if (src_start(v, p->destination, p->token, &pc, p->max_bandwidth_bits_per_s, &m, err,
	    sizeof(err)) < 0) {
		h2_finish(s, GRPC_FAILED_PRECONDITION, err);
		return;
	}
	if (p->streams != 0)	/* before the Welcome says what the peer takes */
		m->st.streams_wanted = p->streams;
	cz_start(m, cz);	/* before its first page: the channels are dialling */
	ctl_reply_migration(s, m);
}

static void
ctl_get(struct h2stream *s, const void *q)
{
	struct migration *m;

	if ((m = ctl_find(s, ((const Migrationd__V1__GetMigrationRequest *)q)->id_or_vm)))
		ctl_reply_migration(s, m);
}

static void
ctl_list_call(struct h2stream *s, const void *q)
{
	ctl_list(s, q);
}

static void
ctl_watch_call(struct h2stream *s, const void *q)
{
	ctl_watch_start(s, q);
}

/* An operator action on a migration: the answer is the migration, or why not. */
static void
ctl_act(struct h2stream *s, struct migration *m, int rc, const char *err)
{
	if (rc < 0)
		h2_finish(s, GRPC_FAILED_PRECONDITION, err);
	else
		ctl_reply_migration(s, m);
}

static void
ctl_pause(struct h2stream *s, const void *q)
{
	struct migration *m;
	char err[300];

	if ((m = ctl_find(s, ((const Migrationd__V1__PauseMigrationRequest *)q)->id_or_vm)))
		ctl_act(s, m, src_pause(m, err, sizeof(err)), err);
}

static void
ctl_postcopy(struct h2stream *s, const void *q)
{
	struct migration *m;
	char err[300];

	if ((m = ctl_find(s, ((const Migrationd__V1__StartPostcopyRequest *)q)->id_or_vm)))
		ctl_act(s, m, pc_postcopy(m, err, sizeof(err)), err);
}

static void
ctl_set(struct h2stream *s, const void *q)
{
	const Migrationd__V1__SetMigrationRequest *p = q;
	struct migration *m;
	char err[300];

	if ((m = ctl_find(s, p->id_or_vm)))
		ctl_act(s, m, src_set_bandwidth(m, p->max_bandwidth_bits_per_s, err,
		    sizeof(err)), err);
}

static void
ctl_recover(struct h2stream *s, const void *q)
{
	const Migrationd__V1__RecoverMigrationRequest *p = q;
	struct migration *m;
	char err[300];

	if ((m = ctl_find(s, p->id_or_vm)) == NULL)
		return;
	if (p->destination[0] && !ctl_destination_ok(s, p->destination))
		return;
	ctl_act(s, m, src_recover(m, p->destination, err, sizeof(err)), err);
}

static void
ctl_cancel(struct h2stream *s, const void *q)
{
	struct migration *m;
	char err[300];

	if ((m = ctl_find(s, ((const Migrationd__V1__CancelMigrationRequest *)q)->id_or_vm)))
		ctl_act(s, m, m->role == MIG_SOURCE ? src_cancel(m, err, sizeof(err)) :
		    dst_cancel(m, err, sizeof(err)), err);
}

static void
ctl_latency_call(struct h2stream *s, const void *q)
{
	struct migration *m;

	if ((m = ctl_find(s, ((const Migrationd__V1__GetFaultLatencyRequest *)q)->id_or_vm)))
		ctl_latency(s, m);
}

static void
ctl_health_call(struct h2stream *s, const void *q)
{
	ctl_health(s);
}

/* One handler per method of grpcmsg.c's table, by its id. */
static void (*const ctl_calls[])(struct h2stream *, const void *) = {
	[GM_PREPARE_INCOMING] = ctl_prepare,
	[GM_START_MIGRATION] = ctl_start,
	[GM_GET_MIGRATION] = ctl_get,
	[GM_LIST_MIGRATIONS] = ctl_list_call,
	[GM_WATCH_MIGRATION] = ctl_watch_call,
	[GM_PAUSE_MIGRATION] = ctl_pause,
	[GM_RECOVER_MIGRATION] = ctl_recover,
	[GM_CANCEL_MIGRATION] = ctl_cancel,
	[GM_GET_FAULT_LATENCY] = ctl_latency_call,
	[GM_GET_HEALTH] = ctl_health_call,
	[GM_HEALTH_CHECK] = std_health_check,
	[GM_HEALTH_WATCH] = std_health_watch,
	[GM_START_POSTCOPY] = ctl_postcopy,
	[GM_SET_MIGRATION] = ctl_set,
};

static void
ctl_request(struct h2stream *s, const struct grpc_method *gm, const uint8_t *body,
    size_t len)
{
	ProtobufCMessage *q;
	const char *why = NULL;

	if (gm == NULL) {
		h2_finish(s, GRPC_UNIMPLEMENTED, "no such method in migrationd.v1.Migrationd");
		return;
	}
	if (gm->client_stream) {
		/* Reflection: a stream of requests, authorised at its first. */
		if (std_reflection_started(s) || authz_check(s, gm, NULL))
			std_reflection(s, body, len);
		return;
	}
	/* Decoded before the check only so a refused call's audit line names
	 * its VM; a caller without the role learns nothing from it. */
	q = grpcmsg_decode(gm->req, body, len, &why);
	if (!authz_check(s, gm, q)) {
		/* refused, with PERMISSION_DENIED */
	} else if (q == NULL) {
		h2_finish(s, GRPC_INVALID_ARGUMENT, why);
	} else if ((size_t)gm->id < sizeof(ctl_calls) / sizeof(ctl_calls[0]) &&
	    ctl_calls[gm->id]) {
		ctl_calls[gm->id](s, q);
	} else {
		h2_finish(s, GRPC_UNIMPLEMENTED, "method not implemented");
	}
	if (q != NULL)
		protobuf_c_message_free_unpacked(q, NULL);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct authz_caller *c;
	struct bufferevent *bev;

	/* A client without a role is still served: it gets PERMISSION_DENIED. */
	if ((c = authz_unix(fd)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if ((bev = bufferevent_socket_new(D->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		authz_free(c);
		evutil_closesocket(fd);
		return;
	}
	h2_conn_new(bev, c, authz_free, c->who, ctl_request);
}

static void
ctl_tcp_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct authz_caller *c;
	struct bufferevent *bev;

	evutil_make_socket_nonblocking(fd);
	if ((bev = tls_bev_accept(ctl_tls, fd)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	/* The handshake verifies the client certificate against [control] ca;
	 * its role is read off the certificate at the first call. */
	if ((c = authz_tcp(bev, sa, salen)) == NULL) {
		bufferevent_free(bev);
		return;
	}
	h2_conn_new(bev, c, authz_free, c->who, ctl_request);
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
	if (std_init() < 0)
		return -1;
	mig_observe(ctl_observer);
	if (D->conf.control_group[0]) {
		if ((gr = getgrnam(D->conf.control_group)) == NULL) {
			log_warnx("%s: [control] group %s does not exist", __func__,
			    D->conf.control_group);
			return -1;
		}
		authz_set_group(gr->gr_gid);
	}
	if (fd >= 0) {
		/* An inherited socket may be blocking; the listener must not be. */
		ctl_activated = 1;
		if (evutil_make_socket_nonblocking(fd) < 0 ||
		    evutil_make_socket_closeonexec(fd) < 0) {
			log_warn("%s: inherited socket", __func__);
			return -1;
		}
		ctl_unix = evconnlistener_new(D->base, ctl_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	} else {
		if (strlen(path) >= sizeof(sun.sun_path)) {
			log_warnx("%s: path too long: %s", __func__, path);
			return -1;
		}
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		unlink(path);
		ctl_unix = evconnlistener_new_bind(D->base, ctl_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
		    (struct sockaddr *)&sun, sizeof(sun));
	}
	if (ctl_unix == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	evconnlistener_set_error_cb(ctl_unix, ctl_listen_error_cb);
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
		if (D->conf.control_ca[0] == '\0') {
			log_warnx("[control] listen = %s needs [control] ca, the CA of the "
			    "operators' client certificates (the peer CA is not trusted for "
			    "control)", D->conf.control_listen);
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

int
ctl_stopping(void)
{
	return std_health_stopping();
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
	std_shutdown();
	if (ctl_unix != NULL)
		evconnlistener_free(ctl_unix);
	ctl_unix = NULL;
	if (ctl_tcp != NULL)
		evconnlistener_free(ctl_tcp);
	ctl_tcp = NULL;
	SSL_CTX_free(ctl_tls);
	ctl_tls = NULL;
}
