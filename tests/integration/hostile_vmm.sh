#!/usr/bin/env bash
# Hostile VMMs (tests/hostile_vmm.c): one VMM cannot hurt the daemon or
# another VM. tests/integration/hostile.sh does the same for hostile peers
# and control clients; here the attacker sits on the VMM socket of host B,
# while a real migration runs beside it, and every attack must harm at most
# the attacker's own VM: the daemons stay up, the real migration completes
# with every page verified.
#   fds:      fds that are not what their place says (pipe, socket, file or
#             eventfd as the uffd; a uffd never set up or in the wrong mode;
#             a pipe or semaphore eventfd as the doorbell; RAM or ring not a
#             memfd, of the wrong size, unsealed), each refused with its
#             reason; a uffd the VMM makes blocking after attach (its
#             migration is held, the daemon never blocks); truncating the
#             ring and RAM after attach (impossible: sealed).
#   flood:    a VMM flooding its doorbell, then its ring, at nice 19: the
#             control API answers throughout, the flooder's own migration
#             still completes, and a neighbour's demand-fault p50 stays within
#             FLOOD_MAX_RATIO of its undisturbed p50 (measured in this run):
#             a bound that catches a starved loop (tens of ms), not the
#             figure, which bench/isolation.sh measures in rounds (1.2-1.3x).
#   reattach: after a SIGKILL and restart of daemon B, re-attaches under the
#             attacker's own VM and a victim's (a real minivmm guest whose
#             VMM is stopped meanwhile) without the secret, with a wrong one,
#             from another uid and another pid, and as a source: all refused;
#             the attacker itself is given back its VM; the victim's VMM
#             re-attaches and its guest verifies its memory.
# usage: hostile_vmm.sh BUILD_DIR fds|flood|reattach
BUILD=$1
PHASE=${2:-fds}
source "$(dirname "$0")/../lib.sh"
HVMM=$BUILD/tests/hostile_vmm
SHIMVM=$BUILD/tests/shimvm
# The neighbour's 64 touches share 2 CPUs with a flooder spinning at nice 19:
# one p50 of them has measured 3.6x beside a ring flood on an idle machine
# (the scheduler's, while the daemon used 3% of a CPU).
FLOOD_MAX_RATIO=${FLOOD_MAX_RATIO:-10}
# ASan and UBSan make each of the daemon's callbacks dearer.
FLOOD_MAX_CPU=${FLOOD_MAX_CPU:-$([[ ${MIG_SANITIZE:-0} == 1 ]] && echo 25 || echo 15)}
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces (hosts, slowed link)"
mig_certs
on() { local h=$1; shift; ip netns exec "mig$h-$$" "$@"; }
shape() { tc -n "migA-$$" qdisc add dev "va$$" root tbf rate "$1" burst 64kb latency 500ms ||
  mig_die "cannot shape the link"; }
alive() { kill -0 "$PID_DA" 2>/dev/null && kill -0 "$PID_DB" 2>/dev/null && echo yes; }
# answer ATTACK: what the daemon answered that attack (from $OUT)
answer() { sed -n "s/^attack $1: //p" "$OUT" | head -1; }
expect_refused() { # ATTACK REASON-SUBSTRING[|ANOTHER]
  local a ok=no r rs
  a=$(answer "$1")
  echo "  $1 -> $a"
  IFS='|' read -ra rs <<<"$2"
  for r in "${rs[@]}"; do [[ $a == "refused: "*"$r"* ]] && ok=yes; done
  mig_assert_eq "$1 refused with its reason" "$([[ $ok == yes ]] && echo yes || echo "no: $a")" yes
}
# migrate_vm NAME: prepare on B, migrate from A (both VMMs already attached)
migrate_vm() {
  local token
  token=$(ctl B prepare "$1" -q) || mig_die "prepare $1 failed"
  ctl A migrate "$1" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate $1 failed"
}
src_vm() { # NAME MIB: a shimvm source of NAME on A, ready
  mig_spawn A "$WORK/src-$1.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$1" -m "$2"
  mig_wait_line "$WORK/src-$1.log" 'source ready' 30 "$SPAWN_PID" || mig_die "source $1 not ready"
}
hostile_vm() { # NAME ATTACK SECS: the attacker's VM on B, nice 19; sets HPID, OUT
  OUT=$WORK/hv-$1.log
  mig_spawn B "$OUT" nice -n "${FLOOD_NICE:-0}" "$HVMM" vm -s "$WORK/B/vmm.sock" -n "$1" -m 16 -A "$2" -D "$3"
  HPID=$SPAWN_PID
}
# real_migration NAME MIB: a shimvm migration A -> B; sets REAL_DST, REAL_MIB
real_migration() {
  REAL_MIB=$2
  src_vm "$1" "$2"
  mig_spawn B "$WORK/dst-$1.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$1" -m "$2" -t 2 -k 16
  REAL_DST=$SPAWN_PID
  sleep 0.3
  migrate_vm "$1"
}
real_completed() { # NAME PID
  local s
  for _ in $(seq 900); do
    s=$(ctl B --json status "$1" 2>/dev/null | jq -r .state)
    [[ $s == COMPLETED ]] && break; sleep 0.2
  done
  mig_assert_eq "the real migration $1 completed beside the attacks" "$s" COMPLETED
  mig_wait_exit "$2" 60; mig_assert_eq "its guest memory verified, every page" "$?" 0
  mig_assert_verified "$WORK/dst-$1.log" "${REAL_MIB}M"
  mig_assert_eq "its pages installed once each" \
    "$(ctl B --json status "$1" | jq -c '[.pages_installed == .pages_total, .install_eexist]')" "[true,0]"
}

