/*
 * migration: the model. Migration records, their state machine, and the
 * observers that hear of every change (records, the control API's
 * watchers). Records stay after a migration ends so `mig-ctl list` shows
 * history; a role's running state is freed by session_finish(). Finished
 * records expire ([daemon] keep_records, record_max_age): after every
 * finish (deferred to the loop, never inside the call that finished it),
 * on a timer, and once at start-up. Calls nothing above it. Loop thread
 * only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migration.h"
#include "tls.h"
#include "util.h"

#define MIG_MAX_OBSERVERS	4
#define MIG_EXPIRY_TICK_MAX	60	/* seconds between timed expiry passes */

struct mig_list mig_all = TAILQ_HEAD_INITIALIZER(mig_all);
static mig_observer_fn observers[MIG_MAX_OBSERVERS];
static int nobservers;
static struct event *ev_expire_tick, *ev_expire_soon;

static const char *const state_names[] = {
	[MIG_PREPARED] = "PREPARED", [MIG_CONNECTING] = "CONNECTING",
	[MIG_BLACKOUT] = "BLACKOUT", [MIG_POSTCOPY] = "POSTCOPY",
	[MIG_COMPLETED] = "COMPLETED", [MIG_PAUSED] = "PAUSED",
	[MIG_FAILED] = "FAILED", [MIG_CANCELLED] = "CANCELLED",
	[MIG_PRECOPY] = "PRECOPY",
};

const char *
mig_state_name(enum mig_state st)
{
	if ((unsigned)st >= sizeof(state_names) / sizeof(state_names[0]) ||
	    state_names[st] == NULL)
		return "UNKNOWN";
	return state_names[st];
}

const char *
mig_role_name(enum mig_role role)
{
	return role == MIG_SOURCE ? "source" : "destination";
}

int
mig_observe(mig_observer_fn fn)
{
	if (nobservers == MIG_MAX_OBSERVERS)
		return -1;
	observers[nobservers++] = fn;
	return 0;
}

static void
mig_notify(struct migration *m, enum mig_event ev, enum mig_state prev)
{
	for (int i = 0; i < nobservers; i++)
		observers[i](m, ev, prev);
}

static int
mig_state_active(enum mig_state st)
{
	switch (st) {
	case MIG_COMPLETED:
	case MIG_FAILED:
	case MIG_CANCELLED:
		return 0;
	default:
		return 1;
	}
}

int
mig_active(const struct migration *m)
{
	return mig_state_active(m->state);
}

/* Pages in one PAGES or REQ frame: 16 small pages, or one 2 MiB page. */
uint32_t
mig_frame_pages(const struct migration *m)
{
	uint32_t n = MIG_FRAME_MAX_BYTES / m->page_size;

	return n == 0 ? 1 : n < MIG_FRAME_MAX_PAGES ? n : MIG_FRAME_MAX_PAGES;
}

uint64_t
mig_pages_moved(const struct migration *m)
{
	return m->st.pages_demand + m->st.pages_background + m->st.pages_zero;
}

/* Numbers for probes and BPF maps, unique within this daemon run. */
static uint32_t
mig_next_num(void)
{
	static uint32_t next;

	return ++next;
}

struct migration *
mig_alloc(const char *id, const char *vm, enum mig_role role, uint64_t ram_bytes,
    uint32_t page_size)
{
	struct migration *m;
	uint8_t rnd[6];

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if (id != NULL) {
		snprintf(m->id, sizeof(m->id), "%s", id);
	} else if (tls_random(rnd, sizeof(rnd)) < 0) {
		free(m);
		return NULL;
	} else {
		snprintf(m->id, sizeof(m->id), "m-%02x%02x%02x%02x%02x%02x", rnd[0],
		    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	}
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm);
	m->num = mig_next_num();
	m->lat_slot = -1;
	m->role = role;
	m->ram_bytes = ram_bytes;
	m->page_size = page_size;
	m->npages = page_size ? ram_bytes / page_size : 0;
	m->started_ms = now_ms();
	m->started_ns = now_ns();
	hist_init(&m->st.lat);
	return m;
}

struct migration *
mig_new(const char *vm, enum mig_role role, uint64_t ram_bytes, uint32_t page_size)
{
	struct migration *m = mig_alloc(NULL, vm, role, ram_bytes, page_size);

	if (m != NULL)
		mig_insert(m);
	return m;
}

void
mig_insert(struct migration *m)
{
	struct migration *o;

	/* Oldest first, as when they were made: the newest for a VM wins. */
	TAILQ_FOREACH(o, &mig_all, entry)
		if (o->started_ms > m->started_ms)
			break;
	if (o != NULL)
		TAILQ_INSERT_BEFORE(o, m, entry);
	else
		TAILQ_INSERT_TAIL(&mig_all, m, entry);
}

struct migration *
mig_find(const char *key)
{
	struct migration *m, *found = NULL;

	/* By id; by VM name the newest record wins. */
	TAILQ_FOREACH(m, &mig_all, entry) {
		if (!strcmp(m->id, key))
			return m;
		if (!strcmp(m->vm_name, key))
			found = m;
	}
	return found;
}

