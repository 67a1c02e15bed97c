/*
 * config.h: migrationd.conf as the daemon sees it (config.c reads it once,
 * at start-up; confcheck.c then checks what the values name). Every error
 * is collected, with where its value came from, so that one run reports
 * them all (`migrationd -n`, and the same at a normal start).
 */
#ifndef MIG_CONFIG_H
#define MIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define MIG_HANDSHAKE_SECS	10	/* default [peer] handshake_timeout */
#define MIG_KEEP_RECORDS	100	/* default [daemon] keep_records */
#define MIG_RECORD_MAX_AGE	(7 * 86400)	/* default [daemon] record_max_age: 7d */
#define MIG_PREPARE_TIMEOUT	600	/* default [daemon] prepare_timeout: 10m */
#define MIG_STREAMS_MAX		8	/* [peer] streams: background streams per migration, at most */
#define MIG_STREAMS_DEFAULT	1	/* default [peer] streams (design.md: measured) */

#define MIG_CONFIG_IDS		32	/* identities per [control] role */
#define MIG_CONFIG_KEYS		64	/* keys whose origin is remembered */
#define MIG_CONFIG_ERRS		64	/* errors kept (more are counted) */

/* Certificate identities (tls.h: a subject, CN, SAN or e-mail), one per
 * repetition of the key. */
struct config_ids {
	int	 n;
	char	 id[MIG_CONFIG_IDS][256];
};

/* [control] others: what local users who are not root, the daemon's user
 * or in [control] group may do on the Unix socket. */
enum config_others {
	CONFIG_OTHERS_NONE,		/* nothing but the health service */
	CONFIG_OTHERS_READ,		/* the read role */
};

struct config {
	char	 path[512];
	char	 control_socket[256];
	char	 vmm_socket[256];
	char	 state_dir[256];
	int	 keep_records;		/* finished records kept; 0: no count limit */
	int	 record_max_age;	/* seconds a finished record is kept; 0: no limit */
	int	 prepare_timeout;	/* seconds an unused PREPARED migration waits */
	char	 peer_listen[128];	/* HOST:PORT, empty: no listener */
	int	 tls;			/* 0 only for benchmarks on loopback */
	char	 tls_ca[256];
	char	 tls_cert[256];
	char	 tls_key[256];
	int	 token_ttl;		/* seconds a prepared token stays valid */
	struct precopy_policy precopy;	/* [peer] precopy: when a migrate names none */
	int	 precopy_switch_ms;	/* auto: switch once the dirty set takes this long */
	int	 precopy_max_rounds;	/* auto: at most this many rounds */
	int	 precopy_recovery;	/* seconds a link lost in pre-copy may take to come back */
	int	 hotset_window_ms;	/* no pre-copy: track writes this long first */
	uint64_t max_bandwidth;		/* [peer] max_bandwidth: bits/s shared by the
					   background channels we send on; 0: none */
	int	 streams;		/* [peer] streams: background streams, 1..MIG_STREAMS_MAX */
	int	 compression;		/* [peer] compression: enum compress_mode */
	int	 advertise_compression; /* [peer] advertise_compression: say we decode zstd */
	int	 compress_threads;	/* [peer] compress_threads: workers; -1: auto */
	int	 parallel_encryption;	/* [peer] parallel_encryption: streams' TLS
					   writes on the workers (peer_tx.c) */
	int	 compression_level;	/* [peer] compression_level: zstd's (design.md) */
	int	 handshake_timeout;	/* seconds a new peer has to authenticate */
	int	 bpf;			/* [bpf] enabled */
	char	 metrics_listen[128];	/* [metrics] listen: IP:PORT, empty: off */
	uint64_t inject_poison[16];	/* [debug]: pages read as poisoned */
	int	 ninject_poison;
	int	 crash_minor_state;	/* [debug] crash_minor: JOURNAL_WRITING/_WRITTEN */
	unsigned crash_minor_at;	/* ... at this minor-mode install run */
	unsigned crash_install_at;	/* [debug] crash_install: die after this
					 * install ioctl, before it is recorded */
	unsigned fail_install_at;	/* [debug] fail_install: installs from
					 * this one on fail with EIO ... */
	unsigned fail_install_count;	/* ... this many of them */
	int	 rx_buffered;		/* [debug] rx_buffered: background pages
					 * through libevent's buffer (bench) */
	int	 lose_complete;		/* [debug] lose_complete: a destination
					 * closes its urgent channel instead of
					 * sending Complete (the link lost then) */
	char	 control_group[64];	/* [control] group: may use the API */
	char	 control_listen[128];	/* [control] listen: IP:PORT, TLS */
	char	 control_ca[256];	/* [control] ca: operators' CA (TCP) */
	char	 control_cert[256];	/* [control] cert/key: the TCP listener's */
	char	 control_key[256];	/* ... (default: [tls] cert and key) */
	struct config_ids control_operate;	/* [control] operate = ID (repeats) */
	struct config_ids control_read;		/* [control] read = ID (repeats) */
	int	 control_others;	/* [control] others: enum config_others */
	int	 tls_insecure;		/* [tls] insecure: TLS off off loopback */
	/* Where each key set came from: a line of the file or a flag. */
	struct config_origin {
		char	 section[16];
		char	 key[32];
		int	 line;		/* > 0: the file's line; 0: a flag */
		char	 flag[4];	/* "-l", "-s" */
	}	 origin[MIG_CONFIG_KEYS];
	int	 norigin;
};

