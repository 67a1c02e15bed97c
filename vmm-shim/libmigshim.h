/*
 * libmigshim: the VMM side of migrationd.
 *
 * A VMM links this library to keep its guest RAM in a form migrationd can
 * migrate: one memfd (shmem) mapped MAP_SHARED. For an incoming VM the
 * library also creates a userfaultfd over the mapping (missing mode), so every
 * guest access to a page that has not arrived yet blocks until migrationd
 * installs it. migshim_attach() hands the memfd (and the uffd) to the local
 * migrationd over its Unix socket with SCM_RIGHTS; the library keeps its own
 * copies of every fd so the guest survives a daemon restart.
 *
 * After attaching, the VMM polls migshim_fd() for readability and calls
 * migshim_next_event(): the daemon asks a source VMM to pause and hand over
 * its vCPU/device state (an opaque blob, migshim_send_state()), gives an
 * incoming VMM that blob to resume from (answer with migshim_report_running()
 * once the vCPUs run), and says when the migration completed or failed.
 *
 * Thread safety: one thread (the VMM's control thread) calls these functions;
 * guest RAM itself may be touched by any thread.
 */
#ifndef LIBMIGSHIM_H
#define LIBMIGSHIM_H

#include <stddef.h>
#include <stdint.h>

struct migshim;

enum migshim_role {
	MIGSHIM_SOURCE = 0,	/* VM runs here now and may migrate away */
	MIGSHIM_INCOMING = 1,	/* empty VM waiting for an incoming migration */
};

/*
 * Creates guest RAM for VM `name`: a memfd of `ram_size` bytes (a multiple of
 * the page size), mapped read/write MAP_SHARED. With MIGSHIM_INCOMING the
 * mapping is also registered with a new userfaultfd in missing mode; no page
 * of it may be touched before the migration starts (it would block).
 * Returns NULL with errno set and a message on stderr on failure.
 * The caller owns the result; free it with migshim_destroy().
 */
struct migshim *migshim_create(const char *name, uint64_t ram_size,
    enum migshim_role role);

/* Start of guest RAM in this process; valid until migshim_destroy(). */
void *migshim_ram(const struct migshim *s);
uint64_t migshim_ram_size(const struct migshim *s);
/* The guest RAM memfd (owned by the shim; do not close). */
int migshim_memfd(const struct migshim *s);

/*
 * Connects to migrationd's VMM socket at `path` and registers this VM: the
 * memfd (and uffd) go to the daemon with SCM_RIGHTS, the shim keeps its own.
 * `vcpus` is informational. Returns 0, or -1 with a message on stderr.
 */
int migshim_attach(struct migshim *s, const char *path, int vcpus);

/* Socket to poll for POLLIN; -1 before attach. Owned by the shim. */
int migshim_fd(const struct migshim *s);

enum migshim_event_type {
	MIGSHIM_EV_NONE = 0,	/* nothing complete yet (EAGAIN) */
	MIGSHIM_EV_PAUSE,	/* source: stop vCPUs, then migshim_send_state() */
	MIGSHIM_EV_RESUME_LOCAL,/* source: migration aborted before the
				   destination ran; resume the VM here */
	MIGSHIM_EV_START,	/* incoming: restore `blob`, run vCPUs, then
				   migshim_report_running() */
	MIGSHIM_EV_COMPLETED,	/* every page is on the destination. Source:
				   the VM now lives elsewhere, exit. Incoming:
				   memory is complete. */
	MIGSHIM_EV_FAILED,	/* migration failed; `reason` says why */
	MIGSHIM_EV_HANGUP,	/* daemon went away (the guest keeps its RAM) */
};

struct migshim_event {
	enum migshim_event_type type;
	const void *blob;	/* START: state blob, valid until next call */
	size_t blob_len;
	char reason[256];	/* FAILED / RESUME_LOCAL / HANGUP */
};

/* Reads one daemon message. Returns 0 (event filled, maybe NONE) or -1. */
int migshim_next_event(struct migshim *s, struct migshim_event *ev);

/* Source: the paused VM's vCPU and device state (copied). 0 or -1. */
int migshim_send_state(struct migshim *s, const void *blob, size_t len);

/* Incoming: vCPUs are running again. 0 or -1. */
int migshim_report_running(struct migshim *s);

/*
 * Incoming: the guest's own verdict on its memory after migration, shown by
 * `mig-ctl status`. `ok` nonzero if intact; `text` a one-line summary.
 */
int migshim_report_verdict(struct migshim *s, int ok, const char *text);

/* Unmaps RAM, closes every fd, frees `s`. NULL is fine. */
void migshim_destroy(struct migshim *s);

#endif
