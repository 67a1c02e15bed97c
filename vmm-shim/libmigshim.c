/*
 * libmigshim: guest RAM, userfaultfd and the hand-off to migrationd, linked
 * into a VMM. Owns the memfd, the mapping, the uffd (incoming VMs) and the
 * socket to the daemon; keeps every fd it hands over, so a daemon restart
 * does not take the guest's memory with it. Runs on the VMM's control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/memfd.h>
#include <sys/eventfd.h>
#include <time.h>
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

#include <sched.h>
#include <sys/sdt.h>

#include "libmigshim.h"
#include "mig_compat.h"
#include "ring.h"
#include "shimwire.h"

#define SHIM_VERSION 1

struct migshim {
	char			 name[128];
	enum migshim_role	 role;
	uint64_t		 ram_size;
	void			*ram;
	int			 memfd;
	int			 uffd;
	int			 sock;
	Migrationd__Shim__V1__ShimMsg *last;	/* keeps START's blob alive */
	enum migshim_fault_mode	 mode;
	void			*ring;		/* MIGSHIM_FAULT_RING */
	int			 ringfd;
	int			 doorbell;	/* eventfd the daemon waits on */
	uint32_t		 nslots, nvcpu;
	uint64_t		 spin_ns;
	uint32_t		 seq;
	int			 complete;	/* every page present: SIGBUS = poison */
	int			 spinners;	/* threads spinning on a slot now */
	uint64_t		 page_size;	/* 4 KiB, or 2 MiB (hugetlbfs) */
	enum migshim_install	 install;
};

static void
shim_warn(const char *fn, const char *what)
{
	fprintf(stderr, "libmigshim: %s: %s: %s\n", fn, what, strerror(errno));
}

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
	if ((s->ringfd = memfd_create("migshim-ring", MFD_CLOEXEC)) < 0 ||
	    ftruncate(s->ringfd, (off_t)len) < 0) {
		shim_warn(__func__, "ring memfd");
		return -1;
	}
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
	s->page_size = (uint64_t)pg;
	if (opts != NULL && role == MIGSHIM_INCOMING) {
		s->mode = opts->mode;
		s->install = opts->install;
	}
	s->spin_ns = opts != NULL && opts->spin_ns ? opts->spin_ns : 20000;

	if ((s->memfd = memfd_create(name, MFD_CLOEXEC |
	    (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0))) < 0) {
		shim_warn(__func__, huge ? "memfd_create (2 MiB hugetlbfs)" : "memfd_create");
		goto fail;
	}
	if (ftruncate(s->memfd, (off_t)ram_size) < 0) {
		shim_warn(__func__, "ftruncate");
		goto fail;
	}
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
		return 0;
	}
	switch (m->msg_case) {
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

	st.blob.data = (uint8_t *)(uintptr_t)blob;
	st.blob.len = len;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_STATE;
	m.state = &st;
	return shim_send(s, &m, __func__);
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
	free(s);
}

/* ---- the fault ring: posting side ---------------------------------------- */

