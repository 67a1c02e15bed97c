/*
 * mig-ctl: the operator's command line for migrationd, built on libmigctl
 * (gRPC over the control socket). Human output by default (tables, a live
 * progress bar with rate and ETA), --json for scripts. Exit codes: 0 success,
 * 2 usage error, 3 daemon unreachable, 4 request refused by the daemon,
 * 5 the migration failed or was paused (migrate --wait, watch).
 * This file holds the commands; how a migration, an event and the progress
 * line are printed is in mig-ctl-output.c.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libmigctl.h"
#include "rate.h"
#include "mig-ctl.h"

enum { EX_OK = 0, EX_USAGE_ = 2, EX_UNREACH = 3, EX_REFUSED = 4, EX_MIGFAIL = 5 };

static const char *sock_path;
int json;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mig-ctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  prepare VM [--from NAME] [-q]        destination: expect VM (only from NAME), print a one-time token\n"
	    "  migrate VM --to HOST:PORT --token T [--precopy off|auto|ROUNDS|DURATION]\n"
	    "          [--compression auto|on|off] [--streams N]\n"
	    "          [--wait] [--timeout SECS]    source: migrate VM to the destination daemon\n"
	    "  postcopy ID|VM                       source in PRECOPY: switch over now\n"
	    "  set ID|VM --max-bandwidth RATE       source: a new cap on the background stream\n"
	    "  status ID|VM                         one migration, with its figures\n"
	    "  list [--state S] [--role R] [--vm VM]\n"
	    "                                       VMs attached here and migrations (history too)\n"
	    "  watch ID|VM [--interval MS]          live progress until the migration ends\n"
	    "  pause ID|VM                          source: hold a post-copy migration\n"
	    "  recover ID|VM [--to HOST:PORT]       source: resume a paused migration now\n"
	    "  cancel ID|VM                         cancel before the VM has left the source\n"
	    "  latency ID|VM                        demand-fault latency histogram\n"
	    "  health                               daemon version, uptime, listeners\n"
	    "\n"
	    "options:\n"
	    "  -s, --socket PATH   control socket (default " MIGCTL_DEFAULT_SOCKET ")\n"
	    "  -j, --json          machine-readable output\n"
	    "  -h, --help          this text; COMMAND --help for one command\n"
	    "\n"
	    "exit codes: 0 ok, 2 usage, 3 daemon unreachable, 4 refused, 5 migration failed/paused\n");
}

static struct migctl *
connect_or_die(void)
{
	struct migctl *c = migctl_open(sock_path);

	if (c == NULL) {
		fprintf(stderr, "mig-ctl: cannot reach migrationd at %s: %s\n",
		    sock_path ? sock_path : MIGCTL_DEFAULT_SOCKET, strerror(errno));
		exit(EX_UNREACH);
	}
	return c;
}

/* Checks a call's result; prints the daemon's error and exits on failure. */
static void
check(struct migctl *c, int rc)
{
	if (rc == 0)
		return;
	if (rc < 0) {
		fprintf(stderr, "mig-ctl: %s\n", migctl_error(c));
		exit(EX_UNREACH);
	}
	if (json) {
		printf("{\"error\":{");
		json_str("code", migctl_code_name(rc), 0);
		json_str("message", migctl_error(c), 1);
		printf("}}\n");
	}
	fprintf(stderr, "mig-ctl: %s: %s\n", migctl_code_name(rc), migctl_error(c));
	exit(EX_REFUSED);
}

static int
want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

