/*
 * dial: how peer_connect reaches a destination given as NAME:PORT,
 * IPV4:PORT or [IPV6]:PORT. A name is resolved with libevent's evdns
 * (/etc/hosts, then the name servers of /etc/resolv.conf), never blocking
 * the loop; every address is tried in order until one connects and its TLS
 * handshake succeeds, each failure noted. Each attempt gets a fresh TLS
 * bufferevent that checks the certificate against the name dialled (a
 * literal: against the address). Failures are said in words: "cannot
 * connect to hostb:7480 (192.0.2.2:7480): Connection refused", "TLS
 * handshake with hostb:7480 (192.0.2.2:7480) failed: certificate does not
 * match the name hostb", "name hostx does not resolve". Loop thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer.h"
#include "tls.h"
#include "util.h"

struct dial {
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

static struct evdns_base *
dial_dns(void)
{
	if (dns != NULL)
		return dns;
	/* Idle, it keeps no event: the loop can end while it exists. */
	dns = evdns_base_new(D->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL && (dns = evdns_base_new(D->base,
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) != NULL)
		evdns_base_load_hosts(dns, NULL);
	if (dns != NULL) {
		/* A fleet's name server answers fast or not at all. */
		evdns_base_set_option(dns, "timeout:", "2");
		evdns_base_set_option(dns, "attempts:", "2");
	}
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
dial_give_up(struct pconn *c, const char *why)
{
	snprintf(last_error, sizeof(last_error), "%s", why);
	c->dial->gave_up = 1;
	/* dial_failed logged each address; the name service is said here. */
	if (c->dial->tries == 0)
		log_info("peer %s: %s", c->dial->name, why);
	if (c->dial->sync)
		return;		/* dial_start's caller closes c */
	peer_dial_lost(c, why);
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
dial_next(struct pconn *c)
{
	struct dial *d = c->dial;
	struct bufferevent *bev;
	char why[320];

	for (;;) {
		d->cur = d->cur == NULL ? d->ai : d->cur->ai_next;
		if (d->cur == NULL) {
			/* Each address's failure already names the destination. */
			dial_give_up(c, d->fails[0] ? d->fails : "no address to try");
			return -1;
		}
		if (d->tries++ > 0) {
			if ((bev = tls_bev_connect(peer_tls_client(), d->host)) == NULL) {
				dial_note(d, "out of memory");
				continue;
			}
			peer_set_bev(c, bev);
		}
		dial_addr_str(d->cur, c->addr, sizeof(c->addr));
		if (bufferevent_socket_connect(c->bev, d->cur->ai_addr,
		    (int)d->cur->ai_addrlen) == 0) {
			log_debug("peer %s: connecting to %s", d->name, c->addr);
			return 0;
		}
		snprintf(why, sizeof(why), "cannot connect to %s (%s): %s", d->name, c->addr,
		    strerror(errno));
		dial_note(d, why);
	}
}

static void
dial_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct pconn *c = arg;
	char why[300];

	if (result == EVUTIL_EAI_CANCEL) {	/* c is being freed */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	c->dial->req = NULL;
	if (result != 0 || res == NULL) {
		if (result == EVUTIL_EAI_NONAME || result == 0)
			snprintf(why, sizeof(why), "name %s does not resolve", c->dial->host);
		else
			snprintf(why, sizeof(why), "name %s does not resolve: %s", c->dial->host,
			    evutil_gai_strerror(result));
		dial_give_up(c, why);
		return;
	}
	c->dial->ai = res;
	dial_next(c);
}

int
dial_start(struct pconn *c, const char *hostport, const char *at)
{
	struct evutil_addrinfo hints;
	struct in6_addr a6;
	struct dial *d;
	char why[100], lit[128];
	unsigned port;
	int rc = 0;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(last_error, sizeof(last_error), "out of memory");
		return -1;
	}
	c->dial = d;
	snprintf(d->name, sizeof(d->name), "%s", hostport);
	if (split_hostport(hostport, d->host, sizeof(d->host), &port, why, sizeof(why)) < 0) {
		snprintf(last_error, sizeof(last_error), "destination %s: %s", hostport, why);
		return -1;
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
			rc = dial_next(c);
	} else if (dial_dns() == NULL) {
		snprintf(last_error, sizeof(last_error), "cannot set up name resolution");
		rc = -1;
	} else {
		/* /etc/hosts as it is now, as getaddrinfo would read it (ip netns
		 * exec binds /etc/netns/NS/hosts there). */
		evdns_base_clear_host_addresses(dns);
		evdns_base_load_hosts(dns, "/etc/hosts");
		/* Answered at once from /etc/hosts (the callback has run) or later. */
		d->req = evdns_getaddrinfo(dns, d->host, d->port, &hints, dial_resolved_cb, c);
		if (d->ai == NULL && d->req == NULL && !d->gave_up) {
			snprintf(last_error, sizeof(last_error), "cannot resolve %s", d->host);
			rc = -1;
		}
	}
	d->sync = 0;
	return d->gave_up ? -1 : rc;
}

/*
 * A dialled connection failed before it was up (`what`: the bufferevent's
 * event). Notes why and tries the next address: 1 if one is being tried,
 * 0 if c is given up (dial_give_up has called peer_dial_lost).
 */
int
dial_failed(struct pconn *c, short what)
{
	struct dial *d = c->dial;
	char tls[200], why[480];
	int err = EVUTIL_SOCKET_ERROR();

	tls_bev_error(c->bev, tls, sizeof(tls));
	if (tls[0] != '\0')
		snprintf(why, sizeof(why), "TLS handshake with %s (%s) failed: %s", d->name,
		    c->addr, tls);
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "TLS handshake with %s (%s) failed: connection "
		    "closed by the peer (does it accept our certificate?)", d->name, c->addr);
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "cannot connect to %s (%s): no answer in %d s",
		    d->name, c->addr, D->conf.handshake_timeout);
	else
		snprintf(why, sizeof(why), "cannot connect to %s (%s): %s", d->name, c->addr,
		    err ? evutil_socket_error_to_string(err) : "connection failed");
	log_info("peer %s: %s", d->name, why);
	dial_note(d, why);
	return dial_next(c) == 0;
}

void
dial_connected(struct pconn *c)
{
	if (c->mig != NULL && c->mig->urgent == c)
		snprintf(c->mig->peer_addr, sizeof(c->mig->peer_addr), "%s", c->addr);
	dial_free(c);
}

void
dial_free(struct pconn *c)
{
	struct dial *d = c->dial;

	if (d == NULL)
		return;
	c->dial = NULL;
	if (d->req != NULL)
		evdns_getaddrinfo_cancel(d->req);
	if (d->ai != NULL)
		evutil_freeaddrinfo(d->ai);
	free(d);
}
