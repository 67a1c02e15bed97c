#!/usr/bin/env bash
# A VMM that dies ends its own migration, cleanly and with the cause, on
# both hosts, and nobody else's:
#  - the destination VMM killed (SIGKILL) in post-copy: both daemons reach
#    FAILED within seconds ("the VM is lost"; the source never resumes its
#    stale copy), release the VM, its fds and its installed set;
#  - the source VMM killed before the switch-over (held with SIGSTOP while
#    the daemon waits for its state): the migration fails on both sides and
#    the destination VMM is told;
# while a bystander migration between the same daemons completes with
# every page verified. Afterwards each daemon holds as many fds as before.
# usage: vmm_death.sh BUILD_DIR
BUILD=$1
source "$(dirname "$0")/../lib.sh"
SHIMVM=$BUILD/tests/shimvm

mig_hosts_up
((MIG_USE_NETNS)) || mig_skip "needs network namespaces to slow the link down"
tc -n "migA-$$" qdisc add dev "va$$" root tbf rate 48mbit burst 64kb latency 300ms ||
  mig_die "cannot shape the link"
mig_certs
mig_daemon_start A
mig_daemon_start B
nfd() { ls "/proc/$1/fd" | wc -l; }
fd_a=$(nfd "$PID_DA") fd_b=$(nfd "$PID_DB")

# within SECS seconds, VM's status on HOST matches JQ
within() { local h=$1 vm=$2 jqc=$3 secs=$4; VM=$vm wait_for "$h" "$jqc" "$secs"; }
pair() { # NAME MEM DEST-ARGS...: sets SRC_PID DST_PID
  local n=$1 mem=$2; shift 2
  mig_spawn A "$WORK/src-$n.log" "$SHIMVM" source -s "$WORK/A/vmm.sock" -n "$n" -m "$mem"
  SRC_PID=$SPAWN_PID
  mig_wait_line "$WORK/src-$n.log" 'source ready' 30 "$SRC_PID" || mig_die "$n: source not ready"
  mig_spawn B "$WORK/dst-$n.log" "$SHIMVM" dest -s "$WORK/B/vmm.sock" -n "$n" -m "$mem" "$@"
  DST_PID=$SPAWN_PID
  sleep 0.3
}

pair bystander 48 -M ring -t 2 -k 8
by_src=$SRC_PID by_dst=$DST_PID
pair victim 64 -M uffd -t 2 -k 4
v_dst=$DST_PID v_src=$SRC_PID
for vm in bystander victim; do
  token=$(VM=$vm ctl B prepare "$vm" -q) || mig_die "prepare $vm failed"
  ctl A migrate "$vm" --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate $vm failed"
done
within B victim '.state == "POSTCOPY" and .pages_installed > 1000' 60 ||
  mig_die "victim: post-copy did not start"

log "SIGKILL to the destination VMM of 'victim' (pid $v_dst) in post-copy"
kill -KILL "$v_dst"
t0=$(date +%s.%N)
within B victim '.state == "FAILED"' 5
mig_assert_eq "destination: FAILED within 5 s" "$?" 0
within A victim '.state == "FAILED"' 5
mig_assert_eq "source: FAILED within 5 s" "$?" 0
echo "both FAILED $(bc <<<"$(date +%s.%N) - $t0")s after the kill"
VM=victim
echo "destination: $(st B .reason)"
echo "source:      $(st A .reason)"
mig_assert_eq "destination says the VMM went away" "$(st B '.reason | test("destination VMM went away during post-copy")')" true
mig_assert_eq "source says the VM is lost there" "$(st A '.reason | test("the VM is lost")')" true
mig_assert_eq "no installed set left for it" "$(ls "$WORK/B/state/"*.pages 2>/dev/null | wc -l)" \
  "$(VM=bystander st B 'if .state == "COMPLETED" then 0 else 1 end')"
mig_wait_exit "$v_src" 10
mig_assert_eq "source VMM of the lost VM was told" \
  "$(grep -q 'source: .*VM is lost' "$WORK/src-victim.log" && echo told)" told

# The source VMM dies before the switch-over.
pair early 32 -M uffd -t 1 -k 1
e_src=$SRC_PID e_dst=$DST_PID
token=$(ctl B prepare early -q) || mig_die "prepare early failed"
kill -STOP "$e_src"
ctl A migrate early --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate early failed"
within A early '.state == "BLACKOUT"' 10 || mig_die "early: not waiting for the VM state"
log "SIGKILL to the source VMM of 'early' (pid $e_src) before the switch-over"
kill -KILL "$e_src"
within A early '.state == "FAILED"' 5
mig_assert_eq "early: source FAILED within 5 s" "$?" 0
within B early '.state == "FAILED"' 5
mig_assert_eq "early: destination FAILED within 5 s" "$?" 0
VM=early
echo "source:      $(st A .reason)"
echo "destination: $(st B .reason)"
mig_assert_eq "early: source says its VMM went away" "$(st A '.reason | test("source VMM went away before the switch-over")')" true
mig_assert_eq "early: destination has the source's reason" "$(st B '.reason | test("source VMM went away")')" true
mig_wait_exit "$e_dst" 10
mig_assert_eq "early: destination VMM was told and left" "$(kill -0 "$e_dst" 2>/dev/null && echo running || echo gone)" gone

# The destination VMM dies while the link is down: the destination fails
# alone; when the source comes back its resume is refused with "the VM is
# lost" and it fails too, instead of reconnecting for ever.
pair cut 64 -M uffd -t 2 -k 4
c_dst=$DST_PID
token=$(ctl B prepare cut -q) || mig_die "prepare cut failed"
ctl A migrate cut --to "$ADDR_B" --token "$token" >/dev/null || mig_die "migrate cut failed"
within B cut '.state == "POSTCOPY"' 60 || mig_die "cut: post-copy did not start"
kill -STOP "$PID_DA"
within B cut '.state == "PAUSED"' 10 || { kill -CONT "$PID_DA"; mig_die "cut: link loss not seen"; }
kill -KILL "$c_dst"
within B cut '.state == "FAILED"' 5
mig_assert_eq "cut: destination FAILED while the link was down" "$?" 0
kill -CONT "$PID_DA"
within A cut '.state == "FAILED"' 15
mig_assert_eq "cut: source FAILED once it came back (not reconnecting for ever)" "$?" 0
VM=cut
echo "source:      $(st A .reason)"
mig_assert_eq "cut: source was told the VM is lost" "$(st A '.reason | test("the VM is lost")')" true

within B bystander '.state == "COMPLETED"' 120
mig_assert_eq "bystander migration completed" "$?" 0
mig_wait_exit "$by_dst" 60; mig_assert_eq "bystander: every page checked out" "$?" 0
mig_assert_verified "$WORK/dst-bystander.log" 48M
mig_wait_exit "$by_src" 30
sleep 1
mig_assert_eq "source daemon holds as many fds as before" "$(nfd "$PID_DA")" "$fd_a"
mig_assert_eq "destination daemon holds as many fds as before" "$(nfd "$PID_DB")" "$fd_b"
mig_finish
