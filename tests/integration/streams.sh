#!/usr/bin/env bash
# Several background streams ([peer] streams = 2 on both daemons). A shimvm
# VM migrates A -> B; every byte is verified, both sides' status says 2
# streams, the destination saw stream 1 connect and the source sent no page
# twice in the background, and the two streams were encrypted at once on
# the source's worker thread and loop thread. With `full`: a hostile stream 1 (pages before the
# VM state; a corrupt zstd frame in post-copy) is closed with a clear error
# and installs nothing, the daemon lives on; a stream index past what B
# takes, or one already connected, is refused with the reason; `[peer] streams` out of range
# is refused by migrationd -n; then B restarts with streams = 1 and a source
# asking for 2 uses 1 and says so (interop), still verified.
# usage: streams.sh BUILD_DIR copy|minor [4k|huge] [full]
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
mig_daemon_start A "[peer]
streams = 2
compress_threads = 1"
mig_daemon_start B "[peer]
streams = 2"

# migrate VM [MIGRATE-ARGS]: one verified migration of a fresh shimvm VM;
# sets J and JB (the source's and the destination's status JSON)
migrate() {
  mig_shim_verified "$1" $MEM "$INSTALL" "${@:2}"
  echo "$1: $(jq -c '{streams, streams_wanted, pages_background, pages_zero, pages_demand, pages_duplicate}' <<<"$J")"
}

migrate two-$INSTALL-$PAGES
mig_assert_eq "source: 2 streams in use" "$(jq -r .streams <<<"$J")" 2
mig_assert_eq "destination: 2 streams" "$(jq -r .streams <<<"$JB")" 2
mig_assert_eq "every page sent once in the background (no duplicate but demand's)" \
  "$(jq -r '.pages_background + .pages_zero + .pages_demand + .pages_poisoned == (.pages_total // (.ram_bytes / .page_size))' <<<"$J")" true
mig_assert_eq "every page installed" "$(jq -r '.pages_installed == .pages_total' <<<"$JB")" true
# A page that reached the destination twice is a demand answer that
# overtook the stream (the source counts those); never two streams' copies.
echo "duplicates: destination received $(jq -r .pages_duplicate <<<"$JB"), source answered $(jq -r .pages_duplicate <<<"$J") on demand again"
mig_assert_eq "no page came on two streams" \
  "$(($(jq -r .pages_duplicate <<<"$JB") <= $(jq -r .pages_duplicate <<<"$J")))" 1
grep -q "migration .*: background channel 1 from" "$WORK/migrationd-B.log"
mig_assert_eq "the destination saw stream 1" "$?" 0
by=$(grep -o 'pages queued by background stream: .*' "$WORK/migrationd-A.log" | tail -n 1)
echo "source: $by"
mig_assert_eq "both streams carried pages" \
  "$(awk '{print ($(NF-1) > 0 && $NF > 0) ? "yes" : "no"}' <<<"$by")" yes
# The streams' TLS writes went through their stages (peer_tx.c), two of
# them at once on the worker thread and the loop thread with 4 KiB pages
# (a 2 MiB page is a stage of its own that a socket seldom takes whole, so
# the stream waits for libevent's writer), and every byte still arrived
# (verified above).
par=$(grep -o 'streams encrypted at once on the worker threads [0-9]* times.*' \
  "$WORK/migrationd-A.log" | tail -n 1)
echo "source: $par"
mig_assert_eq "the streams' pages went through their stages" \
  "$(awk '{print ($11 > 0) ? "yes" : "no"}' <<<"$par")" yes
if [[ $PAGES == 4k ]]; then
  mig_assert_eq "the streams were encrypted at once" \
    "$(awk '{print ($9 > 0) ? "yes" : "no"}' <<<"$par")" yes
fi
# Every stream reads its page frames straight into place (a staging buffer
# of its own; guest RAM's page cache is stream 0's on hugetlbfs), not
# through its connection's buffer: nearly all the background payload the
# source put on the wire (compress_bytes_after) was read into place.
# Minor mode on shmem writes from the buffer (place.c says why).
if [[ $INSTALL == copy || $PAGES == huge ]]; then
  echo "destination: $(jq -r .bytes_received_in_place <<<"$JB") of the source's $(jq -r .compress_bytes_after <<<"$J") background payload bytes read into place"
  mig_assert_eq "every stream read its payload into place" \
    "$(jq -n --argjson a "$J" --argjson b "$JB" '$b.bytes_received_in_place >= 0.9 * $a.compress_bytes_after and $a.compress_bytes_after > 0')" true