void
mig_set_state(struct migration *m, enum mig_state st, const char *fmt, ...)
{
	enum mig_state prev = m->state;
	int64_t now = now_ns();
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
		va_end(ap);
	} else if (st == MIG_COMPLETED) {
		m->reason[0] = '\0';	/* a pause on the way is over */
	}
	log_info("migration %s (vm %s, %s): %s -> %s%s%s", m->id, m->vm_name,
	    mig_role_name(m->role), mig_state_name(m->state), mig_state_name(st),
	    fmt ? ": " : "", fmt ? m->reason : "");
	m->state = st;
	if (st == MIG_POSTCOPY && m->postcopy_ns == 0)
		m->postcopy_ns = now;
	if (!mig_active(m)) {
		m->ended_ms = now_ms();
		m->total_s = (double)(now - m->started_ns) / 1e9;
		if (m->postcopy_ns != 0)
			m->st.postcopy_s = (double)(now - m->postcopy_ns) / 1e9;
	}
	mig_notify(m, MIG_EV_SAVE, prev);
	mig_notify(m, MIG_EV_STATE, prev);
	/* Older records may now be one too many: looked at once the call
	 * that finished m has returned to the loop. */
	if (mig_state_active(prev) && !mig_active(m) && ev_expire_soon != NULL)
		event_active(ev_expire_soon, EV_TIMEOUT, 0);
}

void
mig_save(struct migration *m)
{
	mig_notify(m, MIG_EV_SAVE, m->state);
}

void
mig_set_verdict(struct migration *m, int ok, const char *text)
{
	snprintf(m->verdict, sizeof(m->verdict), "%s", text);
	m->verdict_ok = ok;
	mig_save(m);
}

void
mig_free(struct migration *m)
{
	TAILQ_REMOVE(&mig_all, m, entry);
	free(m);
}

/*
 * A finished record nothing points at: its role let go of it
 * (session_finish), so no channel, heartbeat, VM or role state refers to it
 * (a VM points at a migration only while the migration points back).
 */
static int
mig_expirable(const struct migration *m)
{
	for (size_t k = 0; k < MIG_STREAMS_MAX - 1; k++)
		if (m->bg_more[k] != NULL)
			return 0;
	return !mig_active(m) && m->vm == NULL && m->urgent == NULL && m->bg == NULL &&
	    m->ev_ping == NULL && m->src == NULL && m->dst == NULL;
}

static void
mig_forget(struct migration *m, const char *why)
{
	log_debug("migration %s (vm %s, %s, %s): record expired (%s)", m->id, m->vm_name,
	    mig_role_name(m->role), mig_state_name(m->state), why);
	mig_notify(m, MIG_EV_FORGET, m->state);
	mig_free(m);
}

struct mig_by_end {
	int64_t			 ended_ms;
	size_t			 pos;	/* list order breaks ties */
	struct migration	*m;
};

static int
mig_by_end_cmp(const void *a, const void *b)
{
	const struct mig_by_end *x = a, *y = b;

	if (x->ended_ms != y->ended_ms)
		return x->ended_ms < y->ended_ms ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int
mig_expire(int64_t now)
{
	int64_t max_age_ms = (int64_t)D->conf.record_max_age * 1000;
	size_t keep = (size_t)D->conf.keep_records, n = 0, k;
	struct migration *m, *next;
	struct mig_by_end *v;
	int gone = 0;

	for (m = TAILQ_FIRST(&mig_all); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (!mig_expirable(m))
			continue;
		if (max_age_ms > 0 && now - m->ended_ms > max_age_ms) {
			mig_forget(m, "older than record_max_age");
			gone++;
		} else {
			n++;
		}
	}
	if (keep == 0 || n <= keep)
		return gone;
	/* The oldest to finish go first. */
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		log_warnx("%s: out of memory; %zu finished records kept", __func__, n);
		return gone;
	}
	k = 0;
	TAILQ_FOREACH(m, &mig_all, entry)
		if (mig_expirable(m) && k < n) {
			v[k].ended_ms = m->ended_ms;
			v[k].pos = k;
			v[k].m = m;
			k++;
		}
	qsort(v, k, sizeof(*v), mig_by_end_cmp);
	for (size_t i = 0; i + keep < k; i++) {
		mig_forget(v[i].m, "more than keep_records");
		gone++;
	}
	free(v);
	return gone;
}

static void
mig_expire_cb(evutil_socket_t fd, short what, void *arg)
{
	mig_expire(now_ms());
}

int
mig_expiry_start(void)
{
	/* Often enough that a record outlives record_max_age by a quarter
	 * of it at most (and a minute at most). */
	int secs = D->conf.record_max_age / 4;
	struct timeval tv = { secs < 1 ? 1 : secs > MIG_EXPIRY_TICK_MAX ?
	    MIG_EXPIRY_TICK_MAX : secs, 0 };
	int gone;

	if ((ev_expire_tick = event_new(D->base, -1, EV_PERSIST, mig_expire_cb, NULL)) == NULL ||
	    (ev_expire_soon = event_new(D->base, -1, 0, mig_expire_cb, NULL)) == NULL) {
		log_warnx("%s: out of memory", __func__);
		mig_expiry_stop();
		return -1;
	}
	event_priority_set(ev_expire_tick, MIG_PRI_BULK);
	event_priority_set(ev_expire_soon, MIG_PRI_BULK);
	event_add(ev_expire_tick, &tv);
	if ((gone = mig_expire(now_ms())) > 0)
		log_info("%s: %d finished migration records expired (keep_records %d, "
		    "record_max_age %d s)", __func__, gone, D->conf.keep_records,
		    D->conf.record_max_age);
	return 0;
}

void
mig_expiry_stop(void)
{
	if (ev_expire_tick != NULL)
		event_free(ev_expire_tick);
	if (ev_expire_soon != NULL)
		event_free(ev_expire_soon);
	ev_expire_tick = ev_expire_soon = NULL;
}
