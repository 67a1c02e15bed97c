/*
 * dial: how peer_connect reaches a destination given as NAME:PORT,
 * IPV4:PORT or [IPV6]:PORT. A name is resolved with libevent's evdns
 * (/etc/hosts, then the name servers of /etc/resolv.conf, read again when
 * it changes), never blocking the loop; every address is tried in
 * order until one connects and its TLS handshake succeeds, each failure
 * noted. Each attempt gets a fresh TLS
 * bufferevent that checks the certificate against the name dialled (a
 * literal: against the address). Failures are said in words: "cannot
 * connect to hostb:7480 (192.0.2.2:7480): Connection refused", "TLS
 * handshake with hostb:7480 (192.0.2.2:7480) failed: certificate does not
 * match the name hostb", "name hostx does not resolve". It knows nothing of
 * peer connections: its owner (peer.c) hands it the first bufferevent and
 * gets each new one, and the final failure, through struct dial_ops. Loop
 * thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dial.h"
#include "log.h"
#include "tls.h"
#include "util.h"

struct dial {
	const struct dial_ops	*ops;
	void			*arg;
	SSL_CTX			*tls;
	struct bufferevent	*bev;		/* the current try's */
	char			 addr[64];	/* the current try's IP:PORT */
	char			 name[128];	/* as given: hostb:7480, [::1]:7480 */
	char			 host[128];	/* without port and brackets */
	char			 port[8];
	struct evutil_addrinfo	*ai, *cur;
	struct evdns_getaddrinfo_request *req;
	int			 sync;		/* inside dial_start */
	int			 tries;
	int			 gave_up;
	char			 fails[480];	/* each address's failure, "; " */
};

static struct evdns_base *dns;
static char last_error[480];

const char *
dial_last_error(void)
{
	return last_error;
}

/*
 * /etc/resolv.conf as it was when last read (missing: zeros). A daemon runs
 * for months: a changed file (a new name server) is read again before the
 * next name is resolved. /etc/hosts is read at every dial (dial_start).
 */
#define DNS_RESOLV_CONF	"/etc/resolv.conf"
static struct stat dns_seen;

static int
dns_conf_changed(void)
{
	struct stat st;
	int changed;

	if (stat(DNS_RESOLV_CONF, &st) < 0)
		memset(&st, 0, sizeof(st));
	changed = st.st_dev != dns_seen.st_dev || st.st_ino != dns_seen.st_ino ||
	    st.st_size != dns_seen.st_size ||
	    st.st_mtim.tv_sec != dns_seen.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != dns_seen.st_mtim.tv_nsec;
	dns_seen = st;
	return changed;
}

/* A fleet's name server answers fast or not at all. */
static void
dns_options(struct evdns_base *b)
{
	evdns_base_set_option(b, "timeout:", "2");
	evdns_base_set_option(b, "attempts:", "2");
}

static struct evdns_base *
dial_dns(void)
{
	int changed = dns_conf_changed();

	if (dns != NULL && changed) {
		/* Requests in flight wait, then go to the new name servers. */
		evdns_base_clear_nameservers_and_suspend(dns);
		evdns_base_search_clear(dns);
		evdns_base_resolv_conf_parse(dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH |
		    DNS_OPTION_MISC, DNS_RESOLV_CONF);
		dns_options(dns);
		evdns_base_resume(dns);
		log_info("%s changed: name servers read again", DNS_RESOLV_CONF);
	}
	if (dns != NULL)
		return dns;
	/* Idle, it keeps no event: the loop can end while it exists. */
	dns = evdns_base_new(D->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL && (dns = evdns_base_new(D->base,
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) != NULL)
		evdns_base_load_hosts(dns, NULL);
	if (dns != NULL)
		dns_options(dns);
	return dns;
}

void
dial_shutdown(void)
{
	if (dns != NULL)
		evdns_base_free(dns, 1);
	dns = NULL;
}

static void
dial_note(struct dial *d, const char *why)
{
	size_t n = strlen(d->fails);

	snprintf(d->fails + n, sizeof(d->fails) - n, "%s%s", n ? "; " : "", why);
}

/* Every address failed (or none was found): the connection is lost. */
static void
dial_give_up(struct dial *d, const char *why)
{
	snprintf(last_error, sizeof(last_error), "%s", why);
	d->gave_up = 1;
	/* dial_failed logged each address; the name service is said here. */
	if (d->tries == 0)
		log_info("peer %s: %s", d->name, why);
	if (d->sync)
		return;		/* dial_start fails */
	d->ops->lost(d->arg, why);	/* the owner frees d */
}

static void
dial_addr_str(const struct evutil_addrinfo *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ai_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)a->ai_addr;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)a->ai_addr;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

/* The next address, on a new bufferevent after the first. 0, or -1 once
 * no address is left (given up). */
