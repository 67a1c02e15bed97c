#!/usr/bin/env bash
# A restart of either daemon (SIGKILL, or SIGTERM and start again) or a cut
# link during pre-copy (issue 13): the source VM never stops, the shim
# tracks its writes throughout, the source reconnects, the destination's
# Resync says what it holds, pre-copy goes on and the migration completes.
# The source VMM (shimvm -W) writes wrong values into 300 pages until it is
# paused, then their rule content: any stale pre-copied page left installed
# is a MISMATCH when the destination compares every byte with the rule.
# cut-forever: the link does not come back within [peer] precopy_recovery:
# the migration FAILED, saying so, and the source VMM runs on (its writer
# still going); once the link is back a second migration completes.
# cut-switch: the link goes at the switch-over, after the source sent the
# VM state but before the destination got it (held behind a 100 kbit/s
# cap on the background channel): both wait PAUSED; once the link is back
# the destination (still before its VM state) resumes, the source learns
# that the state never arrived, and resumes the VM (it must never be lost).
# usage: precopy_faults.sh BUILD_DIR kill-dest|kill-source|term-source|
#        cut-link|cut-forever|cut-switch [copy|minor]
BUILD=$1
WHAT=$2
INSTALL=${3:-copy}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=32
VM=prefault-$WHAT-$INSTALL
mig_hosts_up
if [[ $WHAT == cut-* ]]; then
  ((MIG_USE_NETNS)) || mig_skip "needs network namespaces to cut a link"
  A_NS=migA-$$ B_NS=migB-$$ VA=va$$ VB=vb$$
fi
mig_certs
CONF_A="[metrics]
listen = 127.0.0.1:9481
[peer]
precopy_recovery = 5"
mig_daemon_start A "$CONF_A"
CONF_B="[peer]
precopy_recovery = 5"
mig_daemon_start B "$CONF_B"
on_a() { ip netns exec "migA-$$" "$@"; }
((MIG_USE_NETNS)) || on_a() { "$@"; }

start_dest() { # LOG
  mig_spawn B "$WORK/$1" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m $MEM -t 2 -k 16 \
    -I "$INSTALL"
  dst=$SPAWN_PID
}
prepare() { mig_prepare B "$VM"; token=$TOKEN; }

# cut-link: 100 "once" pages are written once, between rounds (shimvm -O).
once=()
[[ $WHAT == cut-link ]] && once=(-O "$WORK/once")
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m $MEM -W 300 \
  "${once[@]}"
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
  wait_for B '.state == "PAUSED"' 20
  mig_assert_eq "destination PAUSED (still before its VM state)" "$?" 0
  wait_for A '.state == "PAUSED"' 20
  mig_assert_eq "source PAUSED: it cannot know yet" "$?" 0
  ip -n "$A_NS" link set "$VA" up
  ip -n "$B_NS" link set "$VB" up
  wait_for A '.state == "FAILED"' 30
  mig_assert_eq "source FAILED once the destination said the VM never ran there" "$?" 0
  ctl A --json status "$VM" | jq -c '{state, reason}'
  ctl B --json status "$VM" | jq -c '{state, reason}'
  mig_assert_eq "the source resumes the VM" \
    "$(st A '.reason | test("never ran there.*the VM resumes on the source")')" true
  wait_for B '.state == "FAILED"' 10
  mig_assert_eq "the destination was told (FAILED at once, not after precopy_recovery)" "$?" 0
  mig_wait_exit "$src" 10
  grep -q 'shimvm: source: .*never ran there' "$WORK/src.log"
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
# Pre-copy goes on after the fault: both sides back in PRECOPY, and rounds
# run again (the shim's scans see what was written meanwhile).
resumed() {
  local r
  wait_for A '.state == "PRECOPY"' "${1:-30}"
  mig_assert_eq "source back in PRECOPY" "$?" 0
  wait_for B '.state == "PRECOPY"' 10
  mig_assert_eq "destination back in PRECOPY" "$?" 0
  r=$(st A .precopy_rounds)
  wait_for A ".precopy_rounds >= $((r + 2))" 30
  mig_assert_eq "pre-copy rounds run on" "$?" 0
  kill -0 "$src" 2>/dev/null
  mig_assert_eq "the source VMM ran throughout" "$?" 0
}
link_set() { ip -n "$A_NS" link set "$VA" "$1"; ip -n "$B_NS" link set "$VB" "$1"; }
case $WHAT in
kill-dest)
  log "killing the destination daemon during pre-copy"
  kill -KILL "$PID_DB"; mig_forget "$PID_DB"
  wait_for A '.state == "PAUSED"' 15
  mig_assert_eq "source PAUSED, the VM running on" "$?" 0
  mig_daemon_start B "$CONF_B"
  resumed 30
  mig_wait_line "$WORK/migrationd-B.log" 'restarted during pre-copy; the pre-copied pages are dropped' 5 "$PID_DB"
  mig_assert_eq "restarted destination re-adopted the migration, its pages dropped" "$?" 0
  ;;
