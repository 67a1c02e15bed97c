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
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
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

enum ff_strategy { FF_BLOCK = 0, FF_SPIN = 1 };
static const char *ff_strategy_name[] = { "block", "spin" };

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
};

struct ff_result {
	enum ff_strategy strategy;
	struct bench_pct lat, deliver, rtt, copy, resume;
	double		 cpu_us_per_fault;	/* toucher+handler+server */
	size_t		 bad_pages;
	char		 cipher[64];
};

static inline void
ff_relax(void)
{
	__builtin_ia32_pause();
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
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
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

static int
ff_uffd_setup(struct ff_run *r, size_t bytes)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
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

static double
ff_self_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
	    (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

static int
ff_run_one(enum ff_strategy strategy, size_t npages, size_t warmup, struct ff_result *res)
{
	struct ff_run r = { .strategy = strategy, .npages = npages, .warmup = warmup,
	    .uffd = -1, .stopfd = -1, .sock = -1 };
	size_t total = npages + warmup, bad = 0;
	uint64_t *lat = NULL, *d[4] = { NULL }, srv0 = 0, srv1 = 0;
	uint8_t quit[FF_HDR];
	SSL_CTX *ctx = NULL;
	pthread_t th;
	uint16_t port;
	int lfd, status, rc = -1, started = 0;
	double cpu0 = 0, cpu1;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->strategy = strategy;
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
	snprintf(res->cipher, sizeof(res->cipher), "%s", bench_tls_cipher(r.ssl));
	bench_set_nonblock(r.sock, 1);
	if (ff_uffd_setup(&r, total * FF_PAGE) < 0)
		goto out;
	r.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.st = calloc(total, sizeof(*r.st));
	lat = calloc(total, sizeof(*lat));
	for (int k = 0; k < 4; k++)
		d[k] = calloc(npages, sizeof(uint64_t));
	if (r.stopfd < 0 || r.st == NULL || lat == NULL || !d[0] || !d[1] || !d[2] || !d[3])
		goto out;
	if (pthread_create(&th, NULL, ff_handler, &r) != 0)
		goto out;
	started = 1;

	/* The toucher: warm-up pages first, then the measured ones. */
	for (size_t i = 0; i < total && !r.err; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(r.ram + i * FF_PAGE);
		uint64_t t0, t1, v;

		if (i == warmup) {
			cpu0 = ff_self_cpu_us();
			if (bench_proc_cpu_us(pid, &srv0) < 0)
				srv0 = 0;
		}
		t0 = bench_now_ns();
		v = *p;
		t1 = bench_now_ns();
		lat[i] = t1 - t0;
		if (v != ff_pattern(i))
			bad++;
		if (i >= warmup) {
			const struct ff_stamps *s = &r.st[i];
			size_t k = i - warmup;

			d[0][k] = s->t_event - t0;
			d[1][k] = s->t_resp - s->t_event;
			d[2][k] = s->t_copy - s->t_resp;
			d[3][k] = t1 > s->t_copy ? t1 - s->t_copy : 0;
		}
	}
	cpu1 = ff_self_cpu_us();
	bench_proc_cpu_us(pid, &srv1);
	if (r.err) {
		fprintf(stderr, "floor_fault: %s run failed\n", ff_strategy_name[strategy]);
		goto out;
	}
	bench_percentiles(lat + warmup, npages, &res->lat);
	bench_percentiles(d[0], npages, &res->deliver);
	bench_percentiles(d[1], npages, &res->rtt);
	bench_percentiles(d[2], npages, &res->copy);
	bench_percentiles(d[3], npages, &res->resume);
	res->bad_pages = bad;
	res->cpu_us_per_fault = (cpu1 - cpu0 + (double)(srv1 - srv0)) / (double)npages;
	rc = bad ? -1 : 0;
	if (bad)
		fprintf(stderr, "floor_fault: %zu pages with wrong contents\n", bad);
out:
	atomic_store(&r.stop, 1);
	if (r.stopfd >= 0) {
		uint64_t one = 1;

		if (write(r.stopfd, &one, sizeof(one)) < 0)
			perror("floor_fault: eventfd");
	}
	if (started)
		pthread_join(th, NULL);
	if (r.ssl != NULL) {
		ff_hdr(quit, 0, 0, 0);
		bench_set_nonblock(r.sock, 0);
		bench_tls_write_all(r.ssl, quit, sizeof(quit));
		SSL_free(r.ssl);
	}
	if (r.sock >= 0)
		close(r.sock);
	SSL_CTX_free(ctx);
	if (waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status)))
		fprintf(stderr, "floor_fault: server exited abnormally (status 0x%x)\n", status);
	if (r.ram != NULL && r.ram != MAP_FAILED)
		munmap(r.ram, total * FF_PAGE);
	if (r.uffd >= 0)
		close(r.uffd);
	if (r.stopfd >= 0)
		close(r.stopfd);
	free(r.st);
	free(lat);
	for (int k = 0; k < 4; k++)
		free(d[k]);
	return rc;
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
		printf("  conditions: %d cores, 1 toucher thread + 1 handler thread + server "
		    "process, %zu faults per strategy, loopback TCP (TCP_NODELAY), TLS 1.3 %s,\n"
		    "  shmem memfd, userfaultfd missing mode, 24-byte request, 24+4096-byte "
		    "response in one record, UFFDIO_COPY; no background traffic\n",
		    bench_ncpus(), npages, res[0].cipher);
		printf("  %-8s %9s %9s %9s %9s %9s | %-36s | %s\n", "strategy", "p50 us",
		    "p90 us", "p99 us", "p99.9 us", "max us",
		    "p50 us: deliver / tls rtt / copy / resume", "cpu us/fault");
		for (int i = 0; i < n; i++)
			printf("  %-8s %9.1f %9.1f %9.1f %9.1f %9.1f | %7.1f / %7.1f / %6.1f / "
			    "%6.1f  | %8.1f\n", ff_strategy_name[res[i].strategy], res[i].lat.p50,
			    res[i].lat.p90, res[i].lat.p99, res[i].lat.p999, res[i].lat.max,
			    res[i].deliver.p50, res[i].rtt.p50, res[i].copy.p50,
			    res[i].resume.p50, res[i].cpu_us_per_fault);
		printf("  deliver = fault to event read by the handler; tls rtt = request out "
		    "to page decrypted;\n  copy = UFFDIO_COPY (includes the wake-up call); "
		    "resume = copy done to the toucher running again\n");
		return;
	}
	fprintf(f, "{\"benchmark\":\"floor_fault\",\"conditions\":{\"cores\":%d,"
	    "\"faults\":%zu,\"cipher\":\"%s\",\"transport\":\"loopback TCP, TCP_NODELAY\","
	    "\"memory\":\"shmem memfd, uffd missing mode\",\"install\":\"UFFDIO_COPY\","
	    "\"request_bytes\":%d,\"response_bytes\":%d,\"threads\":1,\"background\":false},"
	    "\"results\":[", bench_ncpus(), npages, res[0].cipher, FF_HDR, FF_HDR + FF_PAGE);
	for (int i = 0; i < n; i++) {
		const struct ff_result *x = &res[i];

		fprintf(f, "%s{\"strategy\":\"%s\",\"n\":%zu,\"p50_us\":%.2f,\"p90_us\":%.2f,"
		    "\"p99_us\":%.2f,\"p999_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,"
		    "\"mean_us\":%.2f,\"cpu_us_per_fault\":%.2f,\"breakdown\":{",
		    i ? "," : "", ff_strategy_name[x->strategy], x->lat.n, x->lat.p50,
		    x->lat.p90, x->lat.p99, x->lat.p999, x->lat.min, x->lat.max, x->lat.mean,
		    x->cpu_us_per_fault);
		ff_json_pct(f, "deliver", &x->deliver, 0);
		ff_json_pct(f, "tls_rtt", &x->rtt, 0);
		ff_json_pct(f, "copy", &x->copy, 0);
		ff_json_pct(f, "resume", &x->resume, 1);
		fprintf(f, "}}");
	}
	fprintf(f, "]}\n");
}