phase_fds() {
  shape 40mbit
  real_migration real 64
  OUT=$WORK/hv-fds.log
  on B "$HVMM" fds -s "$WORK/B/vmm.sock" >"$OUT" 2>&1 || mig_die "hostile_vmm fds failed"
  expect_refused uffd-pipe "userfaultfd is pipe:"
  expect_refused uffd-socket "userfaultfd is socket:"
  expect_refused uffd-file "userfaultfd is /tmp/"
  expect_refused uffd-eventfd "userfaultfd is anon_inode:[eventfd]"
  expect_refused uffd-uninit "not set up (no UFFDIO_API)"
  expect_refused uffd-mode "lacks UFFD_FEATURE_SIGBUS"
  expect_refused doorbell-pipe "doorbell is pipe:"
  expect_refused doorbell-semaphore "semaphore eventfd"
  expect_refused ram-file "is not on shmem|not sealed against shrinking"
  expect_refused ram-shm "not sealed against shrinking"
  expect_refused ram-size "has 8388608 bytes, not the 16777216 announced"
  expect_refused ram-unsealed "not sealed against shrinking"
  expect_refused ring-unsealed "fault ring /memfd:ring-unsealed (deleted) is not sealed"
  expect_refused ring-file "fault ring /tmp/"
  mig_assert_eq "the same Attach with nothing wrong is accepted" \
    "$(answer 'none (valid attach)')" accepted

  # After attach: the VMM clears O_NONBLOCK on the uffd it shares with the
  # daemon (poll then reports an error for ever; a plain read would block).
  src_vm hv-block 16
  hostile_vm hv-block uffd-blocking 5
  mig_wait_line "$OUT" ready 10 "$HPID" || mig_die "hv-block did not attach: $(cat "$OUT")"
  migrate_vm hv-block
  mig_wait_line "$OUT" 'attack uffd-blocking' 30 "$HPID" || mig_die "no uffd-blocking attack"
  echo "  $(grep 'attack uffd-blocking' "$OUT")"
  # A daemon blocked in a read answers nothing: ask with a time-out.
  local why=""
  for _ in $(seq 20); do
    why=$(timeout 3 "$MIGCTL" -s "$WORK/B/control.sock" --json status hv-block | jq -r '.state + ": " + .reason')
    [[ $why == *"made its userfaultfd blocking"* ]] && break; sleep 0.5
  done
  echo "  hv-block on B: $why"
  mig_assert_eq "uffd made blocking: that migration held with the reason" \
    "$([[ $why == "PAUSED: the VMM made its userfaultfd blocking"* ]] && echo yes)" yes
  mig_assert_eq "control API answers after it" "$(timeout 5 "$MIGCTL" -s "$WORK/B/control.sock" \
    --json list >/dev/null && echo yes)" yes

  # An unsealed ring is refused; were it taken, truncating it after attach
  # would raise SIGBUS in the daemon at the next doorbell.
  src_vm hv-trunc 16
  hostile_vm hv-trunc ring-truncate 3
  for _ in $(seq 100); do grep -q 'ready\|attack ring-truncate' "$OUT" && break; sleep 0.1; done
  if grep -q ready "$OUT"; then
    migrate_vm hv-trunc
    mig_wait_line "$OUT" 'attack ring-truncate' 30 "$HPID"
    sleep 1
  fi
  expect_refused ring-truncate "fault ring /memfd:hostile-ring-unsealed (deleted) is not sealed"
  # The sealed ring and RAM of a VMM that was accepted cannot be shrunk.
  src_vm hv-seal 16
  hostile_vm hv-seal sealed-truncate 2
  mig_wait_line "$OUT" ready 10 "$HPID" || mig_die "hv-seal did not attach: $(cat "$OUT")"
  migrate_vm hv-seal
  mig_wait_line "$OUT" 'attack sealed-truncate' 30 "$HPID" || mig_die "no sealed-truncate attack"
  echo "  $(grep 'attack sealed-truncate' "$OUT")"
  mig_assert_eq "a sealed ring and RAM cannot be truncated" "$(answer sealed-truncate)" \
    "ring ftruncate to 0: Operation not permitted; RAM ftruncate to 0: Operation not permitted; doorbell rung"
  sleep 0.5
  mig_assert_eq "daemons alive after the fd attacks" "$(alive)" yes
  real_completed real "$REAL_DST"
}

