#!/usr/bin/env bash
# bench/hybrid.sh BUILD_DIR OUT.json: pre-copy, hot pages first and
# bandwidth caps, side by side in one run.
#
# hybrid: the "hotset" workload is shimvm (HYBRID_MIB, 256 MiB). Its hot set
# is 10% of the pages (every 7th page, from the start of RAM); the rest is
# never written. Until it is paused the source writes HYBRID_RATE (20000)
# hot pages a second, drawn with a 1/rank skew (shimvm -z: the top 1% of
# the hot pages take about half the writes); on the destination 4 threads
# then read 4 x (hot set size) pages drawn from the same skew, at
# the same rate (one that stalled catches up), timing every stall.
# HYBRID_RUNS (3) rounds of the three modes side by side; each figure of a
# mode's entry is its median over the rounds (every round's in detail).
# The "writer" workload is the minivmm writer guest under KVM (64 MiB).
# Each in three modes: postcopy (pure post-copy, address order), hotfirst
# (no pre-copy; [peer] hotset_window_ms = HYBRID_WINDOW_MS (500) learns the hot set, which
# leads the post-copy stream) and precopy-auto. Reports demand faults
# (destination record), stall_ms (sum of the destination threads' stalls;
# shimvm only), total_s and blackout_ms (source record), wire_bytes (bytes
# the source sent on both channels) and precopy_rounds.
#
# bandwidth: a 1 GiB shimvm post-copy migration per cap (200 Mbit/s and
# 1 Gbit/s) and once uncapped; the measured rate is the median of the
# source's background_bits_per_s sampled every second while it streams
# (at least 5 samples); fault p50 is the destination daemon's demand-fault
# median, capped and uncapped. Every migration is verified byte for byte.
BUILD=${1:?usage: hybrid.sh BUILD_DIR OUT.json}
OUT=${2:?usage: hybrid.sh BUILD_DIR OUT.json}
source "$(dirname "$0")/../tests/lib.sh"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
SHIMVM=$BUILD/tests/shimvm
HMIB=${HYBRID_MIB:-256}
HRATE=${HYBRID_RATE:-20000}
PARTS=${HYBRID_PARTS:-hybrid writer bandwidth}
HYBRID_RUNS=${HYBRID_RUNS:-3}
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
BWMIB=${HYBRID_BW_MIB:-1024}

mig_hosts_up
mig_certs
mig_daemon_start B
: >"$WORK/hybrid"
: >"$WORK/bandwidth"

# daemon_a MODE: host A's daemon for that mode (hotfirst: the hot-set window)
daemon_a() {
  if [[ -n ${PID_DA:-} ]]; then
    kill -TERM "$PID_DA"; mig_forget "$PID_DA"
  fi
  if [[ $1 == hotfirst ]]; then
    mig_daemon_start A "[peer]
hotset_window_ms = ${HYBRID_WINDOW_MS:-500}"
  else
    mig_daemon_start A
  fi
}
policy() { [[ $1 == precopy-auto ]] && echo auto || echo off; }

# shim_run VM MIB SRC_ARGS DST_ARGS MIGRATE_ARGS...: one verified shimvm
# migration; leaves $WORK/s.json, $WORK/d.json and the destination's report.
shim_run() {
  local vm=$1 mib=$2 sargs=$3 dargs=$4 src dst; shift 4
  # shellcheck disable=SC2086
  mig_spawn A "$WORK/src-$vm.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$vm" -m "$mib" $sargs
  src=$SPAWN_PID
  mig_wait_line "$WORK/src-$vm.log" 'source ready' 120 "$src" || mig_die "$vm: source not ready"
  # shellcheck disable=SC2086
  mig_spawn B "$WORK/dst-$vm.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$vm" -m "$mib" $dargs
  dst=$SPAWN_PID
  mig_prepare B "$vm"
  ctl A migrate "$vm" --to "$ADDR_B" --token "$TOKEN" "$@" >/dev/null ||
    mig_die "$vm: migrate refused"
  SAMPLES=()
  for _ in $(seq 600); do
    local s
    s=$(st_vm A "$vm" '.state + " " + (.background_bits_per_s | tostring)')
    [[ $s == POSTCOPY* ]] && SAMPLES+=("${s#* }")
    [[ $s == COMPLETED* || $s == FAILED* || -z $s ]] && break
    sleep 1
  done
  mig_wait_exit "$dst" 120 || mig_die "$vm: the destination VMM failed"
  mig_wait_exit "$src" 30 || mig_die "$vm: the source VMM failed"
  grep -q "^shimvm: verified [0-9]* pages, $((mib << 20)) bytes" "$WORK/dst-$vm.log" ||
    mig_die "$vm: not every byte verified"
  ctl A --json status "$vm" >"$WORK/s.json"
  ctl B --json status "$vm" >"$WORK/d.json"
  grep '^{' "$WORK/dst-$vm.log" | tail -n 1 >"$WORK/r.json"
}
st_vm() { ctl "$1" --json status "$2" 2>/dev/null | jq -r "$3"; }

