#!/usr/bin/env bash
# Pre-copy before the switch-over, with a source that keeps writing: the
# source VMM (shimvm -W) keeps writing wrong values into 300 pages spread
# over RAM until it is paused, then writes their right content back (a
# device at the switch-over). Whatever pre-copy sent of those pages is
# stale, so the destination must make each one missing again at the
# switch-over and fetch it in post-copy: it compares every byte of RAM with
# the source's rule at the end, and one stale page is a MISMATCH. Also: the
# shim says how it tracks writes, rounds and stale pages are counted on both
# sides, and bad --precopy values are refused with a clear error.
# A duration POLICY (e.g. 3s) adds the targeted check: 100 more pages hold
# a wrong value until the test, once round 2 has begun, tells the writer to
# write them right, once (shimvm -O): round 1 sent them wrong, a later round
# right, nothing writes them again, so only a destination that keeps the
# later copy ends with the rule.
# POLICY off: no pre-copy, but a 300 ms hot-set window ([peer]
# hotset_window_ms) learns the writer's pages, which then lead the
# post-copy stream. With pre-copy too, the stale pages go first.
# POLICY auto: the switch follows a scan, and the pages it found go to the
# destination ahead of the pause (Precopy with stale), dropped there while
# the source VMM pauses; the state's list names them again.
# usage: precopy.sh BUILD_DIR copy|minor [POLICY] [huge]
BUILD=$1
INSTALL=${2:-copy}
POLICY=${3:-3}
HUGE=${4:-}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=32
HOT=300
hflag=()
if [[ $HUGE == huge ]]; then
  # 2 MiB pages: each hot page dirties a whole one; fewer of them.
  HOT=2000
  need=$((MEM + 8))
  [[ -w /proc/sys/vm/nr_hugepages ]] || mig_skip "cannot reserve huge pages (no /proc/sys/vm/nr_hugepages write access)"
  old=$(cat /proc/sys/vm/nr_hugepages)
  echo $((old + need)) >/proc/sys/vm/nr_hugepages
  trap 'echo "$old" >/proc/sys/vm/nr_hugepages; mig_on_exit' EXIT
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  ((free >= need)) || mig_skip "the kernel gave only $free free 2 MiB pages of the $need needed"
  hflag=(-H)
fi
mig_hosts_up
mig_certs
if [[ $POLICY == off ]]; then
  mig_daemon_start A "[peer]
hotset_window_ms = 300"
else
  mig_daemon_start A
