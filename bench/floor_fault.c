/*
 * floor_fault: the physical floor of one remote demand fault, with no daemon
 * logic in it. One thread (the "vCPU") touches a missing page of a
 * userfaultfd-registered shmem memfd mapping (missing mode, blocking: the
 * thread sleeps in the kernel). A handler thread reads the uffd event, sends
 * a 24-byte request (the size of migrationd's REQ frame) over a bare OpenSSL
 * TLS 1.3 connection (loopback TCP, TCP_NODELAY, TLS_AES_128_GCM_SHA256) to
 * a bare server process that answers from its own memory with a 24-byte
 * header and the 4 KiB page in one record, then runs one UFFDIO_COPY, which
 * wakes the toucher. The toucher measures each stall with CLOCK_MONOTONIC.
 *
 * Two waiting strategies, measured one after the other:
 *   block  the handler poll()s the uffd, then the socket; the server sleeps
 *          in read (what migrationd's loop does today);
 *   spin   the handler and the server busy-poll non-blocking fds.
 * The handler also stamps each phase, so the table shows where the floor's
 * time goes: delivery (fault -> event read), TLS round trip, the install
 * ioctl, and the toucher's resume.
 *
 * Threads: main = toucher, one handler thread; the server is a child process.
 * Every wait is bounded: alarm() ends a stuck run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define FF_PAGE		4096
#define FF_HDR		24	/* migrationd's frame header */
#define FF_WAIT_MS	10000	/* longest single wait before giving up */
#define FF_ALARM_S	120
#define FF_MAX_ROUNDS	16

enum ff_strategy { FF_BLOCK = 0, FF_SPIN = 1, FF_RING = 2, FF_NSTRAT = 3 };
static const char *ff_strategy_name[] = { "block", "spin", "ring" };

/* The ring strategy's one slot (one toucher), as in libmigshim's ring. */
enum { FF_SLOT_FREE = 0, FF_SLOT_POSTED = 1, FF_SLOT_DONE = 2 };
#define FF_RING_SPIN_NS	20000	/* libmigshim's default spin before sleeping */

struct ff_stamps {
	uint64_t	t_event;	/* handler has the uffd event */
	uint64_t	t_resp;		/* whole response received and decrypted */
	uint64_t	t_copy;		/* UFFDIO_COPY returned */
};

struct ff_run {
	enum ff_strategy strategy;
	size_t		 npages;	/* measured */
	size_t		 warmup;	/* touched first, not measured */
	uint8_t		*ram;
	int		 uffd;
	int		 stopfd;
	atomic_int	 stop;
	SSL		*ssl;
	int		 sock;
	struct ff_stamps *st;		/* per page */
	int		 err;		/* handler failed */
	/* ring strategy: the toucher's SIGBUS handler posts here */
	int		 doorbell;	/* eventfd */
	_Atomic uint32_t slot_state;	/* futex word */
	_Atomic uint64_t slot_addr;
};

/* The run the SIGBUS handler serves (one at a time). */
static struct ff_run *ff_cur;

/* Samples of one strategy, pooled over its rounds. */
struct ff_pool {
	uint64_t	*a[5];		/* stall, deliver, rtt, ioctl, install (ns) */
	size_t		 n, cap;
	double		 cpu_us;	/* toucher+handler+server */
	double		 round_p50[FF_MAX_ROUNDS];
	int		 rounds;
	char		 cipher[64];
};

struct ff_result {
	enum ff_strategy strategy;
	struct bench_pct lat, deliver, rtt, ioctl, install;
	double		 cpu_us_per_fault;
	double		 round_p50_min, round_p50_max;
	int		 rounds;
	char		 cipher[64];
};

/*
 * One busy-poll step. With 2 cores, two pure spinners (handler and server)
 * would leave no CPU for the woken toucher until a time slice ends
 * (milliseconds), so a spinner yields the CPU at every step: it never
 * sleeps, but a runnable thread gets the core at once.
 */
/* --pin T,H,S: CPUs of the toucher, handler and server (-1: anywhere). */
static int ff_pin[3] = { -1, -1, -1 };

