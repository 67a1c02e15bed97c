/*
 * vm: the VMM socket. Each VMM (through libmigshim) connects, attaches one
 * VM with its memfd (and, for an incoming VM, its userfaultfd), then talks in
 * ShimMsg packets (proto/shim.proto, lib/shimwire.c). Owns the list of
 * attached VMs and their fds; what a VMM reports goes to its migration's
 * role through m->ops. Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "migration.h"
#include "ring.h"
#include "shimwire.h"
#include "tls.h"
#include "util.h"
#include "vm.h"
#include "vmfd.h"

#define VM_SHIM_VERSION 1

struct vm_list vm_all = TAILQ_HEAD_INITIALIZER(vm_all);
static int listen_fd = -1;
static struct event *ev_listen;

struct vm *
vm_find(const char *name)
{
	struct vm *v;

	TAILQ_FOREACH(v, &vm_all, entry)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

static void
vm_free(struct vm *v)
{
	if (v->ev_sock != NULL)
		event_free(v->ev_sock);
	if (v->sock >= 0)
		close(v->sock);
	if (v->memfd >= 0)
		close(v->memfd);
	if (v->uffd >= 0)
		close(v->uffd);
	if (v->ring != NULL)
		munmap(v->ring, v->ring_len);
	if (v->map != NULL)
		munmap(v->map, v->ram_bytes);
	if (v->ringfd >= 0)
		close(v->ringfd);
	if (v->doorbell >= 0)
		close(v->doorbell);
	free(v);
}

/*
 * Drops the VM once neither its VMM nor a migration needs it. Called when
 * the VMM goes away and when a migration ends.
 */
void
vm_release(struct vm *v)
{
	if (v->sock >= 0 || (v->mig != NULL && mig_active(v->mig)))
		return;
	if (v->mig != NULL)
		v->mig->vm = NULL;
	TAILQ_REMOVE(&vm_all, v, entry);
	log_info("vm %s: released", v->name);
	vm_free(v);
}

/*
 * The VMM's connection closed: it exited (its socket is gone with it) or
 * was cut off for breaking the protocol. A migration that still needs it
 * hears so and ends; then the VM goes.
 */
static void
vm_hangup(struct vm *v, const char *why)
{
	struct migration *m = v->mig;

	log_info("vm %s: VMM connection closed (%s)", v->name, why);
	event_free(v->ev_sock);
	v->ev_sock = NULL;
	close(v->sock);
	v->sock = -1;
	if (m != NULL && mig_active(m) && m->ops != NULL && m->ops->vm_gone != NULL)
		m->ops->vm_gone(m, why);	/* may release v */
	else
		vm_release(v);
}

static int
vm_send(struct vm *v, Migrationd__Shim__V1__ShimMsg *m)
{
	if (v->sock < 0) {
		log_warnx("vm %s: VMM not connected", v->name);
		return -1;
	}
	if (shimwire_send(v->sock, m, NULL, 0) < 0) {
		log_warn("vm %s: send to VMM", v->name);
		return -1;
	}
	return 0;
}

int
vm_send_pause(struct vm *v)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Pause p = MIGRATIOND__SHIM__V1__PAUSE__INIT;

	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_PAUSE;
	m.pause = &p;
	return vm_send(v, &m);
}

int
vm_send_track(struct vm *v, int op)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Track t = MIGRATIOND__SHIM__V1__TRACK__INIT;

	_Static_assert((int)VM_TRACK_SCAN == (int)MIGRATIOND__SHIM__V1__TRACK_OP__TRACK_SCAN &&
	    (int)VM_TRACK_STOP == (int)MIGRATIOND__SHIM__V1__TRACK_OP__TRACK_STOP, "TrackOp");
	t.op = (Migrationd__Shim__V1__TrackOp)op;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_TRACK;
	m.track = &t;
	return vm_send(v, &m);
}

