/*
 * authz: roles and the audit log of the control API (see authz.h). The
 * method -> role table is the whole policy; callers get their role once per
 * connection; refusals are PERMISSION_DENIED with a message that names the
 * caller and the role the method needs. The audit line is key=value
 * (logfmt): values with anything but [A-Za-z0-9._:/@+,-] are quoted, with
 * `"` and `\` escaped and other bytes outside printable ASCII as \xNN, so
 * a process name or a certificate subject cannot forge a line or a key.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authz.h"
#include "h2.h"
#include "log.h"
#include "tls.h"
#include "util.h"

static gid_t authz_gid = (gid_t)-1;

/* What each method needs; a method not listed (a new one) needs operate. */
static const struct {
	enum grpc_method_id	 id;
	enum authz_role		 role;
} authz_table[] = {
	{ GM_HEALTH_CHECK, AUTHZ_NONE },
	{ GM_HEALTH_WATCH, AUTHZ_NONE },
	{ GM_GET_MIGRATION, AUTHZ_READ },
	{ GM_LIST_MIGRATIONS, AUTHZ_READ },
	{ GM_WATCH_MIGRATION, AUTHZ_READ },
	{ GM_GET_FAULT_LATENCY, AUTHZ_READ },
	{ GM_GET_HEALTH, AUTHZ_READ },
	{ GM_REFLECTION_V1, AUTHZ_READ },
	{ GM_REFLECTION_V1ALPHA, AUTHZ_READ },
	{ GM_PREPARE_INCOMING, AUTHZ_OPERATE },
	{ GM_START_MIGRATION, AUTHZ_OPERATE },
	{ GM_PAUSE_MIGRATION, AUTHZ_OPERATE },
	{ GM_RECOVER_MIGRATION, AUTHZ_OPERATE },
	{ GM_CANCEL_MIGRATION, AUTHZ_OPERATE },
	{ GM_START_POSTCOPY, AUTHZ_OPERATE },
	{ GM_SET_MIGRATION, AUTHZ_OPERATE },
};

/* One audited call: the line is written when h2 ends the stream. */
struct authz_audit {
	const struct grpc_method *gm;
	char	 line[900];	/* "method=... caller... role=... vm=..." */
	char	 id[32];
	char	 vm[128];
};

void
authz_set_group(gid_t gid)
{
	authz_gid = gid;
}

enum authz_role
authz_needs(const struct grpc_method *gm)
{
	for (size_t i = 0; i < sizeof(authz_table) / sizeof(authz_table[0]); i++)
		if (authz_table[i].id == gm->id)
			return authz_table[i].role;
	return AUTHZ_OPERATE;
}

const char *
authz_role_name(int role)
{
	return role == AUTHZ_OPERATE ? "operate" : role == AUTHZ_READ ? "read" : "no";
}