static void
ff_pin_self(int who)
{
	cpu_set_t set;

	if (ff_pin[who] < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(ff_pin[who], &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("floor_fault: sched_setaffinity");
}

static inline void
ff_relax(void)
{
	__builtin_ia32_pause();
	sched_yield();
}

/* The byte pattern of page `idx` as the server holds it. */
static uint64_t
ff_pattern(uint64_t idx)
{
	return 0x5a5a000000000000ull ^ (idx * 0x9e3779b97f4a7c15ull) ^ 1;
}

static void
ff_hdr(uint8_t *h, uint8_t type, uint64_t idx, uint32_t len)
{
	memset(h, 0, FF_HDR);
	h[0] = 0x47;
	h[1] = 0x4d;
	h[2] = type;
	memcpy(h + 4, &len, 4);
	memcpy(h + 8, &idx, 8);
	h[16] = 1;
}

/*
 * The bare page server (child process): reads 24-byte requests, answers
 * each with header + page in one SSL_write (one TLS record). A request of
 * type 0 ends it.
 */
static int
ff_server(int lfd, enum ff_strategy strategy, size_t npages)
{
	uint8_t req[FF_HDR], *mem, *out;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(FF_ALARM_S);
	ff_pin_self(2);
	if ((mem = malloc(npages * FF_PAGE)) == NULL || (out = malloc(FF_HDR + FF_PAGE)) == NULL)
		return 1;
	for (size_t i = 0; i < npages; i++) {
		uint64_t v = ff_pattern(i);

		for (size_t w = 0; w < FF_PAGE / 8; w++)
			memcpy(mem + i * FF_PAGE + w * 8, &v, 8);
	}
	if ((ctx = bench_tls_ctx(1, BENCH_SUITE_AES128)) == NULL ||
	    (fd = bench_tcp_accept(lfd)) < 0 || (ssl = bench_tls_wrap(ctx, fd, 1)) == NULL)
		return 1;
	close(lfd);
	if (strategy == FF_SPIN)
		bench_set_nonblock(fd, 1);
	for (;;) {
		size_t got = 0;
		uint64_t idx;

		while (got < sizeof(req)) {
			int n = SSL_read(ssl, req + got, (int)(sizeof(req) - got));

			if (n > 0) {
				got += (size_t)n;
				continue;
			}
			if (SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ) {
				ff_relax();
				continue;
			}
			return 1;
		}
		if (req[2] == 0)
			break;
		memcpy(&idx, req + 8, 8);
		if (idx >= npages)
			return 1;
		ff_hdr(out, 3, idx, FF_PAGE);
		memcpy(out + FF_HDR, mem + idx * FF_PAGE, FF_PAGE);
		for (size_t off = 0; off < FF_HDR + FF_PAGE;) {
			int n = SSL_write(ssl, out + off, (int)(FF_HDR + FF_PAGE - off));

			if (n > 0) {
				off += (size_t)n;
				continue;
			}
			if (SSL_get_error(ssl, n) == SSL_ERROR_WANT_WRITE) {
				ff_relax();
				continue;
			}
			return 1;
		}
	}
	SSL_shutdown(ssl);
	return 0;
}

/* Waits until `fd` is readable (block) or returns at once (spin). */
static int
ff_wait_fd(struct ff_run *r, int fd)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { r->stopfd, POLLIN, 0 } };
	int n;

	if (r->strategy == FF_SPIN) {
		ff_relax();
		return atomic_load_explicit(&r->stop, memory_order_relaxed) ? -1 : 0;
	}
	do
		n = poll(p, 2, FF_WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0 || (p[1].revents & POLLIN))
		return -1;
	return 0;
}

