/*
 * install: the destination's installer. Puts pages into guest RAM by ioctl
 * on the VM's userfaultfd, each page exactly once (the caller checks the
 * `installed` bitmap before every call; EEXIST is counted, never expected).
 * Copy mode: UFFDIO_COPY / UFFDIO_ZEROPAGE / UFFDIO_POISON. Minor mode: the
 * payload is written into the memfd's page cache (pwrite; through the
 * daemon's own mapping for hugetlbfs, which has no write()), then
 * UFFDIO_CONTINUE maps it, with the run in flight kept in a journal
 * (journal.c) so a restart never maps a torn page.
 *
 * The installed set is the truth completion is decided by. It lives in a
 * file under the state directory, mapped MAP_SHARED (<id>.pages: the
 * installed bitmap, then the poisoned one), so it outlives a daemon killed at
 * any instruction: a page's bit is set right after the kernel said the page
 * is in guest RAM (the ioctl returned, or EEXIST), before anything else. A
 * crash between the two leaves a page present and unmarked, which the next
 * install finds by EEXIST; never a page marked and absent. After a restart
 * the set is this file (hugetlbfs cannot say more), joined with what the
 * page cache holds (shmem: SEEK_DATA). Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitmap.h"
#include "dest.h"
#include "install.h"
#include "journal.h"
#include "log.h"
#include "memguard.h"
#include "place.h"
#include "mig_compat.h"
#include "util.h"
#include "vm.h"

static void
inst_journal_path(const struct migration *m, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.journal", D->conf.state_dir, m->id);
}

/* Minor mode: the journal of the run between page-cache write and map. */
static int
inst_journal_open(struct migration *m, struct journal_run *pending)
{
	struct journal_run none;
	char path[600];

	inst_journal_path(m, path, sizeof(path));
	if ((m->dst->journal = journal_open(path, pending ? pending : &none)) == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	return 0;
}

/*
 * The kernel said pages [idx, idx+n) are in guest RAM: mark them, first
 * thing (see the top of this file).
 */
static void
inst_mark(struct migration *m, uint64_t idx, uint64_t n, int poison)
{
	struct mig_dst *d = m->dst;

	for (uint64_t k = idx; k < idx + n; k++) {
		if (poison && !bitmap_test(d->poisoned, k)) {
			bitmap_set(d->poisoned, k);
			m->st.pages_poisoned++;
		}
		if (!bitmap_test(d->installed, k)) {
			bitmap_set(d->installed, k);
			d->ninstalled++;
		}
	}
	m->st.pages_installed = d->ninstalled;
}

/* A marked page that is not in guest RAM after all: unmark it. */
static void
inst_unmark(struct migration *m, uint64_t idx)
{
	if (bitmap_test(m->dst->installed, idx)) {
		bitmap_clear(m->dst->installed, idx);
		m->dst->ninstalled--;
		m->st.pages_installed = m->dst->ninstalled;
	}
}

/*
 * Minor mode after a restart: the run the old daemon was writing may be torn
 * (punch it out of the page cache: the guest never saw it, it is fetched
 * again); a run it had written but maybe not mapped is complete (map it;
 * EEXIST there only says it was mapped already, nothing is written). After
 * this every page in the page cache is complete and mapped.
 */
static int
inst_journal_recover(struct migration *m)
{
	struct vm *v = m->vm;
	struct journal_run run;

	if (inst_journal_open(m, &run) < 0)
		return -1;
	if (run.state == JOURNAL_IDLE)
		return 0;
	if (run.idx >= m->npages || run.count > m->npages - run.idx) {
		log_warnx("migration %s: journal names pages %llu+%llu beyond the VM; "
		    "ignored", m->id, (unsigned long long)run.idx,
		    (unsigned long long)run.count);
		journal_idle(m->dst->journal);
		return 0;
	}
	if (run.state == JOURNAL_WRITING) {
		if (place_punch(m, run.idx, run.count) < 0)
			return -1;
		for (uint64_t k = run.idx; k < run.idx + run.count; k++)
			inst_unmark(m, k);
		log_info("migration %s: pages %llu+%llu were being written when the daemon "
		    "stopped: dropped, fetched again", m->id,
		    (unsigned long long)run.idx, (unsigned long long)run.count);
	} else {
		for (uint64_t k = run.idx; k < run.idx + run.count; k++) {
			struct uffdio_continue uc = { .range = {
			    v->ram_va + k * m->page_size, m->page_size } };

			if (ioctl(v->uffd, UFFDIO_CONTINUE, &uc) < 0 && errno != EEXIST) {
				log_warn("migration %s: cannot map written page %llu",
				    m->id, (unsigned long long)k);
				return -1;
			}
		}
		inst_mark(m, run.idx, run.count, 0);
		log_info("migration %s: pages %llu+%llu were written but maybe not mapped "
		    "when the daemon stopped: mapped", m->id,
		    (unsigned long long)run.idx, (unsigned long long)run.count);
	}
	journal_idle(m->dst->journal);
	return 0;
}

/* [debug] fail_install, tests only: this install fails (EIO). */
static int
inst_fail_test(struct migration *m)
{
	unsigned k = ++m->dst->install_calls;

	if (!D->conf.fail_install_at || k < D->conf.fail_install_at ||
	    k - D->conf.fail_install_at >= D->conf.fail_install_count)
		return 0;
	log_warnx("migration %s: [debug] fail_install: install %u fails", m->id, k);
	errno = EIO;
	return -1;
}

/* Puts pages [idx, idx+n) into the page cache: the guest cannot see them. */
static int
inst_minor_write(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	struct vm *v = m->vm;
	uint64_t off = idx * m->page_size, len = n * m->page_size, done = 0;

	if (inst_fail_test(m) < 0) {
		/* As a write that fails part-way: half a page went in. */
		if (v->map != NULL)
			memset((uint8_t *)v->map + off, 0x5a, m->page_size / 2);
		else if (enc == FRAME_ENC_RAW)
			done = (uint64_t)pwrite(v->memfd, src, m->page_size / 2, (off_t)off);
		errno = EIO;
		return -1;
	}
	if (v->map != NULL) {
		/* hugetlbfs: no write(); through our own mapping of the memfd.
		 * Sealed, it cannot shrink, but a page the VMM punched out with
		 * no huge page left to refill it (or a poisoned one) raises
		 * SIGBUS here: memguard fails the copy instead (EFAULT). */
		return memguard_copy((uint8_t *)v->map + off,
		    enc == FRAME_ENC_ZERO ? NULL : src, len);
	}
	while (done < len) {
		ssize_t w = pwrite(v->memfd, src + done, len - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		done += (uint64_t)w;
	}
	return 0;
}

/*
 * [debug] crash_minor, tests only: die by SIGKILL in the middle of an
 * install, as a crash would: half-way through the first page's write
 * (WRITING), or with the run written and not mapped (WRITTEN).
 */
static void
inst_crash_test(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	log_warnx("migration %s: [debug] crash_minor: killing this daemon with pages "
	    "%llu+%llu %s", m->id, (unsigned long long)idx, (unsigned long long)n,
	    D->conf.crash_minor_state == JOURNAL_WRITING ? "half written" :
	    "written, not mapped");
	if (D->conf.crash_minor_state == JOURNAL_WRITING) {
		if (enc == FRAME_ENC_RAW && m->vm->map == NULL &&
		    pwrite(m->vm->memfd, src, m->page_size / 2,
		    (off_t)(idx * m->page_size)) < 0)
			log_warn("%s: pwrite", __func__);
	} else if (inst_minor_write(m, idx, n, enc, src) == 0) {
		journal_written(m->dst->journal);
	}
	raise(SIGKILL);
}

/*
 * [debug] fail_install and crash_minor for a run the transport read into
 * the page cache (place.c): the same failure as a write that fails (the run
 * is dropped), the same crash (WRITING: the journal says so, the run is
 * whole; WRITTEN: not mapped yet).
 */
static int
inst_placed_test(struct migration *m, uint64_t idx, uint64_t n)
{
	if (D->conf.crash_minor_at && ++m->dst->minor_runs == D->conf.crash_minor_at) {
		log_warnx("migration %s: [debug] crash_minor: killing this daemon with pages "
		    "%llu+%llu read in, %s", m->id, (unsigned long long)idx,
		    (unsigned long long)n, D->conf.crash_minor_state == JOURNAL_WRITING ?
		    "journaled as being written" : "written, not mapped");
		if (D->conf.crash_minor_state == JOURNAL_WRITING)
			journal_writing(m->dst->journal, idx, n);
		raise(SIGKILL);
	}
	if (inst_fail_test(m) < 0) {
		place_settle(m, idx, n);
		return -1;
	}
	return 0;
}

/*
 * Minor mode, first step of an install: write pages [idx, idx+n) into the
 * page cache, journaled WRITING while it happens and WRITTEN once complete
 * (see journal.c); inst_ioctl() then maps them with UFFDIO_CONTINUE. 0, or
 * -1 (counted) with the run left WRITING: it is not mapped, and a later
 * install of these pages rewrites it whole.
 */
static int
inst_minor_stage(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	journal_writing(m->dst->journal, idx, n);
	if (D->conf.crash_minor_at && ++m->dst->minor_runs == D->conf.crash_minor_at)
		inst_crash_test(m, idx, n, enc, src);
	if (inst_minor_write(m, idx, n, enc, src) < 0) {
		int err = errno;

		log_warn("migration %s: writing pages %llu+%llu into the page cache",
		    m->id, (unsigned long long)idx, (unsigned long long)n);
		/* What did go in may be torn: out of the page cache with it,
		 * it is fetched again. Left WRITING if that fails too. */
		if (place_punch(m, idx, n) == 0)
			journal_idle(m->dst->journal);
		errno = err;
		return -1;
	}
	journal_written(m->dst->journal);
	return 0;
}

/*
 * Minor mode: an installed page whose mapping is gone (the VMM dropped it,
 * or a restart found it written and not mapped) faults as a minor fault.
 * Map it again; nothing is written. 0, or -1 if it cannot be mapped.
 */
int
inst_remap(struct migration *m, uint64_t idx)
{
	struct uffdio_continue uc = { .range = {
	    m->vm->ram_va + idx * m->page_size, m->page_size } };

	if (ioctl(m->vm->uffd, UFFDIO_CONTINUE, &uc) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOENT) {
		/* Mapped already (or a poison/zero mapping): just wake. */
		ioctl(m->vm->uffd, UFFDIO_WAKE, &uc.range);
		return 0;
	}
	log_warn("migration %s: UFFDIO_CONTINUE of installed page %llu", m->id,
	    (unsigned long long)idx);
	return -1;
}

/* One install ioctl for [dst, dst+len): 0 or -1 (errno); *done bytes or pages. */
static int
inst_call(struct migration *m, int minor, int enc, uint64_t dst, uint64_t len,
    const uint8_t *src, int64_t *done)
{
	static uint8_t *zeros;
	int rc;

	if (minor) {
		/* Written into the page cache: map it (wakes waiters). */
		struct uffdio_continue uc = { .range = { dst, len } };

		rc = ioctl(m->vm->uffd, UFFDIO_CONTINUE, &uc);
		*done = uc.mapped;
	} else if (enc == FRAME_ENC_RAW || (enc == FRAME_ENC_ZERO && m->page_size > 4096)) {
		/* hugetlbfs has no UFFDIO_ZEROPAGE: copy zeros. */
		struct uffdio_copy cp = { .dst = dst, .src = (uintptr_t)src, .len = len };

		if (enc == FRAME_ENC_ZERO) {
			if (zeros == NULL && (zeros = calloc(1, MIG_FRAME_MAX_BYTES)) == NULL)
				return -1;
			if (len > MIG_FRAME_MAX_BYTES) {
				errno = EINVAL;
				return -1;
			}
			cp.src = (uintptr_t)zeros;
		}
		rc = ioctl(m->vm->uffd, UFFDIO_COPY, &cp);
		*done = cp.copy;
	} else if (enc == FRAME_ENC_ZERO) {
		struct uffdio_zeropage zp = { .range = { dst, len } };

		rc = ioctl(m->vm->uffd, UFFDIO_ZEROPAGE, &zp);
		*done = zp.zeropage;
	} else {
		struct uffdio_poison po = { .range = { dst, len } };

		rc = ioctl(m->vm->uffd, UFFDIO_POISON, &po);
		*done = po.updated;
	}
	return rc;
}

static void
inst_crash_after(struct migration *m, uint64_t idx)
{
	if (D->conf.crash_install_at && m->dst->install_calls == D->conf.crash_install_at) {
		log_warnx("migration %s: [debug] crash_install: killing this daemon with "
		    "page %llu installed and not recorded", m->id, (unsigned long long)idx);
		raise(SIGKILL);
	}
}

/* A page the kernel already has: recorded, never written again. */
static enum inst_result
inst_present(struct migration *m, uint64_t idx, int enc, uint64_t *done_pages)
{
	m->st.install_eexist++;
	log_warnx("migration %s: page %llu already present (EEXIST)", m->id,
	    (unsigned long long)idx);
	inst_mark(m, idx, 1, enc == FRAME_ENC_POISON);
	*done_pages = 1;
	return INST_EEXIST;
}

enum inst_result
inst_ioctl(struct migration *m, uint64_t idx, uint64_t n, int enc, const uint8_t *src,
    uint64_t *done_pages)
{
	int minor = m->vm->minor && (enc == FRAME_ENC_RAW ||
	    (enc == FRAME_ENC_ZERO && m->page_size > 4096));
	uint64_t dst = m->vm->ram_va + idx * m->page_size, k, h;
	int64_t done = 0;
	int rc, err;

	if ((!minor && inst_fail_test(m) < 0) || (minor && m->dst->unsettled && (errno = EIO)))
		goto fail;
	if (minor && (h = place_claim(m, idx, n)) > 0) {
		/* Read straight into the page cache (place.c): map it. */
		n = h;
		if (inst_placed_test(m, idx, n) < 0)
			goto fail;
	} else if (minor) {
		if (place_evacuate(m) < 0)	/* the journal is this run's */
			goto fail;
		if ((h = place_holes(m, idx, n)) == 0) {
			/* Map it if it is not (EEXIST: it is); never write it. */
			if (inst_remap(m, idx) < 0)
				goto fail;
			return inst_present(m, idx, enc, done_pages);
		}
		n = h;
		if (inst_minor_stage(m, idx, n, enc, src) < 0)
			goto fail;
	}
	do {
		rc = inst_call(m, minor, enc, dst, n * m->page_size, src, &done);
		err = errno;
	} while (rc != 0 && done <= 0 && err == EAGAIN);	/* the VMM's mm was busy */
	if (rc == 0 || done > 0) {
		k = rc == 0 ? n : (uint64_t)done / m->page_size;
		inst_crash_after(m, idx);
		inst_mark(m, idx, k, enc == FRAME_ENC_POISON);
		if (minor)
			place_settle(m, idx + k, n - k);	/* mapped in part */
		*done_pages = k;
		return INST_OK;
	}
	if (minor)
		place_settle(m, idx + (err == EEXIST), n - (err == EEXIST));
	if (err == EEXIST)
		return inst_present(m, idx, enc, done_pages);
	errno = err;
fail:
	log_warn("migration %s: install of pages %llu+%llu failed", m->id,
	    (unsigned long long)idx, (unsigned long long)n);
	m->st.install_errors++;
	return INST_ERROR;
}

/*
 * The installed set's file: created empty for a new migration, opened again
 * after a restart (missing: -1 with ENOENT).
 */
static int
inst_pages_open(struct migration *m, int again)
{
	struct mig_dst *d = m->dst;
	size_t words = (m->npages + 63) / 64, len = 2 * words * sizeof(uint64_t);
	struct stat st;
	char path[600];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.pages", D->conf.state_dir, m->id);
	if ((fd = open(path, O_RDWR | O_CLOEXEC | (again ? 0 : O_CREAT | O_TRUNC), 0600)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (again && (uint64_t)st.st_size != len) ||
	    (!again && ftruncate(fd, (off_t)len) < 0)) {
		if (again && errno == 0)
			errno = EINVAL;
		close(fd);
		return -1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	d->pages_map = p;
	d->pages_len = len;
	d->installed = p;
	d->poisoned = d->installed + words;
	d->ninstalled = 0;
	m->st.pages_poisoned = 0;
	for (size_t i = 0; i < words; i++) {
		d->ninstalled += (uint64_t)__builtin_popcountll(d->installed[i]);
		m->st.pages_poisoned += (uint64_t)__builtin_popcountll(d->poisoned[i]);
	}
	m->st.pages_installed = d->ninstalled;
	return 0;
}

int
inst_init(struct migration *m)
{
	if (inst_pages_open(m, 0) == 0)
		return 0;
	log_warn("migration %s: cannot create the installed set under %s", m->id,
	    D->conf.state_dir);
	return -1;
}

int
inst_journal_new(struct migration *m)
{
	return inst_journal_open(m, NULL);
}

void
inst_journal_discard(const struct migration *m)
{
	char path[600];

	inst_journal_path(m, path, sizeof(path));
	unlink(path);
}

/*
 * After a restart of this daemon the VMM attached again with the same memfd
 * and uffd. The installed set comes back from its file; the minor-mode
 * journal settles the run in flight; on shmem every page in the page cache
 * is installed too (SEEK_DATA: in copy mode by construction, in minor mode
 * once the journal is settled). A page is never installed twice: this set
 * starts from what is really there. Pages marked, or -1 (why in errno; an
 * installed set that cannot be rebuilt is ENOENT).
 */
int64_t
inst_rebuild(struct migration *m)
{
	struct vm *v = m->vm;
	off_t off = 0, data, hole;

	if (inst_pages_open(m, 1) < 0) {
		int err = errno;

		/* shmem can say it all through SEEK_DATA, except poison. */
		if (place_hugetlb(m) || inst_pages_open(m, 0) < 0) {
			errno = err;
			return -1;
		}
		log_warnx("migration %s: no installed set on disk (%s); rebuilt from the "
		    "page cache alone", m->id, strerror(err));
	}
	if (v->minor && inst_journal_recover(m) < 0)
		return -1;
	while (!place_hugetlb(m) && (data = lseek(v->memfd, off, SEEK_DATA)) >= 0) {
		if ((hole = lseek(v->memfd, data, SEEK_HOLE)) < 0)
			break;
		for (uint64_t p = (uint64_t)data / m->page_size;
		    p < m->npages && p < ((uint64_t)hole + m->page_size - 1) / m->page_size; p++)
			inst_mark(m, p, 1, 0);
		off = hole;
	}
	return (int64_t)m->dst->ninstalled;
}

/*
 * Before completion, on shmem: every installed page that is not poison must
 * be in the page cache. One that is not (the VMM dropped it, or a bug) is
 * unmarked and its index returned in *missing (UINT64_MAX: none), to be
 * fetched again. Hugetlbfs cannot tell: nothing is found there.
 */
uint64_t
inst_missing(struct migration *m)
{
	off_t off = 0, hole, data;
	uint64_t found = 0;

	if (m->vm == NULL || place_hugetlb(m))
		return 0;
	while ((uint64_t)off < m->ram_bytes &&
	    (hole = lseek(m->vm->memfd, off, SEEK_HOLE)) >= 0 && (uint64_t)hole < m->ram_bytes) {
		data = lseek(m->vm->memfd, hole, SEEK_DATA);
		if (data < 0 || (uint64_t)data > m->ram_bytes)
			data = (off_t)m->ram_bytes;
		for (uint64_t p = (uint64_t)hole / m->page_size; p < (uint64_t)data / m->page_size; p++)
			if (!bitmap_test(m->dst->poisoned, p) && bitmap_test(m->dst->installed, p)) {
				log_warnx("migration %s: page %llu is marked installed but is not "
				    "in guest RAM; fetched again", m->id, (unsigned long long)p);
				inst_unmark(m, p);
				found++;
			}
		off = data;
	}
	return found;
}

uint64_t
inst_invalidate(struct migration *m, uint64_t first, uint64_t n)
{
	struct mig_dst *d = m->dst;
	uint64_t done = 0;

	if (first >= m->npages || m->vm == NULL)
		return 0;
	if (n > m->npages - first)
		n = m->npages - first;
	for (uint64_t k = first; k < first + n;) {
		uint64_t j = k;

		/* Poison is a marker, not data: it stays (it reads as poison again). */
		while (j < first + n && bitmap_test(d->installed, j) &&
		    !bitmap_test(d->poisoned, j))
			j++;
		if (j == k) {
			k++;
			continue;
		}
		/* Dropped from the page cache (and every mapping) first, then
		 * unmarked: a crash in between leaves a page marked and absent,
		 * which only a migration that never ran here can meet. */
		if (place_punch(m, k, j - k) < 0)
			return UINT64_MAX;
		for (uint64_t i = k; i < j; i++)
			inst_unmark(m, i);
		done += j - k;
		k = j;
	}
	return done;
}

int
inst_invalidate_list(struct migration *m, const uint64_t *runs, size_t nruns,
    uint64_t *dropped, const char **why)
{
	uint64_t r, next = 0;

	*dropped = 0;
	if (nruns % 2 != 0) {	/* a first page without its count */
		*why = "malformed stale page list";
		return -1;
	}
	for (size_t i = 0; i + 1 < nruns; i += 2) {
		/* Ascending and disjoint, as the source makes them: the work
		 * stays within one pass over RAM whatever a peer sends. */
		if (runs[i] < next || runs[i] >= m->npages || runs[i + 1] > m->npages - runs[i]) {
			*why = "malformed stale page list";
			return -1;
		}
		next = runs[i] + runs[i + 1];
		if ((r = inst_invalidate(m, runs[i], runs[i + 1])) == UINT64_MAX) {
			*why = "cannot drop stale pre-copied pages from guest RAM";
			return -1;
		}
		*dropped += r;
	}
	return 0;
}

int
inst_clear(struct migration *m)
{
	return m->vm == NULL ? 0 : place_punch(m, 0, m->npages);
}

void
inst_release(struct migration *m)
{
	struct mig_dst *d = m->dst;
	char path[600];

	place_free(m);
	/* Journal and installed set outlive a migration only while it may
	 * still resume. */
	journal_close(d->journal, !mig_active(m));
	d->journal = NULL;
	if (d->pages_map != NULL) {
		munmap(d->pages_map, d->pages_len);
		if (!mig_active(m)) {
			snprintf(path, sizeof(path), "%s/%s.pages", D->conf.state_dir, m->id);
			unlink(path);
		}
	}
	d->pages_map = NULL;
	d->installed = d->poisoned = NULL;
}
