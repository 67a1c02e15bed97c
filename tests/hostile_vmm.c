/*
 * hostile_vmm: a VMM that attaches to migrationd's VMM socket like
 * libmigshim does (hand-made Attach messages and fds, lib/shimwire.c), and
 * then attacks the daemon: fds that are not what their place says, memory
 * it shrinks, a fault path it floods or breaks, re-attaches under a VM's
 * name it has no right to. Each attack prints one line with what the daemon
 * answered; tests/integration/hostile_vmm.sh runs them while a real
 * migration runs beside them and judges the answers.
 *
 *   hostile_vmm fds -s SOCK             every malformed Attach, then a valid one
 *   hostile_vmm vm -s SOCK -n NAME -A ATTACK [-D SECS] [-m MIB]
 *       attach NAME as an incoming VM in ring mode, wait for its migration to
 *       start, then: doorbell-flood | ring-flood (for SECS, then report
 *       running), uffd-blocking (clear the uffd's O_NONBLOCK), ring-truncate
 *       (attach with an unsealed ring and truncate it), sealed-truncate (try
 *       to truncate the sealed ring and RAM), none
 *   hostile_vmm reattach -s SOCK -n NAME -V VICTIM [-u UID] [-G FILE]
 *       attach NAME, wait for its migration to start, wait for the daemon to
 *       restart (and FILE to exist), then re-attach NAME and VICTIM without
 *       the secret, with a wrong one, from another uid and pid, and at last
 *       as itself
 *
 * Exit 0 once every attack ran (the script judges the answers), 2 on a
 * usage or set-up error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "shimwire.h"

#define NSLOTS 8

/* One hand-made VM: what libmigshim would hand over. */
struct hv {
	const char	*name;
	int		 incoming, ring;
	uint64_t	 mem;
	void		*ram;
	int		 fds[4];	/* memfd, uffd, ring memfd, doorbell */
	void		*rmap;
	int		 sock;
	uint8_t		 secret[32];
	size_t		 secret_len;
};

static const char *sock_path;
static const char *go_file;	/* reattach: attack once it exists */

static void
die(const char *what)
{
	fprintf(stderr, "hostile_vmm: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int
hv_memfd(const char *name, uint64_t size, int seal)
{
	int fd = memfd_create(name, MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0));

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		die("memfd");
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		die("F_ADD_SEALS");
	return fd;
}

/* A uffd registered over RAM, set up for the fault mode (or not at all). */
static int
hv_uffd(struct hv *v, int api)
{
	struct uffdio_api a = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM |
	    (v->ring ? UFFD_FEATURE_SIGBUS : 0) };
	struct uffdio_register r = { .range = { (uintptr_t)v->ram, v->mem },
	    .mode = UFFDIO_REGISTER_MODE_MISSING };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		die("userfaultfd");
	if (api && (ioctl(fd, UFFDIO_API, &a) < 0 || ioctl(fd, UFFDIO_REGISTER, &r) < 0))
		die("UFFDIO_API/REGISTER");
	return fd;
}