/* A Dirty message as the model sees it (pointers into `d`). */
static const struct mig_dirty *
vm_dirty(const Migrationd__Shim__V1__Dirty *d, struct mig_dirty *out)
{
	if (d == NULL)
		return NULL;
	/* Ranges are (first, count) pairs: an odd list is malformed, and a
	 * set the daemon cannot read is "every page". */
	out->ok = d->ok && d->n_ranges % 2 == 0;
	out->all = d->all;
	out->error = d->error;
	out->method = d->method;
	out->ranges = d->ranges;
	out->nranges = d->n_ranges / 2;
	out->scan_ns = d->scan_ns;
	return out;
}

int
vm_send_resume_local(struct vm *v, const char *reason)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__ResumeLocal r = MIGRATIOND__SHIM__V1__RESUME_LOCAL__INIT;

	r.reason = (char *)(uintptr_t)reason;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_RESUME_LOCAL;
	m.resume_local = &r;
	return vm_send(v, &m);
}

int
vm_send_start(struct vm *v, const void *blob, size_t len)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Start s = MIGRATIOND__SHIM__V1__START__INIT;

	s.blob.data = (uint8_t *)(uintptr_t)blob;
	s.blob.len = len;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_START;
	m.start = &s;
	return vm_send(v, &m);
}

int
vm_send_failed(struct vm *v, const char *reason)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Failed f = MIGRATIOND__SHIM__V1__FAILED__INIT;

	if (v->sock < 0)
		return 0;	/* nobody to tell */
	f.reason = (char *)(uintptr_t)reason;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_FAILED;
	m.failed = &f;
	return vm_send(v, &m);
}

int
vm_send_completed(struct vm *v)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Completed c = MIGRATIOND__SHIM__V1__COMPLETED__INIT;

	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_COMPLETED;
	m.completed = &c;
	return vm_send(v, &m);
}

/* The guest's own report: kept with its (destination) migration. */
static void
vm_verdict(struct vm *v, int ok, const char *text)
{
	struct migration *m = v->mig != NULL ? v->mig : mig_find(v->name);

	log_info("vm %s: guest verdict: %s", v->name, text);
	if (m != NULL && m->role == MIG_DEST)
		mig_set_verdict(m, ok, text);
}

static void
vm_dispatch(struct vm *v, Migrationd__Shim__V1__ShimMsg *m)
{
	const struct mig_ops *ops = v->mig != NULL ? v->mig->ops : NULL;
	struct mig_dirty d;

	switch (m->msg_case) {
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_DIRTY:
		if (v->dest || ops == NULL || ops->dirty == NULL) {
			log_warnx("vm %s: dirty set with no pre-copy asking for it", v->name);
			break;
		}
		ops->dirty(v->mig, vm_dirty(m->dirty, &d));
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_STATE:
		if (v->dest) {
			log_warnx("vm %s: state blob from an incoming VMM, ignored", v->name);
			break;
		}
		if (ops == NULL || ops->vm_state == NULL) {
			log_warnx("vm %s: state blob arrived with no migration waiting for it",
			    v->name);
			break;
		}
		ops->vm_state(v->mig, m->state->blob.data, m->state->blob.len,
		    vm_dirty(m->state->dirty, &d));
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_RUNNING:
		if (!v->dest) {
			log_warnx("vm %s: running report from a source VMM, ignored", v->name);
			break;
		}
		if (ops == NULL || ops->vm_running == NULL) {
			log_warnx("vm %s: running report with no migration waiting for it",
			    v->name);
			break;
		}
		ops->vm_running(v->mig);
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_VERDICT:
		vm_verdict(v, m->verdict->ok, m->verdict->text);
		break;
	default:
		log_warnx("vm %s: unexpected message %d from VMM, ignored", v->name,
		    (int)m->msg_case);
		break;
	}
}

static void
vm_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vm *v = arg;
	Migrationd__Shim__V1__ShimMsg *m;
	int fds[SHIMWIRE_MAX_FDS], nfds, rc;

	for (;;) {
		rc = shimwire_recv(fd, &m, fds, &nfds);
		for (int i = 0; i < nfds; i++)	/* fds only come with Attach */
			close(fds[i]);
		if (rc < 0 && errno == EAGAIN)
			return;
		if (rc <= 0) {
			vm_hangup(v, rc == 0 ? "EOF" : strerror(errno));
			return;
		}
		vm_dispatch(v, m);
		migrationd__shim__v1__shim_msg__free_unpacked(m, NULL);
		if (v->sock < 0)
			return;
	}
}

