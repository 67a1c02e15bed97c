/*
 * peer_probe: a hand-made, possibly hostile, peer for testing migrationd.
 * Source mode (default): dials a peer listener with the TLS identity it is
 * given (or none, or plaintext), sends an urgent-channel Hello with a token
 * and prints what happened, one line: "accepted <migration id>", "refused:
 * <reason>", "tls-error: <detail>" or "closed". With -x it then misbehaves
 * (oversized, truncated, beyond, duplicate) and prints how the daemon
 * reacted; -x silent says nothing at all and reports when it was dropped.
 * With -x bgN-ACTION it opens background stream N (a digit) with the
 * Welcome's session key and misbehaves there (ACTION is one of the above);
 * bgNs-ACTION first sends the VM state "shimvm-state-v1" on the urgent
 * channel, so that the destination is in post-copy. ACTION hello only says
 * whether the stream was taken ("bound" or "refused: <reason>"), twice opens
 * the same stream again and says the same of the second. -x bgstall, bgeof,
 * bglong misbehave in the middle of a page frame on a background channel
 * (background()). -x race plays a source that lost a race (race()): a page
 * the destination asked for comes on the urgent channel, then, once -w FILE
 * exists, the same page with other bytes on the background channel.
 * Destination mode (-L IP:PORT): accepts one source, welcomes it, then asks
 * for pages without ever reading the answers (-n requests) for -T seconds.
 * Exit 0 when an outcome was seen, 1 on a usage or local error.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "framez.h"
#include "pagerule.h"

static SSL *ssl;
static int fd = -1;
static struct sockaddr_in peer_sin;	/* where the urgent channel went */
static SSL_CTX *client_ctx;		/* NULL: plaintext */