kill-source|term-source)
  sig=KILL; [[ $WHAT == term-source ]] && sig=TERM
  log "SIG$sig to the source daemon during pre-copy"
  kill -$sig "$PID_DA"; mig_forget "$PID_DA"
  wait_for B '.state == "PAUSED"' 15
  mig_assert_eq "destination PAUSED (waiting for the source)" "$?" 0
  for _ in $(seq 50); do kill -0 "$PID_DA" 2>/dev/null || break; sleep 0.1; done
  mig_daemon_start A "$CONF_A"
  wait_for A '.reason | test("daemon restarted")' 15
  mig_assert_eq "restarted source re-adopted the migration" "$?" 0
  resumed 30
  grep -h 'pre-copy resumed' "$WORK/migrationd-A.log" | cut -c1-200
  ;;
cut-link)
  # The once pages are written after round 1 sent them, a scan sees it, and
  # the link goes as the round that sends them again starts (a 2 Mbit/s cap
  # makes its 400 pages last some 6 s): the destination holds their stale
  # copy, which must never be trusted after the Resync.
  ctl A set "$VM" --max-bandwidth 2M >/dev/null || mig_die "cap refused"
  sleep 1
  touch "$WORK/once"
  mig_wait_line "$WORK/src.log" 'once pages written' 10 "$src"
  # the scan that sees them: the 300 the writer keeps writing and the 100
  mig_wait_line "$WORK/migrationd-A.log" 'pre-copy round [0-9]*: 400 pages written' 20 "$PID_DA"
  mig_assert_eq "a scan saw the once pages written" "$?" 0
  log "cutting the link during pre-copy"
  link_set down
  wait_for A '.state == "PAUSED"' 20
  mig_assert_eq "source PAUSED when the link went" "$?" 0
  wait_for B '.state == "PAUSED"' 20
  mig_assert_eq "destination PAUSED when the link went" "$?" 0
  echo "source: $(st A .reason)"
  sleep 1
  link_set up
  ctl A set "$VM" --max-bandwidth 0 >/dev/null
  resumed 30
  grep -h 'pre-copy resumed' "$WORK/migrationd-A.log" | cut -c1-200
  ;;
cut-forever)
  log "cutting the link during pre-copy, for good"
  link_set down
  wait_for A '.state == "FAILED"' 30
  mig_assert_eq "source FAILED when the link stayed down" "$?" 0
  ctl A --json status "$VM" | jq -c '{state, reason}'
  mig_assert_eq "the reason says so" \
    "$(st A '.reason | test("not back within precopy_recovery.*the VM runs on the source")')" true
  kill -0 "$src" 2>/dev/null
  mig_assert_eq "the source VMM runs on (its VM never stopped)" "$?" 0
  link_set up
  wait_for B '.state == "FAILED"' 30
  mig_assert_eq "the destination gave up too" "$?" 0
  if ! kill -0 "$dst" 2>/dev/null; then
    start_dest dst2.log
  fi
  prepare
  log "migrating again"
  ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --precopy 2 --wait --timeout 300 >/dev/null
  mig_assert_eq "the second migration completed" "$?" 0
  grep -q 'writer made' "$WORK/src.log"
  mig_assert_eq "the writer ran on until the second switch-over" "$?" 0
  ;;
esac
if [[ $WHAT != cut-forever ]]; then
  ctl A postcopy "$VM" >/dev/null
  mig_assert_eq "mig-ctl postcopy switched over" "$?" 0
  wait_for A '.state == "COMPLETED"' 120
  mig_assert_eq "the migration completed after the fault" "$?" 0
  wait_for B '.state == "COMPLETED"' 30
  mig_assert_eq "destination completed" "$?" 0
  s=$(ctl A --json status "$VM"); d=$(ctl B --json status "$VM")
  jq -c '{reconnects, precopy_rounds, pages_precopy, pages_invalidated}' <<<"$s"
  jq -c '{reconnects, pages_precopy, pages_invalidated, pages_installed, install_eexist}' <<<"$d"
  mig_assert_eq "the source counted the reconnect" "$(jq -r '.reconnects >= 1' <<<"$s")" true
  mig_assert_eq "stale pages listed at the switch-over" "$(jq -r '.pages_invalidated > 0' <<<"$s")" true
fi
mig_assert_eq "no install met a page already there (EEXIST)" "$(st B .install_eexist)" 0
mig_wait_exit "$dst" 60
mig_assert_eq "destination VMM: every value checked out" "$?" 0
mig_assert_verified "$WORK/$( [[ -s $WORK/dst2.log ]] && echo dst2.log || echo dst1.log)" ${MEM}M
mig_wait_exit "$src" 30
mig_assert_eq "source VMM exited after the VM left" "$?" 0
# With MIG_STREAMS: after a reconnect every stream redialled.
mig_assert_streams $(($(st A .reconnects) >= 1 ? 2 : 1))
mig_cleanup
mig_finish