static void
vm_attach_reply(int sock, const char *error, const uint8_t *secret)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__AttachReply r = MIGRATIOND__SHIM__V1__ATTACH_REPLY__INIT;

	r.ok = error == NULL;
	r.error = (char *)(uintptr_t)(error ? error : "");
	if (secret != NULL) {
		r.secret.data = (uint8_t *)(uintptr_t)secret;
		r.secret.len = MIG_VMM_SECRET;
	}
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH_REPLY;
	m.attach_reply = &r;
	if (shimwire_send(sock, &m, NULL, 0) < 0)
		log_warn("%s: send", __func__);
}

/*
 * The CPUs (0-63) this daemon may run on, for the ring: a VMM thread does
 * not spin on a slot if that would only keep the daemon off its CPU. 0 if
 * unknown or beyond 64 CPUs (the VMM then spins as it likes).
 */
static uint64_t
vm_cpu_mask(void)
{
	cpu_set_t set;
	uint64_t mask = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set)) {
			if (i >= 64)
				return 0;
			mask |= (uint64_t)1 << i;
		}
	return mask;
}

/*
 * A record read back after a restart that waits for this VM's VMM: the
 * newest of the VM's role, or NULL. *other: one of the other role.
 */
static struct migration *
vm_waiting(const char *name, int dest, struct migration **other)
{
	struct migration *m, *found = NULL;

	*other = NULL;
	TAILQ_FOREACH(m, &mig_all, entry) {
		if (m->vm != NULL || strcmp(m->vm_name, name) != 0 ||
		    (!m->resume_on_attach && (!mig_active(m) || m->state != MIG_PAUSED ||
		    m->ops == NULL)))
			continue;
		if ((m->role == MIG_DEST) == (dest != 0))
			found = m;	/* the newest */
		else
			*other = m;
	}
	return found;
}

/*
 * A VM whose migration waits for its VMM goes back only to that VMM: the
 * one that presents the secret it was handed at its first attach, from the
 * same uid and (the VMM outlives a daemon restart) the same pid, as
 * SO_PEERCRED says. NULL if `a` is it; else why not.
 */
static const char *
vm_authenticate(const struct migration *m, const Migrationd__Shim__V1__Attach *a,
    const struct ucred *cr, char *why, size_t len)
{
	if (!m->vmm.known) {
		log_warnx("vm %s: migration %s was recorded by an older daemon without its "
		    "VMM's secret: re-attach not authenticated", m->vm_name, m->id);
		return NULL;
	}
	if (a->secret.len == 0)
		snprintf(why, len, "re-attach refused: VM %s belongs to migration %s, whose "
		    "VMM must present its secret", m->vm_name, m->id);
	else if (a->secret.len != sizeof(m->vmm.secret) ||
	    CRYPTO_memcmp(a->secret.data, m->vmm.secret, sizeof(m->vmm.secret)) != 0)
		snprintf(why, len, "re-attach refused: wrong secret for VM %s", m->vm_name);
	else if ((uint32_t)cr->uid != m->vmm.uid)
		snprintf(why, len, "re-attach refused: VM %s's VMM runs as uid %u, this "
		    "one as uid %u", m->vm_name, m->vmm.uid, (unsigned)cr->uid);
	else if ((int32_t)cr->pid != m->vmm.pid)
		snprintf(why, len, "re-attach refused: VM %s's VMM is pid %d, this one "
		    "pid %d", m->vm_name, (int)m->vmm.pid, (int)cr->pid);
	else
		return NULL;
	return why;
}

/*
 * A VMM re-attached after this daemon restarted (authenticated): give it
 * back the migration its record says was running (or resume a source VM
 * that never left).
 */
static void
vm_rebind(struct vm *v, struct migration *m)
{
	if (m == NULL)
		return;
	if (m->resume_on_attach) {
		m->resume_on_attach = 0;
		log_info("vm %s: migration %s never sent the VM state; resuming it here",
		    v->name, m->id);
		vm_send_resume_local(v, "migration failed: daemon restarted");
		return;
	}
	vm_bind(v, m);
	log_info("vm %s: re-attached to migration %s", v->name, m->id);
	m->ops->reattach(m);
}