/* One fault: request the page, receive it, install it (which wakes the toucher). */
static int
ff_serve_fault(struct ff_run *r, uint64_t addr, uint8_t *buf)
{
	uint64_t idx = (addr - (uintptr_t)r->ram) / FF_PAGE;
	struct ff_stamps *s = &r->st[idx];
	struct uffdio_copy cp = { .dst = addr & ~(uint64_t)(FF_PAGE - 1),
	    .src = (uintptr_t)(buf + FF_HDR), .len = FF_PAGE, .mode = 0 };
	uint8_t req[FF_HDR];
	size_t got = 0;

	s->t_event = bench_now_ns();
	ff_hdr(req, 2, idx, 0);
	for (size_t off = 0; off < sizeof(req);) {
		int n = SSL_write(r->ssl, req + off, (int)(sizeof(req) - off));

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (SSL_get_error(r->ssl, n) != SSL_ERROR_WANT_WRITE)
			return -1;
		ff_relax();
	}
	while (got < FF_HDR + FF_PAGE) {
		int n = SSL_read(r->ssl, buf + got, (int)(FF_HDR + FF_PAGE - got));

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (SSL_get_error(r->ssl, n) != SSL_ERROR_WANT_READ ||
		    ff_wait_fd(r, r->sock) < 0)
			return -1;
	}
	s->t_resp = bench_now_ns();
	if (ioctl(r->uffd, UFFDIO_COPY, &cp) < 0 && errno != EEXIST) {
		perror("floor_fault: UFFDIO_COPY");
		return -1;
	}
	s->t_copy = bench_now_ns();
	return 0;
}

static void *
ff_handler(void *arg)
{
	struct ff_run *r = arg;
	uint8_t *buf = aligned_alloc(FF_PAGE, 2 * FF_PAGE);
	struct uffd_msg msg;

	if (buf == NULL) {
		r->err = 1;
		return NULL;
	}
	ff_pin_self(1);
	while (r->strategy == FF_RING && !atomic_load(&r->stop)) {
		uint64_t cnt;

		if (read(r->doorbell, &cnt, sizeof(cnt)) < 0) {
			if (errno == EAGAIN && ff_wait_fd(r, r->doorbell) == 0)
				continue;
			break;
		}
		if (atomic_load(&r->slot_state) != FF_SLOT_POSTED)
			continue;
		if (ff_serve_fault(r, atomic_load(&r->slot_addr), buf) < 0) {
			if (!atomic_load(&r->stop)) {
				fprintf(stderr, "floor_fault: handler failed\n");
				r->err = 1;
			}
			break;
		}
		atomic_store(&r->slot_state, FF_SLOT_DONE);
		syscall(SYS_futex, &r->slot_state, FUTEX_WAKE, 1, NULL, NULL, 0);
	}
	while (r->strategy != FF_RING && !atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		ssize_t n = read(r->uffd, &msg, sizeof(msg));

		if (n < 0 && errno == EAGAIN) {
			if (ff_wait_fd(r, r->uffd) < 0)
				break;
			continue;
		}
		if (n != (ssize_t)sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT ||
		    ff_serve_fault(r, msg.arg.pagefault.address, buf) < 0) {
			if (!atomic_load(&r->stop)) {
				fprintf(stderr, "floor_fault: handler failed\n");
				r->err = 1;
			}
			break;
		}
	}
	free(buf);
	return NULL;
}

/*
 * Ring strategy, on the toucher: the missing page raised SIGBUS
 * (UFFD_FEATURE_SIGBUS). Post it, ring the doorbell, spin 20 us, then sleep
 * on the slot until the handler says DONE; returning retries the access.
 * As libmigshim (ring_may_spin): no spin where the handler may run only on
 * the toucher's own CPU, where it would only delay the handler.
 */
static void
ff_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct ff_run *r = ff_cur;
	uint64_t a = (uint64_t)(uintptr_t)si->si_addr, one = 1, t0;
	struct timespec ts = { 1, 0 };
	int spin;

	if (r == NULL || a < (uintptr_t)r->ram ||
	    a >= (uintptr_t)r->ram + (r->npages + r->warmup) * FF_PAGE) {
		signal(SIGBUS, SIG_DFL);
		raise(SIGBUS);
		return;
	}
	atomic_store(&r->slot_addr, a & ~(uint64_t)(FF_PAGE - 1));
	atomic_store(&r->slot_state, FF_SLOT_POSTED);
	if (write(r->doorbell, &one, sizeof(one)) < 0)
		_exit(3);
	t0 = bench_now_ns();
	spin = ff_pin[1] < 0 || ff_pin[1] != sched_getcpu();
	while (atomic_load(&r->slot_state) == FF_SLOT_POSTED) {
		if (spin && bench_now_ns() - t0 < FF_RING_SPIN_NS) {
			__builtin_ia32_pause();
			continue;
		}
		syscall(SYS_futex, &r->slot_state, FUTEX_WAIT, FF_SLOT_POSTED, &ts, NULL, 0);
		if (atomic_load(&r->stop))
			_exit(3);
	}
	atomic_store(&r->slot_state, FF_SLOT_FREE);
}