static uint64_t
shim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Async-signal-safe: called from the SIGBUS handler too. */
int
migshim_fault(struct migshim *s, unsigned slot, uint64_t offset, uint64_t size,
    uint64_t gpa, int kind)
{
	struct ring_slot *r;
	uint64_t one = 1, t0;
	uint32_t st;
	int err, spin;

	if (s->ring == NULL || slot >= s->nslots)
		return -EINVAL;
	r = ring_slot(s->ring, slot);
	r->kind = (uint32_t)kind;
	r->offset = offset;
	r->size = size;
	r->gpa = gpa;
	r->error = 0;
	r->tid = (uint32_t)syscall(SYS_gettid);
	r->seq = __atomic_add_fetch(&s->seq, 1, __ATOMIC_RELAXED);
	r->post_ns = t0 = shim_now_ns();
	/* Publish the fields, then ring the doorbell. */
	DTRACE_PROBE4(migshim, fault_posted, slot, offset, r->tid, kind);
	ring_store(r, RING_POSTED);
	if (ring_post_rings(s->ring) &&
	    write(s->doorbell, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	/*
	 * Spin first: waking a sleeping thread costs more than a whole fetch
	 * on a fast link. But only one waiter spins at a time: more spinners
	 * would take the cores the daemon needs to bring the pages; and none
	 * where the daemon may run only on this CPU (ring_may_spin). Then
	 * sleep on the state word; the daemon wakes it.
	 */
	spin = 0;
	if (ring_may_spin(s->ring)) {
		spin = __atomic_fetch_add(&s->spinners, 1, __ATOMIC_ACQ_REL) == 0;
		if (!spin)
			__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
	}
	for (;;) {
		st = ring_load(r);
		if (st != RING_POSTED && st != RING_TAKEN)
			break;
		if (spin && shim_now_ns() - t0 < s->spin_ns) {
			__builtin_ia32_pause();
			continue;
		}
		if (spin) {
			__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
			spin = 0;
		}
		ring_futex_wait(r, st, 1000000000u);
	}
	if (spin)
		__atomic_fetch_sub(&s->spinners, 1, __ATOMIC_ACQ_REL);
	err = st == RING_DONE ? 0 : r->error ? r->error : -EIO;
	ring_store(r, RING_FREE);
	DTRACE_PROBE4(migshim, fault_resumed, slot, offset, err, shim_now_ns() - t0);
	return err;
}

/* ---- SIGBUS from VMM threads --------------------------------------------- */

static struct migshim *sigbus_shim;
static struct sigaction sigbus_prev;

static void
shim_sigbus_chain(int sig, siginfo_t *si, void *uc)
{
	if (sigbus_prev.sa_flags & SA_SIGINFO) {
		sigbus_prev.sa_sigaction(sig, si, uc);
	} else if (sigbus_prev.sa_handler != SIG_DFL && sigbus_prev.sa_handler != SIG_IGN) {
		sigbus_prev.sa_handler(sig);
	} else {
		/* Default action: return, fault again, die with the real signal. */
		signal(SIGBUS, SIG_DFL);
	}
}

static void
shim_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct migshim *s = __atomic_load_n(&sigbus_shim, __ATOMIC_ACQUIRE);
	uintptr_t a = (uintptr_t)si->si_addr, base;
	int saved = errno, rc;

	/* Only our RAM; BUS_MCEERR_* is poison the kernel already reports. */
	if (s == NULL || si->si_code != BUS_ADRERR)
		goto chain;
	base = (uintptr_t)s->ram;
	if (a < base || a - base >= s->ram_size)
		goto chain;
	/*
	 * Blocking-uffd mode never raises SIGBUS for a missing page, and after
	 * completion no page is missing, so this is a page installed as poison
	 * (a kernel without CONFIG_MEMORY_FAILURE reports those as BUS_ADRERR):
	 * tell the VMM it is a memory error.
	 */
	if (s->ring == NULL || __atomic_load_n(&s->complete, __ATOMIC_ACQUIRE))
		goto poison;
	for (unsigned spins = 0;; spins++) {
		for (uint32_t i = s->nvcpu; i < s->nslots; i++) {
			struct ring_slot *r = ring_slot(s->ring, i);
			uint64_t pg = s->page_size;
			uint64_t off = (a - base) & ~(pg - 1);

			if (!ring_cas(r, RING_FREE, RING_CLAIMED))
				continue;
			rc = migshim_fault(s, i, off, pg, off, RING_KIND_SIGBUS);
			/* Retry the access: it succeeds, or (EAGAIN: the daemon
			 * could not queue the fetch) faults and posts again. */
			if (rc == 0 || rc == -EAGAIN) {
				errno = saved;
				return;
			}
			if (rc == -EHWPOISON)
				goto poison;
			goto chain;
		}
		/* Every thread slot busy: their pages will arrive; retry. */
		if (spins > 1000000)
			goto chain;
		sched_yield();
	}
chain:
	errno = saved;
	shim_sigbus_chain(sig, si, uc);
	return;
poison:
	si->si_code = BUS_MCEERR_AR;
	errno = saved;
	shim_sigbus_chain(sig, si, uc);
}

int
migshim_sigbus_install(struct migshim *s)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = shim_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	__atomic_store_n(&sigbus_shim, s, __ATOMIC_RELEASE);
	if (sigaction(SIGBUS, &sa, &sigbus_prev) < 0) {
		shim_warn(__func__, "sigaction");
		return -1;
	}
	return 0;
}

void
migshim_sigbus_remove(void)
{
	if (__atomic_exchange_n(&sigbus_shim, NULL, __ATOMIC_ACQ_REL) != NULL)
		sigaction(SIGBUS, &sigbus_prev, NULL);
}

/* ---- the KVM_RUN contract ------------------------------------------------- */

enum migshim_kvm_action
migshim_kvm_classify(int ret, int err, const struct kvm_run *run,
    struct migshim_kvm_fault *f)
{
	int annotated;

	f->gpa = UINT64_MAX;
	f->size = 0;
	f->flags = 0;
	f->err = ret == -1 ? err : 0;
	if (ret == 0)
		return MIGSHIM_KVM_EXIT;	/* exit_reason is valid; memory_fault is not */
	if (ret != -1)
		return MIGSHIM_KVM_ERROR;
	if (err == EINTR || err == EAGAIN)
		return MIGSHIM_KVM_RETRY;
	if (err != EFAULT && err != EHWPOISON)
		return MIGSHIM_KVM_ERROR;
	/* Only now may memory_fault be read. */
	annotated = run != NULL && run->exit_reason == KVM_EXIT_MEMORY_FAULT;
	if (annotated) {
		f->gpa = mig_memory_fault(run)->gpa;
		f->size = mig_memory_fault(run)->size;
		f->flags = mig_memory_fault(run)->flags;
	}
	if (err == EHWPOISON)
		return MIGSHIM_KVM_POISON;	/* never fetched */
	if (!annotated)
		return MIGSHIM_KVM_ERROR;	/* an EFAULT KVM did not explain */
	if (f->flags & KVM_MEMORY_EXIT_FLAG_PRIVATE)
		return MIGSHIM_KVM_PRIVATE;
	if (f->size == 0)
		return MIGSHIM_KVM_ERROR;
	return MIGSHIM_KVM_FETCH;
}

