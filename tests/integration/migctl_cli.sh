#!/usr/bin/env bash
# mig-ctl and libmigctl against two real daemons: --help for every command,
# exit codes (2 usage, 3 unreachable, 4 refused, 5 paused), health, prepare
# and cancel, migrate --wait with its progress bar stopped by an operator
# pause (exit 5), watch across recover to COMPLETED, list filters, the
# latency histogram, and a second migration driven by the libmigctl example
# program (synchronous calls plus its watch callback); history after a
# daemon restart.
BUILD=$1
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm
EXAMPLE=$BUILD/client/migctl-example
VM=cli-vm VM2=cli-lib SPARE=cli-spare

mig_hosts_up
if ((MIG_USE_NETNS)); then
  # A slower link, so the migration is still in post-copy when paused.
  tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 60mbit burst 64kb latency 500ms ||
    mig_die "cannot shape the link"
fi
mig_certs
mig_daemon_start A
mig_daemon_start B

# --help everywhere, usage errors, unreachable daemon, refusals.
for c in prepare migrate status list watch pause recover cancel latency health; do
  out=$("$MIGCTL" "$c" --help)
  rc=$?
  [[ $rc == 0 && $out == usage:* ]] || mig_fail "mig-ctl $c --help (rc $rc): $out"
done
echo "ok: --help for every command"
"$MIGCTL" --help | grep -q 'latency ID|VM'; mig_assert_eq "global --help lists commands" "$?" 0
"$MIGCTL" bogus 2>/dev/null; mig_assert_eq "unknown command exits 2" "$?" 2
ctl A status 2>/dev/null; mig_assert_eq "missing argument exits 2" "$?" 2
ctl A list --state NOPE 2>/dev/null; mig_assert_eq "unknown state filter exits 2" "$?" 2
"$MIGCTL" -s "$WORK/none.sock" health 2>"$WORK/unreach.err"
mig_assert_eq "unreachable daemon exits 3" "$?" 3
mig_assert_eq "unreachable error is one line" "$(wc -l <"$WORK/unreach.err")" 1
ctl A status nope 2>"$WORK/nf.err"; mig_assert_eq "unknown migration exits 4" "$?" 4
mig_assert_eq "refusal names the status" "$(cat "$WORK/nf.err")" \
  "mig-ctl: NOT_FOUND: no such migration"
mig_assert_eq "--json error object" "$(ctl A --json status nope 2>/dev/null | jq -r .error.code)" \
  NOT_FOUND
ctl A migrate x --to nowhere --token t 2>/dev/null; mig_assert_eq "bad address exits 4" "$?" 4
# As root the daemon loads its BPF programs; either way it says which source
# it uses and, without eBPF, why.
ctl A health | grep -qE 'latency: *(eBPF: USDT probes.*; eBPF: loaded|user-space timestamps: .+; eBPF: user-space timestamps: .+)'
mig_assert_eq "health (human) says how latency is measured" "$?" 0
mig_assert_eq "health --json version" "$(ctl A --json health | jq -r .version)" \
  "$(sed -n 's/^project(migrationd VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")"

mig_spawn A "$WORK/src.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM" -m 32
src=$SPAWN_PID
mig_spawn A "$WORK/src2.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$VM2" -m 16
src2=$SPAWN_PID
mig_wait_line "$WORK/src.log" 'source ready' 30 "$src" || mig_die "source shimvm not ready"
mig_wait_line "$WORK/src2.log" 'source ready' 30 "$src2" || mig_die "source shimvm 2 not ready"
mig_spawn B "$WORK/dst.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM" -m 32 -t 2 -k 32
dst=$SPAWN_PID
mig_spawn B "$WORK/dst2.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$VM2" -m 16 -t 2 -k 16
dst2=$SPAWN_PID
mig_spawn B "$WORK/spare.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$SPARE" -m 4
for _ in $(seq 100); do
  [[ $(ctl B --json list --role destination | jq '.vms | length') == 3 ]] && break
  sleep 0.1
done
mig_assert_eq "list --role destination shows the incoming VMs" \
  "$(ctl B --json list --role destination | jq '.vms | length')" 3

# prepare + cancel on the destination.
ctl B prepare "$SPARE" | grep -q '^token: '; mig_assert_eq "prepare (human) prints the token" "$?" 0
mig_assert_eq "cancel -> CANCELLED" "$(ctl B --json cancel "$SPARE" | jq -r .state)" CANCELLED
ctl B cancel "$SPARE" 2>/dev/null; mig_assert_eq "cancelling again is refused (4)" "$?" 4

# migrate --wait, paused by the operator: exit 5 with the reason.
token=$(ctl B prepare "$VM" -q) || mig_die "prepare failed"
ctl A migrate "$VM" --to "$ADDR_B" --token "$token" --wait --timeout 120 \
  >"$WORK/wait.out" 2>"$WORK/wait.err" &
waiter=$!
ok=0
for _ in $(seq 300); do
  [[ $(ctl A --json status "$VM" | jq -r '.state == "POSTCOPY" and .pages_background > 0') == true ]] &&
    { ok=1; break; }
  sleep 0.05