entry() { # WORKLOAD MODE STALL_MS [FILE]
  jq -c -n --slurpfile s "$WORK/s.json" --slurpfile d "$WORK/d.json" --arg w "$1" --arg m "$2" \
    --argjson stall "$3" '($s[0]) as $s | ($d[0]) as $d | {workload: $w, mode: $m,
    demand_faults: $d.demand_faults, stall_ms: $stall, total_s: $s.total_s,
    wire_bytes: $s.bytes_sent, blackout_ms: $s.blackout_ms, precopy_rounds: $s.precopy_rounds,
    detail: {pages_precopy: $s.pages_precopy, pages_invalidated: $s.pages_invalidated,
      pages_hot_first: $s.pages_hot_first, pages_demand: $d.pages_demand,
      fault_p50_us: $d.fault_p50_us}}' >>"${4:-$WORK/hybrid}"
  log "hybrid: $(tail -n 1 "${4:-$WORK/hybrid}")"
}

hot=$(( (HMIB << 8) / 10 ))
MODES=${HYBRID_MODES:-postcopy hotfirst precopy-auto}
# hotset: HYBRID_RUNS (3) rounds of every mode, the modes side by side in
# each round; each figure of a mode's entry is its median over the rounds.
for r in $(has_part hybrid && seq "$HYBRID_RUNS"); do
  for mode in $MODES; do
    daemon_a "$mode"
    shim_run "hot-$mode-$r" "$HMIB" "-W $hot -z $HRATE" "-W $hot -z $HRATE -t 4 -k $hot" \
      --precopy "$(policy "$mode")"
    entry hotset "$mode" "$(jq .stall_ms "$WORK/r.json")" "$WORK/hotset-$mode"
  done
done
for mode in $(has_part hybrid && echo "$MODES"); do
  jq -s -c 'def med(f): map(f) | sort | .[(length - 1) / 2 | floor];
    . as $a | $a[0] + {demand_faults: med(.demand_faults), stall_ms: med(.stall_ms),
      total_s: med(.total_s), wire_bytes: med(.wire_bytes), blackout_ms: med(.blackout_ms),
      precopy_rounds: med(.precopy_rounds),
      detail: {runs: ($a | length), runs_demand_faults: [$a[].demand_faults],
        runs_blackout_ms: [$a[].blackout_ms], each: [$a[].detail]}}' \
    "$WORK/hotset-$mode" >>"$WORK/hybrid"
done
for mode in $MODES; do
  if has_part writer && [[ -e /dev/kvm ]]; then
    daemon_a "$mode"
    MIG_PRECOPY=$(policy "$mode") mig_migrate "wr-$mode" 64M writer
    [[ $MIG_RC == 0 && $DST_RC == 0 ]] || mig_die "writer $mode: migration failed"
    cp "$WORK/src.json" "$WORK/s.json"; cp "$WORK/dst.json" "$WORK/d.json"
    entry writer "$mode" null
  fi
done

daemon_a postcopy
for cap in $(has_part bandwidth && echo 0 200 1000); do
  args=()
  ((cap)) && args=(--max-bandwidth "${cap}M")
  shim_run "bw-$cap" "$BWMIB" "" "-t 2 -k 64" "${args[@]}"
  med=$(printf '%s\n' "${SAMPLES[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}')
  log "bandwidth cap ${cap}M: ${#SAMPLES[@]} samples, median $med bit/s"
  jq -c -n --argjson cap "$cap" --argjson med "${med:-0}" --argjson n "${#SAMPLES[@]}" \
    --slurpfile d "$WORK/d.json" '{cap_mbit: $cap, measured_mbit: ($med / 1e6), samples: $n,
    fault_p50_us: $d[0].fault_p50_us}' >>"$WORK/bandwidth"
done
jq -s --slurpfile bw <(jq -s . "$WORK/bandwidth") \
  --arg hosts "$( ((MIG_USE_NETNS)) && echo "network namespaces + veth" || echo "loopback ports")" \
  --argjson cores "$(nproc)" --argjson hmib "$HMIB" --argjson hrate "$HRATE" --argjson bwmib "$BWMIB" \
  --argjson runs "$HYBRID_RUNS" --argjson load "$LOAD0" '
  ($bw[0] | map(select(.cap_mbit == 0))[0].fault_p50_us) as $u |
  {conditions: {cores: $cores, hosts: $hosts, placement: "unpinned",
     hotset: "shimvm \($hmib) MiB, hot set 10% of pages, \($hrate) skewed (1/rank) page writes/s until the pause, 4 destination threads read 4 x hot-set-size pages of the same skew",
     writer: "minivmm writer guest, 64 MiB, KVM", bandwidth: "shimvm \($bwmib) MiB post-copy",
     hotset_runs: $runs, load_avg_1m_at_start: $load},
   hybrid: ., bandwidth: [$bw[0][] | select(.cap_mbit > 0) | . + {fault_p50_uncapped_us: $u}]}' \
  "$WORK/hybrid" >"$OUT" || mig_die "cannot write $OUT"
exit 0
