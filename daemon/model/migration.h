/*
 * migration.h: the migration model, the layer every role and the API build
 * on. A migration is a shared core (identity, state, its channels and VM as
 * opaque pointers), one stats block, and the role's own state (struct
 * mig_src / struct mig_dst, defined by the role files, opaque here). The
 * state is an internal enum; protobuf appears only at the API and record
 * edges (api/view.c). State changes and new figures reach records, the
 * control API and metrics through observers they register (mig_observe),
 * never by calls up. The transports dispatch to the role through `ops`.
 * Loop thread only.
 */
#ifndef MIG_MIGRATION_H
#define MIG_MIGRATION_H

#include <event2/event.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "frame.h"
#include "config.h"
#include "hist.h"

#define MIG_PEER_VERSION	1
#define MIG_FRAME_MAX_PAGES	16	/* 4 KiB pages per PAGES frame */
#define MIG_FRAME_MAX_BYTES	(2u << 20)	/* and never more bytes than this */
#define MIG_HUGE_PAGE		(2u << 20)	/* hugetlbfs-backed VMs move these */
#define MIG_MSG_MAX		(8u << 20)	/* largest control message (state blob) */
#define MIG_VMM_SECRET		32	/* bytes of a VMM's re-attach secret */

enum mig_role { MIG_SOURCE = 1, MIG_DEST = 2 };

enum mig_state {
	MIG_PREPARED = 1,	/* destination: waiting for the source and its token */
	MIG_CONNECTING,		/* authenticating; nothing ran at the destination */
	MIG_BLACKOUT,		/* VM paused at the source, state in flight */
	MIG_POSTCOPY,		/* VM runs at the destination, pages follow */
	MIG_COMPLETED,
	MIG_PAUSED,		/* post-copy interrupted; both sides keep their state */
	MIG_FAILED,		/* ended before the destination ran: VM runs at the source */
	MIG_CANCELLED,
	MIG_PRECOPY,		/* source VM runs; its RAM streams in rounds (pre-copy) */
};

/* The figures of one migration: what the API reports and records keep. */
struct mig_stats {
	uint64_t	 pages_demand, pages_background, pages_zero;
	uint64_t	 pages_installed, install_eexist, install_errors;
	uint64_t	 pages_poisoned, pages_duplicate, demand_faults;
	uint64_t	 bytes_sent, bytes_received;
	uint64_t	 prefetch_pages, prefetch_hits;
	uint64_t	 ring_faults, ring_errors;
	uint32_t	 reconnects;		/* resumed after a lost link */
	double		 blackout_ms;
	double		 postcopy_s;	/* POSTCOPY first entered until the end */
	/* pre-copy (role/precopy.c; the destination counts the last two) */
	uint32_t	 precopy_rounds;
	double		 dirty_pages_per_s;	/* last round */
	uint64_t	 precopy_remaining_bytes, projected_postcopy_bytes;
	uint64_t	 pages_precopy, pages_invalidated;
	uint64_t	 max_bandwidth_bits_per_s;	/* source: this migration's cap */
	double		 background_bits_per_s;		/* source: measured */
	uint64_t	 pages_hot_first;	/* source: post-copy sent these first */
	/* source: background page runs raw, and on the wire (role/compress.c) */
	uint64_t	 compress_bytes_before, compress_bytes_after;
	uint32_t	 compressing;		/* source: compressing now */
	uint32_t	 streams;		/* background streams in use (source:
						   min(wanted, the peer's max)) */
	uint32_t	 streams_wanted;	/* source: asked for ([peer] streams) */
	uint64_t	 bytes_received_in_place; /* destination: payload read into place */
	struct hist	 lat;			/* demand faults, request to installed */
};

struct migration;
struct pconn;
struct vm;

/*
 * A dirty set from the source VMM's shim (proto/shim.proto Dirty): pages
 * written since the last scan, as (first, count) pairs, or `all`. `ok` 0:
 * tracking failed or is not available, `error` says why.
 */
struct mig_dirty {
	int		 ok, all;
	const char	*error, *method;
	const uint64_t	*ranges;	/* 2 * nranges values */
	size_t		 nranges;
	uint64_t	 scan_ns;
};