done
mig_assert_eq "migration reached post-copy" "$ok" 1
mig_assert_eq "pause -> PAUSED" "$(ctl A --json pause "$VM" | jq -r .state)" PAUSED
mig_wait_exit "$waiter" 30; mig_assert_eq "migrate --wait exits 5 when paused" "$?" 5
grep -q 'POSTCOPY .*pages.*/s.*ETA' "$WORK/wait.err"
mig_assert_eq "migrate --wait drew progress (pages, rate, ETA)" "$?" 0
grep -q 'PAUSED: paused by the operator' "$WORK/wait.err"
mig_assert_eq "migrate --wait says why it stopped" "$?" 0
ctl A cancel "$VM" 2>/dev/null; mig_assert_eq "cancel after the VM left is refused (4)" "$?" 4
mig_assert_eq "list --state PAUSED" "$(ctl A --json list --state paused | jq -r '.migrations[].vm')" "$VM"

# watch across recover until COMPLETED.
ctl A --json watch "$VM" >"$WORK/watch.json" 2>"$WORK/watch.err" &
watcher=$!
sleep 0.3
mig_assert_eq "recover (same address)" "$(ctl A --json recover "$VM" | jq -r .id | cut -c1-2)" m-
mig_wait_exit "$watcher" 120; mig_assert_eq "watch exits 0 once COMPLETED" "$?" 0
mig_assert_eq "watch: first event is a snapshot of the paused migration" \
  "$(head -1 "$WORK/watch.json" | jq -r '.kind + " " + .migration.state')" "SNAPSHOT PAUSED"
mig_assert_eq "watch: last event COMPLETED" "$(tail -1 "$WORK/watch.json" | jq -r .migration.state)" \
  COMPLETED
mig_assert_eq "watch: progress events with a rate" \
  "$(jq -s '[.[] | select(.kind == "PROGRESS" and .pages_per_s > 0)] | length > 0' "$WORK/watch.json")" true
mig_wait_exit "$dst" 60; mig_assert_eq "destination shimvm verified every page" "$?" 0
mig_assert_verified "$WORK/dst.log" 32M
mig_wait_exit "$src" 30; mig_assert_eq "source shimvm left" "$?" 0
mig_assert_eq "status after recover" "$(ctl B --json status "$VM" | jq -r .state)" COMPLETED

# latency histogram.
ctl B latency "$VM" >"$WORK/lat.txt"
cat "$WORK/lat.txt"
grep -q 'p50 .* p90 .* p99 .* p99.9' "$WORK/lat.txt"; mig_assert_eq "latency shows percentiles" "$?" 0
grep -q 'us |#' "$WORK/lat.txt"; mig_assert_eq "latency draws a histogram" "$?" 0
mig_assert_eq "latency --json buckets add up" \
  "$(ctl B --json latency "$VM" | jq '([.buckets[].count] | add) == .count and .count > 0')" true
mig_assert_eq "list --state COMPLETED --role source --vm" \
  "$(ctl A --json list --state COMPLETED --role source --vm "$VM" | jq '.migrations | length')" 1
mig_assert_eq "list human table" "$(ctl A list | grep -c "$VM .*SOURCE .*COMPLETED")" 1

# The C library: the example program prepares, migrates and watches.
libtoken=$("$EXAMPLE" "$WORK/B/control.sock" prepare "$VM2") || mig_die "example prepare failed"
"$EXAMPLE" "$WORK/A/control.sock" migrate "$VM2" "$ADDR_B" "$libtoken" >"$WORK/example.out"
mig_assert_eq "libmigctl example migrated the VM" "$?" 0
tail -3 "$WORK/example.out"
mig_assert_eq "example's watch callback saw events" \
  "$(grep -c 'pages/s' "$WORK/example.out" | awk '{print ($1 > 1)}')" 1
mig_assert_eq "example: final COMPLETED" "$(tail -1 "$WORK/example.out")" "final: COMPLETED"
mig_wait_exit "$dst2" 60; mig_assert_eq "destination 2 verified every page" "$?" 0
mig_assert_verified "$WORK/dst2.log" 16M
"$EXAMPLE" "$WORK/A/control.sock" | grep -q '^migrationd '; mig_assert_eq "example health" "$?" 0

# Records outlive the daemon: list shows the history after a restart.
kill -TERM "$PID_DA"
mig_wait_exit "$PID_DA" 15; mig_assert_eq "daemon A stopped cleanly" "$?" 0
mig_forget "$PID_DA"
mig_daemon_start A
mig_assert_eq "list after a restart shows both migrations, COMPLETED" \
  "$(ctl A --json list --state COMPLETED | jq -r '[.migrations[].vm] | sort | join(",")')" \
  "$(printf '%s\n' "$VM" "$VM2" | sort | paste -sd,)"

# A daemon stopped while a client watches an active migration still exits
# cleanly (cleanup checks the exit status and, under ASan, the reports).
mig_spawn B "$WORK/end.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n cli-end -m 4
for _ in $(seq 50); do ctl B --json list --vm cli-end | jq -e '.vms[0]' >/dev/null && break; sleep 0.1; done
ctl B prepare cli-end -q >/dev/null || mig_fail "prepare cli-end"
mig_spawn B "$WORK/endwatch.log" "$MIGCTL" -s "$WORK/B/control.sock" --json watch cli-end
sleep 1
mig_assert_eq "watch of a PREPARED migration streams" \
  "$(head -1 "$WORK/endwatch.log" | jq -r .migration.state)" PREPARED
mig_finish
