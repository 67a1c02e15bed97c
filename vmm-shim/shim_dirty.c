/*
 * shim_dirty: dirty tracking of guest RAM for pre-copy, in the source VMM's
 * process, on the daemon's request (TRACK messages over the VMM socket,
 * answered with DIRTY; the VMM's control loop never sees them).
 *
 * How: userfaultfd write-protection in async mode (UFFD_FEATURE_WP_ASYNC)
 * over the VMM's own mapping of guest RAM, read and reset with
 * PAGEMAP_SCAN (PM_SCAN_WP_MATCHING) on /proc/self/pagemap (Linux 6.7+).
 * A write to a protected page is resolved by the kernel itself (no thread
 * waits, nobody reads the uffd) and leaves the page "written" until the
 * next scan protects it again in the same walk. It sees every write to the
 * mapping: the VMM's own (device emulation) through its page tables, and
 * the vCPUs' through KVM, whose mappings are invalidated when a page is
 * protected, so the guest's next write faults through the same page
 * tables. KVM's dirty log would miss the VMM's own writes and needs the
 * VMM's memslots, which the shim does not own; a VMM without KVM has none.
 * So this is the one method; where the kernel lacks it, START is refused
 * with the reason and the migration goes post-copy only.
 *
 * Shmem and hugetlbfs keep the protection of a page without a page table
 * entry as a PTE marker (UFFD_FEATURE_WP_HUGETLBFS_SHMEM; WP_UNPOPULATED
 * where offered, for unpopulated entries), so a page the guest never
 * touched is caught on its first write too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mig_compat.h"
#include "shim_int.h"

#define DIRTY_METHOD	"userfaultfd async write-protect + PAGEMAP_SCAN"
#define DIRTY_VEC	1024		/* regions per PAGEMAP_SCAN call */
#define DIRTY_MAX_RANGES (128u << 10)	/* beyond this, "every page" */

void
shim_dirty_stop(struct migshim *s)
{
	if (s->wpfd >= 0)
		close(s->wpfd);	/* unregisters and drops the protection */
	if (s->pagemap >= 0)
		close(s->pagemap);
	s->wpfd = s->pagemap = -1;
}

