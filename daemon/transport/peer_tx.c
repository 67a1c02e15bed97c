/*
 * peer_tx: several background streams' TLS writes at once (peer_tx.h).
 * A stage is a plain buffer of frames, whole and in order. The flush hands
 * each stage to one job of the pool: the job writes it with one SSL_write
 * (tls_bev_write) to the stream's own session and socket, which no other
 * thread touches meanwhile (the loop thread waits in pool_run, running
 * jobs of other streams). If the socket is full, OpenSSL keeps the records
 * it had sent, and the same bytes must be presented again: the loop thread
 * adds the whole stage to the bufferevent's output, whose first chunk it
 * becomes (the output was empty when staging began), and libevent's writer
 * goes on with it as with any write it had to retry.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer_tx.h"
#include "pool.h"
#include "tls.h"

struct peer_tx {
	uint8_t		*buf;	/* PEER_TX_STAGE bytes */
	size_t		 len;
	int		 on;	/* staging */
	ssize_t		 r;	/* the job's result */
	char		 why[160];
};

int
peer_tx_staging(const struct pconn *c)
{
	return c->tx != NULL && c->tx->on;
}

size_t
peer_queued(const struct pconn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (peer_tx_staging(c) ? c->tx->len : 0);
}

int
peer_tx_alloc(struct pconn *c)
{
	if (c->tx != NULL)
		return 0;
	if ((c->tx = calloc(1, sizeof(*c->tx))) == NULL)
		return -1;
	if ((c->tx->buf = malloc(PEER_TX_STAGE)) == NULL) {
		free(c->tx);
		c->tx = NULL;
		return -1;
	}
	return 0;
}

int
peer_tx_begin(struct pconn *c)
{
	if (c->closing || c->rl_cfg != NULL || c->rl_grouped ||
	    bufferevent_openssl_get_ssl(c->bev) == NULL ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return 0;
	if (c->tx == NULL && peer_tx_alloc(c) < 0)
		return 0;
	c->tx->len = 0;
	c->tx->on = 1;
	return 1;
}

int
peer_tx_add(struct pconn *c, const struct frame_hdr *h, const void *payload)
{
	struct peer_tx *tx = c->tx;

	if (FRAME_HDR_LEN + h->len > PEER_TX_STAGE - tx->len) {
		log_warnx("%s: %s: a frame of %u bytes past its stage", __func__, c->addr,
		    h->len);
		return -1;
	}
	frame_encode(h, tx->buf + tx->len);
	if (h->len > 0)
		memcpy(tx->buf + tx->len + FRAME_HDR_LEN, payload, h->len);
	tx->len += FRAME_HDR_LEN + h->len;
	return 0;
}

static void
tx_job(void *arg, unsigned j, unsigned t)
{
	struct pconn *c = ((struct pconn **)arg)[j];
	struct peer_tx *tx = c->tx;

	(void)t;
	tx->r = tls_bev_write(c->bev, tx->buf, tx->len, tx->why, sizeof(tx->why));
}

int
peer_tx_flush(struct pool *p, struct pconn **cs, unsigned n,
    void (*lost)(struct pconn *c, const char *why), unsigned *blocked)
{
	struct pconn *run[MIG_STREAMS_MAX], *failed = NULL;
	unsigned nrun = 0;

	for (unsigned k = 0; k < n; k++) {
		cs[k]->tx->on = 0;
		if (cs[k]->tx->len > 0 && nrun < MIG_STREAMS_MAX)
			run[nrun++] = cs[k];
		else if (cs[k]->tx->len > 0)	/* not from this daemon's callers */
			log_warnx("%s: more than %u streams", __func__, MIG_STREAMS_MAX);
	}
	pool_run(p, tx_job, run, nrun);
	for (unsigned k = 0; k < nrun; k++) {
		struct pconn *c = run[k];
		struct peer_tx *tx = c->tx;
		struct evbuffer *out;

		/* OpenSSL takes the retry only as long as the first write at
		 * least: the stage must be the output's first chunk whole. */
		if (tx->r == TLS_WR_BLOCKED &&
		    (evbuffer_add(out = bufferevent_get_output(c->bev), tx->buf, tx->len) != 0 ||
		    evbuffer_pullup(out, (ev_ssize_t)tx->len) == NULL)) {
			tx->r = TLS_RD_ERROR;
			snprintf(tx->why, sizeof(tx->why), "out of memory for its output");
		}
		*blocked += tx->r == TLS_WR_BLOCKED;
		if (tx->r < 0 && tx->r != TLS_WR_BLOCKED && failed == NULL)
			failed = c;
		tx->len = 0;
	}
	if (failed == NULL)
		return (int)nrun;
	lost(failed, failed->tx->why);
	peer_close(failed, 0);	/* as peer.c does after a lost channel */
	return -1;
}

void
peer_tx_free(struct pconn *c)
{
	if (c->tx == NULL)
		return;
	free(c->tx->buf);
	free(c->tx);
	c->tx = NULL;
}