static int
ff_uffd_setup(struct ff_run *r, size_t bytes)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM |
	    (r->strategy == FF_RING ? UFFD_FEATURE_SIGBUS : 0) };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int memfd = memfd_create("floor_fault", MFD_CLOEXEC);

	if (memfd < 0 || ftruncate(memfd, (off_t)bytes) < 0) {
		perror("floor_fault: memfd");
		return -1;
	}
	r->ram = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (r->ram == MAP_FAILED) {
		perror("floor_fault: mmap");
		return -1;
	}
	r->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (r->uffd < 0 || ioctl(r->uffd, UFFDIO_API, &api) < 0) {
		perror("floor_fault: userfaultfd (as root, or vm.unprivileged_userfaultfd=1)");
		return -1;
	}
	reg.range.start = (uintptr_t)r->ram;
	reg.range.len = bytes;
	if (ioctl(r->uffd, UFFDIO_REGISTER, &reg) < 0) {
		perror("floor_fault: UFFDIO_REGISTER");
		return -1;
	}
	return 0;
}

/* Ends the handler's loop (it may sit in poll or in a spin). */
static void
ff_stop(struct ff_run *r)
{
	uint64_t one = 1;

	atomic_store(&r->stop, 1);
	if (r->stopfd >= 0 && write(r->stopfd, &one, sizeof(one)) < 0)
		perror("floor_fault: eventfd");
}

static double
ff_self_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
	    (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

/*
 * Appends one round's measured faults (the pages after the warm-up) to
 * *pool, with the round's own p50 and the CPU time it took.
 */
static void
ff_pool_add(struct ff_pool *pool, const struct ff_run *r, const uint64_t *t0,
    const uint64_t *t1, double cpu_us)
{
	size_t npages = r->npages, warmup = r->warmup;

	for (size_t k = 0; k < npages; k++) {
		size_t i = warmup + k, j = pool->n + k;
		const struct ff_stamps *x = &r->st[i];

		pool->a[0][j] = t1[i] - t0[i];
		pool->a[1][j] = x->t_event - t0[i];
		pool->a[2][j] = x->t_resp - x->t_event;
		pool->a[3][j] = x->t_copy - x->t_resp;
		pool->a[4][j] = t1[i] - x->t_resp;
	}
	{
		/* This round's p50 alone, to show the spread between rounds. */
		struct bench_pct pc;
		uint64_t *tmp = malloc(npages * sizeof(*tmp));

		if (tmp != NULL) {
			memcpy(tmp, pool->a[0] + pool->n, npages * sizeof(*tmp));
			bench_percentiles(tmp, npages, &pc);
			pool->round_p50[pool->rounds] = pc.p50;
			free(tmp);
		}
	}
	pool->rounds++;
	pool->n += npages;
	pool->cpu_us += cpu_us;
}

/*
 * Ends a round once its handler is gone: tells the server to quit and reaps
 * it, frees the connection and the region, and puts back the SIGBUS handler
 * `old` the ring strategy replaced.
 */
static void
ff_run_close(struct ff_run *r, SSL_CTX *ctx, pid_t pid, const struct sigaction *old)
{
	uint8_t quit[FF_HDR];
	int status;

	if (r->ssl != NULL) {
		ff_hdr(quit, 0, 0, 0);
		bench_set_nonblock(r->sock, 0);
		bench_tls_write_all(r->ssl, quit, sizeof(quit));
		SSL_free(r->ssl);
	}
	if (r->sock >= 0)
		close(r->sock);
	SSL_CTX_free(ctx);
	if (waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status)))
		fprintf(stderr, "floor_fault: server exited abnormally (status 0x%x)\n", status);
	if (r->ram != NULL && r->ram != MAP_FAILED)
		munmap(r->ram, (r->npages + r->warmup) * FF_PAGE);
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->stopfd >= 0)
		close(r->stopfd);
	if (r->doorbell >= 0) {
		sigaction(SIGBUS, old, NULL);
		ff_cur = NULL;
		close(r->doorbell);
	}
	free(r->st);
}

/*
 * One round: a fresh server, connection and region; `npages` measured
 * faults after `warmup` unmeasured ones, appended to *pool.
 */
