/*
 * peer: connections between two migrationd hosts. Accepts and dials
 * TLS connections (tls.c), cuts the byte stream into frames (frame.c),
 * checks each header before its payload is touched, and hands frames to the
 * migration's role through its operations table (m->ops). The first frame
 * of an accepted connection must be a Hello (the handler given to
 * peer_listen decides); anything else closes that connection only. Loop
 * thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"
#include "dial.h"
#include "log.h"
#include "peer.h"
#include "peer_rx.h"
#include "peer_tx.h"
#include "tls.h"
#include "util.h"

static void peer_read_cb(struct bufferevent *bev, void *arg);
static void peer_write_cb(struct bufferevent *bev, void *arg);
static void peer_event_cb(struct bufferevent *bev, short what, void *arg);
static void peer_set_channel(struct pconn *c, int channel);
static void peer_lost(struct pconn *c, const char *why);
static void peer_rx_more(struct pconn *c);

static const struct peer_rx_ops peer_rx_ops = {
	.lost = peer_lost, .turn_over = peer_bulk_turn_over, .more = peer_rx_more,
	.stall_ms = MIG_DEAD_MS,
};

/* Limits before a migration is known: only a small Hello may come. */
static const struct frame_limits hello_limits = {
	.page_size = 4096, .npages = 0, .max_msg = 4096, .max_count = 0,
};

static TAILQ_HEAD(, pconn) conns = TAILQ_HEAD_INITIALIZER(conns);
static SSL_CTX *tls_server, *tls_client;
static struct evconnlistener *listener;
static peer_hello_fn hello_fn;

void
peer_init(SSL_CTX *server, SSL_CTX *client)
{
	tls_server = server;
	tls_client = client;
}

/* The role's bulk writer runs when `c` is the bulk channel of a role that
 * writes bulk (the source); elsewhere bulk is read. */
static int
peer_writes_bulk(const struct pconn *c)
{
	return peer_is_bg(c) && c->mig->ops->bulk != NULL;
}

struct pconn **
peer_bg_slot(struct migration *m, uint32_t k)
{
	return k == 0 ? &m->bg : k < MIG_STREAMS_MAX ? &m->bg_more[k - 1] : NULL;
}

int
peer_is_bg(const struct pconn *c)
{
	struct pconn **slot;

	return c->mig != NULL && c->channel == MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND &&
	    (slot = peer_bg_slot(c->mig, c->stream)) != NULL && *slot == c;
}

void
peer_bg_close(struct migration *m, const struct pconn *keep, int flush)
{
	for (uint32_t k = 0; k < MIG_STREAMS_MAX; k++) {
		struct pconn *c = *peer_bg_slot(m, k);

		if (c != NULL && c != keep)
			peer_close(c, flush);
	}
}

void
peer_bg_drain(struct migration *m)
{
	for (uint32_t k = 0; k < MIG_STREAMS_MAX; k++)
		if (*peer_bg_slot(m, k) != NULL)
			peer_drain(*peer_bg_slot(m, k));
}

/* A bulk channel's turn again, after the loop looked for faults. */
static void
peer_more_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;

	if (peer_writes_bulk(c))
		c->mig->ops->bulk(c);
	else
		peer_read_cb(c->bev, c);
}

/*
 * Ends a bulk channel's slice of work: it goes on from a zero time-out, so
 * the loop polls first and serves what is ready at a higher priority (uffd,
 * doorbell, urgent channel) before this channel's next slice.
 */
void
peer_yield(struct pconn *c)
{
	static const struct timeval now = { 0, 0 };

	if (!evtimer_pending(c->ev_more, NULL))
		evtimer_add(c->ev_more, &now);
}

int
peer_bulk_turn_over(struct migration *m, int64_t t0, int64_t *t_check)
{
	int64_t t = now_ns();

	if (t - *t_check <= MIG_BULK_CHECK_NS)
		return 0;
	*t_check = t;
	return t - t0 > MIG_BULK_SLICE_NS || peer_fault_ready(m);
}

