/*
 * migrationd.h: the daemon's shared types. One libevent loop runs every
 * part in this first version (control socket, VMM socket, peer connections,
 * uffd events); all state below belongs to that loop's thread.
 */
#ifndef MIGRATIOND_H
#define MIGRATIOND_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/queue.h>

#include "control.pb-c.h"
#include "frame.h"
#include "hist.h"
#include "peer.pb-c.h"

#define MIG_PEER_VERSION	1
#define MIG_FRAME_MAX_PAGES	16	/* 4 KiB pages per PAGES frame */
#define MIG_FRAME_MAX_BYTES	(2u << 20)	/* and never more bytes than this */
#define MIG_HUGE_PAGE		(2u << 20)	/* hugetlbfs-backed VMs move these */
#define MIG_MSG_MAX		(8u << 20)	/* largest control message (state blob) */
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
#define MIG_HANDSHAKE_SECS	10	/* default [peer] handshake_timeout */
#define MIG_OUT_HIWAT		(8u << 20)	/* queued to one peer before we stop reading it */
#define MIG_PING_MS		1000	/* heartbeat on the urgent channel */
#define MIG_DEAD_MS		3000	/* silence that declares the link dead */
#define MIG_RETRY_MIN_MS	250	/* reconnect back-off, doubling ... */
#define MIG_RETRY_MAX_MS	4000	/* ... up to this */

/*
 * Loop priorities: the fault path (uffd, ring doorbell, urgent channel) is
 * served before anything else that is ready, bulk (background) last, so a
 * demand page never waits behind a background frame on this thread.
 */
#define MIG_PRI_FAULT		0
#define MIG_PRI_CONTROL		1
#define MIG_PRI_BULK		2
#define MIG_NPRI		3

/* Prefetch window around a demand fault (pages), adapted per migration. */
#define MIG_PREFETCH_MAX	MIG_FRAME_MAX_PAGES

struct config {
	char	 path[512];
	char	 control_socket[256];
	char	 vmm_socket[256];
	char	 state_dir[256];
	char	 peer_listen[128];	/* HOST:PORT, empty: no listener */
	int	 tls;			/* 0 only for benchmarks on loopback */
	char	 tls_ca[256];
	char	 tls_cert[256];
	char	 tls_key[256];
	int	 token_ttl;		/* seconds a prepared token stays valid */
	int	 handshake_timeout;	/* seconds a new peer has to authenticate */
	int	 bpf;			/* [bpf] enabled */
	char	 metrics_listen[128];	/* [metrics] listen: IP:PORT, empty: off */
	uint64_t inject_poison[16];	/* [debug]: pages read as poisoned */
	int	 ninject_poison;
	int	 crash_minor_state;	/* [debug] crash_minor: JOURNAL_WRITING/_WRITTEN */
	unsigned crash_minor_at;	/* ... at this minor-mode install run */
	char	 control_group[64];	/* [control] group: may use the API */
	char	 control_listen[128];	/* [control] listen: IP:PORT, TLS */
};

struct migration;
struct journal;

/* A VM whose VMM attached over the VMM socket (libmigshim). */
struct vm {
	TAILQ_ENTRY(vm)	 entry;
	char		 name[128];
	int		 incoming;	/* destination role */
	uint64_t	 ram_bytes;
	uint32_t	 page_size;
	uint64_t	 npages;
	uint64_t	 ram_va;	/* guest RAM in the VMM (uffd addresses) */
	uint32_t	 vcpus;
	int		 pid;
	int		 memfd;
	int		 uffd;		/* incoming only */
	int		 ring_mode;	/* faults come through the ring */
	int		 minor;		/* install by page cache + UFFDIO_CONTINUE */
	void		*map;		/* minor mode on hugetlbfs: guest RAM
					   mapped here (no write() there) */
	void		*ring;		/* shared fault ring (vmm-shim/ring.h) */
	uint64_t	 ring_len;
	int		 ringfd;
	int		 doorbell;	/* eventfd the VMM rings after posting */
	int		 sock;		/* VMM connection, -1 once gone */
	struct event	*ev_sock;
	struct migration *mig;		/* active migration, if any */
};
TAILQ_HEAD(vm_list, vm);

