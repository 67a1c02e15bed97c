#!/usr/bin/env bash
# bench/compress.sh BUILD_DIR OUT.json: background-stream compression (issue
# 15) on whole migrations of a shimvm VM (COMPRESS_MIB, 256 MiB) from host A
# to host B, side by side in one run: the veth between the two host
# namespaces unshaped ("loopback": memory speed, the CPU is the bottleneck)
# and shaped with tc tbf to 1 Gbit/s on A's side ("1gbit": the link is the
# bottleneck); compression off, forced on ("zstd") and adaptive; 1 and 2
# background streams (COMPRESS_STREAMS).
# Content (COMPRESS_CONTENTS, "mixed random"; shimvm -C): "mixed" is 25%
# zero pages, 30% text-like (about 3x with zstd -1), 25% structured (about
# 9x) and 20% random pages (bench/README.md says why); "random" is every
# page incompressible; "structured" (not run unless asked) is the rule the
# tests use, every 4th page zero and the rest about 9x. Per migration: total seconds (migrate --wait), guest GB/s,
# wire bytes, the compressed share, and destination daemon CPU seconds per
# guest GB (utime+stime of its process over the migration). "ratio" is to
# compression off on the same link in the same run: the floor here is the
# uncompressed stream of this very run. "stream_gbytes_per_s" is guest RAM
# over the destination's postcopy_s (POSTCOPY until every page installed):
# the background stream alone, without connect, handshake and blackout.
# COMPRESS_RUNS rounds (3): each round runs every content and mode once,
# interleaved, so a slow moment of the machine hits all modes alike; each
# figure is the median of the rounds, "ratio" the median of the rounds'
# ratios to off of the same round, "ratio_min"/"ratio_max" their range, and
# "runs" keeps every round.
BUILD=${1:?usage: compress.sh BUILD_DIR OUT.json}
OUT=${2:?usage: compress.sh BUILD_DIR OUT.json}
MEM=${COMPRESS_MIB:-256}
# COMPRESS_LINKS ("loopback 1gbit"), COMPRESS_CONTENTS and COMPRESS_MODES ("off on auto") narrow
# a run (to profile one line: its "ratio" then needs "off" in it too).
# COMPRESS_STREAMS ("1 2"): [peer] streams of both daemons (restarted for
# each); "ratio_1_stream" and "cpu_ratio_1_stream" compare each line to the
# same link, content and compression with 1 stream, in this run.
# COMPRESS_PARALLEL ("yes"): the source's [peer] parallel_encryption;
# "yes no" runs both, the daemons restarted for each within every round,
# and "ratio_serial" / "src_cpu_ratio_serial" compare each line to "no"
# (same link, content, compression and streams, medians of this run).
# "src_cpu_s_per_gbyte" is the source daemon's CPU per guest GB.
source "$(dirname "$0")/../tests/lib.sh"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
SHIMVM=$BUILD/tests/shimvm
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to shape the link"
mig_certs
hz=$(getconf CLK_TCK)
cpu_of() { awk -v hz="$hz" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }	# PID
# CPU time the hypervisor gave elsewhere (steal, all CPUs): this machine's
# speed swings with it, so each migration records its own.
steal() { awk -v hz="$hz" 'NR == 1 { print $9 / hz }' /proc/stat; }
minus() { awk -v a="$2" -v b="$1" 'BEGIN { print b - a }'; }	# B A: B - A
: >"$WORK/results"
n=0
streams=0 par=
daemons() { # STREAMS PARALLEL: both daemons with [peer] streams = STREAMS
  [[ $streams == "$1" && $par == "$2" ]] && return 0
  if ((streams)); then
    kill -TERM "$PID_DA" "$PID_DB"; mig_wait_exit "$PID_DA" 10; mig_wait_exit "$PID_DB" 10
  fi
  streams=$1 par=$2
  mig_daemon_start A "[peer]
streams = $streams
parallel_encryption = $par"
  mig_daemon_start B "[peer]
streams = $streams"
}
run() { # LINK CONTENT MODE ROUND
  local link=$1 content=$2 mode=$3 round=$4 vm src dst t0 t1 c0 c1 a0 a1 s0 s1 j pc
  n=$((n + 1)); vm=cz-$n-$link-$content-$mode-$streams
  mig_spawn A "$WORK/src-$vm.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$vm" -m "$MEM" \
    -C "$content"
  src=$SPAWN_PID
  mig_wait_line "$WORK/src-$vm.log" 'source ready' 60 "$src" || mig_die "$vm: source not ready"
  mig_spawn B "$WORK/dst-$vm.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$vm" -m "$MEM" \
    -I copy -t 1 -k 1 -C "$content"
  dst=$SPAWN_PID
  mig_prepare B "$vm"
  c0=$(cpu_of "$PID_DB"); a0=$(cpu_of "$PID_DA"); s0=$(steal); t0=$(date +%s.%N)
  ctl A migrate "$vm" --to "$ADDR_B" --token "$TOKEN" --compression "$mode" --wait \
    --timeout 300 >/dev/null || mig_die "$vm: migration failed"
  t1=$(date +%s.%N); c1=$(cpu_of "$PID_DB"); a1=$(cpu_of "$PID_DA"); s1=$(steal)
  mig_wait_exit "$dst" 120 || mig_die "$vm: destination VMM found a wrong value"
  mig_assert_verified "$WORK/dst-$vm.log" "${MEM}M"
  mig_wait_exit "$src" 30
  j=$(ctl A --json status "$vm")
  [[ $(jq -r .streams <<<"$j") == "$streams" ]] || mig_die "$vm: not $streams streams"
  pc=$(ctl B --json status "$vm" | jq .postcopy_s)
  jq -c --arg link "$link" --arg content "$content" --arg mode "$mode" --argjson mib "$MEM" \
    --argjson streams "$streams" --argjson round "$round" --argjson pc "$pc" \
    --argjson steal "$(minus "$s1" "$s0")" --argjson s "$(minus "$t1" "$t0")" \
    --argjson cpu "$(minus "$c1" "$c0")" --argjson acpu "$(minus "$a1" "$a0")" \
    --argjson par "$([[ $par == yes ]] && echo true || echo false)" '
    {link: $link, content: $content, compression: (if $mode == "on" then "zstd"
      elif $mode == "auto" then "adaptive" else "off" end), streams: $streams,
     parallel_encryption: $par, guest_mib: $mib,
     round: $round, total_s: $s, steal_s: $steal, gbytes_per_s: ($mib / 1024 / $s), postcopy_s: $pc,
     stream_gbytes_per_s: (if $pc > 0 then $mib / 1024 / $pc else null end),
     wire_bytes: .bytes_sent,
     compressed_share: (if .compress_bytes_before > 0
       then .compress_bytes_after / .compress_bytes_before else null end),
     cpu_s_per_gbyte: ($cpu / ($mib / 1024)), src_cpu_s_per_gbyte: ($acpu / ($mib / 1024))}' \
    <<<"$j" >>"$WORK/results"
  log "$(tail -1 "$WORK/results")"
}
for link in ${COMPRESS_LINKS:-loopback 1gbit}; do
  if [[ $link == 1gbit ]]; then
    ip netns exec "migA-$$" tc qdisc add dev "va$$" root tbf rate 1gbit burst 512k latency 50ms ||
      mig_die "tc tbf"
  fi
  for s in ${COMPRESS_STREAMS:-1 2}; do
    for ((r = 1; r <= ${COMPRESS_RUNS:-3}; r++)); do
      for p in ${COMPRESS_PARALLEL:-yes}; do
        daemons "$s" "$p"
        for content in ${COMPRESS_CONTENTS:-mixed random}; do
          for mode in ${COMPRESS_MODES:-off on auto}; do run "$link" "$content" "$mode" "$r"; done
        done
      done
    done
  done
