/*
 * minivmm_args.c: minivmm's command line (ctl_parse_args): the options,
 * their defaults, the usage text, and the checks that pick the mode
 * (source, incoming, standalone or selftest). Fills struct ctl for main.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minivmm.h"

static void
ctl_usage(FILE *f)
{
	fprintf(f,
	    "usage: minivmm --name NAME [--mem SIZE] [--vcpus N]\n"
	    "               [--workload quiet|writer] [--vmm-socket PATH]\n"
	    "               [--incoming] [--report FILE] [--selftest-snapshot]\n"
	    "               [--passes N] [--install copy|minor] [--verbose]\n"
	    "               [--selftest-flip GPA] [--selftest-early]\n"
	    "  --mem SIZE          guest RAM, K/M/G suffix (default 64M, "
	    "max 3G)\n"
	    "  --vcpus N           vCPUs, 1..%d (default 2)\n"
	    "  --workload W        quiet: fill once and wait; writer: keep "
	    "rewriting\n"
	    "                      every page (default writer)\n"
	    "  --vmm-socket PATH   attach to migrationd's VMM socket\n"
	    "  --incoming          empty VM waiting for a migration "
	    "(needs --vmm-socket)\n"
	    "  --report FILE       write the verdict as JSON\n"
	    "  --install MODE      incoming: how migrationd installs pages: copy\n"
	    "                      (UFFDIO_COPY, default) or minor (page cache +\n"
	    "                      UFFDIO_CONTINUE)\n"
	    "  --selftest-snapshot save the vCPU state, restore it into a "
	    "fresh VM, verify\n"
	    "  --passes N          standalone: writer passes before "
	    "verifying (default 3)\n"
	    "  --selftest-flip GPA with --selftest-snapshot: flip a bit of the "
	    "byte at GPA\n"
	    "                      after the restore; the check must name it\n"
	    "  --selftest-early    with --selftest-snapshot: snapshot as soon as "
	    "the guest\n"
	    "                      starts, before it has filled its pages\n"
	    "exit: 0 intact (or migrated away), 1 corrupt, 2 error\n",
	    MV_MAX_VCPUS);
}

static int
ctl_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	default: break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end != '\0' || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* 0x-prefixed hexadecimal, for addresses. */
static int
ctl_parse_hex(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (strncmp(s, "0x", 2) != 0)
		return -1;
	v = strtoull(s + 2, &end, 16);
	if (errno != 0 || end == s + 2 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
ctl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Checks the options against each other and picks the mode. */
static int
ctl_check_args(struct ctl *c, int incoming, int selftest)
{
	if (c->name == NULL || c->name[0] == '\0') {
		fprintf(stderr, "minivmm: --name is required\n");
		return -1;
	}
	if (c->mem % MV_PAGE_SIZE != 0 || c->mem < 2 * MV_DATA_GPA ||
	    c->mem > ((uint64_t)MV_MAX_PD << 30)) {
		fprintf(stderr, "minivmm: --mem must be a multiple of 4K "
		    "between 2M and %dG\n", MV_MAX_PD);
		return -1;
	}
	if (c->snapshot_early && !selftest) {
		fprintf(stderr, "minivmm: --selftest-early needs "
		    "--selftest-snapshot\n");
		return -1;
	}
	if (c->flip_gpa != UINT64_MAX && (!selftest || c->flip_gpa >= c->mem)) {
		fprintf(stderr, "minivmm: --selftest-flip needs "
		    "--selftest-snapshot and an address inside --mem\n");
		return -1;
	}
	if (selftest && (incoming || c->socket_path != NULL)) {
		fprintf(stderr, "minivmm: --selftest-snapshot runs without "
		    "a daemon (no --incoming, no --vmm-socket)\n");
		return -1;
	}
	if (incoming && c->socket_path == NULL) {
		fprintf(stderr, "minivmm: --incoming needs --vmm-socket\n");
		return -1;
	}
	if (incoming)
		c->mode = CTL_INCOMING;
	else if (selftest)
		c->mode = CTL_SELFTEST;
	else if (c->socket_path != NULL)
		c->mode = CTL_SOURCE;
	else
		c->mode = CTL_STANDALONE;
	return 0;
}

int
ctl_parse_args(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "workload", required_argument, NULL, 'w' },
		{ "vmm-socket", required_argument, NULL, 's' },
		{ "incoming", no_argument, NULL, 'i' },
		{ "report", required_argument, NULL, 'r' },
		{ "selftest-snapshot", no_argument, NULL, 'S' },
		{ "passes", required_argument, NULL, 'p' },
		{ "install", required_argument, NULL, 'I' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "selftest-flip", required_argument, NULL, 'F' },
		{ "selftest-early", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, incoming = 0, selftest = 0;
	uint64_t v;

	c->mem = 64ULL << 20;
	c->nvcpus = 2;
	c->workload = MV_WORKLOAD_WRITER;
	c->passes = 3;
	c->flip_gpa = UINT64_MAX;
	while ((ch = getopt_long(argc, argv, "n:m:c:w:s:ir:Sp:I:vF:Eh", opts,
	    NULL)) != -1) {
		switch (ch) {
		case 'n':
			c->name = optarg;
			break;
		case 'm':
			if (ctl_parse_size(optarg, &c->mem) < 0) {
				fprintf(stderr, "minivmm: bad --mem '%s'\n",
				    optarg);
				return -1;
			}
			break;
		case 'c':
			if (ctl_parse_uint(optarg, 1, MV_MAX_VCPUS, &v) < 0) {
				fprintf(stderr, "minivmm: --vcpus must be "
				    "1..%d\n", MV_MAX_VCPUS);
				return -1;
			}
			c->nvcpus = (int)v;
			break;
		case 'w':
			if (strcmp(optarg, "quiet") == 0)
				c->workload = MV_WORKLOAD_QUIET;
			else if (strcmp(optarg, "writer") == 0)
				c->workload = MV_WORKLOAD_WRITER;
			else {
				fprintf(stderr, "minivmm: --workload is quiet "
				    "or writer\n");
				return -1;
			}
			break;
		case 's':
			c->socket_path = optarg;
			break;
		case 'i':
			incoming = 1;
			break;
		case 'r':
			c->report_path = optarg;
			break;
		case 'S':
			selftest = 1;
			break;
		case 'p':
			if (ctl_parse_uint(optarg, 1, 1000000, &c->passes) < 0) {
				fprintf(stderr, "minivmm: bad --passes\n");
				return -1;
			}
			break;
		case 'I':
			if (strcmp(optarg, "minor") == 0)
				c->install_minor = 1;
			else if (strcmp(optarg, "copy") != 0) {
				fprintf(stderr, "minivmm: --install is copy or minor\n");
				return -1;
			}
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'E':
			c->snapshot_early = 1;
			break;
		case 'F':
			if (ctl_parse_size(optarg, &c->flip_gpa) < 0 &&
			    ctl_parse_hex(optarg, &c->flip_gpa) < 0) {
				fprintf(stderr, "minivmm: bad --selftest-flip "
				    "'%s'\n", optarg);
				return -1;
			}
			break;
		case 'h':
			ctl_usage(stdout);
			exit(0);
		default:
			ctl_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "minivmm: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	return ctl_check_args(c, incoming, selftest);
}
