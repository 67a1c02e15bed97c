#!/usr/bin/env bash
# bench/isolation.sh BUILD_DIR OUT.json [FLOOR.json]
#
# One VMM cannot take the daemon from the others (doc/design.md, "One VMM
# cannot hurt the daemon or another VMM"): a neighbour's demand faults with
# nothing else on host B, and with a flooding VMM beside it
# (tests/hostile_vmm: an incoming VM whose migration has started, ringing
# its doorbell, or posting its ring slots, as fast as it can). Rounds
# alternate undisturbed / doorbell flood / ring flood (ISOLATION_ROUNDS, 3),
# so drift hits all three alike; the medians of the rounds are compared.
# The neighbour is a shimvm incoming VM, 1 thread touching 256 pages, no
# prefetch (pages far apart), background on; its own stall per touch is the
# figure (p50, p99). Each round also measures daemon B's CPU during 2 s of
# flood with nothing else running.
#
# Placement (BENCH_PIN=1, the default): host A's daemon and VMMs on CPU 1,
# host B's daemon, the neighbour and the flooder on CPU 0, the flooder at
# nice 19 (its own CPU is the host's to limit: this measures the daemon's
# share, not the scheduler's). FLOOR.json is floor_fault's output (the
# "block" strategy is the floor of the neighbour's uffd faults).
# Writes {"conditions", "rounds": [...], "isolation": {...}} to OUT.json.
BUILD=${1:?usage: isolation.sh BUILD_DIR OUT.json [FLOOR.json]}
OUT=${2:?usage: isolation.sh BUILD_DIR OUT.json [FLOOR.json]}
FLOOR_JSON=${3:-}
ROUNDS=${ISOLATION_ROUNDS:-3}
PIN=${BENCH_PIN:-1}
source "$(dirname "$0")/../tests/lib.sh"
HVMM=$BUILD/tests/hostile_vmm
SHIMVM=$BUILD/tests/shimvm
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
[[ -z $FLOOR_JSON ]] || FLOOR_JSON=$(cd "$(dirname "$FLOOR_JSON")" && pwd)/$(basename "$FLOOR_JSON")
[[ -x $HVMM && -x $SHIMVM ]] || mig_die "hostile_vmm / shimvm not built in $BUILD"

