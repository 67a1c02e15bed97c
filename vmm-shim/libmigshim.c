/*
 * libmigshim: guest RAM, userfaultfd and the hand-off to migrationd, linked
 * into a VMM. Owns the memfd, the mapping, the uffd (incoming VMs) and the
 * socket to the daemon; keeps every fd it hands over, so a daemon restart
 * does not take the guest's memory with it. Runs on the VMM's control thread.
 */
#include <errno.h>
#include <fcntl.h>
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
};

static void
shim_warn(const char *fn, const char *what)
{
	fprintf(stderr, "libmigshim: %s: %s: %s\n", fn, what, strerror(errno));
}

static int
shim_uffd_register(struct migshim *s)
{
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_MISSING_SHMEM };
	struct uffdio_register reg = { 0 };

	s->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (s->uffd < 0) {
		shim_warn(__func__, "userfaultfd");
		return -1;
	}
	if (ioctl(s->uffd, UFFDIO_API, &api) < 0) {
		shim_warn(__func__, "UFFDIO_API (missing-mode shmem)");
		return -1;
	}
	reg.range.start = (uintptr_t)s->ram;
	reg.range.len = s->ram_size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(s->uffd, UFFDIO_REGISTER, &reg) < 0) {
		shim_warn(__func__, "UFFDIO_REGISTER");
		return -1;
	}
	if (!(reg.ioctls & ((uint64_t)1 << _UFFDIO_COPY)) ||
	    !(reg.ioctls & ((uint64_t)1 << _UFFDIO_ZEROPAGE))) {
		errno = ENOTSUP;
		shim_warn(__func__, "UFFDIO_COPY/ZEROPAGE not offered");
		return -1;
	}
	return 0;
}

struct migshim *
migshim_create(const char *name, uint64_t ram_size, enum migshim_role role)
{
	long pg = sysconf(_SC_PAGESIZE);
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
	s->memfd = s->uffd = s->sock = -1;

	if ((s->memfd = memfd_create(name, MFD_CLOEXEC)) < 0) {
		shim_warn(__func__, "memfd_create");
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

int
migshim_attach(struct migshim *s, const char *path, int vcpus)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Attach a = MIGRATIOND__SHIM__V1__ATTACH__INIT;
	Migrationd__Shim__V1__ShimMsg *r = NULL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fds[2] = { s->memfd, s->uffd }, rfds[SHIMWIRE_MAX_FDS], nr = 0;
	int sz = (int)SHIMWIRE_MAX_MSG, rc;

	if (s->sock >= 0 || strlen(path) >= sizeof(sun.sun_path)) {
		errno = EINVAL;
		shim_warn(__func__, "already attached or path too long");
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
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
	a.page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	a.ram_va = (uintptr_t)s->ram;
	a.vcpus = (uint32_t)vcpus;
	a.pid = getpid();
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH;
	m.attach = &a;
	if (shimwire_send(s->sock, &m, fds, s->role == MIGSHIM_INCOMING ? 2 : 1) < 0) {
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
	free(s);
}