int
peer_fault_ready(struct migration *m)
{
	struct pollfd p[4];
	nfds_t n = 0;

	if (m == NULL)
		return 0;
	/* A throttled urgent channel is not read: its input is no work. */
	if (m->urgent != NULL && !m->urgent->throttled) {
		struct evbuffer *in = bufferevent_get_input(m->urgent->bev);
		size_t avail = evbuffer_get_length(in);
		uint8_t hb[FRAME_HDR_LEN];
		struct frame_hdr h;

		/* A whole frame is waiting (or a bad one, which closes it). */
		if (avail >= FRAME_HDR_LEN) {
			evbuffer_copyout(in, hb, sizeof(hb));
			if (frame_decode(hb, avail, &m->urgent->lim, &h) < 0 ||
			    avail >= FRAME_HDR_LEN + (size_t)h.len)
				return 1;
		}
		p[n++] = (struct pollfd){ .fd = bufferevent_getfd(m->urgent->bev), .events = POLLIN };
	}
	if (m->ops->fault_fds != NULL)
		n += (nfds_t)m->ops->fault_fds(m, p + n, (int)(4 - n));
	return n > 0 && poll(p, n, 0) > 0;
}

static struct pconn *
peer_new(struct bufferevent *bev, const char *addr)
{
	struct pconn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->ev_more = evtimer_new(D->base, peer_more_cb, c)) == NULL) {
		free(c);
		return NULL;
	}
	event_priority_set(c->ev_more, MIG_PRI_BULK);
	c->bev = bev;
	c->lim = hello_limits;
	TAILQ_INSERT_TAIL(&conns, c, entry);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	bufferevent_setcb(bev, peer_read_cb, peer_write_cb, peer_event_cb, c);
	return c;
}

static void
peer_free(struct pconn *c)
{
	TAILQ_REMOVE(&conns, c, entry);
	peer_rx_free(c->rx);
	peer_tx_free(c->tx);
	dial_free(c->dial);
	event_free(c->ev_more);
	/*
	 * Out of the daemon's bandwidth group and its own cap first: libevent
	 * 2.1 frees a bufferevent on a later turn of the loop and marks only
	 * its read event as finalizing, so a group refill in between would
	 * re-add its write event, which then outlives it in the timer heap
	 * (a use after free, seen as a crash at the end of a capped migration).
	 */
	if (c->rl_grouped)
		bufferevent_remove_from_rate_limit_group(c->bev);
	if (c->rl_cfg != NULL)
		bufferevent_set_rate_limit(c->bev, NULL);
	bufferevent_free(c->bev);
	if (c->rl_cfg != NULL)	/* after the bufferevent that used it */
		ev_token_bucket_cfg_free(c->rl_cfg);
	free(c);
}

/* Shutdown: every connection goes, whatever it still had to say. */
void
peer_close_all(void)
{
	struct pconn *c;

	while ((c = TAILQ_FIRST(&conns)) != NULL) {
		c->mig = NULL;
		peer_free(c);
	}
	dial_shutdown();
}

void
peer_detach(struct pconn *c)
{
	struct migration *m = c->mig;

	if (m == NULL)
		return;
	peer_rx_stop(c->rx, m);
	if (m->urgent == c)
		m->urgent = NULL;
	if (peer_is_bg(c))
		*peer_bg_slot(m, c->stream) = NULL;
	c->mig = NULL;
}

void
peer_bind(struct pconn *c, struct migration *m, int channel)
{
	c->mig = m;
	peer_set_channel(c, channel);
	c->lim.page_size = m->page_size;
	c->lim.npages = m->npages;
	c->lim.max_msg = MIG_MSG_MAX;
	c->lim.max_count = mig_frame_pages(m);
	if (channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT)
		m->urgent = c;
	else
		*peer_bg_slot(m, c->stream) = c;	/* c->stream < MIG_STREAMS_MAX */
}