on_cpu() {
  if [[ $PIN == 1 ]] && command -v taskset >/dev/null; then
    if [[ $1 == A ]]; then echo "taskset -c 1"; else echo "taskset -c 0"; fi
  fi
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

migrate_vm() {
  local token
  token=$(ctl B prepare "$1" -q) && ctl A migrate "$1" --to "$ADDR_B" --token "$token" >/dev/null
}
src_vm() { # NAME MIB
  # shellcheck disable=SC2046
  mig_spawn A "$WORK/src-$1.log" $(on_cpu A) "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$1" -m "$2"
  mig_wait_line "$WORK/src-$1.log" 'source ready' 30 "$SPAWN_PID" || mig_die "source $1 not ready"
}

# round R FLOOD(none|doorbell-flood|ring-flood): one neighbour migration,
# beside a flooder unless none; appends a JSON line to $WORK/rounds.
round() {
  local r=$1 flood=$2 n=nb-$1-$2 hv=hv-$1-$2 hpid=0 cpu=null pid c0 c1
  if [[ $flood != none ]]; then
    src_vm "$hv" 16
    # shellcheck disable=SC2046
    mig_spawn B "$WORK/$hv.log" $(on_cpu B) nice -n 19 "$HVMM" vm -s "$WORK/B/vmm.sock" -n "$hv" \
      -m 16 -A "$flood" -D 12
    hpid=$SPAWN_PID
    mig_wait_line "$WORK/$hv.log" ready 10 "$hpid" || mig_die "$hv did not attach"
    migrate_vm "$hv" || mig_die "migrate $hv"
    mig_wait_line "$WORK/$hv.log" started 30 "$hpid" || mig_die "$hv did not start"
    c0=$(cpu_ticks "$PID_DB")
    sleep 2
    c1=$(cpu_ticks "$PID_DB")
    cpu=$(((c1 - c0) * 100 / (2 * $(getconf CLK_TCK))))
  fi
  src_vm "$n" 256
  # shellcheck disable=SC2046
  mig_spawn B "$WORK/$n.log" $(on_cpu B) "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$n" -m 256 \
    -t 1 -k 256
  pid=$SPAWN_PID
  sleep 0.3
  migrate_vm "$n" || mig_die "migrate $n"
  mig_wait_exit "$pid" 120 || mig_die "neighbour $n failed (its memory did not verify)"
  if ((hpid)); then
    grep -q "attack $flood" "$WORK/$hv.log" || mig_wait_line "$WORK/$hv.log" "attack $flood" 30 "$hpid"
    mig_wait_exit "$hpid" 60
  fi
  grep -h '^{' "$WORK/$n.log" | tail -1 | jq -c --argjson r "$r" --arg f "$flood" \
    --argjson cpu "$cpu" '{round: $r, flood: $f, p50_us, p99_us, daemon_b_cpu_pct: $cpu}' \
    >>"$WORK/rounds" || mig_die "no result from $n"
  log "isolation round $r, $flood: $(tail -1 "$WORK/rounds")"
}

mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
if [[ -n $(on_cpu A) ]]; then
  taskset -a -p -c 1 "$PID_DA" >/dev/null && taskset -a -p -c 0 "$PID_DB" >/dev/null ||
    mig_die "cannot pin the daemons"
  placement="host A on CPU 1; host B (daemon, neighbour, flooder at nice 19) on CPU 0"
else
  placement="unpinned (flooder at nice 19)"
fi
: >"$WORK/rounds"
for r in $(seq "$ROUNDS"); do
  for f in none doorbell-flood ring-flood; do round "$r" "$f"; done
done
floor=null
[[ -s $FLOOR_JSON ]] && floor=$(jq '[.results[] | select(.strategy == "block")][0].p50_us // null' "$FLOOR_JSON")
jq -s --arg placement "$placement" --argjson floor "$floor" --argjson rounds "$ROUNDS" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def med(f; k): [.[] | select(.flood == f) | .[k]] | median;
  (med("none"; "p50_us")) as $u | (med("doorbell-flood"; "p50_us")) as $d |
  (med("ring-flood"; "p50_us")) as $g |
  {conditions: {placement: $placement, rounds: $rounds, neighbour: "shimvm dest, 256 MiB, 1 thread x 256 touches, uffd, background on",
                flooder: "hostile_vmm vm, ring mode, nice 19, started, not running (no background of its own)"},
   rounds: .,
   isolation: {undisturbed_p50_us: $u, flooded_p50_us: $d, ring_flooded_p50_us: $g,
               ratio: (if $u then $d / $u else null end),
               ring_ratio: (if $u then $g / $u else null end),
               undisturbed_p99_us: med("none"; "p99_us"), flooded_p99_us: med("doorbell-flood"; "p99_us"),
               ring_flooded_p99_us: med("ring-flood"; "p99_us"),
               floor_p50_us: $floor,
               undisturbed_ratio_floor: (if $floor then $u / $floor else null end),
               flooded_ratio_floor: (if $floor then $d / $floor else null end),
               daemon_b_cpu_pct_doorbell_flood: med("doorbell-flood"; "daemon_b_cpu_pct"),
               daemon_b_cpu_pct_ring_flood: med("ring-flood"; "daemon_b_cpu_pct")}}
  ' "$WORK/rounds" >"$OUT" || mig_die "cannot write $OUT"
jq -r '.isolation | "isolation: neighbour p50 \(.undisturbed_p50_us) us undisturbed, \(.flooded_p50_us) us beside a doorbell flood (\(.ratio * 100 | round / 100)x), \(.ring_flooded_p50_us) us beside a ring flood (\(.ring_ratio * 100 | round / 100)x); floor p50 \(.floor_p50_us) us; daemon B CPU during a flood \(.daemon_b_cpu_pct_doorbell_flood)% / \(.daemon_b_cpu_pct_ring_flood)%"' "$OUT"
mig_finish
