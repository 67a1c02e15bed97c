/*
 * bench.h: helpers shared by the benchmark programs (floor_fault, tls_stream,
 * faultlat): monotonic time, percentiles, CPU time of a process, loopback
 * TCP, and bare OpenSSL TLS 1.3 contexts with a throw-away certificate made
 * in memory. Nothing here knows migrationd; the floors must stay bare.
 * Every function is safe to call from any thread unless its comment says so.
 */
#ifndef BENCH_H
#define BENCH_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* The floors' cipher, and OpenSSL's default TLS 1.3 choice for comparison. */
#define BENCH_SUITE_AES128	"TLS_AES_128_GCM_SHA256"
#define BENCH_SUITE_AES256	"TLS_AES_256_GCM_SHA384"

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Latency summary in microseconds. */
struct bench_pct {
	size_t	n;
	double	p50, p90, p99, p999, min, max, mean;
};

/* Sorts ns[0..n) in place and fills *out (all zero for n == 0). */
void bench_percentiles(uint64_t *ns, size_t n, struct bench_pct *out);

/* Median of n doubles (sorts in place); 0 for n == 0. */
double bench_median(double *v, size_t n);

/*
 * utime+stime of process `pid` from /proc/PID/stat, in microseconds (the
 * kernel counts in clock ticks, usually 10 ms each: see bench_tick_us()).
 * Returns 0, or -1 if the process is gone.
 */
int bench_proc_cpu_us(pid_t pid, uint64_t *us);
double bench_tick_us(void);

/* Listens on 127.0.0.1 on an ephemeral port; returns the fd, *port set. */
int bench_tcp_listen(uint16_t *port);
/* Connects to 127.0.0.1:port with TCP_NODELAY; returns the fd or -1. */
int bench_tcp_connect(uint16_t port);
/* Accepts one connection on `lfd` with TCP_NODELAY; returns the fd or -1. */
int bench_tcp_accept(int lfd);
int bench_set_nonblock(int fd, int on);

/*
 * A TLS 1.3-only context with exactly the cipher suite `suites`. A server
 * context gets a fresh P-256 key and a self-signed certificate; the client
 * does not verify it (the floors measure the record path, not the
 * hand-shake). Returns NULL after printing OpenSSL's errors.
 */
SSL_CTX *bench_tls_ctx(int server, const char *suites);

/*
 * Wraps a connected socket and runs the hand-shake (blocking; the fd may be
 * switched to non-blocking afterwards). Returns NULL on failure.
 */
SSL *bench_tls_wrap(SSL_CTX *ctx, int fd, int server);

/* The negotiated cipher suite's name (for the printed conditions). */
const char *bench_tls_cipher(const SSL *ssl);

/* SSL_write / SSL_read of exactly len bytes on a blocking socket: 0 or -1. */
int bench_tls_write_all(SSL *ssl, const void *buf, size_t len);
int bench_tls_read_all(SSL *ssl, void *buf, size_t len);

/* Prints `msg` and OpenSSL's error queue to stderr. */
void bench_tls_errors(const char *msg);

/* Number of online CPUs. */
int bench_ncpus(void);

/* Parses "256M", "1G", "4096" (bytes); 0 on a bad value. */
uint64_t bench_parse_size(const char *s);

#endif
