/*
 * source_streams: the background streams of a source migration (source
 * state): how many (what it wants, at most what the destination takes),
 * dialling them, each one's share of the cap, the rate measured over all of
 * them and what each carried. The page server that feeds them from one
 * shared cursor is source.c. Loop thread only.
 */
#include <stdio.h>

#include <event2/buffer.h>

#include "log.h"
#include "peer.h"
#include "peer_tx.h"
#include "source_state.h"

/* The streams this migration uses: what it wants, at most what the
 * destination takes (an older one says nothing: one). */
void
src_streams(struct migration *m, uint32_t peer_max)
{
	uint32_t want = m->st.streams_wanted ? m->st.streams_wanted : 1;
	uint32_t n = want < (peer_max ? peer_max : 1) ? want : (peer_max ? peer_max : 1);

	if (n > MIG_STREAMS_MAX)
		n = MIG_STREAMS_MAX;
	if (n < want)
		log_info("migration %s: the destination takes %u background stream%s; "
		    "using %u of the %u asked", m->id, peer_max ? peer_max : 1,
		    peer_max > 1 ? "s" : "", n, want);
	m->st.streams = n;
}

/* Kicks the background writers (m->ops->bulk: pre-copy, a new round, on
 * stream 0; post-copy, every stream). */
void
src_bg_kick(struct migration *m)
{
	for (uint32_t k = 0; k < m->st.streams; k++)
		if (*peer_bg_slot(m, k) != NULL)
			m->ops->bulk(*peer_bg_slot(m, k));
}

/* Opens the background streams to the daemon the urgent channel reached,
 * not another address. -1 if one cannot be opened. */
int
src_dial_bg(struct migration *m)
{
	m->src->bg_queued = 0;
	m->src->rate_t0 = 0;
	for (uint32_t k = 0; k < m->st.streams; k++)
		if (peer_connect_stream(m, m->peer, m->peer_addr,
		    MIGRATIOND__PEER__V1__CHANNEL__BACKGROUND, k) == NULL)
			return -1;
	return 0;
}

void
src_log_done(const struct migration *m)
{
	char by[MIG_STREAMS_MAX * 21 + 1] = "";
	size_t n = 0;

	for (uint32_t k = 0; k < m->st.streams && k < MIG_STREAMS_MAX; k++)
		n += (size_t)snprintf(by + n, sizeof(by) - n, "%s%llu", k ? " " : "",
		    (unsigned long long)m->src->stream_pages[k]);
	log_info("migration %s: completed: %llu pages on demand, %llu background, "
	    "%llu zero; pages queued by background stream: %s", m->id,
	    (unsigned long long)m->st.pages_demand, (unsigned long long)m->st.pages_background,
	    (unsigned long long)m->st.pages_zero, by);
	if (m->st.streams > 1 && m->src->tx_pool != NULL)
		log_info("migration %s: streams encrypted at once on the worker threads "
		    "%llu times; %u stages written, %u of them finished by the loop thread "
		    "(socket full)", m->id, (unsigned long long)m->src->tx_rounds,
		    m->src->tx_stages, m->src->tx_blocked);
}

uint64_t
src_stream_cap(const struct migration *m)
{
	uint32_t n = m->st.streams ? m->st.streams : 1;

	return m->st.max_bandwidth_bits_per_s / n;
}

/* The background streams' rate as status shows it beside the cap, measured
 * over windows of a second or more. */
void
src_bg_rate(struct migration *m, int64_t now)
{
	struct mig_src *s = m->src;
	uint64_t queued = 0, gone;

	for (uint32_t k = 0; k < MIG_STREAMS_MAX; k++) {
		struct pconn *c = *peer_bg_slot(m, k);

		if (c != NULL)
			queued += evbuffer_get_length(bufferevent_get_output(c->bev));
	}
	if (queued > s->bg_queued)
		return;
	gone = s->bg_queued - queued;

	if (s->rate_t0 == 0 || gone < s->rate_b0) {
		s->rate_t0 = now;
		s->rate_b0 = gone;
	} else if (now - s->rate_t0 >= 1000000000) {
		m->st.background_bits_per_s = (double)(gone - s->rate_b0) * 8e9 /
		    (double)(now - s->rate_t0);
		s->rate_t0 = now;
		s->rate_b0 = gone;
	}
}

_Static_assert(PEER_TX_HIWAT == MIG_BG_HIWAT, "a stage is what one stream may queue");

int
src_stage(struct pconn *c)
{
	/* A cap is libevent's token bucket: it must see every write. */
	if (c->closing || c->rl_cfg != NULL || c->rl_grouped)
		return 0;
	if (c->tx == NULL && (c->tx = peer_tx_new()) == NULL)
		return 0;
	return peer_tx_begin(c->tx, c->bev);
}

size_t
src_queued(const struct pconn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) + peer_tx_len(c->tx);
}
