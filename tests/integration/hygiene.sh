#!/usr/bin/env bash
# Resource hygiene: N sequential migrations (shimvm VMs, 4 MiB, the cheapest
# real migration) through one pair of daemons with the default record
# limits ([daemon] keep_records = 100). After a warm-up migration, count
# each daemon's open fds, threads and RSS, and again after CHECK (100) and
# after N migrations: the fds and threads must be back to the same numbers;
# up to CHECK the RSS may grow by the records kept for history, from CHECK
# to N it must stay flat (records expire, nothing else accumulates); the
# records listed and the record files in each state directory stay at
# keep_records.
# usage: hygiene.sh BUILD_DIR [N [CHECK]]
BUILD=$1
N=${2:-100}
CHECK=${3:-100}
((CHECK > N)) && CHECK=$N
KEEP=100	# the default [daemon] keep_records
source "$(dirname "$0")/../lib.sh"
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B

usage() { # PID -> "fds threads rss_kib"
  echo "$(ls /proc/$1/fd | wc -l) $(awk '/^Threads/ {print $2}' /proc/$1/status) $(awk '/^VmRSS/ {print $2}' /proc/$1/status)"
}
finished() { # HOST: finished records the daemon lists
  ctl "$1" --json list | jq '[.migrations[] | select(.state == "COMPLETED" or
    .state == "FAILED" or .state == "CANCELLED")] | length'
}
files() { # HOST: record files in its state directory
  find "$WORK/$1/state" -name '*.rec' | wc -l
}
report() { # LABEL
  echo "$1: A fds=$fa threads=$ta rss=${ra}KiB records=$(finished A) files=$(files A);" \
    "B fds=$fb threads=$tb rss=${rb}KiB records=$(finished B) files=$(files B)"
}
measure() {
  sleep 0.5
  read -r fa ta ra <<<"$(usage "$PID_DA")"
  read -r fb tb rb <<<"$(usage "$PID_DB")"
}

mig_shim_migrate warmup || mig_die "warm-up migration failed"
measure
report "after warm-up"
fa0=$fa ta0=$ta ra0=$ra fb0=$fb tb0=$tb rb0=$rb
t0=$(date +%s)
ok=0
for i in $(seq "$N"); do
  mig_shim_migrate "h$i" && ok=$((ok + 1)) || { mig_fail "migration $i failed"; break; }
  if ((i == CHECK)); then
    measure
    report "after $i migrations in $(($(date +%s) - t0)) s"
    ra1=$ra rb1=$rb
  fi
done
t1=$(date +%s)
measure
report "after $ok migrations in $((t1 - t0)) s"
mig_assert_eq "migrations completed" "$ok" "$N"
mig_assert_eq "source daemon fds unchanged" "$fa" "$fa0"
mig_assert_eq "destination daemon fds unchanged" "$fb" "$fb0"
mig_assert_eq "source daemon threads unchanged" "$ta" "$ta0"
mig_assert_eq "destination daemon threads unchanged" "$tb" "$tb0"
# Up to CHECK, history stays in memory (a record is about 9 KiB with its
# histogram, less of it touched); anything beyond that is a leak. From
# CHECK on, records expire one for one: 2 MiB is noise (the allocator,
# libevent, OpenSSL); 900 records kept would be several MiB.
limit=$((CHECK * 16 + 2048))
if [[ ${MIG_SANITIZE:-0} == 1 ]]; then
  # ASan keeps freed memory in quarantine, so RSS says nothing here; in this
  # build LeakSanitizer checks every allocation when the daemons exit
  # (mig_cleanup fails the test on any report).
  echo "note: RSS not compared under ASan; LeakSanitizer judges leaks at exit"
else
  echo "RSS growth: A $((ra1 - ra0)) KiB to $CHECK, $((ra - ra1)) KiB from $CHECK to $N;" \
    "B $((rb1 - rb0)) KiB to $CHECK, $((rb - rb1)) KiB from $CHECK to $N"
  mig_assert_eq "source RSS growth to $CHECK under ${limit} KiB" "$((ra1 - ra0 < limit))" 1
  mig_assert_eq "destination RSS growth to $CHECK under ${limit} KiB" "$((rb1 - rb0 < limit))" 1
  if ((N > CHECK)); then
    mig_assert_eq "source RSS flat from $CHECK to $N (growth under 2048 KiB)" \
      "$((ra - ra1 < 2048))" 1
    mig_assert_eq "destination RSS flat from $CHECK to $N (growth under 2048 KiB)" \
      "$((rb - rb1 < 2048))" 1
  fi
fi
want=$((N + 1 < KEEP ? N + 1 : KEEP))
for h in A B; do
  mig_assert_eq "host $h lists the newest $want records" "$(finished "$h")" "$want"
  mig_assert_eq "host $h keeps $want record files" "$(files "$h")" "$want"
done
mig_assert_eq "the newest record is listed" \
  "$(ctl B --json status "h$N" | jq -r .state)" COMPLETED
if ((N + 1 > KEEP)); then
  mig_assert_eq "the oldest record expired" \
    "$(ctl B --json list | jq '[.migrations[] | select(.vm == "warmup")] | length')" 0
fi
mig_finish