fi
mig_daemon_start B
VM=pre-$INSTALL-${POLICY//[^a-z0-9]/}$HUGE

# Bad policies: refused before anything starts, saying what is accepted.
for bad in sometimes 0 -1 3x 5h 1001; do
  out=$(ctl A migrate nosuchvm --to "$ADDR_B" --token t --precopy "$bad" 2>&1)
  rc=$?
  mig_assert_eq "--precopy $bad refused as a usage error (exit 4, INVALID_ARGUMENT)" \
    "$rc:$(grep -c 'INVALID_ARGUMENT' <<<"$out")" "4:1"
  grep -q "is not off, auto, a number of rounds" <<<"$out" ||
    mig_fail "--precopy $bad: unclear error: $out"
done
echo "refused: $out"

once=()
[[ $POLICY =~ ^[0-9]+(ms|s|m)$ ]] && once=(-O "$WORK/once")
mig_spawn A "$WORK/src.log" "$SHIMVM" source "${hflag[@]}" -s "$WORK/A/vmm.sock" -n "$VM" \
  -m $MEM -W $HOT "${once[@]}"
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest "${hflag[@]}" -s "$WORK/B/vmm.sock" -n "$VM" \
  -m $MEM -I "$INSTALL" -t 2 -k 16
dst=$SPAWN_PID
mig_prepare B "$VM"; token=$TOKEN
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --precopy "$POLICY" --wait --timeout 300 \
  >/dev/null &
mpid=$!
if ((${#once[@]})); then
  wait_for A '.state == "PRECOPY" and .precopy_rounds >= 2' 30
  mig_assert_eq "in pre-copy round 2 before the once pages are written" "$?" 0
  touch "$WORK/once"
  mig_wait_line "$WORK/src.log" 'once pages written' 10 "$src"
  mig_assert_eq "the once pages were written during pre-copy" \
    "$(st A .state)" PRECOPY
fi
wait "$mpid"
mig_assert_eq "pre-copy migration completed" "$?" 0
mig_wait_exit "$dst" 60
mig_assert_eq "destination VMM: every value checked out" "$?" 0
mig_assert_verified "$WORK/dst.log" ${MEM}M
mig_wait_exit "$src" 30
mig_assert_eq "source VMM exited after the VM left" "$?" 0
s=$(ctl A --json status "$VM"); d=$(ctl B --json status "$VM")
jq -c '{precopy, dirty_tracking, precopy_rounds, pages_precopy, pages_invalidated,
  dirty_pages_per_s, pages_demand, pages_background, blackout_ms}' <<<"$s"
jq -c '{pages_precopy, pages_invalidated, pages_installed, pages_total, demand_faults,
  install_eexist}' <<<"$d"
grep -h 'libmigshim: dirty tracking\|writer made' "$WORK/src.log"
grep -h 'pre-copy\|switching over' "$WORK/migrationd-A.log" "$WORK/migrationd-B.log" | cut -c1-220
mig_assert_eq "the shim said how it tracks writes" \
  "$(grep -c 'libmigshim: dirty tracking of .*: userfaultfd async write-protect + PAGEMAP_SCAN' "$WORK/src.log")" 1
mig_assert_eq "status shows the tracking method" "$(jq -r .dirty_tracking <<<"$s")" \
  "userfaultfd async write-protect + PAGEMAP_SCAN"
mig_assert_eq "post-copy sent recently written pages first" \
  "$(jq -r '.pages_hot_first > 0' <<<"$s")" true
if [[ $POLICY == off ]]; then
  mig_assert_eq "no pre-copy: nothing sent before the switch-over" \
    "$(jq -c '[.precopy_rounds, .pages_precopy]' <<<"$s")" "[0,0]"
  mig_assert_eq "the hot set is the writer's pages (at most $HOT, most of them)" \
    "$(jq -r ".pages_hot_first <= $HOT and .pages_hot_first >= $HOT / 2" <<<"$s")" true
  grep -h 'hot set\|first' "$WORK/migrationd-A.log" | cut -c1-200
  mig_cleanup
  mig_finish
fi
if [[ $POLICY =~ ^[0-9]+$ ]]; then
  mig_assert_eq "rounds as asked" "$(jq -r .precopy_rounds <<<"$s")" "$POLICY"
else
  mig_assert_eq "at least one round" "$(jq -r '.precopy_rounds >= 1' <<<"$s")" true
fi
mig_assert_eq "round 1 sent every page" "$(jq -r '.pages_precopy >= .pages_total' <<<"$s")" true
mig_assert_eq "the writer's pages were listed stale at the switch-over" \
  "$(jq -r '.pages_invalidated > 0' <<<"$s")" true
mig_assert_eq "the destination made as many missing again" \
  "$(jq -r .pages_invalidated <<<"$d")" "$(jq -r .pages_invalidated <<<"$s")"
if [[ $POLICY == auto ]]; then
  # The switch follows a scan: the pages it found go ahead of the pause.
  mig_assert_eq "the destination dropped the stale pages known at the pause ahead of the state" \
    "$(grep -cE 'switching over: [1-9][0-9]* stale pages made missing ahead of the VM state' \
    "$WORK/migrationd-B.log")" 1
fi
mig_assert_eq "every page installed once, none twice" \
  "$(jq -c '[.pages_installed == .pages_total, .install_eexist]' <<<"$d")" "[true,0]"
mig_assert_eq "most pages arrived before the switch-over" \
  "$(jq -r '.pages_precopy >= .pages_total' <<<"$d")" true
mig_assert_streams
mig_cleanup
mig_finish
