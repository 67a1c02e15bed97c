/*
 * libmigshim: guest RAM, userfaultfd and the hand-off to migrationd, linked
 * into a VMM. Owns the memfd, the mapping, the uffd (incoming VMs) and the
 * socket to the daemon; keeps every fd it hands over, so a daemon restart
 * does not take the guest's memory with it. Runs on the VMM's control thread.
 * The fault path (ring posting, SIGBUS, the KVM_RUN contract) is in
 * shim_fault.c; both share struct migshim through shim_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/eventfd.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "libmigshim.h"
#include "mig_compat.h"
#include "ring.h"
#include "shim_int.h"
#include "shimwire.h"

#define SHIM_VERSION 1

/* Features this kernel's userfaultfd offers (asked on a throw-away uffd:
 * UFFDIO_API fixes the features of the uffd it is called on). */
static uint64_t
shim_uffd_features(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	uint64_t f = 0;

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0)
		f = api.features;
	if (fd >= 0)
		close(fd);
	return f;
}

static uint64_t
shim_minor_feature(int huge)
{
	return huge ? UFFD_FEATURE_MINOR_HUGETLBFS : UFFD_FEATURE_MINOR_SHMEM;
}

int
migshim_probe_minor(int hugepages, char *why, size_t len)
{
	uint64_t f = shim_uffd_features();

	if (f & shim_minor_feature(hugepages)) {
		snprintf(why, len, "UFFD_FEATURE_MINOR_%s offered",
		    hugepages ? "HUGETLBFS" : "SHMEM");
		return 1;
	}
	snprintf(why, len, "this kernel's userfaultfd has no minor faults for %s",
	    hugepages ? "hugetlbfs" : "shmem");
	return 0;
}

static int
shim_uffd_register(struct migshim *s)
{
	/* POISON where offered: a page the source cannot read arrives as a
	 * machine-check SIGBUS for whoever touches it, not as garbage.
	 * THREAD_ID: fault events name the faulting thread (latency per vCPU).
	 * Minor mode registers missing faults too: a page not yet in the page
	 * cache is a missing fault, one the daemon has written but not mapped
	 * yet a minor fault; both wait for the daemon. */
	int minor = s->install == MIGSHIM_INSTALL_MINOR;
	struct uffdio_api api = { .api = UFFD_API,
	    .features = (s->page_size > 4096 ? UFFD_FEATURE_MISSING_HUGETLBFS :
	    UFFD_FEATURE_MISSING_SHMEM) |
	    (minor ? shim_minor_feature(s->page_size > 4096) : 0) |
	    (s->mode == MIGSHIM_FAULT_RING ? UFFD_FEATURE_SIGBUS : 0) |
	    (shim_uffd_features() & (UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID)) };
	struct uffdio_register reg = { 0 };

	s->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (s->uffd < 0) {
		shim_warn(__func__, "userfaultfd");
		return -1;
	}
	if (ioctl(s->uffd, UFFDIO_API, &api) < 0) {
		shim_warn(__func__, minor ? "UFFDIO_API (missing + minor faults)" :
		    "UFFDIO_API (missing faults)");
		return -1;
	}
	reg.range.start = (uintptr_t)s->ram;
	reg.range.len = s->ram_size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | (minor ? UFFDIO_REGISTER_MODE_MINOR : 0);
	if (ioctl(s->uffd, UFFDIO_REGISTER, &reg) < 0) {
		shim_warn(__func__, "UFFDIO_REGISTER");
		return -1;
	}
	if (minor && !(reg.ioctls & ((uint64_t)1 << _UFFDIO_CONTINUE))) {
		errno = ENOTSUP;
		shim_warn(__func__, "UFFDIO_CONTINUE not offered");
		return -1;
	}
	/* hugetlbfs has no UFFDIO_ZEROPAGE: the daemon copies zeros there. */
	if (!(reg.ioctls & ((uint64_t)1 << _UFFDIO_COPY)) ||
	    (s->page_size == 4096 && !(reg.ioctls & ((uint64_t)1 << _UFFDIO_ZEROPAGE)))) {
		errno = ENOTSUP;
		shim_warn(__func__, "UFFDIO_COPY/ZEROPAGE not offered");
		return -1;
	}
	return 0;
}

/*
 * Guest RAM and the ring are sealed at their final size: the daemon maps
 * them and refuses fds without F_SEAL_SHRINK (a file shrunk under a mapping
 * kills whoever touches the lost part with SIGBUS). Growing is sealed too
 * (nothing needs it) and so are further seals: the size is fixed for the
 * memfd's life.
 */
