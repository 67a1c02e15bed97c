#!/usr/bin/env bash
# zstd compression of background pages. A shimvm VM (compressible content:
# structured qwords, every 4th page zero) migrates A -> B with compression
# forced on, then one of mixed content (shimvm -C mixed: a fifth of the
# pages random) forced on, then adaptive under a 100 Mbit/s cap; every byte is verified and the source's
# status shows fewer bytes after than before. The source compresses on
# its pool of threads ([peer] compress_threads = 2). With `full`: hostile zstd
# frames (corrupt, a content size other than count*page, a length beyond
# count*page) each close their own connection with a clear error and
# install nothing; then B restarts as an old peer (advertise_compression =
# no) and a migration asked to compress goes raw, still verified.
# usage: compress.sh BUILD_DIR copy|minor [4k|huge] [full]
BUILD=$1
INSTALL=$2
PAGES=${3:-4k}
FULL=${4:-}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
PROBE=$BUILD/tests/peer_probe
MEM=64
mig_shim_pages "$PAGES" $MEM
mig_hosts_up
mig_certs
# Two compression workers beside the loop thread, whatever the CPUs (auto
# would give none on one CPU): every compressed batch runs on the pool.
mig_daemon_start A "[peer]
compress_threads = 2"
mig_daemon_start B

# migrate VM MODE [CONTENT [MIGRATE_ARGS...]]: one verified migration of a
# fresh shimvm VM (shimvm -C CONTENT, structured unless given); sets J (the
# source's status JSON)
migrate() {
  local -a MIG_SHIM_ARGS=(-C "${3:-structured}")
  local vm=$1 mode=$2
  shift 3 2>/dev/null || shift $#
  mig_shim_verified "$vm" $MEM "$INSTALL" --compression "$mode" "$@"
  echo "$vm: $(jq -c '{compression, compress_bytes_before, compress_bytes_after, bytes_sent}' <<<"$J")"
}
ratio() { jq -r '.compress_bytes_after / (if .compress_bytes_before > 0 then .compress_bytes_before else 1 end)' <<<"$J"; }

migrate on-$INSTALL on
mig_assert_eq "forced on: status says so" "$(jq -r .compression <<<"$J")" on
mig_assert_eq "forced on: background bytes shrank below half" \
  "$(jq -r '.compress_bytes_before > 0 and .compress_bytes_after * 2 < .compress_bytes_before' <<<"$J")" true
echo "forced on: ratio after/before $(ratio)"
mig_assert_eq "the source compressed on its pool (loop thread + 2 workers)" \
  "$(grep -c 'compressing on 3 threads' "$WORK/migrationd-A.log")" 1
# Mixed content (a fifth of the pages random): a run that does not shrink
# goes raw and the runs after it still compress.
migrate mixed-$INSTALL on mixed
echo "mixed, forced on: ratio after/before $(ratio)"
mig_assert_eq "mixed, forced on: compressible runs shrank, random ones did not (0.3-0.8)" \
  "$(jq -r '(.compress_bytes_after / .compress_bytes_before) as $r | $r > 0.3 and $r < 0.8' <<<"$J")" true
# Adaptive on a link capped at 100 Mbit/s, where compressing pays (on an
# uncapped one it may rightly send all raw: the compressor is slower).
migrate auto-$INSTALL auto structured --max-bandwidth 100M
mig_assert_eq "auto: status says so" "$(jq -r .compression <<<"$J")" auto
echo "auto: ratio after/before $(ratio)"
mig_assert_eq "auto, 100 Mbit/s cap: some pages went compressed (their bytes shrank)" \
  "$(jq -r '.compress_bytes_after < .compress_bytes_before' <<<"$J")" true

if [[ -n $FULL ]]; then
  P=$WORK/pki
  probe() { if ((MIG_USE_NETNS)); then ip netns exec "migA-$$" "$PROBE" "$@"; else "$PROBE" "$@"; fi; }
  RAM=$((16 << 20))
  for x in zcorrupt zsize zlong; do
    mig_spawn B "$WORK/$x.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$x" -m 16 -t 1 -k 1
    mig_prepare B "$x"
    out=$(probe -a "$ADDR_B" -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$TOKEN" \
      -v "$x" -r $RAM -x "$x")
    echo "$x: $out"
    mig_assert_eq "$x: that connection closed" "$([[ $out == accepted*closed-by-peer* ]] && echo yes)" yes
    mig_assert_eq "$x: nothing installed from it" "$(ctl B --json status "$x" | jq -r .pages_installed)" 0
  done
  grep -q 'corrupt compressed frame' "$WORK/migrationd-B.log"
  mig_assert_eq "corrupt frame: a clear error in the log" "$?" 0
  grep -q "compressed frame's content size is not its pages' size" "$WORK/migrationd-B.log"
  mig_assert_eq "content size mismatch: a clear error in the log" "$?" 0
  grep -q 'malformed frame: payload length does not match the frame' "$WORK/migrationd-B.log"
  mig_assert_eq "length beyond count*page: refused at the header" "$?" 0

  # B as an old peer: it does not say it decodes zstd.
  kill -TERM "$PID_DB"
  mig_wait_exit "$PID_DB" 10
  mig_daemon_start B "[peer]
advertise_compression = no"
  migrate old-peer-$INSTALL on
  mig_assert_eq "old peer: status says why it is raw" "$(jq -r .compression <<<"$J")" "off (peer)"
  mig_assert_eq "old peer: every byte went raw" \
    "$(jq -r '.compress_bytes_after == .compress_bytes_before' <<<"$J")" true
  grep -q 'does not decode zstd' "$WORK/migrationd-A.log"
  mig_assert_eq "old peer: the source logged it" "$?" 0
  ctl A migrate x --to "$ADDR_B" --token t --compression fast >/dev/null 2>"$WORK/bad.err"
  mig_assert_eq "bad --compression refused" "$?" 2
  cat "$WORK/bad.err"
fi
mig_finish
