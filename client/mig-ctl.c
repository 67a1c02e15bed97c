/*
 * mig-ctl: the operator's command line for migrationd, built on libmigctl.
 * Human output by default, --json for scripts. Exit codes: 0 success,
 * 2 usage error, 3 daemon unreachable, 4 request refused by the daemon,
 * 5 the migration failed or was paused (migrate --wait).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libmigctl.h"

enum { EX_OK = 0, EX_USAGE_ = 2, EX_UNREACH = 3, EX_REFUSED = 4, EX_MIGFAIL = 5 };

static const char *sock_path;
static int json;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mig-ctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  prepare VM [-q]                      destination: expect VM, print a one-time token\n"
	    "  migrate VM --to IP:PORT --token T [--wait] [--timeout SECS]\n"
	    "                                       source: migrate VM to the destination daemon\n"
	    "  recover ID|VM [--to IP:PORT]         source: reconnect a paused migration now\n"
	    "  status ID|VM                         one migration, with its figures\n"
	    "  list                                 VMs attached here and every migration\n"
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

/* Checks a response; prints the daemon's error and exits on failure. */
static Migrationd__V1__CtlResponse *
check(Migrationd__V1__CtlResponse *r)
{
	if (r == NULL) {
		fprintf(stderr, "mig-ctl: no answer from migrationd: %s\n", strerror(errno));
		exit(EX_UNREACH);
	}
	if (r->code != MIGRATIOND__V1__CODE__OK) {
		if (json)
			printf("{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
			    migctl_code_name(r->code), r->message);
		fprintf(stderr, "mig-ctl: %s: %s\n", migctl_code_name(r->code), r->message);
		exit(EX_REFUSED);
	}
	return r;
}

static void
json_str(const char *k, const char *v, int last)
{
	printf("\"%s\":\"", k);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\"%s", last ? "" : ",");
}

static void
print_json(const Migrationd__V1__Migration *m)
{
	printf("{");
	json_str("id", m->id, 0);
	json_str("vm", m->vm, 0);
	json_str("role", migctl_role_name(m->role), 0);
	json_str("state", migctl_state_name(m->state), 0);
	json_str("peer", m->peer, 0);
	json_str("reason", m->reason, 0);
	printf("\"ram_bytes\":%llu,\"pages_total\":%llu,\"pages_demand\":%llu,"
	    "\"pages_background\":%llu,\"pages_zero\":%llu,\"pages_installed\":%llu,"
	    "\"install_eexist\":%llu,\"install_errors\":%llu,\"pages_duplicate\":%llu,"
	    "\"demand_faults\":%llu,\"fault_p50_us\":%.2f,\"fault_p99_us\":%.2f,"
	    "\"fault_max_us\":%.2f,\"blackout_ms\":%.3f,\"total_s\":%.3f,"
	    "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"started_unix_ms\":%lld,"
	    "\"ended_unix_ms\":%lld,\"guest_ok\":%s,\"prefetch_pages\":%llu,"
	    "\"prefetch_hits\":%llu,\"ring_faults\":%llu,\"ring_errors\":%llu,"
	    "\"reconnects\":%u,\"pages_poisoned\":%llu,",
	    (unsigned long long)m->ram_bytes, (unsigned long long)m->pages_total,
	    (unsigned long long)m->pages_demand, (unsigned long long)m->pages_background,
	    (unsigned long long)m->pages_zero, (unsigned long long)m->pages_installed,
	    (unsigned long long)m->install_eexist, (unsigned long long)m->install_errors,
	    (unsigned long long)m->pages_duplicate, (unsigned long long)m->demand_faults,
	    m->fault_p50_us, m->fault_p99_us, m->fault_max_us, m->blackout_ms, m->total_s,
	    (unsigned long long)m->bytes_sent, (unsigned long long)m->bytes_received,
	    (long long)m->started_unix_ms, (long long)m->ended_unix_ms,
	    m->guest_ok ? "true" : "false", (unsigned long long)m->prefetch_pages,
	    (unsigned long long)m->prefetch_hits, (unsigned long long)m->ring_faults,
	    (unsigned long long)m->ring_errors, m->reconnects,
	    (unsigned long long)m->pages_poisoned);
	json_str("guest_verdict", m->guest_verdict, 1);
	printf("}");
}

