/*
 * source_ram: reading the source VMM's guest RAM for the page server
 * (source.c) and pre-copy. Guest RAM is read with pread on the memfd, never
 * through a mapping: a hardware-poisoned page then fails the read with EIO
 * instead of killing the daemon with SIGBUS, and travels as a poison
 * marker. (The [debug] inject_poison key makes chosen pages read as
 * poisoned, for tests on hosts without memory-failure injection.)
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "source_ram.h"
#include "util.h"

static int
page_is_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < len / sizeof(*w); i++)
		if (w[i] != 0)
			return 0;
	return 1;
}

static int
ram_injected(uint64_t idx)
{
	for (int k = 0; k < D->conf.ninject_poison; k++)
		if (D->conf.inject_poison[k] == idx)
			return 1;
	return 0;
}

int
ram_read(int memfd, size_t ps, uint64_t idx, uint32_t n, uint8_t *buf, uint8_t *cls)
{
	int bulk_ok = 1;
	ssize_t r;

	for (uint32_t k = 0; k < n && bulk_ok; k++)
		bulk_ok = !ram_injected(idx + k);
	if (bulk_ok) {
		r = pread(memfd, buf, n * ps, (off_t)(idx * ps));
		bulk_ok = r == (ssize_t)(n * ps);
		if (r < 0 && errno != EIO && errno != EHWPOISON)
			return -1;
	}
	for (uint32_t k = 0; k < n; k++) {
		uint8_t *p = buf + k * ps;

		if (!bulk_ok && (ram_injected(idx + k) ||
		    pread(memfd, p, ps, (off_t)((idx + k) * ps)) != (ssize_t)ps)) {
			if (!ram_injected(idx + k) && errno != EIO && errno != EHWPOISON)
				return -1;
			memset(p, 0, ps);
			cls[k] = PG_POISON;
			continue;
		}
		cls[k] = page_is_zero(p, ps) ? PG_ZERO : PG_RAW;
	}
	return 0;
}