# A neighbour's demand faults, as its shimvm measures them: p50 in us.
neighbour() { # NAME
  src_vm "$1" 64
  mig_spawn B "$WORK/dst-$1.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$1" -m 64 -t 2 -k 64
  local pid=$SPAWN_PID
  sleep 0.3
  migrate_vm "$1"
  mig_wait_exit "$pid" 120
  mig_assert_eq "neighbour $1 verified every page" "$?" 0
  mig_assert_verified "$WORK/dst-$1.log" 64M >/dev/null
  grep '^{' "$WORK/dst-$1.log" | tail -1 >"$WORK/$1.json"
  echo "  neighbour $1: $(jq -c '{p50_us, p99_us, page_errors}' "$WORK/$1.json")"
}

flood_run() { # ATTACK NEIGHBOUR
  src_vm "hv-$1" 16
  hostile_vm "hv-$1" "$1" 10
  mig_wait_line "$OUT" ready 10 "$HPID" || mig_die "hv-$1 did not attach: $(cat "$OUT")"
  migrate_vm "hv-$1"
  mig_wait_line "$OUT" started 30 "$HPID" || mig_die "hv-$1 did not start"
  # What the flood costs daemon B while nothing else runs: its CPU share.
  local c0 c1 t0 t1
  c0=$(awk '{print $14 + $15}' "/proc/$PID_DB/stat")
  sleep 2
  c1=$(awk '{print $14 + $15}' "/proc/$PID_DB/stat")
  local cpu=$(((c1 - c0) * 100 / (2 * $(getconf CLK_TCK))))
  echo "  daemon B used ${cpu}% of a CPU for 2 s of $1"
  mig_assert_eq "the $1 gets a share of the daemon, not the daemon (< ${FLOOD_MAX_CPU}% CPU)" \
    "$((cpu < FLOOD_MAX_CPU))" 1
  t0=$(date +%s%N)
  timeout 5 "$MIGCTL" -s "$WORK/B/control.sock" --json list >/dev/null
  mig_assert_eq "control API answers during the $1" "$?" 0
  t1=$(date +%s%N)
  echo "  control API answered in $(((t1 - t0) / 1000000)) ms during the $1"
  neighbour "$2"
  mig_wait_line "$OUT" 'after the flood' 60 "$HPID"
  echo "  $(grep "attack $1" "$OUT")"
  mig_assert_eq "the flooder's own migration still completed (its share)" \
    "$(answer 'after the flood')" "its own migration completed"
}