static void
print_human(const Migrationd__V1__Migration *m)
{
	printf("migration %s   vm %s   %s   %s\n", m->id, m->vm, migctl_role_name(m->role),
	    migctl_state_name(m->state));
	if (m->reason[0])
		printf("  reason:      %s\n", m->reason);
	printf("  peer:        %s\n", m->peer[0] ? m->peer : "-");
	printf("  RAM:         %llu MiB, %llu pages\n",
	    (unsigned long long)(m->ram_bytes >> 20), (unsigned long long)m->pages_total);
	printf("  pages:       %llu on demand, %llu background, %llu zero, %llu sent twice",
	    (unsigned long long)m->pages_demand, (unsigned long long)m->pages_background,
	    (unsigned long long)m->pages_zero, (unsigned long long)m->pages_duplicate);
	if (m->role == MIGRATIOND__V1__ROLE__DESTINATION)
		printf("; %llu installed, %llu EEXIST, %llu install errors",
		    (unsigned long long)m->pages_installed,
		    (unsigned long long)m->install_eexist,
		    (unsigned long long)m->install_errors);
	printf("\n");
	if (m->role == MIGRATIOND__V1__ROLE__DESTINATION)
	{
		printf("  faults:      %llu demand faults (%llu via the ring), latency p50 "
		    "%.1f us, p99 %.1f us, max %.1f us\n", (unsigned long long)m->demand_faults,
		    (unsigned long long)m->ring_faults, m->fault_p50_us, m->fault_p99_us,
		    m->fault_max_us);
		printf("  prefetch:    %llu pages ahead of faults, %llu sequential faults "
		    "(%.0f%% of faults)\n", (unsigned long long)m->prefetch_pages,
		    (unsigned long long)m->prefetch_hits, m->demand_faults ?
		    100.0 * (double)m->prefetch_hits / (double)m->demand_faults : 0.0);
	}
	printf("  blackout:    %.1f ms\n", m->blackout_ms);
	if (m->reconnects)
		printf("  reconnects:  %u (link lost and resumed)\n", m->reconnects);
	if (m->pages_poisoned)
		printf("  poisoned:    %llu pages unreadable at the source, installed as "
		    "poison\n", (unsigned long long)m->pages_poisoned);
	printf("  elapsed:     %.2f s\n", m->total_s);
	if (m->guest_verdict[0])
		printf("  guest:       %s\n", m->guest_verdict);
}

static void
print_migration(const Migrationd__V1__Migration *m)
{
	if (json) {
		print_json(m);
		printf("\n");
	} else {
		print_human(m);
	}
}

static int
cmd_prepare(int argc, char **argv)
{
	int quiet = 0;
	struct migctl *c;
	Migrationd__V1__CtlResponse *r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-q"))
			quiet = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: mig-ctl prepare VM [-q]\n"
			    "Destination side: expect an incoming migration of VM (its VMM must be\n"
			    "attached with --incoming) and print the one-time token the source\n"
			    "must present. -q prints the token alone.\n");
			return EX_OK;
		}
	}
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "mig-ctl prepare: a VM name is required\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	r = check(migctl_prepare(c, argv[1]));
	if (quiet)
		printf("%s\n", r->prepare_incoming->token);
	else if (json) {
		printf("{");
		json_str("token", r->prepare_incoming->token, 0);
		printf("\"migration\":");
		print_json(r->prepare_incoming->migration);
		printf("}\n");
	} else
		printf("prepared migration %s for VM %s\ntoken: %s\n",
		    r->prepare_incoming->migration->id, argv[1], r->prepare_incoming->token);
	migctl_response_free(r);
	migctl_close(c);
	return EX_OK;
}

