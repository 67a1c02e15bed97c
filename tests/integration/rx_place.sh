#!/usr/bin/env bash
# Background pages read straight into place (daemon/transport/peer_rx.c,
# daemon/role/place.c) against a hostile background channel: a peer that
# sends half a page frame and then nothing while its urgent channel keeps
# pinging (the stall time-out closes it), one that closes half-way through a
# frame, and one that follows a good page with a frame longer than its
# pages. Each loses its own connection with a clear error in the log, and
# nothing of the broken frame is installed; then real migrations complete
# with every byte verified: copy install on shmem (into the staging buffer
# UFFDIO_COPY takes) and minor install on hugetlbfs (into guest RAM's page
# cache).
BUILD=$1
source "$(dirname "$0")/../lib.sh"
PROBE=$BUILD/tests/peer_probe
SHIMVM=$BUILD/tests/shimvm
mig_hosts_up
mig_certs
P=$WORK/pki
mig_daemon_start A
mig_daemon_start B
probe() { if ((MIG_USE_NETNS)); then ip netns exec "migA-$$" "$PROBE" "$@"; else "$PROBE" "$@"; fi; }
RAM=$((16 << 20))
installed() { ctl B --json status "$1" | jq -r .pages_installed; }
logged() { # TEXT: the destination's log says it
  for _ in $(seq 50); do grep -qF "$1" "$WORK/migrationd-B.log" && return 0; sleep 0.1; done
  return 1
}

for x in bgstall bgeof bglong; do
  mig_spawn B "$WORK/$x.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$x" -m 16 -t 1 -k 1
  mig_prepare B "$x"
  out=$(probe -a "$ADDR_B" -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$TOKEN" \
    -v "$x" -r $RAM -x "$x")
  echo "$x: $(tr '\n' ' ' <<<"$out")"
  case $x in
  bgstall)
    mig_assert_eq "stalled frame: closed after the stall time (3 s)" \
      "$(awk '/closed-by-peer/ {print ($3 >= 2.5 && $3 < 6) ? "yes" : "no"}' <<<"$out")" yes
    logged "background stream stalled: 32768 of a 65536-byte page frame, then nothing for 3000 ms"
    mig_assert_eq "stalled frame: the reason in the log" "$?" 0
    mig_assert_eq "stalled frame: nothing installed from it" "$(installed $x)" 0 ;;
  bgeof)
    logged "connection closed by peer 32768 bytes into a 65536-byte page frame"
    mig_assert_eq "frame cut by a close: the reason in the log" "$?" 0
    mig_assert_eq "frame cut by a close: nothing installed from it" "$(installed $x)" 0 ;;
  bglong)
    mig_assert_eq "frame longer than its pages: that connection closed" \
      "$([[ $out == accepted*closed-by-peer* ]] && echo yes)" yes
    logged "malformed frame: payload length does not match the frame"
    mig_assert_eq "frame longer than its pages: refused at its header, in the log" "$?" 0
    mig_assert_eq "frame longer than its pages: only the good page before it installed" \
      "$(installed $x)" 1 ;;
  esac
done

# The daemon is unharmed: a real migration, every byte checked.
MIG_SHIM_MEM=64 mig_shim_migrate real
mig_assert_eq "a real migration afterwards: every byte verified" "$?" 0

# Minor mode on hugetlbfs, where background pages are read straight into
# guest RAM's page cache: one thread touching one page, so nearly every page
# comes by the background stream; every byte verified.
MEM=64
mig_reserve_hugepages $((MEM + 8))
mig_spawn A "$WORK/src-huge.log" "$SHIMVM" source -H -s "$WORK/A/vmm.sock" -n huge -m $MEM
src=$SPAWN_PID
mig_wait_line "$WORK/src-huge.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst-huge.log" "$SHIMVM" dest -H -s "$WORK/B/vmm.sock" -n huge -m $MEM \
  -I minor -t 1 -k 1
dst=$SPAWN_PID
mig_prepare B huge
ctl A migrate huge --to "$ADDR_B" --token "$TOKEN" --wait --timeout 120 >/dev/null
mig_assert_eq "hugetlbfs minor: migration completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "hugetlbfs minor: every value checked out" "$?" 0
mig_assert_verified "$WORK/dst-huge.log" ${MEM}M
j=$(ctl B --json status huge)
echo "hugetlbfs minor: $(jq -c '{pages_total, pages_background, pages_zero, pages_demand, install_eexist}' <<<"$j")"
mig_assert_eq "hugetlbfs minor: most pages by the background stream" \
  "$(jq -r '.pages_background * 2 > .pages_total' <<<"$j")" true
mig_assert_eq "hugetlbfs minor: every page installed once" \
  "$(jq -c '[.pages_installed == .pages_total, .install_eexist]' <<<"$j")" "[true,0]"
mig_finish