void
vm_bind(struct vm *v, struct migration *m)
{
	m->vm = v;
	v->mig = m;
	m->vmm = v->vmm;
}

/* Mappings an accepted Attach asks for, made while it is checked. */
struct vm_maps {
	int	 ring, minor;
	void	*rmap;		/* the fault ring, or MAP_FAILED */
	off_t	 rlen;
	void	*map;		/* hugetlbfs RAM for minor mode, or NULL */
};

static void
vm_maps_free(struct vm_maps *x, uint64_t ram_bytes)
{
	if (x->rmap != MAP_FAILED)
		munmap(x->rmap, (size_t)x->rlen);
	if (x->map != NULL)
		munmap(x->map, ram_bytes);
}

/*
 * The fds of an Attach, by what the kernel says they are (vmfd.c): guest
 * RAM and the ring sealed against shrinking, so no mapping of ours can
 * SIGBUS; a real, set-up userfaultfd; a real eventfd as the doorbell. NULL
 * or why not (into why).
 */
static const char *
vm_attach_fds(const Migrationd__Shim__V1__Attach *a, const int *fds, int ring,
    char *why, size_t len)
{
	int in = a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING;
	struct vmfd_shm ram = { "guest RAM", a->page_size == MIG_HUGE_PAGE, in,
	    a->ram_bytes, a->ram_bytes };
	struct vmfd_shm rw = { "fault ring", 0, 1, ring_bytes(1), ring_bytes(RING_MAX_SLOTS) };

	if (vmfd_check_shm(fds[0], &ram, why, len) != NULL ||
	    (in && vmfd_check_uffd(fds[1], ring, why, len) != NULL) ||
	    (ring && vmfd_check_shm(fds[2], &rw, why, len) != NULL) ||
	    (ring && vmfd_check_eventfd(fds[3], why, len) != NULL))
		return why;
	return NULL;
}

/*
 * Everything an Attach claims, checked before any state exists (vmd style).
 * NULL if it is acceptable (x holds its mappings), else why not (nothing
 * mapped).
 */
static const char *
vm_attach_check(const Migrationd__Shim__V1__Attach *a, const int *fds, int nfds,
    struct vm_maps *x, char *why, size_t len)
{
	const char *err = NULL;
	struct stat rst;
	int want;

	x->rmap = MAP_FAILED;
	x->map = NULL;
	x->ring = a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING &&
	    a->fault_mode == MIGRATIOND__SHIM__V1__FAULT_MODE__FAULT_RING;
	x->minor = a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING &&
	    a->install == MIGRATIOND__SHIM__V1__INSTALL_MODE__INSTALL_MINOR;
	want = a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING ? (x->ring ? 4 : 2) : 1;
	if (a->version != VM_SHIM_VERSION)
		err = "unsupported shim version";
	else if (a->role != MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_SOURCE &&
	    a->role != MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING)
		err = "unknown role";
	else if (a->vm == NULL || a->vm[0] == '\0' || strlen(a->vm) >= sizeof(((struct vm *)0)->name))
		err = "bad VM name";
	else if (vm_find(a->vm) != NULL)
		err = "a VM of that name is already attached";
	else if ((a->page_size != (uint32_t)sysconf(_SC_PAGESIZE) &&
	    a->page_size != MIG_HUGE_PAGE) || a->ram_bytes == 0 ||
	    a->ram_bytes % a->page_size != 0)
		err = "bad page size (4 KiB or 2 MiB) or RAM size";
	else if (nfds != want)
		err = "wrong number of fds for the role";
	else if (a->install != MIGRATIOND__SHIM__V1__INSTALL_MODE__INSTALL_COPY &&
	    a->install != MIGRATIOND__SHIM__V1__INSTALL_MODE__INSTALL_MINOR)
		err = "unknown install mode";
	else if (vm_attach_fds(a, fds, x->ring, why, len) != NULL)
		err = why;
	/* Sealed: the ring cannot shrink below what is mapped here. */
	else if (x->ring && (fstat(fds[2], &rst) < 0 || (x->rmap = mmap(NULL,
	    (size_t)rst.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0)) == MAP_FAILED))
		err = "cannot map the fault ring";
	else if (x->ring && ring_check_header(x->rmap, (uint64_t)rst.st_size, a->page_size) < 0)
		err = "fault ring header is not version 1 with sane sizes";
	/* Minor mode on hugetlbfs: pages are written through a mapping of
	 * ours (hugetlbfs has no write()); shmem takes pwrite(). */
	else if (x->minor && a->page_size > 4096 && (x->map = mmap(NULL, a->ram_bytes,
	    PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0)) == MAP_FAILED) {
		x->map = NULL;
		err = "cannot map hugetlbfs guest RAM for minor-mode installs";
	}
	x->rlen = x->rmap != MAP_FAILED ? rst.st_size : 0;
	if (err != NULL) {
		vm_maps_free(x, a->ram_bytes);
		return err;
	}
	return NULL;
}

