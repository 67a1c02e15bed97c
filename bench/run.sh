#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: every benchmark of migrationd in one run, each
# figure next to the physical floor measured in the same run (bench/README.md).
#   1. floor_fault  one demand fault with nothing else in it (block and spin)
#   2. tls_stream   bare TLS 1.3 stream throughput + `openssl speed`
#   3. faultlat     migrationd's demand-fault latency (faultlat.sh drives it)
#   4. isolation    a neighbour's faults beside a flooding VMM (isolation.sh)
#   5. e2e          whole minivmm migrations (e2e.sh)
#   6. hybrid       pre-copy, hot pages first, bandwidth caps (hybrid.sh)
#   7. compress     background compression, unshaped and 1 Gbit/s (compress.sh)
#   8. rxcopy       destination CPU/GB, pages read into place vs buffered, 4 KiB
#                   and 2 MiB pages (rxcopy.sh)
# Writes bench/results/latest.json (the summary), one JSON file per
# benchmark beside it with every detail, and bench/results/faultlat.png.
# A failed benchmark leaves its part empty, the others still run, and the
# exit status is 1. Env: BENCH_PIN=0 to run unpinned (see README.md), and the
# knobs of faultlat.sh / e2e.sh.
set -uo pipefail

BUILD=$(cd "${1:-build}" && pwd) || { echo "usage: bench/run.sh BUILD_DIR" >&2; exit 2; }
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$BENCH/.." && pwd)
RES=$BENCH/results
PIN=${BENCH_PIN:-1}
export BENCH_PIN=$PIN
FAILED=()
T0=$(date +%s)

