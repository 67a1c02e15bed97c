/*
 * libmigshim: the VMM side of migrationd.
 *
 * A VMM links this library to keep its guest RAM in a form migrationd can
 * migrate: one memfd (shmem) mapped MAP_SHARED. For an incoming VM the
 * library also creates a userfaultfd over the mapping (missing mode, plus
 * minor mode with MIGSHIM_INSTALL_MINOR), so every guest access to a page
 * that has not arrived yet blocks until migrationd installs it. migshim_attach() hands the memfd (and the uffd) to the local
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

/* How an incoming VM's missing pages reach the daemon. */
enum migshim_fault_mode {
	MIGSHIM_FAULT_UFFD = 0,	/* blocking userfaultfd: the faulting thread
				   sleeps in the kernel, the daemon reads the
				   uffd event and the install wakes it */
	MIGSHIM_FAULT_RING = 1,	/* UFFD_FEATURE_SIGBUS: KVM returns annotated
				   exits (migshim_kvm_exit) and VMM threads
				   take SIGBUS (migshim_sigbus_install); both
				   post to the shared fault ring and wait */
};

/* How migrationd puts a received page into an incoming VM's RAM. */
enum migshim_install {
	MIGSHIM_INSTALL_COPY = 0,	/* uffd missing mode: UFFDIO_COPY copies
					   the page in (and UFFDIO_ZEROPAGE) */
	MIGSHIM_INSTALL_MINOR = 1,	/* uffd missing + minor mode: the daemon
					   writes the page into the memfd's page
					   cache, UFFDIO_CONTINUE maps it; a
					   crash of the daemon never leaves a
					   half-written page mapped */
};

struct migshim_opts {
	enum migshim_fault_mode	mode;		/* incoming VMs only */
	unsigned		vcpus;		/* ring slots owned by vCPUs */
	unsigned		thread_slots;	/* ring slots for other threads */
	uint64_t		spin_ns;	/* spin on a slot before sleeping;
						   0: the default (20 us) */
	int			hugepages;	/* back RAM with 2 MiB hugetlbfs pages
						   (pages must be reserved); the
						   migration then moves 2 MiB pages */
	enum migshim_install	install;	/* incoming VMs only */
};

/* The page size guest RAM is migrated in (4 KiB, or 2 MiB hugetlbfs). */
uint64_t migshim_page_size(const struct migshim *s);

/*
 * migshim_create() with options (NULL: 4 KiB pages, blocking uffd path). With
 * MIGSHIM_FAULT_RING the shim also creates the fault ring (a memfd) and its
 * doorbell (an eventfd); both go to the daemon at attach time.
 */
struct migshim *migshim_create_opts(const char *name, uint64_t ram_size,
    enum migshim_role role, const struct migshim_opts *opts);
enum migshim_fault_mode migshim_fault_mode(const struct migshim *s);

/*
 * Does this kernel's userfaultfd offer minor faults for this kind of memory
 * (shmem, or hugetlbfs with `hugepages`)? 1 yes, 0 no (`why` says what is
 * missing).
 */
int migshim_probe_minor(int hugepages, char *why, size_t len);

/*
 * Posts a fault on guest RAM [offset, offset+size) in ring slot `slot` and
 * waits until the daemon has the page present (ring mode only). `gpa` is for
 * logs. Async-signal-safe. Returns 0 (retry the access) or -errno (the
 * daemon refused the entry, e.g. -ERANGE).
 */
int migshim_fault(struct migshim *s, unsigned slot, uint64_t offset, uint64_t size,
    uint64_t gpa, int kind);

/*
 * Installs a process-wide SIGBUS handler. Ring mode: a thread touching a
 * missing page of this shim's RAM posts it to a free thread slot of the ring
 * and retries once it is present. Both modes: a page that arrived poisoned
 * (the source could not read it) reaches the previous handler as a machine
 * check, si_code BUS_MCEERR_AR, whatever the kernel reported. Any other
 * SIGBUS goes to the previous handler unchanged. One shim per process.
 */
int migshim_sigbus_install(struct migshim *s);
void migshim_sigbus_remove(void);

/*
 * The KVM_RUN contract (doc/design.md, "KVM / userfaultfd contract"). `ret` and `err` are KVM_RUN's return
 * value and errno, `run` the vCPU's kvm_run. kvm_run.memory_fault is used
 * only for ret == -1, errno EFAULT or EHWPOISON and exit_reason
 * KVM_EXIT_MEMORY_FAULT; in every other case it is stale and ignored.
 */
enum migshim_kvm_action {
	MIGSHIM_KVM_EXIT = 0,	/* an ordinary exit: handle exit_reason */
	MIGSHIM_KVM_RETRY,	/* re-enter KVM_RUN (page now present, or EINTR) */
	MIGSHIM_KVM_FETCH,	/* classify only: missing page at f->gpa */
	MIGSHIM_KVM_PRIVATE,	/* private/shared conversion: the VMM's job */
	MIGSHIM_KVM_POISON,	/* hardware poison: report / inject an MCE */
	MIGSHIM_KVM_ERROR,	/* unannotated EFAULT or another failure */
};

struct migshim_kvm_fault {
	uint64_t	gpa;	/* UINT64_MAX when unknown */
	uint64_t	size;
	uint64_t	flags;
	int		err;	/* the errno KVM_RUN gave */
};

struct kvm_run;

/* Pure decision table; fills *f. Never touches guest memory. */
enum migshim_kvm_action migshim_kvm_classify(int ret, int err,
    const struct kvm_run *run, struct migshim_kvm_fault *f);

/*
 * Classifies and acts: for a missing page it gets the page (ring slot
 * `vcpu`, or in uffd mode by touching it, which blocks until installed) and
 * returns MIGSHIM_KVM_RETRY; a bad GPA or a refused fetch is
 * MIGSHIM_KVM_ERROR. Guest RAM must sit at GPA 0 (as in minivmm).
 */
enum migshim_kvm_action migshim_kvm_exit(struct migshim *s, unsigned vcpu, int ret,
    int err, const struct kvm_run *run, struct migshim_kvm_fault *f);

/*
 * Does this kernel give annotated KVM exits for UFFD_FEATURE_SIGBUS memory?
 * Runs a throw-away one-vCPU VM that touches such a page. Returns 1 yes,
 * 0 no, -1 cannot tell; `why` says what was seen.
 */
int migshim_probe_annotated(char *why, size_t len);

/* Start of guest RAM in this process; valid until migshim_destroy(). */
void *migshim_ram(const struct migshim *s);
uint64_t migshim_ram_size(const struct migshim *s);
/* The guest RAM memfd (owned by the shim; do not close). Sealed at its
 * size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL): the daemon refuses
 * memory that could shrink under its mappings. */
int migshim_memfd(const struct migshim *s);

/*
 * Connects to migrationd's VMM socket at `path` and registers this VM: the
 * memfd (and uffd) go to the daemon with SCM_RIGHTS, the shim keeps its own.
 * The daemon answers the first attach with a secret the shim keeps in
 * memory and presents on every later one: after a daemon restart, a VM
 * whose migration waits for its VMM goes back only to this process (same
 * secret, uid and pid). `vcpus` is informational. Returns 0, or -1 with a
 * message on stderr.
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