static void
ff_usage(FILE *f)
{
	fprintf(f, "usage: floor_fault [--pages N] [--warmup N] [--strategy block|spin|both] "
	    "[--json FILE]\n"
	    "The floor of one remote demand fault: uffd event, 24-byte request and\n"
	    "4 KiB page over bare TLS 1.3 on loopback, one UFFDIO_COPY. Prints a table;\n"
	    "--json also writes the figures as JSON to FILE (\"-\": stdout).\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pages", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "strategy", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t npages = 2000, warmup = 100;
	const char *json = NULL, *strat = "both";
	struct ff_result res[2];
	int ch, n = 0, rc = 0;

	while ((ch = getopt_long(argc, argv, "n:w:s:j:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': npages = strtoul(optarg, NULL, 10); break;
		case 'w': warmup = strtoul(optarg, NULL, 10); break;
		case 's': strat = optarg; break;
		case 'j': json = optarg; break;
		case 'h': ff_usage(stdout); return 0;
		default: ff_usage(stderr); return 2;
		}
	}
	if (npages < 10 || npages > 1000000 || warmup > 100000 ||
	    (strcmp(strat, "both") && strcmp(strat, "block") && strcmp(strat, "spin"))) {
		ff_usage(stderr);
		return 2;
	}
	alarm(FF_ALARM_S);
	signal(SIGPIPE, SIG_IGN);
	for (int s = FF_BLOCK; s <= FF_SPIN; s++) {
		if (strcmp(strat, "both") && strcmp(strat, ff_strategy_name[s]))
			continue;
		if (ff_run_one((enum ff_strategy)s, npages, warmup, &res[n]) < 0)
			return 1;
		n++;
	}
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
	return rc;
}
