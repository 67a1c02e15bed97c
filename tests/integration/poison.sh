#!/usr/bin/env bash
# Poisoned pages: pages the source cannot read (hardware poison; injected
# here with [debug] inject_poison because this kernel has no memory-failure
# injection) travel as poison markers and are installed with UFFDIO_POISON.
# A thread touching one (before it arrived, and after) gets a machine-check
# SIGBUS, not a hang and not stale data; the migration completes and
# reports the pages. Run for the blocking-uffd and the ring paths.
# usage: poison.sh BUILD_DIR uffd|ring
BUILD=$1
MODE=$2
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
VM=poison-$MODE
P1=5000 P2=5001 P3=12000   # P1 is touched before it arrives; all are probed after

mig_hosts_up
mig_certs
mig_daemon_start A "[debug]
inject_poison = $P1,$P2,$P3"
mig_daemon_start B
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m 64
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m 64 -M "$MODE" \
  -t 4 -k 32 -P "$P1,$P2,$P3"
dst=$SPAWN_PID
sleep 0.5
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --wait --timeout 300 >/dev/null
mig_assert_eq "migration completed despite the poisoned pages" "$?" 0
mig_wait_exit "$dst" 120; mig_assert_eq "destination shimvm: every check passed" "$?" 0
# Every byte but those of the three pages poisoned on purpose, named.
mig_assert_verified "$WORK/dst.log" $(((16384 - 3) * 4096)) "$P1,$P2,$P3"
report=$(grep '^{' "$WORK/dst.log"); echo "$report"
mig_assert_eq "machine check for every poisoned page" "$(jq -r .poison_machine_checks <<<"$report")" 3
mig_assert_eq "touching a poisoned page before it arrived: machine check" \
  "$(jq -r .poison_touched_early <<<"$report")" 1
mig_assert_eq "every other page intact" "$(jq -r .page_errors <<<"$report")" 0
mig_assert_eq "source reports the poisoned pages" "$(ctl A --json status "$VM" | jq -r .pages_poisoned)" 3
mig_assert_eq "destination installed them as poison" "$(ctl B --json status "$VM" | jq -r .pages_poisoned)" 3
mig_assert_eq "pages installed == pages" "$(ctl B --json status "$VM" | jq -r .pages_installed)" 16384
mig_assert_eq "source daemon logged each poisoned page" \
  "$(grep -c 'is poisoned here; sent as poison' "$WORK/migrationd-A.log")" 3
mig_finish
