/*
 * tls_stream: the throughput floor. A bare OpenSSL TLS 1.3 stream between
 * two processes over loopback TCP: the sender SSL_write()s fixed-size
 * records (16 KiB, the TLS maximum, and 4 KiB, one page per record) for a
 * bounded time and byte count; the receiver SSL_read()s and stamps its first
 * and last byte. Also runs `openssl speed -evp aes-128-gcm -seconds 1` and
 * takes its 16384-byte column: the cipher alone, no TCP, no record layer.
 *
 * Configurations: AES-128-GCM with 16 KiB and 4 KiB records (the floor),
 * AES-256-GCM with 16 KiB records (what an unpinned OpenSSL negotiates by
 * default), two parallel AES-128 streams (what the 2 cores give), and the
 * 16 KiB floor whose receiver also installs every 64 KiB (16 pages, one
 * migrationd frame) into a fresh userfaultfd-registered shmem memfd with
 * UFFDIO_COPY: the least a destination must do per byte of background.
 * Throughput is payload bytes / (last byte - first byte) at the receivers,
 * in GB/s (10^9 bytes). CPU is the children's utime+stime (getrusage).
 *
 * Processes: the parent forks one receiver and one sender per stream and
 * only orchestrates; every child ends on its own (deadline, byte budget,
 * alarm()).
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define TS_MAX_STREAMS	4
#define TS_ALARM_S	60
#define TS_RUN		65536		/* bytes per install: 16 pages, one frame */
#define TS_INSTALL_MAX	(6ull << 30)	/* install target (sparse) */

struct ts_config {
	const char	*suite;
	int		 record;
	int		 streams;
	int		 install;	/* receiver installs 64 KiB runs with UFFDIO_COPY */
	const char	*label;
};

static const struct ts_config ts_configs[] = {
	{ BENCH_SUITE_AES128, 16384, 1, 0, "floor" },
	{ BENCH_SUITE_AES128, 4096, 1, 0, "floor, 4 KiB records" },
	{ BENCH_SUITE_AES256, 16384, 1, 0, "OpenSSL's default cipher" },
	{ BENCH_SUITE_AES128, 16384, 2, 0, "2 streams" },
	{ BENCH_SUITE_AES128, 16384, 1, 1, "floor + install (UFFDIO_COPY 64 KiB)" },
};
#define TS_NCONFIGS (sizeof(ts_configs) / sizeof(ts_configs[0]))

/* What a receiver reports to the parent through its pipe. */
struct ts_rx {
	uint64_t	bytes;
	uint64_t	t_first, t_last;
	char		cipher[48];
	int		ok;
};

struct ts_result {
	const struct ts_config *c;
	double		 gbytes_per_s;
	double		 cpu_s_per_gbyte;
	uint64_t	 bytes;
	double		 seconds;
	char		 cipher[48];
};

/* --pin S,R: CPU of every sender and of every receiver (-1: anywhere). */
static int ts_pin[2] = { -1, -1 };

