/*
 * install: the destination's installer. Puts pages into guest RAM by ioctl
 * on the VM's userfaultfd, each page exactly once (the caller checks the
 * `installed` bitmap before every call; EEXIST is counted, never expected).
 * Copy mode: UFFDIO_COPY / UFFDIO_ZEROPAGE / UFFDIO_POISON. Minor mode: the
 * payload is written into the memfd's page cache (pwrite; through the
 * daemon's own mapping for hugetlbfs, which has no write()), then
 * UFFDIO_CONTINUE maps it, with the run in flight kept in a journal
 * (journal.c) so a restart never maps a torn page. After a restart it
 * rebuilds the installed set from the page cache. Loop thread only.
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
#include <unistd.h>

#include "bitmap.h"
#include "dest.h"
#include "install.h"
#include "journal.h"
#include "log.h"
#include "memguard.h"
#include "mig_compat.h"
#include "util.h"
#include "vm.h"

/* Minor mode: the journal of the run between page-cache write and map. */
static int
inst_journal_open(struct migration *m, struct journal_run *pending)
{
	struct journal_run none;
	char path[600];

	snprintf(path, sizeof(path), "%s/%s.journal", D->conf.state_dir, m->id);
	if ((m->dst->journal = journal_open(path, pending ? pending : &none)) == NULL) {
		log_warn("%s: %s", __func__, path);
		return -1;
	}
	return 0;
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
		if (fallocate(v->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    (off_t)(run.idx * m->page_size), (off_t)(run.count * m->page_size)) < 0) {
			log_warn("migration %s: cannot drop the half-written pages %llu+%llu",
			    m->id, (unsigned long long)run.idx, (unsigned long long)run.count);
			return -1;
		}
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
		log_info("migration %s: pages %llu+%llu were written but maybe not mapped "
		    "when the daemon stopped: mapped", m->id,
		    (unsigned long long)run.idx, (unsigned long long)run.count);
	}
	journal_idle(m->dst->journal);
	return 0;
}

/* Puts pages [idx, idx+n) into the page cache: the guest cannot see them. */
static int
inst_minor_write(struct migration *m, uint64_t idx, uint64_t n, int enc,
    const uint8_t *src)
{
	struct vm *v = m->vm;
	uint64_t off = idx * m->page_size, len = n * m->page_size, done = 0;

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
		log_warn("migration %s: writing pages %llu+%llu into the page cache",
		    m->id, (unsigned long long)idx, (unsigned long long)n);
		m->st.install_errors++;
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

enum inst_result
inst_ioctl(struct migration *m, uint64_t idx, uint64_t n, int enc, const uint8_t *src,
    uint64_t *done_pages)
{
	uint64_t dst = m->vm->ram_va + idx * m->page_size, len = n * m->page_size;
	int minor = m->vm->minor && (enc == FRAME_ENC_RAW ||
	    (enc == FRAME_ENC_ZERO && m->page_size > 4096));
	int64_t done;
	int rc, err;

	if (minor && inst_minor_stage(m, idx, n, enc, src) < 0)
		return INST_ERROR;
	for (;;) {
		if (minor) {
			/* Written into the page cache: map it (wakes waiters). */
			struct uffdio_continue uc = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_CONTINUE, &uc);
			done = uc.mapped;
		} else if (enc == FRAME_ENC_RAW) {
			struct uffdio_copy cp = { .dst = dst, .src = (uintptr_t)src,
			    .len = len };

			rc = ioctl(m->vm->uffd, UFFDIO_COPY, &cp);
			done = cp.copy;
		} else if (enc == FRAME_ENC_ZERO && m->page_size > 4096) {
			/* hugetlbfs has no UFFDIO_ZEROPAGE: copy zeros. */
			static uint8_t *zeros;
			struct uffdio_copy cp = { .dst = dst, .len = len };

			if (zeros == NULL && (zeros = calloc(1, MIG_FRAME_MAX_BYTES)) == NULL)
				return INST_ERROR;
			if (len > MIG_FRAME_MAX_BYTES) {
				errno = EINVAL;
				return INST_ERROR;
			}
			cp.src = (uintptr_t)zeros;
			rc = ioctl(m->vm->uffd, UFFDIO_COPY, &cp);
			done = cp.copy;
		} else if (enc == FRAME_ENC_ZERO) {
			struct uffdio_zeropage zp = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_ZEROPAGE, &zp);
			done = zp.zeropage;
		} else {
			struct uffdio_poison po = { .range = { dst, len } };

			rc = ioctl(m->vm->uffd, UFFDIO_POISON, &po);
			done = po.updated;
		}
		err = errno;
		if (rc != 0 && done <= 0 && err == EAGAIN)
			continue;	/* the VMM's mm was busy; try again */
		if (minor) {
			/* Mapped, or failed: nothing left between write and map.
			 * Mapped in part: the rest stays written but unmapped,
			 * and the caller's next install of it rewrites it. */
			if (rc != 0 && done > 0)
				journal_writing(m->dst->journal, idx + (uint64_t)done / m->page_size,
				    n - (uint64_t)done / m->page_size);
			else
				journal_idle(m->dst->journal);
		}
		if (rc == 0 || done > 0) {
			*done_pages = rc == 0 ? n : (uint64_t)done / m->page_size;
			return INST_OK;
		}
		if (err == EEXIST) {
			/* Somebody else filled it: never write it again. */
			m->st.install_eexist++;
			log_warnx("migration %s: page %llu already present (EEXIST)",
			    m->id, (unsigned long long)idx);
			*done_pages = 1;
			return INST_EEXIST;
		}
		errno = err;
		log_warn("migration %s: install of pages %llu+%llu failed", m->id,
		    (unsigned long long)idx, (unsigned long long)n);
		m->st.install_errors++;
		return INST_ERROR;
	}
}

int
inst_init(struct migration *m)
{
	return (m->dst->installed = bitmap_new(m->npages)) == NULL ? -1 : 0;
}

int
inst_journal_new(struct migration *m)
{
	return inst_journal_open(m, NULL);
}

/*
 * After a restart of this daemon the VMM attached again with the same memfd
 * and uffd. Which pages are installed is the kernel's to say: an installed
 * page is exactly a page present in the memfd's page cache (SEEK_DATA): in
 * copy mode by construction, in minor mode once the journal is settled. A
 * page is never installed twice, because this bitmap starts from what is
 * really there.
 */
int64_t
inst_rebuild(struct migration *m)
{
	struct vm *v = m->vm;
	off_t off = 0, data, hole;
	int64_t n = 0;

	if (v->minor && inst_journal_recover(m) < 0)
		return -1;
	while ((data = lseek(v->memfd, off, SEEK_DATA)) >= 0) {
		if ((hole = lseek(v->memfd, data, SEEK_HOLE)) < 0)
			break;
		for (uint64_t p = (uint64_t)data / m->page_size;
		    p < m->npages && p < ((uint64_t)hole + m->page_size - 1) / m->page_size; p++) {
			bitmap_set(m->dst->installed, p);
			n++;
		}
		off = hole;
	}
	return n;
}

void
inst_release(struct migration *m)
{
	/* A journal outlives a migration only while it may still resume. */
	journal_close(m->dst->journal, !mig_active(m));
	m->dst->journal = NULL;
	free(m->dst->installed);
	free(m->dst->poisoned);
	m->dst->installed = m->dst->poisoned = NULL;
}