void
peer_close(struct pconn *c, int flush)
{
	peer_detach(c);
	/* Flush what is queued (a Refuse, a Complete), then free. */
	if (flush && !c->closing && !D->stopping &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	peer_free(c);
}

/*
 * The migration no longer needs `c`, but the peer may still be sending (the
 * tail of the background stream) and closes it itself: detach it, discard
 * what arrives, free it on EOF or after a grace period.
 */
void
peer_drain(struct pconn *c)
{
	struct timeval tv = { D->conf.handshake_timeout, 0 };

	peer_detach(c);
	c->draining = 1;
	bufferevent_set_timeouts(c->bev, &tv, NULL);
}

/* Which channel `c` carries decides its loop priority. */
static void
peer_set_channel(struct pconn *c, int channel)
{
	c->channel = channel;
	if (channel == MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND && c->rx == NULL)
		c->rx = peer_rx_new(c, &c->lim, &peer_rx_ops);	/* NULL: read through the buffer */
	bufferevent_priority_set(c->bev, channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT ?
	    MIG_PRI_FAULT : MIG_PRI_BULK);
}

/*
 * An authenticated channel: the urgent one must hear from the peer (data or
 * Ping) every MIG_DEAD_MS, and queued output on either must move; otherwise
 * the link is dead (a pulled cable shows no error by itself).
 */
void
peer_live(struct pconn *c)
{
	struct timeval rd = { MIG_DEAD_MS / 1000, (MIG_DEAD_MS % 1000) * 1000 };
	struct timeval wr = { 2 * MIG_DEAD_MS / 1000, 0 };
	unsigned int uto = 2 * MIG_DEAD_MS;

	bufferevent_set_timeouts(c->bev,
	    c->channel == MIGRATIOND__PEER__V1__CHANNEL__URGENT ? &rd : NULL, &wr);
	setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
	    sizeof(uto));
}

static void
peer_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migration *m = arg;
	Migrationd__Peer__V1__PeerMsg msg = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Ping p = MIGRATIOND__PEER__V1__PING__INIT;

	if (m->urgent == NULL || m->urgent->closing)
		return;
	msg.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_PING;
	msg.ping = &p;
	peer_send_msg(m->urgent, &msg);
}

/* Starts the migration's heartbeat (idempotent). */
void
peer_heartbeat(struct migration *m)
{
	struct timeval tv = { MIG_PING_MS / 1000, (MIG_PING_MS % 1000) * 1000 };

	if (m->ev_ping != NULL)
		return;
	if ((m->ev_ping = event_new(D->base, -1, EV_PERSIST, peer_ping_cb, m)) == NULL) {
		log_warnx("migration %s: no heartbeat: out of memory", m->id);
		return;
	}
	event_priority_set(m->ev_ping, MIG_PRI_FAULT);
	event_add(m->ev_ping, &tv);
}

void
peer_heartbeat_stop(struct migration *m)
{
	if (m->ev_ping != NULL)
		event_free(m->ev_ping);
	m->ev_ping = NULL;
}

/* Connection failed or ended: tell its migration, then drop it. */
static void
peer_lost(struct pconn *c, const char *why)
{
	struct migration *m = c->mig;

	if (m != NULL) {
		m->ops->conn_lost(c, why);
	} else {
		log_info("peer %s: closed: %s", c->addr, why);
	}
	peer_close(c, 0);
}

int
peer_send_frame(struct pconn *c, const struct frame_hdr *h, const void *payload)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	size_t n = FRAME_HDR_LEN + h->len;
	int staged = peer_tx_staging(c->tx);

	/*
	 * Header and payload go into the buffer (or the stage: peer_tx.h) in
	 * one piece: each add wakes the TLS writer, and two adds would cost
	 * two TLS records (and a loop pass at the receiver) per page.
	 */
	if (staged ? (v.iov_base = peer_tx_reserve(c->tx, n)) == NULL :
	    evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) != 1) {
		log_warnx("%s: %s: no room for a frame of %u bytes%s", __func__, c->addr,
		    h->len, staged ? " in its stage" : "");
		return -1;
	}
	frame_encode(h, v.iov_base);
	if (h->len > 0)
		memcpy((uint8_t *)v.iov_base + FRAME_HDR_LEN, payload, h->len);
	v.iov_len = n;	/* the reserved extent may be longer */
	if (!staged && evbuffer_commit_space(out, &v, 1) < 0) {
		log_warnx("%s: %s: cannot queue a frame", __func__, c->addr);
		return -1;
	}
	if (c->mig != NULL)
		c->mig->st.bytes_sent += n;
	return 0;
}