static int
cmd_prepare(int argc, char **argv)
{
	Migrationd__V1__PrepareIncomingResponse *r;
	const char *vm = NULL, *from = NULL;
	struct migctl *c;
	int quiet = 0;

	if (want_help(argc, argv)) {
		printf("usage: mig-ctl prepare VM [--from NAME] [-q]\n"
		    "Destination side: expect an incoming migration of VM (its VMM must be\n"
		    "attached with --incoming) and print the one-time token the source\n"
		    "must present. --from NAME: only a source whose peer certificate\n"
		    "carries NAME (subject, CN, DNS or URI subjectAltName, e-mail) may\n"
		    "spend the token; needs peer TLS. -q prints the token alone.\n");
		return EX_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-q"))
			quiet = 1;
		else if (!strcmp(argv[i], "--from") && i + 1 < argc && argv[i + 1][0] != '\0')
			from = argv[++i];
		else if (argv[i][0] == '-' || vm != NULL) {
			fprintf(stderr, "mig-ctl prepare: unexpected '%s' (usage: prepare VM "
			    "[--from NAME] [-q])\n", argv[i]);
			return EX_USAGE_;
		} else
			vm = argv[i];
	}
	if (vm == NULL) {
		fprintf(stderr, "mig-ctl prepare: a VM name is required\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	check(c, migctl_prepare_from(c, vm, from, &r));
	if (quiet)
		printf("%s\n", r->token);
	else if (json) {
		printf("{");
		json_str("token", r->token, 0);
		printf("\"migration\":");
		print_json(r->migration);
		printf("}\n");
	} else
		printf("prepared migration %s for VM %s\ntoken: %s\n", r->migration->id, vm,
		    r->token);
	migctl_free(r);
	migctl_close(c);
	return EX_OK;
}


static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


struct watch_ctx {
	int		 tty;
	int		 events;	/* print every event (watch) */
	int		 stop_paused;	/* PAUSED ends the wait (migrate --wait) */
	double		 t0, timeout, last_print;
	int		 timed_out;
	Migrationd__V1__MigrationState last;
	int		 last_kind;
};

static int
watch_cb(const Migrationd__V1__MigrationEvent *ev, void *arg)
{
	struct watch_ctx *w = arg;
	const Migrationd__V1__Migration *m = ev->migration;
	double now = mono_s();

	if (m == NULL)
		return 1;
	w->last = m->state;
	if (json && w->events)
		print_event_json(ev);
	else if (!json && (w->tty || now - w->last_print >= 1.0 || terminal_state(m->state) ||
	    ev->kind == MIGRATIOND__V1__MIGRATION_EVENT__KIND__STATE_CHANGE)) {
		if (ev->kind == MIGRATIOND__V1__MIGRATION_EVENT__KIND__STATE_CHANGE && w->tty)
			fprintf(stderr, "\r%*s\r", 110, "");
		progress_line(ev, w->tty);
		w->last_print = now;
	}
	if (w->stop_paused && m->state == MIGRATIOND__V1__MIGRATION_STATE__PAUSED)
		return 1;
	if (now - w->t0 > w->timeout) {
		w->timed_out = 1;
		return 1;
	}
	return 0;
}

/* Follows one migration with WatchMigration; prints the final record. */
static int
follow(struct migctl *c, const char *id, double timeout, int events, int stop_paused)
{
	struct watch_ctx w = { .tty = isatty(STDERR_FILENO), .events = events,
	    .stop_paused = stop_paused, .t0 = mono_s(), .timeout = timeout };
	Migrationd__V1__GetMigrationResponse *g;
	const Migrationd__V1__Migration *m;
	int rc;

	check(c, migctl_watch(c, id, 0, watch_cb, &w));
	if (!json && w.tty)
		fprintf(stderr, "\n");
	if (w.timed_out)
		fprintf(stderr, "mig-ctl: gave up waiting after %.0f s\n", timeout);
	check(c, migctl_get(c, id, &g));
	m = g->migration;
	if (!(json && events))
		print_migration(m);
	rc = m->state == MIGRATIOND__V1__MIGRATION_STATE__COMPLETED ? EX_OK : EX_MIGFAIL;
	if (rc != EX_OK && m->reason[0])
		fprintf(stderr, "mig-ctl: migration %s %s: %s\n", m->id,
		    migctl_state_name(m->state), m->reason);
	migctl_free(g);
	return rc;
}

static int
cmd_migrate(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'k' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "precopy", required_argument, NULL, 'p' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "compression", required_argument, NULL, 'z' },
		{ "streams", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	Migrationd__V1__StartMigrationResponse *r;
	const char *to = NULL, *token = NULL, *vm, *precopy = NULL, *cz = NULL;
	uint64_t bps = 0;
	char why[200], *end;
	double timeout = 3600;
	int ch, wait = 0, rc = EX_OK;
	unsigned long streams = 0;
	struct migctl *c;

	optind = 0;	/* full reset of glibc getopt after main() parsed */
	while ((ch = getopt_long(argc, argv, "t:k:wT:p:b:z:S:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			streams = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || streams < 1 || streams > 8) {
				fprintf(stderr, "mig-ctl migrate: --streams: \"%s\": must be a "
				    "number from 1 to 8\n", optarg);
				return EX_USAGE_;
			}
			break;
		case 'p': precopy = optarg; break;
		case 'z':
			if (strcmp(optarg, "auto") && strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "mig-ctl migrate: --compression: \"%s\": must be "
				    "auto, on or off\n", optarg);
				return EX_USAGE_;
			}
			cz = optarg;
			break;
		case 'b':
			if (rate_parse(optarg, &bps, why, sizeof(why)) < 0) {
				fprintf(stderr, "mig-ctl migrate: --max-bandwidth: %s\n", why);
				return EX_USAGE_;
			}
			break;
		case 't': to = optarg; break;
		case 'k': token = optarg; break;
		case 'w': wait = 1; break;
		case 'T': timeout = atof(optarg); break;
		case 'h':
			printf("usage: mig-ctl migrate VM --to HOST:PORT --token TOKEN [--precopy P] "
			    "[--wait] [--timeout SECS]\n"
			    "Source side: migrate VM to the migrationd at HOST:PORT (a name, an\n"
			    "IPv4 address or a bracketed IPv6 one: [::1]:7480), which issued\n"
			    "TOKEN with `mig-ctl prepare`; its certificate must carry the name. --wait shows a live progress bar (rate,\n"
			    "ETA) until the migration ends, and exits 5 unless it completed (also\n"
			    "when it pauses or --timeout passes).\n"
			    "--precopy: stream RAM while the VM still runs here before the\n"
			    "switch-over: off (post-copy only), auto (until the dirty set stops\n"
			    "shrinking or is small), ROUNDS (e.g. 3) or DURATION (e.g. 500ms, 30s);\n"
			    "default: the daemon's [peer] precopy (off). `mig-ctl postcopy` switches\n"
			    "over at once.\n"
			    "--max-bandwidth RATE: cap the background and pre-copy stream (bits/s:\n"
			    "200M, 1G; off); demand pages are never capped. `mig-ctl set` changes it.\n"
			    "--compression auto|on|off: zstd for background and pre-copy pages\n"
			    "where the destination decodes it; auto (the daemon's [peer] compression,\n"
			    "auto by default) compresses while that beats raw on the measured link.\n"
			    "--streams N: background streams, each its own TLS connection (1..8;\n"
			    "default: the daemon's [peer] streams); the destination may take fewer.\n");
			return EX_OK;
		default:
			return EX_USAGE_;
		}
	}
	if (optind >= argc || to == NULL || token == NULL) {
		fprintf(stderr, "mig-ctl migrate: need VM, --to HOST:PORT and --token\n");
		return EX_USAGE_;
	}
	vm = argv[optind];
	c = connect_or_die();
	check(c, migctl_start_streams(c, vm, to, token, precopy, bps, cz, (uint32_t)streams, &r));
	if (wait) {
		char id[64];

		snprintf(id, sizeof(id), "%s", r->migration->id);
		if (!json)
			printf("migration %s started: %s -> %s\n", id, vm, to);
		fflush(stdout);
		rc = follow(c, id, timeout, 0, 1);
	} else {
		print_migration(r->migration);
	}
	migctl_free(r);
	migctl_close(c);
	return rc;
}

static int
cmd_watch(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double timeout = 1e9;
	struct migctl *c;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "T:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'T': timeout = atof(optarg); break;
		case 'h':
			printf("usage: mig-ctl watch ID|VM [--timeout SECS]\n"
			    "Follows one migration live (state changes, pages, rate, ETA, fault\n"
			    "rate and latency) until it ends; --json prints each event as one JSON\n"
			    "line. Exits 0 if it completed, 5 otherwise.\n");
			return EX_OK;
		default:
			return EX_USAGE_;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "mig-ctl watch: usage: watch ID|VM [--timeout SECS]\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	rc = follow(c, argv[optind], timeout, 1, 0);
	migctl_close(c);
	return rc;
}

/* Commands that take one ID|VM and answer with the migration. */
static int
cmd_one(int argc, char **argv, const char *help)
{
	const char *to = NULL;
	struct migctl *c;
	void *r = NULL;
	const Migrationd__V1__Migration *m;
	int rc, recover = !strcmp(argv[0], "recover"), set = !strcmp(argv[0], "set");
	uint64_t bps = 0;
	char why[200];

	if (want_help(argc, argv)) {
		printf("%s", help);
		return EX_OK;
	}
	if (set && (argc != 4 || strcmp(argv[2], "--max-bandwidth") != 0)) {
		fprintf(stderr, "mig-ctl %s: %s", argv[0], help);
		return EX_USAGE_;
	}
	if (set && rate_parse(argv[3], &bps, why, sizeof(why)) < 0) {
		fprintf(stderr, "mig-ctl set: --max-bandwidth: %s\n", why);
		return EX_USAGE_;
	}
	if (set)
		;
	else if (recover && argc == 4 && !strcmp(argv[2], "--to"))
		to = argv[3];
	else if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "mig-ctl %s: %s", argv[0], help);
		return EX_USAGE_;
	}
	c = connect_or_die();
	if (!strcmp(argv[0], "status"))
		rc = migctl_get(c, argv[1], (Migrationd__V1__GetMigrationResponse **)&r);
	else if (!strcmp(argv[0], "pause"))
		rc = migctl_pause(c, argv[1], (Migrationd__V1__PauseMigrationResponse **)&r);
	else if (!strcmp(argv[0], "cancel"))
		rc = migctl_cancel(c, argv[1], (Migrationd__V1__CancelMigrationResponse **)&r);
	else if (set)
		rc = migctl_set_bandwidth(c, argv[1], bps, (Migrationd__V1__SetMigrationResponse **)&r);
	else if (!strcmp(argv[0], "postcopy"))
		rc = migctl_postcopy(c, argv[1], (Migrationd__V1__StartPostcopyResponse **)&r);
	else
		rc = migctl_recover(c, argv[1], to, (Migrationd__V1__RecoverMigrationResponse **)&r);
	check(c, rc);
	/* Each of these responses is { Migration migration = 1; }. */
	m = ((Migrationd__V1__GetMigrationResponse *)r)->migration;
	print_migration(m);
	migctl_free(r);
	migctl_close(c);
	return EX_OK;
}