/*
 * What a role does when its transports have news. The peer transport calls
 * frame/conn_lost/connected/bulk/fault_fds, the VMM transport
 * vm_state/vm_running/reattach/vm_gone; the session calls release. NULL: the role
 * has nothing to do for it.
 */
struct mig_ops {
	const char *name;	/* "source" / "destination" */
	/* A whole frame on one of m's channels. -1 once `c` is closed. */
	int	(*frame)(struct pconn *c, const struct frame_hdr *h, const uint8_t *payload);
	/* `c` failed or ended; the caller frees it afterwards. */
	void	(*conn_lost)(struct pconn *c, const char *why);
	/* A channel this side dialled is connected. */
	void	(*connected)(struct pconn *c);
	/* The bulk channel may take more output (or it is its turn again). */
	void	(*bulk)(struct pconn *c);
	/* Fault-path fds besides the urgent channel (for bulk turn-over). */
	int	(*fault_fds)(struct migration *m, struct pollfd *p, int max);
	/* The paused VM's state, and (pre-copy) the final dirty set. */
	void	(*vm_state)(struct migration *m, const void *blob, size_t len,
	    const struct mig_dirty *final);
	/* The VMM's answer to a dirty-tracking request (vm_send_track). */
	void	(*dirty)(struct migration *m, const struct mig_dirty *d);
	void	(*vm_running)(struct migration *m);
	/* Its VMM attached again after a daemon restart (m->vm is set). */
	void	(*reattach)(struct migration *m);
	/* Its VMM's connection closed while m is active (m->vm still set). */
	void	(*vm_gone)(struct migration *m, const char *why);
	/* Frees the role's running state (the record stays). */
	void	(*release)(struct migration *m);
	/*
	 * Background page frames read straight into place (transport/peer_rx.c),
	 * not through the bufferevent's buffer. rx_begin: for a raw PAGES frame
	 * on the background channel whose header was checked, 0 with *staging
	 * (h->len bytes) if the role takes its payload this way, 1 if not.
	 * rx_where: where payload bytes from `off` on go (*len: how many fit
	 * there in one piece). Once the payload is in, `frame` gets the frame
	 * with *staging as its payload. rx_end: the frame was handled or
	 * abandoned; the role settles what of it is still in flight.
	 */
	int	(*rx_begin)(struct pconn *c, const struct frame_hdr *h, uint8_t **staging);
	uint8_t *(*rx_where)(struct pconn *c, uint32_t off, uint32_t *len);
	void	(*rx_end)(struct pconn *c);
};

/*
 * The VMM a migration's VM belongs to: the secret handed to it at its first
 * attach and its SO_PEERCRED then. Kept in the record, so that after a
 * restart the VM goes back only to that VMM (transport/vm.c).
 */
struct mig_vmm {
	int		 known;		/* 0: a record of an older daemon */
	uint8_t		 secret[MIG_VMM_SECRET];
	uint32_t	 uid, gid;
	int32_t		 pid;
};

struct mig_src;		/* role/source.h */
struct mig_dst;		/* role/dest.h */
struct cz;		/* role/compress.c */

struct migration {
	TAILQ_ENTRY(migration)	 entry;
	char			 id[32];
	uint32_t		 num;		/* this run's number: USDT/BPF `mig` */
	int			 lat_slot;	/* eBPF histogram slot (lat_begin), or -1 */
	char			 vm_name[128];
	struct vm		*vm;
	enum mig_role		 role;
	enum mig_state		 state;
	const struct mig_ops	*ops;
	char			 peer[128];	/* source: as given (a name or
						   literal); destination: IP:PORT */
	char			 peer_addr[64];	/* source: the address dialled last */
	char			 src_ident[256]; /* certificate subjects (RFC 2253), */
	char			 dst_ident[256]; /* "" with TLS off */
	char			 from[256];	/* destination: the only source
						   identity allowed ("": any) */
	char			 token[65];	/* destination: its one-time token
						   (hex); empty once presented */
	char			 reason[256];
	uint64_t		 ram_bytes;
	uint64_t		 npages;
	uint32_t		 page_size;
	char			 fault_path[8];	/* "uffd" / "ring", from the VMM */
	char			 install_mode[8]; /* "copy" / "minor", from the VMM */
	char			 precopy[24];	/* source: the pre-copy policy as given */
	char			 dirty_tracking[160]; /* source: the VMM's method, or why none */
	char			 compression[16];	/* source: auto, on, off, off (peer) */
	char			 verdict[256];	/* the guest's own report */
	int			 verdict_ok;