mkdir -p "$RES" || exit 1
TMP=$(mktemp -d /tmp/mig-bench.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

say() { printf '\n=== %s\n' "$*"; }
fail() { echo "bench: $1 failed${2:+: $2}" >&2; FAILED+=("$1"); }

command -v jq >/dev/null || { echo "bench: jq is required (apt-get install jq)" >&2; exit 1; }
if [[ ! -x $BUILD/bench/faultlat || ! -x $BUILD/bench/floor_fault || ! -x $BUILD/bench/tls_stream ||
      ! -x $BUILD/tests/hostile_vmm ]]; then
  cmake --build "$BUILD" --target floor_fault tls_stream faultlat hostile_vmm shimvm -j"$(nproc)" >/dev/null ||
    { echo "bench: cannot build the benchmark programs in $BUILD" >&2; exit 1; }
fi
if [[ $PIN == 1 && $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
  FF_PIN=(--pin 0,0,1) TS_PIN=(--pin 1,0)
  PLACEMENT="pinned: host A (source side) on CPU 1, host B (destination side) on CPU 0"
else
  FF_PIN=() TS_PIN=()
  PLACEMENT="unpinned"
  export BENCH_PIN=0
fi

# --- host -------------------------------------------------------------------
jq -n --argjson cores "$(nproc)" --arg kernel "$(uname -r)" \
  --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
  --argjson mem_gib "$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)" \
  --arg virt "$(grep -q '^flags.* hypervisor' /proc/cpuinfo && echo "virtual machine" || echo "bare metal")" \
  --arg openssl "$(openssl version 2>/dev/null)" \
  --arg commit "$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$SRC" diff --quiet HEAD 2>/dev/null || echo "+dirty")" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg placement "$PLACEMENT" \
  '{cores: $cores, kernel: $kernel, cpu_model: $cpu, mem_gib: $mem_gib, machine: $virt,
    openssl: $openssl, commit: $commit, date: $date, placement: $placement}' >"$TMP/host.json"

# --- 1. floor of one fault ----------------------------------------------------
say "1/8 floor_fault: the physical floor of one demand fault"
rm -f "$RES/floor_fault.json"
"$BUILD/bench/floor_fault" --pages 2000 --rounds 5 "${FF_PIN[@]}" --json "$RES/floor_fault.json" ||
  fail floor_fault

# --- 2. throughput floor -------------------------------------------------------
say "2/8 tls_stream: the throughput floor"
rm -f "$RES/tls_stream.json"
"$BUILD/bench/tls_stream" --seconds 1.5 "${TS_PIN[@]}" --json "$RES/tls_stream.json" || fail tls_stream

# --- 3. daemon fault latency ------------------------------------------------------
say "3/8 faultlat: migrationd's demand-fault latency (one migration per line)"
rm -f "$RES/faultlat.json"
"$BENCH/faultlat.sh" "$BUILD" "$RES/faultlat.json" "$RES/floor_fault.json" || fail faultlat

# --- 4. isolation -------------------------------------------------------------
say "4/8 isolation: a neighbour's demand faults beside a VMM flooding its doorbell or ring"
rm -f "$RES/isolation.json"
"$BENCH/isolation.sh" "$BUILD" "$RES/isolation.json" "$RES/floor_fault.json" || fail isolation

# --- 5. end to end ----------------------------------------------------------------
say "5/8 e2e: whole migrations of minivmm writer guests"
rm -f "$RES/e2e.json"
"$BENCH/e2e.sh" "$BUILD" "$RES/e2e.json"
rc=$?
if ((rc == 77)); then
  echo "bench: e2e skipped (no usable /dev/kvm)" >&2
elif ((rc != 0)); then
  fail e2e
fi

# --- 6. pre-copy, hot pages first, bandwidth caps --------------------------------
say "6/8 hybrid: post-copy, hot pages first and pre-copy side by side; bandwidth caps"
rm -f "$RES/hybrid.json"
"$BENCH/hybrid.sh" "$BUILD" "$RES/hybrid.json" || fail hybrid

# --- 7. compression of background pages ----------------------------------------------
say "7/8 compress: compression off, zstd and adaptive, unshaped and on a 1 Gbit/s link"
rm -f "$RES/compress.json"
"$BENCH/compress.sh" "$BUILD" "$RES/compress.json" || fail compress

# --- 8. background pages read straight into place -------------------------------------
say "8/8 rxcopy: destination CPU per GB, read into place vs through libevent's buffer"
rm -f "$RES/rxcopy.json" "$RES/rxcopy_huge.json" "$RES/rxcopy_streams.json"
"$BENCH/rxcopy.sh" "$BUILD" "$RES/rxcopy.json" || fail rxcopy
RXCOPY_HUGE=1 RXCOPY_MIB=256 "$BENCH/rxcopy.sh" "$BUILD" "$RES/rxcopy_huge.json" || fail rxcopy
# two streams, each reading into a staging buffer of its own
RXCOPY_STREAMS=2 RXCOPY_INSTALLS=copy "$BENCH/rxcopy.sh" "$BUILD" "$RES/rxcopy_streams.json" ||
  fail rxcopy

# --- summary ------------------------------------------------------------------------
orempty() { [[ -s $1 ]] && cat "$1" || echo "${2:-null}"; }
orempty "$RES/floor_fault.json" >"$TMP/ff.json"
orempty "$RES/tls_stream.json" >"$TMP/ts.json"
orempty "$RES/faultlat.json" >"$TMP/fl.json"
orempty "$RES/e2e.json" >"$TMP/e2e.json"
orempty "$RES/isolation.json" >"$TMP/iso.json"
orempty "$RES/hybrid.json" >"$TMP/hy.json"
orempty "$RES/compress.json" >"$TMP/cz.json"
orempty "$RES/rxcopy.json" >"$TMP/rx.json"
orempty "$RES/rxcopy_huge.json" >"$TMP/rxh.json"
orempty "$RES/rxcopy_streams.json" >"$TMP/rxs.json"
jq -n --slurpfile host "$TMP/host.json" --slurpfile ff "$TMP/ff.json" --slurpfile ts "$TMP/ts.json" \
  --slurpfile fl "$TMP/fl.json" --slurpfile e2e "$TMP/e2e.json" --slurpfile iso "$TMP/iso.json" \
  --slurpfile hy "$TMP/hy.json" --slurpfile cz "$TMP/cz.json" --slurpfile rx "$TMP/rx.json" \
  --slurpfile rxh "$TMP/rxh.json" --slurpfile rxs "$TMP/rxs.json" '
  ($ff[0] // {}) as $ff | ($ts[0] // {}) as $ts | ($fl[0] // {}) as $fl | ($e2e[0] // {}) as $e |
  (($ff.results // []) | map(select(.strategy == "block")) | .[0]) as $blk |
  (($ts.results // []) | map(select(.record_bytes == 16384 and .streams == 1 and
      .cipher == "TLS_AES_128_GCM_SHA256")) | .[0].gbytes_per_s) as $tsfloor |
  (($ts.results // []) | map(select(.install == true)) | .[0].gbytes_per_s) as $tsinst |
  {host: $host[0],
   floor: {fault_p50_us: $blk.p50_us, fault_p99_us: $blk.p99_us,
           tls_stream_gbytes_per_s: $tsfloor,
           openssl_speed_gbytes_per_s: $ts.openssl_speed.gbytes_per_s},
   faultlat: [($fl.faultlat // [])[] | {path, install: (.install // "copy"), threads, background,
              bpf, p50_us, p99_us, p999_us, faults_per_s, cpu_us_per_fault, ratio_p50, ratio_p99}
              + (if .tag then {tag} else {} end)],
   throughput: ((if $fl.throughput then [{streams: $fl.throughput.streams,
                  gbytes_per_s: $fl.throughput.gbytes_per_s,
                  ratio: (if $tsfloor then $fl.throughput.gbytes_per_s / $tsfloor else null end)}]
                + (if $fl.throughput.minor then [{streams: $fl.throughput.streams, install: "minor",
                  gbytes_per_s: $fl.throughput.minor.gbytes_per_s,
                  ratio: (if $tsfloor then $fl.throughput.minor.gbytes_per_s / $tsfloor else null end)}]
                  else [] end)
                else [] end)
               + [(($cz[0] // {}).compression // [])[] | {link, content, compression, streams,
                  gbytes_per_s, ratio: (if $tsfloor then .gbytes_per_s / $tsfloor else null end),
                  ratio_install: (if $tsinst then .gbytes_per_s / $tsinst else null end),
                  ratio_off: .ratio, ratio_off_min: .ratio_min, ratio_off_max: .ratio_max,
                  rounds, ratio_1_stream, cpu_ratio_1_stream, wire_bytes, cpu_s_per_gbyte,
                  src_cpu_s_per_gbyte, parallel_encryption, ratio_serial, src_cpu_ratio_serial,
                  stream_gbytes_per_s, steal_s,
                  ratio_install_stream: (if $tsinst and .stream_gbytes_per_s
                    then .stream_gbytes_per_s / $tsinst else null end)}]),
   isolation: (($iso[0] // {}).isolation // null),
   e2e: [($e.e2e // [])[] | {guest_mib, total_s, blackout_ms, demand_faults, pages}],
   e2e_scheduling: [($e.scheduling // [])[] | {setting, how, runs, mean_demand_faults,
                    mean_total_s, mean_guest_cpus}],
   hybrid: [(($hy[0] // {}).hybrid // [])[] | {workload, mode, demand_faults, stall_ms, total_s,
            wire_bytes, blackout_ms, precopy_rounds}],
   bandwidth: [(($hy[0] // {}).bandwidth // [])[] | {cap_mbit, measured_mbit, fault_p50_us,
            fault_p50_uncapped_us}],
   rxcopy: [($rx[0], $rxh[0], $rxs[0]) | ((. // {}).rxcopy // {}).summary // [] | .[] |
            {install, pages, streams: (.streams // 1), cpu_s_per_gbyte,
            before_cpu_s_per_gbyte, ratio, gbytes_per_s, before_gbytes_per_s}]}
  ' >"$RES/latest.json" || { echo "bench: cannot assemble latest.json" >&2; exit 1; }

say "summary (bench/results/latest.json; details in bench/results/*.json)"
jq -r --slurpfile ff "$TMP/ff.json" --slurpfile ts "$TMP/ts.json" --slurpfile fl "$TMP/fl.json" \
  --slurpfile e2e "$TMP/e2e.json" '
  def f(n): if n == null then "-" else (n * 10 | round / 10 | tostring) end;
  def f2(n): if n == null then "-" else (n * 100 | round / 100 | tostring) end;
  def pad(w): tostring | if length < w then " " * (w - length) + . else . end;
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  (($ts[0].results // []) | map(select(.install == true)) | .[0].gbytes_per_s) as $inst |
  (.floor.fault_p50_us) as $fp50 | (.floor.fault_p99_us) as $fp99 |
  def ratio(x; fl): if x == null or fl == null or fl == 0 then "-" else f2(x / fl) end;
  "host: \(.host.cores) cores, \(.host.cpu_model), kernel \(.host.kernel), \(.host.machine); \(.host.placement)",
  "",
  "floor (same run): one fault, bare delivery + TLS 1.3 + UFFDIO_COPY, 1 thread, no background (block/spin: uffd; ring: SIGBUS + slot + doorbell):",
  (($ff[0].results // [])[] | "  \(.strategy | pad(5)): p50 \(f(.p50_us)) us, p99 \(f(.p99_us)) us, p99.9 \(f(.p999_us)) us, \(f(.cpu_us_per_fault)) us CPU/fault (rounds p50 \(f(.round_p50_min_us))-\(f(.round_p50_max_us)))"),
  "  throughput: bare TLS 1.3 stream, 16 KiB records: \(f2(.floor.tls_stream_gbytes_per_s)) GB/s; the same + UFFDIO_COPY install: \(f2($inst)) GB/s; openssl speed aes-128-gcm 16 KiB: \(f2(.floor.openssl_speed_gbytes_per_s)) GB/s",
  "",
  "faultlat: migrationd demand faults, \($fl[0].conditions.guest_ram // "-") guests, \($fl[0].conditions.touches_per_run // "-") touches per line (ratio = figure / floor of the same delivery: uffd / block, ring / ring; cpu = both daemons, utime+stime, with background on it includes streaming)",
  "  path install threads bg   |  p50 us  (x floor) |  p99 us  (x floor) | p99.9 us | faults/s | cpu us/fault | timed  skipped",
  (($fl[0].faultlat // [])[] |
    "  \(.path | pad(4)) \(.install // "copy" | pad(7)) \(.threads | pad(7)) \((if .background then "on" else "off" end) | pad(3))  | \(f(.p50_us) | pad(7)) (\(f2(.ratio_p50) | pad(6))x) | \(f(.p99_us) | pad(7)) (\(f2(.ratio_p99) | pad(6))x) | \(f(.p999_us) | pad(8)) | \(.faults_per_s | round | pad(8)) | \(f(.cpu_us_per_fault) | pad(12)) | \(.detail.faults_timed | pad(5)) \(.detail.skipped_present | pad(8))\(if .tag then "  [\(.tag): eBPF \(if .bpf then "on" else "off" end)]" else "" end)"),
  "",
  "eBPF overhead (destination daemon with its BPF programs attached vs off, alternating side by side at the end of the run, uffd path, no background; medians of the rounds):",
  (([$fl[0].faultlat[] | select(.tag == "bpf-pair") | .threads] | unique[]) as $t |
   ([$fl[0].faultlat[] | select(.tag == "bpf-pair" and .threads == $t and .bpf == false)]) as $off |
   ([$fl[0].faultlat[] | select(.tag == "bpf-pair" and .threads == $t and .bpf == true)]) as $on |
   if ($on | length) > 0 and ($off | length) > 0 then
    "  threads \($t): p50 \(f($on | map(.p50_us) | median)) us with BPF vs \(f($off | map(.p50_us) | median)) us without = \(f2(($on | map(.p50_us) | median) / ($off | map(.p50_us) | median)))x; p99 \(f2(($on | map(.p99_us) | median) / ($off | map(.p99_us) | median)))x (rounds p50 on: \($on | map(f(.p50_us)) | join(" ")); off: \($off | map(f(.p50_us)) | join(" ")))"
   else empty end),
  "",
  "throughput: migrationd background stream, \($fl[0].throughput.method // "-")",
  (.throughput[] | select(.link == null) | "  streams \(.streams)\(if .install then " (\(.install) installs)" else "" end): \(f2(.gbytes_per_s)) GB/s = \(f2(.ratio))x the bare TLS stream floor, \(if $inst then f2(.gbytes_per_s / $inst) else "-" end)x the stream + install floor; daemons \(((if .install then $fl[0].throughput.minor.runs else $fl[0].throughput.runs end) // []) as $runs | "\(f2($runs | map(.cpu_s_per_gbyte_source) | add / length)) + \(f2($runs | map(.cpu_s_per_gbyte_destination) | add / length))") CPU s/GB (source + destination; bare stream: \(f2(($ts[0].results // [])[0].cpu_s_per_gbyte)) both ends)"),
  "compression: whole shimvm migrations A -> B (bench/compress.sh; ratio_off = / compression off, same link, content and streams; ratio_1_stream = / 1 stream, same link, content and compression)",
  (.throughput[] | select(.link != null) | "  \(.link) \(.content) \(.compression) streams \(.streams) (median of \(.rounds)): \(f2(.gbytes_per_s)) GB/s = \(f2(.ratio_off))x off (rounds \(f2(.ratio_off_min))-\(f2(.ratio_off_max))x), stream alone \(f2(.stream_gbytes_per_s)) GB/s = \(f2(.ratio_install_stream))x the stream + install floor, \(f2(.ratio))x the bare TLS stream, \(f2(.ratio_install))x the stream + install floor; wire \(.wire_bytes) B; destination CPU \(f2(.cpu_s_per_gbyte)) s/GB; \(f2(.ratio_1_stream))x 1 stream, its CPU \(f2(.cpu_ratio_1_stream))x"),
  "",
  "isolation: a neighbour'"'"'s demand-fault p50 beside a VMM flooding its doorbell / its ring, medians of alternating rounds (bench/isolation.sh)",
  (.isolation // empty | "  undisturbed \(f(.undisturbed_p50_us)) us (\(ratio(.undisturbed_p50_us; .floor_p50_us))x floor), doorbell flood \(f(.flooded_p50_us)) us = \(f2(.ratio))x undisturbed, ring flood \(f(.ring_flooded_p50_us)) us = \(f2(.ring_ratio))x; floor p50 \(f(.floor_p50_us)) us; daemon B CPU during a flood \(.daemon_b_cpu_pct_doorbell_flood)% / \(.daemon_b_cpu_pct_ring_flood)%"),
  "",
  "e2e: minivmm writer guests, host A -> host B (unpinned; fault latency = the destination daemon'"'"'s own histogram, request sent -> installed)",
  "  guest MiB | fault path | total s | blackout ms | demand faults | pages demand / background / zero | fault p50 us (x floor) | p99 us (x floor)",
  (($e2e[0].e2e // [])[] | "  \(.guest_mib | pad(9)) | \(.detail.fault_path | split(" ")[0] | pad(10)) | \(f2(.total_s) | pad(7)) | \(f(.blackout_ms) | pad(11)) | \(.demand_faults | pad(13)) | \("\(.pages.demand) / \(.pages.background) / \(.pages.zero)" | pad(32)) | \(f(.detail.daemon_fault_p50_us) | pad(9)) (\(ratio(.detail.daemon_fault_p50_us; $fp50) | pad(6))x) | \(f(.detail.daemon_fault_p99_us) | pad(8)) (\(ratio(.detail.daemon_fault_p99_us; $fp99) | pad(6))x)"),
  "",
  "rxcopy: destination daemon CPU s/GB, background pages read into place vs through libevent'"'"'s buffer (bench/rxcopy.sh: same run, medians of alternating rounds; ratio = into place / buffered, target <= 0.8)",
  (.rxcopy[] | "  \(.install) \(.pages), \(.streams) stream(s): \(f2(.cpu_s_per_gbyte)) s/GB vs \(f2(.before_cpu_s_per_gbyte)) s/GB = \(f2(.ratio))x; guest \(f2(.gbytes_per_s)) GB/s vs \(f2(.before_gbytes_per_s))")
  ' "$RES/latest.json"

# --- plot -----------------------------------------------------------------------------
plot() {
  if ! command -v gnuplot >/dev/null; then
    echo "bench: gnuplot not found; installing gnuplot-nox with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >"$TMP/apt.log" 2>&1 ||
      { echo "bench: no PNG: gnuplot could not be installed (see apt-get output below)" >&2
        tail -n 3 "$TMP/apt.log" >&2; return 0; }
  fi
  local p bg fp50 fp99 panels=()
  for p in uffd ring; do
    for bg in false true; do
      jq -r --arg p "$p" --argjson bg "$bg" '.faultlat[] | select(.path == $p and .install == "copy" and .tag == null and .background == $bg) |
        "\(.threads) \(.p50_us) \(.p99_us)"' "$RES/latest.json" >"$TMP/$p-$bg.dat"
    done
    [[ -s $TMP/$p-false.dat || -s $TMP/$p-true.dat ]] && panels+=("$p")
  done
  ((${#panels[@]})) || { echo "bench: no PNG: no faultlat figures" >&2; return 0; }
  {
    echo 'set terminal pngcairo size 1400,620 font ",10"'
    echo "set output \"$RES/faultlat.png\""
    echo "set multiplot layout 1,${#panels[@]} title \"migrationd demand-fault latency vs the floor measured in the same run ($(nproc) cores, $PLACEMENT)\""
    echo 'set xlabel "toucher threads"; set ylabel "stall per fault (us)"'
    echo 'set logscale x 2; set logscale y 10; set xrange [0.8:20]; set yrange [10:*]; set grid'
    echo 'set key top left font ",9"'
    for p in "${panels[@]}"; do
      local strat=block
      [[ $p == ring ]] && strat=ring
      fp50=$(jq -r --arg s "$strat" '[.results[] | select(.strategy == $s)][0].p50_us // 0' "$TMP/ff.json" 2>/dev/null || echo 0)
      fp99=$(jq -r --arg s "$strat" '[.results[] | select(.strategy == $s)][0].p99_us // 0' "$TMP/ff.json" 2>/dev/null || echo 0)
      echo "set title \"path $p\""
      echo "plot \"$TMP/$p-false.dat\" using 1:2 with linespoints lw 2 pt 7 lc rgb \"#1f77b4\" title \"p50, background off\", \\"
      echo "     \"$TMP/$p-false.dat\" using 1:3 with linespoints lw 2 pt 5 lc rgb \"#aec7e8\" title \"p99, background off\", \\"
      echo "     \"$TMP/$p-true.dat\" using 1:2 with linespoints lw 2 pt 7 lc rgb \"#d62728\" title \"p50, background on\", \\"
      echo "     \"$TMP/$p-true.dat\" using 1:3 with linespoints lw 2 pt 5 lc rgb \"#ff9896\" title \"p99, background on\", \\"
      echo "     ${fp50:-0} with lines dt 2 lw 2 lc rgb \"#2ca02c\" title sprintf(\"floor p50, $strat (%.0f us)\", ${fp50:-0}), \\"
      echo "     ${fp99:-0} with lines dt 3 lw 2 lc rgb \"#2ca02c\" title sprintf(\"floor p99, $strat (%.0f us)\", ${fp99:-0})"
    done
    echo 'unset multiplot'
  } >"$TMP/plot.gp"
  gnuplot "$TMP/plot.gp" 2>"$TMP/gnuplot.log" ||
    { echo "bench: no PNG: gnuplot failed" >&2; cat "$TMP/gnuplot.log" >&2; return 0; }
  [[ -s $RES/faultlat.png ]] && echo "plot: $RES/faultlat.png"
}
plot

echo
echo "bench: done in $(( $(date +%s) - T0 )) s; results in $RES/latest.json"
if ((${#FAILED[@]})); then
  echo "bench: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
exit 0