static int
dial_next(struct dial *d)
{
	struct bufferevent *bev;
	char why[320];

	for (;;) {
		d->cur = d->cur == NULL ? d->ai : d->cur->ai_next;
		if (d->cur == NULL) {
			/* Each address's failure already names the destination. */
			dial_give_up(d, d->fails[0] ? d->fails : "no address to try");
			return -1;
		}
		if (d->tries++ > 0) {
			if ((bev = tls_bev_connect(d->tls, d->host)) == NULL) {
				dial_note(d, "out of memory");
				continue;
			}
			d->bev = bev;
		}
		dial_addr_str(d->cur, d->addr, sizeof(d->addr));
		d->ops->attempt(d->arg, d->bev, d->addr);
		if (bufferevent_socket_connect(d->bev, d->cur->ai_addr,
		    (int)d->cur->ai_addrlen) == 0) {
			log_debug("peer %s: connecting to %s", d->name, d->addr);
			return 0;
		}
		snprintf(why, sizeof(why), "cannot connect to %s (%s): %s", d->name, d->addr,
		    strerror(errno));
		dial_note(d, why);
	}
}

static void
dial_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dial *d = arg;
	char why[300];

	if (result == EVUTIL_EAI_CANCEL) {	/* d is being freed */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	d->req = NULL;
	if (result != 0 || res == NULL) {
		if (result == EVUTIL_EAI_NONAME || result == 0)
			snprintf(why, sizeof(why), "name %s does not resolve", d->host);
		else
			snprintf(why, sizeof(why), "name %s does not resolve: %s", d->host,
			    evutil_gai_strerror(result));
		dial_give_up(d, why);
		return;
	}
	d->ai = res;
	dial_next(d);
}

struct dial *
dial_start(const char *hostport, const char *at, SSL_CTX *tls, struct bufferevent *bev,
    const struct dial_ops *ops, void *arg)
{
	struct evutil_addrinfo hints;
	struct in6_addr a6;
	struct dial *d;
	char why[100], lit[128];
	unsigned port;
	int rc = 0;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(last_error, sizeof(last_error), "out of memory");
		return NULL;
	}
	d->ops = ops;
	d->arg = arg;
	d->tls = tls;
	d->bev = bev;
	snprintf(d->name, sizeof(d->name), "%s", hostport);
	if (split_hostport(hostport, d->host, sizeof(d->host), &port, why, sizeof(why)) < 0) {
		snprintf(last_error, sizeof(last_error), "destination %s: %s", hostport, why);
		dial_free(d);
		return NULL;
	}
	snprintf(d->port, sizeof(d->port), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	d->sync = 1;
	if (at != NULL && split_hostport(at, lit, sizeof(lit), &port, why, sizeof(why)) == 0)
		snprintf(d->port, sizeof(d->port), "%u", port);
	else
		snprintf(lit, sizeof(lit), "%s", d->host);
	if (inet_pton(AF_INET, lit, &a6) == 1 || inet_pton(AF_INET6, lit, &a6) == 1) {
		/* A literal (or the address the urgent channel reached): no
		 * name service involved. */
		hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
		if (evutil_getaddrinfo(lit, d->port, &hints, &d->ai) != 0) {
			snprintf(last_error, sizeof(last_error), "bad address %s", lit);
			rc = -1;
		} else
			rc = dial_next(d);
	} else if (dial_dns() == NULL) {
		snprintf(last_error, sizeof(last_error), "cannot set up name resolution");
		rc = -1;
	} else {
		/* /etc/hosts as it is now, as getaddrinfo would read it (ip netns
		 * exec binds /etc/netns/NS/hosts there). */
		evdns_base_clear_host_addresses(dns);
		evdns_base_load_hosts(dns, "/etc/hosts");
		/* Answered at once from /etc/hosts (the callback has run) or later. */
		d->req = evdns_getaddrinfo(dns, d->host, d->port, &hints, dial_resolved_cb, d);
		if (d->ai == NULL && d->req == NULL && !d->gave_up) {
			snprintf(last_error, sizeof(last_error), "cannot resolve %s", d->host);
			rc = -1;
		}
	}
	d->sync = 0;
	if (d->gave_up || rc < 0) {
		dial_free(d);
		return NULL;
	}
	return d;
}

int
dial_failed(struct dial *d, short what)
{
	char tls[200], why[480];
	int err = EVUTIL_SOCKET_ERROR();

	tls_bev_error(d->bev, tls, sizeof(tls));
	if (tls[0] != '\0')
		snprintf(why, sizeof(why), "TLS handshake with %s (%s) failed: %s", d->name,
		    d->addr, tls);
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "TLS handshake with %s (%s) failed: connection "
		    "closed by the peer (does it accept our certificate?)", d->name, d->addr);
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "cannot connect to %s (%s): no answer in %d s",
		    d->name, d->addr, D->conf.handshake_timeout);
	else
		snprintf(why, sizeof(why), "cannot connect to %s (%s): %s", d->name, d->addr,
		    err ? evutil_socket_error_to_string(err) : "connection failed");
	log_info("peer %s: %s", d->name, why);
	dial_note(d, why);
	return dial_next(d) == 0;
}

void
dial_free(struct dial *d)
{
	if (d == NULL)
		return;
	if (d->req != NULL)
		evdns_getaddrinfo_cancel(d->req);
	if (d->ai != NULL)
		evutil_freeaddrinfo(d->ai);
	free(d);
}
