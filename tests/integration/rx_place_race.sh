#!/usr/bin/env bash
# A background frame for a page already installed (daemon/role/place.c
# never writes such a page: the guest may run on it). The source lost a
# race: it queued page P on the background channel, then answered the
# demand for P on the urgent channel, installed first; the background copy
# comes after, with other bytes (peer_probe -x race plays that source). The
# guest read P before the late copy came; at the end every byte of every
# page must be the demand copy's / the rule's, so an overwrite shows. Minor
# mode on hugetlbfs (read straight into guest RAM's page cache) and copy
# mode on shmem (UFFDIO_COPY of an installed page: nothing breaks).
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

race() { # NAME PAGE_SIZE SHIMVM_FLAGS...
  local x=$1 ps=$2 dst out j w
  shift 2
  mig_spawn B "$WORK/$x.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$x" -m 16 -t 1 -k 1 "$@"
  dst=$SPAWN_PID
  mig_prepare B "$x"
  rm -f "$WORK/$x.go"
  # The guest read the demand copy: the late background copy may go.
  ( mig_wait_line "$WORK/$x.log" 'touch phase done' 30 "$dst" && touch "$WORK/$x.go" ) &
  w=$!
  out=$(probe -a "$ADDR_B" -A "$P/ca.pem" -c "$P/hosta.pem" -k "$P/hosta.key" -t "$TOKEN" \
    -v "$x" -r $RAM -g "$ps" -w "$WORK/$x.go" -x race)
  wait $w
  echo "$x: $(tr '\n' ' ' <<<"$out")"
  mig_assert_eq "$x: the late frame came after the demand copy" \
    "$([[ $out == *demand*"sent all"*complete* ]] && echo yes)" yes
  mig_wait_exit "$dst" 60; mig_assert_eq "$x: every value checked out (no late bytes)" "$?" 0
  mig_assert_verified "$WORK/$x.log" 16M
  j=$(ctl B --json status "$x")
  echo "$x: $(jq -c '{pages_total, pages_installed, pages_demand, pages_background, install_eexist}' <<<"$j")"
  mig_assert_eq "$x: every page installed once" \
    "$(jq -r '.pages_installed == .pages_total' <<<"$j")" true
}

race copy 4096 -I copy
mig_reserve_hugepages 16
race huge $((2 << 20)) -H -I minor
mig_finish
