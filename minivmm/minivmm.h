/*
 * minivmm.h: internals shared by minivmm's files (not installed, not a
 * library API).
 *
 *   minivmm.c        main: the control loop (migshim events, guest
 *                    events), standalone/selftest/incoming flows, verdict
 *   minivmm_args.c   ctl_parse_args: options, usage, mode
 *   minivmm_vm.c     vm_* / vcpu_*: KVM VM and vCPUs, guest memory setup,
 *                    boot state
 *   minivmm_vcpu.c   vCPU threads and exit handling, pause/resume/kick
 *   minivmm_state.c  vm_state_*: the versioned state blob (vCPUs, and the
 *                    digests of every page of RAM)
 *   minivmm_verify.c verify_*: page digests, and the destination's check of
 *                    every byte of RAM against what the source had
 *
 * Threads: one control thread (main) owns struct kvm_vm's creation, teardown and
 * all decisions; one thread per vCPU runs KVM_RUN and handles exits. Fields
 * marked [lock] are shared and read or written only under vm->lock; vCPU
 * threads tell the control thread that something changed by writing to
 * vm->notify_fd (an eventfd it polls).
 */
#ifndef MINIVMM_H
#define MINIVMM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "minivmm_abi.h"

/*
 * Page-table entry bits of the identity map vm_load_guest() builds; the CPU
 * sets accessed and dirty (MV_PTE_AD) in an entry when it uses it.
 */
#define MV_PTE_P		(1ULL << 0)
#define MV_PTE_RW		(1ULL << 1)
#define MV_PTE_AD		((1ULL << 5) | (1ULL << 6))
#define MV_PTE_PS		(1ULL << 7)

/* MSRs the blob carries at most (the list is filtered per host). */
#define MV_MAX_MSRS		16

/*
 * Page digests a state blob carries at most: 3 MiB of them, so that the
 * blob (vCPU records and framing included) stays inside the shim wire's
 * 4 MiB message (SHIMWIRE_MAX_MSG, lib/shimwire.h). That covers the first
 * 1.5 GiB of RAM; pages above it are verified by the content rule only.
 */
#define MV_BLOB_MAX_DIGESTS	((3ULL << 20) / sizeof(uint64_t))

struct kvm_vm;

struct vcpu {
	struct kvm_vm	*vm;
	int		 index;
	int		 fd;		/* -1 when closed */
	struct kvm_run	*run;		/* mmap of fd, NULL when closed */
	pthread_t	 thread;
	int		 thread_started;

	/* [lock] */
	int		 halted;	/* guest executed HLT; wait for a kick */
	int		 parked;	/* thread waits in vcpu_park() */
	int		 dirty;		/* last KVM_RUN returned an exit that
					   only completes on the next KVM_RUN */
	int		 exited;	/* thread left its loop */
	int		 filled;	/* MV_EV_FILLED seen */
	int		 verified;	/* MV_EV_VERIFIED seen */
	uint64_t	 passes;	/* MV_EV_PASS seen by this process */
	uint64_t	 last_pass_ns;	/* CLOCK_MONOTONIC of the last one */
	uint64_t	 pass_ns;	/* duration of the last full pass */

	/* vCPU thread only */
	uint64_t	 exits;
};

struct kvm_vm {
	int		 kvm_fd;	/* /dev/kvm; -1 when closed */
	int		 vm_fd;		/* -1 when no VM */
	int		 notify_fd;	/* eventfd, vCPU threads -> control */
	void		*ram;		/* guest RAM at GPA 0 (libmigshim's) */
	struct migshim	*shim;		/* owns RAM; runs the KVM_RUN contract */
	uint64_t	 ram_size;
	int		 nvcpus;
	int		 verbose;
	int		 dirty_log;	/* vm_create(): KVM_MEM_LOG_DIRTY_PAGES */
	size_t		 run_size;

	/* probed once by vm_open() */
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	uint32_t	 msrs[MV_MAX_MSRS];
	int		 nmsrs;
	int		 has_xcrs;
	int		 has_events;
	int		 has_debugregs;
	int		 has_tss_addr;

