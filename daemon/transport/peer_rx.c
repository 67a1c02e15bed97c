/*
 * peer_rx: background page frames read straight into place. For a raw
 * PAGES frame on a background channel whose header peer.c has checked, the
 * role says where each payload byte goes (m->ops->rx_where: a staging
 * buffer the install ioctl copies from, or in minor mode guest RAM's page
 * cache itself), and the payload is read there: first what the
 * bufferevent already holds of it, then, with the bufferevent's reading
 * disabled, straight from the TLS session (tls_bev_read, on our own event
 * on the socket) until the frame is whole. Then the frame goes to
 * m->ops->frame like any other. Reading stays here, header by header, as
 * long as page frames follow (zero and poisoned pages, a header alone, and
 * compressed runs, into the staging buffer, are read here too); the first
 * other frame (a message) gives reading back to the bufferevent: its header and
 * what OpenSSL decrypted beyond it go into the bufferevent's input, which
 * peer.c reads as usual. The handshake and every write stay with the
 * bufferevent.
 *
 * A peer that stops in the middle of a payload for the liveness time
 * (ops->stall_ms), closes, or breaks TLS loses that connection only, with
 * the reason; the role drops what of the frame had landed (rx_end).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "peer_rx.h"
#include "tls.h"
#include "util.h"

struct peer_rx {
	struct pconn		*c;
	const struct peer_rx_ops *ops;
	const struct frame_limits *lim;	/* c's */
	struct bufferevent	*bev;
	struct migration	*m;	/* while reading for it */
	struct event		*ev;	/* the socket, while reading here */
	struct event		*ev_more; /* the next slice (zero time-out) */
	struct frame_hdr	 h;	/* the frame whose payload is read */
	uint8_t			 hb[FRAME_HDR_LEN]; /* the next header */
	unsigned		 hoff;	/* bytes of it in (FRAME_HDR_LEN: payload) */
	uint8_t			*staging;
	uint32_t		 off;	/* payload bytes in */
	short			 wait;	/* EV_READ, or EV_WRITE for a key update */
	int			 timed;	/* the wait has the stall time-out */
	int			 reading; /* bufferevent reading disabled: ours */
};

static void rx_cb(evutil_socket_t fd, short what, void *arg);
static void rx_more_cb(evutil_socket_t fd, short what, void *arg);

struct peer_rx *
peer_rx_new(struct pconn *c, const struct frame_limits *lim, const struct peer_rx_ops *ops)
{
	struct peer_rx *rx;

	if ((rx = calloc(1, sizeof(*rx))) == NULL)
		return NULL;
	rx->c = c;
	rx->ops = ops;
	rx->lim = lim;
	if ((rx->ev_more = evtimer_new(D->base, rx_more_cb, rx)) == NULL ||
	    (rx->ev = event_new(D->base, -1, 0, rx_cb, rx)) == NULL) {
		peer_rx_free(rx);
		return NULL;
	}
	event_priority_set(rx->ev_more, MIG_PRI_BULK);
	return rx;
}

void
peer_rx_free(struct peer_rx *rx)
{
	if (rx == NULL)
		return;
	if (rx->ev != NULL)
		event_free(rx->ev);
	if (rx->ev_more != NULL)
		event_free(rx->ev_more);
	free(rx);
}

/* In the middle of a frame: silence there is a stalled peer. */
static int
rx_mid_frame(const struct peer_rx *rx)
{
	return rx->hoff > 0;
}

/*
 * Waits for the socket (`what`): in the middle of a frame for the stall
 * time at most, counted from the last progress; between frames as long as
 * the peer likes (the urgent channel's heartbeat watches the link).
 */
static void
rx_wait(struct peer_rx *rx, short what, int progress)
{
	struct timeval tv = { rx->ops->stall_ms / 1000, (rx->ops->stall_ms % 1000) * 1000 };
	int timed = rx_mid_frame(rx);

	if (rx->wait == what && rx->timed == timed && !(timed && progress))
		return;
	if (rx->wait != what) {
		event_del(rx->ev);
		event_assign(rx->ev, D->base, bufferevent_getfd(rx->bev), what | EV_PERSIST,
		    rx_cb, rx);
		event_priority_set(rx->ev, MIG_PRI_BULK);
		rx->wait = what;
	}
	rx->timed = timed;
	event_add(rx->ev, timed ? &tv : NULL);
}

