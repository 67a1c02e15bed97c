#!/usr/bin/env bash
# Bandwidth caps on the background stream. `migration`: migrate
# --max-bandwidth 40M, then `mig-ctl set --max-bandwidth 60M` while it
# runs, then off; `daemon`: [peer] max_bandwidth = 40M on the source and no
# cap of the migration's own. The measured rate status shows must stay under
# the cap (with 15% for the measurement window) and move (above half of it);
# demand faults are served meanwhile (the urgent channel is never capped),
# and the destination compares every byte at the end. Bad rates are refused.
# With MIG_STREAMS set, the same with that many background streams.
# usage: bandwidth.sh BUILD_DIR migration|daemon
BUILD=$1
WHAT=${2:-migration}
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
MEM=64
VM=bw-$WHAT
mig_hosts_up
mig_certs
if [[ $WHAT == daemon ]]; then
  mig_daemon_start A "[peer]
max_bandwidth = 40M"
else
  mig_daemon_start A
fi
mig_daemon_start B
[[ $WHAT != daemon ]] || grep -q 'background channels share 40.0 Mbit/s' "$WORK/migrationd-A.log" ||
  true	# said when the first channel joins the group

for bad in fast 10 5T -1M 1.5X; do
  out=$(ctl A migrate nosuchvm --to "$ADDR_B" --token t --max-bandwidth "$bad" 2>&1)
  mig_assert_eq "--max-bandwidth $bad refused (usage, exit 2)" "$?" 2
done
echo "refused: $out"

mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m $MEM
src=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m $MEM -t 2 -k 32
dst=$SPAWN_PID
mig_prepare B "$VM"; token=$TOKEN
cap=()
[[ $WHAT == migration ]] && cap=(--max-bandwidth 40M)
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" "${cap[@]}" >/dev/null ||
  mig_die "migrate refused"

# rate_within LO_MBIT HI_MBIT: the measured rate after 3 s is in range
rate_within() {
  sleep 3
  local r
  r=$(st A '.background_bits_per_s / 1e6 | floor')
  log "measured $r Mbit/s (want $1..$2)"
  mig_assert_eq "measured rate ${r} Mbit/s within $1..$2 Mbit/s" \
    "$(awk -v r="$r" -v lo="$1" -v hi="$2" 'BEGIN { print (r >= lo && r <= hi) ? "yes" : "no" }')" yes
}
wait_for A '.state == "POSTCOPY" or .state == "COMPLETED"' 30 || mig_die "not in post-copy"
# With several streams (MIG_STREAMS) the cap holds for all of them together.
[[ -z ${MIG_STREAMS:-} ]] ||
  mig_assert_eq "$MIG_STREAMS background streams under one cap" "$(st A .streams)" "$MIG_STREAMS"
[[ $WHAT == migration ]] &&
  mig_assert_eq "status shows the cap" "$(st A .max_bandwidth_bits_per_s)" 40000000
rate_within 20 46
ctl A status "$VM" | grep bandwidth:
mig_assert_eq "guest threads were served on demand under the cap" \
  "$(st B '.demand_faults > 0')" true
if [[ $WHAT == migration ]]; then
  ctl A set "$VM" --max-bandwidth 60M >/dev/null
  mig_assert_eq "mig-ctl set took the new cap" "$(st A .max_bandwidth_bits_per_s)" 60000000
  rate_within 30 69
  ctl A set "$VM" --max-bandwidth off >/dev/null
  mig_assert_eq "cap off" "$(st A .max_bandwidth_bits_per_s)" 0
fi
[[ $WHAT != daemon ]] || mig_assert_eq "the daemon said it caps its channels" \
  "$(grep -c 'background channels share 40.0 Mbit/s' "$WORK/migrationd-A.log")" 1
wait_for A '.state == "COMPLETED"' 120
mig_assert_eq "migration completed" "$?" 0
mig_wait_exit "$dst" 60
mig_assert_eq "destination VMM: every value checked out" "$?" 0
mig_assert_verified "$WORK/dst.log" ${MEM}M
mig_wait_exit "$src" 30
out=$(ctl A set "$VM" --max-bandwidth 1G 2>&1)
mig_assert_eq "no cap on a finished migration (FAILED_PRECONDITION)" \
  "$(grep -c FAILED_PRECONDITION <<<"$out")" 1
mig_cleanup
mig_finish