int
peer_send_msg(struct pconn *c, const Migrationd__Peer__V1__PeerMsg *msg)
{
	struct frame_hdr h = { .type = FRAME_MSG };
	size_t n = migrationd__peer__v1__peer_msg__get_packed_size(msg);
	uint8_t *buf;
	int rc;

	if (n == 0 || n > MIG_MSG_MAX || (buf = malloc(n)) == NULL) {
		log_warnx("%s: %s: message of %zu bytes not sent", __func__, c->addr, n);
		return -1;
	}
	migrationd__peer__v1__peer_msg__pack(msg, buf);
	h.len = (uint32_t)n;
	rc = peer_send_frame(c, &h, buf);
	free(buf);
	return rc;
}

static int
peer_refuse_msg(struct pconn *c, const char *reason, int vm_lost, int never_ran)
{
	Migrationd__Peer__V1__PeerMsg m = MIGRATIOND__PEER__V1__PEER_MSG__INIT;
	Migrationd__Peer__V1__Refuse r = MIGRATIOND__PEER__V1__REFUSE__INIT;

	log_warnx("peer %s: refused: %s", c->addr, reason);
	r.reason = (char *)(uintptr_t)reason;
	r.vm_lost = vm_lost;
	r.never_ran = never_ran;
	m.msg_case = MIGRATIOND__PEER__V1__PEER_MSG__MSG_REFUSE;
	m.refuse = &r;
	peer_send_msg(c, &m);
	peer_close(c, 1);
	return -1;
}

int
peer_refuse(struct pconn *c, const char *reason)
{
	return peer_refuse_msg(c, reason, 0, 0);
}

int
peer_refuse_never_ran(struct pconn *c, const char *reason)
{
	return peer_refuse_msg(c, reason, 0, 1);
}

int
peer_refuse_lost(struct pconn *c, const char *reason)
{
	return peer_refuse_msg(c, reason, 1, 0);
}

/* First frame of an accepted connection. Returns -1 if `c` is gone. */
static int
peer_first_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *p)
{
	Migrationd__Peer__V1__PeerMsg *msg;
	const char *why = NULL;
	int rc;

	if (h->type != FRAME_MSG ||
	    (msg = ctlmsg_decode_peer(p, h->len, &why)) == NULL) {
		peer_refuse(c, why ? why : "expected a Hello");
		return -1;
	}
	if (msg->msg_case != MIGRATIOND__PEER__V1__PEER_MSG__MSG_HELLO) {
		migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
		peer_refuse(c, "expected a Hello");
		return -1;
	}
	rc = hello_fn != NULL ? hello_fn(c, msg->hello) : peer_refuse(c, "not accepting migrations");
	migrationd__peer__v1__peer_msg__free_unpacked(msg, NULL);
	if (rc < 0)
		return -1;	/* the handler refused and closed */
	/* Authenticated: the hand-shake time-out becomes the liveness check. */
	peer_live(c);
	return 0;
}

