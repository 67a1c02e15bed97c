/*
 * config: reads migrationd.conf (INI, parsed by Debian's libinih). Every
 * syntax error, unknown section or key and bad value is collected as
 * "FILE:LINE: [section] key: why", so that one run names them all; inih
 * reads the lines through config_read_line, which counts them (inih's own
 * count reaches only the first error) and judges the lines inih passes over
 * without calling the handler (blank lines, comments, section headers and
 * syntax errors). Called once at start-up, before the loop runs.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "journal.h"
#include "rate.h"
#include "log.h"
#include "pool.h"
#include "util.h"

struct config_ctx {
	struct config	*c;
	struct config_errs *e;
	FILE		*f;
	char		*buf;		/* getline's */
	size_t		 cap;
	int		 line;		/* the line inih works on */
	int		 handled;	/* the handler saw this line */
	int		 flagged;	/* ... or it was reported already */
	int		 bad_section;	/* the section was reported unknown */
	char		 why[256];	/* a value parser's reason (precopy_parse) */
};

/* Why the value just parsed is bad: the parsers below say it here. Start-up
 * runs on one thread, once. */
static char config_why[256];

static const char *const config_sections[] = {
	"daemon", "control", "peer", "tls", "metrics", "bpf", "debug", NULL
};

static void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->control_socket, sizeof(c->control_socket), "/run/migrationd/control.sock");
	snprintf(c->vmm_socket, sizeof(c->vmm_socket), "/run/migrationd/vmm.sock");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/migrationd");
	snprintf(c->peer_listen, sizeof(c->peer_listen), "0.0.0.0:7480");
	snprintf(c->tls_ca, sizeof(c->tls_ca), "/etc/migrationd/ca.pem");
	snprintf(c->tls_cert, sizeof(c->tls_cert), "/etc/migrationd/host.pem");
	snprintf(c->tls_key, sizeof(c->tls_key), "/etc/migrationd/host.key");
	c->tls = 1;
	c->bpf = 1;
	c->token_ttl = 600;
	c->precopy_switch_ms = 5;
	c->advertise_compression = 1;
	c->streams = MIG_STREAMS_DEFAULT;
	c->compress_threads = -1;
	c->parallel_encryption = 1;
	c->compression_level = -1;
	c->precopy_max_rounds = 30;
	c->precopy_recovery = 60;
	c->handshake_timeout = MIG_HANDSHAKE_SECS;
	c->keep_records = MIG_KEEP_RECORDS;
	c->record_max_age = MIG_RECORD_MAX_AGE;
	c->prepare_timeout = MIG_PREPARE_TIMEOUT;
}

static void
config_verror(struct config_errs *e, const char *where, const char *fmt, va_list ap)
{
	char *m;

	if (e->n == MIG_CONFIG_ERRS) {
		e->more++;
		return;
	}
	m = e->msg[e->n++];
	snprintf(m, sizeof(e->msg[0]), "%s: ", where);
	vsnprintf(m + strlen(m), sizeof(e->msg[0]) - strlen(m), fmt, ap);
}

/* An error of the line inih works on (x->line). */
static void __attribute__((format(printf, 2, 3)))
config_error_at(struct config_ctx *x, const char *fmt, ...)
{
	char where[600];
	va_list ap;

	snprintf(where, sizeof(where), "%s:%d", x->c->path, x->line);
	va_start(ap, fmt);
	config_verror(x->e, where, fmt, ap);
	va_end(ap);
	x->flagged = 1;
}

static struct config_origin *
config_find(const struct config *c, const char *section, const char *key)
{
	for (int i = 0; i < c->norigin; i++)
		if (!strcmp(c->origin[i].section, section) && !strcmp(c->origin[i].key, key))
			return (struct config_origin *)&c->origin[i];
	return NULL;
}

/* [section] key was set at `line` of the file, or by `flag`; the last
 * setting wins, as it does for the value. */
static void
config_origin(struct config *c, const char *section, const char *key, int line,
    const char *flag)
{
	struct config_origin *o = config_find(c, section, key);

	if (o == NULL) {
		if (c->norigin == MIG_CONFIG_KEYS)
			return;		/* errors then say "FILE: [section] key" */
		o = &c->origin[c->norigin++];
		snprintf(o->section, sizeof(o->section), "%s", section);
		snprintf(o->key, sizeof(o->key), "%s", key);
	}
	o->line = line;
	snprintf(o->flag, sizeof(o->flag), "%s", flag != NULL ? flag : "");
}

