/*
 * migrationd: post-copy live migration daemon, one per host, both roles.
 * main.c owns start-up (config, sockets, TLS contexts), the libevent loop and
 * orderly shutdown, plus a few helpers shared by every file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>
#include <systemd/sd-daemon.h>

#include "latency.h"
#include "log.h"
#include "migrationd.h"

struct daemon *D;

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1.2.3.4:80", "[::1]:80" -> sockaddr. Numeric only: never blocks. */
int
parse_hostport(const char *s, struct sockaddr_storage *ss, int *sslen)
{
	char host[128], *colon, *end;
	long port;

	if (s == NULL || strlen(s) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%s", s);
	if ((colon = strrchr(host, ':')) == NULL)
		return -1;
	*colon = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		colon[-1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*s6);
		return 0;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*s4);
		return 0;
	}
}

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopexit(D->base, NULL);
}

static void
mkparent(const char *path)
{
	char dir[512], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			log_warn("mkdir %s", dir);
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: migrationd [-fnv] [-c config] [-s control-socket] "
	    "[-l peer-listen]\n"
	    "  -c FILE       configuration (default /etc/migrationd/migrationd.conf)\n"
	    "  -f            stay in the foreground, log to stderr\n"
	    "  -l IP:PORT    peer listener (overrides [peer] listen; \"\" for none)\n"
	    "  -n            check the configuration and exit\n"
	    "  -s PATH       control socket (overrides [daemon] control_socket)\n"
	    "  -v            verbose (debug) logging\n");
	exit(2);
}

static void
daemon_free(void)
{
	struct migration *m;
	struct vm *v;

	D->stopping = 1;
	while ((m = TAILQ_FIRST(&D->migs)) != NULL) {
		TAILQ_REMOVE(&D->migs, m, entry);
		m->vm = NULL;
		mig_finish(m);	/* saves the record: a restart picks it up */
		free(m);
	}
	while ((v = TAILQ_FIRST(&D->vms)) != NULL) {
		if (v->sock >= 0) {
			close(v->sock);
			v->sock = -1;
		}
		v->mig = NULL;
		vm_release(v);
	}
	peer_close_all();
	if (D->peer_listener)
		evconnlistener_free(D->peer_listener);
	if (D->ctl_listener)
		evconnlistener_free(D->ctl_listener);
	if (D->ev_vmm_listen) {
		event_free(D->ev_vmm_listen);
		close(D->vmm_listen_fd);
	}
	SSL_CTX_free(D->tls_server);
	SSL_CTX_free(D->tls_client);
	event_base_free(D->base);
	free(D);
}

int
main(int argc, char **argv)
{
	const char *conf = "/etc/migrationd/migrationd.conf";
	const char *opt_sock = NULL, *opt_listen = NULL;
	int ch, fg = 0, verbose = 0, check = 0, ctl_fd = -1, nfds;
	struct event *sigs[3];

	while ((ch = getopt(argc, argv, "c:fl:ns:v")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'l':
			opt_listen = optarg;
			break;
		case 's':
			opt_sock = optarg;
			break;
		case 'f':
			fg = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	log_init("migrationd", fg || check || getenv("INVOCATION_ID") != NULL, verbose);
	if ((D = calloc(1, sizeof(*D))) == NULL)
		fatal("calloc");
	TAILQ_INIT(&D->vms);
	TAILQ_INIT(&D->migs);
	TAILQ_INIT(&D->conns);
	D->vmm_listen_fd = -1;
	if (config_load(&D->conf, conf) < 0)
		fatalx("configuration %s is not valid", conf);
	/* Command-line flags override the file. */
	if (opt_sock != NULL &&
	    snprintf(D->conf.control_socket, sizeof(D->conf.control_socket), "%s",
	    opt_sock) >= (int)sizeof(D->conf.control_socket))
		fatalx("-s: path too long");
	if (opt_listen != NULL) {
		struct sockaddr_storage ss;
		int sslen;

		if (opt_listen[0] && parse_hostport(opt_listen, &ss, &sslen) < 0)
			fatalx("-l: %s is not IP:PORT", opt_listen);
		snprintf(D->conf.peer_listen, sizeof(D->conf.peer_listen), "%s", opt_listen);
	}
	if (check) {
		printf("configuration OK\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((D->base = event_base_new()) == NULL ||
	    event_base_priority_init(D->base, MIG_NPRI) < 0)
		fatalx("event_base_new");
	if (D->conf.tls) {
		if ((D->tls_server = tls_ctx_new(&D->conf, 1)) == NULL ||
		    (D->tls_client = tls_ctx_new(&D->conf, 0)) == NULL)
			fatalx("TLS setup failed");
	} else {
		log_warnx("TLS is OFF: peer traffic is neither encrypted nor "
		    "authenticated beyond the token. Use only on loopback.");
	}
	mkparent(D->conf.control_socket);
	mkparent(D->conf.vmm_socket);
	if (mkdir(D->conf.state_dir, 0750) < 0 && errno != EEXIST)
		fatal("mkdir %s", D->conf.state_dir);
	rec_load();
	/* Socket activation (migrationd.socket): the control socket is fd 3. */
	if ((nfds = sd_listen_fds(1)) > 0) {
		if (nfds != 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1,
		    NULL, 0) <= 0)
			fatalx("systemd passed %d sockets; expected one listening Unix "
			    "stream socket", nfds);
		ctl_fd = SD_LISTEN_FDS_START;
	}
	if (ctl_listen(D->conf.control_socket, ctl_fd) < 0 ||
	    vm_listen(D->conf.vmm_socket) < 0)
		fatalx("cannot open the local sockets");
	if (D->conf.peer_listen[0] && peer_listen(D->conf.peer_listen) < 0)
		fatalx("cannot listen for peers on %s", D->conf.peer_listen);

	if (D->conf.metrics_listen[0] && metrics_listen(D->conf.metrics_listen) < 0)
		fatalx("cannot serve metrics on %s", D->conf.metrics_listen);
	lat_start(D->conf.bpf);

	sigs[0] = evsignal_new(D->base, SIGTERM, sig_cb, NULL);
	sigs[1] = evsignal_new(D->base, SIGINT, sig_cb, NULL);
	sigs[2] = evsignal_new(D->base, SIGHUP, sig_cb, NULL);
	for (int i = 0; i < 3; i++)
		event_add(sigs[i], NULL);

	log_info("ready: control %s, vmm %s, peers %s (%s), %s",
	    D->conf.control_socket, D->conf.vmm_socket,
	    D->conf.peer_listen[0] ? D->conf.peer_listen : "not listening",
	    D->conf.tls ? "TLS 1.3, mutual auth" : "plaintext",
	    lat_status());
	/* Readiness for systemd (Type=notify); a no-op without systemd. */
	sd_notify(0, "READY=1\nSTATUS=serving");
	event_base_dispatch(D->base);
	sd_notify(0, "STOPPING=1");

	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	ctl_shutdown();
	if (ctl_fd < 0)
		unlink(D->conf.control_socket);
	unlink(D->conf.vmm_socket);
	metrics_stop();
	lat_stop();
	daemon_free();
	log_info("stopped");
	return 0;
}