static int
parse_enum(const ProtobufCEnumDescriptor *d, const char *s, int *out)
{
	for (unsigned i = 0; i < d->n_values; i++) {
		if (!strcasecmp(d->values[i].name, s)) {
			*out = d->values[i].value;
			return 0;
		}
	}
	return -1;
}

static int
cmd_list(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "role", required_argument, NULL, 'R' },
		{ "vm", required_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	Migrationd__V1__ListMigrationsResponse *l;
	const char *vm = NULL;
	int ch, state = 0, role = 0;
	struct migctl *c;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "S:R:V:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			if (parse_enum(&migrationd__v1__migration_state__descriptor, optarg,
			    &state) < 0) {
				fprintf(stderr, "mig-ctl list: unknown state '%s' (PREPARED, "
				    "CONNECTING, BLACKOUT, POSTCOPY, COMPLETED, PAUSED, FAILED, "
				    "CANCELLED)\n", optarg);
				return EX_USAGE_;
			}
			break;
		case 'R':
			if (parse_enum(&migrationd__v1__role__descriptor, optarg, &role) < 0) {
				fprintf(stderr, "mig-ctl list: unknown role '%s' (SOURCE, "
				    "DESTINATION)\n", optarg);
				return EX_USAGE_;
			}
			break;
		case 'V': vm = optarg; break;
		case 'h':
			printf("usage: mig-ctl list [--state STATE] [--role source|destination] "
			    "[--vm VM]\n"
			    "VMs attached to this daemon and every migration it knows, history\n"
			    "included (kept across restarts), oldest first.\n");
			return EX_OK;
		default:
			return EX_USAGE_;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mig-ctl list: unexpected '%s'\n", argv[optind]);
		return EX_USAGE_;
	}
	c = connect_or_die();
	check(c, migctl_list(c, state, role, vm, &l));
	if (json) {
		printf("{\"vms\":[");
		for (size_t i = 0; i < l->n_vms; i++) {
			printf("%s{", i ? "," : "");
			json_str("name", l->vms[i]->name, 0);
			json_str("role", migctl_role_name(l->vms[i]->role), 0);
			printf("\"ram_bytes\":%llu,\"vcpus\":%u,\"attached\":%s}",
			    (unsigned long long)l->vms[i]->ram_bytes, l->vms[i]->vcpus,
			    l->vms[i]->attached ? "true" : "false");
		}
		printf("],\"migrations\":[");
		for (size_t i = 0; i < l->n_migrations; i++) {
			printf("%s", i ? "," : "");
			print_json(l->migrations[i]);
		}
		printf("]}\n");
	} else {
		printf("%-16s %-12s %-9s %s\n", "VM", "ROLE", "RAM", "VMM");
		for (size_t i = 0; i < l->n_vms; i++)
			printf("%-16s %-12s %5llu MiB %s\n", l->vms[i]->name,
			    l->vms[i]->role == MIGRATIOND__V1__ROLE__DESTINATION ? "incoming" : "runs here",
			    (unsigned long long)(l->vms[i]->ram_bytes >> 20),
			    l->vms[i]->attached ? "attached" : "gone");
		printf("\n%-16s %-16s %-12s %-10s %-22s %s\n", "MIGRATION", "VM", "ROLE",
		    "STATE", "PEER", "PAGES");
		for (size_t i = 0; i < l->n_migrations; i++) {
			const Migrationd__V1__Migration *m = l->migrations[i];

			printf("%-16s %-16s %-12s %-10s %-22s %llu/%llu\n", m->id, m->vm,
			    migctl_role_name(m->role), migctl_state_name(m->state),
			    m->peer[0] ? m->peer : "-",
			    (unsigned long long)(m->pages_demand + m->pages_background +
			    m->pages_zero), (unsigned long long)m->pages_total);
		}
	}
	migctl_free(l);
	migctl_close(c);
	return EX_OK;
}

