/*
 * vm.h: the VMM socket (vm.c). Each VMM (through libmigshim) attaches one
 * VM with its fds; messages from it reach the VM's migration through
 * m->ops. Loop thread only.
 */
#ifndef MIG_VM_H
#define MIG_VM_H

#include <event2/event.h>
#include <stdint.h>
#include <sys/queue.h>

#include "migration.h"

/* A VM whose VMM attached over the VMM socket (libmigshim). */
struct vm {
	TAILQ_ENTRY(vm)	 entry;
	char		 name[128];
	int		 dest;		/* attached as a destination (shim role INCOMING) */
	uint64_t	 ram_bytes;
	uint32_t	 page_size;
	uint64_t	 npages;
	uint64_t	 ram_va;	/* guest RAM in the VMM (uffd addresses) */
	uint32_t	 vcpus;
	int		 pid;		/* SO_PEERCRED's, not what the VMM says */
	struct mig_vmm	 vmm;		/* its secret and credentials */
	int		 memfd;
	int		 uffd;		/* destination only */
	int		 ring_mode;	/* faults come through the ring */
	int		 minor;		/* install by page cache + UFFDIO_CONTINUE */
	void		*map;		/* minor mode on hugetlbfs: guest RAM
					   mapped here (no write() there) */
	void		*ring;		/* shared fault ring (lib/ring.h) */
	uint64_t	 ring_len;
	int		 ringfd;
	int		 doorbell;	/* eventfd the VMM rings after posting */
	int		 sock;		/* VMM connection, -1 once gone */
	struct event	*ev_sock;
	struct migration *mig;		/* active migration, if any */
};
TAILQ_HEAD(vm_list, vm);

/* Every attached VM. */
extern struct vm_list vm_all;

int vm_listen(const char *path);
void vm_listen_stop(void);
struct vm *vm_find(const char *name);
/* m is v's migration from now on (and m's record keeps v's VMM identity). */
void vm_bind(struct vm *v, struct migration *m);
int vm_send_pause(struct vm *v);
/* Pre-copy: a dirty-tracking request to the source VMM's shim (TrackOp of
 * proto/shim.proto); the answer reaches m->ops->dirty. */
enum { VM_TRACK_START = 0, VM_TRACK_SCAN = 1, VM_TRACK_STOP = 2 };
int vm_send_track(struct vm *v, int op);
int vm_send_resume_local(struct vm *v, const char *reason);
int vm_send_start(struct vm *v, const void *blob, size_t len);
int vm_send_completed(struct vm *v);
/* The migration failed; `reason` says why (nothing if the VMM is gone). */
int vm_send_failed(struct vm *v, const char *reason);
/* Drops the VM once neither its VMM nor an active migration needs it. */
void vm_release(struct vm *v);
/* Shutdown: every VM goes. */
void vm_close_all(void);

#endif
