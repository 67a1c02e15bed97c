/*
 * pagerule: the content rule of shimvm's guest RAM (and of peer_probe's
 * pages when it plays the source): page_qword(i, k) is qword k of 4 KiB
 * page i. Header-only: each test program has its own copy of `content`.
 */
#ifndef PAGERULE_H
#define PAGERULE_H
#include <stdint.h>
#include <string.h>

/*
 * Content (-C): "structured" (the default): qword k (0..511) of 4 KiB page
 * i is "SHIM", k and i, every 4th page zero. "random": every qword from a
 * hash of (i, k), nothing compresses. "mixed", a guest's RAM as it tends
 * to be (documented in bench/README.md): by a hash of i, 25% zero pages
 * (free memory), 30% text-like (English word pieces, the page cache of
 * text files and logs: about 3x with zstd -1), 25% structured (heap data:
 * small integers and pointers, about 9x) and 20% random (compressed or
 * encrypted data, media: incompressible).
 */
enum { CONTENT_STRUCTURED, CONTENT_RANDOM, CONTENT_MIXED };
static int content;

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

enum { PAGE_ZERO, PAGE_TEXT, PAGE_STRUCT, PAGE_RANDOM };

static int
page_class(uint64_t i)
{
	unsigned c;

	if (content == CONTENT_STRUCTURED)
		return i % 4 == 3 ? PAGE_ZERO : PAGE_STRUCT;
	if (content == CONTENT_RANDOM)
		return PAGE_RANDOM;
	c = (unsigned)(mix64(i ^ 0x6d69786564ull) % 20);
	return c < 5 ? PAGE_ZERO : c < 11 ? PAGE_TEXT : c < 16 ? PAGE_STRUCT : PAGE_RANDOM;
}

static uint64_t
page_qword(uint64_t i, unsigned k)
{
	/* 64 four-byte pieces of English, two a qword. */
	static const char words[257] =
	    "the and ing tionof  to  is  in  "
	    "a   for on  withas  by  at  page"
	    "datahostvm  run it  be  thatthis"
	    "willfromnot or  are was an  can "
	    "all has we  one his her out new "
	    "timeyearsaidmakelikeuse backonly"
	    "overgoodwellevendownmostlog err "
	    "okaycopysentlinkfileuserlisted, ";
	uint64_t h, v;

	switch (page_class(i)) {
	case PAGE_ZERO:
		return 0;
	case PAGE_STRUCT:
		return (0x5348494d00000000ull | i) ^ ((uint64_t)k << 40);
	case PAGE_TEXT:
		h = mix64(i * 512 + k);
		memcpy(&v, words + 4 * (h & 63), 4);
		memcpy((char *)&v + 4, words + 4 * ((h >> 6) & 63), 4);
		return v;
	default:
		return mix64(i * 512 + k);
	}
}

#endif
