/*
 * record: migration records under the state directory, so history and
 * running migrations outlive the daemon. rec_save() rewrites one record
 * atomically (temporary file + rename) on every state change; rec_load()
 * reads them all at start-up. A record of a migration that was running when
 * the daemon died comes back PAUSED and waits for its VMM to re-attach (and,
 * on the destination, for the source to reconnect). Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "migrationd.h"
#include "state.pb-c.h"

#define REC_VERSION	1
#define REC_MAX		(1u << 20)

void
rec_save(const struct migration *m)
{
	Migrationd__State__V1__MigrationRecord r = MIGRATIOND__STATE__V1__MIGRATION_RECORD__INIT;
	Migrationd__V1__Migration info;
	char path[600], tmp[610];
	uint8_t *buf;
	size_t len;
	int fd;

	mig_to_proto(m, &info);
	r.version = REC_VERSION;
	r.info = &info;
	r.session_key.data = (uint8_t *)(uintptr_t)m->session_key;
	r.session_key.len = sizeof(m->session_key);
	r.state_sent = m->state_sent;
	r.page_size = m->page_size;
	len = migrationd__state__v1__migration_record__get_packed_size(&r);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return;
	migrationd__state__v1__migration_record__pack(&r, buf);
	snprintf(path, sizeof(path), "%s/%s.rec", D->conf.state_dir, m->id);
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
	int ran = dest ? m->state == MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT ||
	    m->state == MIGRATIOND__V1__MIGRATION_STATE__POSTCOPY ||
	    m->state == MIGRATIOND__V1__MIGRATION_STATE__PAUSED : state_sent;

	if (!ran) {
		/* Nothing ran on the destination: the source VM runs on. */
		m->resume_on_attach = !dest && m->state == MIGRATIOND__V1__MIGRATION_STATE__BLACKOUT;
		mig_set_state(m, MIGRATIOND__V1__MIGRATION_STATE__FAILED,
		    "daemon restarted before the VM state %s", dest ? "arrived" : "left");
		return;
	}
	m->state_sent = state_sent;
	m->state = MIGRATIOND__V1__MIGRATION_STATE__PAUSED;
	snprintf(m->reason, sizeof(m->reason), "daemon restarted; waiting for the VMM "
	    "to re-attach%s", dest ? " and the source to reconnect" : "");
	log_info("migration %s (vm %s): %s", m->id, m->vm_name, m->reason);
}

static void
rec_load_one(const char *path)
{
	Migrationd__State__V1__MigrationRecord *r = NULL;
	const Migrationd__V1__Migration *i;
	struct migration *m;
	uint8_t *buf = NULL;
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    st.st_size <= 0 || st.st_size > REC_MAX || (buf = malloc((size_t)st.st_size)) == NULL ||
	    read(fd, buf, (size_t)st.st_size) != st.st_size ||
	    (r = migrationd__state__v1__migration_record__unpack(NULL, (size_t)st.st_size, buf)) == NULL ||
	    r->version != REC_VERSION || r->info == NULL || r->page_size == 0 ||
	    r->session_key.len != sizeof(m->session_key) ||
	    strlen(r->info->id) >= sizeof(m->id) || strlen(r->info->vm) >= sizeof(m->vm_name) ||
	    mig_find(r->info->id) != NULL) {
		log_warnx("%s: %s: not a usable record, skipped", __func__, path);
		goto out;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	i = r->info;
	snprintf(m->id, sizeof(m->id), "%s", i->id);
	m->num = mig_next_num();
	m->lat_slot = -1;
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", i->vm);
	snprintf(m->peer, sizeof(m->peer), "%s", i->peer);
	snprintf(m->reason, sizeof(m->reason), "%s", i->reason);
	snprintf(m->verdict, sizeof(m->verdict), "%s", i->guest_verdict);
	m->verdict_ok = i->guest_ok;
	m->role = i->role == MIGRATIOND__V1__ROLE__SOURCE ? MIG_SOURCE : MIG_DEST;
	m->state = i->state;
	m->ram_bytes = i->ram_bytes;
	m->npages = i->pages_total;
	m->page_size = r->page_size;
	m->pages_demand = i->pages_demand;
	m->pages_background = i->pages_background;
	m->pages_zero = i->pages_zero;
	m->pages_installed = i->pages_installed;
	m->install_eexist = i->install_eexist;
	m->install_errors = i->install_errors;
	m->pages_duplicate = i->pages_duplicate;
	m->demand_faults = i->demand_faults;
	m->bytes_sent = i->bytes_sent;
	m->bytes_received = i->bytes_received;
	m->blackout_ms = i->blackout_ms;
	m->total_s = i->total_s;
	m->started_ms = i->started_unix_ms;
	m->ended_ms = i->ended_unix_ms;
	m->started_ns = now_ns() - (int64_t)(i->total_s * 1e9);
	m->reconnects = i->reconnects;
	memcpy(m->session_key, r->session_key.data, sizeof(m->session_key));
	m->memfd = -1;
	m->pages_poisoned = i->pages_poisoned;
	snprintf(m->fault_path, sizeof(m->fault_path), "%s", i->fault_path);
	snprintf(m->install_mode, sizeof(m->install_mode), "%s", i->install_mode);
	hist_init(&m->lat);
	/* Oldest first, as when they were made: the newest for a VM wins. */
	{
		struct migration *o;

		TAILQ_FOREACH(o, &D->migs, entry)
			if (o->started_ms > m->started_ms)
				break;
		if (o != NULL)
			TAILQ_INSERT_BEFORE(o, m, entry);
		else
			TAILQ_INSERT_TAIL(&D->migs, m, entry);
	}
	if (mig_active(m))
		rec_revive(m, r->state_sent);
out:
	if (r != NULL)
		migrationd__state__v1__migration_record__free_unpacked(r, NULL);
	free(buf);
	if (fd >= 0)
		close(fd);
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