/* A valid VM: sealed RAM, a set-up uffd, a sealed ring and an eventfd. */
static void
hv_make(struct hv *v, const char *name, uint64_t mem, int incoming, int ring)
{
	memset(v, 0, sizeof(*v));
	v->name = name;
	v->mem = mem;
	v->incoming = incoming;
	v->ring = incoming && ring;
	v->sock = v->fds[1] = v->fds[2] = v->fds[3] = -1;
	v->fds[0] = hv_memfd(name, mem, 1);
	v->ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_SHARED, v->fds[0], 0);
	if (v->ram == MAP_FAILED)
		die("mmap RAM");
	if (incoming)
		v->fds[1] = hv_uffd(v, 1);
	if (v->ring) {
		v->fds[2] = hv_memfd("hostile-ring", ring_bytes(NSLOTS), 1);
		v->rmap = mmap(NULL, ring_bytes(NSLOTS), PROT_READ | PROT_WRITE, MAP_SHARED,
		    v->fds[2], 0);
		if (v->rmap == MAP_FAILED)
			die("mmap ring");
		ring_init(v->rmap, NSLOTS, 1, 4096);
		if ((v->fds[3] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			die("eventfd");
	}
}

static void
hv_close(struct hv *v)
{
	if (v->sock >= 0)
		close(v->sock);
	for (int i = 0; i < 4; i++)
		if (v->fds[i] >= 0)
			close(v->fds[i]);
	if (v->rmap != NULL)
		munmap(v->rmap, ring_bytes(NSLOTS));
	munmap(v->ram, v->mem);
	v->sock = -1;
}

static int
hv_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	if (s >= 0 && connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return s;
	if (s >= 0)
		close(s);
	return -1;
}

/*
 * Sends v's Attach as `role` with fds[0..nfds) and `secret` (NULL: none);
 * the daemon's answer goes into ans. 1 accepted (v->sock stays open, the
 * secret it handed is kept), 0 refused, -1 no answer.
 */
static int
hv_attach_as(struct hv *v, int role, int nfds, const uint8_t *secret, size_t slen,
    char *ans, size_t len)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT, *r = NULL;
	Migrationd__Shim__V1__Attach a = MIGRATIOND__SHIM__V1__ATTACH__INIT;
	int rfds[SHIMWIRE_MAX_FDS], nr, rc, s;

	if ((s = hv_connect()) < 0) {
		snprintf(ans, len, "no connection: %s", strerror(errno));
		return -1;
	}
	a.version = 1;
	a.vm = (char *)(uintptr_t)v->name;
	a.role = role;
	a.ram_bytes = v->mem;
	a.page_size = 4096;
	a.ram_va = (uintptr_t)v->ram;
	a.vcpus = 1;
	a.pid = 1;	/* a lie: the daemon must not care */
	a.fault_mode = v->ring ? MIGRATIOND__SHIM__V1__FAULT_MODE__FAULT_RING :
	    MIGRATIOND__SHIM__V1__FAULT_MODE__FAULT_UFFD;
	a.ring_slots = NSLOTS;
	a.secret.data = (uint8_t *)(uintptr_t)secret;
	a.secret.len = secret != NULL ? slen : 0;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH;
	m.attach = &a;
	if (shimwire_send(s, &m, v->fds, nfds) < 0 ||
	    (rc = shimwire_recv(s, &r, rfds, &nr)) <= 0 ||
	    r->msg_case != MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_ATTACH_REPLY) {
		snprintf(ans, len, "no answer (connection closed)");
		if (r != NULL)
			migrationd__shim__v1__shim_msg__free_unpacked(r, NULL);
		close(s);
		return -1;
	}
	rc = r->attach_reply->ok;
	snprintf(ans, len, "%s%s", rc ? "accepted" : "refused: ", r->attach_reply->error);
	if (rc && r->attach_reply->secret.len == sizeof(v->secret)) {
		memcpy(v->secret, r->attach_reply->secret.data, sizeof(v->secret));
		v->secret_len = sizeof(v->secret);
	}
	migrationd__shim__v1__shim_msg__free_unpacked(r, NULL);
	if (rc)
		v->sock = s;
	else
		close(s);
	return rc;
}

static int
hv_attach(struct hv *v, const uint8_t *secret, char *ans, size_t len)
{
	return hv_attach_as(v, v->incoming ? MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_INCOMING :
	    MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_SOURCE,
	    !v->incoming ? 1 : v->ring ? 4 : 2, secret, sizeof(v->secret), ans, len);
}

static void
report(const char *attack, const char *ans)
{
	printf("attack %s: %s\n", attack, ans);
	fflush(stdout);
}

/* Waits up to secs for a message of `type` from the daemon: 0, or -1. */
static int
hv_wait(struct hv *v, int type, int secs)
{
	struct pollfd p = { .fd = v->sock, .events = POLLIN };
	Migrationd__Shim__V1__ShimMsg *m;
	int fds[SHIMWIRE_MAX_FDS], nfds;

	while (poll(&p, 1, secs * 1000) > 0) {
		if (shimwire_recv(v->sock, &m, fds, &nfds) <= 0)
			return -1;
		int got = (int)m->msg_case;

		migrationd__shim__v1__shim_msg__free_unpacked(m, NULL);
		if (got == type)
			return 0;
	}
	return -1;
}

static void
hv_send_running(struct hv *v)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Running r = MIGRATIOND__SHIM__V1__RUNNING__INIT;

	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_RUNNING;
	m.running = &r;
	shimwire_send(v->sock, &m, NULL, 0);
}

/*
 * One malformed Attach: a valid VM with fd `slot` replaced by `bad` (closed
 * afterwards), or with its RAM / ring replaced by an unsealed memfd.
 */
static void
fds_one(const char *attack, int ring, int slot, int bad)
{
	char ans[512];
	struct hv v;

	hv_make(&v, attack, 16 << 20, 1, ring);
	close(v.fds[slot]);
	v.fds[slot] = bad;
	if (hv_attach(&v, NULL, ans, sizeof(ans)) < 0 && strncmp(ans, "no answer", 9) != 0)
		die("attach");
	report(attack, ans);
	hv_close(&v);
}

