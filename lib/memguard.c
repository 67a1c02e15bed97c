/*
 * memguard: copies that survive a SIGBUS of their destination (memguard.h).
 * The handler is installed at the first copy and chains to the disposition
 * it replaced for any SIGBUS outside a copy: it puts that back and returns,
 * the access faults again, and the old action (death, by default) applies.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "memguard.h"

static __thread sigjmp_buf mg_jmp;
static __thread volatile sig_atomic_t mg_active;
static __thread uintptr_t mg_lo, mg_hi;
static struct sigaction mg_old;
static int mg_installed;

static void
mg_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	if (mg_active && a >= mg_lo && a < mg_hi) {
		mg_active = 0;
		siglongjmp(mg_jmp, 1);
	}
	/* Not ours: the old action applies to the access when it faults again. */
	sigaction(sig, &mg_old, NULL);
	mg_installed = 0;
}

static int
mg_install(void)
{
	struct sigaction sa = { .sa_sigaction = mg_sigbus, .sa_flags = SA_SIGINFO };

	if (mg_installed)
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &mg_old) < 0)
		return -1;
	mg_installed = 1;
	return 0;
}

int
memguard_copy(void *dst, const void *src, size_t len)
{
	if (mg_install() < 0)
		return -1;
	mg_lo = (uintptr_t)dst;
	mg_hi = mg_lo + len;
	if (sigsetjmp(mg_jmp, 1) != 0) {
		errno = EFAULT;
		return -1;
	}
	mg_active = 1;
	if (src != NULL)
		memcpy(dst, src, len);
	else
		memset(dst, 0, len);
	mg_active = 0;
	return 0;
}