static int
ff_run_one(enum ff_strategy strategy, size_t npages, size_t warmup, struct ff_pool *pool)
{
	struct ff_run r = { .strategy = strategy, .npages = npages, .warmup = warmup,
	    .uffd = -1, .stopfd = -1, .sock = -1, .doorbell = -1 };
	struct sigaction sa = { .sa_sigaction = ff_sigbus, .sa_flags = SA_SIGINFO }, old;
	size_t total = npages + warmup, bad = 0;
	uint64_t *t0 = NULL, *t1 = NULL, srv0 = 0, srv1 = 0;
	SSL_CTX *ctx = NULL;
	pthread_t th;
	uint16_t port;
	int lfd, rc = -1, started = 0;
	double cpu0 = 0, cpu1;
	pid_t pid;

	if (pool->n + npages > pool->cap || pool->rounds >= FF_MAX_ROUNDS)
		return -1;
	if ((lfd = bench_tcp_listen(&port)) < 0) {
		perror("floor_fault: listen");
		return -1;
	}
	if ((pid = fork()) < 0) {
		perror("floor_fault: fork");
		close(lfd);
		return -1;
	}
	if (pid == 0)
		_exit(ff_server(lfd, strategy, total));
	close(lfd);
	if ((r.sock = bench_tcp_connect(port)) < 0 ||
	    (ctx = bench_tls_ctx(0, BENCH_SUITE_AES128)) == NULL ||
	    (r.ssl = bench_tls_wrap(ctx, r.sock, 0)) == NULL)
		goto out;
	snprintf(pool->cipher, sizeof(pool->cipher), "%s", bench_tls_cipher(r.ssl));
	bench_set_nonblock(r.sock, 1);
	if (ff_uffd_setup(&r, total * FF_PAGE) < 0)
		goto out;
	r.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (strategy == FF_RING) {
		r.doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ff_cur = &r;
		sigemptyset(&sa.sa_mask);
		if (r.doorbell < 0 || sigaction(SIGBUS, &sa, &old) < 0)
			goto out;
	}
	r.st = calloc(total, sizeof(*r.st));
	t0 = calloc(total, sizeof(*t0));
	t1 = calloc(total, sizeof(*t1));
	if (r.stopfd < 0 || r.st == NULL || t0 == NULL || t1 == NULL)
		goto out;
	if (pthread_create(&th, NULL, ff_handler, &r) != 0)
		goto out;
	started = 1;

	/* The toucher: warm-up pages first, then the measured ones. */
	for (size_t i = 0; i < total && !r.err; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(r.ram + i * FF_PAGE);
		uint64_t v;

		if (i == warmup) {
			cpu0 = ff_self_cpu_us();
			if (bench_proc_cpu_us(pid, &srv0) < 0)
				srv0 = 0;
		}
		t0[i] = bench_now_ns();
		v = *p;
		t1[i] = bench_now_ns();
		if (v != ff_pattern(i))
			bad++;
	}
	cpu1 = ff_self_cpu_us();
	bench_proc_cpu_us(pid, &srv1);
	ff_stop(&r);
	/* The handler's stamps are complete only once it is gone (it may
	 * stamp t_copy after the toucher already ran on). */
	pthread_join(th, NULL);
	started = 0;
	if (r.err) {
		fprintf(stderr, "floor_fault: %s round failed\n", ff_strategy_name[strategy]);
		goto out;
	}
	if (bad) {
		fprintf(stderr, "floor_fault: %zu pages with wrong contents\n", bad);
		goto out;
	}
	ff_pool_add(pool, &r, t0, t1, cpu1 - cpu0 + (double)(srv1 - srv0));
	rc = 0;
out:
	ff_stop(&r);
	if (started)
		pthread_join(th, NULL);
	ff_run_close(&r, ctx, pid, &old);
	free(t0);
	free(t1);
	return rc;
}

