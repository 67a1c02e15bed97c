/*
 * peer.h: connections between two migrationd hosts (peer.c). A pconn is one
 * TLS channel (urgent or background) of one migration; peer.c cuts its byte
 * stream into frames, checks each header before its payload, and hands
 * whole frames to the migration's role through m->ops. Loop thread only.
 */
#ifndef MIG_PEER_H
#define MIG_PEER_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/queue.h>

#include "frame.h"
#include "migration.h"
#include "peer.pb-c.h"

/*
 * Background bytes queued before we wait. libevent's OpenSSL bufferevent
 * encrypts all that is queued in one write event if the socket takes it, so
 * this also bounds the bulk work a demand request can wait behind at the
 * source. 64 KiB (~30 us of AES-GCM and copies here) streams as fast as
 * 256 KiB did, and a demand fault during the stream waits less: at 1
 * thread, p50 55 us and p99 200 us, against 250 us and 450 us with 256 KiB.
 */
#define MIG_BG_HIWAT		(64u << 10)
/*
 * The longest the loop works on bulk (reading background frames and
 * installing them, or reading guest RAM into background frames) before it
 * looks for faults and demand requests again: a demand page never waits
 * behind more than this much bulk work on one thread.
 */
#define MIG_BULK_SLICE_NS	100000
/*
 * Within a slice, how often bulk work looks (poll, zero time-out) whether a
 * fault or demand request is waiting, and ends its slice early if one is:
 * at both ends of a link, a demand page then waits ~10 us behind bulk, not
 * half a slice. One poll(2) per check.
 */
#define MIG_BULK_CHECK_NS	20000
#define MIG_OUT_HIWAT		(8u << 20)	/* queued to one peer before we stop reading it */
#define MIG_PING_MS		1000	/* heartbeat on the urgent channel */
#define MIG_DEAD_MS		3000	/* silence that declares the link dead */

struct peer_rx;
struct peer_tx;

/* One peer connection (urgent or background channel). */
struct pconn {
	TAILQ_ENTRY(pconn)	 entry;		/* every connection */
	struct bufferevent	*bev;
	struct migration	*mig;	/* NULL until the hello is accepted */
	int			 channel; /* Migrationd__Peer__V1__Channel */
	uint32_t		 stream;  /* background: its index, < MIG_STREAMS_MAX */
	int			 closing; /* free once output drained */
	int			 hello_sent; /* source: nothing may precede the Hello */
	int			 draining; /* migration over: discard input until EOF */
	int			 throttled; /* not reading: our output to it is full */
	struct event		*ev_more; /* bulk: go on after the loop looked
					     for faults (peer_yield) */
	char			 addr[64];	/* IP:PORT of the other end */
	struct frame_limits	 lim;
	struct dial		*dial;	/* dialled, until connected (dial.c) */
	struct ev_token_bucket_cfg *rl_cfg; /* its bandwidth cap (ratelimit.c) */
	int			 rl_grouped; /* in the daemon's rate limit group */
	struct peer_rx		*rx;	/* background: frames read into place */
	struct peer_tx		*tx;	/* background: frames staged (peer_tx.c) */
};

/*
 * The first frame of an accepted connection, a Hello: the handler binds `c`
 * to a migration (peer_bind) or refuses it (peer_refuse). 0, or -1 once `c`
 * is closed.
 */
typedef int (*peer_hello_fn)(struct pconn *c, const Migrationd__Peer__V1__Hello *h);

/* TLS contexts (NULL: plaintext) for accepted and dialled channels. */
void peer_init(SSL_CTX *server, SSL_CTX *client);
int peer_listen(const char *hostport, peer_hello_fn hello);
void peer_listen_stop(void);
/*
 * Dials `hostport` (NAME:PORT, IPV4:PORT or [IPV6]:PORT: dial.c) for
 * `channel` of `m`. NULL if it failed at once (peer_connect_error says
 * why); a later failure reaches m->ops->conn_lost with the reason in words.
 */
struct pconn *peer_connect(struct migration *m, const char *hostport, int channel);
/* The same, at address `at` (IP:PORT, [IPV6]:PORT) without resolving; the
 * certificate is still checked against hostport's name. */
struct pconn *peer_connect_at(struct migration *m, const char *hostport, const char *at,
    int channel);
/* Background stream `stream` (< MIG_STREAMS_MAX) of m at `at`. */
struct pconn *peer_connect_stream(struct migration *m, const char *hostport, const char *at,
    int channel, uint32_t stream);
const char *peer_connect_error(void);
/* Where background stream k of m is kept (0: m->bg), NULL past the last. */
struct pconn **peer_bg_slot(struct migration *m, uint32_t k);
/* 1 if `c` is one of its migration's background streams. */
int peer_is_bg(const struct pconn *c);
/* Closes (flush: after its output) every background stream of m but keep. */
void peer_bg_close(struct migration *m, const struct pconn *keep, int flush);
/* peer_drain on every background stream of m. */
void peer_bg_drain(struct migration *m);
/* `c` carries `channel` of `m` from now on (frame limits of m's VM). */
void peer_bind(struct pconn *c, struct migration *m, int channel);
/* `c` no longer belongs to its migration. */
void peer_detach(struct pconn *c);
void peer_close(struct pconn *c, int flush);
void peer_drain(struct pconn *c);
void peer_close_all(void);
/* Sends a Refuse, logs it, closes `c` after flushing. Returns -1. */
int peer_refuse(struct pconn *c, const char *reason);
/* The same, saying the migration is over here and its VM lost. */
/* Refuse a resume: that migration ended here before its VM state arrived;
 * the VM never ran here (the source resumes it). -1. */
int peer_refuse_never_ran(struct pconn *c, const char *reason);
int peer_refuse_lost(struct pconn *c, const char *reason);
int peer_send_msg(struct pconn *c, const Migrationd__Peer__V1__PeerMsg *msg);
int peer_send_frame(struct pconn *c, const struct frame_hdr *h, const void *payload);
void peer_yield(struct pconn *c);
/* 1 if m's fault path has work: urgent-channel input, and the role's fault
 * fds (m->ops->fault_fds). */
int peer_fault_ready(struct migration *m);
/* For a bulk loop whose slice began at t0: 1 when it should end (the slice
 * is used up, or, checked every MIG_BULK_CHECK_NS, the fault path has work);
 * *t_check is the last check, t0 at first. */
int peer_bulk_turn_over(struct migration *m, int64_t t0, int64_t *t_check);
void peer_live(struct pconn *c);
void peer_heartbeat(struct migration *m);
void peer_heartbeat_stop(struct migration *m);


#endif