phase_flood() {
  neighbour calm1
  flood_run doorbell-flood calm2
  flood_run ring-flood calm3
  neighbour calm4
  local base
  base=$(jq -s '(.[0].p50_us + .[1].p50_us) / 2' "$WORK/calm1.json" "$WORK/calm4.json")
  for n in calm2 calm3; do
    r=$(jq -n --argjson b "$base" --argjson f "$(jq .p50_us "$WORK/$n.json")" '$f / $b * 100 | round / 100')
    echo "  $n p50 / undisturbed p50 ($base us) = $r"
    # Under ASan the instrumented flooder itself takes one of the two CPUs
    # from the neighbour: the ratio then measures the scheduler, not the
    # daemon (whose share is judged above). bench/isolation.sh has the figure.
    if [[ ${MIG_SANITIZE:-0} == 1 ]]; then
      echo "  (latency ratio not judged under the sanitizers)"
      continue
    fi
    mig_assert_eq "$n: neighbour p50 within ${FLOOD_MAX_RATIO}x of undisturbed" \
      "$(jq -n --argjson r "$r" --argjson m "$FLOOD_MAX_RATIO" '$r <= $m')" true
  done
  mig_assert_eq "refused ring entries logged sparsely" \
    "$(($(grep -c 'refused entry' "$WORK/migrationd-B.log") < 64))" 1
  mig_assert_eq "daemons alive after the floods" "$(alive)" yes
}

phase_reattach() {
  mig_require_kvm
  shape 24mbit
  local VM=victim
  mig_vmm_start A victim vmm-A --mem 32M --workload writer
  mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$VMM_PID" || mig_die "guest not ready"
  local vsrc=$VMM_PID
  mig_vmm_start B victim vmm-B --mem 32M --incoming --report "$WORK/report.json"
  local vdst=$VMM_PID
  src_vm hv-re 16
  OUT=$WORK/hv-re.log
  mig_spawn B "$OUT" "$HVMM" reattach -s "$WORK/B/vmm.sock" -n hv-re -V victim -u 65534 \
    -G "$WORK/go"
  local hpid=$SPAWN_PID
  mig_wait_line "$OUT" ready 10 "$hpid" || mig_die "hv-re did not attach: $(cat "$OUT")"
  sleep 0.3
  migrate_vm victim
  migrate_vm hv-re
  wait_for B '.state == "POSTCOPY" and .pages_installed > 500' 60 || mig_die "post-copy did not start"
  mig_wait_line "$OUT" started 30 "$hpid" || mig_die "hv-re did not start"
  kill -STOP "$vdst"
  log "victim's VMM stopped; SIGKILL to daemon B (pid $PID_DB)"
  kill -KILL "$PID_DB"
  mig_forget "$PID_DB"
  sleep 0.5
  mig_daemon_start B
  # Another local user can reach the VMM socket (as a shared group would).
  chmod o+x "$WORK" "$WORK/B" && chmod o+rw "$WORK/B/vmm.sock" && touch "$WORK/go"
  mig_wait_line "$OUT" 'attack self' 30 "$hpid" || mig_die "the re-attach attacks did not run"
  expect_refused no-secret "must present its secret"
  expect_refused wrong-secret "wrong secret for VM hv-re"
  expect_refused other-uid "runs as uid 0, this one as uid 65534"
  expect_refused other-pid "VMM is pid $hpid, this one pid"
  expect_refused victim-no-secret "VM victim belongs to migration"
  expect_refused victim-wrong-secret "wrong secret for VM victim"
  expect_refused victim-as-source "waits for its VMM as the destination"
  mig_assert_eq "the attacker's own VMM, with its secret, is given back its VM" \
    "$(answer 'self (right secret, uid and pid)')" accepted
  mig_assert_eq "the victim's migration still waits for its own VMM" \
    "$(st B '.state + " " + (.reason | test("waiting for the VMM") | tostring)')" "PAUSED true"
  kill -CONT "$vdst"
  wait_for B '.reason | test("re-attached with")' 30
  mig_assert_eq "the victim's VMM re-attached itself" "$?" 0
  wait_for B '.state == "COMPLETED"' 240; mig_assert_eq "victim migration completed" "$?" 0
  mig_wait_exit "$vdst" 60; mig_assert_eq "victim VMM: guest verified" "$?" 0
  mig_assert_verified "$WORK/vmm-B.log" 32M
  mig_wait_exit "$vsrc" 30
  mig_assert_eq "guest verdict" "$(jq -r .verdict "$WORK/report.json")" intact
  mig_assert_eq "no page installed twice (EEXIST)" "$(st B .install_eexist)" 0
  mig_assert_eq "daemons alive after the re-attach attacks" "$(alive)" yes
}

mig_daemon_start A
mig_daemon_start B
case $PHASE in
  fds) phase_fds ;;
  flood) phase_flood ;;
  reattach) phase_reattach ;;
  *) mig_die "unknown phase $PHASE" ;;
esac
mig_finish
