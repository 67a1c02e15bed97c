#!/usr/bin/env bash
# Real threads touching real missing guest RAM on the destination, served by
# a real source migrationd over TLS, through both fault paths: the blocking
# uffd path and the ring + SIGBUS path (UFFD_FEATURE_SIGBUS memory, the
# shim's handler posts to the shared ring, the daemon completes the slot).
# Every touched value and then every page is checked; in ring mode hostile
# ring entries (beyond RAM, unaligned, zero size) are refused, not written.
# With INSTALL minor the destination installs by writing the page cache and
# UFFDIO_CONTINUE (missing + minor faults registered) instead of UFFDIO_COPY.
# usage: fault_paths.sh BUILD_DIR uffd|ring [copy|minor]
BUILD=$1
MODE=$2
INSTALL=${3:-copy}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
VM=fp-$MODE-$INSTALL

mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m 64
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source shimvm not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m 64 -M "$MODE" \
  -I "$INSTALL" -t 8 -k 64 -b "$WORK/bad.json"
dst=$SPAWN_PID
for _ in $(seq 50); do
  ctl B --json list 2>/dev/null | jq -e --arg vm "$VM" '.vms[] | select(.name == $vm)' \
    >/dev/null && break
  sleep 0.1
done
grep -q "faults through the ring" "$WORK/migrationd-B.log"
mig_assert_eq "daemon sees the VM's fault path" "$?" "$([[ $MODE == ring ]] && echo 0 || echo 1)"
grep -q "minor-mode installs" "$WORK/migrationd-B.log"
mig_assert_eq "daemon sees the VM's install mode" "$?" "$([[ $INSTALL == minor ]] && echo 0 || echo 1)"
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --wait --timeout 300 >/dev/null
mig_assert_eq "migrate exit code" "$?" 0
mig_wait_exit "$dst" 120; mig_assert_eq "destination shimvm verified every page" "$?" 0
mig_assert_verified "$WORK/dst.log" 64M
mig_wait_exit "$src" 30; mig_assert_eq "source shimvm left" "$?" 0
report=$(grep '^{' "$WORK/dst.log")
echo "$report"
ctl B --json status "$VM" >"$WORK/d.json"
mig_assert_eq "no page error" "$(jq -r .page_errors <<<"$report")" 0
mig_assert_eq "no bad value seen by a touching thread" "$(jq -r .bad_touch_values <<<"$report")" 0
mig_assert_eq "pages installed == pages" "$(jq -r .pages_installed "$WORK/d.json")" \
  "$(jq -r .pages_total "$WORK/d.json")"
mig_assert_eq "install EEXIST" "$(jq -r .install_eexist "$WORK/d.json")" 0
mig_assert_eq "status names the fault path and install mode" \
  "$(jq -r '.fault_path + "/" + .install_mode' "$WORK/d.json")" "$MODE/$INSTALL"
mig_assert_eq "threads were served on demand" "$(jq -r '.demand_faults > 0' "$WORK/d.json")" true
if [[ $MODE == ring ]]; then
  mig_assert_eq "ring entry beyond RAM refused" "$(jq -r .beyond_ram "$WORK/bad.json")" -34
  mig_assert_eq "unaligned ring entry refused" "$(jq -r .unaligned "$WORK/bad.json")" -22
  mig_assert_eq "zero-size ring entry refused" "$(jq -r .zero_size "$WORK/bad.json")" -22
  mig_assert_eq "daemon logged the refused entries" \
    "$(grep -c 'refused entry' "$WORK/migrationd-B.log")" 3
fi
mig_finish