fi
ctl A status two-$INSTALL-$PAGES | grep -q 'streams: *2 background'
mig_assert_eq "mig-ctl status shows the streams" "$?" 0

if [[ -n $FULL ]]; then
  P=$WORK/pki
  probe() { if ((MIG_USE_NETNS)); then ip netns exec "migA-$$" "$PROBE" "$@"; else "$PROBE" "$@"; fi; }
  RAM=$((16 << 20))
  # probe_vm X: a 16 MiB VM X prepared on B, and peer_probe -x X as its
  # source; sets out (what the probe said)
  probe_vm() {
    mig_spawn B "$WORK/$1.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$1" -m 16 -t 1 -k 1
    mig_prepare B "$1"
    out=$(probe -a "$ADDR_B" -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$TOKEN" \
      -v "$1" -r $RAM -x "$1")
    echo "$1: $out"
  }
  for x in bg1-zcorrupt bg1s-zcorrupt; do
    probe_vm "$x"
    mig_assert_eq "$x: stream 1 closed" "$([[ $out == *'stream 1: closed-by-peer'* ]] && echo yes)" yes
    mig_assert_eq "$x: nothing installed from it" "$(ctl B --json status "$x" | jq -r .pages_installed)" 0
    echo "$x: destination $(ctl B --json status "$x" | jq -c '{state, reason}')"
  done
  # A stream past what B takes, and a stream index twice: refused, named.
  for x in bg2-hello bg1-twice; do
    probe_vm "$x"
    case $x in
    bg2-hello) mig_assert_eq "stream 2 refused: B takes 2" \
      "$(grep -c '^stream 2: refused: background stream 2: this destination takes 2 (\[peer\] streams)$' <<<"$out")" 1 ;;
    bg1-twice)
      mig_assert_eq "stream 1 taken once" "$(grep -c '^stream 1: bound$' <<<"$out")" 1
      mig_assert_eq "stream 1 again refused" \
        "$(grep -c '^stream 1: refused: background stream 1 of migration .* is connected already$' <<<"$out")" 1 ;;
    esac
  done
  grep -q 'pages on a background stream past the first before the VM state' "$WORK/migrationd-B.log"
  mig_assert_eq "pages on stream 1 before the state: a clear error in the log" "$?" 0
  grep -q 'corrupt compressed frame' "$WORK/migrationd-B.log"
  mig_assert_eq "corrupt frame on stream 1: a clear error in the log" "$?" 0
  ctl B health >/dev/null
  mig_assert_eq "the destination daemon lives on" "$?" 0

  # Out of range: refused by the checker, with the key named.
  for n in 0 9; do
    mig_conf "$WORK/bad" 127.0.0.1:1 "[peer]
streams = $n
[tls]
enabled = no"
    "$MIGRATIOND" -n -c "$WORK/bad/migrationd.conf" >"$WORK/bad.out" 2>&1
    mig_assert_eq "streams = $n refused by migrationd -n" "$?" 1
    grep -q 'streams' "$WORK/bad.out"
    mig_assert_eq "streams = $n: the error names the key" "$?" 0
    cat "$WORK/bad.out"
  done

  # mig-ctl migrate --streams: the API field, over the daemon's default.
  migrate flag-$INSTALL --streams 1
  mig_assert_eq "--streams 1: the source asked for 1 and used 1" \
    "$(jq -r '"\(.streams_wanted) \(.streams)"' <<<"$J")" "1 1"
  for bad in 0 9 two; do
    ctl A migrate x --to "$ADDR_B" --token t --streams "$bad" >/dev/null 2>"$WORK/bad.err"
    mig_assert_eq "--streams $bad: a usage error" "$?" 2
  done
  cat "$WORK/bad.err"

  # B takes one stream: A, asking for 2, uses 1 and says so.
  kill -TERM "$PID_DB"
  mig_wait_exit "$PID_DB" 10
  mig_daemon_start B "[peer]
streams = 1"
  migrate one-$INSTALL
  mig_assert_eq "interop: the source uses 1 stream" "$(jq -r .streams <<<"$J")" 1
  mig_assert_eq "interop: it asked for 2" "$(jq -r .streams_wanted <<<"$J")" 2
  ctl A status one-$INSTALL | grep -q 'streams: *1 background (2 asked; the destination takes 1)'
  mig_assert_eq "interop: mig-ctl status says why" "$?" 0
  grep -q 'the destination takes 1 background stream; using 1 of the 2 asked' "$WORK/migrationd-A.log"
  mig_assert_eq "interop: the source logged it" "$?" 0
fi
mig_finish