/* One peer connection (urgent or background channel). */
struct pconn {
	TAILQ_ENTRY(pconn)	 entry;		/* D->conns: every connection */
	struct bufferevent	*bev;
	struct migration	*mig;	/* NULL until the hello is accepted */
	int			 channel; /* Migrationd__Peer__V1__Channel */
	int			 closing; /* free once output drained */
	int			 hello_sent; /* source: nothing may precede the Hello */
	int			 draining; /* migration over: discard input until EOF */
	int			 throttled; /* not reading: our output to it is full */
	struct event		*ev_more; /* bulk: go on after the loop looked
					     for faults (peer_yield) */
	char			 addr[64];
	struct frame_limits	 lim;
};

enum mig_role { MIG_SOURCE = 1, MIG_DEST = 2 };

struct migration {
	TAILQ_ENTRY(migration)	 entry;
	char			 id[32];
	uint32_t		 num;		/* this run's number: USDT/BPF `mig` */
	int			 lat_slot;	/* eBPF histogram slot (lat_begin), or -1 */
	char			 vm_name[128];
	struct vm		*vm;
	enum mig_role		 role;
	Migrationd__V1__MigrationState state;
	char			 peer[128];
	char			 reason[256];
	uint64_t		 ram_bytes;
	uint64_t		 npages;
	uint32_t		 page_size;

	struct pconn		*urgent;
	struct pconn		*bg;
	uint8_t			 session_key[16];

	/* destination */
	char			 token[65];	/* empty once used */
	int64_t			 token_expires_ms;
	uint64_t		*requested;	/* page asked for on urgent */
	uint64_t		*installed;	/* page present in guest RAM */
	uint64_t		*poisoned;	/* installed as poison (lazily made) */
	struct event		*ev_uffd;
	struct journal		*journal;	/* minor mode: run in flight */
	unsigned		 minor_runs;	/* minor-mode installs ([debug] crash_minor) */
	char			 fault_path[8];	/* "uffd" / "ring", from the VMM */
	char			 install_mode[8]; /* "copy" / "minor", from the VMM */
	struct event		*ev_doorbell;
	uint64_t		 ring_faults, ring_errors;
	uint32_t		 prefetch;	/* pages asked for after a fault */
	uint64_t		 last_fault_end; /* first page after the last request */
	uint64_t		 prefetch_pages, prefetch_hits;
	int64_t			 state_rx_ns;	/* VmState arrived */
	struct pending {
		uint64_t	 idx;
		uint64_t	 t0_ns;		/* first wait (request queued) */
		uint64_t	 slots;		/* ring slots waiting on it */
		uint64_t	 req_ns;	/* request sent; 0: link down */
		uint64_t	 posted_ns;	/* VMM posted it (ring); 0: uffd */
		uint32_t	 tid;		/* first faulting thread; 0: unknown */
	}			*pending;	/* demand faults in flight */
	unsigned		 npending, maxpending;
	struct hist		 lat;
	char			 verdict[256];
	int			 verdict_ok;

	struct event		*ev_ping;	/* heartbeat while connected */
	int			 resume_on_attach; /* source VMM paused, nothing sent */
	uint32_t		 reconnects;	/* resumed after a lost link */

	/* source */
	struct event		*ev_retry;	/* reconnect timer while PAUSED */
	uint32_t		 retry_ms;
	int			 resuming;	/* urgent reconnected, waiting Resync */
	int			 held;		/* paused by the operator: no reconnect */
	int			 memfd;		/* guest RAM (dup), -1 when closed */
	uint64_t		*sent;		/* page sent on either channel */
	uint64_t		 nsent;
	uint64_t		 bg_cursor;
	int			 state_sent;	/* VmState is on the wire */
	int64_t			 pause_ns;

	/* both */
	uint64_t		 pages_demand, pages_background, pages_zero;
	uint64_t		 pages_installed, install_eexist, install_errors;
	uint64_t		 pages_poisoned;
	uint64_t		 pages_duplicate, demand_faults;
	uint64_t		 bytes_sent, bytes_received;
	double			 blackout_ms;
	int64_t			 started_ms, ended_ms;
	int64_t			 started_ns;
	double			 total_s;
};
TAILQ_HEAD(mig_list, migration);

TAILQ_HEAD(pconn_list, pconn);

struct daemon {
	struct config		 conf;
	struct event_base	*base;
	struct pconn_list	 conns;
	int			 stopping;	/* loop ended: close, never flush */
	SSL_CTX			*tls_server;
	SSL_CTX			*tls_client;
	struct vm_list		 vms;
	struct mig_list		 migs;
	struct evconnlistener	*peer_listener;
	struct evconnlistener	*ctl_listener;
	int			 vmm_listen_fd;
	struct event		*ev_vmm_listen;
};

extern struct daemon *D;

