#!/usr/bin/env bash
# bench/faultlat.sh BUILD_DIR OUT.json [FLOOR.json]
#
# Drives bench/faultlat.c: two real migrationd daemons (tests/lib.sh hosts A
# and B, TLS 1.3 with mutual auth), a `faultlat source` VMM on A and a
# `faultlat dest` VMM on B, one migration per configuration:
#   - throughput: no touches, time from running to completed (background
#     alone), once first and once last;
#   - background off, then on, for each thread count in FAULTLAT_THREADS.
# Writes one JSON object to OUT.json: {"conditions":{...},"faultlat":[...],
# "throughput":{...}}. Each faultlat entry carries the destination daemon's
# own view of the same faults ("daemon": its fault histogram, from mig-ctl).
#
# Placement (BENCH_PIN=1, the default): host A's daemon and VMM on CPU 1,
# host B's daemon and VMM on CPU 0. Two hosts never share a core, and the
# floor (floor_fault --pin 0,0,1) is measured with the same placement.
#
# Env: FAULTLAT_MEM (1G), FAULTLAT_THREADS ("1 2 4 8 16"),
#      FAULTLAT_TOUCHES (2048), FAULTLAT_PATHS ("uffd ring"), BENCH_PIN (1),
#      FAULTLAT_MINOR_PATHS ("uffd ring"; empty: no minor-mode lines),
#      FAULTLAT_MINOR_THREADS ("1 8").
# FLOOR.json is floor_fault's output: each path's ratios use the floor of the
# same delivery (uffd: "block", ring: "ring"); without it ratios are null.
BUILD=${1:?usage: faultlat.sh BUILD_DIR OUT.json [FLOOR.json]}
OUT=${2:?usage: faultlat.sh BUILD_DIR OUT.json [FLOOR.json]}
FLOOR_JSON=${3:-}
MEM=${FAULTLAT_MEM:-1G}
THREADS=${FAULTLAT_THREADS:-"1 2 4 8 16"}
PATHS=${FAULTLAT_PATHS:-"uffd ring"}
MINOR_PATHS=${FAULTLAT_MINOR_PATHS-"uffd ring"}
MINOR_THREADS=${FAULTLAT_MINOR_THREADS:-"1 8"}
TOUCHES=${FAULTLAT_TOUCHES:-2048}
PIN=${BENCH_PIN:-1}
source "$(dirname "$0")/../tests/lib.sh"
FAULTLAT=$BUILD/bench/faultlat
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
[[ -z $FLOOR_JSON ]] || FLOOR_JSON=$(cd "$(dirname "$FLOOR_JSON")" && pwd)/$(basename "$FLOOR_JSON")

[[ -x $FAULTLAT ]] || mig_die "faultlat not built at $FAULTLAT"
[[ -x $MIGRATIOND && -x $MIGCTL ]] || mig_die "migrationd / mig-ctl not built in $BUILD"

# on_cpu HOST: the taskset prefix for a process of host A (CPU 1) or B (CPU 0).
on_cpu() {
  if [[ $PIN == 1 ]] && command -v taskset >/dev/null; then
    if [[ $1 == A ]]; then echo "taskset -c 1"; else echo "taskset -c 0"; fi
  fi
}

# fl_fail MSG: one configuration failed; the others still run.
fl_fail() {
  echo "FAIL: $*" >&2
  FL_FAILED=$((FL_FAILED + 1))
}

# floor_of PATH: "P50,P99" of the floor with the same fault delivery.
floor_of() {
  local strat=block
  [[ $1 == ring ]] && strat=ring
  [[ -s $FLOOR_JSON ]] && jq -r --arg s "$strat" \
    '.results[] | select(.strategy == $s) | "\(.p50_us),\(.p99_us)"' "$FLOOR_JSON" 2>/dev/null |
    grep . || echo "0,0"
}