/* Appends key=value to buf (logfmt quoting, see above). */
static void
authz_kv(char *buf, size_t len, const char *key, const char *v)
{
	size_t o = strlen(buf);
	int plain = v[0] != '\0';

	for (const char *p = v; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._:/@+,-", *p) != NULL;
	o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s=%s", o ? " " : "", key,
	    plain ? v : "\"");
	if (plain)
		return;
	for (const unsigned char *p = (const unsigned char *)v; *p && o + 5 < len; p++) {
		if (*p == '"' || *p == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\%c", *p);
		else if (*p < 0x20 || *p > 0x7e)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	if (o + 1 < len) {
		buf[o++] = '"';
		buf[o] = '\0';
	} else {
		buf[len - 1] = '\0';
	}
}

/* /proc/PID/comm, printable ASCII only ('?' for the rest). */
static void
authz_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	for (char *p = buf; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

static int
authz_in_group(int fd, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return 0;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

struct authz_caller *
authz_unix(int fd)
{
	struct ucred cr = { .uid = (uid_t)-1 };
	socklen_t crlen = sizeof(cr);
	struct authz_caller *c;
	char comm[32], num[16];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		log_warn("control: SO_PEERCRED");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (cr.uid == 0 || cr.uid == getuid() || (authz_gid != (gid_t)-1 &&
	    (cr.gid == authz_gid || authz_in_group(fd, authz_gid))))
		c->role = AUTHZ_OPERATE;
	else
		c->role = D->conf.control_others == CONFIG_OTHERS_READ ? AUTHZ_READ : AUTHZ_NONE;
	c->resolved = 1;
	authz_comm(cr.pid, comm, sizeof(comm));
	snprintf(c->who, sizeof(c->who), "uid %d (pid %d, %s)", (int)cr.uid, (int)cr.pid,
	    comm);
	authz_kv(c->audit, sizeof(c->audit), "transport", "unix");
	snprintf(num, sizeof(num), "%d", (int)cr.uid);
	authz_kv(c->audit, sizeof(c->audit), "uid", num);
	snprintf(num, sizeof(num), "%d", (int)cr.pid);
	authz_kv(c->audit, sizeof(c->audit), "pid", num);
	authz_kv(c->audit, sizeof(c->audit), "comm", comm);
	return c;
}

struct authz_caller *
authz_tcp(struct bufferevent *bev, const struct sockaddr *sa, int salen)
{
	struct authz_caller *c;
	char host[64], port[8];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, sizeof(host), "?");
	if (strchr(host, ':') != NULL)
		snprintf(c->addr, sizeof(c->addr), "[%.60s]:%s", host, port);
	else
		snprintf(c->addr, sizeof(c->addr), "%.60s:%s", host, port);
	c->tcp = 1;
	c->bev = bev;
	snprintf(c->who, sizeof(c->who), "%s", c->addr);
	return c;
}

void
authz_free(void *caller)
{
	free(caller);
}

static int
authz_listed(struct bufferevent *bev, const struct config_ids *ids)
{
	for (int i = 0; i < ids->n; i++)
		if (tls_bev_matches(bev, ids->id[i]))
			return 1;
	return 0;
}

/* The TLS handshake is over by the first call: the certificate decides. */
static void
authz_resolve(struct authz_caller *c)
{
	char id[300];

	if (c->resolved)
		return;
	c->resolved = 1;
	tls_bev_identity(c->bev, id, sizeof(id));
	if (authz_listed(c->bev, &D->conf.control_operate))
		c->role = AUTHZ_OPERATE;
	else if (authz_listed(c->bev, &D->conf.control_read))
		c->role = AUTHZ_READ;
	snprintf(c->who, sizeof(c->who), "certificate \"%s\" from %s", id, c->addr);
	authz_kv(c->audit, sizeof(c->audit), "transport", "tcp");
	authz_kv(c->audit, sizeof(c->audit), "identity", id);
	authz_kv(c->audit, sizeof(c->audit), "addr", c->addr);
}

static const char *
authz_method_name(const struct grpc_method *gm)
{
	const char *n = strrchr(gm->path, '/');

	return n != NULL ? n + 1 : gm->path;
}

static void
authz_audit_done(struct h2stream *s, int code, const char *msg, void *arg)
{
	struct authz_audit *a = arg;
	char tail[700] = "";

	if (a->vm[0])
		authz_kv(tail, sizeof(tail), "vm", a->vm);
	if (a->id[0])
		authz_kv(tail, sizeof(tail), "id", a->id);
	authz_kv(tail, sizeof(tail), "outcome", grpcmsg_code_name(code));
	if (msg != NULL && msg[0])
		authz_kv(tail, sizeof(tail), "message", msg);
	log_info("audit: %s %s", a->line, tail);
	free(a);
}

/* The request's VM, migration and destination, as far as it names them. */
static void
authz_audit_request(struct authz_audit *a, const void *q)
{
	const char *vm = "", *key = "", *dest = "";

	switch (q == NULL ? GM_COUNT : a->gm->id) {
	case GM_PREPARE_INCOMING:
		vm = ((const Migrationd__V1__PrepareIncomingRequest *)q)->vm;
		break;
	case GM_START_MIGRATION:
		vm = ((const Migrationd__V1__StartMigrationRequest *)q)->vm;
		dest = ((const Migrationd__V1__StartMigrationRequest *)q)->destination;
		break;
	case GM_PAUSE_MIGRATION:
		key = ((const Migrationd__V1__PauseMigrationRequest *)q)->id_or_vm;
		break;
	case GM_RECOVER_MIGRATION:
		key = ((const Migrationd__V1__RecoverMigrationRequest *)q)->id_or_vm;
		dest = ((const Migrationd__V1__RecoverMigrationRequest *)q)->destination;
		break;
	case GM_CANCEL_MIGRATION:
		key = ((const Migrationd__V1__CancelMigrationRequest *)q)->id_or_vm;
		break;
	default:
		break;
	}
	snprintf(a->vm, sizeof(a->vm), "%s", vm);
	if (key[0])
		authz_kv(a->line, sizeof(a->line), "id_or_vm", key);
	if (dest[0])
		authz_kv(a->line, sizeof(a->line), "destination", dest);
}

static void
authz_audit_begin(struct h2stream *s, const struct authz_caller *c,
    const struct grpc_method *gm, const void *q)
{
	struct authz_audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		log_warnx("audit: out of memory for a %s call by %s", authz_method_name(gm),
		    c->who);
		return;
	}
	a->gm = gm;
	authz_kv(a->line, sizeof(a->line), "method", authz_method_name(gm));
	snprintf(a->line + strlen(a->line), sizeof(a->line) - strlen(a->line), " %s",
	    c->audit);
	authz_kv(a->line, sizeof(a->line), "role", authz_role_name(c->role));
	authz_audit_request(a, q);
	h2_set_finish(s, authz_audit_done, a);
}

void
authz_audit_migration(struct h2stream *s, const struct migration *m)
{
	struct authz_audit *a = h2_finish_arg(s, authz_audit_done);

	if (a == NULL || m == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s", m->id);
	snprintf(a->vm, sizeof(a->vm), "%s", m->vm_name);
}

int
authz_check(struct h2stream *s, const struct grpc_method *gm, const void *q)
{
	struct authz_caller *c = h2_peer(s);
	int need = authz_needs(gm);
	char err[600];

	if (c->tcp)
		authz_resolve(c);
	if (need == AUTHZ_OPERATE)
		authz_audit_begin(s, c, gm, q);
	if (c->role >= need)
		return 1;
	if (c->role == AUTHZ_NONE)
		snprintf(err, sizeof(err), "%s has no role here; %s needs the %s role", c->who,
		    authz_method_name(gm), authz_role_name(need));
	else
		snprintf(err, sizeof(err), "%s has the %s role only; %s needs the %s role",
		    c->who, authz_role_name(c->role), authz_method_name(gm),
		    authz_role_name(need));
	if (need != AUTHZ_OPERATE)
		log_warnx("control: refused: %s", err);
	h2_finish(s, GRPC_PERMISSION_DENIED, err);
	return 0;
}