static int
cmd_latency(int argc, char **argv)
{
	Migrationd__V1__GetFaultLatencyResponse *r;
	struct migctl *c;
	uint64_t top = 0;

	if (want_help(argc, argv)) {
		printf("usage: mig-ctl latency ID|VM\n"
		    "Demand-fault latency of a (destination) migration: a histogram in the\n"
		    "terminal, with p50, p90, p99, p99.9 and how it was measured.\n");
		return EX_OK;
	}
	if (argc != 2) {
		fprintf(stderr, "mig-ctl latency: usage: latency ID|VM\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	check(c, migctl_latency(c, argv[1], &r));
	if (json) {
		printf("{");
		json_str("migration_id", r->migration_id, 0);
		json_str("vm", r->vm, 0);
		json_str("source", r->source, 0);
		printf("\"count\":%llu,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
		    "\"p999_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
		    "\"buckets\":[", (unsigned long long)r->count, r->p50_us, r->p90_us,
		    r->p99_us, r->p999_us, r->min_us, r->max_us, r->mean_us);
		for (size_t i = 0; i < r->n_buckets; i++)
			printf("%s{\"lower_us\":%.3f,\"upper_us\":%.3f,\"count\":%llu}",
			    i ? "," : "", r->buckets[i]->lower_us, r->buckets[i]->upper_us,
			    (unsigned long long)r->buckets[i]->count);
		printf("],\"annotated_exits\":%llu,\"phases\":[",
		    (unsigned long long)r->annotated_exits);
		for (size_t i = 0; i < r->n_phases; i++)
			printf("%s{\"phase\":\"%s\",\"count\":%llu,\"p50_us\":%.2f,"
			    "\"p99_us\":%.2f,\"mean_us\":%.2f}", i ? "," : "",
			    r->phases[i]->phase, (unsigned long long)r->phases[i]->count,
			    r->phases[i]->p50_us, r->phases[i]->p99_us, r->phases[i]->mean_us);
		printf("],\"threads\":[");
		for (size_t i = 0; i < r->n_threads; i++)
			printf("%s{\"tid\":%u,\"count\":%llu,\"p50_us\":%.2f,\"p99_us\":%.2f}",
			    i ? "," : "", r->threads[i]->tid,
			    (unsigned long long)r->threads[i]->count, r->threads[i]->p50_us,
			    r->threads[i]->p99_us);
		printf("]}\n");
		goto out;
	}
	printf("fault latency of migration %s (vm %s): %llu faults, measured by %s\n",
	    r->migration_id, r->vm, (unsigned long long)r->count, r->source);
	if (r->count == 0) {
		printf("  no demand faults measured (a source, or nothing faulted yet)\n");
		goto out;
	}
	printf("  p50 %.1f us   p90 %.1f us   p99 %.1f us   p99.9 %.1f us   "
	    "min %.1f us   max %.1f us   mean %.1f us\n\n", r->p50_us, r->p90_us,
	    r->p99_us, r->p999_us, r->min_us, r->max_us, r->mean_us);
	/* One row per power of two of microseconds: the daemon's ~6% buckets
	 * would not fit a terminal. */
	{
		double lo[64], hi[64];
		uint64_t cnt[64];
		int nrows = 0;

		for (size_t i = 0; i < r->n_buckets; i++) {
			const Migrationd__V1__LatencyBucket *b = r->buckets[i];
			double base = b->lower_us < 1 ? 0 : exp2(floor(log2(b->lower_us)));

			if (nrows == 0 || base >= hi[nrows - 1]) {
				if (nrows == 64)
					break;
				lo[nrows] = base;
				hi[nrows] = base == 0 ? 1 : base * 2;
				cnt[nrows++] = 0;
			}
			cnt[nrows - 1] += b->count;
		}
		for (int i = 0; i < nrows; i++)
			if (cnt[i] > top)
				top = cnt[i];
		for (int i = 0; i < nrows; i++) {
			int w = (int)((double)cnt[i] * 50 / (double)top + 0.5);

			printf("  %9.0f .. %9.0f us |%-50.*s| %llu\n", lo[i], hi[i],
			    cnt[i] ? (w ? w : 1) : 0,
			    "##################################################",
			    (unsigned long long)cnt[i]);
		}
	}
	if (r->n_phases > 0) {
		printf("\n  measured in the kernel (eBPF), per phase:\n"
		    "  %-8s %8s %10s %10s %10s\n", "phase", "faults", "p50 us", "p99 us", "mean us");
		for (size_t i = 0; i < r->n_phases; i++)
			printf("  %-8s %8llu %10.1f %10.1f %10.1f\n", r->phases[i]->phase,
			    (unsigned long long)r->phases[i]->count, r->phases[i]->p50_us,
			    r->phases[i]->p99_us, r->phases[i]->mean_us);
		if (r->n_threads > 0)
			printf("\n  per faulting thread (total):\n");
		for (size_t i = 0; i < r->n_threads; i++)
			printf("    tid %-8u %6llu faults   p50 %8.1f us   p99 %8.1f us\n",
			    r->threads[i]->tid, (unsigned long long)r->threads[i]->count,
			    r->threads[i]->p50_us, r->threads[i]->p99_us);
		printf("  (log2 buckets: a figure is the middle of its power-of-two bucket)\n");
	}
out:
	migctl_free(r);
	migctl_close(c);
	return EX_OK;
}

static int
cmd_health(int argc, char **argv)
{
	Migrationd__V1__GetHealthResponse *r;
	struct migctl *c;

	if (want_help(argc, argv)) {
		printf("usage: mig-ctl health\nThe daemon's version, uptime, listeners, "
		    "TLS, VMs, migrations and how fault latency is measured.\n");
		return EX_OK;
	}
	if (argc != 1) {
		fprintf(stderr, "mig-ctl health: takes no arguments\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	check(c, migctl_health(c, &r));
	if (json) {
		printf("{");
		json_str("version", r->version, 0);
		json_str("latency_source", r->latency_source, 0);
		json_str("ebpf", r->ebpf, 0);
		printf("\"uptime_s\":%.1f,\"peer_tls\":%s,\"control_tls\":%s,\"vms_attached\":%u,"
		    "\"migrations_active\":%u,\"migrations_total\":%u,\"socket_activated\":%s,"
		    "\"pid\":%d,\"listeners\":[", r->uptime_s, r->peer_tls ? "true" : "false",
		    r->control_tls ? "true" : "false", r->vms_attached, r->migrations_active,
		    r->migrations_total, r->socket_activated ? "true" : "false", r->pid);
		for (size_t i = 0; i < r->n_listeners; i++) {
			printf("%s{", i ? "," : "");
			json_str("kind", r->listeners[i]->kind, 0);
			json_str("address", r->listeners[i]->address, 0);
			printf("\"tls\":%s}", r->listeners[i]->tls ? "true" : "false");
		}
		printf("]}\n");
	} else {
		printf("migrationd %s, pid %d, up %.0f s%s\n", r->version, r->pid, r->uptime_s,
		    r->socket_activated ? " (socket-activated)" : "");
		for (size_t i = 0; i < r->n_listeners; i++)
			printf("  %-13s %-40s %s\n", r->listeners[i]->kind,
			    r->listeners[i]->address, r->listeners[i]->tls ? "TLS" : "");
		printf("  peer TLS:     %s\n", r->peer_tls ? "on (TLS 1.3, mutual X.509)" : "OFF");
		printf("  control TLS:  %s\n", r->control_tls ? "on" : "off (no TCP listener)");
		printf("  VMs:          %u attached\n", r->vms_attached);
		printf("  migrations:   %u active, %u kept\n", r->migrations_active,
		    r->migrations_total);
		printf("  latency:      %s; eBPF: %s\n", r->latency_source, r->ebpf);
	}
	migctl_free(r);
	migctl_close(c);
	return EX_OK;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "+s:jh", lo, NULL)) != -1) {
		switch (ch) {
		case 's': sock_path = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE_;
	}
	if (!strcmp(argv[0], "prepare"))
		return cmd_prepare(argc, argv);
	if (!strcmp(argv[0], "migrate"))
		return cmd_migrate(argc, argv);
	if (!strcmp(argv[0], "status"))
		return cmd_one(argc, argv, "usage: mig-ctl status ID|VM\nOne migration (the "
		    "newest for a VM name) with its figures.\n");
	if (!strcmp(argv[0], "pause"))
		return cmd_one(argc, argv, "usage: mig-ctl pause ID|VM\nSource side: hold a "
		    "migration in post-copy (the destination's vCPUs wait for\nmissing pages) "
		    "until `mig-ctl recover`.\n");
	if (!strcmp(argv[0], "set"))
		return cmd_one(argc, argv, "usage: mig-ctl set ID|VM --max-bandwidth RATE\n"
		    "Source side: cap a running migration's background and pre-copy stream\n"
		    "at RATE bits/s (200M, 1G; off for none), at once. Demand pages are\n"
		    "never capped; [peer] max_bandwidth still applies.\n");
	if (!strcmp(argv[0], "postcopy"))
		return cmd_one(argc, argv, "usage: mig-ctl postcopy ID|VM\nSource side: end "
		    "the pre-copy of a migration in PRECOPY now: the VM pauses\nand switches "
		    "over; post-copy fetches the pages written since they were sent.\n");
	if (!strcmp(argv[0], "recover"))
		return cmd_one(argc, argv, "usage: mig-ctl recover ID|VM [--to HOST:PORT]\n"
		    "Source side: reconnect a PAUSED migration now instead of waiting for\n"
		    "the back-off, optionally to a new destination (a name, IPv4 or [IPv6]).\n");
	if (!strcmp(argv[0], "cancel"))
		return cmd_one(argc, argv, "usage: mig-ctl cancel ID|VM\nCancel a migration "
		    "whose VM has not left the source (the VM resumes there;\na destination "
		    "forgets the token). Refused once the VM may run on the destination.\n");
	if (!strcmp(argv[0], "list"))
		return cmd_list(argc, argv);
	if (!strcmp(argv[0], "watch"))
		return cmd_watch(argc, argv);
	if (!strcmp(argv[0], "latency"))
		return cmd_latency(argc, argv);
	if (!strcmp(argv[0], "health"))
		return cmd_health(argc, argv);
	if (!strcmp(argv[0], "help")) {
		usage(stdout);
		return EX_OK;
	}
	fprintf(stderr, "mig-ctl: unknown command '%s' (try mig-ctl --help)\n", argv[0]);
	return EX_USAGE_;
}
