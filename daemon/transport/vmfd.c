/*
 * vmfd: what an fd a VMM hands over really is, by what the kernel says of
 * it (the name of its inode under /proc/self/fd, its fdinfo, fstatfs and
 * F_GET_SEALS), never by what the VMM claims. vm_attach_check() refuses an
 * Attach whose fds are not what their places say: a pipe or socket as the
 * userfaultfd would read EOF or block, an always-readable doorbell would be
 * served at fault priority for ever, and guest RAM or a fault ring the VMM
 * could shrink under the daemon's mapping would kill it with SIGBUS (see
 * doc/design.md, "One VMM cannot hurt the daemon or another VMM"). Pure
 * checks, no state; loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mig_compat.h"
#include "vmfd.h"

/* The kernel's name for fd's file: "anon_inode:[eventfd]", "pipe:[42]", a path. */
static int
vmfd_link(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((n = readlink(path, buf, len - 1)) < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The value of `key` ("API:") in fd's fdinfo, as text; -1 if absent. */
static int
vmfd_info(int fd, const char *key, char *val, size_t len)
{
	char path[64], buf[1024], *p, *e;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; p != NULL && *p != '\0'; p = (e = strchr(p, '\n')) ? e + 1 : NULL)
		if (!strncmp(p, key, strlen(key))) {
			p += strlen(key);
			p += strspn(p, " \t");
			snprintf(val, len, "%.*s", (int)strcspn(p, "\n"), p);
			return 0;
		}
	return -1;
}

/* NULL if fd is the anonymous inode `anon` ("[eventfd]"); else why not. */
static const char *
vmfd_anon(int fd, const char *anon, const char *what, char *why, size_t len)
{
	char link[256], want[64];

	snprintf(want, sizeof(want), "anon_inode:%s", anon);
	if (vmfd_link(fd, link, sizeof(link)) < 0)
		snprintf(why, len, "%s: cannot tell what the fd is: %s", what, strerror(errno));
	else if (strcmp(link, want) != 0)
		snprintf(why, len, "%s is %s, not %s", what, link, want);
	else
		return NULL;
	return why;
}

const char *
vmfd_check_uffd(int fd, int sigbus, char *why, size_t len)
{
	unsigned long long api, features, ioctls;
	char val[128];

	if (vmfd_anon(fd, "[userfaultfd]", "userfaultfd", why, len) != NULL)
		return why;
	/* "API:\t<UFFD_API>:<features>:<ioctls>"; features carry the
	 * kernel's INITIALIZED bit once UFFDIO_API was called: before that a
	 * read fails and poll reports an error for ever. */
	if (vmfd_info(fd, "API:", val, sizeof(val)) < 0 ||
	    sscanf(val, "%llx:%llx:%llx", &api, &features, &ioctls) != 3) {
		snprintf(why, len, "userfaultfd: its fdinfo has no API line");
		return why;
	}
	if (!(features & MIG_UFFD_FEATURE_INITIALIZED)) {
		snprintf(why, len, "userfaultfd is not set up (no UFFDIO_API)");
		return why;
	}
	if (sigbus != !!(features & UFFD_FEATURE_SIGBUS)) {
		snprintf(why, len, "userfaultfd %s UFFD_FEATURE_SIGBUS, the fault mode %s it",
		    sigbus ? "lacks" : "has", sigbus ? "(ring) needs" : "(uffd) excludes");
		return why;
	}
	return NULL;
}

const char *
vmfd_check_eventfd(int fd, char *why, size_t len)
{
	char val[32];

	if (vmfd_anon(fd, "[eventfd]", "doorbell", why, len) != NULL)
		return why;
	/* A semaphore eventfd gives 1 per read: whatever count the VMM wrote
	 * would keep it readable, one wake-up per unit. */
	if (vmfd_info(fd, "eventfd-semaphore:", val, sizeof(val)) == 0 && atoi(val) != 0) {
		snprintf(why, len, "doorbell is a semaphore eventfd (EFD_SEMAPHORE)");
		return why;
	}
	return NULL;
}

const char *
vmfd_check_shm(int fd, const struct vmfd_shm *want, char *why, size_t len)
{
	struct statfs sfs;
	struct stat st;
	char link[256];
	int seals;

	if (vmfd_link(fd, link, sizeof(link)) < 0)
		snprintf(link, sizeof(link), "fd %d", fd);
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		snprintf(why, len, "%s: fstat: %s", want->what, strerror(errno));
		return why;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s is %s, not a memfd", want->what, link);
		return why;
	}
	if ((unsigned long)sfs.f_type != (want->huge ? HUGETLBFS_MAGIC : TMPFS_MAGIC)) {
		snprintf(why, len, "%s %s is not on %s (f_type 0x%lx)", want->what, link,
		    want->huge ? "hugetlbfs" : "shmem (a memfd)", (unsigned long)sfs.f_type);
		return why;
	}
	/* Seals are only ever added: once F_SEAL_SHRINK is seen, the size
	 * read after it is a floor for as long as the file lives. */
	if ((seals = fcntl(fd, F_GET_SEALS)) < 0 || !(seals & F_SEAL_SHRINK)) {
		snprintf(why, len, "%s %s is not sealed against shrinking (F_SEAL_SHRINK; "
		    "create it with memfd_create(MFD_ALLOW_SEALING))", want->what, link);
		return why;
	}
	if (want->writable && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		snprintf(why, len, "%s %s is sealed against writes: nothing could be "
		    "installed", want->what, link);
		return why;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < want->min ||
	    (uint64_t)st.st_size > want->max) {
		if (want->min == want->max)
			snprintf(why, len, "%s %s has %lld bytes, not the %llu announced",
			    want->what, link, (long long)st.st_size,
			    (unsigned long long)want->min);
		else
			snprintf(why, len, "%s %s has %lld bytes, not %llu to %llu", want->what,
			    link, (long long)st.st_size, (unsigned long long)want->min,
			    (unsigned long long)want->max);
		return why;
	}
	return NULL;
}
