/*
 * confcheck: what the configuration's values name and how they fit
 * together, checked before anything starts (`migrationd -n`, and the same
 * at every start): the TLS rule, the certificate files (tls.c judges
 * them), [control] group, and the directories the daemon writes. It only
 * reads, and writes nothing it does not remove again. Every problem is
 * added to the caller's list with where its value came from (config.c);
 * none stops the others from being checked. Runs once at start-up.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"
#include "util.h"

struct cc {
	const struct config	*c;
	struct config_errs	*e;
	const char		*cert_sec;	/* the sections of the cert */
	const char		*key_sec;	/* ... and key being checked */
	const char		*role;		/* "", or whose files they are */
};

int
config_compress_threads(const struct config *c)
{
	long n;

	if (c->compress_threads >= 0)
		return c->compress_threads;
	n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	return n < 0 ? 0 : n > 3 ? 3 : (int)n;
}

int
config_is_loopback(const char *listen)
{
	struct sockaddr_storage ss;
	int sslen;

	if (listen[0] == '\0')
		return 1;	/* no listener */
	if (parse_hostport(listen, &ss, &sslen) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		    (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/*
 * No insecure default: peer TLS off is refused unless nobody off this host
 * can reach the peer listener, or the file says so in as many words. The
 * control listener is always TLS and needs its own CA.
 */
static void
cc_tls_rule(struct cc *x)
{
	const struct config *c = x->c;
	struct sockaddr_storage ss;
	char where[600];
	int sslen;

	if (!c->tls && !c->tls_insecure && parse_hostport(c->peer_listen, &ss, &sslen) == 0 &&
	    !config_is_loopback(c->peer_listen))
		config_error(x->e, c, "tls", "enabled",
		    "peer TLS is off but the peer listener %s (%s) is not on loopback: "
		    "peers would be neither encrypted nor authenticated. Turn TLS on, "
		    "listen on 127.0.0.1 or [::1] only, or set [tls] insecure = yes to "
		    "accept that", c->peer_listen,
		    config_where(c, "peer", "listen", where, sizeof(where)));
	if (c->control_listen[0] && !c->control_ca[0])
		config_error(x->e, c, "control", "listen",
		    "a TCP control listener needs [control] ca, the CA of the operators' "
		    "client certificates (the control listener is always TLS; there is "
		    "no insecure one)");
}

static void
cc_report(void *arg, int which, const char *why)
{
	struct cc *x = arg;

	if (which == TLS_FILE_KEY)
		config_error(x->e, x->c, x->key_sec, "key", "%s%s", why, x->role);
	else
		config_error(x->e, x->c, x->cert_sec, "cert", "%s%s", why, x->role);
}

/* 0, or -1 after reporting why path is no CA file. */
static int
cc_ca(struct cc *x, const char *section, const char *path)
{
	char why[768];

	if (tls_check_ca(path, why, sizeof(why)) == 0)
		return 0;
	config_error(x->e, x->c, section, "ca", "%s", why);
	return -1;
}

/* The files the daemon will load: the peer CA, certificate and key with
 * TLS on; the control CA, certificate and key with a TCP control
 * listener ([control] cert and key default to [tls] cert and key). */
static void
cc_files(struct cc *x)
{
	const struct config *c = x->c;
	const char *cas[3] = { c->tls_ca, NULL, NULL };
	int uses = TLS_USE_CLIENT | (c->peer_listen[0] ? TLS_USE_SERVER : 0), n = 0;

	if (c->tls) {
		/* Without a CA there is nothing to verify against: the rest only. */
		if (cc_ca(x, "tls", c->tls_ca) < 0)
			uses = 0;
		x->cert_sec = x->key_sec = "tls";
		x->role = "";
		tls_check_pair(c->tls_cert, c->tls_key, cas, 0, uses, cc_report, x);
	}
	if (!c->control_listen[0])
		return;
	uses = TLS_USE_SERVER;
	if (c->control_ca[0] && cc_ca(x, "control", c->control_ca) < 0)
		uses = 0;
	if (c->tls && !c->control_cert[0] && !c->control_key[0])
		return;		/* the peer's own, checked above */
	/* Operators' clients trust the control CA, the fleet's or the
	 * system's: the listener's certificate must chain to one of them. */
	if (c->control_ca[0])
		cas[n++] = c->control_ca;
	if (c->tls && (n == 0 || strcmp(c->tls_ca, c->control_ca) != 0))
		cas[n++] = c->tls_ca;
	cas[n] = NULL;
	x->cert_sec = c->control_cert[0] ? "control" : "tls";
	x->key_sec = c->control_key[0] ? "control" : "tls";
	x->role = " (the TCP control listener's)";
	tls_check_pair(c->control_cert[0] ? c->control_cert : c->tls_cert,
	    c->control_key[0] ? c->control_key : c->tls_key, cas, 1, uses, cc_report, x);
}

/*
 * dir (of [section] key) exists or can be made (one level, as the daemon
 * makes it), and the daemon can create files in it. What it makes to find
 * out, it removes.
 */
static void
cc_dir(struct cc *x, const char *section, const char *key, const char *dir,
    const char *what)
{
	char probe[600];
	struct stat st;
	int made = 0, fd;

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT) {
			config_error(x->e, x->c, section, key, "%s %s cannot be used: %s",
			    what, dir, strerror(errno));
			return;
		}
		if (mkdir(dir, 0750) < 0) {
			config_error(x->e, x->c, section, key, "%s %s does not exist and "
			    "cannot be made: %s", what, dir, strerror(errno));
			return;
		}
		made = 1;
	} else if (!S_ISDIR(st.st_mode)) {
		config_error(x->e, x->c, section, key, "%s %s is not a directory", what, dir);
		return;
	}
	snprintf(probe, sizeof(probe), "%s/.migrationd-check.XXXXXX", dir);
	if ((fd = mkstemp(probe)) < 0) {
		config_error(x->e, x->c, section, key, "%s %s is not writable: %s", what,
		    dir, strerror(errno));
	} else {
		close(fd);
		unlink(probe);
	}
	if (made)
		rmdir(dir);
}

/* A Unix socket the daemon binds: the path fits, whatever is there now is
 * a socket (the daemon replaces it), and its directory is usable. */
static void
cc_socket(struct cc *x, const char *key, const char *path)
{
	struct sockaddr_un sun;
	char dir[512], *slash;
	struct stat st;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		config_error(x->e, x->c, "daemon", key, "%s is longer than %zu "
		    "characters, the most a Unix socket path may have", path,
		    sizeof(sun.sun_path) - 1);
		return;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		config_error(x->e, x->c, "daemon", key, "%s exists and is not a socket "
		    "(the daemon would remove it to bind its own)", path);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	cc_dir(x, "daemon", key, dir, "the socket's directory");
}

int
config_check(const struct config *c, int flags, struct config_errs *e)
{
	struct cc x = { .c = c, .e = e };
	int n0 = e->n + e->more;

	cc_tls_rule(&x);
	cc_files(&x);
	if (c->control_group[0] && getgrnam(c->control_group) == NULL)
		config_error(e, c, "control", "group", "no group %s on this host",
		    c->control_group);
	cc_dir(&x, "daemon", "state_dir", c->state_dir, "the state directory");
	if (!(flags & CONFIG_CHECK_ACTIVATED))
		cc_socket(&x, "control_socket", c->control_socket);
	cc_socket(&x, "vmm_socket", c->vmm_socket);
	return e->n + e->more - n0;
}
