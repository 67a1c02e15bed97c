#!/usr/bin/env bash
# bench/rxcopy.sh BUILD_DIR OUT.json: what reading background pages straight
# into place saves the destination (issue 15 item 3). Whole shimvm
# migrations (RXCOPY_MIB, 512 MiB, every page structured, every 4th zero)
# from host A to host B over the unshaped veth between the host namespaces,
# compression off, one stream, TLS 1.3 as deployed, unpinned. For each install
# mode (RXCOPY_INSTALLS, "copy minor") rounds (RXCOPY_ROUNDS, 3) alternate
# the destination daemon B between "before" ([debug] rx_buffered = yes: the
# payload goes through libevent's buffer, evbuffer_pullup, and in minor mode
# pwrite, as the code did before) and "after" (read straight into the
# UFFDIO_COPY staging buffer or guest RAM's page cache), B restarted for
# each migration; with RXCOPY_BASE=DIR a third variant, "main", runs DIR's
# migrationd on B (the code before this change, built apart). The figure:
# destination daemon CPU seconds (utime+stime of its process over the
# migration) per GB of guest RAM, median of the rounds, and after/before as
# a ratio (the floor is "before" of the same run). Every byte is verified.
# RXCOPY_HUGE=1: guest RAM on hugetlbfs (2 MiB pages) instead of shmem.
# RXCOPY_STREAMS=N: N background streams ([peer] streams on both daemons;
# default 1).
# RXCOPY_PERF=DIR records a perf profile of B over each migration there.
BUILD=${1:?usage: rxcopy.sh BUILD_DIR OUT.json}
OUT=${2:?usage: rxcopy.sh BUILD_DIR OUT.json}
MEM=${RXCOPY_MIB:-512}
ROUNDS=${RXCOPY_ROUNDS:-3}
source "$(dirname "$0")/../tests/lib.sh"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
SHIMVM=$BUILD/tests/shimvm
NEW=$MIGRATIOND
H=() PAGES=4k
if [[ -n ${RXCOPY_HUGE:-} ]]; then	# 2 MiB pages (hugetlbfs guest RAM)
  H=(-H) PAGES=2m
  mig_reserve_hugepages $((MEM + 8))	# source and destination, 2 MiB each
fi
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces (two hosts joined by a veth)"
mig_certs
STREAMS=${RXCOPY_STREAMS:-1}
mig_daemon_start A "[peer]
streams = $STREAMS"
hz=$(getconf CLK_TCK)
cpu_b() { awk -v hz="$hz" '{ print ($14 + $15) / hz }' "/proc/$PID_DB/stat"; }
stop_b() {
  kill -TERM "$PID_DB" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$PID_DB" 2>/dev/null || break; sleep 0.1; done
  wait "$PID_DB" 2>/dev/null
}
: >"$WORK/results"
n=0
run() { # INSTALL VARIANT
  local install=$1 variant=$2 vm src dst t0 t1 c0 c1
  n=$((n + 1)); vm=rx-$n-$install-$variant
  MIGRATIOND=$NEW
  [[ $variant == main ]] && MIGRATIOND=$RXCOPY_BASE/daemon/migrationd
  local conf="[peer]
streams = $STREAMS"
  [[ $variant == before ]] && conf+="
[debug]
rx_buffered = yes"
  mig_daemon_start B "$conf"
  mig_spawn A "$WORK/src-$vm.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$vm" -m "$MEM" "${H[@]}"
  src=$SPAWN_PID
  mig_wait_line "$WORK/src-$vm.log" 'source ready' 60 "$src" || mig_die "$vm: source not ready"
  mig_spawn B "$WORK/dst-$vm.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$vm" -m "$MEM" \
    -I "$install" -t 1 -k 1 "${H[@]}"
  dst=$SPAWN_PID
  mig_prepare B "$vm"
  local perf=
  if [[ -n ${RXCOPY_PERF:-} ]]; then	# a profile of B per migration, in RXCOPY_PERF/
    mkdir -p "$RXCOPY_PERF"
    perf record -q -g -p "$PID_DB" -o "$RXCOPY_PERF/$vm.data" 2>/dev/null &
    perf=$!
    sleep 0.5
  fi
  c0=$(cpu_b); t0=$(date +%s.%N)
  ctl A migrate "$vm" --to "$ADDR_B" --token "$TOKEN" --compression off --wait \
    --timeout 300 >/dev/null || mig_die "$vm: migration failed"
  t1=$(date +%s.%N); c1=$(cpu_b)
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf"; }
  mig_wait_exit "$dst" 120 || mig_die "$vm: destination VMM found a wrong value"
  mig_assert_verified "$WORK/dst-$vm.log" "${MEM}M"
  mig_wait_exit "$src" 30
  jq -nc --arg install "$install" --arg variant "$variant" --arg pages "$PAGES" --argjson mib "$MEM" \
    --argjson streams "$STREAMS" \
    --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" '
    {install: $install, pages: $pages, variant: $variant, streams: $streams, guest_mib: $mib, total_s: $s,
     gbytes_per_s: ($mib / 1024 / $s), cpu_s: $cpu, cpu_s_per_gbyte: ($cpu / ($mib / 1024))}' \
    >>"$WORK/results"
  log "$(tail -1 "$WORK/results")"
  stop_b
}
variants="before after"
[[ -n ${RXCOPY_BASE:-} ]] && variants+=" main"
for install in ${RXCOPY_INSTALLS:-copy minor}; do
  for r in $(seq "$ROUNDS"); do
    for v in $variants; do run "$install" "$v"; done
  done
done
jq -s --argjson mib "$MEM" --argjson rounds "$ROUNDS" --argjson streams "$STREAMS" '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  {rxcopy: {conditions: "shimvm \($mib) MiB structured, veth between two netns unshaped, TLS 1.3, compression off, \($streams) stream(s), unpinned, 2 cores; destination daemon utime+stime over the migration; medians of \($rounds) alternating rounds",
    runs: .,
    summary: [group_by(.install)[] | . as $g |
      ($g | map(select(.variant == "before")) | map(.cpu_s_per_gbyte) | med) as $b |
      ($g | map(select(.variant == "after")) | map(.cpu_s_per_gbyte) | med) as $a |
      {install: $g[0].install, pages: $g[0].pages, streams: $streams,
       before_cpu_s_per_gbyte: $b, cpu_s_per_gbyte: $a, ratio: ($a / $b),
       before_gbytes_per_s: ($g | map(select(.variant == "before")) | map(.gbytes_per_s) | med),
       gbytes_per_s: ($g | map(select(.variant == "after")) | map(.gbytes_per_s) | med),
       main_cpu_s_per_gbyte: ($g | map(select(.variant == "main")) | map(.cpu_s_per_gbyte) |
         if length > 0 then med else null end)}]}}' "$WORK/results" >"$OUT"
jq -r '.rxcopy.summary[] | "\(.install) \(.pages), \(.streams) stream(s): destination CPU \(.cpu_s_per_gbyte * 100 | round / 100) s/GB read into place, \(.before_cpu_s_per_gbyte * 100 | round / 100) s/GB through the buffer (before, same run): \(.ratio * 100 | round / 100)x (target <= 0.8x)" + (if .main_cpu_s_per_gbyte then "; main build \(.main_cpu_s_per_gbyte * 100 | round / 100) s/GB" else "" end) + "; guest \(.gbytes_per_s * 1000 | round / 1000) GB/s against \(.before_gbytes_per_s * 1000 | round / 1000)"' "$OUT"
mig_cleanup
mig_finish