enum migshim_kvm_action
migshim_kvm_exit(struct migshim *s, unsigned vcpu, int ret, int err,
    const struct kvm_run *run, struct migshim_kvm_fault *f)
{
	enum migshim_kvm_action a = migshim_kvm_classify(ret, err, run, f);
	uint64_t pg = s->page_size, off, end;

	if (a != MIGSHIM_KVM_FETCH)
		return a;
	/* Page-align and bound the range before anything is touched. */
	off = f->gpa & ~(pg - 1);
	end = f->gpa + f->size;
	if (end < f->gpa || off >= s->ram_size || end > s->ram_size) {
		f->err = ERANGE;
		return MIGSHIM_KVM_ERROR;
	}
	end = (end + pg - 1) & ~(pg - 1);
	if (s->mode == MIGSHIM_FAULT_RING) {
		int rc = migshim_fault(s, vcpu, off, end - off, f->gpa, RING_KIND_VCPU);

		if (rc == -EAGAIN)
			return MIGSHIM_KVM_RETRY;	/* KVM faults again, we post again */
		if (rc < 0) {
			f->err = -rc;
			return MIGSHIM_KVM_ERROR;
		}
		return MIGSHIM_KVM_RETRY;
	}
	/* Blocking uffd: touching the page waits in the kernel until installed. */
	for (uint64_t o = off; o < end; o += pg)
		(void)*(volatile const uint8_t *)((const uint8_t *)s->ram + o);
	return MIGSHIM_KVM_RETRY;
}

int
migshim_probe_annotated(char *why, size_t len)
{
	static const uint8_t code[] = { 0xa0, 0x00, 0x10, 0xf4 };	/* mov al,[0x1000]; hlt */
	struct kvm_userspace_memory_region mr = { 0 };
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_SIGBUS };
	struct uffdio_register reg = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	struct kvm_run *run = MAP_FAILED;
	int kvm = -1, vm = -1, vcpu = -1, mfd = -1, uffd = -1, rc = -1, ret, err;
	long runsz;
	uint8_t *mem = MAP_FAILED;

	snprintf(why, len, "cannot tell");
	if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, len, "no /dev/kvm: %s", strerror(errno));
		goto out;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_FAULT_INFO) <= 0) {
		snprintf(why, len, "KVM lacks KVM_CAP_MEMORY_FAULT_INFO");
		rc = 0;
		goto out;
	}
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0 ||
	    (mfd = memfd_create("migshim-probe", MFD_CLOEXEC)) < 0 ||
	    ftruncate(mfd, 8192) < 0)
		goto out;
	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED)
		goto out;
	memcpy(mem, code, sizeof(code));
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0) {
		snprintf(why, len, "no SIGBUS-mode userfaultfd: %s", strerror(errno));
		rc = 0;
		goto out;
	}
	reg.range.start = (uintptr_t)mem + 4096;	/* the second page stays missing */
	reg.range.len = 4096;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	mr.memory_size = 8192;
	mr.userspace_addr = (uintptr_t)mem;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ||
	    (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0 ||
	    (runsz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) <= 0)
		goto out;
	run = mmap(NULL, (size_t)runsz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		goto out;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		goto out;
	ret = ioctl(vcpu, KVM_RUN, 0);
	err = errno;
	if (ret == -1 && err == EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
	    mig_memory_fault(run)->gpa == 0x1000) {
		snprintf(why, len, "annotated exit (EFAULT, KVM_EXIT_MEMORY_FAULT, gpa 0x1000)");
		rc = 1;
	} else {
		snprintf(why, len, "no annotated exit: KVM_RUN returned %d (%s), exit "
		    "reason %u%s", ret, ret < 0 ? strerror(err) : "ok", run->exit_reason,
		    run->exit_reason == KVM_EXIT_MMIO ? " (MMIO: the access was emulated)" : "");
		rc = 0;
	}
out:
	if (rc < 0 && errno)
		snprintf(why + strlen(why), len - strlen(why), ": %s", strerror(errno));
	if (run != MAP_FAILED)
		munmap(run, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	if (mem != MAP_FAILED)
		munmap(mem, 8192);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (uffd >= 0)
		close(uffd);
	if (mfd >= 0)
		close(mfd);
	if (kvm >= 0)
		close(kvm);
	return rc;
}