static void
ff_summarize(enum ff_strategy strategy, struct ff_pool *pool, struct ff_result *res)
{
	memset(res, 0, sizeof(*res));
	res->strategy = strategy;
	bench_percentiles(pool->a[0], pool->n, &res->lat);
	bench_percentiles(pool->a[1], pool->n, &res->deliver);
	bench_percentiles(pool->a[2], pool->n, &res->rtt);
	bench_percentiles(pool->a[3], pool->n, &res->ioctl);
	bench_percentiles(pool->a[4], pool->n, &res->install);
	res->cpu_us_per_fault = pool->n ? pool->cpu_us / (double)pool->n : 0;
	res->rounds = pool->rounds;
	res->round_p50_min = res->round_p50_max = pool->round_p50[0];
	for (int i = 1; i < pool->rounds; i++) {
		if (pool->round_p50[i] < res->round_p50_min)
			res->round_p50_min = pool->round_p50[i];
		if (pool->round_p50[i] > res->round_p50_max)
			res->round_p50_max = pool->round_p50[i];
	}
	snprintf(res->cipher, sizeof(res->cipher), "%s", pool->cipher);
}

static void
ff_json_pct(FILE *f, const char *k, const struct bench_pct *p, int last)
{
	fprintf(f, "\"%s\":{\"p50_us\":%.2f,\"p99_us\":%.2f}%s", k, p->p50, p->p99,
	    last ? "" : ",");
}

static void
ff_print(FILE *f, int json, const struct ff_result *res, int n, size_t npages)
{
	if (!json) {
		printf("\nfloor_fault: one demand fault with nothing else in it\n");
		printf("  conditions: %d cores, 1 toucher thread + 1 handler thread + 1 server "
		    "process, no background traffic;\n  %d rounds x %zu faults per strategy "
		    "(pooled), loopback TCP (TCP_NODELAY), TLS 1.3 %s;\n  shmem memfd, "
		    "userfaultfd missing mode, 24-byte request, 24+4096-byte response in one "
		    "record, UFFDIO_COPY\n", bench_ncpus(), res[0].rounds, npages, res[0].cipher);
		printf("  %-8s %8s %8s %8s %9s %9s | %-17s | %-30s | %7s | %s\n", "strategy",
		    "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "round p50 min-max",
		    "p50: deliver / tls rtt / install", "ioctl", "cpu us/fault");
		for (int i = 0; i < n; i++) {
			const struct ff_result *x = &res[i];

			printf("  %-8s %8.1f %8.1f %8.1f %9.1f %9.1f | %7.1f - %7.1f | %8.1f / "
			    "%8.1f / %8.1f | %7.1f | %8.1f\n", ff_strategy_name[x->strategy],
			    x->lat.p50, x->lat.p90, x->lat.p99, x->lat.p999, x->lat.max,
			    x->round_p50_min, x->round_p50_max, x->deliver.p50, x->rtt.p50,
			    x->install.p50, x->ioctl.p50, x->cpu_us_per_fault);
		}
		printf("  deliver = fault to event read by the handler; tls rtt = request out "
		    "to page decrypted;\n  install = page decrypted to the toucher running "
		    "again; ioctl = UFFDIO_COPY alone (it wakes the toucher);\n"
		    "  cpu = toucher + handler + server, utime+stime; spin yields the CPU at each "
		    "poll step (2 cores)\n");
		return;
	}
	fprintf(f, "{\"benchmark\":\"floor_fault\",\"conditions\":{\"cores\":%d,"
	    "\"rounds\":%d,\"faults_per_round\":%zu,\"cipher\":\"%s\","
	    "\"transport\":\"loopback TCP, TCP_NODELAY\",\"memory\":\"shmem memfd, uffd "
	    "missing mode\",\"install\":\"UFFDIO_COPY\",\"request_bytes\":%d,"
	    "\"response_bytes\":%d,\"threads\":1,\"background\":false},\"results\":[",
	    bench_ncpus(), res[0].rounds, npages, res[0].cipher, FF_HDR, FF_HDR + FF_PAGE);
	for (int i = 0; i < n; i++) {
		const struct ff_result *x = &res[i];

		fprintf(f, "%s{\"strategy\":\"%s\",\"n\":%zu,\"p50_us\":%.2f,\"p90_us\":%.2f,"
		    "\"p99_us\":%.2f,\"p999_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,"
		    "\"mean_us\":%.2f,\"round_p50_min_us\":%.2f,\"round_p50_max_us\":%.2f,"
		    "\"cpu_us_per_fault\":%.2f,\"breakdown\":{",
		    i ? "," : "", ff_strategy_name[x->strategy], x->lat.n, x->lat.p50,
		    x->lat.p90, x->lat.p99, x->lat.p999, x->lat.min, x->lat.max, x->lat.mean,
		    x->round_p50_min, x->round_p50_max, x->cpu_us_per_fault);
		ff_json_pct(f, "deliver", &x->deliver, 0);
		ff_json_pct(f, "tls_rtt", &x->rtt, 0);
		ff_json_pct(f, "install", &x->install, 0);
		ff_json_pct(f, "ioctl", &x->ioctl, 1);
		fprintf(f, "}}");
	}
	fprintf(f, "]}\n");
}

