/*
 * shim_int.h: libmigshim's internals shared by its files (libmigshim.c:
 * RAM, userfaultfd, the daemon socket; shim_fault.c: the fault path). Not
 * installed and not part of the API in libmigshim.h; adds no symbols.
 */
#ifndef SHIM_INT_H
#define SHIM_INT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "libmigshim.h"
#include "shimwire.h"

/* One VM's RAM, uffd, ring and daemon connection (migshim_create). */
struct migshim {
	char			 name[128];
	enum migshim_role	 role;
	uint64_t		 ram_size;
	void			*ram;
	int			 memfd;
	int			 uffd;
	int			 sock;
	Migrationd__Shim__V1__ShimMsg *last;	/* keeps START's blob alive */
	enum migshim_fault_mode	 mode;
	void			*ring;		/* MIGSHIM_FAULT_RING */
	int			 ringfd;
	int			 doorbell;	/* eventfd the daemon waits on */
	uint32_t		 nslots, nvcpu;
	uint64_t		 spin_ns;
	uint32_t		 seq;
	int			 complete;	/* every page present: SIGBUS = poison */
	int			 spinners;	/* threads spinning on a slot now */
	uint64_t		 page_size;	/* 4 KiB, or 2 MiB (hugetlbfs) */
	enum migshim_install	 install;
	uint8_t			 secret[32];	/* the daemon's, from the first attach */
	size_t			 secret_len;	/* 0 until then */
	int			 wpfd;		/* dirty tracking (shim_dirty.c), -1 off */
	int			 pagemap;	/* /proc/self/pagemap while tracking */
};

/* shim_dirty.c: dirty tracking for pre-copy. */
void shim_dirty_request(struct migshim *s, const Migrationd__Shim__V1__Track *t);
int shim_dirty_scan(struct migshim *s, Migrationd__Shim__V1__Dirty *d, int rearm, char *why,
    size_t len);
void shim_dirty_stop(struct migshim *s);

/* CLOCK_MONOTONIC in ns. Async-signal-safe. */
static inline uint64_t
shim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
shim_warn(const char *fn, const char *what)
{
	fprintf(stderr, "libmigshim: %s: %s: %s\n", fn, what, strerror(errno));
}

#endif