void
config_set_by_flag(struct config *c, const char *section, const char *key,
    const char *flag)
{
	config_origin(c, section, key, 0, flag);
}

const char *
config_where(const struct config *c, const char *section, const char *key,
    char *buf, size_t len)
{
	const struct config_origin *o;

	if (section == NULL)
		snprintf(buf, len, "%s", c->path[0] ? c->path : "(defaults)");
	else if ((o = config_find(c, section, key)) != NULL && o->flag[0])
		snprintf(buf, len, "%s", o->flag);
	else if (o != NULL)
		snprintf(buf, len, "%s:%d: [%s] %s", c->path, o->line, section, key);
	else
		snprintf(buf, len, "%s: [%s] %s", c->path[0] ? c->path : "(defaults)",
		    section, key);
	return buf;
}

void
config_error(struct config_errs *e, const struct config *c, const char *section,
    const char *key, const char *fmt, ...)
{
	char where[600];
	va_list ap;

	va_start(ap, fmt);
	config_verror(e, config_where(c, section, key, where, sizeof(where)), fmt, ap);
	va_end(ap);
}

/* Where in the file a message points: its line; after the lines, a key
 * the file does not set; last, a flag's value. */
static int
config_errs_rank(const struct config *c, const char *m)
{
	size_t len = strlen(c->path);

	if (len > 0 && !strncmp(m, c->path, len) && m[len] == ':' &&
	    m[len + 1] >= '0' && m[len + 1] <= '9')
		return atoi(m + len + 1);
	return m[0] == '-' ? INT_MAX : INT_MAX - 1;
}

void
config_errs_sort(struct config_errs *e, const struct config *c)
{
	static char tmp[sizeof(e->msg[0])];

	/* Insertion sort: stable, and there are at most a few dozen. */
	for (int i = 1; i < e->n; i++) {
		int j = i, r = config_errs_rank(c, e->msg[i]);

		memcpy(tmp, e->msg[i], sizeof(tmp));
		for (; j > 0 && config_errs_rank(c, e->msg[j - 1]) > r; j--)
			memcpy(e->msg[j], e->msg[j - 1], sizeof(tmp));
		memcpy(e->msg[j], tmp, sizeof(tmp));
	}
}

int
config_listen_why(const char *v, char *why, size_t len)
{
	struct sockaddr_storage ss;
	const char *colon = strrchr(v, ':');
	char *end;
	long port;
	int sslen;

	if (v[0] == '\0' || parse_hostport(v, &ss, &sslen) == 0)
		return 0;
	if (colon != NULL && colon[1] != '\0') {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (!errno && *end == '\0' && (port < 1 || port > 65535)) {
			snprintf(why, len, "port %ld is out of range (1 to 65535)", port);
			return -1;
		}
	}
	snprintf(why, len, "not a numeric IP:PORT (a listener takes an address "
	    "of this host, 0.0.0.0:7480 or [::1]:7480, not a host name)");
	return -1;
}

static int
config_str(char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len) {
		snprintf(config_why, sizeof(config_why), "longer than %zu characters",
		    len - 1);
		return -1;
	}
	snprintf(dst, len, "%s", v);
	return 0;
}

static int
config_bool(int *dst, const char *v)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*dst = 1;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*dst = 0;
	else {
		snprintf(config_why, sizeof(config_why),
		    "not a boolean (yes or no, on or off, true or false, 1 or 0)");
		return -1;
	}
	return 0;
}

static int
config_int(int *dst, const char *v, int lo, int hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < lo || n > hi) {
		snprintf(config_why, sizeof(config_why), "not an integer from %d to %d",
		    lo, hi);
		return -1;
	}
	*dst = (int)n;
	return 0;
}

/* "auto" (-1) or 0..POOL_MAX_WORKERS worker threads. */
static int
config_threads(int *dst, const char *v)
{
	if (!strcmp(v, "auto")) {
		*dst = -1;
		return 0;
	}
	if (config_int(dst, v, 0, POOL_MAX_WORKERS) == 0)
		return 0;
	snprintf(config_why, sizeof(config_why), "not auto or an integer from 0 to %d",
	    POOL_MAX_WORKERS);
	return -1;
}