/* The errors one load and check found, each a line of its own. */
struct config_errs {
	int	 n;		/* kept in msg */
	int	 more;		/* found but not kept */
	char	 msg[MIG_CONFIG_ERRS][512];
};

/*
 * Defaults, then `path` (NULL: defaults only). Every syntax error, unknown
 * section or key and bad value is added to `e` as "FILE:LINE: [section]
 * key: why"; a bad value leaves the key at its default. Returns the number
 * of errors added, or -1 (one error added) if the file cannot be read.
 */
int config_load(struct config *c, const char *path, struct config_errs *e);
/* A command-line flag (e.g. "-l") set [section] key: errors name the flag. */
void config_set_by_flag(struct config *c, const char *section, const char *key,
    const char *flag);
/* Where [section] key came from, as errors begin: "FILE:LINE: [section]
 * key", the flag ("-l"), or "FILE: [section] key" for a default. */
const char *config_where(const struct config *c, const char *section,
    const char *key, char *buf, size_t len);
/* Adds "WHERE: why" to e (WHERE as config_where says). */
void config_error(struct config_errs *e, const struct config *c,
    const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Puts e in the file's order: by line, then keys the file does not set,
 * then flags. */
void config_errs_sort(struct config_errs *e, const struct config *c);
/* A listener's address: numeric IP:PORT, or empty for none. 0, or -1 with
 * the reason in why. */
int config_listen_why(const char *v, char *why, size_t len);

/* Options of config_check that are not in the file. */
#define CONFIG_CHECK_ACTIVATED	0x1	/* systemd passed the control socket */

/*
 * confcheck.c: what the values name and how they fit together, without
 * starting anything: the TLS rule (peer TLS off only on loopback or with
 * [tls] insecure = yes; a TCP control listener needs [control] ca), the
 * certificate files (readable, parsed, key matching, chaining to the CA,
 * valid now), [control] group, and the state and socket directories
 * (exist or can be made, writable; nothing is left behind). Adds each
 * problem to `e`; returns their number.
 */
int config_check(const struct config *c, int flags, struct config_errs *e);
/* A listener nobody off this host reaches: none (""), 127.0.0.0/8 or ::1. */
int config_is_loopback(const char *listen);
/* [peer] compress_threads: the workers that compress beside the loop thread
 * (auto: one fewer than the online CPUs, at most 3). */
int config_compress_threads(const struct config *c);

#endif