static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_hdr h;
	uint8_t hb[FRAME_HDR_LEN];
	const uint8_t *payload;
	int bulk = c->channel == MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND;
	int64_t t0 = bulk ? now_ns() : 0, t_check = t0;
	size_t avail;
	int rc;

	if (c->draining) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (!c->closing) {
		/*
		 * Back-pressure: a peer that asks for more than it reads (page
		 * requests it never collects) stops being read until its queue
		 * drains; its requests wait in the kernel's socket buffer.
		 */
		if (evbuffer_get_length(bufferevent_get_output(bev)) > MIG_OUT_HIWAT) {
			if (!c->throttled)
				log_warnx("peer %s: %u bytes queued and not read; not reading "
				    "it until they drain", c->addr,
				    (unsigned)evbuffer_get_length(bufferevent_get_output(bev)));
			c->throttled = 1;
			bufferevent_disable(bev, EV_READ);
			bufferevent_setwatermark(bev, EV_WRITE, MIG_OUT_HIWAT / 2, 0);
			return;
		}
		avail = evbuffer_get_length(in);
		if (avail < FRAME_HDR_LEN)
			return;
		if (bulk && peer_bulk_turn_over(c->mig, t0, &t_check)) {
			peer_yield(c);
			return;
		}
		evbuffer_copyout(in, hb, sizeof(hb));
		if ((rc = frame_decode(hb, avail, &c->lim, &h)) < 0) {
			char why[128];

			snprintf(why, sizeof(why), "malformed frame: %s", frame_strerror(rc));
			if (c->mig == NULL) {
				peer_refuse(c, why);
				return;
			}
			log_warnx("peer %s: %s", c->addr, why);
			peer_lost(c, why);
			return;
		}
		/* Raw background pages: read straight into place (peer_rx.c). */
		if (bulk && c->mig != NULL && (rc = peer_rx_take(c->rx, bev, c->mig, &h)) != 0) {
			if (rc == 1)
				return;
			continue;
		}
		if (avail < FRAME_HDR_LEN + (size_t)h.len)
			return;
		/* One contiguous frame: pages are installed straight from here. */
		payload = evbuffer_pullup(in, FRAME_HDR_LEN + (ssize_t)h.len);
		if (payload == NULL) {
			peer_lost(c, "out of memory");
			return;
		}
		payload += FRAME_HDR_LEN;
		if (c->mig != NULL)
			c->mig->st.bytes_received += FRAME_HDR_LEN + h.len;
		if (c->mig == NULL)
			rc = peer_first_frame(c, &h, payload);
		else
			rc = c->mig->ops->frame(c, &h, payload);
		if (rc < 0)
			return;	/* c was closed */
		evbuffer_drain(in, FRAME_HDR_LEN + h.len);
	}
}

static void
peer_rx_more(struct pconn *c)
{
	peer_yield(c);
}

static void
peer_write_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			peer_free(c);
		return;
	}
	if (c->throttled) {
		c->throttled = 0;
		bufferevent_enable(bev, EV_READ);
		if (!peer_is_bg(c))
			bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		peer_read_cb(bev, c);	/* what was already buffered */
		return;
	}
	if (peer_writes_bulk(c))
		c->mig->ops->bulk(c);
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;
	char why[256], tlserr[160];

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if (c->dial != NULL && c->mig != NULL && c->mig->urgent == c)
			snprintf(c->mig->peer_addr, sizeof(c->mig->peer_addr), "%s", c->addr);
		dial_free(c->dial);
		c->dial = NULL;
		if (c->mig != NULL && c->mig->ops->connected != NULL)
			c->mig->ops->connected(c);
		return;
	}
	if (c->closing || c->draining) {
		peer_free(c);
		return;
	}
	/* Not up yet: the next address, or the reason of the last. */
	if (c->dial != NULL) {
		dial_failed(c->dial, what);
		return;
	}
	tls_bev_error(bev, tlserr, sizeof(tlserr));
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "time-out");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by peer");
	else if (tlserr[0] != '\0')
		snprintf(why, sizeof(why), "TLS: %s", tlserr);
	else
		snprintf(why, sizeof(why), "%s", EVUTIL_SOCKET_ERROR() ?
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()) : "connection error");
	peer_lost(c, why);
}

