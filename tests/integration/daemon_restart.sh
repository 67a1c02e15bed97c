#!/usr/bin/env bash
# A daemon killed with SIGKILL in the middle of post-copy and started again
# loses nothing. First the destination daemon: the VMM (which kept its
# memfd and uffd) re-attaches, the new daemon rebuilds which pages are
# installed from the kernel (SEEK_DATA on the memfd), the source reconnects
# and re-syncs. Then the source daemon: its VMM re-attaches, it maps the RAM
# again and resumes with the destination. The migration completes, every
# page installed exactly once, and the guest verifies its memory.
# With INSTALL minor the destination installs through the page cache and
# UFFDIO_CONTINUE; its journal settles the run in flight at the kill.
# usage: daemon_restart.sh BUILD_DIR [copy|minor]
BUILD=$1
INSTALL=${2:-copy}
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to slow the link down"
tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 24mbit burst 64kb latency 500ms ||
  mig_die "cannot shape the link"
mig_certs
mig_daemon_start A
mig_daemon_start B
VM=t-restart-$INSTALL

mig_vmm_start A "$VM" vmm-A --mem 32M --workload writer
src=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$src" || mig_die "guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 32M --incoming --install "$INSTALL" --report "$WORK/report.json"
dst=$VMM_PID
sleep 0.5
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"
wait_for B '.state == "POSTCOPY" and .pages_installed > 500' 60 || mig_die "post-copy did not start"

log "SIGKILL to the destination daemon (pid $PID_DB)"
kill -KILL "$PID_DB"
mig_forget "$PID_DB"
sleep 1
mig_daemon_start B
wait_for B '.reason | test("daemon restarted")' 10
mig_assert_eq "restarted destination knows the migration and why it paused" "$?" 0
echo "destination after restart: $(st B .state): $(st B .reason)"
grep -q 're-attached to migration' "$WORK/migrationd-B.log"
wait_for B '.state == "POSTCOPY" or .state == "COMPLETED"' 30
mig_assert_eq "destination resumed after its restart" "$?" 0
grep -q "re-attached with" "$WORK/migrationd-B.log"
mig_assert_eq "installed pages rebuilt from the memfd" "$?" 0

if [[ $(st B .state) == POSTCOPY ]]; then
  log "SIGKILL to the source daemon (pid $PID_DA)"
  kill -KILL "$PID_DA"
  mig_forget "$PID_DA"
  sleep 1
  mig_daemon_start A
  wait_for A '.reason | test("daemon restarted")' 10
  mig_assert_eq "restarted source knows the migration" "$?" 0
  echo "source after restart: $(st A .state): $(st A .reason)"
fi
wait_for B '.state == "COMPLETED"' 180; mig_assert_eq "destination completed" "$?" 0
wait_for A '.state == "COMPLETED"' 30; mig_assert_eq "source completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination VMM: guest verified" "$?" 0
mig_assert_verified "$WORK/vmm-B.log" 32M
mig_wait_exit "$src" 30; mig_assert_eq "source VMM left" "$?" 0
mig_assert_eq "guest verdict" "$(jq -r .verdict "$WORK/report.json")" intact
mig_assert_eq "pages installed == pages" "$(st B .pages_installed)" "$(st B .pages_total)"
mig_assert_eq "no page installed twice (EEXIST)" "$(st B .install_eexist)" 0
mig_assert_eq "no install error" "$(st B .install_errors)" 0
mig_assert_eq "installed in the mode the VMM asked for" "$(st B .install_mode)" "$INSTALL"
mig_assert_eq "history survives: list on B still shows it" \
  "$(ctl B --json list | jq --arg vm "$VM" '[.migrations[] | select(.vm == $vm)] | length >= 1')" true
# With MIG_STREAMS: every stream redialled after the losses.
mig_assert_streams 2
mig_finish
