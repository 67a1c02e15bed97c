/*
 * source_ram.h: the source's guest RAM, read and classified per page
 * (source_ram.c).
 */
#ifndef MIG_SOURCE_RAM_H
#define MIG_SOURCE_RAM_H

#include <stddef.h>
#include <stdint.h>

enum { PG_RAW, PG_ZERO, PG_POISON };

/* Reads pages [idx, idx+n) of the guest RAM memfd (pages of ps bytes) into
 * buf and classifies each in cls (PG_*); a poisoned page reads as zeros.
 * 0, or -1 on another read error (errno). */
int ram_read(int memfd, size_t ps, uint64_t idx, uint32_t n, uint8_t *buf, uint8_t *cls);

#endif