/* util (main.c) */
int64_t now_ms(void);
int64_t now_ns(void);
int parse_hostport(const char *s, struct sockaddr_storage *ss, int *sslen);

/* config.c */
int config_load(struct config *c, const char *path);

/* tls.c: the only file that speaks OpenSSL. */
SSL_CTX *tls_ctx_new(const struct config *c, int server);
struct bufferevent *tls_bev_accept(SSL_CTX *ctx, int fd);
struct bufferevent *tls_bev_connect(SSL_CTX *ctx, const char *host);
const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t len);
int tls_random(void *buf, size_t len);
SSL_CTX *tls_ctx_new_h2(const struct config *c);

/* vm.c: the VMM socket and attached VMs. */
int vm_listen(const char *path);
struct vm *vm_find(const char *name);
int vm_send_pause(struct vm *v);
int vm_send_resume_local(struct vm *v, const char *reason);
int vm_send_start(struct vm *v, const void *blob, size_t len);
int vm_send_completed(struct vm *v);
int vm_send_failed(struct vm *v, const char *reason);
void vm_release(struct vm *v);

/* migration.c: records and state changes. */
struct migration *mig_new(struct vm *v, enum mig_role role);
uint32_t mig_frame_pages(const struct migration *m);
uint32_t mig_next_num(void);
struct migration *mig_find(const char *id_or_vm);
void mig_set_state(struct migration *m, Migrationd__V1__MigrationState st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mig_active(const struct migration *m);
void mig_to_proto(const struct migration *m, Migrationd__V1__Migration *out);
const char *mig_state_name(Migrationd__V1__MigrationState st);
void mig_finish(struct migration *m);

/* peer.c: connections between daemons, frames on them. */
int peer_listen(const char *hostport);
struct pconn *peer_connect(struct migration *m, const char *hostport, int channel);
void peer_close(struct pconn *c, int flush);
void peer_drain(struct pconn *c);
void peer_close_all(void);
int peer_send_msg(struct pconn *c, const Migrationd__Peer__V1__PeerMsg *msg);
int peer_send_frame(struct pconn *c, const struct frame_hdr *h, const void *payload);
void peer_set_channel(struct pconn *c, int channel);
void peer_yield(struct pconn *c);
/* 1 if m's fault path has work: urgent-channel input, and at a destination
 * a uffd event or a doorbell. */
int peer_fault_ready(struct migration *m);
/* For a bulk loop whose slice began at t0: 1 when it should end (the slice
 * is used up, or, checked every MIG_BULK_CHECK_NS, the fault path has work);
 * *t_check is the last check, t0 at first. */
int peer_bulk_turn_over(struct migration *m, int64_t t0, int64_t *t_check);
void peer_live(struct pconn *c);
void peer_heartbeat(struct migration *m);

/* source.c */
int src_start(struct vm *v, const char *dest, const char *token,
    struct migration **out, char *err, size_t errlen);
void src_connected(struct pconn *c);
int src_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload);
void src_conn_lost(struct pconn *c, const char *why);
void src_bg_writable(struct pconn *c);
void src_vm_state(struct vm *v, const void *blob, size_t len);
int src_recover(struct migration *m, const char *dest, char *err, size_t errlen);
int src_pause(struct migration *m, char *err, size_t errlen);
int src_cancel(struct migration *m, char *err, size_t errlen);
int dst_cancel(struct migration *m, char *err, size_t errlen);

/* dest.c */
int dst_prepare(struct vm *v, struct migration **out, char *err, size_t errlen);
int dst_hello(struct pconn *c, const Migrationd__Peer__V1__Hello *h);
int dst_frame(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload);
void dst_conn_lost(struct pconn *c, const char *why);
void dst_vm_running(struct vm *v);
void dst_vm_verdict(struct vm *v, int ok, const char *text);

/* record.c: migration records under the state directory. */
void rec_save(const struct migration *m);
void rec_load(void);

/* re-attach after a daemon restart */
void dst_reattach(struct migration *m);
void src_reattach(struct migration *m);

/* metrics.c: Prometheus text endpoint. */
int metrics_listen(const char *hostport);
void metrics_stop(void);

/* control.c: the gRPC control API (h2.c carries it). `fd` >= 0: a listening
 * socket from systemd, else bind `path`. */
int ctl_listen(const char *path, int fd);
void ctl_shutdown(void);
/* mig_set_state() calls this after every state change: feeds watchers. */
void ctl_mig_changed(struct migration *m, Migrationd__V1__MigrationState prev);

#endif