/* "90", "90s", "15m", "12h", "7d": seconds, lo..hi. */
static int
config_duration(int *dst, const char *v, int lo, int hi)
{
	char *end;
	long long n;
	int unit = 1;

	snprintf(config_why, sizeof(config_why), "not a duration from %ds to %ds "
	    "(seconds, or a number with s, m, h or d: 90, 90s, 15m, 12h, 7d)", lo, hi);
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || n < 0)
		return -1;
	if (*end != '\0') {
		switch (*end++) {
		case 's':
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		default:
			return -1;
		}
		if (*end != '\0')
			return -1;
	}
	if (n > hi / unit || n * unit < lo)
		return -1;
	*dst = (int)(n * unit);
	return 0;
}

/* A listener's address: IP:PORT (numeric), or empty for none. */
static int
config_hostport(char *dst, size_t len, const char *v)
{
	if (config_listen_why(v, config_why, sizeof(config_why)) < 0)
		return -1;
	return config_str(dst, len, v);
}

/* One more identity for a [control] role; the key may repeat. */
static int
config_id(struct config_ids *ids, const char *v)
{
	if (v[0] == '\0' || ids->n == MIG_CONFIG_IDS) {
		snprintf(config_why, sizeof(config_why), v[0] == '\0' ?
		    "empty (an identity names a certificate: its subject, CN, a DNS "
		    "or URI name, or an e-mail address)" : "one more than the %d a "
		    "role may list",
		    MIG_CONFIG_IDS);
		return -1;
	}
	return config_str(ids->id[ids->n++], sizeof(ids->id[0]), v);
}

static int
config_others(int *dst, const char *v)
{
	if (!strcmp(v, "none"))
		*dst = CONFIG_OTHERS_NONE;
	else if (!strcmp(v, "read"))
		*dst = CONFIG_OTHERS_READ;
	else {
		snprintf(config_why, sizeof(config_why), "neither none nor read");
		return -1;
	}
	return 0;
}

/* "12,4096,7": page indices the source must read as hardware-poisoned. */
static int
config_pages(struct config *c, const char *v)
{
	char buf[256], *tok, *save, *end;

	snprintf(config_why, sizeof(config_why),
	    "not a list of at most 16 page indices (12,4096,7)");
	if (strlen(v) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", v);
	c->ninject_poison = 0;
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (c->ninject_poison == (int)(sizeof(c->inject_poison) / sizeof(c->inject_poison[0])))
			return -1;
		errno = 0;
		c->inject_poison[c->ninject_poison++] = strtoull(tok, &end, 10);
		if (errno || *end)
			return -1;
	}
	return 0;
}

/* "writing:N" / "written:N": die at the Nth minor-mode install run. */
static int
config_crash(struct config *c, const char *v)
{
	unsigned long n;
	char *end;

	snprintf(config_why, sizeof(config_why), "neither writing:N nor written:N");
	c->crash_minor_state = 0;
	c->crash_minor_at = 0;
	if (*v == '\0')
		return 0;
	if (!strncmp(v, "writing:", 8))
		c->crash_minor_state = JOURNAL_WRITING;
	else if (!strncmp(v, "written:", 8))
		c->crash_minor_state = JOURNAL_WRITTEN;
	else
		return -1;
	errno = 0;
	n = strtoul(v + 8, &end, 10);
	if (errno || *end || n == 0 || n > 1000000000)
		return -1;
	c->crash_minor_at = (unsigned)n;
	return 0;
}

/* "N" or "N:COUNT" (tests only): a count from 1 and how many (1). */
static int
config_nth(unsigned *at, unsigned *count, const char *v)
{
	unsigned long n, k = 1;
	char *end;

	snprintf(config_why, sizeof(config_why), count != NULL ?
	    "neither N nor N:COUNT (from 1)" : "not a number from 1");
	*at = 0;
	if (*v == '\0')
		return 0;	/* off */
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end == ':' && count != NULL)
		k = strtoul(end + 1, &end, 10);
	if (errno || *end || n == 0 || n > 1000000000 || k == 0 || k > 1000000000)
		return -1;
	*at = (unsigned)n;
	if (count != NULL)
		*count = (unsigned)k;
	return 0;
}