/* Who this VMM is: SO_PEERCRED, and the migration (if any) waiting for it. */
static const char *
vm_attach_who(int sock, const Migrationd__Shim__V1__Attach *a, struct ucred *cr,
    struct migration **waiting, char *why, size_t len)
{
	socklen_t cl = sizeof(*cr);
	struct migration *other;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cr, &cl) < 0)
		return "cannot read the VMM's credentials (SO_PEERCRED)";
	*waiting = vm_waiting(a->vm, a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING,
	    &other);
	if (*waiting == NULL && other != NULL) {
		snprintf(why, len, "VM %s: migration %s waits for its VMM as the %s", a->vm,
		    other->id, other->role == MIG_DEST ? "destination" : "source");
		return why;
	}
	return *waiting != NULL ? vm_authenticate(*waiting, a, cr, why, len) : NULL;
}

/* The VMM's identity: the waiting migration's, or a new secret. */
static int
vm_identity(struct vm *v, const struct migration *waiting, const struct ucred *cr)
{
	if (waiting != NULL && waiting->vmm.known) {
		v->vmm = waiting->vmm;
		return 0;
	}
	v->vmm.uid = (uint32_t)cr->uid;
	v->vmm.gid = (uint32_t)cr->gid;
	v->vmm.pid = (int32_t)cr->pid;
	v->vmm.known = 1;
	return tls_random(v->vmm.secret, sizeof(v->vmm.secret));
}