	struct pconn		*urgent;
	struct pconn		*bg;		/* background stream 0 */
	struct pconn		*bg_more[MIG_STREAMS_MAX - 1]; /* streams 1.. */
	uint8_t			 session_key[16];
	struct event		*ev_ping;	/* heartbeat while connected */
	int			 state_sent;	/* VmState is on the wire (source) */
	int			 resume_on_attach; /* source VMM paused, nothing sent */
	int			 never_ran;	/* destination: its VM state never arrived */
	struct mig_vmm		 vmm;		/* whose VM it is */

	int64_t			 started_ms, ended_ms;
	int64_t			 started_ns;
	double			 total_s;
	int64_t			 postcopy_ns;	/* first entered POSTCOPY (0: never) */
	struct mig_stats	 st;

	struct mig_src		*src;		/* source role's state, or NULL */
	struct mig_dst		*dst;		/* destination role's state, or NULL */
	struct cz		*cz;		/* zstd state (role/compress.c), or NULL */
};
TAILQ_HEAD(mig_list, migration);

/* Every migration record of this daemon run, oldest first. */
extern struct mig_list mig_all;

/*
 * Observers of every migration: MIG_EV_STATE after a state change (`prev`
 * is the old state), MIG_EV_SAVE when figures, reason or verdict changed
 * and should be kept, MIG_EV_FORGET just before an expired record is freed
 * (drop every pointer to it and whatever is kept of it). Registered at
 * start-up, called in order.
 */
enum mig_event { MIG_EV_STATE, MIG_EV_SAVE, MIG_EV_FORGET };
typedef void (*mig_observer_fn)(struct migration *m, enum mig_event ev,
    enum mig_state prev);
int mig_observe(mig_observer_fn fn);

/* A new record with `id` (NULL: a fresh random one), not listed yet:
 * mig_insert lists it. NULL without memory or entropy. */
struct migration *mig_alloc(const char *id, const char *vm, enum mig_role role,
    uint64_t ram_bytes, uint32_t page_size);
/* mig_alloc with a fresh id, listed. */
struct migration *mig_new(const char *vm, enum mig_role role, uint64_t ram_bytes,
    uint32_t page_size);
/* Lists m by its start time: the newest for a VM wins in mig_find. */
void mig_insert(struct migration *m);
struct migration *mig_find(const char *id_or_vm);
/* The one way a record is freed: unlisted, then freed. Only a record whose
 * role has let go of it (session_finish), or at shutdown. */
void mig_free(struct migration *m);
/*
 * Expiry of finished records (COMPLETED, FAILED, CANCELLED): beyond
 * [daemon] keep_records the oldest to finish go first, and any that
 * finished more than record_max_age ago; active ones never. Observers hear
 * MIG_EV_FORGET first. mig_expire runs one pass at `now_ms` and returns how
 * many went; mig_expiry_start runs one at once (records read at start-up)
 * and then after every finish and on a timer; mig_expiry_stop at shutdown.
 */
int mig_expire(int64_t now_ms);
int mig_expiry_start(void);
void mig_expiry_stop(void);
int mig_active(const struct migration *m);
uint32_t mig_frame_pages(const struct migration *m);
void mig_set_state(struct migration *m, enum mig_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mig_save(struct migration *m);
void mig_set_verdict(struct migration *m, int ok, const char *text);
const char *mig_state_name(enum mig_state st);
const char *mig_role_name(enum mig_role role);
/* Pages that moved, any class (progress). */
uint64_t mig_pages_moved(const struct migration *m);

#endif