# fl_run PATH THREADS BG(on|off) [INSTALL(copy|minor)]: one migration;
# appends its JSON to $WORK/results.
fl_run() {
  local path=$1 threads=$2 bg=$3 install=${4:-copy} vm src dst token rc
  vm=fl-$path-$install-$threads-$bg
  [[ -n ${FL_TAG:-} ]] && vm=$vm-$FL_TAG-$FL_BPF-r${FL_ROUND:-1}
  [[ $threads == 0 ]] && vm=fl-$path-$install-throughput-$((++FL_TP))
  # shellcheck disable=SC2046
  mig_spawn A "$WORK/$vm-src.log" $(on_cpu A) "$FAULTLAT" source --name "$vm" --mem "$MEM" \
    --vmm-socket "$WORK/A/vmm.sock" --timeout 150
  src=$SPAWN_PID
  mig_wait_line "$WORK/$vm-src.log" 'ready' 60 "$src" ||
    { fl_fail "$vm: source VMM did not attach"; cat "$WORK/$vm-src.log" >&2; kill "$src" 2>/dev/null; return 1; }
  # shellcheck disable=SC2046
  mig_spawn B "$WORK/$vm-dst.log" $(on_cpu B) "$FAULTLAT" dest --name "$vm" --mem "$MEM" \
    --vmm-socket "$WORK/B/vmm.sock" --threads "$threads" --background "$bg" \
    --touches "$TOUCHES" --path "$path" --install "$install" --daemon-pids "$PID_DA,$PID_DB" --bpf "$FL_BPF" \
    --floor "$(floor_of "$path")" --json "$WORK/$vm.json" --timeout 150
  dst=$SPAWN_PID
  if ! mig_wait_line "$WORK/$vm-dst.log" 'attached' 60 "$dst" ||
     ! token=$(ctl B prepare "$vm" -q); then
    fl_fail "$vm: destination VMM did not attach or prepare failed"
    cat "$WORK/$vm-dst.log" >&2
    kill "$src" "$dst" 2>/dev/null
    return 1
  fi
  ctl A migrate "$vm" --to "$ADDR_B" --token "$token" --wait --timeout 150 >"$WORK/$vm-ctl.log" 2>&1
  rc=$?
  if ! mig_wait_exit "$dst" 60 || ! mig_wait_exit "$src" 30 || ((rc != 0)); then
    fl_fail "$vm: migration or VMM failed (mig-ctl exit $rc)"
    tail -n 5 "$WORK/$vm-ctl.log" "$WORK/$vm-dst.log" "$WORK/$vm-src.log" >&2
    kill "$src" "$dst" 2>/dev/null
    return 1
  fi
  grep -h '^faultlat' "$WORK/$vm-dst.log" | grep -v attached >&2
  grep -h 'WARNING' "$WORK/$vm-dst.log" >&2
  if ! ctl B --json status "$vm" >"$WORK/$vm-status.json" ||
     ! jq -c --arg tag "${FL_TAG:-}" --argjson round "${FL_ROUND:-1}" --slurpfile st "$WORK/$vm-status.json" '. +
        (if $tag != "" then {tag: $tag, round: $round} else {} end) + {daemon: ($st[0] | {
        demand_faults, pages_demand, pages_background, pages_zero, pages_duplicate,
        fault_p50_us, fault_p99_us, fault_max_us, blackout_ms, total_s})}' \
        "$WORK/$vm.json" >>"$WORK/results"; then
    fl_fail "$vm: no result JSON"
    return 1
  fi
}

mig_hosts_up
mig_certs
mig_daemon_start A
mig_daemon_start B
if [[ -n $(on_cpu A) ]]; then
  taskset -a -p -c 1 "$PID_DA" >/dev/null && taskset -a -p -c 0 "$PID_DB" >/dev/null ||
    mig_die "cannot pin the daemons"
  placement="host A (source daemon + VMM) on CPU 1, host B (destination daemon + VMM) on CPU 0"
else
  placement="unpinned"
fi
if ((MIG_USE_NETNS)); then hosts="two network namespaces joined by a veth pair"; else hosts="two loopback ports"; fi
FL_BPF=no FL_BPF_LOADED=0
grep -q 'fault latency: eBPF' "$WORK/migrationd-B.log" && FL_BPF=yes FL_BPF_LOADED=1
BPF_THREADS=${FAULTLAT_BPF_THREADS:-1 8}
log "faultlat: $MEM guests, touches=$TOUCHES, threads: $THREADS; $placement"
: >"$WORK/results"
FL_FAILED=0 FL_TP=0