/* Tracking on: every page write-protected from now on. 0, or -1 with why. */
static int
dirty_start(struct migshim *s, char *why, size_t len)
{
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)s->ram, s->ram_size },
	    .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = reg.range,
	    .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	struct pm_scan_arg pa = { .size = sizeof(pa), .flags = PM_SCAN_CHECK_WPASYNC,
	    .start = (uintptr_t)s->ram, .end = (uintptr_t)s->ram + s->page_size };
	uint64_t offered;

	if (s->wpfd >= 0)
		shim_dirty_stop(s);	/* a new round of tracking starts clean */
	if ((s->wpfd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)) < 0) {
		snprintf(why, len, "userfaultfd: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(s->wpfd, UFFDIO_API, &api) < 0) {
		snprintf(why, len, "UFFDIO_API: %s", strerror(errno));
		goto fail;
	}
	offered = api.features;
	close(s->wpfd);
	if ((offered & need) != need) {
		snprintf(why, len, "this kernel's userfaultfd has no %s write-protection "
		    "(needs UFFD_FEATURE_WP_ASYNC and WP_HUGETLBFS_SHMEM, Linux 6.7+)",
		    s->page_size > 4096 ? "hugetlbfs" : "shmem");
		s->wpfd = -1;
		goto fail;
	}
	api.api = UFFD_API;
	api.features = need | (offered & UFFD_FEATURE_WP_UNPOPULATED);
	if ((s->wpfd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)) < 0 ||
	    ioctl(s->wpfd, UFFDIO_API, &api) < 0) {
		snprintf(why, len, "UFFDIO_API (async write-protect): %s", strerror(errno));
		goto fail;
	}
	if (ioctl(s->wpfd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(why, len, "UFFDIO_REGISTER write-protect mode: %s", strerror(errno));
		goto fail;
	}
	if ((s->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, len, "/proc/self/pagemap: %s", strerror(errno));
		goto fail;
	}
	/* PAGEMAP_SCAN exists and sees the range as async write-protected. */
	if (ioctl(s->pagemap, PAGEMAP_SCAN, &pa) < 0) {
		snprintf(why, len, "PAGEMAP_SCAN: %s%s", strerror(errno), errno == ENOTTY ?
		    " (Linux 6.7+ needed)" : "");
		goto fail;
	}
	if (ioctl(s->wpfd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		snprintf(why, len, "UFFDIO_WRITEPROTECT: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	shim_dirty_stop(s);
	return -1;
}

/* Adds pages [first, first+n) to the set, merging with the last range. */
static int
dirty_add(uint64_t **r, size_t *nr, size_t *cap, uint64_t first, uint64_t n)
{
	if (*nr >= 2 && (*r)[*nr - 2] + (*r)[*nr - 1] == first) {
		(*r)[*nr - 1] += n;
		return 0;
	}
	if (*nr + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		uint64_t *t = realloc(*r, nc * sizeof(**r));

		if (t == NULL)
			return -1;
		*r = t;
		*cap = nc;
	}
	(*r)[(*nr)++] = first;
	(*r)[(*nr)++] = n;
	return 0;
}

/*
 * The pages written since the last scan, write-protected again in the same
 * walk if `rearm` (the final scan, with the VM paused, leaves them: tracking
 * stops after it). Into d (ranges malloc'd: the caller frees d->ranges). -1
 * with why.
 */
int
shim_dirty_scan(struct migshim *s, Migrationd__Shim__V1__Dirty *d, int rearm, char *why,
    size_t len)
{
	struct page_region vec[DIRTY_VEC];
	uint64_t base = (uintptr_t)s->ram, end = base + s->ram_size, at = base;
	uint64_t t0 = shim_now_ns();
	size_t cap = 0;

	while (at < end) {
		struct pm_scan_arg pa = { .size = sizeof(pa),
		    .flags = (rearm ? PM_SCAN_WP_MATCHING : 0) | PM_SCAN_CHECK_WPASYNC,
		    .start = at, .end = end, .vec = (uintptr_t)vec, .vec_len = DIRTY_VEC,
		    .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
		long n = ioctl(s->pagemap, PAGEMAP_SCAN, &pa);

		if (n < 0) {
			snprintf(why, len, "PAGEMAP_SCAN: %s", strerror(errno));
			return -1;
		}
		for (long i = 0; i < n && !d->all; i++) {
			/* Regions are in 4 KiB units: round out to migration pages. */
			uint64_t f = (vec[i].start - base) / s->page_size;
			uint64_t l = (vec[i].end - base + s->page_size - 1) / s->page_size;

			if (d->n_ranges >= DIRTY_MAX_RANGES ||
			    dirty_add(&d->ranges, &d->n_ranges, &cap, f, l - f) < 0)
				d->all = 1;	/* keep walking: the reset must be whole */
		}
		if (pa.walk_end <= at)
			break;
		at = pa.walk_end;
	}
	d->scan_ns = shim_now_ns() - t0;
	return 0;
}

/* A TRACK request: do it and answer with a DIRTY. */
void
shim_dirty_request(struct migshim *s, const Migrationd__Shim__V1__Track *t)
{
	Migrationd__Shim__V1__ShimMsg m = MIGRATIOND__SHIM__V1__SHIM_MSG__INIT;
	Migrationd__Shim__V1__Dirty d = MIGRATIOND__SHIM__V1__DIRTY__INIT;
	char why[256] = "";
	int rc = 0;

	d.method = (char *)DIRTY_METHOD;
	switch (t->op) {
	case MIGRATIOND__SHIM__V1__TRACK_OP__TRACK_START:
		if ((rc = dirty_start(s, why, sizeof(why))) == 0)
			fprintf(stderr, "libmigshim: dirty tracking of %s: %s\n", s->name,
			    DIRTY_METHOD);
		else
			fprintf(stderr, "libmigshim: no dirty tracking of %s, so no pre-copy: "
			    "%s\n", s->name, why);
		break;
	case MIGRATIOND__SHIM__V1__TRACK_OP__TRACK_SCAN:
		if (s->wpfd < 0) {
			snprintf(why, sizeof(why), "dirty tracking is not on");
			rc = -1;
		} else {
			rc = shim_dirty_scan(s, &d, 1, why, sizeof(why));
		}
		break;
	default:
		shim_dirty_stop(s);
		break;
	}
	d.ok = rc == 0;
	d.error = why;
	m.msg_case = MIGRATIOND__SHIM__V1__SHIM_MSG__MSG_DIRTY;
	m.dirty = &d;
	if (s->sock >= 0 && shimwire_send(s->sock, &m, NULL, 0) < 0)
		shim_warn(__func__, "send dirty set");
	free(d.ranges);
}