static void
vm_attach(int sock)
{
	Migrationd__Shim__V1__ShimMsg *m = NULL;
	Migrationd__Shim__V1__Attach *a;
	int fds[SHIMWIRE_MAX_FDS], nfds = 0, rc;
	struct migration *waiting = NULL;
	const char *err = NULL;
	char ebuf[256], why[256];
	struct vm_maps x;
	struct ucred cr;
	struct vm *v;

	rc = shimwire_recv(sock, &m, fds, &nfds);
	if (rc <= 0) {
		log_warnx("%s: no attach from VMM (%s)", __func__,
		    rc == 0 ? "EOF" : strerror(errno));
		goto out;
	}
	if (m->msg_case != MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH) {
		err = "first message must be Attach";
		goto refuse;
	}
	a = m->attach;
	if ((err = vm_attach_check(a, fds, nfds, &x, why, sizeof(why))) != NULL)
		goto refuse;
	if ((err = vm_attach_who(sock, a, &cr, &waiting, why, sizeof(why))) != NULL) {
		vm_maps_free(&x, a->ram_bytes);
		goto refuse;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL || vm_identity(v, waiting, &cr) < 0) {
		free(v);
		vm_maps_free(&x, a->ram_bytes);
		err = "out of memory or entropy";
		goto refuse;
	}
	snprintf(v->name, sizeof(v->name), "%s", a->vm);
	v->dest = a->role == MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING;
	v->ram_bytes = a->ram_bytes;
	v->page_size = a->page_size;
	v->npages = a->ram_bytes / a->page_size;
	v->ram_va = a->ram_va;
	v->vcpus = a->vcpus;
	v->pid = (int)cr.pid;
	v->memfd = fds[0];
	v->uffd = v->dest ? fds[1] : -1;
	v->ringfd = v->doorbell = -1;
	v->minor = x.minor;
	v->map = x.map;
	if (x.ring) {
		v->ring_mode = 1;
		ring_set_daemon_cpus(x.rmap, vm_cpu_mask());
		ring_set_collect(x.rmap);
		v->ring = x.rmap;
		v->ring_len = (uint64_t)x.rlen;
		v->ringfd = fds[2];
		v->doorbell = fds[3];
		fcntl(v->doorbell, F_SETFL, O_NONBLOCK);
	}
	nfds = 0;	/* fds now belong to v */
	v->sock = sock;
	if (v->uffd >= 0)
		fcntl(v->uffd, F_SETFL, O_NONBLOCK);
	fcntl(sock, F_SETFL, O_NONBLOCK);
	if ((v->ev_sock = event_new(D->base, sock, EV_READ | EV_PERSIST, vm_sock_cb,
	    v)) == NULL) {
		v->sock = -1;
		vm_free(v);
		err = "out of memory";
		nfds = 0;
		goto refuse;
	}
	event_add(v->ev_sock, NULL);
	TAILQ_INSERT_TAIL(&vm_all, v, entry);
	vm_attach_reply(sock, NULL, v->vmm.secret);
	vm_rebind(v, waiting);
	log_info("vm %s: attached (%s%s%s, %llu MiB, %u vCPUs, pid %d uid %u%s)", v->name,
	    v->dest ? "incoming" : "source",
	    v->ring_mode ? ", faults through the ring" : v->dest ? ", blocking uffd" : "",
	    v->minor ? ", minor-mode installs" : "",
	    (unsigned long long)(v->ram_bytes >> 20), v->vcpus, v->pid, v->vmm.uid,
	    a->pid != v->pid ? "; the pid it reports differs" : "");
	migrationd__shim__v1__shim_msg__free_unpacked(m, NULL);
	return;
refuse:
	snprintf(ebuf, sizeof(ebuf), "%s", err);
	log_warnx("%s: refused VMM: %s", __func__, ebuf);
	vm_attach_reply(sock, ebuf, NULL);
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (m != NULL)
		migrationd__shim__v1__shim_msg__free_unpacked(m, NULL);
	close(sock);
}

/* The first packet of a new VMM connection, or its time-out. */
static void
vm_first_cb(evutil_socket_t sock, short what, void *arg)
{
	struct event **evp = arg;

	event_free(*evp);
	free(evp);
	if (what & EV_TIMEOUT) {
		log_warnx("vm_attach: VMM connected but sent no Attach in time");
		close(sock);
		return;
	}
	vm_attach(sock);
}

static void
vm_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct timeval tv = { 5, 0 };
	int sock, sz = (int)SHIMWIRE_MAX_MSG;
	struct event **evp;

	if ((sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("%s: accept", __func__);
		return;
	}
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if ((evp = malloc(sizeof(*evp))) == NULL ||
	    (*evp = event_new(D->base, sock, EV_READ, vm_first_cb, evp)) == NULL) {
		free(evp);
		close(sock);
		return;
	}
	event_add(*evp, &tv);
}

int
vm_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("%s: path too long: %s", __func__, path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 16) < 0) {
		log_warn("%s: %s", __func__, path);
		close(fd);
		return -1;
	}
	if ((ev_listen = event_new(D->base, fd, EV_READ | EV_PERSIST, vm_accept_cb,
	    NULL)) == NULL) {
		log_warnx("%s: out of memory", __func__);
		close(fd);
		return -1;
	}
	listen_fd = fd;
	event_add(ev_listen, NULL);
	return 0;
}

void
vm_listen_stop(void)
{
	if (ev_listen != NULL) {
		event_free(ev_listen);
		close(listen_fd);
	}
	ev_listen = NULL;
	listen_fd = -1;
}

void
vm_close_all(void)
{
	struct vm *v;

	while ((v = TAILQ_FIRST(&vm_all)) != NULL) {
		if (v->sock >= 0) {
			close(v->sock);
			v->sock = -1;
		}
		v->mig = NULL;
		vm_release(v);
	}
}