done
jq -s 'def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
   [group_by([.link, .content, .streams, .parallel_encryption, .round])[] |
     (map(select(.compression == "off"))[0].gbytes_per_s) as $off |
     .[] | . + {ratio: (if $off then .gbytes_per_s / $off else null end)}] |
   [group_by([.link, .content, .streams, .parallel_encryption, .compression])[] |
     .[0] + {rounds: length, total_s: (map(.total_s) | median),
       gbytes_per_s: (map(.gbytes_per_s) | median),
       postcopy_s: (map(.postcopy_s) | median),
       stream_gbytes_per_s: (map(.stream_gbytes_per_s // empty) | median),
       wire_bytes: (map(.wire_bytes) | median),
       compressed_share: (map(.compressed_share // empty) | median),
       cpu_s_per_gbyte: (map(.cpu_s_per_gbyte) | median),
       src_cpu_s_per_gbyte: (map(.src_cpu_s_per_gbyte) | median),
       ratio: (map(.ratio // empty) | median), ratio_min: (map(.ratio // empty) | min),
       ratio_max: (map(.ratio // empty) | max),
       steal_s: (map(.steal_s) | median),
       runs: map({round, gbytes_per_s, stream_gbytes_per_s, ratio, cpu_s_per_gbyte,
         src_cpu_s_per_gbyte, steal_s})} |
     del(.round)] |
   [group_by([.link, .content, .streams, .compression])[] |
     (map(select(.parallel_encryption == false))[0]) as $ser | .[] |
     . + {ratio_serial: (if $ser then .gbytes_per_s / $ser.gbytes_per_s else null end),
          src_cpu_ratio_serial: (if $ser then .src_cpu_s_per_gbyte / $ser.src_cpu_s_per_gbyte
            else null end)}] |
   [group_by([.link, .content, .compression, .parallel_encryption])[] |
     (map(select(.streams == 1))[0]) as $one | .[] |
   . + {ratio_1_stream: (if $one then .gbytes_per_s / $one.gbytes_per_s else null end),
        cpu_ratio_1_stream: (if $one then .cpu_s_per_gbyte / $one.cpu_s_per_gbyte else null end)}] |
   {compression: .}' "$WORK/results" >"$OUT"
jq -r 'def f: if . == null then "-" else . * 100 | round / 100 end;
  def f3: if . == null then "-" else . * 1000 | round / 1000 end;
  .compression[] | "\(.link) \(.content) \(.compression) \(.streams) stream(s)\(if .parallel_encryption then "" else ", serial encryption" end), median of \(.rounds): \(.gbytes_per_s | f3) GB/s, stream \((.stream_gbytes_per_s // 0) | f3) GB/s (\(.ratio | f)x of off on this link and content, rounds \(.ratio_min | f)-\(.ratio_max | f)x; \(.ratio_1_stream | f)x of 1 stream), wire \(.wire_bytes), dest CPU \(.cpu_s_per_gbyte | f) s/GB (\(.cpu_ratio_1_stream | f)x of 1 stream), source CPU \(.src_cpu_s_per_gbyte | f) s/GB\(if .ratio_serial then " (\(.ratio_serial | f)x the GB/s and \(.src_cpu_ratio_serial | f)x the source CPU of serial encryption)" else "" end), steal \(.steal_s) s"' "$OUT"
mig_cleanup
mig_finish