	struct vcpu	 vcpus[MV_MAX_VCPUS];

	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* any [lock] state changed */
	/* [lock] */
	int		 stop;		/* control wants every vCPU parked */
	int		 exiting;	/* threads must return */
	int		 mailbox_set;	/* MV_MAILBOX written: halts are waits */
	int		 fatal;		/* a vCPU hit an unexpected exit */
};

/* The control thread's state: main's (minivmm.c), options from
 * minivmm_args.c. */
enum ctl_mode {
	CTL_SOURCE,		/* with a daemon: run until migrated away */
	CTL_STANDALONE,		/* no daemon: --passes, then verify */
	CTL_SELFTEST,		/* --selftest-snapshot */
	CTL_INCOMING,		/* --incoming */
};

enum ctl_phase {
	PH_RUNNING,		/* guest works; nothing asked of it yet */
	PH_RESTORED,		/* selftest: restored, waiting for a pass */
	PH_WAIT_START,		/* incoming: no state yet */
	PH_VERIFYING,		/* mailbox set, waiting for every vCPU */
	PH_DONE,
};

struct ctl {
	enum ctl_mode	 mode;
	enum ctl_phase	 phase;
	const char	*name;
	uint64_t	 mem;
	int		 nvcpus;
	enum mv_workload workload;
	const char	*socket_path;
	const char	*report_path;
	int		 install_minor;	/* --install minor */
	uint64_t	 passes;
	int		 verbose;
	uint64_t	 flip_gpa;	/* --selftest-flip; UINT64_MAX: none */
	int		 snapshot_early; /* --selftest-early */

	struct migshim	*shim;
	int		 shim_live;	/* attached and not hung up */
	struct kvm_vm	 vm;
	int		 paused;	/* source: paused for migration */
	int		 ready_printed;
	int		 exit_code;
	uint64_t	 t_start_ns;
	uint64_t	*digests;	/* the source's page digests (malloc'ed),
					   NULL unless restored from a blob */
	uint64_t	 ndigests;
};

/* What verify_ram() compares the RAM with. */
struct verify_want {
	const uint64_t	*digests;	/* the source's, pages [0, ndigests) */
	uint64_t	 ndigests;
	uint64_t	 ram_size;
	int		 nvcpus;
	const struct mv_slice *slice;	/* [nvcpus]: data pages per vCPU */
	const uint64_t	*gen;		/* [nvcpus]: the generation they hold */
	const void	*report_page;	/* MV_REPORT_GPA's page, as expected */
};

/* minivmm_args.c */
int	 ctl_parse_args(struct ctl *c, int argc, char **argv);

/* minivmm_vm.c */
int	 vm_open(struct kvm_vm *vm, void *ram, uint64_t ram_size, int nvcpus,
	    int verbose);
void	 vm_close(struct kvm_vm *vm);
int	 vm_create(struct kvm_vm *vm);
void	 vm_destroy(struct kvm_vm *vm);
int	 vm_load_guest(struct kvm_vm *vm, const void *image, size_t image_len,
	    enum mv_workload workload);
int	 vm_boot_vcpus(struct kvm_vm *vm);

/* minivmm_vcpu.c */
int	 vm_start(struct kvm_vm *vm);
int	 vm_pause(struct kvm_vm *vm);
void	 vm_resume(struct kvm_vm *vm);
void	 vm_set_mailbox(struct kvm_vm *vm);
void	 vm_drain_notify(struct kvm_vm *vm);
void	 vm_kick_vcpus(struct kvm_vm *vm);

/* minivmm_state.c */
int	 vm_state_save(struct kvm_vm *vm, void **blob, size_t *len);
int	 vm_state_check(const struct kvm_vm *vm, const void *blob, size_t len,
	    char *why, size_t whylen);
int	 vm_state_restore(struct kvm_vm *vm, const void *blob, size_t len);
int	 vm_state_digests(const void *blob, size_t len, uint64_t **digests,
	    uint64_t *n);

/* minivmm_verify.c */
void	 verify_digest_ram(const struct kvm_vm *vm, uint64_t npages,
	    uint64_t *out);
int	 verify_ram(const struct kvm_vm *vm, const struct verify_want *w);

/* the guest image, generated at build time from guest/ (minivmm.cmake) */
extern const unsigned char minivmm_guest_image[];
extern const size_t minivmm_guest_image_len;

#endif
