/*
 * test_memguard: a copy into a mapping whose file shrank under it (the
 * SIGBUS a VMM could raise in the daemon) fails with EFAULT and the process
 * lives on; copies into the part still there succeed, before and after; a
 * SIGBUS outside any copy still kills (a child, by the action it had).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memguard.h"
#include "unit.h"

int
main(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t src[4096] = { 1, 2, 3 };
	int fd = memfd_create("test_memguard", MFD_CLOEXEC), st = 0;
	uint8_t *map;
	pid_t pid;

	CHECK(fd >= 0 && ftruncate(fd, (off_t)(2 * pg)) == 0);
	map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK_EQ(memguard_copy(map + pg, src, sizeof(src)), 0);
	CHECK_EQ(map[pg + 2], 3);
	/* The file loses its second page: the mapping there now SIGBUSes. */
	CHECK(ftruncate(fd, (off_t)pg) == 0);
	errno = 0;
	CHECK_EQ(memguard_copy(map + pg, src, sizeof(src)), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(memguard_copy(map + pg, NULL, 64), -1);
	CHECK_EQ(memguard_copy(map, src, sizeof(src)), 0);
	CHECK_EQ(map[2], 3);
	CHECK_EQ(memguard_copy(map + pg, src, 1), -1);	/* again, after a jump */
	/* Outside a copy, a SIGBUS is what it always was. */
	if ((pid = fork()) == 0) {
		memguard_copy(map, NULL, 1);	/* the handler is installed */
		map[pg] = 1;
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	/* By SIGBUS, or (ASan's handler was the old action) by its report. */
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) ||
	    (WIFEXITED(st) && WEXITSTATUS(st) != 0));
	return unit_done("test_memguard");
}
