#!/usr/bin/env bash
# A restart of either daemon (SIGKILL) or a cut link during pre-copy: the
# rule (doc/design.md, "Pre-copy") is that the migration ends FAILED before
# anything ran on the destination, the VM never stops running on the
# source, and the destination's leftovers can never pass for pages of a
# later migration (a new prepare empties the VM's RAM). Then a second
# migration of the same VM, with pre-copy, completes and the destination
# compares every byte with the source's rule.
# cut-switch: the link goes at the switch-over, after the source sent the
# VM state but before the destination got it (held behind a 100 kbit/s
# cap on the background channel): the destination ends its migration, the
# source waits PAUSED; once the link is back the destination says the VM
# never ran there, and the source resumes it (it must never be lost).
# usage: precopy_faults.sh BUILD_DIR kill-dest|kill-source|cut-link|cut-switch
BUILD=$1
WHAT=$2
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=32
VM=prefault-$WHAT
mig_hosts_up
if [[ $WHAT == cut-* ]]; then
  ((MIG_USE_NETNS)) || mig_skip "needs network namespaces to cut a link"
  A_NS=migA-$$ B_NS=migB-$$ VA=va$$ VB=vb$$
fi
mig_certs
mig_daemon_start A "[metrics]
listen = 127.0.0.1:9481"
mig_daemon_start B
on_a() { ip netns exec "migA-$$" "$@"; }
((MIG_USE_NETNS)) || on_a() { "$@"; }

start_dest() { # LOG
  mig_spawn B "$WORK/$1" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m $MEM -t 2 -k 16
  dst=$SPAWN_PID
}
prepare() { mig_prepare B "$VM"; token=$TOKEN; }

mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m $MEM -W 300
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
start_dest dst1.log
prepare
# A pre-copy that lasts (10 minutes, rounds over and over) until the fault.
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --precopy 10m >/dev/null ||
  mig_die "migrate refused"
if [[ $WHAT == cut-switch ]]; then
  wait_for B '.state == "PRECOPY" and .pages_precopy > 0' 30 || mig_die "no pre-copy"
  ctl A set "$VM" --max-bandwidth 100k >/dev/null
  sleep 1
  ctl A postcopy "$VM" >/dev/null
  mig_assert_eq "mig-ctl postcopy switched over at once" "$?" 0
  mig_wait_line "$WORK/migrationd-A.log" 'VM paused after pre-copy' 10 "$PID_DA"
  mig_assert_eq "the source sent the VM state (behind the capped stream)" "$?" 0
  mig_assert_eq "the destination has not got it yet" "$(st B .state)" PRECOPY
  log "cutting the link at the switch-over"
  ip -n "$A_NS" link set "$VA" down
  ip -n "$B_NS" link set "$VB" down
  wait_for B '.state == "FAILED"' 20
  mig_assert_eq "destination FAILED: its VM never ran" "$?" 0
  wait_for A '.state == "PAUSED"' 20
  mig_assert_eq "source PAUSED: it cannot know yet" "$?" 0
  ip -n "$A_NS" link set "$VA" up
  ip -n "$B_NS" link set "$VB" up
  wait_for A '.state == "FAILED"' 30
  mig_assert_eq "source FAILED once the destination said the VM never ran there" "$?" 0
  ctl A --json status "$VM" | jq -c '{state, reason}'
  mig_assert_eq "the source resumes the VM" \
    "$(st A '.reason | test("never ran here.*the VM resumes on the source")')" true
  mig_wait_exit "$src" 10
  grep -q 'shimvm: source: destination refused: .*never ran here' "$WORK/src.log"
  mig_assert_eq "the source VMM was told to resume its VM" "$?" 0
  mig_cleanup
  mig_finish
fi
wait_for A '.state == "PRECOPY" and .precopy_rounds >= 2' 30
mig_assert_eq "source in PRECOPY, round 2 or later" "$?" 0
wait_for B '.state == "PRECOPY" and .pages_precopy > 0' 30
mig_assert_eq "destination in PRECOPY, pages arriving" "$?" 0
ctl A status "$VM" | grep 'pre-copy:'
on_a curl -sf http://127.0.0.1:9481/metrics >"$WORK/metrics.txt" || mig_fail "no metrics"
grep '^migrationd_precopy_' "$WORK/metrics.txt"
mig_assert_eq "/metrics: PRECOPY with its rounds and rates" "$(grep -c -e '^migrationd_migration_info{.*state="PRECOPY"' \
  -e '^migrationd_precopy_rounds{.*} [1-9]' -e '^migrationd_precopy_dirty_pages_per_second{' \
  -e '^migrationd_precopy_remaining_bytes{' -e '^migrationd_precopy_projected_postcopy_bytes{' \
  "$WORK/metrics.txt")" 5
case $WHAT in
kill-dest)
  log "killing the destination daemon during pre-copy"
  kill -KILL "$PID_DB"; mig_forget "$PID_DB"
  wait_for A '.state == "FAILED"' 15
  mig_assert_eq "source FAILED (the VM never left)" "$?" 0
  mig_daemon_start B
  mig_assert_eq "destination record after its restart" "$(st B .state)" FAILED
  ;;
kill-source)
  log "killing the source daemon during pre-copy"
  kill -KILL "$PID_DA"; mig_forget "$PID_DA"
  wait_for B '.state == "FAILED"' 15
  mig_assert_eq "destination FAILED (nothing ran there)" "$?" 0
  mig_daemon_start A
  mig_assert_eq "source record after its restart" "$(st A .state)" FAILED
  # The destination VMM was told and gave up; a new one takes its place.
  mig_wait_exit "$dst" 30
  ;;
cut-link)
  log "cutting the link during pre-copy"
  ip -n "$A_NS" link set "$VA" down
  ip -n "$B_NS" link set "$VB" down
  wait_for A '.state == "FAILED"' 20
  mig_assert_eq "source FAILED when the link went" "$?" 0
  wait_for B '.state == "FAILED"' 20
  mig_assert_eq "destination FAILED when the link went" "$?" 0
  ip -n "$A_NS" link set "$VA" up
  ip -n "$B_NS" link set "$VB" up
  ;;
esac
ctl A --json status "$VM" | jq -c '{state, reason, precopy_rounds, pages_precopy}'
kill -0 "$src" 2>/dev/null
mig_assert_eq "the source VMM runs on (its VM never stopped)" "$?" 0
if ! kill -0 "$dst" 2>/dev/null; then
  start_dest dst2.log
fi
prepare
log "migrating again"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --precopy 2 --wait --timeout 300 >/dev/null
mig_assert_eq "the second migration completed" "$?" 0
mig_assert_eq "nothing of the first attempt was left in guest RAM (no install met a page)" \
  "$(st B .install_eexist)" 0
mig_wait_exit "$dst" 60
mig_assert_eq "destination VMM: every value checked out" "$?" 0
mig_assert_verified "$WORK/$( [[ -s $WORK/dst2.log ]] && echo dst2.log || echo dst1.log)" ${MEM}M
mig_wait_exit "$src" 30
mig_assert_eq "source VMM exited after the VM left" "$?" 0
mig_cleanup
mig_finish
