/*
 * peer_probe: a hand-made source for testing a destination's door. Dials a
 * migrationd peer listener with the TLS identity it is given (or none, or
 * plaintext), sends an urgent-channel Hello with a token, and prints what
 * happened, one line: "accepted <migration id>", "refused: <reason>",
 * "tls-error: <detail>", or "closed". Exit 0 when one of those was seen,
 * 1 on a usage or local error.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "frame.h"

static SSL *ssl;
static int fd = -1;

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

int
main(int argc, char **argv)
{
	const char *addr = NULL, *ca = NULL, *cert = NULL, *key = NULL, *token = "";
	const char *vm = "probe";
	unsigned long long ram = 0;
	int plain = 0, ch, rc;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64], *colon;

	while ((ch = getopt(argc, argv, "a:A:c:k:t:v:r:p")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'A': ca = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 't': token = optarg; break;
		case 'v': vm = optarg; break;
		case 'r': ram = strtoull(optarg, NULL, 0); break;
		case 'p': plain = 1; break;
		default:
			fprintf(stderr, "usage: peer_probe -a IP:PORT [-p | -A CA [-c CERT -k KEY]] "
			    "[-t TOKEN] [-v VM] [-r RAM_BYTES]\n");
			return 1;
		}
	}
	if (addr == NULL || (!plain && ca == NULL))
		return 1;
	snprintf(host, sizeof(host), "%s", addr);
	if ((colon = strrchr(host, ':')) == NULL)
		return 1;
	*colon = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return 1;
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
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1)
			return tls_fail("handshake:");
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
	{
		Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT, *r;
		Migrationd__Peer__V1__Hello h = MIGRATIOND__PEER__V1__HELLO__INIT;
		struct frame_limits lim = { .page_size = 4096, .max_msg = 1 << 20 };
		struct frame_hdr fh = { .type = FRAME_MSG };
		uint8_t hdr[FRAME_HDR_LEN], *body;
		const char *why;
		size_t n;

		h.version = 1;
		h.channel = MIGRATIOND__PEER__V1__CHANNEL__URGENT;
		h.token = (char *)(uintptr_t)token;
		h.vm = (char *)(uintptr_t)vm;
		h.ram_bytes = ram;
		h.page_size = 4096;
		h.source_migration_id = "probe";
		m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO;
		m.hello = &h;
		n = migrationd__peer__v1__peer_msg__get_packed_size(&m);
		body = malloc(n);
		migrationd__peer__v1__peer_msg__pack(&m, body);
		fh.len = (uint32_t)n;
		frame_encode(&fh, hdr);
		if ((rc = io(hdr, sizeof(hdr), 1)) < 0 || (rc = io(body, n, 1)) < 0)
			return rc == -2 ? tls_fail("write:") : (printf("closed\n"), 0);
		free(body);
		/* In TLS 1.3 a refused client certificate shows up here, as an alert. */
		if ((rc = io(hdr, sizeof(hdr), 0)) < 0)
			return rc == -2 ? tls_fail("read:") : (printf("closed\n"), 0);
		if (frame_decode(hdr, sizeof(hdr), &lim, &fh) != 1 || fh.type != FRAME_MSG) {
			printf("garbage reply\n");
			return 0;
		}
		body = malloc(fh.len);
		if (io(body, fh.len, 0) < 0 || (r = ctlmsg_decode_peer(body, fh.len, &why)) == NULL) {
			printf("closed\n");
			return 0;
		}
		if (r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_WELCOME)
			printf("accepted %s\n", r->welcome->migration_id);
		else if (r->msg_case == MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE)
			printf("refused: %s\n", r->refuse->reason);
		else
			printf("unexpected reply %d\n", (int)r->msg_case);
		migrationd__peer__v1__peer_msg__free_unpacked(r, NULL);
		free(body);
	}
	return 0;
}