# The throughput runs go first and last, copy and minor side by side, each
# once in front, after a warm-up run whose figure is dropped: the stream's
# speed here swings 2-4x from one run to the next (0.3-0.6 against 1.0-1.2
# GB/s, either install mode) as the host backs and takes back guest memory
# (free page reporting), so only runs side by side compare.
fl_run uffd 0 on && sed -i '$d' "$WORK/results"
fl_run uffd 0 on
[[ -n $MINOR_PATHS ]] && fl_run uffd 0 on minor
for path in $PATHS; do
  for bg in off on; do
    for t in $THREADS; do
      fl_run "$path" "$t" "$bg"
    done
  done
done
# Minor-mode installs (page cache + UFFDIO_CONTINUE) on the same lines.
for path in $MINOR_PATHS; do
  for bg in off on; do
    for t in $MINOR_THREADS; do
      fl_run "$path" "$t" "$bg" minor
    done
  done
done
[[ -n $MINOR_PATHS ]] && fl_run uffd 0 on minor
fl_run uffd 0 on

# eBPF overhead: the same lines with the destination daemon's BPF programs
# off (daemon B restarted with [bpf] enabled = no), then on again (restarted
# once more), side by side at the end of the run, tagged "bpf-pair": the
# machine drifts too much for a comparison with the lines further up. Off and
# on alternate FAULTLAT_BPF_ROUNDS times (5): one pair swings by +-5%, more
# than the effect; the summary compares medians.
fl_restart_b() { # extra config
  kill -TERM "$PID_DB"; mig_forget "$PID_DB"
  mig_daemon_start B "$1"
  [[ -n $(on_cpu B) ]] && taskset -a -p -c 0 "$PID_DB" >/dev/null
}
if ((FL_BPF_LOADED)); then
  FL_TAG=bpf-pair
  for ((FL_ROUND = 1; FL_ROUND <= ${FAULTLAT_BPF_ROUNDS:-5}; FL_ROUND++)); do
    fl_restart_b "[bpf]
enabled = no"
    FL_BPF=no
    for t in $BPF_THREADS; do
      fl_run uffd "$t" off
    done
    fl_restart_b ""
    FL_BPF=yes
    grep -q 'fault latency: eBPF' "$WORK/migrationd-B.log" || fl_fail "daemon B did not load eBPF again"
    for t in $BPF_THREADS; do
      fl_run uffd "$t" off
    done
  done
  FL_TAG= FL_ROUND=
fi
grep '"mode":"throughput","install":"copy"' "$WORK/results" >"$WORK/throughput"
grep '"mode":"throughput","install":"minor"' "$WORK/results" >"$WORK/throughput-minor"
grep -v '"mode":"throughput"' "$WORK/results" >"$WORK/faults"

jq -n --slurpfile r "$WORK/faults" --slurpfile tp "$WORK/throughput" \
  --slurpfile tpm "$WORK/throughput-minor" \
  --arg mem "$MEM" --arg placement "$placement" --arg hosts "$hosts" \
  --argjson touches "$TOUCHES" --argjson cores "$(nproc)" '{
    conditions: {cores: $cores, guest_ram: $mem, touches_per_run: $touches,
      placement: $placement, hosts: $hosts, tls: "TLS 1.3, mutual X.509 (migrationd defaults)",
      fault_paths: {uffd: "blocking userfaultfd (missing mode, shmem); floor = floor_fault block",
        ring: "UFFD_FEATURE_SIGBUS + libmigshim fault ring (20 us spin, then futex); floor = floor_fault ring"}},
    faultlat: $r,
    throughput: {streams: 1, method: "guest RAM bytes (every page non-zero, no faults) / (VMM reports running -> COMPLETED), mean of two runs",
      gbytes_per_s: (if ($tp | length) > 0 then [$tp[].gbytes_per_s] | add / length else null end),
      runs: $tp,
      minor: (if ($tpm | length) > 0 then {gbytes_per_s: ([$tpm[].gbytes_per_s] | add / length),
        method: "the same with minor-mode installs (pwrite into the page cache + UFFDIO_CONTINUE)",
        runs: $tpm} else null end)}}' >"$OUT" || mig_die "cannot write $OUT"
log "faultlat: results in $OUT"
((FL_FAILED == 0)) || { echo "faultlat: $FL_FAILED configuration(s) failed" >&2; exit 1; }
exit 0