static int
shim_seal(int fd, const char *fn)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		shim_warn(fn, "F_ADD_SEALS");
		return -1;
	}
	return 0;
}

static int
shim_ring_create(struct migshim *s, const struct migshim_opts *o)
{
	uint64_t len;

	s->nvcpu = o->vcpus;
	s->nslots = o->vcpus + (o->thread_slots ? o->thread_slots : 4);
	if (s->nslots > RING_MAX_SLOTS) {
		errno = EINVAL;
		shim_warn(__func__, "too many ring slots");
		return -1;
	}
	len = ring_bytes(s->nslots);
	if ((s->ringfd = memfd_create("migshim-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0 ||
	    ftruncate(s->ringfd, (off_t)len) < 0) {
		shim_warn(__func__, "ring memfd");
		return -1;
	}
	if (shim_seal(s->ringfd, __func__) < 0)
		return -1;
	s->ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->ringfd, 0);
	if (s->ring == MAP_FAILED) {
		s->ring = NULL;
		shim_warn(__func__, "mmap ring");
		return -1;
	}
	ring_init(s->ring, s->nslots, s->nvcpu, (uint32_t)s->page_size);
	if ((s->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		shim_warn(__func__, "eventfd");
		return -1;
	}
	return 0;
}

struct migshim *
migshim_create(const char *name, uint64_t ram_size, enum migshim_role role)
{
	return migshim_create_opts(name, ram_size, role, NULL);
}

struct migshim *
migshim_create_opts(const char *name, uint64_t ram_size, enum migshim_role role,
    const struct migshim_opts *opts)
{
	int huge = opts != NULL && opts->hugepages;
	long pg = huge ? 2L << 20 : sysconf(_SC_PAGESIZE);
	struct migshim *s;

	if (name == NULL || *name == '\0' || strlen(name) >= sizeof(s->name) ||
	    ram_size == 0 || ram_size % (uint64_t)pg != 0) {
		errno = EINVAL;
		shim_warn(__func__, "bad name or RAM size");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->role = role;
	s->ram_size = ram_size;
	s->ram = MAP_FAILED;
	s->memfd = s->uffd = s->sock = s->ringfd = s->doorbell = -1;
	s->wpfd = s->pagemap = -1;
	s->page_size = (uint64_t)pg;
	if (opts != NULL && role == MIGSHIM_INCOMING) {
		s->mode = opts->mode;
		s->install = opts->install;
	}
	s->spin_ns = opts != NULL && opts->spin_ns ? opts->spin_ns : 20000;

	if ((s->memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING |
	    (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0))) < 0) {
		shim_warn(__func__, huge ? "memfd_create (2 MiB hugetlbfs)" : "memfd_create");
		goto fail;
	}
	if (ftruncate(s->memfd, (off_t)ram_size) < 0) {
		shim_warn(__func__, "ftruncate");
		goto fail;
	}
	if (shim_seal(s->memfd, __func__) < 0)
		goto fail;
	s->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    s->memfd, 0);
	if (s->ram == MAP_FAILED) {
		shim_warn(__func__, "mmap");
		goto fail;
	}
	if (role == MIGSHIM_INCOMING && shim_uffd_register(s) < 0)
		goto fail;
	if (s->mode == MIGSHIM_FAULT_RING && shim_ring_create(s, opts) < 0)
		goto fail;
	return s;
fail:
	migshim_destroy(s);
	return NULL;
}

void *
migshim_ram(const struct migshim *s)
{
	return s->ram;
}

uint64_t
migshim_ram_size(const struct migshim *s)
{
	return s->ram_size;
}

int
migshim_memfd(const struct migshim *s)
{
	return s->memfd;
}

int
migshim_fd(const struct migshim *s)
{
	return s->sock;
}

uint64_t
migshim_page_size(const struct migshim *s)
{
	return s->page_size;
}

enum migshim_fault_mode
migshim_fault_mode(const struct migshim *s)
{
	return s->mode;
}

int
migshim_attach(struct migshim *s, const char *path, int vcpus)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Attach a = MIGRATIOND__SHIM__V1__ATTACH__INIT;
	Migrationd__Shim__V1__ShimMsg *r = NULL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fds[4] = { s->memfd, s->uffd, s->ringfd, s->doorbell };
	int nfds = s->role != MIGSHIM_INCOMING ? 1 : s->mode == MIGSHIM_FAULT_RING ? 4 : 2;
	int rfds[SHIMWIRE_MAX_FDS], nr = 0;
	int sz = (int)SHIMWIRE_MAX_MSG, rc;

	if (s->sock >= 0 || strlen(path) >= sizeof(sun.sun_path)) {
		errno = EINVAL;
		shim_warn(__func__, "already attached or path too long");
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	/* What the last daemon offered in the ring header is not this one's
	 * to promise (an older daemon never collects): it says again. */
	if (s->ring != NULL)
		ring_forget_daemon(s->ring);
	if ((s->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(s->sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		shim_warn(__func__, path);
		goto fail;
	}
	setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(s->sock, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));

	a.version = SHIM_VERSION;
	a.vm = s->name;
	a.role = s->role == MIGSHIM_INCOMING ?
	    MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING :
	    MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_SOURCE;
	a.ram_bytes = s->ram_size;
	a.page_size = (uint32_t)s->page_size;
	a.ram_va = (uintptr_t)s->ram;
	a.vcpus = (uint32_t)vcpus;
	a.pid = getpid();
	a.fault_mode = s->mode == MIGSHIM_FAULT_RING ?
	    MIGRATIOND__SHIM__V1__FAULT_MODE__FAULT_RING :
	    MIGRATIOND__SHIM__V1__FAULT_MODE__FAULT_UFFD;
	a.ring_slots = s->nslots;
	a.install = s->install == MIGSHIM_INSTALL_MINOR ?
	    MIGRATIOND__SHIM__V1__INSTALL_MODE__INSTALL_MINOR :
	    MIGRATIOND__SHIM__V1__INSTALL_MODE__INSTALL_COPY;
	/* After a daemon restart the VM goes back only to the VMM with the
	 * secret of its first attach. */
	a.secret.data = s->secret;
	a.secret.len = s->secret_len;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH;
	m.attach = &a;
	if (shimwire_send(s->sock, &m, fds, nfds) < 0) {
		shim_warn(__func__, "send attach");
		goto fail;
	}
	/* The reply is synchronous: the daemon answers at once. */
	rc = shimwire_recv(s->sock, &r, rfds, &nr);
	for (int i = 0; i < nr; i++)
		close(rfds[i]);
	if (rc <= 0 || r->msg_case != MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH_REPLY) {
		if (rc == 0)
			errno = ECONNRESET;
		shim_warn(__func__, "attach reply");
		goto fail;
	}
	if (!r->attach_reply->ok) {
		fprintf(stderr, "libmigshim: %s: daemon refused VM %s: %s\n",
		    __func__, s->name, r->attach_reply->error);
		goto fail;
	}
	if (r->attach_reply->secret.len == sizeof(s->secret)) {
		memcpy(s->secret, r->attach_reply->secret.data, sizeof(s->secret));
		s->secret_len = sizeof(s->secret);
	}
	migrationd__shim__v1__shim_msg__free_unpacked(r, NULL);
	if (fcntl(s->sock, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	return 0;
fail:
	if (r != NULL)
		migrationd__shim__v1__shim_msg__free_unpacked(r, NULL);
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	return -1;
}

int
migshim_next_event(struct migshim *s, struct migshim_event *ev)
{
	Migrationd__Shim__V1__ShimMsg *m;
	int fds[SHIMWIRE_MAX_FDS], nfds = 0, rc;

	memset(ev, 0, sizeof(*ev));
	if (s->last != NULL) {
		migrationd__shim__v1__shim_msg__free_unpacked(s->last, NULL);
		s->last = NULL;
	}
	if (s->sock < 0) {
		errno = ENOTCONN;
		return -1;
	}
	rc = shimwire_recv(s->sock, &m, fds, &nfds);
	for (int i = 0; i < nfds; i++)	/* the daemon never sends fds */
		close(fds[i]);
	if (rc < 0 && errno == EAGAIN)
		return 0;
	if (rc <= 0) {
		ev->type = MIGSHIM_EV_HANGUP;
		snprintf(ev->reason, sizeof(ev->reason), "%s",
		    rc == 0 ? "daemon closed the connection" : strerror(errno));
		close(s->sock);
		s->sock = -1;
		shim_dirty_stop(s);	/* a pre-copy cannot outlive its daemon */
		return 0;
	}
	/* Pre-copy's dirty tracking is the shim's business, not the VMM's;
	 * once the migration ends, one way or the other, it stops. */
	if (m->msg_case != MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_TRACK &&
	    m->msg_case != MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_PAUSE)
		shim_dirty_stop(s);
	switch (m->msg_case) {
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_TRACK:
		shim_dirty_request(s, m->track);
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_PAUSE:
		ev->type = MIGSHIM_EV_PAUSE;
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_RESUME_LOCAL:
		ev->type = MIGSHIM_EV_RESUME_LOCAL;
		snprintf(ev->reason, sizeof(ev->reason), "%s", m->resume_local->reason);
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_START:
		ev->type = MIGSHIM_EV_START;
		ev->blob = m->start->blob.data;
		ev->blob_len = m->start->blob.len;
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_COMPLETED:
		ev->type = MIGSHIM_EV_COMPLETED;
		__atomic_store_n(&s->complete, 1, __ATOMIC_RELEASE);
		if (s->uffd >= 0) {
			/* Every page is present: no fault can come any more. */
			struct uffdio_range r = { (uintptr_t)s->ram, s->ram_size };

			ioctl(s->uffd, UFFDIO_UNREGISTER, &r);
		}
		break;
	case MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_FAILED:
		ev->type = MIGSHIM_EV_FAILED;
		snprintf(ev->reason, sizeof(ev->reason), "%s", m->failed->reason);
		break;
	default:
		fprintf(stderr, "libmigshim: %s: unexpected message %d from daemon\n",
		    __func__, (int)m->msg_case);
		ev->type = MIGSHIM_EV_NONE;
		break;
	}
	s->last = m;
	return 0;
}

static int
shim_send(struct migshim *s, Migrationd__Shim__V1__ShimMsg *m, const char *fn)
{
	if (s->sock < 0) {
		errno = ENOTCONN;
		shim_warn(fn, "not attached");
		return -1;
	}
	if (shimwire_send(s->sock, m, NULL, 0) < 0) {
		shim_warn(fn, "send");
		return -1;
	}
	return 0;
}

int
migshim_send_state(struct migshim *s, const void *blob, size_t len)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__State st = MIGRATIOND__SHIM__V1__STATE__INIT;

	Migrationd__Shim__V1__Dirty d = MIGRATIOND__SHIM__V1__DIRTY__INIT;
	char why[256] = "";
	int rc;

	st.blob.data = (uint8_t *)(uintptr_t)blob;
	st.blob.len = len;
	/* Pre-copy: the VM is paused now, so this scan is the last word on
	 * which pages were written since the daemon read them. */
	if (s->wpfd >= 0) {
		d.ok = shim_dirty_scan(s, &d, 0, why, sizeof(why)) == 0;
		d.error = why;
		st.dirty = &d;
	}
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_STATE;
	m.state = &st;
	rc = shim_send(s, &m, __func__);
	/* Tracking stops once the state is on its way: dropping the
	 * protection walks all of RAM, and nothing writes while paused. */
	shim_dirty_stop(s);
	free(d.ranges);
	return rc;
}

int
migshim_report_running(struct migshim *s)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Running r = MIGRATIOND__SHIM__V1__RUNNING__INIT;

	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_RUNNING;
	m.running = &r;
	return shim_send(s, &m, __func__);
}

int
migshim_report_verdict(struct migshim *s, int ok, const char *text)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Verdict v = MIGRATIOND__SHIM__V1__VERDICT__INIT;

	v.ok = ok != 0;
	v.text = (char *)(uintptr_t)(text ? text : "");
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_VERDICT;
	m.verdict = &v;
	return shim_send(s, &m, __func__);
}

void
migshim_destroy(struct migshim *s)
{
	if (s == NULL)
		return;
	if (s->last != NULL)
		migrationd__shim__v1__shim_msg__free_unpacked(s->last, NULL);
	shim_dirty_stop(s);
	if (s->sock >= 0)
		close(s->sock);
	if (s->ram != MAP_FAILED)
		munmap(s->ram, s->ram_size);
	if (s->uffd >= 0)
		close(s->uffd);
	if (s->memfd >= 0)
		close(s->memfd);
	if (s->ring != NULL)
		munmap(s->ring, ring_bytes(s->nslots));
	if (s->ringfd >= 0)
		close(s->ringfd);
	if (s->doorbell >= 0)
		close(s->doorbell);
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s);
}