static void
ts_child_setup(int receiver)
{
	cpu_set_t set;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(TS_ALARM_S);
	if (ts_pin[receiver] < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(ts_pin[receiver], &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("tls_stream: sched_setaffinity");
}

/*
 * The install variant's target: a fresh shmem memfd mapping registered with
 * userfaultfd in missing mode, as an incoming VM's RAM is. Returns the uffd.
 */
static int
ts_install_region(uint8_t **ram)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int memfd = memfd_create("tls_stream", MFD_CLOEXEC), uffd;

	if (memfd < 0 || ftruncate(memfd, (off_t)TS_INSTALL_MAX) < 0)
		return -1;
	*ram = mmap(NULL, TS_INSTALL_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (*ram == MAP_FAILED)
		return -1;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	reg.range.start = (uintptr_t)*ram;
	reg.range.len = TS_INSTALL_MAX;
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		perror("tls_stream: userfaultfd");
		return -1;
	}
	return uffd;
}

static int
ts_receiver(int lfd, const struct ts_config *c, int outfd)
{
	struct ts_rx rx = { 0 };
	char *buf = aligned_alloc(4096, TS_RUN);
	uint8_t *ram = NULL;
	size_t fill = 0;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n, uffd = -1;

	ts_child_setup(1);
	if (c->install && (uffd = ts_install_region(&ram)) < 0)
		return 1;
	if (buf == NULL || (ctx = bench_tls_ctx(1, c->suite)) == NULL ||
	    (fd = bench_tcp_accept(lfd)) < 0 || (ssl = bench_tls_wrap(ctx, fd, 1)) == NULL)
		return 1;
	close(lfd);
	snprintf(rx.cipher, sizeof(rx.cipher), "%s", bench_tls_cipher(ssl));
	while ((n = SSL_read(ssl, buf + fill, (int)(TS_RUN - fill))) > 0) {
		uint64_t now = bench_now_ns();

		if (rx.bytes == 0)
			rx.t_first = now;
		rx.t_last = now;
		rx.bytes += (uint64_t)n;
		if (uffd < 0)
			continue;
		/* Like migrationd's destination: one install per 16-page run. */
		if ((fill += (size_t)n) < TS_RUN)
			continue;
		fill = 0;
		if (rx.bytes > TS_INSTALL_MAX)
			return 1;
		struct uffdio_copy cp = { .dst = (uintptr_t)ram + rx.bytes - TS_RUN,
		    .src = (uintptr_t)buf, .len = TS_RUN };
		if (ioctl(uffd, UFFDIO_COPY, &cp) < 0) {
			perror("tls_stream: UFFDIO_COPY");
			return 1;
		}
		rx.t_last = bench_now_ns();
	}
	rx.ok = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
	if (write(outfd, &rx, sizeof(rx)) != (ssize_t)sizeof(rx))
		return 1;
	return rx.ok ? 0 : 1;
}

static int
ts_sender(uint16_t port, const struct ts_config *c, int gofd, double seconds,
    uint64_t max_bytes)
{
	char *buf = malloc((size_t)c->record), go;
	uint64_t sent = 0, deadline;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;

	ts_child_setup(0);
	if (buf == NULL || (ctx = bench_tls_ctx(0, c->suite)) == NULL ||
	    (fd = bench_tcp_connect(port)) < 0 || (ssl = bench_tls_wrap(ctx, fd, 0)) == NULL)
		return 1;
	for (int i = 0; i < c->record; i++)
		buf[i] = (char)(i * 7 + 1);
	/* Hand-shake done: wait for the parent's go, so streams start together. */
	if (read(gofd, &go, 1) != 1)
		return 1;
	deadline = bench_now_ns() + (uint64_t)(seconds * 1e9);
	if (c->install && max_bytes > TS_INSTALL_MAX)
		max_bytes = TS_INSTALL_MAX;
	while (sent < max_bytes) {
		/* The clock is read every 64 records: cheap, still bounded. */
		if ((sent / (uint64_t)c->record) % 64 == 0 && bench_now_ns() > deadline)
			break;
		if (SSL_write(ssl, buf, c->record) != c->record)
			return 1;
		sent += (uint64_t)c->record;
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return 0;
}

static double
ts_children_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
ts_run(const struct ts_config *c, double seconds, uint64_t max_bytes, struct ts_result *res)
{
	pid_t pids[2 * TS_MAX_STREAMS];
	int npids = 0, gopipe[2], rxpipe[2], rc = 0, status;
	uint64_t first = UINT64_MAX, last = 0, bytes = 0;
	double cpu0 = ts_children_cpu_s();

	memset(res, 0, sizeof(*res));
	res->c = c;
	if (pipe2(gopipe, O_CLOEXEC) < 0 || pipe2(rxpipe, O_CLOEXEC) < 0)
		return -1;
	for (int s = 0; s < c->streams; s++) {
		uint16_t port;
		int lfd = bench_tcp_listen(&port);
		pid_t p;

		if (lfd < 0)
			return -1;
		if ((p = fork()) == 0) {
			close(gopipe[1]);
			_exit(ts_receiver(lfd, c, rxpipe[1]));
		}
		if (p > 0)
			pids[npids++] = p;
		if (p > 0 && (p = fork()) == 0) {
			close(lfd);
			close(gopipe[1]);
			_exit(ts_sender(port, c, gopipe[0], seconds, max_bytes));
		}
		if (p > 0)
			pids[npids++] = p;
		close(lfd);
		if (p < 0) {
			perror("tls_stream: fork");
			rc = -1;
			break;
		}
	}
	close(gopipe[0]);
	close(rxpipe[1]);
	/* Let every hand-shake finish, then start all streams at once. */
	usleep(200000);
	for (int s = 0; s < c->streams && rc == 0; s++)
		if (write(gopipe[1], "g", 1) != 1)
			rc = -1;
	close(gopipe[1]);
	for (int s = 0; s < c->streams && rc == 0; s++) {
		struct ts_rx rx;

		if (read(rxpipe[0], &rx, sizeof(rx)) != (ssize_t)sizeof(rx) || !rx.ok) {
			fprintf(stderr, "tls_stream: a receiver failed\n");
			rc = -1;
			break;
		}
		bytes += rx.bytes;
		if (rx.t_first < first)
			first = rx.t_first;
		if (rx.t_last > last)
			last = rx.t_last;
		snprintf(res->cipher, sizeof(res->cipher), "%s", rx.cipher);
	}
	close(rxpipe[0]);
	for (int i = 0; i < npids; i++)
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			rc = -1;
	if (rc < 0 || last <= first || bytes == 0)
		return -1;
	res->bytes = bytes;
	res->seconds = (double)(last - first) / 1e9;
	res->gbytes_per_s = (double)bytes / res->seconds / 1e9;
	res->cpu_s_per_gbyte = (ts_children_cpu_s() - cpu0) / ((double)bytes / 1e9);
	return 0;
}

/*
 * `openssl speed -evp aes-128-gcm -seconds 1`: bytes/s in the 16384-byte
 * column (openssl prints 1000s of bytes per second), or -1.
 */
static double
ts_openssl_speed(void)
{
	FILE *p = popen("openssl speed -evp aes-128-gcm -seconds 1 2>/dev/null", "r");
	char line[512];
	int col = -1;
	double v = -1;

	if (p == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		char *save = NULL, *tok;
		int i = 0;

		if (strncmp(line, "type", 4) == 0) {
			/* "type 16 bytes 64 bytes ... 16384 bytes" */
			for (tok = strtok_r(line + 4, " \t\n", &save); tok != NULL;
			    tok = strtok_r(NULL, " \t\n", &save)) {
				if (strcmp(tok, "bytes") == 0)
					continue;
				if (strcmp(tok, "16384") == 0)
					col = i;
				i++;
			}
			continue;
		}
		if (col < 0 || strncasecmp(line, "aes-128-gcm", 11) != 0)
			continue;
		strtok_r(line, " \t\n", &save);
		for (tok = strtok_r(NULL, " \t\n", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t\n", &save), i++)
			if (i == col)
				v = strtod(tok, NULL) * 1000;	/* "3112458.45k" */
	}
	if (pclose(p) != 0)
		return -1;
	return v;
}

static void
ts_usage(FILE *f)
{
	fprintf(f, "usage: tls_stream [--seconds S] [--max-bytes N] [--no-speed] [--pin S,R] "
	    "[--json FILE]\n"
	    "Bare TLS 1.3 stream throughput over loopback (16 KiB and 4 KiB records) and\n"
	    "`openssl speed -evp aes-128-gcm` in the same run. --pin puts every sender on\n"
	    "CPU S and every receiver on CPU R. --json FILE (\"-\": stdout).\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "max-bytes", required_argument, NULL, 'm' },
		{ "no-speed", no_argument, NULL, 'n' },
		{ "json", required_argument, NULL, 'j' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ts_result res[TS_NCONFIGS];
	double seconds = 1.5, speed = -1;
	uint64_t max_bytes = 8ull << 30;
	const char *json = NULL;
	int ch, speed_on = 1;
	FILE *f;

	while ((ch = getopt_long(argc, argv, "s:m:nj:p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's': seconds = atof(optarg); break;
		case 'm': max_bytes = bench_parse_size(optarg); break;
		case 'n': speed_on = 0; break;
		case 'j': json = optarg; break;
		case 'p':
			if (sscanf(optarg, "%d,%d", &ts_pin[0], &ts_pin[1]) != 2) {
				ts_usage(stderr);
				return 2;
			}
			break;
		case 'h': ts_usage(stdout); return 0;
		default: ts_usage(stderr); return 2;
		}
	}
	if (seconds <= 0 || seconds > 30 || max_bytes == 0) {
		ts_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < TS_NCONFIGS; i++) {
		if (ts_run(&ts_configs[i], seconds, max_bytes, &res[i]) < 0) {
			fprintf(stderr, "tls_stream: %s %d-byte records, %d stream(s) failed\n",
			    ts_configs[i].suite, ts_configs[i].record, ts_configs[i].streams);
			return 1;
		}
	}
	if (speed_on && (speed = ts_openssl_speed()) < 0)
		fprintf(stderr, "tls_stream: could not run or parse `openssl speed`\n");

	printf("\ntls_stream: bare TLS 1.3 stream, loopback TCP, %d cores, %.1f s per line "
	    "(GB = 10^9 bytes), senders on CPU %d, receivers on CPU %d (-1: anywhere)\n",
	    bench_ncpus(), seconds, ts_pin[0], ts_pin[1]);
	printf("  %-24s %7s %8s %9s %8s %14s  %s\n", "cipher", "record", "streams", "GB/s",
	    "ratio", "cpu s/GB", "");
	for (size_t i = 0; i < TS_NCONFIGS; i++)
		printf("  %-24s %7d %8d %9.3f %8.2f %14.2f  %s\n", res[i].cipher,
		    res[i].c->record, res[i].c->streams, res[i].gbytes_per_s,
		    res[i].gbytes_per_s / res[0].gbytes_per_s, res[i].cpu_s_per_gbyte,
		    res[i].c->label);
	if (speed > 0)
		printf("  openssl speed -evp aes-128-gcm, 16384-byte blocks: %.3f GB/s "
		    "(cipher alone, one core); stream / cipher = %.2f\n", speed / 1e9,
		    res[0].gbytes_per_s / (speed / 1e9));
	printf("  ratio = GB/s / the first line (AES-128-GCM, 16 KiB records, 1 stream)\n");

	if (json == NULL)
		return 0;
	if ((f = strcmp(json, "-") ? fopen(json, "w") : stdout) == NULL) {
		perror(json);
		return 1;
	}
	fprintf(f, "{\"benchmark\":\"tls_stream\",\"conditions\":{\"cores\":%d,"
	    "\"seconds\":%.2f,\"transport\":\"loopback TCP, TCP_NODELAY\",\"tls\":\"1.3\","
	    "\"sender_cpu\":%d,\"receiver_cpu\":%d},\"results\":[", bench_ncpus(), seconds,
	    ts_pin[0], ts_pin[1]);
	for (size_t i = 0; i < TS_NCONFIGS; i++)
		fprintf(f, "%s{\"cipher\":\"%s\",\"record_bytes\":%d,\"streams\":%d,"
		    "\"install\":%s,\"gbytes_per_s\":%.4f,\"cpu_s_per_gbyte\":%.3f,\"bytes\":%llu,"
		    "\"seconds\":%.3f}", i ? "," : "", res[i].cipher, res[i].c->record,
		    res[i].c->streams, res[i].c->install ? "true" : "false",
		    res[i].gbytes_per_s, res[i].cpu_s_per_gbyte,
		    (unsigned long long)res[i].bytes, res[i].seconds);
	fprintf(f, "],\"openssl_speed\":{\"command\":\"openssl speed -evp aes-128-gcm "
	    "-seconds 1\",\"block_bytes\":16384,\"gbytes_per_s\":");
	if (speed > 0)
		fprintf(f, "%.4f}}\n", speed / 1e9);
	else
		fprintf(f, "null}}\n");
	if (f != stdout)
		fclose(f);
	return 0;
}