static int
io(void *buf, size_t len, int writing)
{
	uint8_t *p = buf;

	while (len > 0) {
		int n = ssl ? (writing ? SSL_write(ssl, p, (int)len) : SSL_read(ssl, p, (int)len))
		    : (int)(writing ? write(fd, p, len) : read(fd, p, len));

		if (n <= 0) {
			/* An alert from the server (e.g. certificate required) is a
			 * TLS refusal; a bare close is not. */
			if (ssl && (SSL_get_error(ssl, n) == SSL_ERROR_SSL ||
			    ERR_peek_error() != 0))
				return -2;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
tls_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	printf("tls-error: %s %s\n", what, buf);
	return 0;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for the daemon to close on us: "closed-by-peer" or "still-open". */
static int
await_close(int secs)
{
	uint8_t b[4096];
	double t0 = mono();

	while (mono() - t0 < secs) {
		int n = ssl ? SSL_read(ssl, b, sizeof(b)) : (int)read(fd, b, sizeof(b));

		if (n <= 0) {
			printf("closed-by-peer after %.1f s\n", mono() - t0);
			return 0;
		}
	}
	printf("still-open\n");
	return 0;
}

static int
send_frame(uint8_t type, uint8_t enc, uint32_t len, uint64_t idx, uint32_t count,
    const void *payload, size_t plen)
{
	struct frame_hdr fh = { .type = type, .enc = enc, .len = len, .index = idx,
	    .count = count };
	uint8_t hdr[FRAME_HDR_LEN];

	frame_encode(&fh, hdr);
	if (io(hdr, sizeof(hdr), 1) < 0)
		return -1;
	return plen ? io((void *)(uintptr_t)payload, plen, 1) : 0;
}

static int
misbehave(const char *x, uint64_t npages)
{
	static uint8_t page[4096];

	memset(page, 0x5a, sizeof(page));
	if (!strcmp(x, "oversized")) {
		/* A control message far beyond the limit: no payload follows. */
		if (send_frame(FRAME_MSG, 0, 64u << 20, 0, 0, NULL, 0) < 0)
			return printf("closed-by-peer while writing\n"), 0;
		return await_close(10);
	}
	if (!strcmp(x, "truncated")) {
		send_frame(FRAME_MSG, 0, 100, 0, 0, page, 10);
		printf("sent\n");
		return 0;
	}
	if (!strcmp(x, "beyond")) {
		if (send_frame(FRAME_PAGES, FRAME_ENC_RAW, 4096, npages, 1, page,
		    sizeof(page)) < 0)
			return printf("closed-by-peer while writing\n"), 0;
		return await_close(10);
	}
	if (!strcmp(x, "duplicate")) {
		send_frame(FRAME_PAGES, FRAME_ENC_RAW, 4096, 5, 1, page, sizeof(page));
		page[0] = 0xee;
		send_frame(FRAME_PAGES, FRAME_ENC_RAW, 4096, 5, 1, page, sizeof(page));
		usleep(500000);
		printf("sent\n");
		return 0;
	}
	if (!strncmp(x, "z", 1)) {
		/* zstd frames: zcorrupt (garbage body), zsize (content size of two
		 * pages, one claimed), zlong (len beyond count*page). */
		static uint8_t two[8192], z[16384];
		ZSTD_CCtx *c = ZSTD_createCCtx();
		size_t n = framez_encode(c, 1, two, sizeof(two), z, sizeof(z));
		uint32_t len = (uint32_t)n, count = 1;

		ZSTD_freeCCtx(c);
		if (n == 0)
			return 1;
		if (!strcmp(x, "zcorrupt")) {
			n = framez_encode(c = ZSTD_createCCtx(), 1, two, 4096, z, sizeof(z));
			ZSTD_freeCCtx(c);
			for (size_t i = 12; i < n; i++)
				z[i] ^= 0x5a;
			len = (uint32_t)n;
		} else if (!strcmp(x, "zlong")) {
			len = n = 4097;
		} else if (strcmp(x, "zsize")) {
			fprintf(stderr, "peer_probe: unknown -x %s\n", x);
			return 1;
		}
		if (send_frame(FRAME_PAGES, FRAME_ENC_ZSTD, len, 7, count, z, n) < 0)
			return printf("closed-by-peer while writing\n"), 0;
		return await_close(10);
	}
	fprintf(stderr, "peer_probe: unknown -x %s\n", x);
	return 1;
}

/* One message frame on the current connection. */
static int
send_msg(const Migrationd__Peer__V1__PeerMsg *m)
{
	size_t n = migrationd__peer__v1__peer_msg__get_packed_size(m);
	uint8_t *b = malloc(n);
	int rc;

	migrationd__peer__v1__peer_msg__pack(m, b);
	rc = send_frame(FRAME_MSG, 0, (uint32_t)n, 0, 0, b, n);
	free(b);
	return rc;
}

/* Connects to peer_sin (TLS with client_ctx): fd and ssl. -1 on failure. */
static int
dial(void)
{
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&peer_sin, sizeof(peer_sin)) < 0) {
		perror("peer_probe: connect");
		return -1;
	}
	ssl = NULL;
	if (client_ctx != NULL) {
		ssl = SSL_new(client_ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1)
			return -1;
	}
	return 0;
}

/*
 * Background channel actions (bgstall, bgeof, bglong): a second connection
 * with the Welcome's session key, then a raw page frame of 16 pages of
 * which half the payload comes and then nothing (bgstall: the urgent
 * channel keeps pinging meanwhile, so only the background stream is
 * silent) or the connection closes (bgeof); or one good page and then a
 * frame longer than its limit (bglong). Prints how the daemon reacted.
 */
static int
background(const char *x, const ProtobufCBinaryData *key)
{
	static uint8_t pages[17 * 4096];
	Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	Migrationd__Peer__V1__Ping p = MIGRATIOND__PEER__V1__PING__INIT;
	SSL *u_ssl = ssl;
	int u_fd = fd;
	double t0;

	memset(pages, 0x5a, sizeof(pages));
	if (dial() < 0)
		return tls_fail("background channel:");
	h.version = 1;
	h.channel = MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND;
	h.session_key = *key;
	m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
	m.hello = &h;
	if (send_msg(&m) < 0)
		return printf("closed\n"), 0;
	if (!strcmp(x, "bglong")) {
		/* One good page (reading goes straight into place), then 16 pages
		 * with a payload one page longer than they are. */
		send_frame(FRAME_PAGES, FRAME_ENC_RAW, 4096, 1, 1, pages, 4096);
		usleep(200000);
		if (send_frame(FRAME_PAGES, FRAME_ENC_RAW, 17 * 4096, 2, 16, pages,
		    17 * 4096) < 0)
			return printf("closed-by-peer while writing\n"), 0;
		return await_close(10);
	}
	send_frame(FRAME_PAGES, FRAME_ENC_RAW, 16 * 4096, 0, 16, pages, 8 * 4096);
	if (!strcmp(x, "bgeof")) {
		/* The background connection goes, the urgent one stays a while. */
		close(fd);
		printf("sent half, closed it\n");
		ssl = u_ssl;
		fd = u_fd;
		m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING;
		m.ping = &p;
		for (int i = 0; i < 4; i++, usleep(500000))
			send_msg(&m);
		return 0;
	}
	if (strcmp(x, "bgstall")) {
		fprintf(stderr, "peer_probe: unknown -x %s\n", x);
		return 1;
	}
	printf("sent half\n");
	m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING;
	m.ping = &p;
	for (t0 = mono(); mono() - t0 < 15;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		SSL *b_ssl = ssl;
		int b_fd = fd;

		if (poll(&pfd, 1, 500) == 1) {
			uint8_t b;

			if ((ssl ? SSL_read(ssl, &b, 1) : (int)read(fd, &b, 1)) <= 0) {
				printf("closed-by-peer after %.1f s\n", mono() - t0);
				return 0;
			}
		}
		ssl = u_ssl;	/* the urgent channel says it is alive */
		fd = u_fd;
		send_msg(&m);
		ssl = b_ssl;
		fd = b_fd;
	}
	printf("still-open\n");
	return 0;
}

/* A Hello of this probe on `channel`, m set to carry it. */
static void
hello_init(Migrationd__Peer__V1__PeerMsg *m, Migrationd__Peer__V1__Hello *h,
    Migrationd__Peer__V1__Channel channel, const char *vm, unsigned long long ram, uint32_t ps)
{
	h->version = 1;
	h->channel = channel;
	h->vm = (char *)(uintptr_t)vm;
	h->ram_bytes = ram;
	h->page_size = ps;
	h->source_migration_id = "probe";
	m->msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
	m->hello = h;
}

/* Page i (of -g bytes) by shimvm's content rule; `wrong`: 0xa5 throughout. */
static void
fill_page(uint8_t *b, uint64_t i, uint32_t ps, int wrong)
{
	uint64_t *q = (uint64_t *)(void *)b;

	if (wrong) {
		memset(b, 0xa5, ps);
		return;
	}
	for (uint32_t j = 0; j < ps / 4096; j++)
		for (unsigned k = 0; k < 512; k++)
			q[j * 512 + k] = page_qword(i * (ps / 4096) + j, k);
}

/* Pages [idx, idx+n) as one raw PAGES frame, page `wrong` with wrong bytes. */
static int
send_pages(uint64_t idx, uint32_t n, uint32_t ps, uint64_t wrong, uint8_t *buf)
{
	for (uint32_t j = 0; j < n; j++)
		fill_page(buf + (size_t)j * ps, idx + j, ps, idx + j == wrong);
	return send_frame(FRAME_PAGES, FRAME_ENC_RAW, n * ps, idx, n, buf, (size_t)n * ps);
}

/* The next frame on the current connection (body freed by the caller). */
static int
next_frame(const struct frame_limits *lim, struct frame_hdr *fh, uint8_t **body)
{
	uint8_t hdr[FRAME_HDR_LEN];

	if (io(hdr, sizeof(hdr), 0) < 0 || frame_decode(hdr, sizeof(hdr), lim, fh) != 1)
		return -1;
	*body = malloc(fh->len ? fh->len : 1);
	if (io(*body, fh->len, 0) < 0) {
		free(*body);
		return -1;
	}
	return 0;
}

/*
 * -x race: the source queued page P on the background channel, then
 * answered the destination's demand for P on the urgent channel, and the
 * background copy arrives after the demand copy was installed. Here: the VM
 * state, the first page asked for answered on the urgent channel (right
 * bytes), then once `go` exists (the guest read it) a background frame
 * starting at P with P's bytes wrong (0xa5) and its neighbours right, then
 * every other page right. Prints "demand P", then "complete N" when the
 * destination says it has every page, or why not.
 */
static int
race(const ProtobufCBinaryData *key, const char *vm, unsigned long long ram, uint32_t ps,
    const char *go)
{
	Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT, *r;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	Migrationd__Peer__V1__VmState st = MIGRATIOND__PEER__V1__VM_STATE__INIT;
	Migrationd__Peer__V1__Ping ping = MIGRATIOND__PEER__V1__PING__INIT;
	static const char blob[] = "shimvm-state-v1";
	uint64_t npages = ram / ps, p = UINT64_MAX, d, next;
	uint32_t n;
	uint32_t per = ps >= (2u << 20) ? 1 : 16;
	struct frame_limits lim = { .page_size = ps, .max_msg = 1 << 20, .npages = npages,
	    .max_count = 512 };
	SSL *u_ssl = ssl, *b_ssl;
	int u_fd = fd, b_fd;
	struct frame_hdr fh;
	uint8_t *body, *buf = malloc((size_t)per * ps);
	const char *why;
	double t0;

	if (buf == NULL || npages < per + 1)
		return 1;
	if (dial() < 0)
		return tls_fail("background channel:");
	hello_init(&m, &h, MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND, vm, ram, ps);
	h.session_key = *key;
	if (send_msg(&m) < 0)
		return printf("background channel: closed at its hello\n"), 0;
	b_ssl = ssl;
	b_fd = fd;
	ssl = u_ssl;
	fd = u_fd;
	st.blob.data = (uint8_t *)(uintptr_t)blob;
	st.blob.len = sizeof(blob);
	m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE;
	m.vm_state = &st;
	if (send_msg(&m) < 0)
		return printf("closed before the state\n"), 0;
	/* The first page the guest asks for: answered here, right. */
	while (p == UINT64_MAX) {
		if (next_frame(&lim, &fh, &body) < 0)
			return printf("closed before a request\n"), 0;
		if (fh.type == FRAME_REQ)
			p = fh.index;
		free(body);
	}
	if (send_pages(p, 1, ps, UINT64_MAX, buf) < 0)
		return printf("closed at the demand answer\n"), 0;
	printf("demand %llu\n", (unsigned long long)p);
	d = p;
	/* Until the guest has read it (the urgent channel says we live). */
	m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING;
	m.ping = &ping;
	for (t0 = mono(); access(go, F_OK) != 0; usleep(100000)) {
		if (mono() - t0 > 30)
			return printf("no go file\n"), 0;
		send_msg(&m);
	}
	/* The background copy of P, late and different; then all the rest. */
	ssl = b_ssl;
	fd = b_fd;
	if (p + per > npages)
		p = npages - per;	/* (then P is not first in its frame) */
	if (send_pages(p, per, ps, d, buf) < 0)
		return printf("closed at the late frame\n"), 0;
	for (next = 0; next < npages; next += n) {
		n = next == p ? per : (uint32_t)((next < p ? p : npages) - next);
		if (n > per)
			n = per;
		if (next != p && send_pages(next, n, ps, UINT64_MAX, buf) < 0)
			return printf("closed at page %llu\n", (unsigned long long)next), 0;
	}
	printf("sent all\n");
	/* The destination's word, on the urgent channel. */
	ssl = u_ssl;
	fd = u_fd;
	for (t0 = mono(); mono() - t0 < 30;) {
		if (next_frame(&lim, &fh, &body) < 0)
			return printf("closed before complete\n"), 0;
		r = fh.type == FRAME_MSG ? ctlmsg_decode_peer(body, fh.len, &why) : NULL;
		free(body);
		if (r != NULL && r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_COMPLETE) {
			printf("complete %llu\n", (unsigned long long)r->complete->pages_installed);
			migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
			return 0;
		}
		if (r != NULL && r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_ABORT) {
			printf("abort: %s\n", r->abort->reason);
			migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
			return 0;
		}
		if (r != NULL)
			migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
	}
	printf("no complete\n");
	return 0;
}

/* Destination mode: a peer that asks for pages and never reads them. */
static int
greedy_destination(const char *listen_addr, const char *ca, const char *cert,
    const char *key, int nreq, int secs)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64], *colon;
	int lfd, one = 1, sent = 0;
	SSL_CTX *ctx;
	uint8_t *body;
	struct frame_limits lim = { .page_size = 4096, .max_msg = 1 << 24, .npages = 1,
	    .max_count = 16 };
	struct frame_hdr fh;
	double t0;

	snprintf(host, sizeof(host), "%s", listen_addr);
	if ((colon = strrchr(host, ':')) == NULL)
		return 1;
	*colon = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sin.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4) < 0) {
		perror("peer_probe: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return 1;
	ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_load_verify_locations(ctx, ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return 1;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		return tls_fail("accept:");
	/* Read the Hello, welcome the source, wait for its VM state. */
	for (int got_state = 0; !got_state;) {
		if (next_frame(&lim, &fh, &body) < 0)
			return printf("source went away\n"), 0;
		if (fh.type == FRAME_MSG) {
			const char *why;
			Migrationd__Peer__V1__PeerMsg *r = ctlmsg_decode_peer(body, fh.len, &why);

			if (r && r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO) {
				Migrationd__Peer__V1__PeerMsg w = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
				Migrationd__Peer__V1__Welcome wm = MIGRATIOND__PEER__V1__WELCOME__INIT;
				uint8_t key16[16] = { 1 }, *b;
				size_t n;

				lim.npages = r->hello->ram_bytes / 4096;
				wm.migration_id = "greedy";
				wm.session_key.data = key16;
				wm.session_key.len = sizeof(key16);
				w.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME;
				w.welcome = &wm;
				n = migrationd__peer__v1__peer_msg__get_packed_size(&w);
				b = malloc(n);
				migrationd__peer__v1__peer_msg__pack(&w, b);
				send_frame(FRAME_MSG, 0, (uint32_t)n, 0, 0, b, n);
				free(b);
			} else if (r && r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE) {
				got_state = 1;
			}
			if (r)
				migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
		}
		free(body);
	}
	/* Ask for everything, over and over; never read an answer. */
	t0 = mono();
	while (sent < nreq && mono() - t0 < secs) {
		uint64_t idx = ((uint64_t)sent * 16) % (lim.npages - 16);

		if (send_frame(FRAME_REQ, 0, 0, idx, 16, NULL, 0) < 0)
			break;
		sent++;
	}
	printf("sent %d requests\n", sent);
	fflush(stdout);
	while (mono() - t0 < secs)
		usleep(100000);
	return 0;
}

/* After a background Hello: "refused: <reason>" if a Refuse comes within
 * 300 ms, "closed", or "bound". */
static void
bg_verdict(void)
{
	struct frame_limits lim = { .page_size = 4096, .max_msg = 1 << 20 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t hdr[FRAME_HDR_LEN], *body;
	Migrationd__Peer__V1__PeerMsg *r;
	struct frame_hdr fh;
	const char *why;

	if ((ssl == NULL || SSL_pending(ssl) == 0) && poll(&pfd, 1, 300) == 0) {
		printf("bound\n");
		return;
	}
	if (io(hdr, sizeof(hdr), 0) < 0 || frame_decode(hdr, sizeof(hdr), &lim, &fh) != 1 ||
	    fh.type != FRAME_MSG) {
		printf("closed\n");
		return;
	}
	body = malloc(fh.len ? fh.len : 1);
	if (io(body, fh.len, 0) == 0 && (r = ctlmsg_decode_peer(body, fh.len, &why)) != NULL) {
		if (r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE)
			printf("refused: %s\n", r->refuse->reason);
		else
			printf("unexpected reply %d\n", (int)r->msg_case);
		migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
	} else {
		printf("closed\n");
	}
	free(body);
}

/*
 * -x bgN[s]-ACTION: background stream N of the migration just welcomed
 * (session key `key`), ACTION there. With `state`, the VM state goes first
 * on the urgent channel (which stays open, unread).
 */
static int
stream1(const char *action, const ProtobufCBinaryData *key, const char *vm,
    unsigned long long ram, int state, unsigned idx)
{
	Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	Migrationd__Peer__V1__VmState st = MIGRATIOND__PEER__V1__VM_STATE__INIT;
	static const char blob[] = "shimvm-state-v1";

	if (state) {
		st.blob.data = (uint8_t *)(uintptr_t)blob;
		st.blob.len = sizeof(blob);
		m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_VM_STATE;
		m.vm_state = &st;
		if (send_msg(&m) < 0)
			return printf("closed before the state\n"), 0;
		usleep(500000);	/* the destination runs its VM (POSTCOPY) */
	}
again:
	if (dial() < 0)
		return printf("stream %u: cannot connect\n", idx), 0;
	hello_init(&m, &h, MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND, vm, ram, 4096);
	h.session_key = *key;
	h.stream = idx;
	if (send_msg(&m) < 0)
		return printf("stream %u: closed at its hello\n", idx), 0;
	printf("stream %u: ", idx);
	if (!strcmp(action, "hello") || !strcmp(action, "twice")) {
		bg_verdict();
		if (!strcmp(action, "twice")) {
			action = "hello";	/* the first stays open */
			goto again;
		}
		return 0;
	}
	usleep(200000);	/* bound to the migration, or refused */
	return misbehave(action, ram / 4096);
}

/*
 * Source mode, once connected: sends the urgent-channel Hello and prints
 * the daemon's answer; when it accepted and -x names an action, misbehaves.
 */
static int
source_hello(const char *token, const char *vm, unsigned long long ram, const char *action,
    uint32_t ps, const char *go)
{
	Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT, *r;
	Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
	struct frame_limits lim = { .page_size = 4096, .max_msg = 1 << 20 };
	struct frame_hdr fh = { .type = FRAME_MSG };
	uint8_t hdr[FRAME_HDR_LEN], *body;
	const char *why;
	size_t n;
	int rc;

	hello_init(&m, &h, MIGRATIOND__PEER__V1__CHANNEL__URGENT, vm, ram, ps);
	h.token = (char *)(uintptr_t)token;
	n = migrationd__peer__v1__peer_msg__get_packed_size(&m);
	body = malloc(n);
	migrationd__peer__v1__peer_msg__pack(&m, body);
	fh.len = (uint32_t)n;
	frame_encode(&fh, hdr);
	rc = io(hdr, sizeof(hdr), 1);
	if (rc == 0)
		rc = io(body, n, 1);
	free(body);
	if (rc < 0)
		return rc == -2 ? tls_fail("write:") : (printf("closed\n"), 0);
	/* In TLS 1.3 a refused client certificate shows up here, as an alert. */
	if ((rc = io(hdr, sizeof(hdr), 0)) < 0)
		return rc == -2 ? tls_fail("read:") : (printf("closed\n"), 0);
	if (frame_decode(hdr, sizeof(hdr), &lim, &fh) != 1 || fh.type != FRAME_MSG) {
		printf("garbage reply\n");
		return 0;
	}
	body = malloc(fh.len);
	if (io(body, fh.len, 0) < 0 || (r = ctlmsg_decode_peer(body, fh.len, &why)) == NULL) {
		free(body);
		printf("closed\n");
		return 0;
	}
	if (r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME) {
		printf("accepted %s\n", r->welcome->migration_id);
		fflush(stdout);
		if (action != NULL && !strcmp(action, "race"))
			rc = race(&r->welcome->session_key, vm, ram, ps, go);
		else if (action != NULL && !strncmp(action, "bg", 2) && action[2] >= '0' &&
		    action[2] <= '9' && strchr(action, '-') != NULL)
			rc = stream1(strchr(action, '-') + 1, &r->welcome->session_key, vm, ram,
			    action[3] == 's', (unsigned)(action[2] - '0'));
		else if (action != NULL && !strncmp(action, "bg", 2))
			rc = background(action, &r->welcome->session_key);
		else if (action != NULL)
			rc = misbehave(action, ram / 4096);
		migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
		free(body);
		return action != NULL ? rc : 0;
	}
	else if (r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE)
		printf("refused: %s\n", r->refuse->reason);
	else
		printf("unexpected reply %d\n", (int)r->msg_case);
	migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
	free(body);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *addr = NULL, *ca = NULL, *cert = NULL, *key = NULL, *token = "";
	const char *vm = "probe", *action = NULL, *listen_addr = NULL, *go = "";
	uint32_t ps = 4096;
	unsigned long long ram = 0;
	int plain = 0, ch, nreq = 100000, secs = 5;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	/* The daemon may close while we still write (it checks a frame's
	 * header before its payload arrives): that is an answer, not a crash. */
	signal(SIGPIPE, SIG_IGN);
	char host[64], *colon;

	while ((ch = getopt(argc, argv, "a:A:c:k:t:v:r:px:L:n:T:g:w:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'A': ca = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 't': token = optarg; break;
		case 'v': vm = optarg; break;
		case 'r': ram = strtoull(optarg, NULL, 0); break;
		case 'p': plain = 1; break;
		case 'x': action = optarg; break;
		case 'L': listen_addr = optarg; break;
		case 'n': nreq = atoi(optarg); break;
		case 'T': secs = atoi(optarg); break;
		case 'g': ps = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'w': go = optarg; break;
		default:
			fprintf(stderr, "usage: peer_probe -a IP:PORT [-p | -A CA [-c CERT -k KEY]] "
			    "[-t TOKEN] [-v VM] [-r RAM_BYTES]\n");
			return 1;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);	/* every verdict line reaches the test */
	if (listen_addr != NULL)
		return greedy_destination(listen_addr, ca, cert, key, nreq, secs);
	if (addr == NULL || (!plain && ca == NULL))
		return 1;
	snprintf(host, sizeof(host), "%s", addr);
	if ((colon = strrchr(host, ':')) == NULL)
		return 1;
	*colon = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return 1;
	peer_sin = sin;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("peer_probe: connect");
		return 1;
	}
	if (!plain) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
		SSL_CTX_load_verify_locations(ctx, ca, NULL);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
			fprintf(stderr, "peer_probe: cannot load %s\n", cert);
			return 1;
		}
		client_ctx = ctx;
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1)
			return tls_fail("handshake:");
		if (action != NULL && !strcmp(action, "silent"))
			return await_close(60);
		/*
		 * TLS 1.3: the server judges our certificate after SSL_connect
		 * returned. Give its verdict time to arrive before we send
		 * anything: data it never read would turn its close into a reset
		 * that destroys the alert.
		 */
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 500) == 1) {
			uint8_t b;

			if (SSL_read(ssl, &b, 1) <= 0)
				return ERR_peek_error() ? tls_fail("after handshake:") :
				    (printf("closed\n"), 0);
		}
	}
	return source_hello(token, vm, ram, action, ps, go);
}