static void
peer_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct timeval tv = { D->conf.handshake_timeout, 0 };
	char addr[64] = "?", host[INET6_ADDRSTRLEN] = "?";
	struct bufferevent *bev;
	struct pconn *c;
	int one = 1;
	const struct in6_addr *a6 = &((struct sockaddr_in6 *)sa)->sin6_addr;
	int v6 = sa->sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(a6);

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (v6)
		inet_ntop(AF_INET6, a6, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)	/* IPv4 on a [::] listener */
		inet_ntop(AF_INET, &a6->s6_addr[12], host, sizeof(host));
	/* IPv6 in brackets, as HOST:PORT is written everywhere else. */
	snprintf(addr, sizeof(addr), v6 ? "[%s]:%u" : "%s:%u", host,
	    ntohs(((struct sockaddr_in *)sa)->sin_port));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((bev = tls_bev_accept(tls_server, fd)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	if ((c = peer_new(bev, addr)) == NULL) {
		bufferevent_free(bev);
		return;
	}
	/* A peer that connects and says nothing is dropped. */
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	log_debug("peer %s: connected", addr);
}

static void
peer_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
peer_accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	log_warnx("peer_listen: accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE) {
		/* Back off: stop accepting for a second. */
		struct timeval tv = { 1, 0 };

		evconnlistener_disable(l);
		event_base_once(D->base, -1, EV_TIMEOUT, peer_accept_resume_cb, l, &tv);
	}
}

int
peer_listen(const char *hostport, peer_hello_fn hello)
{
	struct sockaddr_storage ss;
	int sslen;

	if (parse_hostport(hostport, &ss, &sslen) < 0) {
		log_warnx("%s: bad address %s (want IP:PORT)", __func__, hostport);
		return -1;
	}
	hello_fn = hello;
	listener = evconnlistener_new_bind(D->base, peer_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64,
	    (struct sockaddr *)&ss, sslen);
	if (listener == NULL) {
		log_warn("%s: %s", __func__, hostport);
		return -1;
	}
	evconnlistener_set_error_cb(listener, peer_accept_error_cb);
	return 0;
}

void
peer_listen_stop(void)
{
	if (listener != NULL)
		evconnlistener_free(listener);
	listener = NULL;
}

/* dial.c begins a try on bev (the first, or a new one per address). */
static void
peer_dial_attempt(void *arg, struct bufferevent *bev, const char *addr)
{
	struct pconn *c = arg;
	struct timeval tv = { D->conf.handshake_timeout, 0 };

	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (c->bev != NULL && c->bev != bev)
		bufferevent_free(c->bev);
	c->bev = bev;
	bufferevent_setcb(bev, peer_read_cb, peer_write_cb, peer_event_cb, c);
	/* Connect and handshake within handshake_timeout (peer_live then
	 * takes over); an address that never answers is given up on. */
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Every address failed: the connection is lost (peer_free frees the dial). */
static void
peer_dial_lost(void *arg, const char *why)
{
	peer_lost(arg, why);
}

static const struct dial_ops peer_dial_ops = {
	.attempt = peer_dial_attempt,
	.lost = peer_dial_lost,
};

const char *
peer_connect_error(void)
{
	return dial_last_error();
}

struct pconn *
peer_connect(struct migration *m, const char *hostport, int channel)
{
	return peer_connect_at(m, hostport, NULL, channel);
}

struct pconn *
peer_connect_at(struct migration *m, const char *hostport, const char *at, int channel)
{
	return peer_connect_stream(m, hostport, at, channel, 0);
}

struct pconn *
peer_connect_stream(struct migration *m, const char *hostport, const char *at, int channel,
    uint32_t stream)
{
	char host[128], why[100];
	struct bufferevent *bev;
	struct pconn *c;
	unsigned port;

	if (split_hostport(hostport, host, sizeof(host), &port, why, sizeof(why)) < 0) {
		/* dial_start says why */
		host[0] = '\0';
	}
	if ((bev = tls_bev_connect(tls_client, host)) == NULL)
		return NULL;
	if ((c = peer_new(bev, hostport)) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->stream = stream;
	peer_bind(c, m, channel);
	if ((c->dial = dial_start(hostport, at, tls_client, bev, &peer_dial_ops, c)) == NULL) {
		peer_close(c, 0);
		return NULL;
	}
	return c;
}
