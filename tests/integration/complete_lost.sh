#!/usr/bin/env bash
# The link goes down the instant the destination completes, so the source
# never reads Complete ([debug] lose_complete on B: it closes its urgent
# channel instead of sending it). The source goes PAUSED and reconnects;
# the destination, which has every page, answers the resume with Complete,
# and the source completes and tells its VMM (which exits) instead of
# waiting for a migration that is over. Then the same with the destination
# daemon restarted while the source is cut off: the record answers. Every
# byte verified on the destination.
# usage: complete_lost.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=16
mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B "[debug]
lose_complete = yes"

# start_vm VM: a shimvm source on A and destination on B, prepared; sets src
# dst TOKEN
start_vm() {
  mig_spawn A "$WORK/src-$1.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$1" -m $MEM
  src=$SPAWN_PID
  mig_wait_line "$WORK/src-$1.log" 'source ready' 30 "$src" || mig_die "$1: source not ready"
  mig_spawn B "$WORK/dst-$1.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$1" -m $MEM -t 1 -k 4
  dst=$SPAWN_PID
  mig_prepare B "$1"
}

VM=lost
start_vm $VM
# (no --wait: it stops at the PAUSED on the way)
ctl A migrate $VM --to "$ADDR_B" --token "$TOKEN" >/dev/null || mig_die "migrate refused"
wait_for A '.state == "COMPLETED"' 60
mig_assert_eq "source: migration completed although Complete was lost" "$?" 0
mig_assert_eq "source: no reason left from the pause" "$(st A .reason)" ""
mig_wait_exit "$dst" 30; mig_assert_eq "destination VMM: every value checked out" "$?" 0
mig_assert_verified "$WORK/dst-$VM.log" ${MEM}M
mig_wait_exit "$src" 30; mig_assert_eq "source VMM told the migration completed" "$?" 0
grep -q "the source at .* resumes it, but it completed here" "$WORK/migrationd-B.log"
mig_assert_eq "destination: answered the resume with Complete" "$?" 0
grep -q "(vm $VM, source): POSTCOPY -> PAUSED" "$WORK/migrationd-A.log"
mig_assert_eq "source: the link was lost first (PAUSED)" "$?" 0
echo "source: $(st A '{state, reconnects, reason}' | tr -d '\n')"

if ((MIG_USE_NETNS)); then
  # The destination daemon restarts while the source cannot reach it: the
  # completed migration's record answers the resume.
  VM=restart
  start_vm $VM
  ctl A migrate $VM --to "$ADDR_B" --token "$TOKEN" >/dev/null || mig_die "migrate refused"
  A_NS=migA-$$ B_NS=migB-$$ VA=va$$ VB=vb$$
  # cut the link the moment B completes (the source retries after 250 ms)
  for _ in $(seq 3000); do
    [[ $(st B .state) == COMPLETED ]] && break
    sleep 0.01
  done
  ip -n "$A_NS" link set "$VA" down
  ip -n "$B_NS" link set "$VB" down
  mig_assert_eq "destination completed" "$(st B .state)" COMPLETED
  mig_wait_exit "$dst" 30; mig_assert_eq "$VM: destination VMM: every value checked out" "$?" 0
  mig_assert_verified "$WORK/dst-$VM.log" ${MEM}M
  wait_for A '.state == "PAUSED"' 15
  mig_assert_eq "source PAUSED while the link is down" "$?" 0
  kill -TERM "$PID_DB"
  mig_wait_exit "$PID_DB" 10
  mig_daemon_start B
  ip -n "$A_NS" link set "$VA" up
  ip -n "$B_NS" link set "$VB" up
  wait_for A '.state == "COMPLETED"' 30
  mig_assert_eq "source: completed once the restarted destination answered" "$?" 0
  mig_wait_exit "$src" 30; mig_assert_eq "$VM: source VMM told the migration completed" "$?" 0
  mig_assert_eq "restarted destination: answered from its record" \
    "$(grep -c "migration .*: the source at .* resumes it, but it completed here" \
      "$WORK/migrationd-B.log")" 2
else
  log "no network namespaces: the restart case needs a link to cut (skipped)"
  ((${MIG_REQUIRE_ALL:-0})) && mig_die "MIG_REQUIRE_ALL: the restart case did not run"
fi
mig_cleanup
mig_finish
