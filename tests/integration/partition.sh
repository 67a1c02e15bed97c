#!/usr/bin/env bash
# Network partition in the middle of post-copy: the link between the two host
# namespaces goes down for a few seconds. Both sides must notice (heartbeat),
# go to PAUSED with a reason mig-ctl shows, install nothing while the link is
# down, reconnect with back-off when it returns, re-sync (the destination
# tells which pages it has; the source sends the rest again) and complete,
# with every page installed exactly once and the guest verifying its memory.
# Then an operator-driven `recover` to a new destination address.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
mig_require_kvm
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to cut a link"
A_NS=migA-$$ B_NS=migB-$$ VA=va$$ VB=vb$$
# A slow link (30 Mbit/s from A to B) so the migration is still running when
# the link is cut.
tc -n "$A_NS" qdisc add dev "$VA" root tbf rate 30mbit burst 64kb latency 500ms ||
  mig_die "cannot shape the link"
# The destination is also reachable at a second address, for `recover --to`.
ip -n "$B_NS" addr add 192.0.2.3/24 dev "$VB"
"$SRC/scripts/gen-certs.sh" "$WORK/pki" hosta=192.0.2.1 hostb=192.0.2.2,192.0.2.3 ||
  mig_die "certificates"
mig_daemon_start A
ADDR_B_SAVED=$ADDR_B
ADDR_B=0.0.0.0:7480 mig_daemon_start B
VM=t-part


mig_vmm_start A "$VM" vmm-A --mem 32M --workload writer
src=$VMM_PID
mig_wait_line "$WORK/vmm-A.log" 'guest ready' 60 "$src" || mig_die "guest not ready"
mig_vmm_start B "$VM" vmm-B --mem 32M --incoming --report "$WORK/report.json"
dst=$VMM_PID
sleep 0.5
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B_SAVED" --token "$token" >/dev/null || mig_die "migrate failed"
wait_for B '.state == "POSTCOPY" and .pages_installed > 500' 60 ||
  mig_die "post-copy did not get going"

log "cutting the link"
ip -n "$A_NS" link set "$VA" down
ip -n "$B_NS" link set "$VB" down
wait_for B '.state == "PAUSED"' 15; mig_assert_eq "destination PAUSED while the link is down" "$?" 0
wait_for A '.state == "PAUSED"' 15; mig_assert_eq "source PAUSED while the link is down" "$?" 0
echo "destination: $(st B .reason)"
echo "source: $(st A .reason)"
mig_assert_eq "reason names the lost channel" "$(st B '.reason | test("lost")')" true
ctl A status "$VM" | grep -q 'reason:.*reconnect'
mig_assert_eq "mig-ctl status shows why (source)" "$?" 0
before=$(st B .pages_installed)
sleep 2
mig_assert_eq "nothing installed from a broken stream" "$(st B .pages_installed)" "$before"
mig_assert_eq "still paused" "$(st B .state)" PAUSED

log "restoring the link"
ip -n "$A_NS" link set "$VA" up
ip -n "$B_NS" link set "$VB" up
wait_for B '.state == "POSTCOPY" or .state == "COMPLETED"' 30
mig_assert_eq "resumed after the link came back" "$?" 0

# Second cut; this time the operator points the source at the second address.
wait_for B '.state == "POSTCOPY"' 10 && {
  log "cutting the link again; recovering to 192.0.2.3"
  ip -n "$A_NS" link set "$VA" down
  wait_for A '.state == "PAUSED"' 15
  ip -n "$A_NS" link set "$VA" up
  ctl A recover "$VM" --to 192.0.2.3:7480 >/dev/null
  mig_assert_eq "mig-ctl recover --to accepted" "$?" 0
}
wait_for B '.state == "COMPLETED"' 180
mig_assert_eq "destination completed" "$?" 0
wait_for A '.state == "COMPLETED"' 30
mig_assert_eq "source completed" "$?" 0
mig_wait_exit "$dst" 60; mig_assert_eq "destination VMM: guest verified" "$?" 0
mig_assert_verified "$WORK/vmm-B.log" 32M
mig_wait_exit "$src" 30; mig_assert_eq "source VMM left" "$?" 0
mig_assert_eq "guest verdict" "$(jq -r .verdict "$WORK/report.json")" intact
mig_assert_eq "pages installed == pages" "$(st B .pages_installed)" "$(st B .pages_total)"
mig_assert_eq "no page installed twice (EEXIST)" "$(st B .install_eexist)" 0
mig_assert_eq "no install error" "$(st B .install_errors)" 0
mig_assert_eq "destination counted the resumption" "$(st B '.reconnects >= 1')" true
mig_assert_eq "source counted the resumption" "$(st A '.reconnects >= 1')" true
echo "source peer at the end: $(st A .peer)"
# With MIG_STREAMS: every stream redialled after the losses.
mig_assert_streams 2
mig_finish