/*
 * Reading goes back to the bufferevent: what OpenSSL decrypted and the
 * socket will not show again (the rest of its last record) goes into the
 * bufferevent's input first.
 */
static void
rx_release(struct peer_rx *rx)
{
	struct evbuffer *in = bufferevent_get_input(rx->bev);
	struct evbuffer_iovec v;
	char why[160];
	size_t n;
	ssize_t r;

	event_del(rx->ev);
	evtimer_del(rx->ev_more);
	rx->wait = 0;
	if (!rx->reading)
		return;
	rx->reading = 0;
	tls_bev_read_ahead(rx->bev, 0);	/* what it read ahead is drained next */
	while ((n = tls_bev_pending(rx->bev)) > 0 &&
	    evbuffer_reserve_space(in, (ev_ssize_t)n, &v, 1) == 1 &&
	    (r = tls_bev_read(rx->bev, v.iov_base, n, why, sizeof(why))) > 0) {
		v.iov_len = (size_t)r;
		evbuffer_commit_space(in, &v, 1);
	}
	bufferevent_enable(rx->bev, EV_READ);
}

static void
rx_fail(struct peer_rx *rx, const char *why)
{
	rx_release(rx);
	rx->ops->lost(rx->c, why);	/* peer_rx_stop and _free follow */
}

/* The payload is whole: the frame goes to the role. 0, or -1 if c is gone. */
static int
rx_finish(struct peer_rx *rx)
{
	struct migration *m = rx->m;
	struct frame_hdr h = rx->h;
	uint32_t len;

	rx->hoff = 0;
	(void)m->ops->rx_where(rx->c, h.len, &len);	/* all in */
	m->st.bytes_received += FRAME_HDR_LEN + h.len;
	if (m->ops->frame(rx->c, &h, rx->staging) < 0)
		return -1;	/* c, and rx with it, are gone */
	if (rx->m != NULL)	/* not stopped by the handler */
		m->ops->rx_end(rx->c);
	return 0;
}

/* Whether `h` is read here: a page frame its role takes this way. */
static int
rx_begin(struct peer_rx *rx, struct migration *m, const struct frame_hdr *h)
{
	if (m->ops->rx_begin == NULL || h->type != FRAME_PAGES ||
	    m->ops->rx_begin(rx->c, h, &rx->staging) != 0)
		return 0;
	rx->m = m;
	rx->h = *h;
	rx->hoff = FRAME_HDR_LEN;
	rx->off = 0;
	return 1;
}

/*
 * A header read here. A page frame goes on here; anything else
 * (or a header peer.c will refuse with the reason) goes back to the
 * bufferevent with the reading. 1 if it went back.
 */
static int
rx_header(struct peer_rx *rx)
{
	struct frame_hdr h;

	if (frame_decode(rx->hb, FRAME_HDR_LEN, rx->lim, &h) == 1 && rx_begin(rx, rx->m, &h))
		return 0;
	evbuffer_add(bufferevent_get_input(rx->bev), rx->hb, FRAME_HDR_LEN);
	rx->hoff = 0;
	rx_release(rx);
	rx->m = NULL;
	return 1;
}

/*
 * Reads frames on from the TLS session, one bulk slice at most. 1: waiting
 * (socket or next slice); 2: reading went back to the bufferevent; -1: the
 * connection is gone.
 */
