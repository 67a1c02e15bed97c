/*
 * record: migration records under the state directory, so history and
 * running migrations outlive the daemon. rec_save() rewrites one record
 * atomically (temporary file + rename) on every state change and whenever
 * the model says its figures changed (an observer: rec_init); rec_load()
 * reads them all at start-up. A record of a migration that was running when
 * the daemon died comes back PAUSED and waits for its VMM to re-attach (and,
 * on the destination, for the source to reconnect). When the model expires
 * a finished record (MIG_EV_FORGET) its file goes too. Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest.h"
#include "log.h"
#include "migration.h"
#include "record.h"
#include "source.h"
#include "state.pb-c.h"
#include "util.h"
#include "view.h"

#define REC_VERSION	1
#define REC_MAX		(1u << 20)

static void
rec_path(const struct migration *m, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.rec", D->conf.state_dir, m->id);
}

/*
 * An expired record goes with everything else its migration kept under the
 * state directory. The installer removes its files when a migration ends
 * (role/install.c); they are left only by one that ended without its role
 * (prepared or connecting when the daemon stopped, failed at start-up).
 */
static void
rec_remove(const struct migration *m)
{
	static const char *const kept[] = { ".pages", ".journal" };
	char path[600];

	rec_path(m, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: %s", __func__, path);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", D->conf.state_dir, m->id, kept[i]);
		if (unlink(path) == 0)
			log_debug("%s: %s was left behind", __func__, path);
	}
}

static void
rec_save(const struct migration *m)
{
	Migrationd__State__V1__MigrationRecord r = MIGRATIOND__STATE__V1__MIGRATION_RECORD__INIT;
	Migrationd__V1__Migration info;
	char path[600], tmp[610];
	uint8_t *buf;
	size_t len;
	int fd;

	view_fill(m, &info);
	r.version = REC_VERSION;
	r.info = &info;
	r.session_key.data = (uint8_t *)(uintptr_t)m->session_key;
	r.session_key.len = sizeof(m->session_key);
	r.state_sent = m->state_sent;
	r.never_ran = m->never_ran;
	r.page_size = m->page_size;
	if (m->vmm.known) {
		r.vmm_secret.data = (uint8_t *)(uintptr_t)m->vmm.secret;
		r.vmm_secret.len = sizeof(m->vmm.secret);
		r.vmm_uid = m->vmm.uid;
		r.vmm_gid = m->vmm.gid;
		r.vmm_pid = m->vmm.pid;
	}
	len = migrationd__state__v1__migration_record__get_packed_size(&r);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return;
	migrationd__state__v1__migration_record__pack(&r, buf);
	rec_path(m, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		log_warn("%s: %s", __func__, path);
		if (fd >= 0)
			unlink(tmp);
	}
	free(buf);
}

/* What a record of a migration that was running means after a restart. */
static void
rec_revive(struct migration *m, int state_sent)
{
	int dest = m->role == MIG_DEST;
	/* Pre-copy (PRECOPY, or PAUSED before the state left) goes on: the
	 * source VM never stopped, the destination's never ran. */
	int ran = m->state == MIG_PRECOPY || m->state == MIG_PAUSED ||
	    (dest ? m->state == MIG_BLACKOUT || m->state == MIG_POSTCOPY : state_sent);

	if (!ran) {
		/* Nothing ran on the destination: the source VM runs on. */
		m->resume_on_attach = !dest && m->state == MIG_BLACKOUT;
		mig_set_state(m, MIG_FAILED, "daemon restarted before the VM state %s",
		    dest ? "arrived" : "left");
		return;
	}
	if (dest)
		dst_revive(m);
	else
		src_revive(m);
	m->state_sent = state_sent;
	m->state = MIG_PAUSED;
	snprintf(m->reason, sizeof(m->reason), "daemon restarted; waiting for the VMM "
	    "to re-attach%s", dest ? " and the source to reconnect" : "");
	log_info("migration %s (vm %s): %s", m->id, m->vm_name, m->reason);
}

/* A record file's contents, or NULL (logged) if it is not a usable record. */
static Migrationd__State__V1__MigrationRecord *
rec_read(const char *path)
{
	Migrationd__State__V1__MigrationRecord *r = NULL;
	uint8_t *buf = NULL;
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    st.st_size <= 0 || st.st_size > REC_MAX || (buf = malloc((size_t)st.st_size)) == NULL ||
	    read(fd, buf, (size_t)st.st_size) != st.st_size ||
	    (r = migrationd__state__v1__migration_record__unpack(NULL, (size_t)st.st_size, buf)) == NULL ||
	    r->version != REC_VERSION || r->info == NULL || r->page_size == 0 ||
	    r->session_key.len != sizeof(((struct migration *)0)->session_key) ||
	    strlen(r->info->id) >= sizeof(((struct migration *)0)->id) ||
	    strlen(r->info->vm) >= sizeof(((struct migration *)0)->vm_name) ||
	    mig_find(r->info->id) != NULL) {
		log_warnx("%s: %s: not a usable record, skipped", __func__, path);
		if (r != NULL)
			migrationd__state__v1__migration_record__free_unpacked(r, NULL);
		r = NULL;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

static void
rec_load_one(const char *path)
{
	Migrationd__State__V1__MigrationRecord *r;
	const Migrationd__V1__Migration *i;
	struct migration *m;

	if ((r = rec_read(path)) == NULL)
		return;
	i = r->info;
	m = mig_alloc(i->id, i->vm, i->role == MIGRATIOND__V1__ROLE__SOURCE ? MIG_SOURCE :
	    MIG_DEST, i->ram_bytes, r->page_size);
	if (m != NULL) {
		view_restore(m, i);
		memcpy(m->session_key, r->session_key.data, sizeof(m->session_key));
		/* The VMM's secret: a record without one (an older daemon's)
		 * re-attaches unauthenticated, as it did then. */
		if ((m->vmm.known = r->vmm_secret.len == sizeof(m->vmm.secret))) {
			memcpy(m->vmm.secret, r->vmm_secret.data, sizeof(m->vmm.secret));
			m->vmm.uid = r->vmm_uid;
			m->vmm.gid = r->vmm_gid;
			m->vmm.pid = r->vmm_pid;
		}
		m->never_ran = r->never_ran;
		mig_insert(m);
		if (mig_active(m))
			rec_revive(m, r->state_sent);
	}
	migrationd__state__v1__migration_record__free_unpacked(r, NULL);
}

void
rec_load(void)
{
	struct dirent *de;
	char **names = NULL, path[600];
	size_t n = 0;
	DIR *d;

	if ((d = opendir(D->conf.state_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char **nn;

		if (l < 5 || strcmp(de->d_name + l - 4, ".rec") != 0)
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			break;
		names = nn;
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	for (size_t k = 0; k < n; k++) {
		snprintf(path, sizeof(path), "%s/%s", D->conf.state_dir, names[k]);
		rec_load_one(path);
		free(names[k]);
	}
	free(names);
	if (n)
		log_info("%s: %zu migration records from %s", __func__, n, D->conf.state_dir);
}

static void
rec_observer(struct migration *m, enum mig_event ev, enum mig_state prev)
{
	if (ev == MIG_EV_SAVE)
		rec_save(m);
	else if (ev == MIG_EV_FORGET)
		rec_remove(m);
}

void
rec_init(void)
{
	mig_observe(rec_observer);
}
