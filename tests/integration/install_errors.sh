#!/usr/bin/env bash
# An install that fails never strands the threads waiting on its pages:
#  - one failed install ([debug] fail_install = N: the Nth install ioctl
#    fails with EIO, as a real one could): the pages are fetched again and
#    installed, the migration completes, every page checks out;
#  - installs that keep failing: after a bounded number of refetches the
#    migration fails on both hosts within seconds, with the cause, and the
#    destination VMM is told; nothing stays PAUSED.
# In minor mode the failure strikes half-way through the page-cache write,
# as a failing pwrite would: the torn page must be dropped and fetched
# again, never mapped (shimvm checks every page).
# usage: install_errors.sh BUILD_DIR uffd|ring [copy|minor]
BUILD=$1
MODE=${2:-uffd}
INSTALL=${3:-copy}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm

mig_hosts_up
mig_certs
mig_daemon_start A

run() { # NAME FAIL_INSTALL: sets DST_PID
  local n=$1
  mig_daemon_start B "[debug]
fail_install = $2"
  mig_spawn A "$WORK/src-$n.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$n" -m 32
  SRC_PID=$SPAWN_PID
  mig_wait_line "$WORK/src-$n.log" 'source ready' 30 "$SRC_PID" || mig_die "$n: source not ready"
  mig_spawn B "$WORK/dst-$n.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$n" -m 32 \
    -M "$MODE" -I "$INSTALL" -t 4 -k 16
  DST_PID=$SPAWN_PID
  sleep 0.3
  token=$(ctl B prepare "$n" -q) || mig_die "prepare $n failed"
  ctl A migrate "$n" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate $n failed"
}

VM=once
run once 12
wait_for B '.state == "COMPLETED" or .state == "FAILED" or .state == "PAUSED"' 120
mig_assert_eq "one failed install: migration completed" "$(st B .state)" COMPLETED
mig_wait_exit "$DST_PID" 60; mig_assert_eq "one failed install: every page checked out" "$?" 0
mig_assert_verified "$WORK/dst-once.log" 32M
mig_assert_eq "the install error is counted" "$(st B .install_errors)" 1
grep -q 'fetched again after an install error' "$WORK/migrationd-B.log"
mig_assert_eq "its pages were fetched again" "$?" 0
mig_assert_eq "pages installed == pages" "$(st B '.pages_installed == .pages_total')" true
kill -TERM "$PID_DB"; mig_wait_exit "$PID_DB" 20; mig_forget "$PID_DB"

VM=always
run always 12:1000000
wait_for B '.state == "FAILED"' 10
mig_assert_eq "installs keep failing: destination FAILED within 10 s" "$?" 0
wait_for A '.state == "FAILED"' 5
mig_assert_eq "installs keep failing: source FAILED too" "$?" 0
echo "destination: $(st B .reason)"
echo "source:      $(st A .reason)"
mig_assert_eq "destination names the cause" "$(st B '.reason | test("cannot install pages .* Input/output error")')" true
mig_assert_eq "source hears it" "$(st A '.reason | test("cannot install pages")')" true
mig_wait_exit "$DST_PID" 10
mig_assert_eq "destination VMM was told and left" "$(kill -0 "$DST_PID" 2>/dev/null && echo running || echo gone)" gone
grep -q 'shimvm: dest: .*cannot install pages' "$WORK/dst-always.log"
mig_assert_eq "destination VMM got the reason" "$?" 0
mig_finish