static int
config_handler(void *arg, const char *section, const char *key, const char *value)
{
	struct config_ctx *x = arg;
	struct config *c = x->c;
	int rc = -2;	/* -2: unknown key, -1: bad value */

	x->handled = 1;
	if (x->bad_section)
		return 1;	/* its header was reported */
	if (section[0] == '\0') {
		config_error_at(x, "%s: a key before the first [section]", key);
		return 0;
	}
	x->why[0] = config_why[0] = '\0';
	config_origin(c, section, key, x->line, NULL);
#define S(sec, k) (!strcmp(section, sec) && !strcmp(key, k))
	if (S("daemon", "control_socket"))
		rc = config_str(c->control_socket, sizeof(c->control_socket), value);
	else if (S("daemon", "vmm_socket"))
		rc = config_str(c->vmm_socket, sizeof(c->vmm_socket), value);
	else if (S("daemon", "state_dir"))
		rc = config_str(c->state_dir, sizeof(c->state_dir), value);
	else if (S("daemon", "keep_records"))
		rc = config_int(&c->keep_records, value, 0, 1000000);
	else if (S("daemon", "record_max_age"))
		rc = config_duration(&c->record_max_age, value, 0, 3650 * 86400);
	else if (S("daemon", "prepare_timeout"))
		rc = config_duration(&c->prepare_timeout, value, 1, 86400);
	else if (S("peer", "listen"))
		rc = config_hostport(c->peer_listen, sizeof(c->peer_listen), value);
	else if (S("peer", "precopy"))	/* pre-copy defaults (policy.h) */
		rc = precopy_parse(value, &c->precopy, x->why, sizeof(x->why));
	else if (S("peer", "precopy_switch_ms"))
		rc = config_int(&c->precopy_switch_ms, value, 1, 60000);
	else if (S("peer", "precopy_max_rounds"))
		rc = config_int(&c->precopy_max_rounds, value, 1, PRECOPY_MAX_ROUNDS);
	else if (S("peer", "precopy_recovery"))
		rc = config_int(&c->precopy_recovery, value, 1, 86400);
	else if (S("peer", "hotset_window_ms"))
		rc = config_int(&c->hotset_window_ms, value, 0, 10000);
	else if (S("peer", "compression"))
		rc = compress_parse(value, &c->compression, x->why, sizeof(x->why));
	else if (S("peer", "streams"))
		rc = config_int(&c->streams, value, 1, MIG_STREAMS_MAX);
	else if (S("peer", "compression_level"))	/* zstd: -22 fastest, 19 smallest */
		rc = config_int(&c->compression_level, value, -22, 19);
	else if (S("peer", "parallel_encryption"))
		rc = config_bool(&c->parallel_encryption, value);
	else if (S("peer", "compress_threads"))
		rc = config_threads(&c->compress_threads, value);
	else if (S("peer", "advertise_compression"))
		rc = config_bool(&c->advertise_compression, value);
	else if (S("peer", "max_bandwidth"))
		rc = rate_parse(value, &c->max_bandwidth, x->why, sizeof(x->why));
	else if (S("peer", "token_ttl"))
		rc = config_int(&c->token_ttl, value, 1, 86400);
	else if (S("peer", "handshake_timeout"))
		rc = config_int(&c->handshake_timeout, value, 1, 300);
	else if (S("tls", "enabled"))
		rc = config_bool(&c->tls, value);
	else if (S("tls", "ca"))
		rc = config_str(c->tls_ca, sizeof(c->tls_ca), value);
	else if (S("tls", "cert"))
		rc = config_str(c->tls_cert, sizeof(c->tls_cert), value);
	else if (S("tls", "key"))
		rc = config_str(c->tls_key, sizeof(c->tls_key), value);
	else if (S("bpf", "enabled"))
		rc = config_bool(&c->bpf, value);
	else if (S("metrics", "listen"))
		rc = config_hostport(c->metrics_listen, sizeof(c->metrics_listen), value);
	else if (S("control", "group"))
		rc = config_str(c->control_group, sizeof(c->control_group), value);
	else if (S("control", "listen"))
		rc = config_hostport(c->control_listen, sizeof(c->control_listen), value);
	else if (S("control", "ca"))
		rc = config_str(c->control_ca, sizeof(c->control_ca), value);
	else if (S("control", "cert"))
		rc = config_str(c->control_cert, sizeof(c->control_cert), value);
	else if (S("control", "key"))
		rc = config_str(c->control_key, sizeof(c->control_key), value);
	else if (S("control", "operate"))
		rc = config_id(&c->control_operate, value);
	else if (S("control", "read"))
		rc = config_id(&c->control_read, value);
	else if (S("control", "others"))
		rc = config_others(&c->control_others, value);
	else if (S("tls", "insecure"))
		rc = config_bool(&c->tls_insecure, value);
	else if (S("debug", "inject_poison"))
		rc = config_pages(c, value);
	else if (S("debug", "crash_minor"))
		rc = config_crash(c, value);
	else if (S("debug", "crash_install"))
		rc = config_nth(&c->crash_install_at, NULL, value);
	else if (S("debug", "fail_install"))
		rc = config_nth(&c->fail_install_at, &c->fail_install_count, value);
	else if (S("debug", "rx_buffered"))
		rc = config_bool(&c->rx_buffered, value);
	else if (S("debug", "lose_complete"))
		rc = config_bool(&c->lose_complete, value);
#undef S
	if (rc == 0)
		return 1;
	if (rc == -2)
		config_error_at(x, "[%s] %s: unknown key", section, key);
	else
		config_error_at(x, "[%s] %s: \"%s\": %s", section, key, value,
		    x->why[0] ? x->why : config_why[0] ? config_why : "not valid");
	return 0;	/* inih counts the line as an error too */
}