static int
tmpfile_of(const char *dir, uint64_t size)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/hostile-vmm-XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0 || ftruncate(fd, (off_t)size) < 0)
		die(path);
	unlink(path);
	return fd;
}

static int
cmd_fds(void)
{
	int p[2], sp[2], u;
	char ans[512];
	struct hv v;

	/* Not a userfaultfd: a pipe at EOF, a socket, a file, an eventfd. */
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	close(p[1]);
	fds_one("uffd-pipe", 0, 1, p[0]);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair");
	close(sp[1]);
	fds_one("uffd-socket", 0, 1, sp[0]);
	fds_one("uffd-file", 0, 1, tmpfile_of("/tmp", 4096));
	fds_one("uffd-eventfd", 0, 1, eventfd(0, EFD_CLOEXEC));
	/* A userfaultfd never set up (no UFFDIO_API): poll says error for ever. */
	hv_make(&v, "uffd-uninit", 16 << 20, 1, 0);
	u = hv_uffd(&v, 0);
	hv_close(&v);
	fds_one("uffd-uninit", 0, 1, u);
	/* Ring mode with a uffd that would block the VMM's threads instead. */
	hv_make(&v, "uffd-mode", 16 << 20, 1, 0);
	u = v.fds[1];
	v.fds[1] = -1;
	hv_close(&v);
	fds_one("uffd-mode", 1, 1, u);
	/* Doorbells that are always readable. */
	if (pipe2(p, O_CLOEXEC) < 0 || write(p[1], "x", 1) != 1)
		die("pipe");
	fds_one("doorbell-pipe", 1, 3, p[0]);
	close(p[1]);
	u = eventfd(1000000, EFD_CLOEXEC | EFD_SEMAPHORE);
	fds_one("doorbell-semaphore", 1, 3, u);
	/* Guest RAM and ring: not memfds, the wrong size, unsealed. */
	fds_one("ram-file", 0, 0, tmpfile_of("/tmp", 16 << 20));
	fds_one("ram-shm", 0, 0, tmpfile_of("/dev/shm", 16 << 20));
	fds_one("ram-size", 0, 0, hv_memfd("ram-size", 8 << 20, 1));
	fds_one("ram-unsealed", 0, 0, hv_memfd("ram-unsealed", 16 << 20, 0));
	u = hv_memfd("ring-unsealed", ring_bytes(NSLOTS), 0);
	{
		void *r = mmap(NULL, ring_bytes(NSLOTS), PROT_READ | PROT_WRITE, MAP_SHARED, u, 0);

		if (r == MAP_FAILED)
			die("mmap");
		ring_init(r, NSLOTS, 1, 4096);
		munmap(r, ring_bytes(NSLOTS));
	}
	fds_one("ring-unsealed", 1, 2, u);
	fds_one("ring-file", 1, 2, tmpfile_of("/tmp", ring_bytes(NSLOTS)));
	/* The control: the same VM, nothing wrong with it, is accepted. */
	hv_make(&v, "hostile-valid", 16 << 20, 1, 1);
	hv_attach(&v, NULL, ans, sizeof(ans));
	report("none (valid attach)", ans);
	hv_close(&v);
	return 0;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Rings the doorbell as fast as it can for secs seconds. */
static void
flood_doorbell(struct hv *v, int secs)
{
	double end = mono_s() + secs;
	uint64_t one = 1, n = 0;
	char ans[128];

	while (mono_s() < end)
		for (int k = 0; k < 256; k++)
			n += write(v->fds[3], &one, sizeof(one)) == sizeof(one);
	snprintf(ans, sizeof(ans), "rang the doorbell %llu times in %d s",
	    (unsigned long long)n, secs);
	report("doorbell-flood", ans);
}

/*
 * Posts every slot again and again for secs seconds without waiting for an
 * answer: page 0 (fetched once, then present), and entries the daemon must
 * refuse (beyond RAM, unaligned).
 */
static void
flood_ring(struct hv *v, int secs)
{
	double end = mono_s() + secs;
	uint64_t one = 1, n = 0;
	char ans[128];

	while (mono_s() < end) {
		for (uint32_t i = 0; i < NSLOTS; i++) {
			struct ring_slot *s = ring_slot(v->rmap, i);

			s->kind = RING_KIND_VCPU;
			s->offset = i % 3 == 0 ? 0 : i % 3 == 1 ? v->mem : 4096 + 8;
			s->size = 4096;
			s->tid = (uint32_t)i;
			ring_store(s, RING_POSTED);
			n++;
			if (ring_post_rings(v->rmap) &&
			    write(v->fds[3], &one, sizeof(one)) != sizeof(one))
				die("doorbell");
		}
	}
	snprintf(ans, sizeof(ans), "posted %llu ring slots in %d s", (unsigned long long)n,
	    secs);
	report("ring-flood", ans);
}

/* Attach with an unsealed ring (if the daemon takes it), then shrink it. */
static void
ring_unseal(struct hv *v)
{
	close(v->fds[2]);
	munmap(v->rmap, ring_bytes(NSLOTS));
	v->fds[2] = hv_memfd("hostile-ring-unsealed", ring_bytes(NSLOTS), 0);
	v->rmap = mmap(NULL, ring_bytes(NSLOTS), PROT_READ | PROT_WRITE, MAP_SHARED,
	    v->fds[2], 0);
	if (v->rmap == MAP_FAILED)
		die("mmap ring");
	ring_init(v->rmap, NSLOTS, 1, 4096);
}

static void
vm_truncate(struct hv *v, const char *attack)
{
	uint64_t one = 1;
	char ans[256];
	int r1, e1, r2, e2;

	/* The ring goes first: the daemon reads its header at every doorbell. */
	munmap(v->rmap, ring_bytes(NSLOTS));
	v->rmap = NULL;
	r1 = ftruncate(v->fds[2], 0);
	e1 = errno;
	r2 = ftruncate(v->fds[0], 0);
	e2 = errno;
	if (write(v->fds[3], &one, sizeof(one)) != sizeof(one))
		die("doorbell");
	snprintf(ans, sizeof(ans), "ring ftruncate to 0: %s; RAM ftruncate to 0: %s; "
	    "doorbell rung", r1 == 0 ? "done" : strerror(e1), r2 == 0 ? "done" : strerror(e2));
	report(attack, ans);
}

/* A thread of the VMM touches guest RAM: a fault the daemon reads. */
static void *
toucher(void *ram)
{
	(void)*(volatile uint64_t *)ram;
	return NULL;
}

static int
cmd_vm(const char *name, uint64_t mem, const char *attack, int secs)
{
	char ans[512];
	pthread_t th;
	struct hv v;
	int fl;

	/* Made blocking, a uffd polls as an error from its next fault on: that
	 * needs the blocking fault path. The rest floods or breaks the ring. */
	hv_make(&v, name, mem, 1, strcmp(attack, "uffd-blocking") != 0);
	if (!strcmp(attack, "ring-truncate"))
		ring_unseal(&v);
	if (hv_attach(&v, NULL, ans, sizeof(ans)) <= 0) {
		report(attack, ans);
		return 0;
	}
	printf("hostile_vmm: %s attached; ready\n", name);
	fflush(stdout);
	if (hv_wait(&v, MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_START, 120) < 0) {
		fprintf(stderr, "hostile_vmm: no START\n");
		return 2;
	}
	printf("hostile_vmm: %s started\n", name);
	fflush(stdout);
	if (!strcmp(attack, "doorbell-flood"))
		flood_doorbell(&v, secs);
	else if (!strcmp(attack, "ring-flood"))
		flood_ring(&v, secs);
	else if (!strcmp(attack, "ring-truncate") || !strcmp(attack, "sealed-truncate"))
		vm_truncate(&v, attack);
	else if (!strcmp(attack, "uffd-blocking")) {
		/* One open file for both: the daemon's O_NONBLOCK goes too. */
		fl = fcntl(v.fds[1], F_GETFL);
		snprintf(ans, sizeof(ans), "cleared O_NONBLOCK on the shared uffd: %s; "
		    "touching page 0", fcntl(v.fds[1], F_SETFL, fl & ~O_NONBLOCK) == 0 ?
		    "done" : strerror(errno));
		report(attack, ans);
		if (pthread_create(&th, NULL, toucher, v.ram) != 0)
			die("pthread_create");
	}
	if (!strcmp(attack, "uffd-blocking") || strstr(attack, "truncate") != NULL) {
		sleep((unsigned)secs);
		return 0;
	}
	hv_send_running(&v);
	snprintf(ans, sizeof(ans), "%s", hv_wait(&v, MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_COMPLETED,
	    120) == 0 ? "its own migration completed" : "its own migration did not complete");
	report("after the flood", ans);
	hv_close(&v);
	return 0;
}

/* The daemon went away and came back: wait for both. */
static void
wait_restart(struct hv *v)
{
	struct pollfd p = { .fd = v->sock, .events = POLLIN };
	Migrationd__Shim__V1__ShimMsg *m;
	int fds[SHIMWIRE_MAX_FDS], nfds, s, rc;

	for (;;) {
		if (poll(&p, 1, 600000) <= 0)
			die("waiting for the daemon to go");
		if ((rc = shimwire_recv(v->sock, &m, fds, &nfds)) <= 0)
			break;
		migrationd__shim__v1__shim_msg__free_unpacked(m, NULL);
	}
	close(v->sock);
	v->sock = -1;
	printf("hostile_vmm: daemon gone\n");
	fflush(stdout);
	for (int i = 0; i < 6000 && (s = hv_connect()) < 0; i++)
		usleep(20000);
	if (s < 0)
		die("the daemon did not come back");
	close(s);
	for (int i = 0; go_file != NULL && i < 3000 && access(go_file, F_OK) < 0; i++)
		usleep(20000);
}

/* The re-attach in a forked child (another pid; another uid if uid >= 0). */
static void
reattach_child(struct hv *v, const char *attack, long uid)
{
	char ans[512];
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		if (uid >= 0 && (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid,
		    (gid_t)uid) < 0 || setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0))
			die("setresuid");
		hv_attach(v, v->secret, ans, sizeof(ans));
		report(attack, ans);
		_exit(0);
	}
	waitpid(pid, &st, 0);
}

