/*
 * migrationd: post-copy live migration daemon, one per host, both roles.
 * main.c is the top of the daemon: start-up (configuration, TLS contexts,
 * sockets, records, observers), the libevent loop and orderly shutdown. It
 * wires the layers together and holds no logic of its own.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "control.h"
#include "dest.h"
#include "latency.h"
#include "log.h"
#include "metrics.h"
#include "migration.h"
#include "peer.h"
#include "record.h"
#include "session.h"
#include "tls.h"
#include "util.h"
#include "vm.h"

static SSL_CTX *tls_server, *tls_client;

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	/* Long enough to send health watchers NOT_SERVING; a second signal ends at once. */
	struct timeval flush = { 0, 100 * 1000 };

	log_info("signal %d: shutting down", (int)sig);
	event_base_loopexit(D->base, ctl_stopping() > 0 ? &flush : NULL);
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
	    "  -n            check the configuration (all of it, files and\n"
	    "                directories too) and exit: 0 if the daemon would start\n"
	    "  -s PATH       control socket (overrides [daemon] control_socket)\n"
	    "  -v            verbose (debug) logging\n");
	exit(2);
}

static void
daemon_free(void)
{
	struct migration *m;

	D->stopping = 1;
	mig_expiry_stop();
	while ((m = TAILQ_FIRST(&mig_all)) != NULL) {
		m->vm = NULL;
		session_finish(m);	/* saves the record: a restart picks it up */
		mig_free(m);
	}
	vm_close_all();
	peer_close_all();
	peer_listen_stop();
	vm_listen_stop();
	SSL_CTX_free(tls_server);
	SSL_CTX_free(tls_client);
	event_base_free(D->base);
	free(D);
}

/* Every error one load and check found (too big for the stack). */
static struct config_errs conf_errs;

/*
 * Reads the configuration, command-line flags over the file, and checks it
 * (config_check): `-n` and a start run the same checks and report every
 * problem the same way, so a daemon that passes -n starts and one that
 * fails it does not. Exits unless the daemon would start.
 */
static void
main_config(const char *conf, const char *opt_sock, const char *opt_listen, int check)
{
	struct config_errs *e = &conf_errs;
	struct config *c;
	char why[256];
	int i;

	if ((D = calloc(1, sizeof(*D))) == NULL)
		fatal("calloc");
	c = &D->conf;
	if (config_load(c, conf, e) < 0)
		goto report;	/* nothing to check the defaults against */
	if (opt_sock != NULL) {
		config_set_by_flag(c, "daemon", "control_socket", "-s");
		if (snprintf(c->control_socket, sizeof(c->control_socket), "%s",
		    opt_sock) >= (int)sizeof(c->control_socket))
			config_error(e, c, "daemon", "control_socket", "the path is longer "
			    "than %zu characters", sizeof(c->control_socket) - 1);
	}
	if (opt_listen != NULL) {
		/* The same rules as [peer] listen, the TLS rule included. */
		config_set_by_flag(c, "peer", "listen", "-l");
		if (config_listen_why(opt_listen, why, sizeof(why)) < 0)
			config_error(e, c, "peer", "listen", "\"%s\": %s", opt_listen, why);
		else if (snprintf(c->peer_listen, sizeof(c->peer_listen), "%s", opt_listen) >=
		    (int)sizeof(c->peer_listen))
			config_error(e, c, "peer", "listen", "longer than %zu characters",
			    sizeof(c->peer_listen) - 1);
	}
	config_check(c, sd_listen_fds(0) > 0 ? CONFIG_CHECK_ACTIVATED : 0, e);
	if (e->n == 0)
		return;
report:
	config_errs_sort(e, c);
	for (i = 0; i < e->n; i++) {
		if (check)
			fprintf(stderr, "%s\n", e->msg[i]);
		else
			log_warnx("%s", e->msg[i]);
	}
	if (e->more && check)
		fprintf(stderr, "%s: %d more errors not shown\n", conf, e->more);
	else if (e->more)
		log_warnx("%s: %d more errors not shown", conf, e->more);
	if (check) {
		fprintf(stderr, "%s: %d error%s: the daemon would not start\n", conf,
		    e->n + e->more, e->n + e->more == 1 ? "" : "s");
		exit(1);
	}
	fatalx("%s: %d error%s in the configuration: not starting", conf,
	    e->n + e->more, e->n + e->more == 1 ? "" : "s");
}

/* Peer TLS off: on loopback a reminder; elsewhere the file said
 * `insecure = yes` (config_check refuses it otherwise), and every start
 * says loudly what that means. */
static void
main_warn_plaintext(void)
{
	const struct config *c = &D->conf;

	if (c->tls)
		return;
	if (config_is_loopback(c->peer_listen))
		log_warnx("TLS is OFF: peer traffic is neither encrypted nor "
		    "authenticated beyond the token (the peer listener is on loopback "
		    "or off)");
	else
		log_warnx("INSECURE: peer TLS is OFF on %s ([tls] insecure = yes): "
		    "anyone who can reach this host can read guest memory in flight "
		    "and, with a token, send this host a VM; use it only on a network "
		    "nobody else reaches", c->peer_listen);
}

/* Everything the loop serves, bottom up. Returns the control socket fd from
 * systemd, or -1. */
static int
main_open(void)
{
	int ctl_fd = -1, nfds;

	if ((D->base = event_base_new()) == NULL ||
	    event_base_priority_init(D->base, MIG_NPRI) < 0)
		fatalx("event_base_new");
	if (D->conf.tls &&
	    ((tls_server = tls_ctx_new(&D->conf, 1)) == NULL ||
	    (tls_client = tls_ctx_new(&D->conf, 0)) == NULL))
		fatalx("TLS setup failed");
	main_warn_plaintext();
	peer_init(tls_server, tls_client);
	mkparent(D->conf.control_socket);
	mkparent(D->conf.vmm_socket);
	if (mkdir(D->conf.state_dir, 0750) < 0 && errno != EEXIST)
		fatal("mkdir %s", D->conf.state_dir);
	rec_init();
	rec_load();
	if (mig_expiry_start() < 0)	/* the records just read, then on */
		fatalx("cannot start record expiry");
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
	if (D->conf.peer_listen[0] && peer_listen(D->conf.peer_listen, dst_hello) < 0)
		fatalx("cannot listen for peers on %s", D->conf.peer_listen);
	if (D->conf.metrics_listen[0] && metrics_listen(D->conf.metrics_listen) < 0)
		fatalx("cannot serve metrics on %s", D->conf.metrics_listen);
	lat_start(D->conf.bpf);
	return ctl_fd;
}

int
main(int argc, char **argv)
{
	const char *conf = "/etc/migrationd/migrationd.conf";
	const char *opt_sock = NULL, *opt_listen = NULL;
	int ch, fg = 0, verbose = 0, check = 0, ctl_fd;
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
	main_config(conf, opt_sock, opt_listen, check);
	if (check) {
		main_warn_plaintext();
		printf("configuration OK\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	ctl_fd = main_open();

	sigs[0] = evsignal_new(D->base, SIGTERM, sig_cb, NULL);
	sigs[1] = evsignal_new(D->base, SIGINT, sig_cb, NULL);
	sigs[2] = evsignal_new(D->base, SIGHUP, sig_cb, NULL);
	for (int i = 0; i < 3; i++)
		if (sigs[i] == NULL || event_add(sigs[i], NULL) < 0)
			fatalx("cannot watch signals");

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
