/*
 * config: reads migrationd.conf (INI, parsed by Debian's libinih). Unknown
 * sections or keys and bad values are errors naming file, line and key.
 * Called once at start-up, before the loop runs.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "rate.h"
#include "log.h"
#include "util.h"

struct config_ctx {
	struct config	*c;
	char		 why[256];	/* first bad key; ini_parse gives its line */
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
	c->precopy_switch_ms = 300;
	c->precopy_max_rounds = 30;
	c->handshake_timeout = MIG_HANDSHAKE_SECS;
	c->keep_records = MIG_KEEP_RECORDS;
	c->record_max_age = MIG_RECORD_MAX_AGE;
	c->prepare_timeout = MIG_PREPARE_TIMEOUT;
}

static int
config_str(char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len)
		return -1;
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
	else
		return -1;
	return 0;
}

static int
config_int(int *dst, const char *v, int lo, int hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < lo || n > hi)
		return -1;
	*dst = (int)n;
	return 0;
}

/* "90", "90s", "15m", "12h", "7d": seconds, lo..hi. */
static int
config_duration(int *dst, const char *v, int lo, int hi)
{
	char *end;
	long long n;
	int unit = 1;

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

/* IP:PORT (numeric), or empty for none. */
static int
config_hostport(char *dst, size_t len, const char *v)
{
	struct sockaddr_storage ss;
	int sslen;

	if (v[0] != '\0' && parse_hostport(v, &ss, &sslen) < 0)
		return -1;
	return config_str(dst, len, v);
}

/* One more identity for a [control] role; the key may repeat. */
static int
config_id(struct config_ids *ids, const char *v)
{
	if (v[0] == '\0' || ids->n == MIG_CONFIG_IDS)
		return -1;
	return config_str(ids->id[ids->n++], sizeof(ids->id[0]), v);
}

static int
config_others(int *dst, const char *v)
{
	if (!strcmp(v, "none"))
		*dst = CONFIG_OTHERS_NONE;
	else if (!strcmp(v, "read"))
		*dst = CONFIG_OTHERS_READ;
	else
		return -1;
	return 0;
}

/* "12,4096,7": page indices the source must read as hardware-poisoned. */
static int
config_pages(struct config *c, const char *v)
{
	char buf[256], *tok, *save, *end;

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
		rc = config_str(c->peer_listen, sizeof(c->peer_listen), value);
	else if (S("peer", "precopy"))	/* pre-copy defaults (policy.h) */
		rc = precopy_parse(value, &c->precopy, x->why, sizeof(x->why));
	else if (S("peer", "precopy_switch_ms"))
		rc = config_int(&c->precopy_switch_ms, value, 1, 60000);
	else if (S("peer", "precopy_max_rounds"))
		rc = config_int(&c->precopy_max_rounds, value, 1, PRECOPY_MAX_ROUNDS);
	else if (S("peer", "hotset_window_ms"))
		rc = config_int(&c->hotset_window_ms, value, 0, 10000);
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
		rc = config_str(c->metrics_listen, sizeof(c->metrics_listen), value);
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
#undef S
	if (rc == 0)
		return 1;
	if (x->why[0] == '\0') {
		if (rc == -2)
			snprintf(x->why, sizeof(x->why), "unknown key [%s] %s",
			    section, key);
		else
			snprintf(x->why, sizeof(x->why),
			    "bad value for [%s] %s: \"%s\"", section, key, value);
	}
	return 0;	/* ini_parse then returns this line's number */
}

int
config_load(struct config *c, const char *path)
{
	struct config_ctx x = { .c = c };
	int rc;

	config_defaults(c);
	if (path == NULL)
		return 0;
	snprintf(c->path, sizeof(c->path), "%s", path);
	rc = ini_parse(path, config_handler, &x);
	if (rc < 0) {
		log_warnx("%s: cannot read %s", __func__, path);
		return -1;
	}
	if (rc > 0) {
		log_warnx("%s:%d: %s", path, rc, x.why[0] ? x.why : "syntax error");
		return -1;
	}
	return 0;
}
