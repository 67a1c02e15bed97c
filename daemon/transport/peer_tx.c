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
#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer_tx.h"
#include "pool.h"
#include "tls.h"

struct peer_tx {
	uint8_t			*buf;	/* PEER_TX_STAGE bytes */
	size_t			 len;
	struct bufferevent	*bev;	/* while staging */
	ssize_t			 r;	/* the job's result */
	char			 why[160];
};

struct peer_tx *
peer_tx_new(void)
{
	struct peer_tx *tx;

	if ((tx = calloc(1, sizeof(*tx))) == NULL)
		return NULL;
	if ((tx->buf = malloc(PEER_TX_STAGE)) == NULL) {
		free(tx);
		return NULL;
	}
	return tx;
}

void
peer_tx_free(struct peer_tx *tx)
{
	if (tx == NULL)
		return;
	free(tx->buf);
	free(tx);
}

int
peer_tx_begin(struct peer_tx *tx, struct bufferevent *bev)
{
	if (bufferevent_openssl_get_ssl(bev) == NULL ||
	    evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return 0;
	tx->len = 0;
	tx->bev = bev;
	return 1;
}

int
peer_tx_staging(const struct peer_tx *tx)
{
	return tx != NULL && tx->bev != NULL;
}

size_t
peer_tx_len(const struct peer_tx *tx)
{
	return peer_tx_staging(tx) ? tx->len : 0;
}

uint8_t *
peer_tx_reserve(struct peer_tx *tx, size_t n)
{
	uint8_t *p = tx->buf + tx->len;

	if (n > PEER_TX_STAGE - tx->len)
		return NULL;
	tx->len += n;
	return p;
}

const char *
peer_tx_why(const struct peer_tx *tx)
{
	return tx->why;
}

static void
tx_job(void *arg, unsigned j, unsigned t)
{
	struct peer_tx *tx = ((struct peer_tx **)arg)[j];

	(void)t;
	tx->r = tls_bev_write(tx->bev, tx->buf, tx->len, tx->why, sizeof(tx->why));
}

int
peer_tx_flush(struct pool *p, struct peer_tx **txs, unsigned n, unsigned *blocked,
    unsigned *failed)
{
	struct peer_tx *run[MIG_STREAMS_MAX];
	unsigned nrun = 0, idx[MIG_STREAMS_MAX];
	int rc;

	for (unsigned k = 0; k < n && k < MIG_STREAMS_MAX; k++)
		if (txs[k]->len > 0) {
			idx[nrun] = k;
			run[nrun++] = txs[k];
		}
	pool_run(p, tx_job, run, nrun);
	rc = (int)nrun;
	for (unsigned k = 0; k < nrun; k++) {
		struct peer_tx *tx = run[k];
		struct evbuffer *out = bufferevent_get_output(tx->bev);

		/* OpenSSL takes the retry only as long as the first write at
		 * least: the stage must be the output's first chunk whole. */
		if (tx->r == TLS_WR_BLOCKED && (evbuffer_add(out, tx->buf, tx->len) != 0 ||
		    evbuffer_pullup(out, (ev_ssize_t)tx->len) == NULL)) {
			tx->r = TLS_RD_ERROR;
			snprintf(tx->why, sizeof(tx->why), "out of memory for its output");
		}
		*blocked += tx->r == TLS_WR_BLOCKED;
		if (tx->r < 0 && tx->r != TLS_WR_BLOCKED && rc >= 0) {
			*failed = idx[k];
			rc = -1;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		txs[k]->len = 0;
		txs[k]->bev = NULL;
	}
	return rc;
}
