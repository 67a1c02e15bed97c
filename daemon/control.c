/*
 * control: the control socket (mig-ctl, libmigctl, orchestrators). A Unix
 * stream socket carrying length-prefixed CtlRequest / CtlResponse messages
 * (ctlmsg.c); each request field is one method of the Migrationd service in
 * proto/control.proto. Only root or the daemon's own user may connect
 * (SO_PEERCRED). A malformed request closes that client only. Loop thread.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "log.h"
#include "migrationd.h"

#define CTL_REQ_MAX (64u << 10)

static void
ctl_reply(struct bufferevent *bev, Migrationd__V1__CtlResponse *r)
{
	size_t len;
	uint8_t *buf = ctlmsg_pack(&r->base, CTLMSG_MAX, &len);

	if (buf == NULL) {
		log_warnx("%s: response too large", __func__);
		return;
	}
	bufferevent_write(bev, buf, len);
	free(buf);
}

static void
ctl_error(Migrationd__V1__CtlResponse *r, Migrationd__V1__Code code, const char *msg)
{
	r->code = code;
	r->message = (char *)(uintptr_t)msg;
}

static void
ctl_dispatch(struct bufferevent *bev, const Migrationd__V1__CtlRequest *q)
{
	Migrationd__V1__CtlResponse r = MIGRATIOND__V1__CTL_RESPONSE__INIT;
	Migrationd__V1__PrepareIncomingResponse pr =
	    MIGRATIOND__V1__PREPARE_INCOMING_RESPONSE__INIT;
	Migrationd__V1__StartMigrationResponse sr =
	    MIGRATIOND__V1__START_MIGRATION_RESPONSE__INIT;
	Migrationd__V1__GetMigrationResponse gr =
	    MIGRATIOND__V1__GET_MIGRATION_RESPONSE__INIT;
	Migrationd__V1__ListMigrationsResponse lr =
	    MIGRATIOND__V1__LIST_MIGRATIONS_RESPONSE__INIT;
	Migrationd__V1__Migration one, *all = NULL, **allp = NULL;
	Migrationd__V1__VmInfo *vi = NULL, **vip = NULL;
	struct migration *m = NULL;
	struct vm *v;
	char err[300];
	size_t n;

	r.id = q->id;
	switch (q->method_case) {
	case MIGRATIOND__V1__CTL_REQUEST__METHOD_PREPARE_INCOMING:
		if ((v = vm_find(q->prepare_incoming->vm)) == NULL) {
			ctl_error(&r, MIGRATIOND__V1__CODE__NOT_FOUND,
			    "no VM of that name is attached here");
			break;
		}
		if (dst_prepare(v, &m, err, sizeof(err)) < 0) {
			ctl_error(&r, MIGRATIOND__V1__CODE__FAILED_PRECONDITION, err);
			break;
		}
		mig_to_proto(m, &one);
		pr.migration = &one;
		pr.token = m->token;
		r.result_case = MIGRATIOND__V1__CTL_RESPONSE__RESULT_PREPARE_INCOMING;
		r.prepare_incoming = &pr;
		break;
	case MIGRATIOND__V1__CTL_REQUEST__METHOD_START_MIGRATION: {
		const Migrationd__V1__StartMigrationRequest *s = q->start_migration;
		struct sockaddr_storage ss;
		int sslen;

		if ((v = vm_find(s->vm)) == NULL) {
			ctl_error(&r, MIGRATIOND__V1__CODE__NOT_FOUND,
			    "no VM of that name is attached here");
			break;
		}
		if (parse_hostport(s->destination, &ss, &sslen) < 0) {
			ctl_error(&r, MIGRATIOND__V1__CODE__INVALID_ARGUMENT,
			    "destination must be IP:PORT");
			break;
		}
		if (src_start(v, s->destination, s->token, &m, err, sizeof(err)) < 0) {
			ctl_error(&r, MIGRATIOND__V1__CODE__FAILED_PRECONDITION, err);
			break;
		}
		mig_to_proto(m, &one);
		sr.migration = &one;
		r.result_case = MIGRATIOND__V1__CTL_RESPONSE__RESULT_START_MIGRATION;
		r.start_migration = &sr;
		break;
	}
	case MIGRATIOND__V1__CTL_REQUEST__METHOD_RECOVER_MIGRATION: {
		const Migrationd__V1__RecoverMigrationRequest *rq = q->recover_migration;
		Migrationd__V1__RecoverMigrationResponse rr =
		    MIGRATIOND__V1__RECOVER_MIGRATION_RESPONSE__INIT;
		struct sockaddr_storage ss;
		int sslen;

		if ((m = mig_find(rq->id_or_vm)) == NULL) {
			ctl_error(&r, MIGRATIOND__V1__CODE__NOT_FOUND, "no such migration");
			break;
		}
		if (rq->destination[0] && parse_hostport(rq->destination, &ss, &sslen) < 0) {
			ctl_error(&r, MIGRATIOND__V1__CODE__INVALID_ARGUMENT,
			    "destination must be IP:PORT");
			break;
		}
		if (src_recover(m, rq->destination, err, sizeof(err)) < 0) {
			ctl_error(&r, MIGRATIOND__V1__CODE__FAILED_PRECONDITION, err);
			break;
		}
		mig_to_proto(m, &one);
		rr.migration = &one;
		r.result_case = MIGRATIOND__V1__CTL_RESPONSE__RESULT_RECOVER_MIGRATION;
		r.recover_migration = &rr;
		ctl_reply(bev, &r);
		return;
	}
	case MIGRATIOND__V1__CTL_REQUEST__METHOD_GET_MIGRATION:
		if ((m = mig_find(q->get_migration->id_or_vm)) == NULL) {
			ctl_error(&r, MIGRATIOND__V1__CODE__NOT_FOUND, "no such migration");
			break;
		}
		mig_to_proto(m, &one);
		gr.migration = &one;
		r.result_case = MIGRATIOND__V1__CTL_RESPONSE__RESULT_GET_MIGRATION;
		r.get_migration = &gr;
		break;
	case MIGRATIOND__V1__CTL_REQUEST__METHOD_LIST_MIGRATIONS:
		n = 0;
		TAILQ_FOREACH(m, &D->migs, entry)
			n++;
		all = calloc(n + 1, sizeof(*all));
		allp = calloc(n + 1, sizeof(*allp));
		n = 0;
		TAILQ_FOREACH(v, &D->vms, entry)
			n++;
		vi = calloc(n + 1, sizeof(*vi));
		vip = calloc(n + 1, sizeof(*vip));
		if (all == NULL || allp == NULL || vi == NULL || vip == NULL) {
			ctl_error(&r, MIGRATIOND__V1__CODE__INTERNAL, "out of memory");
			break;
		}
		TAILQ_FOREACH(m, &D->migs, entry) {
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
			x->ram_bytes = v->ram_bytes;
			x->vcpus = v->vcpus;
			x->attached = v->sock >= 0;
			vip[lr.n_vms++] = x;
		}
		lr.migrations = allp;
		lr.vms = vip;
		r.result_case = MIGRATIOND__V1__CTL_RESPONSE__RESULT_LIST_MIGRATIONS;
		r.list_migrations = &lr;
		break;
	default:
		ctl_error(&r, MIGRATIOND__V1__CODE__INVALID_ARGUMENT, "unknown method");
		break;
	}
	ctl_reply(bev, &r);
	free(all);
	free(allp);
	free(vi);
	free(vip);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	Migrationd__V1__CtlRequest *q;
	const char *why = NULL;
	uint8_t *p;
	uint32_t plen;
	int rc;

	for (;;) {
		size_t avail = evbuffer_get_length(in);

		p = evbuffer_pullup(in, avail < CTLMSG_PREFIX ? -1 : CTLMSG_PREFIX);
		if ((rc = ctlmsg_peek(p, avail, CTL_REQ_MAX, &plen)) == 0)
			return;
		if (rc < 0) {
			why = "bad message length";
			break;
		}
		p = evbuffer_pullup(in, CTLMSG_PREFIX + plen);
		q = ctlmsg_decode_request(p + CTLMSG_PREFIX, plen, &why);
		if (q == NULL)
			break;
		ctl_dispatch(bev, q);
		migrationd__v1__ctl_request__free_unpacked(q, NULL);
		evbuffer_drain(in, CTLMSG_PREFIX + plen);
	}
	log_warnx("control client: %s; closing it", why);
	bufferevent_free(bev);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct bufferevent *bev;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
	    (cr.uid != 0 && cr.uid != getuid())) {
		log_warnx("control: refused client uid %d", (int)cr.uid);
		evutil_closesocket(fd);
		return;
	}
	if ((bev = bufferevent_socket_new(D->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, ctl_read_cb, NULL, ctl_event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
ctl_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("%s: path too long: %s", __func__, path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	D->ctl_listener = evconnlistener_new_bind(D->base, ctl_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	if (D->ctl_listener == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	chmod(path, 0660);
	return 0;
}