/* A line inih did not hand to the handler: blank, a comment, a section
 * header (as inih reads one), or a syntax error. */
static void
config_judge_line(struct config_ctx *x, const char *l)
{
	char name[64];
	const char *end;
	int i;

	if (x->line == 1 && !strncmp(l, "\xef\xbb\xbf", 3))
		l += 3;		/* a UTF-8 BOM */
	l += strspn(l, " \t\r\n\f\v");
	if (*l == '\0' || *l == ';' || *l == '#')
		return;
	if (*l != '[') {
		config_error_at(x, "syntax error: neither [section] nor key = value");
		return;
	}
	/* inih ends the name at ']' or at an inline comment (" ;"). */
	for (end = l + 1; *end && *end != ']' &&
	    !(*end == ';' && end > l + 1 && (end[-1] == ' ' || end[-1] == '\t')); end++)
		;
	if (*end != ']') {
		config_error_at(x, "syntax error: no ']' after the section name");
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(end - l - 1), l + 1);
	for (i = 0; config_sections[i] != NULL; i++)
		if (!strcmp(name, config_sections[i]))
			break;
	x->bad_section = config_sections[i] == NULL;
	if (x->bad_section)
		config_error_at(x, "[%s]: unknown section (known: daemon, control, peer, "
		    "tls, metrics, bpf, debug)", name);
}

/* inih's reader (fgets-style): whole lines through getline, counted; the
 * line inih has just finished with is judged first. A line too long for
 * inih's buffer is reported and handed over blank, so that inih's lines
 * stay the file's. */
static char *
config_read_line(char *str, int num, void *arg)
{
	struct config_ctx *x = arg;
	ssize_t n;

	if (x->line > 0 && !x->handled && !x->flagged)
		config_judge_line(x, x->buf);
	if ((n = getline(&x->buf, &x->cap, x->f)) < 0)
		return NULL;
	x->line++;
	x->handled = x->flagged = 0;
	if (n >= num - 1 && !(n == num - 1 && x->buf[n - 1] == '\n')) {
		config_error_at(x, "line longer than %d characters", num - 2);
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	memcpy(str, x->buf, (size_t)n + 1);
	return str;
}

int
config_load(struct config *c, const char *path, struct config_errs *e)
{
	struct config_ctx x = { .c = c, .e = e };
	int rc, n0 = e->n + e->more;

	config_defaults(c);
	if (path == NULL)
		return 0;
	snprintf(c->path, sizeof(c->path), "%s", path);
	if ((x.f = fopen(path, "r")) == NULL) {
		config_error(e, c, NULL, NULL, "cannot read the configuration: %s",
		    strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(config_read_line, &x, config_handler, &x);
	if (ferror(x.f))
		config_error(e, c, NULL, NULL, "read error: %s", strerror(errno));
	else if (rc > 0 && e->n + e->more == n0) {
		x.line = rc;	/* inih saw an error this reader did not */
		config_error_at(&x, "syntax error");
	}
	free(x.buf);
	fclose(x.f);
	return e->n + e->more - n0;
}