static int
cmd_reattach(const char *name, const char *victim, long uid)
{
	uint8_t wrong[32];
	char ans[512];
	struct hv v, w;

	hv_make(&v, name, 16 << 20, 1, 0);
	if (hv_attach(&v, NULL, ans, sizeof(ans)) <= 0 || v.secret_len != sizeof(v.secret)) {
		fprintf(stderr, "hostile_vmm: first attach: %s (secret %zu bytes)\n", ans,
		    v.secret_len);
		return 2;
	}
	printf("hostile_vmm: %s attached with a secret of %zu bytes; ready\n", name,
	    v.secret_len);
	fflush(stdout);
	if (hv_wait(&v, MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_START, 120) < 0)
		return 2;
	printf("hostile_vmm: %s started\n", name);
	fflush(stdout);
	wait_restart(&v);
	if (getrandom(wrong, sizeof(wrong), 0) != sizeof(wrong))
		die("getrandom");
	hv_attach(&v, NULL, ans, sizeof(ans));
	report("no-secret", ans);
	hv_attach(&v, wrong, ans, sizeof(ans));
	report("wrong-secret", ans);
	reattach_child(&v, "other-uid", uid);
	reattach_child(&v, "other-pid", -1);
	/* The victim's name: a VM this VMM never had. */
	hv_make(&w, victim, 16 << 20, 1, 0);
	hv_attach(&w, NULL, ans, sizeof(ans));
	report("victim-no-secret", ans);
	hv_attach(&w, wrong, ans, sizeof(ans));
	report("victim-wrong-secret", ans);
	hv_attach_as(&w, MIGRATIOND__SHIM__V1__SHIM_ROLE__SHIM_SOURCE, 1, NULL, 0, ans,
	    sizeof(ans));
	report("victim-as-source", ans);
	hv_close(&w);
	/* And the VMM itself, with its secret: given back its VM. */
	hv_attach(&v, v.secret, ans, sizeof(ans));
	report("self (right secret, uid and pid)", ans);
	hv_wait(&v, -1, 600);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *name = "hostile", *attack = "none", *victim = NULL;
	uint64_t mem = 64ull << 20;
	long uid = 65534;
	int ch, secs = 5;

	if (argc < 2)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	optind = 2;
	while ((ch = getopt(argc, argv, "s:n:m:A:D:V:u:G:")) != -1) {
		switch (ch) {
		case 's': sock_path = optarg; break;
		case 'n': name = optarg; break;
		case 'm': mem = strtoull(optarg, NULL, 0) << 20; break;
		case 'A': attack = optarg; break;
		case 'D': secs = atoi(optarg); break;
		case 'V': victim = optarg; break;
		case 'u': uid = atol(optarg); break;
		case 'G': go_file = optarg; break;
		default: goto usage;
		}
	}
	if (sock_path == NULL)
		goto usage;
	if (!strcmp(argv[1], "fds"))
		return cmd_fds();
	if (!strcmp(argv[1], "vm"))
		return cmd_vm(name, mem, attack, secs);
	if (!strcmp(argv[1], "reattach") && victim != NULL)
		return cmd_reattach(name, victim, uid);
usage:
	fprintf(stderr, "usage: hostile_vmm fds -s SOCK\n"
	    "       hostile_vmm vm -s SOCK -n NAME [-m MIB] -A doorbell-flood|ring-flood|"
	    "uffd-blocking|ring-truncate|sealed-truncate|none [-D SECS]\n"
	    "       hostile_vmm reattach -s SOCK -n NAME -V VICTIM [-u UID] [-G FILE]\n");
	return 2;
}
