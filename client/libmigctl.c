/*
 * libmigctl: blocking client of the control socket. Owns one socket per
 * handle. Frames with ctlmsg (daemon/ctlmsg.c), the same code the daemon
 * uses, so both ends agree on lengths and limits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "libmigctl.h"

struct migctl {
	int		fd;
	uint32_t	next_id;
};

struct migctl *
migctl_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct migctl *c;

	if (path == NULL)
		path = MIGCTL_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->next_id = 1;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		if (c->fd >= 0)
			close(c->fd);
		free(c);
		errno = e;
		return NULL;
	}
	return c;
}

void
migctl_close(struct migctl *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

static int
full_io(int fd, void *buf, size_t len, int writing)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = writing ? send(fd, p, len, MSG_NOSIGNAL) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

Migrationd__V1__CtlResponse *
migctl_call(struct migctl *c, Migrationd__V1__CtlRequest *req)
{
	Migrationd__V1__CtlResponse *r;
	uint8_t hdr[CTLMSG_PREFIX], *buf;
	const char *why;
	uint32_t plen;
	size_t len;

	req->id = c->next_id++;
	if ((buf = ctlmsg_pack(&req->base, CTLMSG_MAX, &len)) == NULL) {
		errno = EMSGSIZE;
		return NULL;
	}
	if (full_io(c->fd, buf, len, 1) < 0) {
		free(buf);
		return NULL;
	}
	free(buf);
	if (full_io(c->fd, hdr, sizeof(hdr), 0) < 0)
		return NULL;
	plen = ctlmsg_prefix_len(hdr);
	if (plen == 0 || plen > CTLMSG_MAX) {
		errno = EBADMSG;
		return NULL;
	}
	if ((buf = malloc(plen)) == NULL)
		return NULL;
	if (full_io(c->fd, buf, plen, 0) < 0) {
		free(buf);
		return NULL;
	}
	r = ctlmsg_decode_response(buf, plen, &why);
	free(buf);
	if (r == NULL || r->id != req->id) {
		migctl_response_free(r);
		errno = EBADMSG;
		return NULL;
	}
	return r;
}

void
migctl_response_free(Migrationd__V1__CtlResponse *r)
{
	if (r != NULL)
		migrationd__v1__ctl_response__free_unpacked(r, NULL);
}

Migrationd__V1__CtlResponse *
migctl_prepare(struct migctl *c, const char *vm)
{
	Migrationd__V1__CtlRequest q = MIGRATIOND__V1__CTL_REQUEST__INIT;
	Migrationd__V1__PrepareIncomingRequest p =
	    MIGRATIOND__V1__PREPARE_INCOMING_REQUEST__INIT;

	p.vm = (char *)(uintptr_t)vm;
	q.method_case = MIGRATIOND__V1__CTL_REQUEST__METHOD_PREPARE_INCOMING;
	q.prepare_incoming = &p;
	return migctl_call(c, &q);
}

Migrationd__V1__CtlResponse *
migctl_start(struct migctl *c, const char *vm, const char *dest, const char *token)
{
	Migrationd__V1__CtlRequest q = MIGRATIOND__V1__CTL_REQUEST__INIT;
	Migrationd__V1__StartMigrationRequest s =
	    MIGRATIOND__V1__START_MIGRATION_REQUEST__INIT;

	s.vm = (char *)(uintptr_t)vm;
	s.destination = (char *)(uintptr_t)dest;
	s.token = (char *)(uintptr_t)token;
	q.method_case = MIGRATIOND__V1__CTL_REQUEST__METHOD_START_MIGRATION;
	q.start_migration = &s;
	return migctl_call(c, &q);
}

Migrationd__V1__CtlResponse *
migctl_get(struct migctl *c, const char *id_or_vm)
{
	Migrationd__V1__CtlRequest q = MIGRATIOND__V1__CTL_REQUEST__INIT;
	Migrationd__V1__GetMigrationRequest g = MIGRATIOND__V1__GET_MIGRATION_REQUEST__INIT;

	g.id_or_vm = (char *)(uintptr_t)id_or_vm;
	q.method_case = MIGRATIOND__V1__CTL_REQUEST__METHOD_GET_MIGRATION;
	q.get_migration = &g;
	return migctl_call(c, &q);
}

Migrationd__V1__CtlResponse *
migctl_list(struct migctl *c)
{
	Migrationd__V1__CtlRequest q = MIGRATIOND__V1__CTL_REQUEST__INIT;
	Migrationd__V1__ListMigrationsRequest l =
	    MIGRATIOND__V1__LIST_MIGRATIONS_REQUEST__INIT;

	q.method_case = MIGRATIOND__V1__CTL_REQUEST__METHOD_LIST_MIGRATIONS;
	q.list_migrations = &l;
	return migctl_call(c, &q);
}

Migrationd__V1__CtlResponse *
migctl_recover(struct migctl *c, const char *id_or_vm, const char *dest)
{
	Migrationd__V1__CtlRequest q = MIGRATIOND__V1__CTL_REQUEST__INIT;
	Migrationd__V1__RecoverMigrationRequest r =
	    MIGRATIOND__V1__RECOVER_MIGRATION_REQUEST__INIT;

	r.id_or_vm = (char *)(uintptr_t)id_or_vm;
	r.destination = (char *)(uintptr_t)(dest ? dest : "");
	q.method_case = MIGRATIOND__V1__CTL_REQUEST__METHOD_RECOVER_MIGRATION;
	q.recover_migration = &r;
	return migctl_call(c, &q);
}

static const char *
enum_name(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);

	return e ? e->name : "UNKNOWN";
}

const char *
migctl_state_name(Migrationd__V1__MigrationState s)
{
	return enum_name(&migrationd__v1__migration_state__descriptor, (int)s);
}

const char *
migctl_role_name(Migrationd__V1__Role r)
{
	return enum_name(&migrationd__v1__role__descriptor, (int)r);
}

const char *
migctl_code_name(Migrationd__V1__Code c)
{
	return enum_name(&migrationd__v1__code__descriptor, (int)c);
}
