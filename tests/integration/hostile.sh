#!/usr/bin/env bash
# Hostile peers. While a real migration runs from A to B over a slowed link,
# hand-made peers misbehave against both daemons: an expired certificate, a
# peer that connects and says nothing, an oversized frame, a truncated
# frame, a page index beyond the VM, a duplicate page, and a destination
# that asks for pages and never reads them. Each gets a clear error (or
# back-pressure), only its own connection closes, nothing is written twice,
# memory stays bounded, and the real migration completes intact.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
PROBE=$BUILD/tests/peer_probe
SHIMVM=$BUILD/tests/shimvm
mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces (slowed link, second address)"
tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 40mbit burst 64kb latency 500ms ||
  mig_die "cannot shape the link"
ip -n "migB-$$" addr add 192.0.2.3/24 dev "vb$$"   # the greedy fake destination
"$SRC/scripts/gen-certs.sh" "$WORK/pki" hosta=192.0.2.1 hostb=192.0.2.2,192.0.2.3 ||
  mig_die "certificates"
P=$WORK/pki
mig_daemon_start A
mig_daemon_start B "[peer]
handshake_timeout = 2"
on() { local h=$1; shift; ip netns exec "mig$h-$$" "$@"; }
probe() { on A "$PROBE" -a "$ADDR_B" -A "$P/ca.pem" "$@"; }

# The migration that must survive all of this.
mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n real -m 64
mig_wait_line "$WORK/src.log" 'source ready' 30 "$SPAWN_PID" || mig_die "source not ready"
src=$SPAWN_PID
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n real -m 64 -t 2 -k 16
dst=$SPAWN_PID
sleep 0.5
token=$(ctl B prepare real -q) || mig_die "prepare failed"
ctl A migrate real --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate failed"

# Targets for the probes: incoming VMs with tokens of their own.
for v in h1 h2 h3 h4 h5; do
  mig_spawn B "$WORK/$v.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$v" -m 16 -t 1 -k 1
done
sleep 0.5
tok() { ctl B prepare "$1" -q; }
RAM=$((16 << 20))

out=$(probe -c "$P/expired.pem" -k "$P/expired.key" -t "$(tok h1)" -v h1 -r $RAM)
echo "expired certificate: $out"
mig_assert_eq "expired certificate refused at TLS" \
  "$([[ $out == tls-error:*"expired"* ]] && echo yes)" yes

out=$(probe -c "$P/hosta.pem" -k "$P/hosta.key" -x silent)
echo "silent peer: $out"
mig_assert_eq "a peer that says nothing is dropped after the hand-shake time-out" \
  "$(awk '/closed-by-peer/ {print ($3 >= 1.5 && $3 < 6) ? "yes" : "no"}' <<<"$out")" yes

out=$(probe -c "$P/hosta.pem" -k "$P/hosta.key" -t "$(tok h5)" -v h5 -r $RAM -x oversized)
echo "oversized frame: $out"
mig_assert_eq "oversized frame closes that connection" \
  "$([[ $out == accepted*closed-by-peer* ]] && echo yes)" yes
grep -q 'malformed frame: payload length' "$WORK/migrationd-B.log"
mig_assert_eq "oversized frame logged with its reason" "$?" 0

out=$(probe -c "$P/hosta.pem" -k "$P/hosta.key" -t "$(tok h2)" -v h2 -r $RAM -x truncated)
echo "truncated frame: $out"
mig_assert_eq "truncated frame: that migration failed cleanly" \
  "$(for _ in $(seq 30); do s=$(ctl B --json status h2 | jq -r .state); [[ $s == FAILED ]] && break; sleep 0.1; done; echo "$s")" FAILED

out=$(probe -c "$P/hosta.pem" -k "$P/hosta.key" -t "$(tok h3)" -v h3 -r $RAM -x beyond)
echo "page beyond the VM: $out"
mig_assert_eq "page index beyond the VM closes the connection" \
  "$([[ $out == *closed-by-peer* ]] && echo yes)" yes
grep -q 'page index beyond the VM' "$WORK/migrationd-B.log"
mig_assert_eq "beyond-the-VM logged" "$?" 0
mig_assert_eq "nothing installed for it" "$(ctl B --json status h3 | jq -r .pages_installed)" 0

out=$(probe -c "$P/hosta.pem" -k "$P/hosta.key" -t "$(tok h4)" -v h4 -r $RAM -x duplicate)
echo "duplicate page: $out"
sleep 0.5
mig_assert_eq "duplicate page installed once" \
  "$(ctl B --json status h4 | jq -c '[.pages_installed, .pages_duplicate, .install_eexist]')" "[1,1,0]"

# A destination that asks for every page and reads nothing: A must stop
# reading it instead of queueing gigabytes.
mig_spawn A "$WORK/greedy-src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n greedy -m 256
mig_wait_line "$WORK/greedy-src.log" 'source ready' 30 "$SPAWN_PID" || mig_die "greedy source"
mig_spawn B "$WORK/greedy.log" "$PROBE" -L 192.0.2.3:7481 -A "$P/ca.pem" -c "$P/hostb.pem" \
  -k "$P/hostb.key" -n 200000 -T 6
mig_wait_line "$WORK/greedy.log" listening 10 "$SPAWN_PID" || mig_die "greedy probe"
rss0=$(awk '/^VmRSS/ {print $2}' /proc/$PID_DA/status)
ctl A migrate greedy --to 192.0.2.3:7481 --token x >/dev/null
sleep 5
rss1=$(awk '/^VmHWM/ {print $2}' /proc/$PID_DA/status)
echo "greedy destination: $(cat "$WORK/greedy.log" | tail -1); daemon A RSS ${rss0} -> peak ${rss1} KiB"
mig_assert_eq "back-pressure engaged" "$(grep -c 'not reading it until they drain' "$WORK/migrationd-A.log")" 1
if [[ ${MIG_SANITIZE:-0} != 1 ]]; then	# ASan's shadow and quarantine inflate RSS
  mig_assert_eq "source daemon memory bounded (< 96 MiB peak)" "$((rss1 < 98304))" 1
fi
ctl A --json list >/dev/null
mig_assert_eq "source daemon still answers" "$?" 0

for _ in $(seq 600); do
  [[ $(ctl B --json status real | jq -r .state) == COMPLETED ]] && break; sleep 0.2
done
mig_assert_eq "the real migration completed through all of it" \
  "$(ctl B --json status real | jq -r .state)" COMPLETED
mig_wait_exit "$dst" 60; mig_assert_eq "its guest memory verified" "$?" 0
mig_assert_verified "$WORK/dst.log" 64M
mig_assert_eq "its pages installed once each" \
  "$(ctl B --json status real | jq -c '[.pages_installed == .pages_total, .install_eexist]')" "[true,0]"
kill -0 "$PID_DA" && kill -0 "$PID_DB"
mig_assert_eq "both daemons alive" "$?" 0
mig_finish