static void
ff_usage(FILE *f)
{
	fprintf(f, "usage: floor_fault [--pages N] [--rounds R] [--warmup N] "
	    "[--strategy block|spin|ring|all] [--pin T,H,S] [--json FILE]\n"
	    "The floor of one remote demand fault: uffd event, 24-byte request and\n"
	    "4 KiB page over bare TLS 1.3 on loopback, one UFFDIO_COPY. R rounds of N\n"
	    "faults per strategy, strategies alternating, samples pooled. --pin puts the\n"
	    "toucher, handler and server on CPUs T, H, S (-1: anywhere). Prints a table;\n"
	    "--json also writes the figures as JSON to FILE (\"-\": stdout).\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pages", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "strategy", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t npages = 2000, warmup = 100;
	const char *json = NULL, *strat = "all";
	struct ff_pool pool[FF_NSTRAT];
	struct ff_result res[FF_NSTRAT];
	int ch, n = 0, rc = 0, rounds = 3;

	while ((ch = getopt_long(argc, argv, "n:r:w:s:j:p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': npages = strtoul(optarg, NULL, 10); break;
		case 'r': rounds = atoi(optarg); break;
		case 'w': warmup = strtoul(optarg, NULL, 10); break;
		case 's': strat = optarg; break;
		case 'j': json = optarg; break;
		case 'p':
			if (sscanf(optarg, "%d,%d,%d", &ff_pin[0], &ff_pin[1], &ff_pin[2]) != 3) {
				ff_usage(stderr);
				return 2;
			}
			break;
		case 'h': ff_usage(stdout); return 0;
		default: ff_usage(stderr); return 2;
		}
	}
	if (npages < 10 || npages > 200000 || warmup > 100000 || rounds < 1 ||
	    rounds > FF_MAX_ROUNDS ||
	    (strcmp(strat, "all") && strcmp(strat, "block") && strcmp(strat, "spin") &&
	    strcmp(strat, "ring"))) {
		ff_usage(stderr);
		return 2;
	}
	alarm(FF_ALARM_S);
	signal(SIGPIPE, SIG_IGN);
	ff_pin_self(0);
	memset(pool, 0, sizeof(pool));
	for (int s = FF_BLOCK; s < FF_NSTRAT; s++) {
		pool[s].cap = npages * (size_t)rounds;
		for (int k = 0; k < 5; k++)
			if ((pool[s].a[k] = calloc(pool[s].cap, sizeof(uint64_t))) == NULL)
				return 1;
	}
	/* Strategies alternate, so a slow phase of the machine hits both. */
	for (int i = 0; i < rounds; i++)
		for (int s = FF_BLOCK; s < FF_NSTRAT; s++) {
			if (strcmp(strat, "all") && strcmp(strat, ff_strategy_name[s]))
				continue;
			if (ff_run_one((enum ff_strategy)s, npages, warmup, &pool[s]) < 0)
				return 1;
		}
	for (int s = FF_BLOCK; s < FF_NSTRAT; s++)
		if (pool[s].n > 0)
			ff_summarize((enum ff_strategy)s, &pool[s], &res[n++]);
	ff_print(stdout, 0, res, n, npages);
	if (json != NULL) {
		FILE *f = strcmp(json, "-") ? fopen(json, "w") : stdout;

		if (f == NULL) {
			perror(json);
			return 1;
		}
		ff_print(f, 1, res, n, npages);
		if (f != stdout && fclose(f) != 0)
			rc = 1;
	}
	for (int s = FF_BLOCK; s < FF_NSTRAT; s++)
		for (int k = 0; k < 5; k++)
			free(pool[s].a[k]);
	return rc;
}