static int
terminal_state(Migrationd__V1__MigrationState s)
{
	return s == MIGRATIOND__V1__MIGRATION_STATE__COMPLETED ||
	    s == MIGRATIOND__V1__MIGRATION_STATE__FAILED ||
	    s == MIGRATIOND__V1__MIGRATION_STATE__CANCELLED;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls the migration and draws progress until it ends or times out. */
static int
wait_for(struct migctl *c, const char *id, double timeout)
{
	int tty = isatty(STDERR_FILENO);
	double t0 = mono_s(), last_t = t0, last_print = 0;
	unsigned long long last_bytes = 0;
	double rate = 0;

	for (;;) {
		Migrationd__V1__CtlResponse *r = check(migctl_get(c, id));
		const Migrationd__V1__Migration *m = r->get_migration->migration;
		unsigned long long done = m->pages_demand + m->pages_background + m->pages_zero;
		double now = mono_s(), pct = m->pages_total ? 100.0 * (double)done /
		    (double)m->pages_total : 0;
		int st = m->state, rc;

		if (now - last_t > 0.05) {
			double inst = (double)(m->bytes_sent - last_bytes) / (now - last_t);

			rate = rate == 0 ? inst : 0.7 * rate + 0.3 * inst;
			last_bytes = m->bytes_sent;
			last_t = now;
		}
		if (!json && (tty || now - last_print >= 1.0 || terminal_state(st))) {
			int w = 30, fill = (int)(pct / 100 * w);
			double left = (double)(m->pages_total - done) * 4096;
			char eta[32] = "-";

			if (rate > 0 && !terminal_state(st))
				snprintf(eta, sizeof(eta), "%.1fs", left / rate);
			fprintf(stderr, "%s%-9s [%.*s%*s] %5.1f%%  %llu/%llu pages  %.1f MB/s  "
			    "ETA %s%s", tty ? "\r" : "", migctl_state_name(st), fill,
			    "##############################", w - fill, "", pct, done,
			    (unsigned long long)m->pages_total, rate / 1e6, eta, tty ? "   " : "\n");
			last_print = now;
		}
		if (terminal_state(st) || st == MIGRATIOND__V1__MIGRATION_STATE__PAUSED ||
		    now - t0 > timeout) {
			if (!json && tty)
				fprintf(stderr, "\n");
			if (now - t0 > timeout && !terminal_state(st))
				fprintf(stderr, "mig-ctl: gave up waiting after %.0f s\n", timeout);
			print_migration(m);
			rc = st == MIGRATIOND__V1__MIGRATION_STATE__COMPLETED ? EX_OK : EX_MIGFAIL;
			if (rc != EX_OK && m->reason[0])
				fprintf(stderr, "mig-ctl: migration %s %s: %s\n", m->id,
				    migctl_state_name(st), m->reason);
			migctl_response_free(r);
			return rc;
		}
		migctl_response_free(r);
		usleep(tty ? 100000 : 200000);
	}
}

static int
cmd_migrate(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'k' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL, *token = NULL, *vm;
	double timeout = 3600;
	int ch, wait = 0, rc = EX_OK;
	struct migctl *c;
	Migrationd__V1__CtlResponse *r;

	optind = 0;	/* full reset of glibc getopt after main() parsed */
	while ((ch = getopt_long(argc, argv, "t:k:wT:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': to = optarg; break;
		case 'k': token = optarg; break;
		case 'w': wait = 1; break;
		case 'T': timeout = atof(optarg); break;
		case 'h':
			printf("usage: mig-ctl migrate VM --to IP:PORT --token TOKEN [--wait] "
			    "[--timeout SECS]\n"
			    "Source side: migrate VM to the migrationd at IP:PORT, which issued\n"
			    "TOKEN with `mig-ctl prepare`. --wait shows progress until the\n"
			    "migration ends and exits 5 unless it completed.\n");
			return EX_OK;
		default:
			return EX_USAGE_;
		}
	}
	if (optind >= argc || to == NULL || token == NULL) {
		fprintf(stderr, "mig-ctl migrate: need VM, --to IP:PORT and --token\n");
		return EX_USAGE_;
	}
	vm = argv[optind];
	c = connect_or_die();
	r = check(migctl_start(c, vm, to, token));
	if (wait) {
		char id[64];

		snprintf(id, sizeof(id), "%s", r->start_migration->migration->id);
		if (!json)
			printf("migration %s started: %s -> %s\n", id, vm, to);
		fflush(stdout);
		rc = wait_for(c, id, timeout);
	} else {
		print_migration(r->start_migration->migration);
	}
	migctl_response_free(r);
	migctl_close(c);
	return rc;
}

static int
cmd_recover(int argc, char **argv)
{
	const char *to = NULL;
	struct migctl *c;
	Migrationd__V1__CtlResponse *r;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: mig-ctl recover ID|VM [--to IP:PORT]\n"
		    "Source side: reconnect a PAUSED migration now instead of waiting for\n"
		    "the back-off, optionally to a new destination address.\n");
		return EX_OK;
	}
	if (argc < 2) {
		fprintf(stderr, "mig-ctl recover: a migration id or VM name is required\n");
		return EX_USAGE_;
	}
	if (argc == 4 && !strcmp(argv[2], "--to"))
		to = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "mig-ctl recover: usage: recover ID|VM [--to IP:PORT]\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	r = check(migctl_recover(c, argv[1], to));
	print_migration(r->recover_migration->migration);
	migctl_response_free(r);
	migctl_close(c);
	return EX_OK;
}

static int
cmd_status(int argc, char **argv)
{
	struct migctl *c;
	Migrationd__V1__CtlResponse *r;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: mig-ctl status ID|VM\nOne migration (the newest for a VM "
		    "name) with its figures.\n");
		return EX_OK;
	}
	if (argc < 2) {
		fprintf(stderr, "mig-ctl status: a migration id or VM name is required\n");
		return EX_USAGE_;
	}
	c = connect_or_die();
	r = check(migctl_get(c, argv[1]));
	print_migration(r->get_migration->migration);
	migctl_response_free(r);
	migctl_close(c);
	return EX_OK;
}

static int
cmd_list(int argc, char **argv)
{
	struct migctl *c;
	Migrationd__V1__CtlResponse *r;
	Migrationd__V1__ListMigrationsResponse *l;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: mig-ctl list\nVMs attached to this daemon and every "
		    "migration it knows.\n");
		return EX_OK;
	}
	c = connect_or_die();
	r = check(migctl_list(c));
	l = r->list_migrations;
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
	migctl_response_free(r);
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
		return cmd_status(argc, argv);
	if (!strcmp(argv[0], "recover"))
		return cmd_recover(argc, argv);
	if (!strcmp(argv[0], "list"))
		return cmd_list(argc, argv);
	if (!strcmp(argv[0], "help")) {
		usage(stdout);
		return EX_OK;
	}
	fprintf(stderr, "mig-ctl: unknown command '%s' (try mig-ctl --help)\n", argv[0]);
	return EX_USAGE_;
}