static int
rx_read(struct peer_rx *rx)
{
	static const struct timeval now = { 0, 0 };
	int64_t t0 = now_ns(), t_check = t0;
	int progress = 0;
	char why[200], err[160];
	uint32_t len;
	uint8_t *dst;
	ssize_t n;

	for (;;) {
		if (rx->m == NULL)
			return 2;	/* stopped by a frame's handler */
		if (rx->ops->turn_over(rx->m, t0, &t_check)) {
			evtimer_add(rx->ev_more, &now);
			rx_wait(rx, rx->wait != 0 ? rx->wait : EV_READ, progress);
			return 1;
		}
		if (rx->hoff < FRAME_HDR_LEN) {
			dst = rx->hb + rx->hoff;
			len = FRAME_HDR_LEN - rx->hoff;
		} else {
			dst = rx->m->ops->rx_where(rx->c, rx->off, &len);
			if (len > rx->h.len - rx->off)
				len = rx->h.len - rx->off;
		}
		err[0] = '\0';
		n = tls_bev_read(rx->bev, dst, len, err, sizeof(err));
		if (n > 0) {
			progress = 1;
			if (rx->hoff < FRAME_HDR_LEN) {
				rx->hoff += (unsigned)n;
				if (rx->hoff == FRAME_HDR_LEN && rx_header(rx))
					return 2;
				/* Zero and poisoned pages: a header alone. */
				if (rx->hoff == FRAME_HDR_LEN && rx->h.len == 0 && rx_finish(rx) < 0)
					return -1;
			} else {
				rx->m->st.bytes_received_in_place += (uint64_t)n;
				if ((rx->off += (uint32_t)n) == rx->h.len && rx_finish(rx) < 0)
					return -1;
			}
			continue;
		}
		if (n == TLS_RD_WANT_READ || n == TLS_RD_WANT_WRITE) {
			rx_wait(rx, n == TLS_RD_WANT_READ ? EV_READ : EV_WRITE, progress);
			return 1;
		}
		if (n == 0 && !rx_mid_frame(rx))
			snprintf(why, sizeof(why), "connection closed by peer");
		else if (rx->hoff < FRAME_HDR_LEN)
			snprintf(why, sizeof(why), "%s in a frame header (%u of %u bytes)",
			    n == 0 ? "connection closed by peer" : err, rx->hoff, FRAME_HDR_LEN);
		else
			snprintf(why, sizeof(why), "%s %u bytes into a %u-byte page frame",
			    n == 0 ? "connection closed by peer" : err, rx->off, rx->h.len);
		rx_fail(rx, why);
		return -1;
	}
}

static void
rx_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_rx *rx = arg;
	char why[200];

	if (what & EV_TIMEOUT) {
		if (rx->hoff < FRAME_HDR_LEN)
			snprintf(why, sizeof(why), "background stream stalled: %u of a %u-byte "
			    "frame header, then nothing for %d ms", rx->hoff, FRAME_HDR_LEN,
			    rx->ops->stall_ms);
		else
			snprintf(why, sizeof(why), "background stream stalled: %u of a %u-byte "
			    "page frame, then nothing for %d ms", rx->off, rx->h.len,
			    rx->ops->stall_ms);
		rx_fail(rx, why);
		return;
	}
	evtimer_del(rx->ev_more);
	if (rx_read(rx) == 2)
		rx->ops->more(rx->c);	/* what the bufferevent holds now */
}

static void
rx_more_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_rx *rx = arg;

	if (rx_read(rx) == 2)
		rx->ops->more(rx->c);
}

int
peer_rx_take(struct peer_rx *rx, struct bufferevent *bev, struct migration *m,
    const struct frame_hdr *h)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t len;
	size_t got;
	uint8_t *dst;

	if (rx == NULL || rx->reading || !rx_begin(rx, m, h))
		return 0;
	rx->bev = bev;
	evbuffer_drain(in, FRAME_HDR_LEN);
	/* What the bufferevent already read of it comes first. */
	while (rx->off < h->len && evbuffer_get_length(in) > 0) {
		dst = m->ops->rx_where(rx->c, rx->off, &len);
		if (len > h->len - rx->off)
			len = h->len - rx->off;
		got = evbuffer_get_length(in) < len ? evbuffer_get_length(in) : len;
		evbuffer_remove(in, dst, got);
		rx->off += (uint32_t)got;
	}
	if (rx->off == h->len) {
		if (rx_finish(rx) < 0)
			return 1;
		/* More frames buffered (or stopped by the handler): peer.c's. */
		if (rx->m == NULL || evbuffer_get_length(in) > 0) {
			rx->m = NULL;
			return 2;
		}
	}
	/* The bufferevent holds nothing more: reading is ours from here. */
	bufferevent_disable(bev, EV_READ);
	tls_bev_read_ahead(bev, 1);
	rx->reading = 1;
	if (rx_read(rx) == 2)
		rx->ops->more(rx->c);
	return 1;
}

void
peer_rx_stop(struct peer_rx *rx, struct migration *m)
{
	if (rx == NULL || rx->m == NULL || rx->m != m)
		return;
	rx_release(rx);
	rx->m = NULL;
	rx->hoff = 0;
	m->ops->rx_end(rx->c);	/* a frame half read: dropped */
}
