#!/usr/bin/env bash
# The destination daemon killed (SIGKILL) and started again, twice, in the
# middle of post-copy, with the pages that make counting go wrong: poisoned
# pages (installed as markers, not page-cache data), zero pages, and (with
# [debug] crash_install) a page the old daemon installed but died before
# recording, so the new one meets it as EEXIST. Completion must come from
# the installed set, never from counters: after both restarts every page is
# verified by the VMM (shimvm), the poisoned ones machine-check.
#
# Threads that were waiting on a page when the daemon died are served on
# demand by the new one (blocking uffd: the daemon wakes them so they fault
# again; ring: the taken slots are served again), not left waiting for the
# background stream: the source daemon is stopped (SIGSTOP) while they
# fault, so their requests are in flight when the destination dies, and the
# link is slow enough that the stream would take far longer than a demand
# fetch to reach their pages.
#
# With HUGE=huge, guest RAM is 2 MiB hugetlbfs pages, where the page cache
# cannot say what is installed: the installed set on disk is all there is.
# usage: restart_edges.sh BUILD_DIR uffd|ring copy|minor [huge]
BUILD=$1
MODE=$2
INSTALL=$3
HUGE=${4:-}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
VM=edges-$MODE-$INSTALL${HUGE:+-huge}
MEM=64
if [[ -n $HUGE ]]; then
  H=-H
  NPOISON=0                       # (shimvm probes poison in 4 KiB pages only)
  CRASH_AT=10
  TOUCHES=1 SERVE_MAX=12          # a 2 MiB demand page is slow on this link
  mig_reserve_hugepages $((MEM + 8))
  RATE=24mbit
else
  H=
  POISON=5000,9001,12000
  NPOISON=3
  CRASH_AT=40
  TOUCHES=6 SERVE_MAX=6
  RATE=12mbit
fi
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to slow the link down"
tc -n "migA-$$" qdisc add dev "va$$" root tbf rate $RATE burst 64kb latency 300ms ||
  mig_die "cannot shape the link"
mig_certs
mig_daemon_start A "[debug]
inject_poison = ${POISON:-}"
# The first destination daemon dies right after an early install, with the
# page in guest RAM and not yet in the installed set.
mig_daemon_start B "[debug]
crash_install = $CRASH_AT"
mig_spawn A "$WORK/src.log" "$SHIMVM" source $H -s "$WORK/A/vmm.sock" -n "$VM" -m $MEM
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest $H -s "$WORK/B/vmm.sock" -n "$VM" -m $MEM \
  -M "$MODE" -I "$INSTALL" -t 4 -k $TOUCHES ${POISON:+-P $POISON} -w "$WORK/go"
dst=$SPAWN_PID
sleep 0.5
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"

# 1. killed by crash_install, a page installed and unrecorded.
mig_wait_exit "$PID_DB" 60; (($? != 124)) && grep -q 'crash_install: killing' "$WORK/migrationd-B.log" ||
  mig_die "destination daemon did not die between an install and its record"
mig_forget "$PID_DB"
echo "ok: destination daemon died between an install and its record"
mig_daemon_start B
wait_for B '.state == "POSTCOPY"' 30
(($?)) && mig_die "first restart: destination did not resume"

# 2. threads waiting when the daemon dies: hold the source so their
# requests cannot be answered, then kill the destination daemon.
kill -STOP "$PID_DA"
sleep 0.3
f0=$(st B .demand_faults)
touch "$WORK/go"
for _ in $(seq 50); do (($(st B .demand_faults) >= f0 + 4)) && break; sleep 0.1; done
echo "demand faults before the kill: $f0 -> $(st B .demand_faults)"
sleep 0.3
log "SIGKILL to the destination daemon with threads waiting (pid $PID_DB)"
kill -KILL "$PID_DB"
mig_forget "$PID_DB"
t_kill=$(date +%s.%N)
kill -CONT "$PID_DA"
sleep 0.5
mig_daemon_start B
wait_for B '.state == "POSTCOPY" or .state == "COMPLETED"' 30
mig_assert_eq "second restart: destination resumed" "$?" 0
grep -q "re-attached with" "$WORK/migrationd-B.log"
mig_assert_eq "installed set rebuilt after the restart" "$?" 0

mig_wait_line "$WORK/dst.log" 'touch phase done' 120 "$dst"
t_touched=$(date +%s.%N)
st_state=$(st B .state)
echo "destination state when the threads were done: $st_state"
wait_for B '.state == "COMPLETED"' 300; mig_assert_eq "destination completed" "$?" 0
t_done=$(date +%s.%N)
wait_for A '.state == "COMPLETED"' 30; mig_assert_eq "source completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination shimvm: every page checked out" "$?" 0
# Every byte but those of the pages poisoned on purpose, named.
mig_assert_verified "$WORK/dst.log" $(((MEM << 20) - NPOISON * 4096)) "${POISON:-none}"
report=$(grep '^{' "$WORK/dst.log"); echo "$report"
served=$(bc <<<"$t_touched - $t_kill")
stream=$(bc <<<"$t_done - $t_kill")
echo "waiting threads done ${served}s after the kill; the stream ended ${stream}s after it"
# Left to the stream they wait ~10 s here (it restarts from page 0); on
# demand, the daemon's restart and the source's reconnect are the time.
mig_assert_eq "waiting threads served on demand within $SERVE_MAX s, long before the stream ended" \
  "$(bc <<<"$served < $SERVE_MAX && $served * 3 < $stream")" 1
j=$(ctl B --json status "$VM")
echo "$j" | jq -c '{pages_total, pages_installed, pages_poisoned, pages_zero, install_eexist, demand_faults}'
mig_assert_eq "pages installed == pages" "$(jq -r '.pages_installed == .pages_total' <<<"$j")" true
mig_assert_eq "machine check for every poisoned page" "$(jq -r .poison_machine_checks <<<"$report")" $NPOISON
mig_assert_eq "destination counts them" "$(jq -r .pages_poisoned <<<"$j")" $NPOISON
mig_assert_eq "every other page intact" "$(jq -r .page_errors <<<"$report")" 0
if [[ $INSTALL == copy && -n $HUGE ]]; then
  # (shmem: the page cache shows it, and the rebuild marks it)
  mig_assert_eq "the unrecorded page was met as EEXIST, not written twice" \
    "$(jq -r '.install_eexist >= 1' <<<"$j")" true
fi
mig_assert_eq "no installed-set file left behind" "$(ls "$WORK/B/state/"*.pages 2>/dev/null | wc -l)" 0
mig_finish
