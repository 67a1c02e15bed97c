/*
 * config.h: migrationd.conf as the daemon sees it (config.c reads it once,
 * at start-up).
 */
#ifndef MIG_CONFIG_H
#define MIG_CONFIG_H

#include <stdint.h>

#include "policy.h"

#define MIG_HANDSHAKE_SECS	10	/* default [peer] handshake_timeout */
#define MIG_KEEP_RECORDS	100	/* default [daemon] keep_records */
#define MIG_RECORD_MAX_AGE	(7 * 86400)	/* default [daemon] record_max_age: 7d */
#define MIG_PREPARE_TIMEOUT	600	/* default [daemon] prepare_timeout: 10m */

#define MIG_CONFIG_IDS		32	/* identities per [control] role */

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
	int	 hotset_window_ms;	/* no pre-copy: track writes this long first */
	uint64_t max_bandwidth;		/* [peer] max_bandwidth: bits/s shared by the
					   background channels we send on; 0: none */
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
	char	 control_group[64];	/* [control] group: may use the API */
	char	 control_listen[128];	/* [control] listen: IP:PORT, TLS */
	char	 control_ca[256];	/* [control] ca: operators' CA (TCP) */
	char	 control_cert[256];	/* [control] cert/key: the TCP listener's */
	char	 control_key[256];	/* ... (default: [tls] cert and key) */
	struct config_ids control_operate;	/* [control] operate = ID (repeats) */
	struct config_ids control_read;		/* [control] read = ID (repeats) */
	int	 control_others;	/* [control] others: enum config_others */
	int	 tls_insecure;		/* [tls] insecure: TLS off off loopback */
};

/* Defaults, then `path` (NULL: defaults only). 0, or -1 after logging
 * file:line and the bad key. */
int config_load(struct config *c, const char *path);

#endif
